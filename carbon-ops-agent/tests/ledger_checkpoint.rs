//! Optional Ed25519 checkpoints: written through the writer, verified with the public key, and
//! the attack they exist for — a chain rewritten with recomputed hashes — detected.

use carbon_ops::ledger::chain::seal;
use carbon_ops::ledger::checkpoint::{CheckpointSigner, CheckpointVerifier};
use carbon_ops::ledger::{
    LedgerError, LedgerWriter, Problem, StoreOptions, VerifyOptions, verify_ledger,
};
use serde_json::{Value, json};
use std::path::Path;

const SEED: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

fn options_with_key() -> StoreOptions {
    let signer = CheckpointSigner::from_seed_hex(SEED).expect("seed");
    StoreOptions {
        checkpoint_signer: Some(signer),
        ..StoreOptions::default()
    }
}

fn verify_with(base: &Path, public_hex: &str) -> carbon_ops::ledger::Report {
    let key = CheckpointVerifier::from_public_hex(public_hex).expect("public key");
    verify_ledger(
        base,
        &VerifyOptions {
            checkpoint_keys: vec![key],
            ..VerifyOptions::default()
        },
    )
}

#[test]
fn checkpoints_sign_the_previous_entry_and_catch_a_rewritten_chain() {
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().join("ledger.jsonl");
    let public = CheckpointSigner::from_seed_hex(SEED)
        .expect("seed")
        .public_key_hex();
    let (writer, _) = LedgerWriter::open(&base, options_with_key()).expect("open");
    let h = writer.handle();
    h.append("estimate", json!({"co2e_g": 1.25}))
        .expect("append");
    let first = h.checkpoint().expect("checkpoint");
    assert_eq!(first.seq, 2);
    h.append("estimate", json!({"co2e_g": 2.5}))
        .expect("append");
    h.checkpoint().expect("checkpoint");
    assert!(matches!(
        h.append("checkpoint", json!({})),
        Err(LedgerError::Entry(_))
    ));
    writer.close();

    let report = verify_with(&base, &public);
    assert!(report.is_intact(), "{:?}", report.breaks);
    assert_eq!(report.checkpoints_verified, 2);
    let text = std::fs::read_to_string(&base).expect("read");
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(entries[2]["payload"]["seq"], 1);
    assert_eq!(entries[2]["payload"]["hash"], entries[1]["hash"]);
    assert_eq!(entries[2]["payload"]["alg"], "ed25519");

    // A key that did not sign is reported.
    let stranger = CheckpointSigner::from_seed_hex(&"07".repeat(32))
        .expect("seed")
        .public_key_hex();
    let report = verify_with(&base, &stranger);
    assert_eq!(report.breaks.len(), 2);
    assert!(
        report
            .breaks
            .iter()
            .all(|b| matches!(b.problem, Problem::BadCheckpoint { .. }))
    );

    // Rewrite entry 1 and recompute every hash after it: the chain alone is intact again,
    // but the checkpoints no longer sign what precedes them.
    let mut prev = entries[0]["hash"].as_str().expect("hash").to_owned();
    let mut forged = vec![format!("{}\n", text.lines().next().expect("genesis"))];
    for (i, e) in entries.iter().enumerate().skip(1) {
        let mut payload = e["payload"].as_object().expect("payload").clone();
        if i == 1 {
            payload.insert("co2e_g".into(), json!(0.5));
        }
        let kind = e["kind"].as_str().expect("kind");
        let ts = e["ts"].as_str().expect("ts");
        let sealed = seal(i as u64, ts, kind, &payload, &prev).expect("seal");
        prev = sealed.hash.clone();
        forged.push(String::from_utf8(sealed.line).expect("utf8"));
    }
    std::fs::write(&base, forged.concat()).expect("write forgery");
    assert!(
        verify_ledger(&base, &VerifyOptions::default()).is_intact(),
        "hash chain alone cannot tell"
    );
    let report = verify_with(&base, &public);
    let bad: Vec<_> = report
        .breaks
        .iter()
        .filter(|b| matches!(b.problem, Problem::BadCheckpoint { .. }))
        .collect();
    assert_eq!(bad.len(), 2, "{:?}", report.breaks);
    assert_eq!(bad[0].seq, Some(2));
}

#[test]
fn checkpoint_without_a_key_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let (writer, _) =
        LedgerWriter::open(&dir.path().join("l.jsonl"), StoreOptions::default()).expect("open");
    assert!(matches!(
        writer.handle().checkpoint(),
        Err(LedgerError::NoSigningKey)
    ));
}
