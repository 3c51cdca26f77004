//! The pod-name refresher (thin I/O): a thread that fetches a `PodList` from the kubelet (or
//! the API server) every `--kubelet-refresh`, with the service-account token as a bearer
//! token, and publishes the [`PodDirectory`] the metrics and socket ops read.
//!
//! The token file is re-read on every fetch (projected service-account tokens rotate). A
//! failed fetch keeps the last good directory; failures are logged when the state changes
//! (working → failing, one failure → another kind, failing → working), not on every attempt.
//! Nothing here can stop the agent: without a directory, labels come from the cgroup path alone.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::pods::{PodDirectory, PodListError, parse_pod_list};
use crate::carbon::live::{Curl, LiveError, PlainHttp, Transport};

/// Longest wait for a fetch in progress when the agent stops.
pub const STOP_WAIT: Duration = Duration::from_secs(2);

/// Where Kubernetes mounts a pod's service-account token.
pub const DEFAULT_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// How to reach the pod list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodNamesConfig {
    /// `http://` or `https://` URL answering a `PodList`.
    pub url: String,
    /// Bearer token file, read before each fetch.
    pub token_file: PathBuf,
    /// CA bundle for `https://` (curl's `cacert`).
    pub ca_file: Option<PathBuf>,
    /// Time between fetches.
    pub refresh: Duration,
    /// Time allowed for one fetch.
    pub timeout: Duration,
    /// How long a pod that left the list keeps its name.
    pub keep: Duration,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum PodNamesError {
    /// The token file cannot be read.
    #[error("cannot read the bearer token file {}", path.display())]
    Token {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The token file is empty.
    #[error("the bearer token file {} is empty", path.display())]
    EmptyToken {
        /// The file.
        path: PathBuf,
    },
    /// The request failed (connection, TLS, HTTP status, timeout).
    #[error("cannot fetch the pod list")]
    Fetch(#[source] LiveError),
    /// The answer is not a pod list.
    #[error("{url} did not answer a pod list")]
    Parse {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: PodListError,
    },
}

impl PodNamesError {
    /// A coarse class, compared to log only state changes (messages carry timings).
    pub fn class(&self) -> String {
        match self {
            PodNamesError::Token { .. } | PodNamesError::EmptyToken { .. } => "token".into(),
            PodNamesError::Fetch(LiveError::Status { status, .. }) => format!("http {status}"),
            PodNamesError::Fetch(LiveError::Timeout { .. }) => "timeout".into(),
            PodNamesError::Fetch(_) => "transport".into(),
            PodNamesError::Parse { .. } => "parse".into(),
        }
    }

    /// What to check, for the log.
    pub fn hint(&self) -> &'static str {
        match self {
            PodNamesError::Token { .. } | PodNamesError::EmptyToken { .. } => {
                "mount the service-account token (automountServiceAccountToken: true) or set --kubelet-token-file"
            }
            PodNamesError::Fetch(LiveError::Status { status: 401, .. }) => {
                "the token was refused: check that it is this cluster's and current"
            }
            PodNamesError::Fetch(LiveError::Status { status: 403, .. }) => {
                "the service account may not read the pod list: apply deploy/kubernetes/optional/pod-names.yaml (before Kubernetes 1.33 the kubelet checks nodes/proxy instead: docs/deploy-kubernetes.md)"
            }
            PodNamesError::Fetch(_) => {
                "check --kubelet-pods-url (https://$NODE_IP:10250/pods) and, for https, --kubelet-ca-file"
            }
            PodNamesError::Parse { .. } => "the URL must answer a Kubernetes PodList",
        }
    }
}

/// The transport for `url`: curl (with `ca_file`) for `https://`, plain TCP otherwise.
pub fn transport_for(url: &str, ca_file: Option<PathBuf>) -> Box<dyn Transport> {
    if url.starts_with("https://") {
        Box::new(Curl { ca_file })
    } else {
        Box::new(PlainHttp)
    }
}

fn read_token(path: &Path) -> Result<String, PodNamesError> {
    let text = std::fs::read_to_string(path).map_err(|source| PodNamesError::Token {
        path: path.to_owned(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(PodNamesError::EmptyToken {
            path: path.to_owned(),
        });
    }
    Ok(token.to_owned())
}

/// One fetch: the token, the GET, the parse; the refreshed directory on success.
pub fn fetch(
    cfg: &PodNamesConfig,
    transport: &dyn Transport,
    previous: &PodDirectory,
) -> Result<PodDirectory, PodNamesError> {
    let auth = format!("Bearer {}", read_token(&cfg.token_file)?);
    let body = transport
        .get(&cfg.url, &[("Authorization", &auth)], cfg.timeout)
        .map_err(PodNamesError::Fetch)?;
    let pods = parse_pod_list(&body).map_err(|source| PodNamesError::Parse {
        url: cfg.url.clone(),
        source,
    })?;
    Ok(previous.refreshed(pods, Instant::now(), cfg.keep))
}

/// The directory the fleet view reads, replaced whole after each good fetch.
#[derive(Debug, Default)]
pub struct PodNames {
    current: RwLock<Arc<PodDirectory>>,
    configured: AtomicBool,
}

impl PodNames {
    /// The directory now (empty until the first good fetch, or when pod names are off).
    pub fn current(&self) -> Arc<PodDirectory> {
        self.current
            .read()
            .map(|d| d.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the directory (and marks pod names as configured).
    pub fn publish(&self, d: PodDirectory) {
        self.configured.store(true, Ordering::Relaxed);
        let d = Arc::new(d);
        match self.current.write() {
            Ok(mut g) => *g = d,
            Err(p) => *p.into_inner() = d,
        }
    }

    /// Whether a refresher feeds this directory (`--kubelet-pods-url` given).
    pub fn configured(&self) -> bool {
        self.configured.load(Ordering::Relaxed)
    }
}

/// The refresher thread; [`Refresher::stop`] ends it.
#[derive(Debug)]
pub struct Refresher {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// What the last attempt did, to log only changes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Health {
    Starting,
    Working,
    Failing(String),
}

/// The log's tail for a failing fetch.
const KEEPING: &str = "until a fetch succeeds, the last good list is kept and pods not in it \
                       are labelled from the cgroup path alone";

fn attempt(cfg: &PodNamesConfig, transport: &dyn Transport, names: &PodNames, health: &mut Health) {
    let previous = names.current();
    match fetch(cfg, transport, &previous) {
        Ok(d) => {
            if *health != Health::Working {
                let pods = d.listed();
                tracing::info!(
                    url = %cfg.url,
                    pods,
                    "pod names and namespaces: fetched the pod list"
                );
                *health = Health::Working;
            }
            names.publish(d);
        }
        Err(e) => {
            let class = e.class();
            if *health != Health::Failing(class.clone()) {
                let hint = e.hint();
                let kept = previous.len();
                let e = anyhow::Error::new(e);
                tracing::warn!(
                    url = %cfg.url,
                    kept,
                    "pod names and namespaces: {e:#} ({hint}); {KEEPING}"
                );
                *health = Health::Failing(class);
            }
        }
    }
}

impl Refresher {
    /// Starts fetching into `names` now and every `cfg.refresh`.
    pub fn spawn(
        cfg: PodNamesConfig,
        transport: Box<dyn Transport>,
        names: Arc<PodNames>,
    ) -> std::io::Result<Refresher> {
        names.configured.store(true, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("carbon-ops-pods".into())
            .spawn(move || {
                let mut health = Health::Starting;
                while !flag.load(Ordering::SeqCst) {
                    attempt(&cfg, transport.as_ref(), &names, &mut health);
                    let until = Instant::now() + cfg.refresh;
                    while !flag.load(Ordering::SeqCst) {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        std::thread::park_timeout(left);
                    }
                }
            })?;
        Ok(Refresher { stop, handle })
    }

    /// Ends the thread: at once between fetches; a fetch in progress is waited for up to
    /// [`STOP_WAIT`], so a hung kubelet cannot hold up the agent's shutdown.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.thread().unpark();
        let until = Instant::now() + STOP_WAIT;
        while !self.handle.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.handle.is_finished() {
            let _ = self.handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    const KUBELET: &str = include_str!("../../tests/fixtures/kubelet-pods.json");

    /// Answers from a script, recording each request's `Authorization` header.
    #[derive(Default)]
    struct Scripted {
        answers: Mutex<Vec<Result<String, LiveError>>>,
        auth: Mutex<Vec<String>>,
    }

    impl Transport for Scripted {
        fn get(
            &self,
            url: &str,
            headers: &[(&str, &str)],
            _: Duration,
        ) -> Result<String, LiveError> {
            let auth = headers
                .iter()
                .find(|(k, _)| *k == "Authorization")
                .map(|(_, v)| (*v).to_owned());
            self.auth
                .lock()
                .expect("lock")
                .push(auth.unwrap_or_default());
            let mut a = self.answers.lock().expect("lock");
            if a.is_empty() {
                return Err(LiveError::Timeout { url: url.into() });
            }
            a.remove(0)
        }
    }

    fn cfg(token_file: PathBuf) -> PodNamesConfig {
        PodNamesConfig {
            url: "http://127.0.0.1:1/pods".into(),
            token_file,
            ca_file: None,
            refresh: Duration::from_secs(30),
            timeout: Duration::from_secs(1),
            keep: Duration::from_secs(600),
        }
    }

    #[test]
    fn token_reread_failures_keep_the_last_good_list() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let token = dir.path().join("token");
        std::fs::write(&token, "tok-1\n")?;
        let cfg = cfg(token.clone());
        let status = |s| {
            Err(LiveError::Status {
                url: "u".into(),
                status: s,
            })
        };
        let t = Scripted::default();
        *t.answers.lock().expect("lock") = vec![
            Ok(KUBELET.to_owned()),
            status(401),
            status(401),
            Ok("{\"kind\": \"Status\"}".into()),
            Ok(KUBELET.to_owned()),
        ];
        let names = PodNames::default();
        let mut health = Health::Starting;
        attempt(&cfg, &t, &names, &mut health);
        assert_eq!(health, Health::Working);
        assert_eq!(names.current().listed(), 4);
        // The token rotates: the next request carries the new one.
        std::fs::write(&token, "tok-2")?;
        attempt(&cfg, &t, &names, &mut health);
        assert_eq!(health, Health::Failing("http 401".into()));
        assert_eq!(names.current().len(), 4, "last good list kept");
        attempt(&cfg, &t, &names, &mut health);
        attempt(&cfg, &t, &names, &mut health);
        assert_eq!(health, Health::Failing("parse".into()));
        attempt(&cfg, &t, &names, &mut health);
        assert_eq!(health, Health::Working);
        assert_eq!(
            *t.auth.lock().expect("lock"),
            [
                "Bearer tok-1",
                "Bearer tok-2",
                "Bearer tok-2",
                "Bearer tok-2",
                "Bearer tok-2"
            ]
        );
        // No token: no request at all.
        std::fs::remove_file(&token)?;
        attempt(&cfg, &t, &names, &mut health);
        assert_eq!(health, Health::Failing("token".into()));
        assert_eq!(t.auth.lock().expect("lock").len(), 5);
        std::fs::write(&token, " \n")?;
        let e = fetch(&cfg, &t, &PodDirectory::default()).expect_err("empty token");
        assert!(matches!(e, PodNamesError::EmptyToken { .. }), "{e}");
        assert!(e.hint().contains("automountServiceAccountToken"));
        Ok(())
    }

    #[test]
    fn classes_and_hints() {
        let status = |s| {
            PodNamesError::Fetch(LiveError::Status {
                url: "u".into(),
                status: s,
            })
        };
        assert_eq!(status(403).class(), "http 403");
        assert!(status(403).hint().contains("optional/pod-names.yaml"));
        assert!(status(401).hint().contains("refused"));
        let t = PodNamesError::Fetch(LiveError::Transport {
            url: "u".into(),
            reason: "connect: refused after 3 ms".into(),
        });
        assert_eq!(t.class(), "transport");
    }

    #[test]
    fn refresher_publishes_and_stops() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let token = dir.path().join("token");
        std::fs::write(&token, "tok")?;
        let t = Scripted::default();
        *t.answers.lock().expect("lock") = vec![Ok(KUBELET.to_owned())];
        let names = Arc::new(PodNames::default());
        assert!(!names.configured());
        let r = Refresher::spawn(cfg(token), Box::new(t), names.clone())?;
        assert!(names.configured());
        let until = Instant::now() + Duration::from_secs(10);
        while names.current().is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(names.current().listed(), 4);
        let stopping = Instant::now();
        r.stop();
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "stop does not wait out the refresh"
        );
        Ok(())
    }
}
