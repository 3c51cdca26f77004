//! `carbon-ops run [--region R] [--ledger] [--json] -- CMD ARGS…`: runs a command and, when it
//! ends, reports the energy and carbon of its whole process tree, like `perf stat`.
//!
//! `run` makes itself a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`) before spawning, so
//! descendants orphaned by an early-exiting parent re-parent to it: it reaps them (their CPU
//! time then shows in `getrusage(RUSAGE_CHILDREN)`) and, by default, waits for all of them.
//! While the command runs, a thread polls the agent's `status` each second (host power by
//! zone). At the end `run` waits two agent ticks and asks `tree` for its own pid (the tree
//! rooted at `run`, minus `run`'s own `process` figures), then `estimate` over the run's span
//! with `energy_sigma_wh = energy × uncertainty_rel`. Without an agent the command still runs
//! and CPU time comes from the kernel alone (`monitor_only`). The exit code is the command's
//! (128 + n for signal n). The summary goes to stderr (the command owns stdout).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    sync::mpsc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::{
    power::{Snapshot, zone_power},
    summary::{CpuTime, PowerSample, RUN_SCHEMA, RunSummary, TreeEnergy, exit_code, render},
};
use crate::client::{Client, ClientError, socket_path};

/// `carbon-ops run`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// Region for the carbon estimate (`FR`, `gcp:europe-west1`); default: the agent's.
    #[arg(long)]
    pub region: Option<String>,
    /// Append the carbon record to the agent's ledger (`estimate` with `record: true`).
    #[arg(long)]
    pub ledger: bool,
    /// Print the summary as JSON (`carbon-ops.run/1`) on stderr instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON summary to this file (input for `carbon-ops report`).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Return when the command exits, without waiting for descendants it left running.
    #[arg(long)]
    pub no_wait_descendants: bool,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Lets Ctrl-C and Ctrl-\ reach the command (same process group) without ending `run` before
/// it can report. A handler, not `SIG_IGN`: handlers are reset by `exec`, ignored signals
/// would be inherited by the command.
fn catch_terminal_signals(on: bool) {
    let handler = if on {
        ignore_signal as extern "C" fn(libc::c_int) as libc::sighandler_t
    } else {
        libc::SIG_DFL
    };
    for sig in [libc::SIGINT, libc::SIGQUIT] {
        // SAFETY: installing a handler that does nothing (async-signal-safe) or the default.
        unsafe { libc::signal(sig, handler) };
    }
}

fn become_subreaper() {
    // SAFETY: prctl with integer arguments only; failure leaves orphans going to init, which
    // only loses their CPU time from rusage (the agent's `tree` still follows them).
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!("prctl(PR_SET_CHILD_SUBREAPER) failed");
    }
}

/// Reaps descendants re-parented to us: all of them (`block`), or only those already exited.
fn reap_descendants(block: bool) {
    loop {
        let mut status = 0;
        let flags = if block { 0 } else { libc::WNOHANG };
        // SAFETY: waitpid on any child with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
        if pid > 0 {
            continue;
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return;
    }
}

/// Children of this process still alive (from `/proc/self/task/*/children`; 0 if unknown).
fn live_children() -> u32 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .map(|s| s.split_whitespace().count() as u32)
        .sum()
}

fn children_rusage() -> CpuTime {
    // SAFETY: zeroed rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    CpuTime {
        user_s: secs(ru.ru_utime),
        system_s: secs(ru.ru_stime),
    }
}

/// Polls `status` every second on its own connection until told to stop.
fn sampler(socket: PathBuf, stop: mpsc::Receiver<()>) -> Vec<Snapshot> {
    let mut out = Vec::new();
    let Ok(mut c) = Client::connect(&socket) else {
        return out;
    };
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(Duration::from_secs(1)) {
        match c.request("status", json!({})) {
            Ok(v) => out.extend(Snapshot::from_status(&v)),
            Err(_) => break,
        }
    }
    out
}

/// Sums the agent's `tree` for `root` minus `root`'s own `process` figures.
fn tree_energy(c: &mut Client, root: u32) -> Result<TreeEnergy, ClientError> {
    let t = c.request("tree", json!({"pid": root}))?;
    let own = c.request("process", json!({"pid": root})).ok();
    let u = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (own_uj, own_ns, own_n) = own
        .as_ref()
        .map_or((0, 0, 0), |p| (u(p, "energy_uj"), u(p, "cpu_time_ns"), 1));
    let energy_uj = u(&t, "energy_uj").saturating_sub(own_uj);
    let rel = t["uncertainty_rel"].as_f64().unwrap_or(0.0);
    let energy_wh = energy_uj as f64 / 3.6e9;
    Ok(TreeEnergy {
        energy_source: t["energy_source"].as_str().unwrap_or("?").to_owned(),
        attribution_mode: t["attribution_mode"].as_str().unwrap_or("?").to_owned(),
        processes: u(&t, "processes").saturating_sub(own_n),
        cpu_time_ns: u(&t, "cpu_time_ns").saturating_sub(own_ns),
        energy_uj,
        energy_wh,
        uncertainty_rel: rel,
        energy_sigma_wh: energy_wh * rel,
    })
}

fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Agent { code, .. } if code == "unknown_op" => {
            "this agent has no `tree` op (upgrade carbon-ops-agent)".to_owned()
        }
        other => other.to_string(),
    }
}

/// Runs the command in `args`; returns the exit code to leave with.
pub fn run(socket: Option<&Path>, args: &RunArgs) -> Result<i32> {
    let socket = socket_path(socket);
    let (program, rest) = args
        .command
        .split_first()
        .context("no command given; usage: carbon-ops run -- CMD ARGS…")?;
    become_subreaper();
    let mut agent = Client::connect(&socket);
    let status0 = agent
        .as_mut()
        .ok()
        .and_then(|c| c.request("status", json!({})).ok());
    let interval_ms = status0
        .as_ref()
        .and_then(|s| s["interval_ms"].as_u64())
        .unwrap_or(100);
    let snap0 = status0.as_ref().and_then(Snapshot::from_status);
    let (stop_tx, stop_rx) = mpsc::channel();
    let sampling = status0
        .is_some()
        .then(|| std::thread::spawn(move || sampler(socket, stop_rx)));

    catch_terminal_signals(true);
    let start = unix_now();
    let spawned = Command::new(program).args(rest).spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            catch_terminal_signals(false);
            eprintln!("carbon-ops run: cannot run `{program}`: {e}");
            return Ok(match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                _ => 126,
            });
        }
    };
    let pid = child.id();
    let status = child.wait().context("waiting for the command")?;
    reap_descendants(!args.no_wait_descendants);
    let end = unix_now();
    catch_terminal_signals(false);
    let descendants_left = if args.no_wait_descendants {
        live_children()
    } else {
        0
    };
    let cpu = children_rusage();
    drop(stop_tx);
    let mut snaps: Vec<Snapshot> = snap0.into_iter().collect();
    if let Some(h) = sampling {
        snaps.extend(h.join().unwrap_or_default());
    }

    use std::os::unix::process::ExitStatusExt;
    let code = exit_code(status.code(), status.signal());
    let mut summary = RunSummary {
        schema: RUN_SCHEMA.to_owned(),
        command: args.command.clone(),
        pid,
        run_pid: std::process::id(),
        exit_code: code,
        signal: status.signal(),
        start,
        end,
        duration_s: end - start,
        cpu,
        mode: "monitor_only".to_owned(),
        energy: None,
        energy_unavailable: None,
        carbon: None,
        carbon_unavailable: None,
        samples: Vec::new(),
        host_energy_uj: None,
        descendants_left,
    };
    match agent {
        Err(e) => summary.energy_unavailable = Some(e.to_string()),
        Ok(ref mut c) => finish_with_agent(c, &mut summary, &mut snaps, interval_ms, args),
    }
    summary.samples = snaps
        .windows(2)
        .filter_map(|w| {
            let zones = zone_power(&w[0], &w[1]);
            (!zones.is_empty()).then(|| PowerSample {
                t: w[1].at - start,
                zones,
            })
        })
        .collect();

    let text = serde_json::to_string_pretty(&summary)?;
    if let Some(path) = &args.output {
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing the run summary to {}", path.display()))?;
    }
    let mut err = std::io::stderr().lock();
    if args.json {
        writeln!(err, "{text}")?;
    } else {
        write!(err, "{}", render(&summary))?;
    }
    Ok(code)
}

fn finish_with_agent(
    c: &mut Client,
    summary: &mut RunSummary,
    snaps: &mut Vec<Snapshot>,
    interval_ms: u64,
    args: &RunArgs,
) {
    let at_end = c
        .request("status", json!({}))
        .ok()
        .and_then(|v| Snapshot::from_status(&v));
    if let (Some(first), Some(last)) = (snaps.first(), at_end.as_ref()) {
        summary.host_energy_uj = Some(last.host_uj.saturating_sub(first.host_uj));
    }
    snaps.extend(at_end);
    // Two ticks, so the agent has accounted the last CPU time of the tree.
    std::thread::sleep(Duration::from_millis(2 * interval_ms + 50));
    match tree_energy(c, summary.run_pid) {
        Err(e) => summary.energy_unavailable = Some(describe(&e)),
        Ok(t) => {
            let req = json!({
                "energy_wh": t.energy_wh,
                "energy_sigma_wh": t.energy_sigma_wh,
                "start_ts": summary.start,
                "end_ts": summary.end.max(summary.start),
                "region": args.region,
                "record": args.ledger,
            });
            match c.request("estimate", req) {
                Ok(v) => summary.carbon = Some(v),
                Err(e) => summary.carbon_unavailable = Some(e.to_string()),
            }
            summary.mode = "agent".to_owned();
            summary.energy = Some(t);
        }
    }
}
