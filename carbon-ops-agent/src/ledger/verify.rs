//! The verifier: reads ledger lines and reports every break, not only the first.
//!
//! Each line is first checked on its own ([`check_line`]: JSON, canonical form, schema, hash);
//! that part is independent per line and runs in parallel ([`check_lines`]). The [`Verifier`]
//! then walks the checked lines in order and checks the links: genesis at the start of each
//! segment, `seq` without gaps or repeats, `prev_hash` equal to the previous line's `hash`, and
//! the expected head(s). After a break it resynchronises on the line it just read, so one
//! tampered line yields one or two breaks rather than a cascade. Pure: no I/O.

use super::canonical;
use super::chain::{self, GENESIS_KIND, HASH_MEMBER_LEN, Head, ZERO_HASH, is_hash_hex, sha256_hex};
use super::fastpath::fast_facts;
use super::problem::{Break, Problem, Report};
use super::ts::is_rfc3339_utc;
use serde_json::Value;

/// The fields of a line that the chain checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFacts {
    pub seq: u64,
    pub kind: String,
    pub prev_hash: String,
    pub hash: String,
    /// For genesis entries: (ledger id, segment index, prev_segment_hash).
    pub genesis: Option<(String, Option<u64>, Option<String>)>,
}

/// The result of checking one line on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineCheck {
    /// `None` when the line is too damaged to take part in chain checks.
    pub facts: Option<LineFacts>,
    /// `seq` if it could be read, for reports.
    pub seq: Option<u64>,
    pub problems: Vec<Problem>,
}

const FIELDS: [&str; 7] = ["hash", "kind", "payload", "prev_hash", "seq", "ts", "v"];

/// Checks one line (without its `\n`): JSON, canonical form, fields, and its own hash.
/// Uses the allocation-free fast path for intact entries and [`check_line_exact`] otherwise.
pub fn check_line(line: &[u8]) -> LineCheck {
    match fast_facts(line) {
        Some(facts) => LineCheck {
            seq: Some(facts.seq),
            facts: Some(facts),
            problems: Vec::new(),
        },
        None => check_line_exact(line),
    }
}

/// The reference line check: parses into a `Value`, re-serialises with JCS and compares, and
/// explains every problem found.
pub fn check_line_exact(line: &[u8]) -> LineCheck {
    let mut problems = Vec::new();
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return LineCheck {
                facts: None,
                seq: None,
                problems: vec![Problem::BadJson {
                    detail: e.to_string(),
                }],
            };
        }
    };
    let Value::Object(map) = &value else {
        let problem = Problem::BadField {
            field: "entry".into(),
            detail: "not a JSON object".into(),
        };
        return LineCheck {
            facts: None,
            seq: None,
            problems: vec![problem],
        };
    };
    let canonical_ok = match canonical::to_canonical_vec(&value) {
        Ok(c) if c == line => true,
        Ok(_) => {
            problems.push(Problem::NotCanonical {
                detail: "bytes differ from the RFC 8785 serialisation".into(),
            });
            false
        }
        Err(e) => {
            problems.push(Problem::NotCanonical {
                detail: e.to_string(),
            });
            false
        }
    };
    let mut bad = |field: &str, detail: &str| {
        problems.push(Problem::BadField {
            field: field.into(),
            detail: detail.into(),
        });
    };
    for key in map.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        bad(key, "unknown field");
    }
    for key in FIELDS.iter().filter(|k| !map.contains_key(**k)) {
        bad(key, "missing");
    }
    if map
        .get("v")
        .is_some_and(|v| v.as_u64() != Some(chain::FORMAT_VERSION))
    {
        bad("v", "must be 1");
    }
    let seq = map.get("seq").and_then(Value::as_u64);
    if map.contains_key("seq") && seq.is_none() {
        bad("seq", "must be a non-negative integer");
    }
    if map
        .get("ts")
        .is_some_and(|t| !t.as_str().is_some_and(is_rfc3339_utc))
    {
        bad("ts", "must be an RFC 3339 UTC timestamp ending in Z");
    }
    let kind = map.get("kind").and_then(Value::as_str);
    if map.contains_key("kind") && kind.is_none_or(str::is_empty) {
        bad("kind", "must be a non-empty string");
    }
    let payload = map.get("payload").and_then(Value::as_object);
    if map.contains_key("payload") && payload.is_none() {
        bad("payload", "must be an object");
    }
    let prev_hash = map.get("prev_hash").and_then(Value::as_str);
    let hash = map.get("hash").and_then(Value::as_str);
    for (name, h) in [("prev_hash", prev_hash), ("hash", hash)] {
        if map.contains_key(name) && !h.is_some_and(is_hash_hex) {
            bad(name, "must be 64 lowercase hex digits");
        }
    }
    let genesis = (kind == Some(GENESIS_KIND)).then(|| {
        let p = payload.cloned().unwrap_or_default();
        let id = p
            .get("ledger_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if id.is_empty() {
            bad("payload.ledger_id", "genesis needs a non-empty ledger_id");
        }
        if !p
            .get("created")
            .and_then(Value::as_str)
            .is_some_and(is_rfc3339_utc)
        {
            bad(
                "payload.created",
                "genesis needs an RFC 3339 UTC creation time",
            );
        }
        let segment = p.get("segment").and_then(Value::as_u64);
        let link = p
            .get("prev_segment_hash")
            .and_then(Value::as_str)
            .map(str::to_owned);
        (id, segment, link)
    });
    if let Some(recorded) = hash {
        let computed = if canonical_ok && is_hash_hex(recorded) {
            // Canonical and `hash` first: the hashed bytes are `{` + the rest after the member.
            let mut hashed = Vec::with_capacity(line.len() - HASH_MEMBER_LEN);
            hashed.push(b'{');
            hashed.extend_from_slice(&line[HASH_MEMBER_LEN + 1..]);
            Some(sha256_hex(&hashed))
        } else {
            let mut body = map.clone();
            body.remove("hash");
            canonical::to_canonical_vec(&Value::Object(body))
                .ok()
                .map(|b| sha256_hex(&b))
        };
        if let Some(computed) = computed.filter(|c| c != recorded) {
            problems.push(Problem::BadHash {
                computed,
                recorded: recorded.to_owned(),
            });
        }
    }
    let facts = match (seq, kind, prev_hash, hash) {
        (Some(seq), Some(kind), Some(prev_hash), Some(hash)) => Some(LineFacts {
            seq,
            kind: kind.to_owned(),
            prev_hash: prev_hash.to_owned(),
            hash: hash.to_owned(),
            genesis,
        }),
        _ => None,
    };
    LineCheck {
        facts,
        seq,
        problems,
    }
}

/// Checks many lines on up to `threads` threads, preserving order.
pub fn check_lines(lines: &[&[u8]], threads: usize) -> Vec<LineCheck> {
    let threads = threads.clamp(1, 64);
    if threads == 1 || lines.len() < 1024 {
        return lines.iter().map(|l| check_line(l)).collect();
    }
    let chunk = lines.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|l| check_line(l)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| Vec::new()))
            .collect()
    })
}

/// A head that the ledger must contain: from the head file or `--expect-head`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadExpectation {
    pub source: String,
    pub seq: Option<u64>,
    pub hash: String,
}

/// Walks checked lines in order and collects every break.
#[derive(Debug)]
pub struct Verifier {
    expectations: Vec<(HeadExpectation, Option<String>, bool)>,
    segment: u32,
    line: u64,
    at_segment_start: bool,
    next_seq: Option<u64>,
    prev_hash: Option<String>,
    last: Option<Head>,
    ledger_id: Option<String>,
    entries: u64,
    breaks: Vec<Break>,
}

impl Verifier {
    /// A verifier for a ledger whose first segment is about to be pushed.
    pub fn new(expectations: Vec<HeadExpectation>) -> Self {
        Self {
            expectations: expectations.into_iter().map(|e| (e, None, false)).collect(),
            segment: 0,
            line: 0,
            at_segment_start: true,
            next_seq: Some(0),
            prev_hash: Some(ZERO_HASH.to_owned()),
            last: None,
            ledger_id: None,
            entries: 0,
            breaks: Vec::new(),
        }
    }

    /// Starts segment `index` (0 for the first file): its first line must be a genesis entry.
    pub fn begin_segment(&mut self, index: u32) {
        self.segment = index;
        self.line = 0;
        self.at_segment_start = true;
    }

    fn report(&mut self, seq: Option<u64>, problem: Problem) {
        let (segment, line) = (Some(self.segment), Some(self.line));
        self.breaks.push(Break {
            segment,
            line,
            seq,
            problem,
        });
    }

    /// Records a break that is not about one line (a missing segment, an unreadable file).
    pub fn report_other(&mut self, problem: Problem) {
        self.breaks.push(Break {
            segment: Some(self.segment),
            line: None,
            seq: None,
            problem,
        });
    }

    /// Checks and pushes one line (without its `\n`).
    pub fn push_line(&mut self, line: &[u8]) {
        self.push(check_line(line));
    }

    /// Pushes a line already checked by [`check_line`].
    pub fn push(&mut self, check: LineCheck) {
        self.line += 1;
        for p in check.problems {
            self.report(check.seq, p);
        }
        let Some(f) = check.facts else {
            self.next_seq = self.next_seq.map(|n| n + 1);
            self.prev_hash = None;
            self.at_segment_start = false;
            return;
        };
        self.entries += 1;
        let seq = Some(f.seq);
        if self.at_segment_start {
            self.check_genesis(&f);
        } else if f.kind == GENESIS_KIND {
            self.report(seq, Problem::MisplacedGenesis);
        }
        let mut duplicate = false;
        if let Some(n) = self.next_seq {
            if f.seq > n {
                self.report(
                    seq,
                    Problem::SeqGap {
                        expected: n,
                        found: f.seq,
                    },
                );
            } else if f.seq < n {
                duplicate = self
                    .last
                    .as_ref()
                    .is_some_and(|h| h.seq == f.seq && h.hash == f.hash);
                let problem = if duplicate {
                    Problem::Duplicate { seq: f.seq }
                } else {
                    Problem::SeqOutOfOrder {
                        expected: n,
                        found: f.seq,
                    }
                };
                self.report(seq, problem);
            }
        }
        if let Some(p) = self
            .prev_hash
            .clone()
            .filter(|p| !duplicate && *p != f.prev_hash)
        {
            self.report(
                seq,
                Problem::BadPrevHash {
                    expected: p,
                    recorded: f.prev_hash.clone(),
                },
            );
        }
        for (e, found, matched) in &mut self.expectations {
            let hit = match e.seq {
                Some(s) => s == f.seq,
                None => e.hash == f.hash,
            };
            if hit {
                *matched = e.hash == f.hash;
                *found = Some(f.hash.clone());
            }
        }
        self.next_seq = Some(f.seq + 1);
        self.prev_hash = Some(f.hash.clone());
        self.last = Some(Head {
            seq: f.seq,
            hash: f.hash,
        });
        self.at_segment_start = false;
    }

    fn check_genesis(&mut self, f: &LineFacts) {
        let seq = Some(f.seq);
        let Some((id, segment, link)) = &f.genesis else {
            self.report(
                seq,
                Problem::MissingGenesis {
                    found_kind: f.kind.clone(),
                },
            );
            return;
        };
        let mut bad = Vec::new();
        if *segment != Some(u64::from(self.segment)) {
            bad.push(format!(
                "payload.segment is {segment:?}, expected {}",
                self.segment
            ));
        }
        if self.segment == 0 && link.is_some() {
            bad.push("the first segment's genesis must not carry prev_segment_hash".to_owned());
        }
        if self.segment > 0 && link.as_deref() != Some(f.prev_hash.as_str()) {
            bad.push("payload.prev_segment_hash must equal prev_hash".to_owned());
        }
        match &self.ledger_id {
            Some(known) if known != id => bad.push(format!("ledger_id {id} differs from {known}")),
            _ => self.ledger_id = Some(id.clone()),
        }
        for detail in bad {
            self.report(seq, Problem::BadGenesis { detail });
        }
    }

    /// Records a trailing fragment without `\n` (a torn write, or truncation mid-line).
    pub fn torn_tail(&mut self, bytes: usize) {
        self.line += 1;
        self.report(None, Problem::TornTail { bytes });
    }

    /// Ends verification: checks the expected heads and returns the report.
    pub fn finish(mut self) -> Report {
        if self.entries == 0 && self.breaks.is_empty() {
            self.report_other(Problem::MissingGenesis {
                found_kind: "nothing (empty ledger)".into(),
            });
        }
        let last_seq = self.last.as_ref().map(|h| h.seq);
        for (e, found, matched) in std::mem::take(&mut self.expectations) {
            if matched {
                continue;
            }
            let problem = match (e.seq, found) {
                (Some(seq), Some(found)) => Problem::HeadMismatch {
                    against: e.source,
                    seq,
                    expected: e.hash,
                    found,
                },
                (Some(seq), None) => Problem::Truncated {
                    against: e.source,
                    head_seq: seq,
                    last_seq,
                },
                (None, _) => Problem::HeadNotFound {
                    against: e.source,
                    hash: e.hash,
                },
            };
            self.breaks.push(Break {
                segment: None,
                line: None,
                seq: e.seq,
                problem,
            });
        }
        Report {
            entries: self.entries,
            segments: self.segment + 1,
            head: self.last,
            ledger_id: self.ledger_id,
            breaks: self.breaks,
        }
    }
}
