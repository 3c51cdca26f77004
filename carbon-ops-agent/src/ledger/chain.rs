//! The hash chain: how an entry is built, hashed and serialised as one ledger line.
//!
//! An entry is the JCS object `{hash, kind, payload, prev_hash, seq, ts, v}`; `hash` is the
//! lowercase hex SHA-256 of the JCS bytes of the same object without `hash`. Because `hash`
//! sorts first, a line is `{"hash":"<64 hex>",` followed by the hashed bytes minus their `{`;
//! [`seal`] builds lines that way and a test checks it against full canonicalisation.
//! Pure: the caller supplies the clock reading and the random ledger id.

use super::canonical::{self, CanonicalError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Format version carried in every entry's `v`.
pub const FORMAT_VERSION: u64 = 1;
/// `prev_hash` of the very first entry of a ledger.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Kind of the first entry of every segment; reserved.
pub const GENESIS_KIND: &str = "genesis";
/// Longest accepted `kind`.
pub const MAX_KIND_LEN: usize = 64;
/// Bytes of `"hash":"<64 hex>",` that precede the hashed bytes' members in a line.
pub const HASH_MEMBER_LEN: usize = 74;

/// The last entry of a ledger: what the head file and `--expect-head` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

/// Why an entry cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EntryError {
    #[error("payload must be a JSON object, got {found}")]
    PayloadNotObject { found: &'static str },
    #[error("kind {kind:?} is invalid: use 1-{MAX_KIND_LEN} characters from [A-Za-z0-9_.:-]")]
    BadKind { kind: String },
    #[error("kind {kind:?} is reserved for entries the ledger writes itself")]
    ReservedKind { kind: String },
    #[error("payload cannot be recorded: {0}")]
    Canonical(#[from] CanonicalError),
}

/// A sealed entry: its sequence number, hash, and line bytes (JCS plus `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    pub seq: u64,
    pub hash: String,
    pub line: Vec<u8>,
}

impl SealedEntry {
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// Lowercase hex of SHA-256 over `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    hex_lower(&digest)
}

/// Lowercase hex encoding.
pub fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// True for exactly 64 lowercase hex digits.
pub fn is_hash_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a user-chosen kind (not `genesis`).
pub fn check_kind(kind: &str) -> Result<(), EntryError> {
    if kind == GENESIS_KIND || kind == super::checkpoint::CHECKPOINT_KIND {
        return Err(EntryError::ReservedKind {
            kind: kind.to_owned(),
        });
    }
    let ok = !kind.is_empty()
        && kind.len() <= MAX_KIND_LEN
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(EntryError::BadKind {
            kind: kind.to_owned(),
        })
    }
}

/// Checks that a payload is an object whose numbers and depth can be recorded exactly, and
/// returns its members.
pub fn into_payload(payload: serde_json::Value) -> Result<Map<String, Value>, EntryError> {
    let found = match payload {
        Value::Object(map) => {
            // The payload sits one level inside the entry object.
            for value in map.values() {
                canonical::check_recordable(value, canonical::MAX_DEPTH - 2)?;
            }
            return Ok(map);
        }
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
    };
    Err(EntryError::PayloadNotObject { found })
}

/// Builds the line for entry `seq`. `kind` is not validated here (see [`check_kind`]) so that
/// genesis entries use the same path.
pub fn seal(
    seq: u64,
    ts: &str,
    kind: &str,
    payload: &Map<String, Value>,
    prev_hash: &str,
) -> Result<SealedEntry, EntryError> {
    let mut body = Map::new();
    body.insert("kind".into(), Value::String(kind.to_owned()));
    body.insert("payload".into(), Value::Object(payload.clone()));
    body.insert("prev_hash".into(), Value::String(prev_hash.to_owned()));
    body.insert("seq".into(), Value::from(seq));
    body.insert("ts".into(), Value::String(ts.to_owned()));
    body.insert("v".into(), Value::from(FORMAT_VERSION));
    let mut hashed = Vec::with_capacity(256);
    canonical::write_canonical_object(&body, &mut hashed)?;
    let hash = sha256_hex(&hashed);
    let mut line = Vec::with_capacity(hashed.len() + HASH_MEMBER_LEN + 1);
    line.extend_from_slice(b"{\"hash\":\"");
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\",");
    line.extend_from_slice(&hashed[1..]);
    line.push(b'\n');
    Ok(SealedEntry { seq, hash, line })
}

/// The payload of a segment's genesis entry.
pub fn genesis_payload(
    ledger_id: &str,
    created: &str,
    segment: u32,
    prev_segment_hash: Option<&str>,
) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("created".into(), Value::String(created.to_owned()));
    p.insert("ledger_id".into(), Value::String(ledger_id.to_owned()));
    p.insert("segment".into(), Value::from(segment));
    if let Some(h) = prev_segment_hash {
        p.insert("prev_segment_hash".into(), Value::String(h.to_owned()));
    }
    p
}

/// The tip of a chain: what the next entry needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    pub next_seq: u64,
    pub prev_hash: String,
}

impl Tip {
    /// The tip of an empty ledger.
    pub fn empty() -> Self {
        Self {
            next_seq: 0,
            prev_hash: ZERO_HASH.to_owned(),
        }
    }

    /// The tip after `head`.
    pub fn after(head: &Head) -> Self {
        Self {
            next_seq: head.seq + 1,
            prev_hash: head.hash.clone(),
        }
    }

    /// Seals the next entry and advances the tip.
    pub fn append(
        &mut self,
        ts: &str,
        kind: &str,
        payload: &Map<String, Value>,
    ) -> Result<SealedEntry, EntryError> {
        let sealed = seal(self.next_seq, ts, kind, payload, &self.prev_hash)?;
        self.next_seq += 1;
        self.prev_hash.clone_from(&sealed.hash);
        Ok(sealed)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sealed_line_is_canonical_and_hash_covers_body() {
        let payload = json!({"b": 1.5, "a": "é", "n": [1, 2e21]});
        let sealed = seal(
            7,
            "2026-11-28T16:25:09.000000Z",
            "estimate",
            payload.as_object().unwrap(),
            ZERO_HASH,
        )
        .unwrap();
        let text = std::str::from_utf8(&sealed.line).unwrap();
        let value: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(
            canonical::to_canonical_string(&value).unwrap(),
            text.trim_end()
        );
        let mut body = value.as_object().unwrap().clone();
        let recorded = body.remove("hash").unwrap();
        let computed = sha256_hex(&canonical::to_canonical_vec(&Value::Object(body)).unwrap());
        assert_eq!(recorded, Value::String(computed));
        assert!(text.contains(r#""n":[1,2e+21]"#));
    }

    #[test]
    fn known_hash_of_a_fixed_entry() {
        // Hashed bytes spelled out by hand; digest from `printf %s '<bytes>' | sha256sum`.
        let bytes = r#"{"kind":"genesis","payload":{},"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","seq":0,"ts":"1970-01-01T00:00:00.000000Z","v":1}"#;
        let sealed = seal(
            0,
            "1970-01-01T00:00:00.000000Z",
            GENESIS_KIND,
            &Map::new(),
            ZERO_HASH,
        )
        .unwrap();
        assert_eq!(sealed.hash, sha256_hex(bytes.as_bytes()));
        assert_eq!(
            sealed.hash,
            "35fcb6a6b05856fa7d64876c849dc3d3e831874589772e696eaef7a16133143c"
        );
    }

    #[test]
    fn kinds_are_checked() {
        assert!(check_kind("estimate").is_ok());
        assert!(matches!(
            check_kind("genesis"),
            Err(EntryError::ReservedKind { .. })
        ));
        assert!(matches!(
            check_kind("checkpoint"),
            Err(EntryError::ReservedKind { .. })
        ));
        assert!(check_kind("").is_err());
        assert!(check_kind("a b").is_err());
        assert!(matches!(
            into_payload(json!([1])),
            Err(EntryError::PayloadNotObject { .. })
        ));
    }
}
