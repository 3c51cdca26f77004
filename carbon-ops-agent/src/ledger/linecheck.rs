//! Checking one ledger line on its own: JSON, canonical form, fields and its own hash.
//!
//! [`check_line`] tries the allocation-free [`fast_facts`] first and falls back to
//! [`check_line_exact`], the reference check that parses into a `Value`, re-serialises with JCS
//! and explains every problem. Lines are independent, so [`check_lines`] runs them in parallel.
//! Pure: no I/O.

use super::canonical;
use super::chain::{self, GENESIS_KIND, HASH_MEMBER_LEN, is_hash_hex, sha256_hex};
use super::checkpoint::CHECKPOINT_KIND;
use super::fastpath::fast_facts;
use super::problem::Problem;
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
    /// For checkpoint entries: the payload, checked against the given public keys.
    pub checkpoint: Option<serde_json::Map<String, Value>>,
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
            checkpoint: (kind == CHECKPOINT_KIND).then(|| payload.cloned().unwrap_or_default()),
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
