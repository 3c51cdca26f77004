//! Pod names end to end: the real agent binary, real cgroup v2 directories laid out as the
//! kubelet's systemd driver lays them out (under a scratch parent, so a real `kubepods.slice`
//! on the machine is never touched), a busy process moved into a container's scope, and a
//! loopback HTTP server standing in for the kubelet's `/pods` (it answers the kubelet-shaped
//! PodList of `tests/fixtures/kubelet-pods.json`, written by hand, only to the right bearer
//! token, 401 otherwise).
//!
//! With the right token, the pod's namespace and name appear in the metrics scrape, in
//! `top --by pod` and in the `cgroup` op (asked by UID and by `namespace/name`), and a rotated
//! token file is read on the next fetch. With a wrong token, the agent logs the failure once,
//! never logs the token, and keeps serving with labels from the cgroup path alone.
//!
//! Root only (it creates cgroups and moves a process): skipped with a message otherwise.

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use carbon_ops::fleet::index::find_cgroup2_mount;
use common::{Agent, FakeRapl, privileged};
use serde_json::{Value, json};

const PODS: &str = include_str!("fixtures/kubelet-pods.json");
/// `shop/web-7d9f8b6c5-x2x9q` in the fixture (Burstable).
const WEB_UID: &str = "6f0b1c2e-4d3a-4b5c-9e8f-0123456789ab";
/// `kube-system/kube-proxy-q7lmz` in the fixture (BestEffort).
const PROXY_UID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// A pod's cgroups (systemd driver, containerd) under a scratch parent, with a busy process in
/// the container's scope; processes killed and directories removed on drop.
struct PodCgroup {
    dirs: Vec<PathBuf>,
    child: Option<Child>,
    pid: u32,
}

impl PodCgroup {
    fn create(tag: &str, uid: &str, qos: &str, container: &str) -> Option<PodCgroup> {
        let mount = match find_cgroup2_mount(Path::new("/proc")) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("\n*** SKIPPED: no cgroup2 mount: {e} ***\n");
                return None;
            }
        };
        let slice = format!("kubepods-{qos}");
        let parts = [
            format!("carbon-ops-{tag}-{}", std::process::id()),
            "kubepods.slice".into(),
            format!("{slice}.slice"),
            format!("{slice}-pod{}.slice", uid.replace('-', "_")),
            format!("cri-containerd-{container}.scope"),
        ];
        let mut cg = PodCgroup {
            dirs: Vec::new(),
            child: None,
            pid: 0,
        };
        let mut dir = mount;
        for p in parts {
            dir.push(p);
            if let Err(e) = std::fs::create_dir(&dir) {
                eprintln!("\n*** SKIPPED: cannot create {}: {e} ***\n", dir.display());
                return None;
            }
            cg.dirs.push(dir.clone());
        }
        let child = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawn a busy process");
        cg.pid = child.id();
        cg.child = Some(child);
        std::fs::write(dir.join("cgroup.procs"), cg.pid.to_string())
            .expect("move the busy process into the container's scope");
        Some(cg)
    }
}

impl Drop for PodCgroup {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in self.dirs.iter().rev() {
            for _ in 0..100 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A stand-in for the kubelet's `/pods`: the fixture PodList to `Bearer <token>`, 401 with a
/// `Status` otherwise. Records every `Authorization` header it is sent.
struct Kubelet {
    url: String,
    token: Arc<Mutex<String>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Kubelet {
    fn start(token: &str) -> Kubelet {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/pods", listener.local_addr().expect("addr"));
        let token = Arc::new(Mutex::new(token.to_owned()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (want, log) = (token.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &want, &log);
            }
        });
        Kubelet { url, token, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

fn answer(
    stream: TcpStream,
    want: &Mutex<String>,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut auth = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            auth = v.trim().to_owned();
        }
    }
    seen.lock().expect("lock").push(auth.clone());
    let good = auth == format!("Bearer {}", want.lock().expect("lock"));
    let (status, body) = if !request_line.starts_with("GET /pods ") {
        ("404 Not Found", "{}".to_owned())
    } else if good {
        ("200 OK", PODS.to_owned())
    } else {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "Unauthorized", "reason": "Unauthorized", "code": 401});
        ("401 Unauthorized", status.to_string())
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Collects the agent's log (stderr) in the background, so it never blocks on a full pipe.
fn collect_log(agent: &mut Agent) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    if let Some(mut err) = agent.child.stderr.take() {
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    log
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn scrape(port: u16) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

/// The label text of `family`'s series for pod `uid` (`pod_uid="…",qos=…`), if any.
fn series(text: &str, family: &str, uid: &str) -> Option<String> {
    let prefix = format!("{family}{{pod_uid=\"{uid}\",");
    text.lines().find(|l| l.starts_with(&prefix)).map(|l| {
        let start = family.len() + 1;
        let end = l.rfind('}').unwrap_or(l.len());
        l[start..end].to_owned()
    })
}

/// Polls until `done` holds (20 s at most), returning its last value.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> (bool, T)) -> T {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (done, v) = f();
        if done {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start_agent(rapl: &FakeRapl, kubelet: &Kubelet, token_file: &Path, port: u16) -> Agent {
    let metrics = format!("127.0.0.1:{port}");
    let token = token_file.display().to_string();
    Agent::start(
        rapl,
        "auto",
        &[
            "--metrics-addr",
            &metrics,
            "--kubelet-pods-url",
            &kubelet.url,
            "--kubelet-token-file",
            &token,
            "--kubelet-refresh",
            "1s",
        ],
    )
}

fn group<'a>(top: &'a Value, uid: &str) -> Option<&'a Value> {
    top["groups"].as_array()?.iter().find(|g| g["key"] == uid)
}

#[test]
fn names_from_the_kubelet_in_metrics_top_and_cgroup() {
    if !privileged("names_from_the_kubelet_in_metrics_top_and_cgroup") {
        return;
    }
    let container = "5e1d7c0c3a9b8e4f2d1c0b9a8f7e6d5c4b3a29180716253443526170819a0b1c";
    let Some(cg) = PodCgroup::create("pod-names", WEB_UID, "burstable", container) else {
        return;
    };
    let kubelet = Kubelet::start("good-token");
    let tmp = tempfile::tempdir().expect("tmp");
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, "good-token\n").expect("token");
    let rapl = FakeRapl::start();
    let port = free_port();
    let mut agent = start_agent(&rapl, &kubelet, &token_file, port);
    let log = collect_log(&mut agent);

    let want = format!(
        "pod_uid=\"{WEB_UID}\",qos=\"burstable\",namespace=\"shop\",pod=\"web-7d9f8b6c5-x2x9q\""
    );
    let text = wait_for("the named pod series", || {
        let t = scrape(port);
        let named = series(&t, "carbon_ops_pod_energy_joules_total", WEB_UID);
        (named.as_deref() == Some(want.as_str()), t)
    });
    let ctr = format!(
        "carbon_ops_container_energy_joules_total{{container_id=\"{container}\",pod_uid=\"{WEB_UID}\",runtime=\"containerd\",namespace=\"shop\",pod=\"web-7d9f8b6c5-x2x9q\"}}"
    );
    assert!(text.contains(&ctr), "{text}");
    assert_eq!(
        series(&text, "carbon_ops_pod_cpu_seconds_total", WEB_UID).as_deref(),
        Some(want.as_str())
    );

    let mut c = agent.client();
    let top = c.op("top", json!({"by": "pod", "n": 1000}));
    let row = group(&top["result"], WEB_UID).unwrap_or_else(|| panic!("{top}"));
    assert_eq!(
        (&row["namespace"], &row["pod_name"]),
        (&json!("shop"), &json!("web-7d9f8b6c5-x2x9q")),
        "{row}"
    );
    assert!(row["energy_uj"].as_u64().unwrap_or(0) > 0, "{row}");
    let by_name = c.op("cgroup", json!({"pod": "shop/web-7d9f8b6c5-x2x9q"}));
    let r = &by_name["result"];
    assert_eq!(r["labels"]["pod_uid"], WEB_UID, "{by_name}");
    assert_eq!(
        (&r["namespace"], &r["pod_name"]),
        (&json!("shop"), &json!("web-7d9f8b6c5-x2x9q"))
    );
    let pids: Vec<u64> = r["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["pid"].as_u64()).collect())
        .unwrap_or_default();
    assert!(pids.contains(&u64::from(cg.pid)), "{by_name}");
    let by_uid = c.op("cgroup", json!({"pod_uid": WEB_UID}));
    assert_eq!(
        by_uid["result"]["pod_name"], "web-7d9f8b6c5-x2x9q",
        "{by_uid}"
    );
    let unknown = c.op("cgroup", json!({"pod": "shop/web-0"}));
    assert_eq!(unknown["error"]["code"], "not_found", "{unknown}");

    // The token rotates: the file is read again on the next fetch.
    *kubelet.token.lock().expect("lock") = "rotated-token".into();
    std::fs::write(&token_file, "rotated-token").expect("token");
    wait_for("a fetch with the rotated token", || {
        let seen = kubelet.seen();
        (seen.iter().any(|a| a == "Bearer rotated-token"), ())
    });
    assert!(kubelet.seen().iter().all(|a| a.starts_with("Bearer ")));
    assert!(agent.terminate().success());
    let log = log.lock().expect("lock").clone();
    assert!(
        log.contains("pod names and namespaces: fetched the pod list"),
        "{log}"
    );
    assert!(
        !log.contains("good-token") && !log.contains("rotated-token"),
        "{log}"
    );
    drop(cg);
}

#[test]
fn a_refused_token_leaves_uid_labels_and_is_logged_once() {
    if !privileged("a_refused_token_leaves_uid_labels_and_is_logged_once") {
        return;
    }
    let container = "aa11bb22cc33dd44ee55ff6600778899aabbccddeeff00112233445566778899";
    let Some(cg) = PodCgroup::create("pod-names-401", PROXY_UID, "besteffort", container) else {
        return;
    };
    let kubelet = Kubelet::start("good-token");
    let tmp = tempfile::tempdir().expect("tmp");
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, "stale-token").expect("token");
    let rapl = FakeRapl::start();
    let port = free_port();
    let mut agent = start_agent(&rapl, &kubelet, &token_file, port);
    let log = collect_log(&mut agent);

    let want = format!("pod_uid=\"{PROXY_UID}\",qos=\"besteffort\",namespace=\"\",pod=\"\"");
    let text = wait_for("the pod's series and three refused fetches", || {
        let t = scrape(port);
        let labels = series(&t, "carbon_ops_pod_energy_joules_total", PROXY_UID);
        (labels.is_some() && kubelet.seen().len() >= 3, t)
    });
    assert_eq!(
        series(&text, "carbon_ops_pod_energy_joules_total", PROXY_UID).as_deref(),
        Some(want.as_str()),
        "{text}"
    );
    assert!(kubelet.seen().iter().all(|a| a == "Bearer stale-token"));

    let mut c = agent.client();
    let top = c.op("top", json!({"by": "pod", "n": 1000}));
    let row = group(&top["result"], PROXY_UID).unwrap_or_else(|| panic!("{top}"));
    assert!(
        row["namespace"].is_null() && row["pod_name"].is_null(),
        "{row}"
    );
    let by_uid = c.op("cgroup", json!({"pod_uid": PROXY_UID}));
    assert_eq!(by_uid["ok"], true, "{by_uid}");
    assert!(by_uid["result"]["pod_name"].is_null(), "{by_uid}");
    let by_name = c.op("cgroup", json!({"pod": "kube-system/kube-proxy-q7lmz"}));
    assert_eq!(by_name["error"]["code"], "not_found", "{by_name}");
    assert_eq!(c.op("status", json!({}))["ok"], true, "still serving");

    assert!(agent.terminate().success());
    let log = log.lock().expect("lock").clone();
    let warned = log
        .matches("pod names and namespaces: cannot fetch the pod list")
        .count();
    assert_eq!(
        warned,
        1,
        "logged once for {} refusals: {log}",
        kubelet.seen().len()
    );
    assert!(
        log.contains("401") && log.contains("the token was refused"),
        "{log}"
    );
    assert!(
        !log.contains("stale-token"),
        "the token is never logged: {log}"
    );
    drop(cg);
}
