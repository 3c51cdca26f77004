//! `carbon-ops top`: the `--once --json` document's schema and figures against a scripted
//! agent (zone power from energy differences, CPU % from CPU-time differences, sorting), and
//! the pure view on hand-made readings.

mod ux_common;

use std::process::Command;

use carbon_ops::ux::top::{Reading, SortBy, render, view};
use serde_json::{Value, json};
use ux_common::{FakeAgent, Script};

fn agent() -> FakeAgent {
    FakeAgent::start(Script {
        tree: None,
        process: None,
        top: vec![
            json!({"pid": 10, "comm": "idle-ish", "uid": 0, "power_w": 0.5, "energy_uj": 90_000_000u64, "cpu_rate": 0.1, "exited": null}),
            json!({"pid": 11, "comm": "hot", "uid": 1000, "power_w": 9.0, "energy_uj": 5_000_000u64, "cpu_rate": 0.9, "exited": null}),
            json!({"pid": 12, "comm": "mid", "uid": 1000, "power_w": 3.0, "energy_uj": 40_000_000u64, "cpu_rate": 0.4, "exited": 1.0}),
        ],
    })
}

fn once(agent: &FakeAgent, by: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_carbon-ops"))
        .arg("--socket")
        .arg(&agent.socket)
        .args([
            "top",
            "--once",
            "--json",
            "--interval-ms",
            "400",
            "-n",
            "2",
            "--by",
            by,
        ])
        .output()
        .expect("run carbon-ops top");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

fn pids(v: &Value) -> Vec<u64> {
    v["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .map(|p| p["pid"].as_u64().expect("pid"))
        .collect()
}

#[test]
fn once_json_has_zone_power_and_sorted_processes() {
    let agent = agent();
    let v = once(&agent, "power");
    assert_eq!(v["schema"], "carbon-ops.top/1");
    assert_eq!(v["by"], "power");
    assert_eq!(v["energy_source"], "sysfs");
    assert_eq!(v["attribution_mode"], "ebpf");
    let zones = v["zones"].as_array().expect("zones");
    assert_eq!(zones.len(), 2);
    assert_eq!(zones[0]["name"], "package-0");
    // The fake counts 20 W and 2 W from the wall clock.
    let pw = |i: usize| zones[i]["power_w"].as_f64().expect("power_w");
    assert!((pw(0) - 20.0).abs() < 0.2, "{v}");
    assert!((pw(1) - 2.0).abs() < 0.05, "{v}");
    assert!((v["host_power_w"].as_f64().expect("host") - 22.0).abs() < 0.3);
    assert!(v["window_s"].as_f64().expect("window") >= 0.35);
    // -n 2, by power: hot, mid.
    assert_eq!(pids(&v), [11, 12]);
    let p = &v["processes"][0];
    for key in [
        "pid",
        "comm",
        "uid",
        "power_w",
        "energy_uj",
        "cpu_time_ns",
        "cpu_pct",
        "exited",
    ] {
        assert!(p.get(key).is_some(), "missing {key}: {p}");
    }
    assert!(
        (p["cpu_pct"].as_f64().unwrap_or_else(|| panic!("{v}")) - 90.0).abs() < 2.0,
        "{p}"
    );
    assert_eq!(pids(&once(&agent, "energy")), [10, 12]);
    assert_eq!(pids(&once(&agent, "cpu")), [11, 12]);
}

#[test]
fn the_view_differences_readings_by_hand() {
    let status = |at: f64, uj: u64| {
        json!({"at": at, "energy_source": "model", "attribution_mode": "procfs",
               "zones": [{"name": "package-0", "energy_uj": uj}], "energy": {"total_uj": uj}})
    };
    let top = |cpu_a: u64, cpu_b: u64| {
        json!({"processes": [
            {"pid": 1, "comm": "a", "uid": 0, "power_w": 1.0, "energy_uj": 7, "cpu_time_ns": cpu_a, "exited": null},
            {"pid": 2, "comm": "b", "uid": 0, "power_w": 2.0, "energy_uj": 3, "cpu_time_ns": cpu_b, "exited": null}
        ]})
    };
    let prev = Reading {
        status: status(100.0, 1_000_000),
        top: top(0, 0),
    };
    // 2 s later: 30 J more (15 W); a used 1.5 s of CPU (75 %), b 0.5 s (25 %).
    let cur = Reading {
        status: status(102.0, 31_000_000),
        top: top(1_500_000_000, 500_000_000),
    };
    let v = view(Some(&prev), &cur, SortBy::Cpu, 10);
    assert_eq!(v["zones"][0]["power_w"], 15.0);
    assert_eq!(v["host_power_w"], 15.0);
    assert_eq!(v["processes"][0]["pid"], 1);
    assert_eq!(v["processes"][0]["cpu_pct"], 75.0);
    assert_eq!(v["processes"][1]["cpu_pct"], 25.0);
    assert_eq!(
        view(Some(&prev), &cur, SortBy::Power, 10)["processes"][0]["pid"],
        2
    );
    // The first reading alone has no power yet, and says so.
    let first = view(None, &cur, SortBy::Power, 10);
    assert!(first["zones"][0]["power_w"].is_null());
    let screen = render(&v);
    assert!(screen.contains("MODEL ESTIMATE"), "{screen}");
    assert!(screen.contains("package-0"));
}
