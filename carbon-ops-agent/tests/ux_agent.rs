//! `carbon-ops run`, `top --once --json` and `report` against the real agent binary on a fake
//! powercap tree at a known power (procfs attribution, no privilege needed). Until the agent
//! serves `tree`, `run` must fall back to monitor-only and say why; once it does, the tree's
//! energy, CPU time and carbon interval are checked.

mod common;

use std::{process::Command, sync::Mutex};

use carbon_ops::ux::xmlcheck;
use common::{Agent, FakeRapl, WATTS};
use serde_json::Value;

/// These tests measure CPU time and power: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn carbon_ops(agent: &Agent, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_carbon-ops"))
        .arg("--socket")
        .arg(&agent.socket)
        .args(args)
        .output()
        .expect("run carbon-ops")
}

#[test]
fn run_against_the_real_agent() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let rapl = FakeRapl::start();
    let agent = Agent::start(&rapl, "procfs", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("run.json");
    // A grandchild busy for 1.3 s (no forks, so procfs polling sees all of it) that outlives
    // its parent shell, which exits 4 at once.
    let script = "(timeout 1.3 sh -c 'while :; do :; done') & exit 4";
    let out = carbon_ops(
        &agent,
        &[
            "run",
            "--region",
            "FR",
            "-o",
            &json.display().to_string(),
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("run json");
    assert!(v["duration_s"].as_f64().expect("duration") >= 1.2, "{v}");
    // Host power by zone from status polling: the fake package runs at WATTS.
    let samples = v["samples"].as_array().expect("samples");
    assert!(!samples.is_empty(), "{v}");
    for s in samples {
        let w = s["zones"][0]["power_w"].as_f64().expect("power");
        assert!((w - WATTS as f64).abs() < WATTS as f64 * 0.25, "{s}");
    }
    let host = v["host_energy_uj"].as_f64().expect("host energy") / 1e6;
    let expect_host = WATTS as f64 * v["duration_s"].as_f64().expect("duration");
    assert!(
        (host - expect_host).abs() < expect_host * 0.35,
        "host {host} J vs {expect_host}"
    );
    let rusage =
        v["cpu"]["user_s"].as_f64().expect("user") + v["cpu"]["system_s"].as_f64().expect("sys");
    assert!(
        rusage > 0.3,
        "the busy grandchild was reaped and counted: {v}"
    );
    if v["mode"] == "agent" {
        // The agent serves `tree`: its CPU time agrees with the kernel's rusage, energy is
        // non-zero and the carbon figure lies inside its interval.
        let e = &v["energy"];
        let cpu = e["cpu_time_ns"].as_f64().expect("cpu") / 1e9;
        assert!(
            (cpu - rusage).abs() < 0.3 * rusage + 0.1,
            "agent {cpu} s vs rusage {rusage} s"
        );
        assert!(e["energy_uj"].as_u64().expect("energy") > 0);
        assert_eq!(e["energy_source"], "sysfs");
        let c = &v["carbon"];
        let g = c["carbon_emissions_gco2"].as_f64().expect("g");
        assert!(c["meta"]["ci_lower_g"].as_f64().expect("lo") <= g);
        assert!(g <= c["meta"]["ci_upper_g"].as_f64().expect("hi"));
    } else {
        panic!("the agent serves `tree`: `run` must report energy: {v}");
    }
    // The run renders.
    let svg = dir.path().join("run.svg");
    let r = Command::new(env!("CARGO_BIN_EXE_carbon-ops"))
        .args([
            "report",
            &json.display().to_string(),
            "--out",
            &svg.display().to_string(),
        ])
        .output()
        .expect("report");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let doc = std::fs::read_to_string(&svg).expect("svg");
    xmlcheck::check(&doc).expect("well-formed");
    assert!(doc.contains("data-series=\"package-0\""));
}

#[test]
fn top_once_json_against_the_real_agent() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let rapl = FakeRapl::start();
    let agent = Agent::start(&rapl, "procfs", &[]);
    let out = carbon_ops(&agent, &["top", "--once", "--json", "-n", "5"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["schema"], "carbon-ops.top/1");
    assert_eq!(v["attribution_mode"], "procfs");
    let pkg = v["zones"][0]["power_w"].as_f64().expect("zone power");
    assert!((pkg - WATTS as f64).abs() < WATTS as f64 * 0.25, "{v}");
    let procs = v["processes"].as_array().expect("processes");
    assert!(!procs.is_empty() && procs.len() <= 5, "{v}");
    let powers: Vec<f64> = procs
        .iter()
        .map(|p| p["power_w"].as_f64().unwrap_or(0.0))
        .collect();
    assert!(
        powers.windows(2).all(|w| w[0] >= w[1]),
        "sorted by power: {powers:?}"
    );
}
