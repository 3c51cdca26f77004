//! The `carbon-ops` client CLI: `status`, `process PID`, `top`, `estimate`, `ledger`.
//! Each talks to the agent over its socket (`--socket`, or `$CARBON_OPS_SOCKET`) and prints a
//! readable table, or the agent's JSON with `--json`. `estimate --energy-wh` and `ledger`
//! work without an agent.

use std::{io::Write, path::PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use crate::client::{Client, socket_path};

/// `carbon-ops`.
#[derive(Debug, Parser)]
#[command(
    name = "carbon-ops",
    version,
    about = "Ask carbon-ops-agent what processes cost in energy and carbon"
)]
pub struct Cli {
    /// Agent socket (default: $CARBON_OPS_SOCKET, else /run/carbon-ops.sock).
    #[arg(long, global = true)]
    pub socket: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Agent status: energy source, attribution mode, zones, host energy.
    Status {
        /// Print the agent's JSON.
        #[arg(long)]
        json: bool,
    },
    /// One process's CPU time and energy.
    Process {
        /// Its PID.
        pid: u32,
        /// Print the agent's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Live view: host power by zone, processes by power (`--once --json` for scripts);
    /// `--by pod|container|cgroup` lists groups instead.
    Top(crate::ux::top::TopArgs),
    /// Run a command and report its tree's energy and carbon (like `perf stat`).
    Run(crate::ux::run::RunArgs),
    /// Render a ledger or a run summary to a self-contained SVG or HTML report.
    Report(crate::ux::report::ReportArgs),
    /// Energy of a cgroup subtree, a Kubernetes pod or a container.
    Cgroup {
        /// A cgroup v2 path (it and everything below).
        #[arg(long)]
        path: Option<String>,
        /// A pod UID.
        #[arg(long)]
        pod_uid: Option<String>,
        /// A pod as namespace/name (when the agent has pod names: --kubelet-pods-url).
        #[arg(long)]
        pod: Option<String>,
        /// A container id (or a prefix of one).
        #[arg(long)]
        container_id: Option<String>,
        /// Print the agent's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Carbon estimate for an energy figure or a process.
    Estimate(Box<crate::carbon::cli::EstimateArgs>),
    /// Verify, show or append to a ledger file (no agent needed).
    Ledger {
        /// The ledger command.
        #[command(subcommand)]
        cmd: crate::ledger::cli::LedgerCommand,
    },
}

fn ask(socket: Option<&PathBuf>, op: &str, fields: Value) -> Result<Value> {
    let mut c = Client::connect(&socket_path(socket.map(PathBuf::as_path)))?;
    Ok(c.request(op, fields)?)
}

/// Runs the CLI; returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    let socket = cli.socket.as_ref();
    match cli.command {
        Command::Status { json } => {
            let v = ask(socket, "status", json!({}))?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                write!(out, "{}", render_status(&v))?;
            }
        }
        Command::Process { pid, json } => {
            let v = ask(socket, "process", json!({"pid": pid}))?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                write!(out, "{}", render_process(&v))?;
            }
        }
        Command::Top(args) => {
            if let Some(group) = args.by.group() {
                let v = ask(socket, "top", json!({"n": args.n, "by": group}))?;
                if args.json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                } else {
                    write!(out, "{}", crate::fleet::service::render_top_groups(&v))?;
                }
                return Ok(0);
            }
            return crate::ux::top::run(socket.map(PathBuf::as_path), &args);
        }
        Command::Run(args) => return crate::ux::run::run(socket.map(PathBuf::as_path), &args),
        Command::Report(args) => return crate::ux::report::run(&args),
        Command::Cgroup {
            path,
            pod_uid,
            pod,
            container_id,
            json,
        } => {
            let v = ask(
                socket,
                "cgroup",
                json!({"path": path, "pod_uid": pod_uid, "pod": pod, "container_id": container_id}),
            )?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                write!(out, "{}", crate::fleet::service::render_cgroup(&v))?;
            }
        }
        Command::Ledger { cmd } => return crate::ledger::cli::run(cmd),
        Command::Estimate(args) => {
            if args.energy_wh.is_some() || args.list_regions {
                return crate::carbon::cli::run(*args);
            }
            let req = crate::carbon::cli::request_from_args(&args)?;
            let v = ask(socket, "estimate", serde_json::to_value(&req)?)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
    }
    Ok(0)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// Human rendering of `status`.
pub fn render_status(v: &Value) -> String {
    let e = &v["energy"];
    let label = if v["energy_source"] == "model" {
        " (MODEL ESTIMATE, not measured)"
    } else {
        ""
    };
    let mut s = format!(
        "carbon-ops-agent {}  up {:.0} s\nenergy source   {}{}\nattribution     {}\ninterval        {} ms\nuncertainty     ±{:.0} % (1σ)\n\n",
        v["version"].as_str().unwrap_or("?"),
        f(&v["uptime_s"]),
        v["energy_source"].as_str().unwrap_or("?"),
        label,
        v["attribution_mode"].as_str().unwrap_or("?"),
        v["interval_ms"],
        f(&v["uncertainty_rel"]) * 100.0,
    );
    s += &format!(
        "{:<24} {:>8} {:>16} {:>6}\n",
        "ZONE", "KIND", "ENERGY (J)", "STALE"
    );
    for z in v["zones"].as_array().into_iter().flatten() {
        s += &format!(
            "{:<24} {:>8} {:>16.3} {:>6}\n",
            z["name"].as_str().unwrap_or("?"),
            z["kind"].as_str().unwrap_or("?"),
            f(&z["energy_uj"]) / 1e6,
            if z["stale"] == true { "yes" } else { "" }
        );
    }
    s += &format!(
        "\nhost energy     {:.3} J = attributed {:.3} J + idle {:.3} J + unattributed {:.3} J\n",
        f(&e["total_uj"]) / 1e6,
        f(&e["attributed_uj"]) / 1e6,
        f(&e["idle_uj"]) / 1e6,
        f(&e["unattributed_uj"]) / 1e6
    );
    s += &crate::telemetry::render::render_status(v);
    s
}

/// Human rendering of `process`.
pub fn render_process(v: &Value) -> String {
    let mut s = format!(
        "pid             {}\ncomm            {}\nuid             {}\ncpu time        {:.3} s\nenergy          {:.3} J ({:.6} Wh) ±{:.0} %\nallocation      {:.1} % of busy CPU time\nstate           {}\nsource          {} / {}\n",
        v["pid"],
        v["comm"].as_str().unwrap_or("?"),
        v["uid"],
        f(&v["cpu_time_ns"]) / 1e9,
        f(&v["energy_uj"]) / 1e6,
        f(&v["energy_wh_total"]),
        f(&v["uncertainty_rel"]) * 100.0,
        f(&v["allocation_ratio"]) * 100.0,
        if v["exited"].is_null() {
            "running"
        } else {
            "exited"
        },
        v["energy_source"].as_str().unwrap_or("?"),
        v["attribution_mode"].as_str().unwrap_or("?"),
    );
    s += &crate::telemetry::render::render_process(v);
    s
}

/// Human rendering of `top`.
pub fn render_top(v: &Value) -> String {
    let mut s = format!(
        "{:>8} {:<16} {:>6} {:>10} {:>14} {:>10}\n",
        "PID", "COMM", "UID", "POWER (W)", "ENERGY (J)", "CPU (s)"
    );
    for p in v["processes"].as_array().into_iter().flatten() {
        s += &format!(
            "{:>8} {:<16} {:>6} {:>10.3} {:>14.3} {:>10.2}\n",
            p["pid"].as_u64().unwrap_or(0),
            p["comm"].as_str().unwrap_or("?"),
            p["uid"].as_u64().unwrap_or(u64::from(u32::MAX)),
            f(&p["power_w"]),
            f(&p["energy_uj"]) / 1e6,
            f(&p["cpu_time_ns"]) / 1e9
        );
    }
    if v["energy_source"] == "model" {
        s += "(energy source: MODEL ESTIMATE, not measured)\n";
    }
    s
}
