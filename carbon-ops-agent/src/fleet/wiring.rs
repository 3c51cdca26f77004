//! What the daemon needs to switch the fleet view on: its flags ([`FleetArgs`], flattened
//! into the agent's), the shared [`Fleet`], the pod-name refresher, and the metrics server on
//! a bound listener.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use super::{
    http::{HttpLimits, serve_metrics},
    kubelet::{DEFAULT_TOKEN_FILE, PodNamesConfig, Refresher, transport_for},
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
    /// Pod names and namespaces: a URL answering a Kubernetes PodList, fetched with the
    /// service-account token (e.g. https://$NODE_IP:10250/pods, the kubelet); off when absent.
    #[arg(long, value_parser = parse_pods_url)]
    pub kubelet_pods_url: Option<String>,
    /// Bearer token for --kubelet-pods-url, re-read on every fetch (tokens rotate).
    #[arg(long, default_value = DEFAULT_TOKEN_FILE)]
    pub kubelet_token_file: PathBuf,
    /// CA bundle that signs the kubelet's (or API server's) certificate, for https (default:
    /// the system's CAs).
    #[arg(long)]
    pub kubelet_ca_file: Option<PathBuf>,
    /// How often the pod list is fetched (at least 1s).
    #[arg(long, default_value = "30s", value_parser = parse_refresh)]
    pub kubelet_refresh: Duration,
}

/// An `http://` or `https://` URL.
fn parse_pods_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| format!("`{text}` must start with https:// or http://"))?;
    if rest.is_empty() || rest.starts_with('/') || text.chars().any(char::is_whitespace) {
        return Err(format!("`{text}` names no host"));
    }
    Ok(text.to_owned())
}

/// A duration of at least one second.
fn parse_refresh(text: &str) -> Result<Duration, String> {
    let d = crate::daemon::parse_duration(text)?;
    if d < Duration::from_secs(1) {
        return Err(format!("`{text}` is too short: at least 1s"));
    }
    Ok(d)
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

    /// Starts fetching pod names into `fleet` when `--kubelet-pods-url` is given. A pod that
    /// leaves the list keeps its name for `retention` plus two refreshes (its exited processes
    /// stay that long).
    pub fn start_pod_names(
        &self,
        fleet: &Fleet,
        retention: Duration,
    ) -> std::io::Result<Option<Refresher>> {
        let Some(url) = &self.kubelet_pods_url else {
            return Ok(None);
        };
        if url.starts_with("http://") && !is_loopback(url) {
            tracing::warn!(
                %url,
                "--kubelet-pods-url is plain http: the bearer token crosses the network unencrypted"
            );
        }
        let cfg = PodNamesConfig {
            url: url.clone(),
            token_file: self.kubelet_token_file.clone(),
            ca_file: self.kubelet_ca_file.clone(),
            refresh: self.kubelet_refresh,
            timeout: self.kubelet_refresh.min(Duration::from_secs(10)),
            keep: retention.saturating_add(self.kubelet_refresh.saturating_mul(2)),
        };
        let transport = transport_for(url, self.kubelet_ca_file.clone());
        Refresher::spawn(cfg, transport, fleet.pod_names().clone()).map(Some)
    }
}

fn is_loopback(url: &str) -> bool {
    let host = url.trim_start_matches("http://");
    ["127.", "localhost:", "localhost/", "[::1]"]
        .iter()
        .any(|p| host.starts_with(p))
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
