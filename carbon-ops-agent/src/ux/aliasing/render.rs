//! The demo's table and SVG chart (pure). Every heading says SIMULATED.

use std::fmt::Write;

use super::DemoResult;
use crate::ux::svg::{self, Bar, Series};

fn j(uj: u64) -> f64 {
    uj as f64 / 1e6
}

fn pct(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

/// A typical real package range (`max_energy_range_uj` on many Intel parts), µJ.
pub const TYPICAL_RANGE_UJ: u64 = 262_143_328_850;

/// The text table.
pub fn table(r: &DemoResult) -> String {
    let c = &r.config;
    let p = &r.procs;
    let mut s = format!(
        "aliasing demo: SIMULATED timeline (model source, no RAPL read), {} s; agent every {} ms, scraper every {} s\n\n",
        c.duration_s, c.agent_period_ms, c.scrape_period_s
    );
    let short: Vec<_> = p.rows.iter().filter(|r| r.short_lived).collect();
    let unseen: Vec<_> = short.iter().filter(|r| !r.seen_by_scraper).collect();
    let _ = writeln!(
        s,
        "{:<22} {:>12} {:>12} {:>12}",
        "process", "true (J)", "10 Hz (J)", "scraper (J)"
    );
    for row in p.rows.iter().filter(|r| !r.short_lived) {
        let _ = writeln!(
            s,
            "{:<22} {:>12.1} {:>12.1} {:>12.1}",
            format!("{} ({})", row.name, row.pid),
            j(row.true_uj),
            j(row.agent_uj),
            j(row.scraper_uj)
        );
    }
    let sum = |f: fn(&&crate::ux::aliasing::procs::ProcRow) -> u64,
               v: &[&crate::ux::aliasing::procs::ProcRow]|
     -> u64 { v.iter().map(f).sum() };
    let _ = writeln!(
        s,
        "{:<22} {:>12.1} {:>12.1} {:>12.1}\n  ({} short-lived jobs, {} never seen by the scraper, holding {:.1} J)\n",
        "short-lived jobs",
        j(sum(|r| r.true_uj, &short)),
        j(sum(|r| r.agent_uj, &short)),
        j(sum(|r| r.scraper_uj, &short)),
        short.len(),
        unseen.len(),
        j(unseen.iter().map(|r| r.true_uj).sum())
    );
    let _ = writeln!(
        s,
        "{:<22} {:>20} {:>20}",
        "of all active energy", "10 Hz agent", "scraper"
    );
    for (label, a, b) in [
        ("right process", p.agent.right_uj, p.scraper.right_uj),
        ("wrong process", p.agent.wrong_uj, p.scraper.wrong_uj),
        ("no one", p.agent.no_one_uj, p.scraper.no_one_uj),
    ] {
        let _ = writeln!(
            s,
            "{label:<22} {:>11.1} J {:>5.1} % {:>11.1} J {:>5.1} %",
            j(a),
            pct(a, p.total_uj),
            j(b),
            pct(b, p.total_uj)
        );
    }
    let _ = writeln!(
        s,
        "(the agent's 'wrong' share is its own model error: it splits by CPU time, the batch job draws 30 % more per CPU-second)\n"
    );
    let first = r.counter.first();
    let _ = writeln!(
        s,
        "counter level: FAKE zone, range {} µJ ({:.0} J), {} W, wraps counted from raw readings\n",
        c.counter_range_uj,
        first.map_or(0.0, |x| j(x.modulus_uj)),
        c.counter_power_w
    );
    let _ = writeln!(
        s,
        "{:>6} {:>9} {:>7} {:>7} {:>7} {:>11} {:>12} {:>12} {:>6}",
        "T (s)", "horizon", "wraps", "seen", "missed", "arithmetic", "lost (J)", "flagged", "check"
    );
    for x in &r.counter {
        let _ = writeln!(
            s,
            "{:>6} {:>8}s {:>7} {:>7} {:>7} {:>11} {:>12.1} {:>12} {:>6}",
            x.period_ms / 1000,
            x.intervals * x.period_ms / 1000,
            x.wraps_actual,
            x.wraps_seen_by_scraper,
            x.wraps_missed,
            x.missed_arithmetic(),
            j(x.true_uj - x.scraper_uj),
            x.scraper_gaps_flagged,
            if x.wraps_missed == x.missed_arithmetic() {
                "ok"
            } else {
                "FAIL"
            }
        );
    }
    let _ = writeln!(
        s,
        "\narithmetic: missed per interval = floor(P·T / (range+1)); the 10 Hz agent's total equals the truth in every row.\nreal hardware: a typical package range is {:.0} J; at {} W a scraper misses a wrap only if T ≥ {:.0} s.",
        j(TYPICAL_RANGE_UJ),
        c.counter_power_w,
        j(TYPICAL_RANGE_UJ + 1) / c.counter_power_w.max(1) as f64
    );
    s
}

/// The SVG chart: raw counter at both rates, then each sampler's split.
pub fn chart(r: &DemoResult) -> String {
    let to = |v: &[(u64, u64)]| -> Vec<(f64, f64)> {
        v.iter()
            .map(|&(t, raw)| (t as f64 / 1000.0, j(raw)))
            .collect()
    };
    let series = [
        Series {
            name: format!("raw, every {} ms", r.config.agent_period_ms),
            points: to(&r.reads.0),
        },
        Series {
            name: format!("raw, every {} s", r.config.scrape_period_s),
            points: to(&r.reads.1),
        },
    ];
    let p = &r.procs;
    let bar = |label: &str, uj: u64| Bar {
        label: label.to_owned(),
        value: j(uj),
        interval: None,
    };
    let bars = [
        bar("10 Hz right", p.agent.right_uj),
        bar("10 Hz wrong", p.agent.wrong_uj),
        bar("10 Hz no one", p.agent.no_one_uj),
        bar("scrape right", p.scraper.right_uj),
        bar("scrape wrong", p.scraper.wrong_uj),
        bar("scrape no one", p.scraper.no_one_uj),
    ];
    svg::document(
        "SIMULATED: model timeline and a fake zone (no RAPL read). carbon-ops aliasing demo.",
        &[
            svg::line_chart(
                "Fake zone raw counter (SIMULATED)",
                "seconds",
                "J (raw)",
                &series,
            ),
            svg::bar_chart("Where active energy went (SIMULATED)", "J", &bars),
        ],
    )
}
