//! What `carbon-ops report` draws, read from a run summary or from ledger lines (pure).
//!
//! A run summary (`carbon-ops.run/1`) gives power by zone (its `samples`), the energy of the
//! command's tree against the rest of the host, and the carbon record. Ledger entries give:
//! `sample` (payload `{"at", "zones": [{"name", "energy_uj"}], "processes"?: [{"pid", "comm",
//! "energy_uj"}]}`, cumulative values; power is differenced between consecutive samples),
//! `estimate` (a carbon record, one bar with its interval each), and `run` (a run summary).
//! Payloads appended by non-root peers (`{"peer_uid", "data"}`) are unwrapped.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    power::{Snapshot, zone_power},
    summary::{RUN_SCHEMA, RunSummary},
    svg::{self, Bar, Series},
};

/// The three charts' data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportData {
    /// Where it came from (caption).
    pub caption: String,
    /// Power by zone, W, against seconds since the first point.
    pub power: Vec<Series>,
    /// Energy by process, J, with a 95 % interval where known.
    pub energy: Vec<Bar>,
    /// Carbon, gCO2e, with its interval.
    pub carbon: Vec<Bar>,
}

/// z for a two-sided 95 % normal interval.
const Z95: f64 = 1.959_964;

fn push_power(series: &mut BTreeMap<String, Vec<(f64, f64)>>, t: f64, name: &str, w: f64) {
    series.entry(name.to_owned()).or_default().push((t, w));
}

fn carbon_bar(label: String, rec: &Value) -> Option<Bar> {
    let g = rec.get("carbon_emissions_gco2")?.as_f64()?;
    let lo = rec["meta"]["ci_lower_g"].as_f64();
    let hi = rec["meta"]["ci_upper_g"].as_f64();
    Some(Bar {
        label,
        value: g,
        interval: lo.zip(hi),
    })
}

fn add_run(d: &mut ReportData, r: &RunSummary, power: &mut BTreeMap<String, Vec<(f64, f64)>>) {
    for s in &r.samples {
        for z in &s.zones {
            push_power(power, s.t, &z.name, z.power_w);
        }
    }
    let cmd = r.command.first().map_or("command", String::as_str);
    let cmd = cmd.rsplit('/').next().unwrap_or(cmd);
    if let Some(e) = &r.energy {
        let j = e.energy_uj as f64 / 1e6;
        let half = Z95 * j * e.uncertainty_rel;
        d.energy.push(Bar {
            label: format!("{cmd} (tree)"),
            value: j,
            interval: Some(((j - half).max(0.0), j + half)),
        });
        if let Some(h) = r.host_energy_uj {
            d.energy.push(Bar {
                label: "rest of host".to_owned(),
                value: (h as f64 / 1e6 - j).max(0.0),
                interval: None,
            });
        }
    }
    if let Some(c) = r
        .carbon
        .as_ref()
        .and_then(|c| carbon_bar(cmd.to_owned(), c))
    {
        d.carbon.push(c);
    }
}

/// Reads a run summary document.
pub fn from_run(r: &RunSummary) -> ReportData {
    let mut d = ReportData {
        caption: format!(
            "carbon-ops run: {} ({:.1} s, exit {}, {})",
            r.command.join(" "),
            r.duration_s,
            r.exit_code,
            r.energy
                .as_ref()
                .map_or("monitor_only: energy unavailable".to_owned(), |e| {
                    format!("{} / {}", e.energy_source, e.attribution_mode)
                })
        ),
        ..ReportData::default()
    };
    let mut power = BTreeMap::new();
    add_run(&mut d, r, &mut power);
    d.power = into_series(power);
    d
}

fn into_series(m: BTreeMap<String, Vec<(f64, f64)>>) -> Vec<Series> {
    m.into_iter()
        .map(|(name, points)| Series { name, points })
        .collect()
}

/// Reads ledger lines (every segment's, in order). Lines that are not JSON are skipped and
/// counted in the caption (`carbon-ops ledger verify` is the tool for integrity).
pub fn from_ledger(lines: &[&str]) -> ReportData {
    let mut d = ReportData::default();
    let mut power = BTreeMap::new();
    let mut procs: BTreeMap<(u64, String), u64> = BTreeMap::new();
    let (mut prev, mut t0, mut skipped, mut entries) = (None::<Snapshot>, None::<f64>, 0, 0);
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            skipped += 1;
            continue;
        };
        entries += 1;
        let mut payload = &entry["payload"];
        if payload.get("peer_uid").is_some() && payload.get("data").is_some() {
            payload = &payload["data"];
        }
        match entry["kind"].as_str() {
            Some("sample") => {
                let Some(snap) = Snapshot::from_status(payload) else {
                    continue;
                };
                let t0 = *t0.get_or_insert(snap.at);
                if let Some(p) = &prev {
                    for z in zone_power(p, &snap) {
                        push_power(&mut power, snap.at - t0, &z.name, z.power_w);
                    }
                }
                for p in payload["processes"].as_array().into_iter().flatten() {
                    if let (Some(pid), Some(uj)) = (p["pid"].as_u64(), p["energy_uj"].as_u64()) {
                        let comm = p["comm"].as_str().unwrap_or("?").to_owned();
                        let e = procs.entry((pid, comm)).or_default();
                        *e = (*e).max(uj);
                    }
                }
                prev = Some(snap);
            }
            Some("estimate") => {
                let label = format!(
                    "seq {} {}",
                    entry["seq"],
                    payload["region"].as_str().unwrap_or("")
                );
                d.carbon.extend(carbon_bar(label, payload));
            }
            Some("run") => {
                if let Ok(r) = serde_json::from_value::<RunSummary>(payload.clone()) {
                    add_run(&mut d, &r, &mut power);
                }
            }
            _ => {}
        }
    }
    let mut by_energy: Vec<_> = procs.into_iter().collect();
    by_energy.sort_by_key(|e| std::cmp::Reverse(e.1));
    d.energy
        .extend(by_energy.into_iter().take(12).map(|((pid, comm), uj)| Bar {
            label: format!("{comm} ({pid})"),
            value: uj as f64 / 1e6,
            interval: None,
        }));
    d.power = into_series(power);
    d.caption = format!(
        "carbon-ops ledger: {entries} entries{}",
        if skipped > 0 {
            format!(", {skipped} unreadable lines skipped")
        } else {
            String::new()
        }
    );
    d
}

/// Reads either input: a run summary (one JSON document with `"schema": "carbon-ops.run/1"`)
/// or ledger lines.
pub fn from_text(text: &str) -> ReportData {
    if let Ok(v) = serde_json::from_str::<Value>(text)
        && v["schema"] == RUN_SCHEMA
        && let Ok(r) = serde_json::from_value::<RunSummary>(v)
    {
        return from_run(&r);
    }
    from_ledger(&text.lines().collect::<Vec<_>>())
}

/// The SVG document for `d`: power over time by zone, energy by process, carbon with its
/// interval (an empty panel says so rather than vanishing).
pub fn to_svg(d: &ReportData) -> String {
    let panels = vec![
        svg::line_chart("Power by zone", "seconds", "W", &d.power),
        svg::bar_chart("Energy by process (95 % interval)", "J", &d.energy),
        svg::bar_chart("Carbon (95 % interval)", "g CO2e", &d.carbon),
    ];
    svg::document(&d.caption, &panels)
}

/// An HTML page embedding the SVG inline, with the figures as a table (self-contained).
pub fn to_html(d: &ReportData) -> String {
    let mut rows = String::new();
    for (what, bars, unit) in [("energy", &d.energy, "J"), ("carbon", &d.carbon, "g CO2e")] {
        for b in bars {
            let iv = b
                .interval
                .map_or(String::new(), |(lo, hi)| format!("{lo:.4} – {hi:.4}"));
            rows += &format!(
                "<tr><td>{what}</td><td>{}</td><td>{:.4} {unit}</td><td>{iv}</td></tr>\n",
                svg::escape(&b.label),
                b.value
            );
        }
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"/><title>carbon-ops report</title></head><body>\n<h1>carbon-ops report</h1>\n<p>{}</p>\n{}<table border=\"1\"><tr><th>what</th><th>label</th><th>value</th><th>95 % interval</th></tr>\n{rows}</table>\n</body></html>\n",
        svg::escape(&d.caption),
        to_svg(d)
    )
}
