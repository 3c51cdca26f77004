//! `EnergyLogger`: the energy of the calling process between successive `log_metrics` calls.
//!
//! It asks the agent for the process's cumulative figures and differences them, so the agent
//! keeps no per-client state. Without an agent it does not fail: it reports
//! `attribution_mode = "monitor_only"` with the process's own CPU time and no energy, and
//! reconnects (and re-baselines) when the agent is back.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Value, json};

use super::{Client, socket_path};

/// Cumulative figures at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Reading {
    at: f64,
    energy_uj: u64,
    cpu_time_ns: u64,
    host_busy_cpu_ns: u64,
}

/// Energy part of a metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricEnergy {
    /// Energy in the window, Wh (None in monitor-only mode: nothing is invented).
    pub energy_wh_total: Option<f64>,
    /// Same in µJ.
    pub energy_uj: Option<u64>,
    /// The process's CPU time in the window.
    pub cpu_time_ns: u64,
}

/// One `log_metrics` result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metric {
    /// The caller's label.
    pub label: String,
    /// Window start, Unix seconds.
    pub timestamp_start: f64,
    /// Window end, Unix seconds.
    pub timestamp_end: f64,
    /// The process.
    pub pid: u32,
    /// Energy.
    pub energy: MetricEnergy,
    /// Share of the host's busy CPU time in the window.
    pub allocation_ratio: f64,
    /// `ebpf`, `procfs` or `monitor_only`.
    pub attribution_mode: String,
    /// `sysfs`, `msr`, `model`, or None without an agent.
    pub energy_source: Option<String>,
    /// Relative standard uncertainty of the energy.
    pub uncertainty_rel: Option<f64>,
    /// Anything the caller should know (re-baselined, agent unreachable).
    pub note: Option<String>,
}

/// Logs the calling process's energy between calls.
pub struct EnergyLogger {
    socket: PathBuf,
    pid: u32,
    client: Option<Client>,
    last: Option<Reading>,
    last_local: (f64, u64),
}

fn own_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

impl EnergyLogger {
    /// A logger for this process, talking to the socket given, or `$CARBON_OPS_SOCKET`, or
    /// the default. Never fails: an absent agent means monitor-only until it appears.
    pub fn new(socket: Option<PathBuf>) -> EnergyLogger {
        let mut l = EnergyLogger {
            socket: socket_path(socket.as_deref()),
            pid: std::process::id(),
            client: None,
            last: None,
            last_local: (crate::agent::engine::unix_now(), own_cpu_ns()),
        };
        l.last = l.read().ok().map(|(r, _)| r);
        l
    }

    fn read(&mut self) -> Result<(Reading, Value), super::ClientError> {
        if self.client.is_none() {
            self.client = Some(Client::connect(&self.socket)?);
        }
        let Some(client) = self.client.as_mut() else {
            return Err(super::ClientError::Io(std::io::Error::other("no client")));
        };
        match client.request("process", json!({"pid": self.pid})) {
            Ok(v) => Ok((
                Reading {
                    at: v["at"].as_f64().unwrap_or(0.0),
                    energy_uj: v["energy_uj"].as_u64().unwrap_or(0),
                    cpu_time_ns: v["cpu_time_ns"].as_u64().unwrap_or(0),
                    host_busy_cpu_ns: v["host_busy_cpu_ns"].as_u64().unwrap_or(0),
                },
                v,
            )),
            Err(e) => {
                self.client = None;
                Err(e)
            }
        }
    }

    /// The energy of this process since the previous call (or since the logger was made).
    pub fn log_metrics(&mut self, label: &str) -> Metric {
        let local_now = (crate::agent::engine::unix_now(), own_cpu_ns());
        let local_prev = std::mem::replace(&mut self.last_local, local_now);
        match (self.read(), self.last) {
            (Ok((now, v)), Some(prev)) => {
                self.last = Some(now);
                let uj = now.energy_uj.saturating_sub(prev.energy_uj);
                let cpu = now.cpu_time_ns.saturating_sub(prev.cpu_time_ns);
                let host = now.host_busy_cpu_ns.saturating_sub(prev.host_busy_cpu_ns);
                Metric {
                    label: label.to_owned(),
                    timestamp_start: prev.at,
                    timestamp_end: now.at,
                    pid: self.pid,
                    energy: MetricEnergy {
                        energy_wh_total: Some(crate::units::MicroJoules(uj).watt_hours()),
                        energy_uj: Some(uj),
                        cpu_time_ns: cpu,
                    },
                    allocation_ratio: if host == 0 {
                        0.0
                    } else {
                        (cpu as f64 / host as f64).clamp(0.0, 1.0)
                    },
                    attribution_mode: v["attribution_mode"].as_str().unwrap_or("").to_owned(),
                    energy_source: v["energy_source"].as_str().map(str::to_owned),
                    uncertainty_rel: v["uncertainty_rel"].as_f64(),
                    note: None,
                }
            }
            (Ok((now, v)), None) => {
                // The agent came (back): this call only sets the baseline.
                self.last = Some(now);
                let mut m = self.monitor_only(label, local_prev, local_now);
                m.attribution_mode = v["attribution_mode"].as_str().unwrap_or("").to_owned();
                m.energy_source = v["energy_source"].as_str().map(str::to_owned);
                m.note = Some(
                    "agent reached: baseline taken, energy is reported from the next call".into(),
                );
                m
            }
            (Err(e), _) => {
                self.last = None;
                let mut m = self.monitor_only(label, local_prev, local_now);
                m.note = Some(format!("monitor_only: {e}"));
                m
            }
        }
    }

    fn monitor_only(&self, label: &str, prev: (f64, u64), now: (f64, u64)) -> Metric {
        Metric {
            label: label.to_owned(),
            timestamp_start: prev.0,
            timestamp_end: now.0,
            pid: self.pid,
            energy: MetricEnergy {
                energy_wh_total: None,
                energy_uj: None,
                cpu_time_ns: now.1.saturating_sub(prev.1),
            },
            allocation_ratio: 0.0,
            attribution_mode: "monitor_only".into(),
            energy_source: None,
            uncertainty_rel: None,
            note: None,
        }
    }
}

/// `log_metrics(label)` on a process-wide logger created on first use.
pub fn log_metrics(label: &str) -> Metric {
    static LOGGER: std::sync::Mutex<Option<EnergyLogger>> = std::sync::Mutex::new(None);
    let mut guard = LOGGER.lock().unwrap_or_else(|p| p.into_inner());
    guard
        .get_or_insert_with(|| EnergyLogger::new(None))
        .log_metrics(label)
}
