//! The aliasing demo: what a 10 Hz sampler sees against a Prometheus-style scraper, per
//! process and at the counter level, on a SIMULATED timeline and a FAKE zone (no RAPL needed).
//!
//! `cargo run --example aliasing_demo -- --duration 120 [--scrape-period 15] [--svg FILE]
//! [--json]`. Prints a table, writes an SVG chart (default `aliasing.svg`), and exits 1 if a
//! counter-level row disagrees with the arithmetic. See `docs/aliasing.md`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use carbon_ops::ux::aliasing::{DemoConfig, render, run};

fn parse() -> Result<(DemoConfig, PathBuf, bool)> {
    let mut cfg = DemoConfig::default();
    let (mut svg, mut json) = (PathBuf::from("aliasing.svg"), false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--duration" => cfg.duration_s = value("--duration")?.parse()?,
            "--scrape-period" => cfg.scrape_period_s = value("--scrape-period")?.parse()?,
            "--power" => cfg.counter_power_w = value("--power")?.parse()?,
            "--range-uj" => cfg.counter_range_uj = value("--range-uj")?.parse()?,
            "--seed" => cfg.seed = value("--seed")?.parse()?,
            "--svg" => svg = PathBuf::from(value("--svg")?),
            "--json" => json = true,
            "-h" | "--help" => {
                println!(
                    "aliasing_demo [--duration S] [--scrape-period S] [--power W] [--range-uj N] [--seed N] [--svg FILE] [--json]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` (see --help)"),
        }
    }
    if cfg.duration_s == 0 || cfg.scrape_period_s == 0 {
        bail!("--duration and --scrape-period must be at least 1 s");
    }
    if !cfg.counter_periods_s.contains(&cfg.scrape_period_s) {
        cfg.counter_periods_s.push(cfg.scrape_period_s);
        cfg.counter_periods_s.sort_unstable();
    }
    Ok((cfg, svg, json))
}

fn main() -> Result<()> {
    let (cfg, svg, json) = parse()?;
    let result = run(&cfg);
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", render::table(&result));
    }
    std::fs::write(&svg, render::chart(&result))
        .with_context(|| format!("writing {}", svg.display()))?;
    eprintln!("chart written to {}", svg.display());
    if result
        .counter
        .iter()
        .any(|c| c.wraps_missed != c.missed_arithmetic())
    {
        eprintln!("counter-level result disagrees with the arithmetic");
        std::process::exit(1);
    }
    Ok(())
}
