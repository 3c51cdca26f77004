//! The socket service under real conditions: permissions, peer credentials, stale and live
//! sockets, shutdown, and every kind of bad client. Runs the real agent in procfs mode.

mod common;

use std::{
    io::{Read, Write},
    os::unix::{fs::MetadataExt, net::UnixStream},
    process::Command,
    time::{Duration, Instant},
};

use common::{Agent, FakeRapl, LineClient};
use serde_json::json;

fn gid_of(group: &str) -> Option<u32> {
    let out = Command::new("getent")
        .args(["group", group])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)?
        .trim()
        .parse()
        .ok()
}

#[test]
fn socket_mode_and_group() {
    let rapl = FakeRapl::start();
    let Some(gid) = gid_of("daemon") else {
        eprintln!("SKIPPED: no `daemon` group");
        return;
    };
    let agent = Agent::start(&rapl, "procfs", &["--socket-group", "daemon"]);
    let meta = std::fs::metadata(&agent.socket).expect("socket");
    assert_eq!(meta.mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), gid);
    drop(agent);
    // A group that does not exist: root-only socket, the agent still starts.
    let agent = Agent::start(&rapl, "procfs", &["--socket-group", "no-such-group-carbon"]);
    let meta = std::fs::metadata(&agent.socket).expect("socket");
    assert_eq!(meta.mode() & 0o777, 0o600);
}

#[test]
fn peer_credentials_limit_what_others_see() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("setpriv").arg("--version").output().is_err()
    {
        eprintln!("SKIPPED: needs root and setpriv to act as another user");
        return;
    }
    let rapl = FakeRapl::start();
    let agent = Agent::start(&rapl, "procfs", &["--socket-group", "nogroup"]);
    // The socket's directory must be reachable by `nobody`.
    let dir = agent.socket.parent().expect("dir").to_path_buf();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_carbon-ops"))
            .arg("--socket")
            .arg(&agent.socket)
            .args(args)
            .output()
            .expect("setpriv")
    };
    // Wait until the agent knows its own process, then for the coarse copy other users read
    // (published once per --resolution, 1 s) to include it.
    let mut root_client = agent.client();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while root_client.op("process", json!({"pid": agent.pid()}))["ok"] != true {
        assert!(
            std::time::Instant::now() < until,
            "the agent never saw itself"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1300));
    // Root's process: refused with a clear error.
    let out = as_nobody(&["process", &agent.pid().to_string(), "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("permission_denied"), "{err}");
    // Host status: allowed, at the coarse resolution.
    let out = as_nobody(&["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["resolution_ms"], 1000);
    // Root sees its own process, at full resolution.
    let mut c = agent.client();
    std::thread::sleep(Duration::from_millis(200));
    let me = c.op("status", json!({}));
    assert_eq!(me["result"]["resolution_ms"], 100);
}

#[test]
fn stale_socket_is_replaced_live_one_is_not_stolen() {
    let rapl = FakeRapl::start();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("agent.sock");
    // A stale socket: bound, then its owner is gone.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let agent = Agent::start_at(&rapl, "procfs", Some(&path), &[]);
    let mut c = LineClient::connect(&path);
    assert_eq!(c.op("status", json!({}))["ok"], true);
    // A second agent on the same, live socket refuses to start.
    let out = Command::new(env!("CARGO_BIN_EXE_carbon-ops-agent"))
        .args([
            "--rapl-mode",
            "sysfs",
            "--attribution",
            "procfs",
            "--no-ledger",
        ])
        .arg("--powercap-root")
        .arg(&rapl.class_root)
        .arg("--socket")
        .arg(&path)
        .output()
        .expect("second agent");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already serving"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The first one still serves.
    assert_eq!(c.op("status", json!({}))["ok"], true);
    drop(agent);
}

#[test]
fn sigterm_stops_in_order_and_removes_the_socket() {
    let rapl = FakeRapl::start();
    let agent = Agent::start(&rapl, "procfs", &[]);
    let path = agent.socket.clone();
    let status = agent.terminate();
    assert!(status.success(), "{status}");
    assert!(!path.exists(), "socket left behind");
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn bad_clients_get_errors_and_others_are_served() {
    let rapl = FakeRapl::start();
    let agent = Agent::start(&rapl, "procfs", &[]);
    let mut c = agent.client();
    let code = |v: serde_json::Value| v["error"]["code"].as_str().unwrap_or("").to_owned();
    // Malformed JSON, then a good request on the same connection.
    c.send_raw(b"{not json\n");
    assert_eq!(code(c.answer()), "bad_json");
    assert_eq!(c.op("status", json!({}))["ok"], true);
    // Unknown op, wrong types, wrong version, binary garbage.
    assert_eq!(code(c.op("launch_missiles", json!({}))), "unknown_op");
    assert_eq!(code(c.op("process", json!({"pid": "one"}))), "bad_request");
    assert_eq!(code(c.op("top", json!({"n": -3}))), "bad_request");
    assert_eq!(
        code(c.ask(json!({"v": 9, "op": "status"}))),
        "unsupported_version"
    );
    c.send_raw(&[0xff, 0x00, 0xfe, 0x80, b'\n']);
    assert_eq!(code(c.answer()), "bad_json");
    // Several requests in one write are answered in order, ids echoed.
    c.send_raw(b"{\"v\":1,\"op\":\"status\",\"id\":1}\n{\"v\":1,\"op\":\"nope\",\"id\":2}\n");
    assert_eq!(c.answer()["id"], 1);
    assert_eq!(c.answer()["id"], 2);
    // A client that connects and never writes does not block anyone.
    let _silent = UnixStream::connect(&agent.socket).expect("connect");
    // 1,000 idle connections at once.
    let idle: Vec<UnixStream> = (0..1000)
        .map(|_| UnixStream::connect(&agent.socket).expect("connect"))
        .collect();
    let mut fresh = agent.client();
    assert_eq!(fresh.op("status", json!({}))["ok"], true);
    drop(idle);
    // A 16 MiB line: refused with line_too_long, connection closed, memory bounded.
    let mut big = UnixStream::connect(&agent.socket).expect("connect");
    big.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let chunk = vec![b'x'; 1 << 20];
    let mut answer = Vec::new();
    for _ in 0..16 {
        if big.write_all(&chunk).is_err() {
            break; // closed by the agent after the cap: expected
        }
    }
    let _ = big.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("line_too_long"), "{text}");
    // A client that sends many requests and disconnects without reading.
    let mut rude = UnixStream::connect(&agent.socket).expect("connect");
    for _ in 0..2000 {
        let _ = rude.write_all(b"{\"v\":1,\"op\":\"status\"}\n");
    }
    drop(rude);
    // Everyone else is still served, and memory stayed bounded.
    let start = Instant::now();
    let mut after = agent.client();
    assert_eq!(after.op("status", json!({}))["ok"], true);
    assert!(start.elapsed() < Duration::from_secs(2));
    let rss = rss_kib(agent.pid());
    eprintln!("agent RSS after abuse: {rss} KiB");
    assert!(rss < 64 * 1024, "agent RSS {rss} KiB");
}

/// Every example request in `docs/protocol.md` gets an answer of the documented shape.
#[test]
fn protocol_document_examples_hold() {
    let doc = include_str!("../../docs/protocol.md");
    let rapl = FakeRapl::start();
    let agent = Agent::start(&rapl, "procfs", &[]);
    let mut c = agent.client();
    let mut checked = 0;
    let mut lines = doc.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(req) = line.strip_prefix("> ") else {
            continue;
        };
        let Some(expect) = lines.peek().and_then(|l| l.strip_prefix("< ")) else {
            continue;
        };
        let expect: serde_json::Value =
            serde_json::from_str(expect).expect("documented answer is JSON");
        c.send_raw(format!("{req}\n").as_bytes());
        let got = c.answer();
        assert_eq!(got["ok"], expect["ok"], "{req} → {got}");
        if expect["ok"] == false {
            assert_eq!(
                got["error"]["code"], expect["error"]["code"],
                "{req} → {got}"
            );
        } else {
            for key in expect["result"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                assert!(
                    got["result"].get(key).is_some(),
                    "{req}: answer lacks `{key}`: {got}"
                );
            }
        }
        assert_eq!(got.get("id"), expect.get("id"), "{req}");
        checked += 1;
    }
    assert!(checked >= 5, "the document has {checked} examples");
}
