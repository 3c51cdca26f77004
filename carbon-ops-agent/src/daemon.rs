//! `carbon-ops-agent`: flags and config file, start-up (energy source, CPU accounting,
//! ledger, socket), the tick thread, the pod-name thread (when configured), the server, and
//! shutdown in order on SIGINT/SIGTERM (poller, attribution, ledger flush, server, pod names,
//! socket removed).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser, ValueEnum};

use crate::{
    agent::engine::{AgentInfo, Engine, Shared},
    attribution::IdlePolicy,
    ebpf::{EbpfTaskStats, VMLINUX_BTF},
    energy::auto::{EnergyArgs, parse_interval},
    server::{self, Limits, ops::Ctx},
    tasks::{TaskStats, procfs::ProcfsTaskStats},
};

/// How CPU time is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AttributionArg {
    /// eBPF where it loads, else procfs (with one log line saying why).
    Auto,
    /// eBPF only: fail if it cannot load.
    Ebpf,
    /// `/proc` polling only.
    Procfs,
}

/// The daemon's flags. Every flag can also be a key of the TOML file given with `--config`
/// (same name, `_` or `-`); flags on the command line win.
#[derive(Debug, Parser)]
#[command(
    name = "carbon-ops-agent",
    version,
    about = "carbon-ops agent: per-process energy and carbon",
    args_override_self = true
)]
pub struct AgentArgs {
    /// TOML config file (keys: the long flag names).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Energy sources.
    #[command(flatten)]
    pub energy: EnergyArgs,
    /// Host telemetry (CPU, memory, GPU).
    #[command(flatten)]
    pub telemetry: crate::telemetry::args::TelemetryArgs,
    /// CPU accounting: auto (ebpf, else procfs), ebpf or procfs.
    #[arg(long, value_enum, default_value_t = AttributionArg::Auto)]
    pub attribution: AttributionArg,
    /// Where idle CPU time's energy goes: idle_bucket or spread.
    #[arg(long, value_enum, default_value_t = IdlePolicy::IdleBucket)]
    pub idle_policy: IdlePolicy,
    /// Socket path.
    #[arg(long, default_value = "/run/carbon-ops.sock")]
    pub socket: PathBuf,
    /// Group given read/write access to the socket.
    #[arg(long, default_value = "carbon-users")]
    pub socket_group: String,
    /// Ledger file.
    #[arg(long, default_value = "/var/lib/carbon-ops/ledger.jsonl")]
    pub ledger: PathBuf,
    /// Run without a ledger.
    #[arg(long)]
    pub no_ledger: bool,
    /// Record each process's final CPU time and energy in the ledger when it exits.
    #[arg(long)]
    pub ledger_exits: bool,
    /// Granularity of energy figures served to non-root peers (side-channel mitigation).
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub resolution: Duration,
    /// How long exited processes stay queryable.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub retention: Duration,
    /// Kernel BTF (for the eBPF programs' field offsets).
    #[arg(long, default_value = VMLINUX_BTF)]
    pub btf: PathBuf,
    /// Region for `estimate` requests that name none (ISO country code or cloud region).
    #[arg(long)]
    pub region: Option<String>,
    /// Most connections served at once.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Prometheus endpoint and cgroup view.
    #[command(flatten)]
    pub fleet: crate::fleet::wiring::FleetArgs,
}

/// Parses a human duration: a number with `ms`, `s`, `m` or `h` (`500ms`, `30s`, `10m`, `1h`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        return Err(format!("`{text}` needs a unit: ms, s, m or h (e.g. 10m)"));
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10m"))?;
    if !v.is_finite() || v < 0.0 || v * scale > 365.0 * 86400.0 {
        return Err(format!("`{text}` is out of range (0 to 365 days)"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// Parses argv, with the `--config` file's keys inserted before the command line's flags.
pub fn parse_args(argv: Vec<String>) -> Result<AgentArgs> {
    let first = AgentArgs::try_parse_from(&argv)?;
    let Some(path) = &first.config else {
        return Ok(first);
    };
    let mut full = vec![argv.first().cloned().unwrap_or_default()];
    full.extend(config_as_args(path)?);
    full.extend(argv.into_iter().skip(1));
    Ok(AgentArgs::try_parse_from(full)?)
}

/// Reads a TOML config and turns it into `--key value` arguments; unknown keys are refused.
pub fn config_as_args(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("config {} is not valid TOML", path.display()))?;
    let cmd = AgentArgs::command();
    let known: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .filter(|l| l != "config" && l != "help" && l != "version")
        .collect();
    let mut out = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        if !known.contains(&flag) {
            bail!(
                "unknown key `{key}` in config {}; known keys: {}",
                path.display(),
                known.join(", ")
            );
        }
        match value {
            toml::Value::Boolean(true) => out.push(format!("--{flag}")),
            toml::Value::Boolean(false) => {}
            toml::Value::String(s) => out.extend([format!("--{flag}"), s]),
            toml::Value::Integer(i) => out.extend([format!("--{flag}"), i.to_string()]),
            toml::Value::Float(f) => out.extend([format!("--{flag}"), f.to_string()]),
            toml::Value::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|v| v.to_string().trim_matches('"').to_owned())
                    .collect();
                out.extend([format!("--{flag}"), parts.join(",")]);
            }
            other => bail!("config key `{key}` has an unsupported value {other}"),
        }
    }
    Ok(out)
}

fn random_id() -> String {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        let t = crate::tasks::monotonic_now_ns() ^ u64::from(std::process::id());
        bytes = t.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer to an rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < lim.rlim_max
    {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above; raising the soft limit up to the hard limit is always allowed.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

fn task_stats(args: &AgentArgs) -> Result<(Box<dyn TaskStats>, Option<String>)> {
    let procfs = || {
        Box::new(ProcfsTaskStats::new(
            args.energy.procfs_root.clone(),
            clk_tck(),
        )) as Box<dyn TaskStats>
    };
    match args.attribution {
        AttributionArg::Procfs => Ok((procfs(), None)),
        AttributionArg::Ebpf => {
            let s = EbpfTaskStats::load(&args.btf).map_err(anyhow::Error::new)?;
            Ok((Box::new(s), None))
        }
        AttributionArg::Auto => match EbpfTaskStats::load(&args.btf) {
            Ok(s) => Ok((Box::new(s), None)),
            Err(e) => {
                let why = format!("{:#}", anyhow::Error::new(e));
                tracing::warn!(
                    "eBPF unavailable, running in procfs attribution mode (misses processes shorter than a tick): {why}"
                );
                Ok((procfs(), Some(why)))
            }
        },
    }
}

fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100)
}

/// Runs the agent until SIGINT or SIGTERM.
pub fn run(args: AgentArgs) -> Result<()> {
    raise_fd_limit();
    let (meter, reason) = args
        .energy
        .select()
        .context("no energy source could be opened")?;
    let energy_source = meter.kind().as_str();
    let (tasks, attribution_reason) = task_stats(&args)?;
    let mode = tasks.mode();
    tracing::info!(
        energy_source,
        attribution = mode.as_str(),
        "carbon-ops-agent starting: {reason}"
    );
    let info = AgentInfo {
        version: env!("CARGO_PKG_VERSION"),
        instance_id: random_id(),
        energy_source,
        energy_source_reason: reason,
        attribution_mode: mode.as_str(),
        attribution_reason,
        interval_ms: u64::try_from(args.energy.interval.as_millis()).unwrap_or(u64::MAX),
        idle_policy: args.idle_policy.as_str(),
        resolution_ms: u64::try_from(args.resolution.as_millis()).unwrap_or(u64::MAX),
    };
    let shared = Arc::new(Shared::new(info, args.retention.as_secs_f64()));
    let fleet = args
        .fleet
        .fleet(shared.clone(), args.energy.procfs_root.clone());
    let pod_names = args
        .fleet
        .start_pod_names(&fleet, args.retention)
        .context("cannot start the pod-name thread")?;
    let ledger = crate::ledger_adapter::open(&args.ledger, args.no_ledger);
    let bound = server::socket::bind(&args.socket, &args.socket_group)?;
    let telemetry = crate::telemetry::Telemetry::new(args.telemetry.config(
        &args.energy.procfs_root,
        &args.energy.cpu_sysfs_root,
        u64::try_from(args.retention.as_nanos()).unwrap_or(u64::MAX),
    ));
    let engine = Engine::new(
        meter,
        telemetry,
        tasks,
        args.idle_policy,
        args.energy.procfs_root.clone(),
        shared.clone(),
        args.energy.interval,
        args.resolution,
    );
    let mut engine = engine;
    if args.ledger_exits {
        engine.exit_log = ledger.as_ref().and_then(|l| l.exit_recorder());
        if engine.exit_log.is_none() {
            tracing::warn!("--ledger-exits: no ledger is open, exits are not recorded");
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let engine_stop = stop.clone();
    let engine_thread = std::thread::Builder::new()
        .name("carbon-ops-tick".into())
        .spawn(move || engine.run(&engine_stop))
        .context("cannot start the tick thread")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let ctx = Arc::new(Ctx {
        shared,
        ledger: ledger.clone().map(|l| l as Arc<dyn server::ops::LedgerOps>),
        default_region: args.region.clone(),
        fleet: Some(fleet.clone()),
    });
    let metrics_addr = args.fleet.metrics_addr;
    let limits = Limits {
        max_connections: args.max_connections,
        ..Limits::default()
    };
    let socket_path = bound.path.clone();
    rt.block_on(async move {
        let listener = tokio::net::UnixListener::from_std(bound.listener)
            .context("cannot register the socket")?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let metrics = match metrics_addr {
            Some(addr) => {
                let (bound, h) = crate::fleet::wiring::spawn_metrics(addr, fleet, rx.clone())
                    .await
                    .with_context(|| format!("cannot listen for metrics on {addr}"))?;
                tracing::info!(%bound, "serving Prometheus metrics at /metrics");
                Some(h)
            }
            None => None,
        };
        let server = tokio::spawn(server::run(listener, ctx, limits, rx));
        tracing::info!(socket = %socket_path.display(), "serving");
        wait_for_signal().await?;
        tracing::info!("shutting down: poller, attribution, ledger, server");
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = tokio::task::spawn_blocking(move || engine_thread.join()).await;
        if let Some(l) = &ledger {
            l.flush();
        }
        let _ = tx.send(true);
        let _ = server.await;
        if let Some(m) = metrics {
            let _ = m.await;
        }
        Ok::<(), anyhow::Error>(())
    })?;
    if let Some(r) = pod_names {
        r.stop();
    }
    let _ = std::fs::remove_file(&args.socket);
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let a = parse_args(vec!["carbon-ops-agent".into()]).expect("parse");
        assert_eq!(a.socket, PathBuf::from("/run/carbon-ops.sock"));
        assert_eq!(a.socket_group, "carbon-users");
        assert_eq!(a.ledger, PathBuf::from("/var/lib/carbon-ops/ledger.jsonl"));
        assert_eq!(a.energy.interval, Duration::from_millis(100));
        assert_eq!(a.retention, Duration::from_secs(600));
        assert_eq!(a.resolution, Duration::from_secs(1));
        assert_eq!(a.attribution, AttributionArg::Auto);
        assert_eq!(a.idle_policy, IdlePolicy::IdleBucket);
    }

    #[test]
    fn config_file_sets_flags_and_the_command_line_wins() {
        let (_d, path) = write(
            "socket = \"/tmp/x.sock\"\nidle_policy = \"spread\"\ninterval = \"250ms\"\nno_ledger = true\nmsr_cpus = [0, 8]\n",
        );
        let argv = |extra: &[&str]| {
            let mut v = vec![
                "carbon-ops-agent".to_owned(),
                "--config".into(),
                path.display().to_string(),
            ];
            v.extend(extra.iter().map(|s| s.to_string()));
            v
        };
        let a = parse_args(argv(&[])).expect("parse");
        assert_eq!(a.socket, PathBuf::from("/tmp/x.sock"));
        assert_eq!(a.idle_policy, IdlePolicy::Spread);
        assert_eq!(a.energy.interval, Duration::from_millis(250));
        assert!(a.no_ledger);
        assert_eq!(a.energy.msr_cpus, Some(vec![0, 8]));
        let b = parse_args(argv(&["--socket", "/tmp/y.sock"])).expect("parse");
        assert_eq!(b.socket, PathBuf::from("/tmp/y.sock"));
    }

    #[test]
    fn pod_name_keys_in_the_config_file() {
        let (_d, path) = write(
            "kubelet_pods_url = \"https://10.0.3.17:10250/pods\"\nkubelet_token_file = \"/run/token\"\nkubelet_ca_file = \"/run/ca.crt\"\nkubelet_refresh = \"1m\"\n",
        );
        let a = parse_args(vec![
            "carbon-ops-agent".into(),
            "--config".into(),
            path.display().to_string(),
        ])
        .expect("parse");
        assert_eq!(
            a.fleet.kubelet_pods_url.as_deref(),
            Some("https://10.0.3.17:10250/pods")
        );
        assert_eq!(a.fleet.kubelet_token_file, PathBuf::from("/run/token"));
        assert_eq!(a.fleet.kubelet_ca_file, Some(PathBuf::from("/run/ca.crt")));
        assert_eq!(a.fleet.kubelet_refresh, Duration::from_secs(60));
        let (_d2, bad) = write("kubelet_url = \"https://x/pods\"\n");
        assert!(config_as_args(&bad).is_err());
    }

    #[test]
    fn unknown_config_keys_are_refused() {
        let (_d, path) = write("sockett = \"/tmp/x.sock\"\n");
        let err = config_as_args(&path).expect_err("unknown key");
        assert!(format!("{err}").contains("unknown key `sockett`"), "{err}");
        let (_d2, bad) = write("socket = [\n");
        assert!(config_as_args(&bad).is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("NaNs").is_err());
    }
}
