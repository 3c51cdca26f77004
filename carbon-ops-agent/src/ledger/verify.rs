//! The verifier: reads ledger lines and reports every break, not only the first.
//!
//! Each line is first checked on its own ([`check_line`] in `linecheck`: JSON, canonical form,
//! schema, hash), in parallel ([`check_lines`]). The [`Verifier`]
//! then walks the checked lines in order and checks the links: genesis at the start of each
//! segment, `seq` without gaps or repeats, `prev_hash` equal to the previous line's `hash`, and
//! the expected head(s). After a break it resynchronises on the line it just read, so one
//! tampered line yields one or two breaks rather than a cascade. Pure: no I/O.

use super::chain::{GENESIS_KIND, Head, ZERO_HASH};
use super::checkpoint::CheckpointVerifier;
pub use super::linecheck::{LineCheck, LineFacts, check_line, check_line_exact, check_lines};
use super::problem::{Break, Problem, Report};

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
    keys: Vec<CheckpointVerifier>,
    checkpoints_verified: u64,
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
            keys: Vec::new(),
            checkpoints_verified: 0,
        }
    }

    /// Verifies checkpoint entries with these public keys (without keys they are not checked).
    pub fn with_checkpoint_keys(mut self, keys: Vec<CheckpointVerifier>) -> Self {
        self.keys = keys;
        self
    }

    fn check_checkpoint(
        &mut self,
        seq: Option<u64>,
        payload: &serde_json::Map<String, serde_json::Value>,
    ) {
        if self.keys.is_empty() {
            return;
        }
        let id = payload
            .get("key_id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let outcome = match self.keys.iter().find(|k| k.key_id() == id) {
            Some(key) => key.check(payload, self.last.as_ref()),
            None => Err(format!(
                "signed with key id {id:?}, which is not among the given public keys"
            )),
        };
        match outcome {
            Ok(()) => self.checkpoints_verified += 1,
            Err(detail) => self.report(seq, Problem::BadCheckpoint { detail }),
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
        if let Some(payload) = &f.checkpoint {
            self.check_checkpoint(seq, payload);
        }
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
            checkpoints_verified: self.checkpoints_verified,
            breaks: self.breaks,
        }
    }
}
