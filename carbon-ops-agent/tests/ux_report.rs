//! `carbon-ops report`: a ledger (written by the real ledger CLI) and a run summary render to
//! well-formed SVG and HTML with the expected series: power by zone from differenced samples,
//! energy by process, carbon with its interval as an error bar.

use std::{path::Path, process::Command};

use carbon_ops::ux::{reportdata, xmlcheck};
use serde_json::{Value, json};

fn carbon_ops(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_carbon-ops"))
        .args(args)
        .output()
        .expect("run carbon-ops")
}

fn append(ledger: &Path, kind: &str, payload: &Value) {
    let out = carbon_ops(&[
        "ledger",
        "append",
        &ledger.display().to_string(),
        "--kind",
        kind,
        "--payload",
        &payload.to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn estimate_record() -> Value {
    json!({"carbon_emissions_gco2": 1.25, "region": "FR", "meta": {"ci_lower_g": 0.75, "ci_upper_g": 1.75}})
}

#[test]
fn a_ledger_renders_power_by_zone_energy_by_process_and_carbon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = dir.path().join("ledger.jsonl");
    // Cumulative samples 2 s apart: package 20 W then 30 W, dram 2 W.
    for (at, pkg, dram, web) in [
        (100.0, 0u64, 0u64, 0u64),
        (102.0, 40_000_000, 4_000_000, 10_000_000),
        (104.0, 100_000_000, 8_000_000, 25_000_000),
    ] {
        append(
            &ledger,
            "sample",
            &json!({"at": at, "zones": [{"name": "package-0", "energy_uj": pkg}, {"name": "dram", "energy_uj": dram}],
                    "processes": [{"pid": 42, "comm": "web", "energy_uj": web}, {"pid": 43, "comm": "db", "energy_uj": web / 5}]}),
        );
    }
    append(&ledger, "estimate", &estimate_record());

    let text = std::fs::read_to_string(&ledger).expect("ledger");
    let d = reportdata::from_text(&text);
    assert_eq!(d.power.len(), 2);
    let pkg = d
        .power
        .iter()
        .find(|s| s.name == "package-0")
        .expect("package series");
    assert_eq!(pkg.points, vec![(2.0, 20.0), (4.0, 30.0)]);
    let dram = d
        .power
        .iter()
        .find(|s| s.name == "dram")
        .expect("dram series");
    assert_eq!(dram.points, vec![(2.0, 2.0), (4.0, 2.0)]);
    assert_eq!(d.energy[0].label, "web (42)");
    assert_eq!(d.energy[0].value, 25.0);
    assert_eq!(d.energy[1].value, 5.0);
    assert_eq!(d.carbon.len(), 1);
    assert_eq!(d.carbon[0].interval, Some((0.75, 1.75)));

    for ext in ["svg", "html"] {
        let out_file = dir.path().join(format!("r.{ext}"));
        let out = carbon_ops(&[
            "report",
            &ledger.display().to_string(),
            "--out",
            &out_file.display().to_string(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc = std::fs::read_to_string(&out_file).expect("report");
        let svg = &doc[doc.find("<svg").expect("svg")..doc.find("</svg>").expect("end") + 6];
        assert!(xmlcheck::check(svg).expect("well-formed") > 20);
        for series in ["package-0", "dram", "web (42)", "db (43)"] {
            assert!(
                svg.contains(&format!("data-series=\"{series}\"")),
                "{series}"
            );
        }
        assert!(svg.contains(r#"data-low="0.75" data-high="1.75""#));
        if ext == "html" {
            assert!(doc.starts_with("<!DOCTYPE html>") && doc.contains("</html>"));
        }
    }
}

#[test]
fn a_run_summary_renders_and_a_bad_extension_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = json!({
        "schema": "carbon-ops.run/1", "command": ["/usr/bin/make", "-j2"], "pid": 10, "run_pid": 9,
        "exit_code": 0, "signal": null, "start": 100.0, "end": 103.0, "duration_s": 3.0,
        "cpu": {"user_s": 2.0, "system_s": 0.5}, "mode": "agent",
        "energy": {"energy_source": "sysfs", "attribution_mode": "ebpf", "processes": 5,
                   "cpu_time_ns": 2_500_000_000u64, "energy_uj": 36_000_000u64, "energy_wh": 0.01,
                   "uncertainty_rel": 0.05, "energy_sigma_wh": 0.0005},
        "energy_unavailable": null, "carbon": estimate_record(), "carbon_unavailable": null,
        "samples": [{"t": 1.0, "zones": [{"name": "package-0", "power_w": 12.0}]},
                    {"t": 2.0, "zones": [{"name": "package-0", "power_w": 14.0}]}],
        "host_energy_uj": 50_000_000u64, "descendants_left": 0
    });
    let input = dir.path().join("run.json");
    std::fs::write(&input, run.to_string()).expect("write");
    let d = reportdata::from_text(&run.to_string());
    // The tree's 36 J with its 95 % interval (±1.96 × 5 %), and the rest of the host's 14 J.
    assert_eq!(d.energy[0].label, "make (tree)");
    let (lo, hi) = d.energy[0].interval.expect("interval");
    assert!((lo - 36.0 * (1.0 - 1.959_964 * 0.05)).abs() < 1e-9);
    assert!((hi - 36.0 * (1.0 + 1.959_964 * 0.05)).abs() < 1e-9);
    assert_eq!(d.energy[1].label, "rest of host");
    assert!((d.energy[1].value - 14.0).abs() < 1e-9);
    assert_eq!(d.power[0].points, vec![(1.0, 12.0), (2.0, 14.0)]);
    let svg_path = dir.path().join("run.svg");
    let out = carbon_ops(&[
        "report",
        &input.display().to_string(),
        "--out",
        &svg_path.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(&svg_path).expect("svg");
    xmlcheck::check(&svg).expect("well-formed");
    assert!(svg.contains("data-series=\"make (tree)\""));
    let bad = carbon_ops(&[
        "report",
        &input.display().to_string(),
        "--out",
        "/tmp/x.png",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains(".svg or .html"));
}
