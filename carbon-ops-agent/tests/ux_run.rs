//! `carbon-ops run` end to end: a command tree with known CPU time whose parent exits before
//! its children and with a non-zero code, exit codes (signals as 128 + n), the agent path
//! (`tree` rooted at run's own pid, minus run's own figures; `estimate` with the interval)
//! against a scripted agent, and the monitor-only path without one.

mod ux_common;

use std::{
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use ux_common::{FakeAgent, Script};

const TREE_ENV: &str = "CARBON_OPS_UX_TREE";

fn cpu_now_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn burn_cpu(seconds: f64) {
    let mut x = 1u64;
    while cpu_now_s() < seconds {
        for _ in 0..10_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
    }
    std::hint::black_box(x);
}

/// Child mode. `parent`: start two `child` processes, burn 0.1 s of CPU, exit 7 at once
/// (before the children finish). `child`: sleep 0.2 s (so the parent is gone), burn 0.3 s.
#[test]
fn tree_child() {
    let Ok(mode) = std::env::var(TREE_ENV) else {
        return;
    };
    let me = std::env::current_exe().expect("exe");
    if mode == "parent" {
        for _ in 0..2 {
            // Deliberately not waited for: the parent exits first and the children re-parent
            // to `carbon-ops run`, the subreaper, which must reap them.
            #[expect(clippy::zombie_processes, reason = "orphaned on purpose")]
            Command::new(&me)
                .args(["--exact", "tree_child", "--nocapture", "--test-threads=1"])
                .env(TREE_ENV, "child")
                .spawn()
                .expect("spawn child");
        }
        burn_cpu(0.1);
        std::process::exit(7);
    }
    std::thread::sleep(Duration::from_millis(200));
    burn_cpu(0.3);
    std::process::exit(0);
}

fn carbon_ops(socket: &Path, args: &[&str], cmd: &mut Vec<String>) -> (Output, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_json = dir.path().join("run.json");
    let mut all: Vec<String> = vec![
        "--socket".into(),
        socket.display().to_string(),
        "run".into(),
    ];
    all.extend(args.iter().map(|s| (*s).to_owned()));
    all.extend(["-o".into(), out_json.display().to_string(), "--".into()]);
    all.append(cmd);
    let out = Command::new(env!("CARGO_BIN_EXE_carbon-ops"))
        .args(&all)
        .env(TREE_ENV, "parent")
        .output()
        .expect("run carbon-ops");
    let text = std::fs::read_to_string(&out_json).unwrap_or_default();
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    (out, v)
}

fn tree_cmd() -> Vec<String> {
    let me = std::env::current_exe().expect("exe");
    vec![
        me.display().to_string(),
        "--exact".into(),
        "tree_child".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ]
}

#[test]
fn the_whole_tree_is_waited_for_and_counted_without_an_agent() {
    let started = Instant::now();
    let (out, v) = carbon_ops(Path::new("/nonexistent/agent.sock"), &[], &mut tree_cmd());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The parent's code, although its children ran on after it.
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert_eq!(v["exit_code"], 7);
    assert_eq!(v["schema"], "carbon-ops.run/1");
    assert_eq!(v["mode"], "monitor_only");
    assert!(v["energy"].is_null());
    assert!(
        v["energy_unavailable"]
            .as_str()
            .unwrap_or("")
            .contains("cannot reach"),
        "{v}"
    );
    // 0.1 s + 2 × 0.3 s of CPU burnt by the tree (test-harness start-up adds a little).
    let cpu =
        v["cpu"]["user_s"].as_f64().expect("user") + v["cpu"]["system_s"].as_f64().expect("sys");
    assert!((0.68..1.5).contains(&cpu), "cpu {cpu}: {v}");
    // run waited for the orphaned children (≥ 0.2 s sleep + 0.3 s CPU after the parent left).
    assert!(v["duration_s"].as_f64().expect("duration") >= 0.45, "{v}");
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert!(
        stderr.contains("energy unavailable (monitor_only)"),
        "{stderr}"
    );
}

#[test]
fn exit_codes_are_the_commands_and_signals_are_128_plus_n() {
    let none = Path::new("/nonexistent/agent.sock");
    let sh = |s: &str| vec!["sh".to_owned(), "-c".to_owned(), s.to_owned()];
    let (out, _) = carbon_ops(none, &[], &mut sh("exit 0"));
    assert_eq!(out.status.code(), Some(0));
    let (out, v) = carbon_ops(none, &[], &mut sh("exit 42"));
    assert_eq!(
        (out.status.code(), v["exit_code"].as_i64()),
        (Some(42), Some(42))
    );
    let (out, v) = carbon_ops(none, &[], &mut sh("kill -TERM $$"));
    assert_eq!(out.status.code(), Some(143));
    assert_eq!(v["signal"], 15);
    let (out, _) = carbon_ops(none, &[], &mut vec!["/nonexistent/cmd".to_owned()]);
    assert_eq!(out.status.code(), Some(127));
}

fn script() -> Script {
    Script {
        // 1 mWh (3.6 J) for the tree including run itself; ±5 %.
        tree: Some(json!({
            "processes": 4, "cpu_time_ns": 700_000_000u64, "energy_uj": 3_600_000u64,
            "energy_wh_total": 0.001, "uncertainty_rel": 0.05,
            "attribution_mode": "ebpf", "energy_source": "sysfs", "at": 0.0
        })),
        // run's own share: 0.1 J, 1 ms.
        process: Some(json!({"pid": 1, "energy_uj": 100_000u64, "cpu_time_ns": 1_000_000u64})),
        top: Vec::new(),
    }
}

#[test]
fn with_an_agent_the_tree_minus_run_itself_is_estimated_with_its_interval() {
    let agent = FakeAgent::start(script());
    let mut cmd = vec!["sleep".to_owned(), "1.3".to_owned()];
    let (out, v) = carbon_ops(&agent.socket, &["--region", "FR", "--ledger"], &mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(v["mode"], "agent", "{v}");
    // The tree asked about is rooted at run itself.
    let trees = agent.requests("tree");
    assert_eq!(trees.len(), 1);
    assert_eq!(trees[0]["pid"], v["run_pid"]);
    let e = &v["energy"];
    assert_eq!(e["energy_uj"], 3_500_000);
    assert_eq!(e["processes"], 3);
    assert_eq!(e["cpu_time_ns"], 699_000_000);
    assert_eq!(e["energy_source"], "sysfs");
    assert_eq!(e["attribution_mode"], "ebpf");
    // The estimate request: energy and σ = energy × 5 %, over the run's span, recorded.
    let est = agent.requests("estimate");
    assert_eq!(est.len(), 1);
    let wh = 3.5 / 3600.0;
    assert!((est[0]["energy_wh"].as_f64().expect("wh") - wh).abs() < 1e-12);
    assert!((est[0]["energy_sigma_wh"].as_f64().expect("σ") - wh * 0.05).abs() < 1e-12);
    assert_eq!(est[0]["region"], "FR");
    assert_eq!(est[0]["record"], true);
    assert_eq!(est[0]["start_ts"], v["start"]);
    let c = &v["carbon"];
    let g = c["carbon_emissions_gco2"].as_f64().expect("g");
    let (lo, hi) = (
        c["meta"]["ci_lower_g"].as_f64().expect("lo"),
        c["meta"]["ci_upper_g"].as_f64().expect("hi"),
    );
    assert!(lo < g && g < hi, "{c}");
    // Host power sampled about once a second: 20 W on the package, 2 W on dram.
    let samples = v["samples"].as_array().expect("samples");
    assert!(!samples.is_empty(), "{v}");
    for s in samples {
        let pkg = s["zones"][0]["power_w"].as_f64().expect("power");
        assert!((pkg - 20.0).abs() < 0.5, "{s}");
    }
    assert!(stderr.contains("joules energy"), "{stderr}");
    assert!(stderr.contains("g CO2e"), "{stderr}");
}

#[test]
fn an_agent_without_the_tree_op_still_runs_the_command() {
    let agent = FakeAgent::start(Script {
        tree: None,
        ..script()
    });
    let mut cmd = vec!["sh".to_owned(), "-c".to_owned(), "exit 3".to_owned()];
    let (out, v) = carbon_ops(&agent.socket, &["--json"], &mut cmd);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(v["mode"], "monitor_only");
    assert!(
        v["energy_unavailable"]
            .as_str()
            .unwrap_or("")
            .contains("no `tree` op"),
        "{v}"
    );
    // --json prints the same document on stderr.
    let printed: Value = serde_json::from_slice(&out.stderr).expect("json on stderr");
    assert_eq!(printed["exit_code"], 3);
}
