//! The aliasing demo in its short mode (`--duration 5`): it runs, its counter-level result
//! equals the arithmetic, its labels say simulated/fake, and its chart is well-formed SVG.

use std::process::Command;

use carbon_ops::ux::{
    aliasing::{DemoConfig, counter_horizon_s, render, run},
    xmlcheck,
};

#[test]
fn short_mode_counter_level_matches_the_arithmetic() {
    let cfg = DemoConfig {
        duration_s: 5,
        ..DemoConfig::default()
    };
    let r = run(&cfg);
    assert_eq!(r.counter.len(), cfg.counter_periods_s.len());
    for c in &r.counter {
        let period_s = c.period_ms / 1000;
        let horizon_s = counter_horizon_s(5, period_s);
        // Hand arithmetic: 65 W for T s is 65·T J; the range is 400 J.
        let per_interval = 65 * period_s / 400;
        assert_eq!(c.intervals, horizon_s / period_s);
        assert_eq!(c.missed_arithmetic(), per_interval * c.intervals);
        assert_eq!(c.wraps_missed, c.missed_arithmetic(), "{c:?}");
        // What the scraper loses is exactly the missed whole ranges.
        assert_eq!(c.true_uj - c.scraper_uj, c.wraps_missed * 400_000_000);
        assert_eq!(c.agent_uj, c.true_uj);
    }
    // 15 s: 975 J per interval, two whole ranges missed in the one interval.
    let t15 = r
        .counter
        .iter()
        .find(|c| c.period_ms == 15_000)
        .expect("15 s row");
    assert_eq!((t15.intervals, t15.wraps_missed), (1, 2));
}

#[test]
fn output_is_labelled_and_the_chart_parses() {
    let r = run(&DemoConfig {
        duration_s: 30,
        ..DemoConfig::default()
    });
    let table = render::table(&r);
    assert!(
        table.contains("SIMULATED") && table.contains("FAKE zone"),
        "{table}"
    );
    // Per process: the total is conserved by the agent (up to rounding) and the scraper
    // gives short-lived jobs' energy to someone else or to no one.
    let p = &r.procs;
    assert!(p.agent.no_one_uj < 1_000, "{:?}", p.agent);
    assert!(p.scraper.wrong_uj + p.scraper.no_one_uj > p.agent.wrong_uj + p.agent.no_one_uj);
    let svg = render::chart(&r);
    xmlcheck::check(&svg).expect("well-formed");
    assert!(svg.contains("SIMULATED"));
    assert!(svg.contains(r#"data-series="raw, every 100 ms""#));
    assert!(svg.contains(r#"data-series="raw, every 15 s""#));
}

#[test]
fn the_example_runs_in_short_mode() {
    // The example binary, when cargo has built it next to this test (it does for
    // `cargo test`, which builds examples); otherwise the library checks above stand.
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let Some(debug) = exe.parent().and_then(|d| d.parent()) else {
        return;
    };
    let bin = debug.join("examples/aliasing_demo");
    if !bin.exists() {
        eprintln!("skipping: {} not built", bin.display());
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let svg = dir.path().join("a.svg");
    let out = Command::new(&bin)
        .args(["--duration", "5", "--svg"])
        .arg(&svg)
        .output()
        .expect("run example");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("SIMULATED") && !text.contains("FAIL"),
        "{text}"
    );
    xmlcheck::check(&std::fs::read_to_string(&svg).expect("svg")).expect("well-formed");
}
