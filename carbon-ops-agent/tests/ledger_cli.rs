//! `carbon-ops ledger verify|append|show` through their clap definitions and `run_to`.

use carbon_ops::ledger::cli::{LedgerCommand, run_to};
use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: LedgerCommand,
}

fn run(args: &[&str]) -> (i32, String) {
    let cli = Cli::try_parse_from(std::iter::once("ledger").chain(args.iter().copied()))
        .expect("arguments parse");
    let mut out = Vec::new();
    let code = run_to(cli.cmd, &mut out).expect("command runs");
    (code, String::from_utf8(out).expect("utf8"))
}

#[test]
fn append_show_verify_and_tamper() {
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().join("l.jsonl");
    let path = base.to_str().expect("utf8 path");
    let (code, out) = run(&[
        "append",
        path,
        "--kind",
        "note",
        "--payload",
        r#"{"b": 2, "a": "ü"}"#,
    ]);
    assert_eq!(code, 0);
    let appended: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(appended["seq"], 1);
    let hash = appended["hash"].as_str().expect("hash").to_owned();
    run(&["append", path, "--kind", "note", "--payload", r#"{"n": 3}"#]);

    let (code, out) = run(&["verify", path]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact, 3 entries"), "{out}");
    let (code, _) = run(&["verify", path, "--expect-head", &format!("1:{hash}")]);
    assert_eq!(code, 0);
    let (code, out) = run(&["verify", path, "--expect-head", &format!("2:{hash}")]);
    assert_eq!(code, 1, "{out}");

    let (_, shown) = run(&["show", path]);
    assert!(shown.contains(r#"{"a":"ü","b":2}"#), "{shown}");
    let (_, raw) = run(&["show", path, "--json"]);
    assert_eq!(raw, std::fs::read_to_string(&base).expect("read"));

    // Tamper with two entries: both are listed, exit code 1, JSON lists both.
    let text = std::fs::read_to_string(&base).expect("read");
    let tampered = text
        .replace(r#""b":2"#, r#""b":3"#)
        .replace(r#""n":3"#, r#""n":4"#);
    std::fs::write(&base, tampered).expect("write");
    let (code, out) = run(&["verify", path]);
    assert_eq!(code, 1);
    assert!(out.contains("seq 1 ") && out.contains("seq 2 "), "{out}");
    let (code, out) = run(&["verify", path, "--json"]);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(out.trim()).expect("json report");
    assert_eq!(report["intact"], false);
    let seqs: Vec<&Value> = report["breaks"]
        .as_array()
        .expect("breaks")
        .iter()
        .map(|b| &b["seq"])
        .collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(report["breaks"][0]["problem"], "bad_hash");
}

#[test]
fn bad_arguments_are_explained() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("l.jsonl");
    let cli = Cli::try_parse_from([
        "ledger",
        "verify",
        path.to_str().expect("utf8"),
        "--expect-head",
        "xyz",
    ])
    .expect("parse");
    let err = run_to(cli.cmd, &mut Vec::new()).expect_err("bad head");
    assert!(err.to_string().contains("64 lowercase hex"), "{err}");
    let cli = Cli::try_parse_from([
        "ledger",
        "append",
        path.to_str().expect("utf8"),
        "--kind",
        "k",
        "--payload",
        "[1",
    ])
    .expect("parse");
    assert!(run_to(cli.cmd, &mut Vec::new()).is_err());
}

#[test]
fn checkpoint_and_verify_with_public_key() {
    let dir = tempfile::tempdir().expect("dir");
    let base = dir.path().join("l.jsonl");
    let path = base.to_str().expect("utf8 path");
    let key_file = dir.path().join("key");
    let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    std::fs::write(&key_file, format!("{seed}\n")).expect("key file");
    run(&["append", path, "--kind", "note", "--payload", "{}"]);
    let (code, out) = run(&[
        "checkpoint",
        path,
        "--key-file",
        key_file.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 0, "{out}");
    // RFC 8032 §7.1 TEST 1 public key for that seed.
    let public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let (code, out) = run(&["verify", path, "--public-key", public, "--json"]);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(report["checkpoints_verified"], 1);
    let stranger =
        carbon_ops::ledger::checkpoint::CheckpointSigner::from_seed_hex(&"07".repeat(32))
            .expect("seed")
            .public_key_hex();
    let (code, _) = run(&["verify", path, "--public-key", &stranger]);
    assert_eq!(code, 1);
}
