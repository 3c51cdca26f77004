//! The summary `carbon-ops run` prints when its command ends (pure): its JSON shape
//! (`carbon-ops.run/1`, documented in `docs/reports.md`), the `perf stat`-like table, and the
//! exit-code rule.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::power::ZonePower;

/// Schema tag of the run JSON.
pub const RUN_SCHEMA: &str = "carbon-ops.run/1";

/// What the agent said about the command's process tree (the `tree` op, minus `run` itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeEnergy {
    /// `sysfs`, `msr` or `model`.
    pub energy_source: String,
    /// `ebpf` or `procfs`.
    pub attribution_mode: String,
    /// Processes in the tree (the command and every descendant, `run` itself excluded).
    pub processes: u64,
    /// CPU time of the tree as the agent accounted it, ns.
    pub cpu_time_ns: u64,
    /// Energy attributed to the tree, µJ.
    pub energy_uj: u64,
    /// Same in Wh.
    pub energy_wh: f64,
    /// Relative standard uncertainty of the energy (σ/μ).
    pub uncertainty_rel: f64,
    /// Standard uncertainty, Wh (`energy_wh × uncertainty_rel`).
    pub energy_sigma_wh: f64,
}

/// Kernel CPU accounting of the reaped tree (`getrusage(RUSAGE_CHILDREN)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuTime {
    /// User seconds.
    pub user_s: f64,
    /// System seconds.
    pub system_s: f64,
}

impl CpuTime {
    /// User + system.
    pub fn total_s(&self) -> f64 {
        self.user_s + self.system_s
    }
}

/// Host power during the run, one entry per `status` poll (about once a second).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerSample {
    /// Seconds since the command started (end of the window).
    pub t: f64,
    /// Mean power of each zone over the window.
    pub zones: Vec<ZonePower>,
}

/// Everything `carbon-ops run` knows when its command has ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Always [`RUN_SCHEMA`].
    pub schema: String,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// PID of the command.
    pub pid: u32,
    /// PID of `carbon-ops run` (the root of the tree the agent was asked about).
    pub run_pid: u32,
    /// Exit code `run` returns: the command's, or 128 + signal.
    pub exit_code: i32,
    /// Signal that ended the command, if one did.
    pub signal: Option<i32>,
    /// Unix seconds at spawn and after the last descendant was reaped.
    pub start: f64,
    /// See `start`.
    pub end: f64,
    /// `end − start`, s.
    pub duration_s: f64,
    /// Kernel CPU time of every reaped descendant.
    pub cpu: CpuTime,
    /// `agent` when the agent measured the tree, `monitor_only` when it could not.
    pub mode: String,
    /// The agent's figures, when available.
    pub energy: Option<TreeEnergy>,
    /// Why energy is unavailable, when it is.
    pub energy_unavailable: Option<String>,
    /// The carbon record (`estimate` answer), when energy is available.
    pub carbon: Option<Value>,
    /// Why no carbon figure, when energy was available but the estimate failed.
    pub carbon_unavailable: Option<String>,
    /// Host power by zone during the run.
    pub samples: Vec<PowerSample>,
    /// Host energy over the run (agent totals differenced), µJ.
    pub host_energy_uj: Option<u64>,
    /// Descendants still running when `run` stopped waiting (`--no-wait-descendants`).
    pub descendants_left: u32,
}

/// Exit code for a wait status: the code, or 128 + the signal number (the shell's rule).
pub fn exit_code(code: Option<i32>, signal: Option<i32>) -> i32 {
    match (code, signal) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    }
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// The `perf stat`-like table.
pub fn render(s: &RunSummary) -> String {
    let shown: Vec<String> = s
        .command
        .iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$;&|".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.clone()
            }
        })
        .collect();
    let mut out = format!("\n carbon-ops run: {}\n\n", shown.join(" "));
    let row = |k: &str, v: String| format!(" {v:>22}  {k}\n");
    out += &row("seconds elapsed", format!("{:.3}", s.duration_s));
    out += &row(
        &format!(
            "seconds CPU (user {:.3} + sys {:.3}, kernel rusage)",
            s.cpu.user_s, s.cpu.system_s
        ),
        format!("{:.3}", s.cpu.total_s()),
    );
    match &s.energy {
        Some(e) => {
            let j = e.energy_uj as f64 / 1e6;
            let label = if e.energy_source == "model" {
                " (MODEL ESTIMATE, not measured)"
            } else {
                ""
            };
            out += &row(
                "seconds CPU (agent)",
                format!("{:.3}", e.cpu_time_ns as f64 / 1e9),
            );
            out += &row("processes in the tree", e.processes.to_string());
            out += &row(
                &format!("joules energy (±1σ){label}"),
                format!("{j:.3} ± {:.3}", j * e.uncertainty_rel),
            );
            out += &row("Wh energy", format!("{:.6}", e.energy_wh));
            if s.duration_s > 0.0 {
                out += &row("W mean power", format!("{:.3}", j / s.duration_s));
            }
            if let Some(h) = s.host_energy_uj {
                out += &row(
                    "joules host energy over the run",
                    format!("{:.3}", h as f64 / 1e6),
                );
            }
            out += &format!(
                " {:>22}  energy source / attribution\n",
                format!("{} / {}", e.energy_source, e.attribution_mode)
            );
        }
        None => {
            out += &format!(
                " {:>22}  energy unavailable (monitor_only): {}\n",
                "-",
                s.energy_unavailable.as_deref().unwrap_or("no agent")
            );
        }
    }
    if let Some(c) = &s.carbon {
        let g = num(c, "carbon_emissions_gco2").unwrap_or(f64::NAN);
        let meta = c.get("meta").cloned().unwrap_or(Value::Null);
        let (lo, hi) = (
            num(&meta, "ci_lower_g").unwrap_or(f64::NAN),
            num(&meta, "ci_upper_g").unwrap_or(f64::NAN),
        );
        let conf = num(&meta, "confidence_level_pct").unwrap_or(95.0);
        out += &row(
            &format!(
                "g CO2e [{conf:.0} % interval {lo:.4} – {hi:.4}], region {}, {} gCO2e/kWh, PUE {}",
                c.get("region").and_then(Value::as_str).unwrap_or("?"),
                num(c, "carbon_intensity_used_gco2_kwh").unwrap_or(f64::NAN),
                num(c, "pue_used").unwrap_or(f64::NAN),
            ),
            format!("{g:.4}"),
        );
        if let Some(l) = c.get("ledger") {
            out += &format!(" {:>22}  recorded in the ledger (seq {})\n", "", l["seq"]);
        }
    } else if let Some(why) = &s.carbon_unavailable {
        out += &format!(" {:>22}  carbon unavailable: {why}\n", "-");
    }
    if s.descendants_left > 0 {
        out += &format!(
            " {:>22}  descendants still running when run stopped waiting (not counted after)\n",
            s.descendants_left
        );
    }
    match s.signal {
        Some(sig) => out += &format!("\n command killed by signal {sig} (exit {})\n", s.exit_code),
        None if s.exit_code != 0 => out += &format!("\n command exited with {}\n", s.exit_code),
        None => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(Some(3), None), 3);
        assert_eq!(exit_code(None, Some(9)), 137);
        assert_eq!(exit_code(None, Some(15)), 143);
    }
}
