//! The tamper matrix of issue 6: every single-byte change, deleted first/middle/last lines,
//! swapped and duplicated lines, and a forged line with a recomputed hash are all detected,
//! each with the break the specification names.

use carbon_ops::ledger::chain::seal;
use carbon_ops::ledger::segments::head_path;
use carbon_ops::ledger::verify::HeadExpectation;
use carbon_ops::ledger::verify::{check_line, check_line_exact};
use carbon_ops::ledger::{
    LedgerWriter, Problem, Report, StoreOptions, VerifyOptions, verify_ledger,
};
use serde_json::json;
use std::path::{Path, PathBuf};

struct Fixture {
    _dir: tempfile::TempDir,
    base: PathBuf,
    lines: Vec<Vec<u8>>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = dir.path().join("ledger.jsonl");
    let (writer, _) = LedgerWriter::open(&base, StoreOptions::default()).expect("open");
    let h = writer.handle();
    h.append(
        "estimate",
        json!({"pid": 4242, "comm": "python3", "energy_uj": 123_456_789, "co2e_g": 0.0123}),
    )
    .expect("append");
    h.append(
        "note",
        json!({"text": "Grüße, 世界 😀", "nested": {"a": [1, 2.5, -3e-7]}}),
    )
    .expect("append");
    h.append(
        "estimate",
        json!({"pid": 7, "energy_uj": 9_007_199_254_740_992_u64}),
    )
    .expect("append");
    h.append("exit", json!({"pid": 4242, "final_uj": 1}))
        .expect("append");
    writer.close();
    let bytes = std::fs::read(&base).expect("read ledger");
    let lines = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    Fixture {
        _dir: dir,
        base,
        lines,
    }
}

fn verify(base: &Path) -> Report {
    verify_ledger(
        base,
        &VerifyOptions {
            use_head_file: true,
            ..VerifyOptions::default()
        },
    )
}

fn write_lines(base: &Path, lines: &[Vec<u8>]) {
    std::fs::write(base, lines.concat()).expect("write tampered copy");
}

fn problems(report: &Report) -> Vec<(Option<u64>, Problem)> {
    report
        .breaks
        .iter()
        .map(|b| (b.seq, b.problem.clone()))
        .collect()
}

#[test]
fn untouched_ledger_verifies() {
    let f = fixture();
    let report = verify(&f.base);
    assert!(report.is_intact(), "{:?}", report.breaks);
    assert_eq!(report.entries, 5);
    assert_eq!(f.lines.len(), 5);
    assert_eq!(report.head.map(|h| h.seq), Some(4));
}

#[test]
fn every_single_byte_change_is_detected() {
    let f = fixture();
    let original = f.lines.concat();
    let mut tried = 0;
    for pos in 0..original.len() {
        for replacement in [original[pos] ^ 0x01, original[pos] ^ 0x20, b'0', b'\n'] {
            if replacement == original[pos] {
                continue;
            }
            let mut copy = original.clone();
            copy[pos] = replacement;
            std::fs::write(&f.base, &copy).expect("write");
            let report = verify(&f.base);
            assert!(
                !report.is_intact(),
                "byte {pos} changed to {replacement:#04x} went undetected"
            );
            tried += 1;
        }
    }
    assert!(tried > 3 * original.len());
}

#[test]
fn deleting_the_first_line_is_detected() {
    let f = fixture();
    write_lines(&f.base, &f.lines[1..]);
    let found = problems(&verify(&f.base));
    assert!(
        found.contains(&(
            Some(1),
            Problem::MissingGenesis {
                found_kind: "estimate".into()
            }
        )),
        "{found:?}"
    );
}

#[test]
fn deleting_a_middle_line_is_detected() {
    let f = fixture();
    let mut lines = f.lines.clone();
    lines.remove(2);
    write_lines(&f.base, &lines);
    let found = problems(&verify(&f.base));
    assert!(
        found.contains(&(
            Some(3),
            Problem::SeqGap {
                expected: 2,
                found: 3
            }
        )),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(s, p)| *s == Some(3) && matches!(p, Problem::BadPrevHash { .. }))
    );
}

#[test]
fn deleting_the_last_line_is_detected_through_the_head_file() {
    let f = fixture();
    write_lines(&f.base, &f.lines[..4]);
    // The chain that remains is internally consistent: only the head file reveals the loss.
    let without_head = verify_ledger(&f.base, &VerifyOptions::default());
    assert!(without_head.is_intact());
    let found = problems(&verify(&f.base));
    assert_eq!(
        found,
        vec![(
            Some(4),
            Problem::Truncated {
                against: "head file".into(),
                head_seq: 4,
                last_seq: Some(3)
            }
        )]
    );
    // A missing head file is itself a break (truncation cannot be ruled out).
    std::fs::remove_file(head_path(&f.base)).expect("remove head");
    assert_eq!(verify(&f.base).breaks[0].problem, Problem::HeadFileMissing);
    // A garbled head file is reported, and refuses an open rather than being replaced.
    std::fs::write(head_path(&f.base), b"{\"seq\":4}\n").expect("garble head");
    assert!(matches!(
        verify(&f.base).breaks[0].problem,
        Problem::HeadFile { .. }
    ));
    let opened = carbon_ops::ledger::LedgerWriter::open(&f.base, StoreOptions::default());
    assert!(matches!(
        opened,
        Err(carbon_ops::ledger::LedgerError::Corrupt { .. })
    ));
}

#[test]
fn expect_head_detects_truncation_and_rewrites() {
    let f = fixture();
    let last: serde_json::Value = serde_json::from_slice(&f.lines[4]).expect("json");
    let hash = last["hash"].as_str().expect("hash").to_owned();
    let expect = |seq: Option<u64>, hash: &str| VerifyOptions {
        expect_head: Some(HeadExpectation {
            source: "--expect-head".into(),
            seq,
            hash: hash.into(),
        }),
        ..VerifyOptions::default()
    };
    assert!(verify_ledger(&f.base, &expect(Some(4), &hash)).is_intact());
    assert!(verify_ledger(&f.base, &expect(None, &hash)).is_intact());
    write_lines(&f.base, &f.lines[..4]);
    assert!(!verify_ledger(&f.base, &expect(None, &hash)).is_intact());
    assert!(!verify_ledger(&f.base, &expect(Some(4), &hash)).is_intact());
}

#[test]
fn swapping_two_lines_is_detected() {
    let f = fixture();
    let mut lines = f.lines.clone();
    lines.swap(2, 3);
    write_lines(&f.base, &lines);
    let found = problems(&verify(&f.base));
    assert!(
        found.contains(&(
            Some(3),
            Problem::SeqGap {
                expected: 2,
                found: 3
            }
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            Some(2),
            Problem::SeqOutOfOrder {
                expected: 4,
                found: 2
            }
        )),
        "{found:?}"
    );
}

#[test]
fn duplicating_a_line_is_detected() {
    let f = fixture();
    let mut lines = f.lines.clone();
    lines.insert(3, f.lines[2].clone());
    write_lines(&f.base, &lines);
    let found = problems(&verify(&f.base));
    assert_eq!(found, vec![(Some(2), Problem::Duplicate { seq: 2 })]);
}

#[test]
fn forged_lines_with_recomputed_hashes_are_detected() {
    let f = fixture();
    let entry: serde_json::Value = serde_json::from_slice(&f.lines[2]).expect("json");
    let ts = entry["ts"].as_str().expect("ts");
    let payload = json!({"text": "forged"});
    let payload = payload.as_object().expect("object");
    // Inserted after seq 2 as seq 3, with a self-consistent hash but a made-up prev_hash.
    let forged = seal(3, ts, "note", payload, &"ab".repeat(32)).expect("seal");
    let mut lines = f.lines.clone();
    lines.insert(3, forged.line.clone());
    write_lines(&f.base, &lines);
    let found = problems(&verify(&f.base));
    assert!(
        found
            .iter()
            .any(|(s, p)| *s == Some(3) && matches!(p, Problem::BadPrevHash { .. })),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .all(|(_, p)| !matches!(p, Problem::BadHash { .. })),
        "the forged hash is self-consistent"
    );
    // Replacing seq 2 with a forgery linked correctly to seq 1 breaks the link from seq 3.
    let prev = entry["prev_hash"].as_str().expect("prev");
    let replaced = seal(2, ts, "note", payload, prev).expect("seal");
    let mut lines = f.lines.clone();
    lines[2] = replaced.line;
    write_lines(&f.base, &lines);
    let found = problems(&verify(&f.base));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(matches!(&found[0], (Some(3), Problem::BadPrevHash { .. })));
}

#[test]
fn every_break_is_reported_not_only_the_first() {
    let f = fixture();
    let mut lines = f.lines.clone();
    for i in [1, 3] {
        let text = String::from_utf8(lines[i].clone()).expect("utf8");
        lines[i] = text.replacen("\"pid\":", "\"pid\":1", 1).into_bytes();
    }
    write_lines(&f.base, &lines);
    let report = verify(&f.base);
    let seqs: Vec<_> = report.breaks.iter().map(|b| b.seq).collect();
    assert_eq!(seqs, vec![Some(1), Some(3)], "{:?}", report.breaks);
    assert!(
        report
            .breaks
            .iter()
            .all(|b| matches!(b.problem, Problem::BadHash { .. }))
    );
    assert_eq!(report.first_bad_seq(), Some(1));
}

#[test]
fn non_canonical_but_equivalent_lines_are_detected() {
    let f = fixture();
    let mut lines = f.lines.clone();
    let text = String::from_utf8(lines[2].clone()).expect("utf8");
    lines[2] = text.replacen("{\"hash\"", "{ \"hash\"", 1).into_bytes();
    write_lines(&f.base, &lines);
    let found = problems(&verify(&f.base));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(matches!(&found[0], (Some(2), Problem::NotCanonical { .. })));
}

#[test]
fn fast_and_exact_line_checks_agree_on_every_mutation() {
    let f = fixture();
    for line in &f.lines {
        let line = &line[..line.len() - 1];
        assert_eq!(check_line(line), check_line_exact(line));
        for pos in 0..line.len() {
            let mut copy = line.to_vec();
            copy[pos] ^= 0x01;
            assert_eq!(check_line(&copy), check_line_exact(&copy), "byte {pos}");
        }
    }
}
