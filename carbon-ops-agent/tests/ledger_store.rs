//! The durable store and group-commit writer: creation, reopening, torn-tail quarantine,
//! refusal on mid-file corruption, rotation across segments, concurrency, and what appends refuse.

use carbon_ops::ledger::canonical::number_from_f64;
use carbon_ops::ledger::chain::{EntryError, ZERO_HASH};
use carbon_ops::ledger::head::read_head;
use carbon_ops::ledger::segments::{quarantine_path, segment_path};
use carbon_ops::ledger::{
    LedgerError, LedgerWriter, Problem, StoreOptions, VerifyOptions, verify_ledger,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;

fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read segment");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn intact(base: &Path) -> bool {
    let report = verify_ledger(
        base,
        &VerifyOptions {
            use_head_file: true,
            ..VerifyOptions::default()
        },
    );
    report.breaks.is_empty()
}

#[test]
fn a_missing_ledger_directory_is_created() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().join("var/lib/carbon-ops/ledger.jsonl");
    let (writer, report) = LedgerWriter::open(&base, StoreOptions::default()).expect("create");
    assert!(report.created);
    writer.close();
    let mode = std::fs::metadata(base.parent().expect("parent"))
        .expect("dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o750 & !umask());
    assert!(intact(&base));
}

fn umask() -> u32 {
    // SAFETY: reads the umask by setting it and restoring it at once.
    let m = unsafe { libc::umask(0o022) };
    // SAFETY: as above.
    unsafe { libc::umask(m) };
    m
}

#[test]
fn create_writes_genesis_and_head_then_reopen_continues() {
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().join("ledger.jsonl");
    let (writer, report) = LedgerWriter::open(&base, StoreOptions::default()).expect("create");
    assert!(report.created);
    assert_eq!(report.head.seq, 0);
    let first = writer
        .handle()
        .append("note", json!({"n": 1}))
        .expect("append");
    assert_eq!(first.seq, 1);
    writer.close();
    let entries = lines(&base);
    let genesis = &entries[0];
    assert_eq!(genesis["kind"], "genesis");
    assert_eq!(genesis["seq"], 0);
    assert_eq!(genesis["v"], 1);
    assert_eq!(genesis["prev_hash"], ZERO_HASH);
    assert_eq!(genesis["payload"]["segment"], 0);
    assert_eq!(
        genesis["payload"]["ledger_id"].as_str().map(str::len),
        Some(32)
    );
    assert_eq!(genesis["payload"]["created"], genesis["ts"]);
    assert_eq!(entries[1]["prev_hash"], genesis["hash"]);
    assert_eq!(
        read_head(&base).expect("head").map(|h| (h.seq, h.hash)),
        Some((1, first.hash.clone()))
    );

    let (writer, report) = LedgerWriter::open(&base, StoreOptions::default()).expect("reopen");
    assert!(!report.created && report.quarantined.is_empty());
    assert_eq!(report.head.hash, first.hash);
    assert_eq!(
        writer
            .handle()
            .append("note", json!({"n": 2}))
            .expect("append")
            .seq,
        2
    );
    assert!(writer.handle().verify().is_intact());
    writer.close();
    assert!(intact(&base));
}

#[test]
fn appends_refuse_what_cannot_be_recorded_exactly() {
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().join("ledger.jsonl");
    let (writer, _) = LedgerWriter::open(&base, StoreOptions::default()).expect("create");
    let h = writer.handle();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = number_from_f64(bad).expect_err("refused");
        assert!(err.to_string().contains("not finite"));
    }
    let err = h
        .append("x", json!({"big": 9_007_199_254_740_993_u64}))
        .expect_err("inexact");
    assert!(err.to_string().contains("2^53"), "{err}");
    assert!(matches!(
        h.append("x", json!([1])),
        Err(LedgerError::Entry(EntryError::PayloadNotObject { .. }))
    ));
    assert!(matches!(
        h.append("genesis", json!({})),
        Err(LedgerError::Entry(EntryError::ReservedKind { .. }))
    ));
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!([deep]);
    }
    assert!(h.append("x", json!({ "deep": deep })).is_err());
    // Non-ASCII text and the extremes that are exact are recorded and verify.
    let ok = json!({"s": "naïve — ✓ 😀 \u{0}", "max": 9_007_199_254_740_992_u64, "min": -9_007_199_254_740_992_i64,
                    "tiny": 5e-324, "huge": 1.7976931348623157e308});
    let appended = h.append("note", ok.clone()).expect("recorded");
    assert_eq!(appended.seq, 1);
    writer.close();
    assert_eq!(lines(&base)[1]["payload"], ok);
    assert!(intact(&base));
}

#[test]
fn torn_tails_are_quarantined_not_dropped() {
    for torn in [
        &b"{\"hash\":\"ab"[..],
        b"garbage that is not json\n",
        b"\0\0\0\0",
    ] {
        let dir = tempfile::tempdir().expect("dir");
        let base = dir.path().join("ledger.jsonl");
        let (writer, _) = LedgerWriter::open(&base, StoreOptions::default()).expect("create");
        writer
            .handle()
            .append("note", json!({"n": 1}))
            .expect("append");
        writer.close();
        let good_len = std::fs::metadata(&base).expect("meta").len();
        let mut bytes = std::fs::read(&base).expect("read");
        bytes.extend_from_slice(torn);
        std::fs::write(&base, &bytes).expect("write torn");

        let (writer, report) =
            LedgerWriter::open(&base, StoreOptions::default()).expect("recovers");
        assert_eq!(report.quarantined.len(), 1);
        assert_eq!(report.quarantined[0].offset, good_len);
        assert_eq!(report.quarantined[0].bytes, torn.len() as u64);
        let mut expected = torn.to_vec();
        if expected.last() != Some(&b'\n') {
            expected.push(b'\n');
        }
        assert_eq!(
            std::fs::read(quarantine_path(&base)).expect("quarantine"),
            expected
        );
        assert_eq!(
            writer
                .handle()
                .append("note", json!({"n": 2}))
                .expect("append")
                .seq,
            2
        );
        writer.close();
        assert!(intact(&base));
    }
}

#[test]
fn corruption_in_the_middle_refuses_appends_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().join("ledger.jsonl");
    let (writer, _) = LedgerWriter::open(&base, StoreOptions::default()).expect("create");
    for n in 0..4 {
        writer
            .handle()
            .append("note", json!({ "n": n }))
            .expect("append");
    }
    writer.close();
    let text = std::fs::read_to_string(&base).expect("read");
    let tampered = text.replacen("{\"n\":1}", "{\"n\":7}", 1);
    std::fs::write(&base, &tampered).expect("tamper");
    let err = LedgerWriter::open(&base, StoreOptions::default()).expect_err("refused");
    match &err {
        LedgerError::Corrupt { first_bad_seq, .. } => assert_eq!(*first_bad_seq, Some(2)),
        other => panic!("expected Corrupt, got {other}"),
    }
    assert!(err.to_string().contains("first: seq 2 "), "{err}");
    assert_eq!(
        std::fs::read_to_string(&base).expect("read"),
        tampered,
        "history untouched"
    );
    // A ledger cut short behind its head file is refused too.
    std::fs::write(
        &base,
        text.lines()
            .take(3)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .expect("cut");
    assert!(matches!(
        LedgerWriter::open(&base, StoreOptions::default()),
        Err(LedgerError::Corrupt { .. })
    ));
}

#[test]
fn rotation_continues_the_chain_across_segments() {
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().join("ledger.jsonl");
    let options = StoreOptions {
        max_segment_bytes: 1_000,
        ..StoreOptions::default()
    };
    let (writer, _) = LedgerWriter::open(&base, options.clone()).expect("create");
    for n in 0..30 {
        writer
            .handle()
            .append("note", json!({ "n": n, "pad": "x".repeat(100) }))
            .expect("append");
    }
    writer.close();
    let (writer, _) = LedgerWriter::open(&base, options).expect("reopen");
    writer
        .handle()
        .append("note", json!({"after": "reopen"}))
        .expect("append");
    writer.close();
    let report = verify_ledger(
        &base,
        &VerifyOptions {
            use_head_file: true,
            ..VerifyOptions::default()
        },
    );
    assert!(report.is_intact(), "{:?}", report.breaks);
    assert!(report.segments >= 4, "{} segments", report.segments);
    let mut all = Vec::new();
    for k in 0..report.segments {
        let seg = lines(&segment_path(&base, k));
        assert_eq!(seg[0]["kind"], "genesis");
        assert_eq!(seg[0]["payload"]["segment"], k);
        if k > 0 {
            let prev: &Value = all.last().expect("previous entry");
            assert_eq!(seg[0]["prev_hash"], prev["hash"]);
            assert_eq!(seg[0]["payload"]["prev_segment_hash"], prev["hash"]);
            assert_eq!(
                seg[0]["payload"]["ledger_id"],
                all[0]["payload"]["ledger_id"]
            );
        }
        all.extend(seg);
    }
    let seqs: Vec<u64> = all
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    // Losing a middle segment is a break.
    std::fs::remove_file(segment_path(&base, 1)).expect("remove");
    let report = verify_ledger(&base, &VerifyOptions::default());
    assert!(
        report
            .breaks
            .iter()
            .any(|b| b.problem == Problem::MissingSegment { index: 1 })
    );
}

#[test]
fn concurrent_appends_are_group_committed_without_gaps() {
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().join("ledger.jsonl");
    let (writer, _) = LedgerWriter::open(&base, StoreOptions::default()).expect("create");
    let threads = 8;
    let per_thread = 40;
    let seqs: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let h = writer.handle();
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            h.append("note", json!({"t": t, "i": i}))
                                .expect("append")
                                .seq
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|j| j.join().expect("thread"))
            .collect()
    });
    let live = writer.handle().verify();
    assert!(live.is_intact(), "{:?}", live.breaks);
    writer.close();
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique, (1..=threads * per_thread).collect());
    let entries = lines(&base);
    assert_eq!(entries.len() as u64, threads * per_thread + 1);
    // Entries of one batch share its timestamp: fewer timestamps than entries means batching.
    let stamps: BTreeSet<&str> = entries.iter().filter_map(|e| e["ts"].as_str()).collect();
    assert!(
        stamps.len() < entries.len(),
        "{} batches for {} entries",
        stamps.len(),
        entries.len()
    );
    assert!(intact(&base));
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().join("ledger.jsonl");
    let (writer, _) = LedgerWriter::open(&base, StoreOptions::default()).expect("create");
    assert!(matches!(
        LedgerWriter::open(&base, StoreOptions::default()),
        Err(LedgerError::Locked { .. })
    ));
    writer.close();
    assert!(LedgerWriter::open(&base, StoreOptions::default()).is_ok());
}
