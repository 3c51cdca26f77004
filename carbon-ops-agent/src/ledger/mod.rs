//! Tamper-evident ledger: RFC 8785 canonical JSON lines in a SHA-256 hash chain.
//!
//! `docs/ledger.md` is the specification. Pure parts: [`canonical`] (JCS), [`chain`] (entries
//! and hashes), [`linecheck`], [`fastpath`], [`verify`] and [`problem`] (every break), [`ts`] (timestamps). I/O parts:
//! [`segments`] (file naming), [`head`] (the head file), [`recover`] (torn tails), [`store`]
//! (open, durable appends, rotation), [`writer`] (group commit for many threads), [`files`]
//! (verifying files on disk). [`cli`] backs `carbon-ops ledger …`.

pub mod canonical;
pub mod chain;
pub mod checkpoint;
pub mod cli;
pub mod fastpath;
pub mod files;
pub mod head;
pub mod linecheck;
pub mod problem;
pub mod recover;
pub mod segments;
pub mod store;
pub mod ts;
pub mod verify;
pub mod writer;

pub use chain::Head;
pub use files::{VerifyOptions, verify_ledger};
pub use problem::{Break, Problem, Report};
pub use store::{LedgerError, OpenReport, StoreOptions};
pub use writer::{Appended, LedgerHandle, LedgerWriter};

use serde_json::{Map, Value};

/// The payload recorded for an append by a non-root socket peer: the peer's payload wrapped
/// with the kernel-reported uid, so a client can neither omit nor forge it.
pub fn peer_payload(uid: u32, payload: Value) -> Value {
    let mut wrapped = Map::new();
    wrapped.insert("peer_uid".into(), Value::from(uid));
    wrapped.insert("data".into(), payload);
    Value::Object(wrapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn peer_payload_wraps_so_the_uid_cannot_be_forged() {
        let forged = json!({"peer_uid": 0, "co2e_g": 1.5});
        assert_eq!(
            peer_payload(1000, forged.clone()),
            json!({"peer_uid": 1000, "data": forged})
        );
    }
}
