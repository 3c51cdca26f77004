//! What the daemon needs to switch the fleet view on: its flags ([`FleetArgs`], flattened
//! into the agent's), the shared [`Fleet`], and the metrics server on a bound listener.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use super::{
    http::{HttpLimits, serve_metrics},
    metrics::MetricsConfig,
    resolver::Resolver,
    service::Fleet,
};
use crate::agent::engine::Shared;

/// The agent's fleet flags.
#[derive(Clone, Debug, clap::Args)]
pub struct FleetArgs {
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464); off when absent.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Processes exported one by one in the metrics, most energy first (0: none).
    #[arg(long, default_value_t = 10)]
    pub metrics_top_processes: usize,
    /// The host's cgroup v2 mount (default: the cgroup2 mount listed in /proc/self/mountinfo).
    #[arg(long)]
    pub cgroup_root: Option<PathBuf>,
}

impl FleetArgs {
    /// The fleet view over `shared`; `proc_root` is the agent's procfs root.
    pub fn fleet(&self, shared: Arc<Shared>, proc_root: PathBuf) -> Arc<Fleet> {
        let resolver = Resolver::open(proc_root, self.cgroup_root.clone());
        let cfg = MetricsConfig {
            process_top_n: self.metrics_top_processes,
        };
        Arc::new(Fleet::new(shared, resolver, cfg))
    }
}

/// Binds `addr` and serves `/metrics` from `fleet` on the current runtime until `shutdown`.
pub async fn spawn_metrics(
    addr: SocketAddr,
    fleet: Arc<Fleet>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(serve_metrics(
        listener,
        move || fleet.render_metrics(),
        HttpLimits::default(),
        shutdown,
    ));
    Ok((bound, handle))
}
