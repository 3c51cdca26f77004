//! `carbon-ops top`: host power by zone, then processes by power, refreshed each second
//! (plain ANSI redraw; Ctrl-C quits). `--once` prints one refresh; with `--json` it is one
//! JSON document (`carbon-ops.top/1`, see `docs/reports.md`) for scripts.
//!
//! Zone power comes from differences of the zones' cumulative `energy_uj` between two
//! `status` answers ([`super::power`]); process power is the agent's (`top`, over its recent
//! window); `cpu_pct` is the difference of `cpu_time_ns` between refreshes.

use std::{collections::HashMap, io::Write, path::Path, time::Duration};

use anyhow::Result;
use serde_json::{Value, json};

use super::power::{Snapshot, zone_power};
use crate::client::{Client, socket_path};

/// Sort key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    /// Power over the agent's recent window.
    #[default]
    Power,
    /// Cumulative energy.
    Energy,
    /// CPU use between refreshes (cumulative CPU time on the first).
    Cpu,
    /// Kubernetes pods (energy and CPU summed over their processes; see `docs/metrics.md`).
    Pod,
    /// Containers.
    Container,
    /// cgroups.
    Cgroup,
}

impl SortBy {
    /// The agent's grouping for `top --by`, for the grouped views.
    pub fn group(self) -> Option<&'static str> {
        match self {
            SortBy::Pod => Some("pod"),
            SortBy::Container => Some("container"),
            SortBy::Cgroup => Some("cgroup"),
            _ => None,
        }
    }
}

/// `carbon-ops top`.
#[derive(Clone, Debug, clap::Args)]
pub struct TopArgs {
    /// How many processes.
    #[arg(short, long, default_value_t = 20)]
    pub n: usize,
    /// Sort by power, energy or cpu.
    #[arg(long, value_enum, default_value_t = SortBy::Power)]
    pub by: SortBy,
    /// One refresh, then exit (two readings `--interval-ms` apart, for zone power).
    #[arg(long)]
    pub once: bool,
    /// With `--once`: one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Refresh period, ms.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
}

/// One refresh's readings.
#[derive(Clone, Debug)]
pub struct Reading {
    /// The `status` answer.
    pub status: Value,
    /// The `top` answer (up to 1000 processes).
    pub top: Value,
}

fn read(c: &mut Client) -> Result<Reading> {
    Ok(Reading {
        status: c.request("status", json!({}))?,
        top: c.request("top", json!({"n": 1000, "by": "power"}))?,
    })
}

/// The view of `cur` given the previous refresh (pure): the `carbon-ops.top/1` document.
pub fn view(prev: Option<&Reading>, cur: &Reading, by: SortBy, n: usize) -> Value {
    let snap = Snapshot::from_status(&cur.status);
    let psnap = prev.and_then(|p| Snapshot::from_status(&p.status));
    let powers = match (&psnap, &snap) {
        (Some(a), Some(b)) => zone_power(a, b),
        _ => Vec::new(),
    };
    let dt = match (&psnap, &snap) {
        (Some(a), Some(b)) if b.at > a.at => Some(b.at - a.at),
        _ => None,
    };
    let zones: Vec<Value> = snap
        .iter()
        .flat_map(|s| &s.zones)
        .map(|z| {
            let p = powers.iter().find(|p| p.name == z.name).map(|p| p.power_w);
            json!({"name": z.name, "energy_uj": z.energy_uj, "power_w": p})
        })
        .collect();
    let prev_cpu: HashMap<u64, u64> = prev
        .and_then(|p| p.top["processes"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["pid"].as_u64()?, p["cpu_time_ns"].as_u64()?)))
        .collect();
    let mut procs: Vec<Value> = cur.top["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let pid = p["pid"].as_u64().unwrap_or(0);
            let cpu = p["cpu_time_ns"].as_u64().unwrap_or(0);
            let pct = match (prev_cpu.get(&pid), dt) {
                (Some(&before), Some(dt)) => {
                    Some(cpu.saturating_sub(before) as f64 / 1e9 / dt * 100.0)
                }
                _ => None,
            };
            json!({
                "pid": pid, "comm": p["comm"], "uid": p["uid"], "power_w": p["power_w"],
                "energy_uj": p["energy_uj"], "cpu_time_ns": cpu, "cpu_pct": pct, "exited": p["exited"],
            })
        })
        .collect();
    let key = |p: &Value| -> f64 {
        match by {
            SortBy::Power | SortBy::Pod | SortBy::Container | SortBy::Cgroup => {
                p["power_w"].as_f64().unwrap_or(0.0)
            }
            SortBy::Energy => p["energy_uj"].as_f64().unwrap_or(0.0),
            SortBy::Cpu => p["cpu_pct"]
                .as_f64()
                .unwrap_or_else(|| p["cpu_time_ns"].as_f64().unwrap_or(0.0) / 1e9),
        }
    };
    procs.sort_by(|a, b| key(b).total_cmp(&key(a)));
    procs.truncate(n);
    let total: Option<f64> = (!powers.is_empty()).then(|| powers.iter().map(|p| p.power_w).sum());
    json!({
        "schema": "carbon-ops.top/1",
        "at": snap.as_ref().map(|s| s.at),
        "window_s": dt,
        "energy_source": cur.status["energy_source"],
        "attribution_mode": cur.status["attribution_mode"],
        "host_power_w": total,
        "zones": zones,
        "by": match by { SortBy::Energy => "energy", SortBy::Cpu => "cpu", _ => "power" },
        "processes": procs,
    })
}

fn opt(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
}

/// The screen for a view (pure).
pub fn render(v: &Value) -> String {
    let model = if v["energy_source"] == "model" {
        "  (MODEL ESTIMATE, not measured)"
    } else {
        ""
    };
    let mut s = format!(
        "carbon-ops top  source {} / {}{}  host {} W  sorted by {}\n\n{:<24} {:>10} {:>16}\n",
        v["energy_source"].as_str().unwrap_or("?"),
        v["attribution_mode"].as_str().unwrap_or("?"),
        model,
        opt(&v["host_power_w"], 2),
        v["by"].as_str().unwrap_or("?"),
        "ZONE",
        "POWER (W)",
        "ENERGY (J)"
    );
    for z in v["zones"].as_array().into_iter().flatten() {
        s += &format!(
            "{:<24} {:>10} {:>16.3}\n",
            z["name"].as_str().unwrap_or("?"),
            opt(&z["power_w"], 2),
            z["energy_uj"].as_f64().unwrap_or(0.0) / 1e6
        );
    }
    s += &format!(
        "\n{:>8} {:<16} {:>6} {:>10} {:>14} {:>10} {:>7}\n",
        "PID", "COMM", "UID", "POWER (W)", "ENERGY (J)", "CPU (s)", "CPU %"
    );
    for p in v["processes"].as_array().into_iter().flatten() {
        s += &format!(
            "{:>8} {:<16} {:>6} {:>10} {:>14.3} {:>10.2} {:>7}{}\n",
            p["pid"].as_u64().unwrap_or(0),
            p["comm"].as_str().unwrap_or("?"),
            p["uid"]
                .as_u64()
                .map_or_else(|| "?".to_owned(), |u| u.to_string()),
            opt(&p["power_w"], 3),
            p["energy_uj"].as_f64().unwrap_or(0.0) / 1e6,
            p["cpu_time_ns"].as_f64().unwrap_or(0.0) / 1e9,
            opt(&p["cpu_pct"], 1),
            if p["exited"].is_null() {
                ""
            } else {
                " (exited)"
            }
        );
    }
    s
}

/// Runs `top`; returns the exit code.
pub fn run(socket: Option<&Path>, args: &TopArgs) -> Result<i32> {
    let mut c = Client::connect(&socket_path(socket))?;
    let period = Duration::from_millis(args.interval_ms.max(100));
    let mut out = std::io::stdout().lock();
    let mut prev = read(&mut c)?;
    if args.once {
        std::thread::sleep(period);
        let cur = read(&mut c)?;
        let v = view(Some(&prev), &cur, args.by, args.n);
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        } else {
            write!(out, "{}", render(&v))?;
        }
        return Ok(0);
    }
    loop {
        std::thread::sleep(period);
        let cur = read(&mut c)?;
        let v = view(Some(&prev), &cur, args.by, args.n);
        // Home, clear screen, draw; Ctrl-C (default SIGINT) quits.
        write!(out, "\x1b[H\x1b[2J{}", render(&v))?;
        out.flush()?;
        prev = cur;
    }
}
