//! The Prometheus exposition: rendered from a store on a fake cgroup tree and parsed back,
//! checked by `promtool check metrics` where installed, served over HTTP (routes, limits,
//! concurrent scrapes), and scraped by a real Prometheus server answering a PromQL query.
//! Pod A is named (`shop/web-0`) and pod B is not, so label sets with and without pod names
//! are checked side by side.

mod fleet_support;

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use carbon_ops::{
    agent::engine::Shared,
    fleet::{
        http::{HttpLimits, Route, route, serve_metrics},
        index::CgroupIndex,
        metrics::{MetricsConfig, joules, seconds},
        pods::{PodDirectory, PodName},
        resolver::Resolver,
        service::Fleet,
    },
};
use fleet_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fleet over a fake cgroup tree in `dir`, its store published as the coarse copy.
fn fleet(dir: &Path, top_n: usize) -> std::io::Result<Fleet> {
    let store = store_on_fake_tree(dir)?;
    let shared = Arc::new(Shared::new(info(), 600.0));
    *shared
        .coarse
        .lock()
        .map_err(|_| std::io::Error::other("poisoned"))? = Arc::new(store);
    let mut index = CgroupIndex::new(dir.to_path_buf());
    index.refresh().map_err(std::io::Error::other)?;
    let resolver = Resolver::new(Some(index), dir.join("no-proc"));
    let f = Fleet::new(
        shared,
        resolver,
        MetricsConfig {
            process_top_n: top_n,
        },
    );
    let web0 = PodName {
        namespace: "shop".into(),
        name: "web-0".into(),
    };
    f.pod_names().publish(PodDirectory::new(
        vec![(POD_A.to_owned(), web0)],
        Instant::now(),
    ));
    Ok(f)
}

/// One parsed sample: name, labels, value text.
type Sample = (String, BTreeMap<String, String>, String);

/// A strict parser of the text format: every sample's family has `# TYPE` first, label values
/// are quoted with `\\`, `\"` and `\n` escapes, values are numbers.
fn parse(text: &str) -> Result<(Vec<Sample>, BTreeMap<String, String>), String> {
    let mut types = BTreeMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (n, t) = rest.split_once(' ').ok_or("bad TYPE")?;
            if types.insert(n.to_owned(), t.to_owned()).is_some() {
                return Err(format!("family {n} typed twice"));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find('{') {
            Some(i) => (&line[..i], &line[i..]),
            None => line
                .split_once(' ')
                .map(|(n, _)| (n, &line[n.len()..]))
                .ok_or("no value")?,
        };
        let mut labels = BTreeMap::new();
        let mut rest = rest;
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices();
            let mut key = String::new();
            let end;
            loop {
                let (i, c) = chars.next().ok_or("unterminated labels")?;
                match c {
                    '}' => {
                        end = i;
                        break;
                    }
                    ',' => {}
                    '=' => {
                        if chars.next().map(|x| x.1) != Some('"') {
                            return Err("unquoted value".into());
                        }
                        let mut v = String::new();
                        loop {
                            match chars.next().ok_or("unterminated value")?.1 {
                                '\\' => match chars.next().ok_or("bad escape")?.1 {
                                    'n' => v.push('\n'),
                                    c => v.push(c),
                                },
                                '"' => break,
                                c => v.push(c),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), v);
                    }
                    c => key.push(c),
                }
            }
            rest = &body[end + 1..];
        }
        let value = rest.trim().to_owned();
        value
            .parse::<f64>()
            .map_err(|_| format!("value `{value}` of {name}"))?;
        if !types.contains_key(name) {
            return Err(format!("sample {name} before its TYPE"));
        }
        out.push((name.to_owned(), labels, value));
    }
    Ok((out, types))
}

fn find<'a>(s: &'a [Sample], name: &str, label: (&str, &str)) -> Option<&'a str> {
    s.iter()
        .find(|(n, l, _)| n == name && l.get(label.0).map(String::as_str) == Some(label.1))
        .map(|x| x.2.as_str())
}

#[test]
fn exact_decimal_units() {
    assert_eq!(joules(0), "0.000000");
    assert_eq!(joules(12_000_001), "12.000001");
    assert_eq!(joules(u64::MAX), "18446744073709.551615");
    assert_eq!(seconds(1_500_000_000), "1.500000000");
}

#[test]
fn renders_and_parses_back() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let f = fleet(dir.path(), 2)?;
    let text = f.render_metrics();
    let (samples, types) = parse(&text)?;
    let series: HashSet<String> = samples
        .iter()
        .map(|(n, l, _)| format!("{n}{l:?}"))
        .collect();
    assert_eq!(series.len(), samples.len(), "no duplicate series");
    for (name, t) in &types {
        assert_eq!(t == "counter", name.ends_with("_total"), "{name} is a {t}");
    }
    // Every series of a family has the same label names, named pods or not.
    let mut label_sets: BTreeMap<&str, BTreeSet<Vec<&str>>> = BTreeMap::new();
    for (n, l, _) in &samples {
        let keys = l.keys().map(String::as_str).collect();
        label_sets.entry(n.as_str()).or_default().insert(keys);
    }
    for (n, sets) in &label_sets {
        assert_eq!(sets.len(), 1, "{n} has label sets {sets:?}");
    }
    let pod_of = |name: &str, uid: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l["pod_uid"] == uid)
            .map(|(_, l, _)| (l["namespace"].clone(), l["pod"].clone()))
    };
    let named = Some(("shop".to_owned(), "web-0".to_owned()));
    let unnamed = Some((String::new(), String::new()));
    assert_eq!(pod_of("carbon_ops_pod_energy_joules_total", POD_A), named);
    assert_eq!(
        pod_of("carbon_ops_container_cpu_seconds_total", POD_A),
        named
    );
    assert_eq!(pod_of("carbon_ops_pod_cpu_seconds_total", POD_B), unnamed);
    assert_eq!(
        pod_of("carbon_ops_container_energy_joules_total", POD_B),
        unnamed
    );
    assert_eq!(
        find(&samples, "carbon_ops_info", ("energy_source", "sysfs")),
        Some("1")
    );
    assert_eq!(
        find(
            &samples,
            "carbon_ops_host_energy_joules_total",
            ("zone", "package-0")
        ),
        Some("0.013081")
    );
    assert_eq!(
        find(
            &samples,
            "carbon_ops_energy_joules_total",
            ("bucket", "attributed")
        ),
        Some("0.013001")
    );
    assert_eq!(
        find(
            &samples,
            "carbon_ops_energy_joules_total",
            ("bucket", "idle")
        ),
        Some("0.000080")
    );
    assert_eq!(
        find(
            &samples,
            "carbon_ops_pod_energy_joules_total",
            ("pod_uid", POD_A)
        ),
        Some("0.010000")
    );
    assert_eq!(
        find(
            &samples,
            "carbon_ops_pod_cpu_seconds_total",
            ("pod_uid", POD_B)
        ),
        Some("0.020000000")
    );
    assert_eq!(
        find(
            &samples,
            "carbon_ops_container_energy_joules_total",
            ("container_id", CTR_3)
        ),
        Some("0.002000")
    );
    let ctr3 = samples.iter().find(|(n, l, _)| {
        n == "carbon_ops_container_energy_joules_total" && l["container_id"] == CTR_3
    });
    assert_eq!(
        ctr3.map(|c| (c.1["pod_uid"].as_str(), c.1["runtime"].as_str())),
        Some((POD_B, "unknown"))
    );
    assert_eq!(
        find(
            &samples,
            "carbon_ops_service_energy_joules_total",
            ("service", "nginx.service")
        ),
        Some("0.001000")
    );
    // Top 2 processes only: p1 (6000 µJ) and p2 (4000 µJ).
    let procs: Vec<&str> = samples
        .iter()
        .filter(|s| s.0 == "carbon_ops_process_energy_joules_total")
        .map(|s| s.1["pid"].as_str())
        .collect();
    assert_eq!(procs, ["1", "2"]);
    // A comm with a quote and a backslash round-trips through the escapes.
    let f = fleet(tempfile::tempdir()?.path(), 100)?;
    let (samples, _) = parse(&f.render_metrics())?;
    assert_eq!(
        find(
            &samples,
            "carbon_ops_process_energy_joules_total",
            ("comm", "we\"ird\\name")
        ),
        Some("0.000001")
    );
    // 0 turns per-process series off entirely.
    let f = fleet(tempfile::tempdir()?.path(), 0)?;
    assert!(!f.render_metrics().contains("carbon_ops_process_"));
    Ok(())
}

#[test]
fn promtool_accepts_it() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(out) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        eprintln!("SKIPPED: promtool not installed (apt-get install prometheus)");
        return Ok(());
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir()?;
    let text = fleet(dir.path(), 10)?.render_metrics();
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(&mut child.stdin.take().ok_or("stdin")?, text.as_bytes())?;
    let out = child.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
    Ok(())
}

#[test]
fn routes() {
    assert_eq!(
        route(b"GET /metrics HTTP/1.1\r\n\r\n"),
        Route::Metrics { head: false }
    );
    assert_eq!(
        route(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
        Route::Metrics { head: true }
    );
    assert_eq!(
        route(b"GET /healthz HTTP/1.1\r\n\r\n"),
        Route::Health { head: false }
    );
    assert_eq!(route(b"GET /etc/passwd HTTP/1.1\r\n\r\n"), Route::NotFound);
    assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::BadMethod);
    assert_eq!(route(b"hello\r\n\r\n"), Route::Bad);
    assert_eq!(route(b"GET /metrics SPDY/3\r\n\r\n"), Route::Bad);
}

async fn get(addr: std::net::SocketAddr, req: &[u8]) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(req).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoint_serves_concurrent_scrapes() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let f = Arc::new(fleet(dir.path(), 10)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let f2 = f.clone();
    let server = tokio::spawn(serve_metrics(
        listener,
        move || f2.render_metrics(),
        HttpLimits::default(),
        rx,
    ));
    let body = f.render_metrics();
    let ok = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert!(ok.contains(&format!("Content-Length: {}\r\n", body.len())));
    assert!(ok.ends_with(&body), "body is the rendering");
    let head = get(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await?;
    assert!(
        head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    assert!(
        get(addr, b"GET /nope HTTP/1.1\r\n\r\n")
            .await?
            .starts_with("HTTP/1.1 404")
    );
    assert!(
        get(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n")
            .await?
            .starts_with("HTTP/1.1 405")
    );
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 20_000));
    assert!(get(addr, &huge).await?.starts_with("HTTP/1.1 431"));
    // 32 scrapes at once all get the whole text.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..32 {
        set.spawn(get(addr, b"GET /metrics HTTP/1.1\r\n\r\n"));
    }
    let mut n = 0;
    while let Some(r) = set.join_next().await {
        let r = r??;
        assert!(r.starts_with("HTTP/1.1 200") && r.ends_with(&body));
        n += 1;
    }
    assert_eq!(n, 32);
    tx.send(true)?;
    tokio::time::timeout(Duration::from_secs(5), server).await??;
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_scrapes_and_answers_promql() -> Result<(), Box<dyn std::error::Error>> {
    if std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: prometheus not installed (apt-get install prometheus); CI installs it");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let tree = dir.path().join("cgroup");
    std::fs::create_dir(&tree)?;
    let f = Arc::new(fleet(&tree, 10)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let target = listener.local_addr()?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(serve_metrics(
        listener,
        move || f.render_metrics(),
        HttpLimits::default(),
        rx,
    ));
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: carbon-ops\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )?;
    let web = format!("127.0.0.1:{}", free_port()?);
    let mut prom = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let query = format!(
        "GET /api/v1/query?query=sum%20by%20(pod_uid,namespace,pod)(carbon_ops_pod_energy_joules_total) HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    let answer = loop {
        if let Ok(addr) = web.parse()
            && let Ok(r) = get(addr, query.as_bytes()).await
        {
            if r.contains(POD_A) && r.contains(POD_B) {
                break Some(r);
            }
            last = r;
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = prom.kill();
    let _ = prom.wait();
    tx.send(true)?;
    let _ = server.await;
    let answer = answer.ok_or(format!(
        "prometheus never answered with both pods; last: {last}"
    ))?;
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body = body.trim_start_matches(|c: char| c.is_ascii_hexdigit() || c.is_whitespace()); // chunked
    let end = body.rfind('}').map_or(body.len(), |i| i + 1);
    let v: serde_json::Value = serde_json::from_str(&body[..end])?;
    assert_eq!(v["status"], "success");
    let results = v["data"]["result"].as_array().ok_or("no result")?;
    let value_of = |uid: &str| {
        results
            .iter()
            .find(|r| r["metric"]["pod_uid"] == uid)
            .and_then(|r| r["value"][1].as_str())
            .map(str::to_owned)
    };
    assert_eq!(value_of(POD_A).as_deref(), Some("0.01"));
    assert_eq!(value_of(POD_B).as_deref(), Some("0.002"));
    // Pod A by name; pod B's empty labels are absent in Prometheus.
    let metric_of = |uid: &str| results.iter().find(|r| r["metric"]["pod_uid"] == uid);
    let a = metric_of(POD_A).ok_or("pod A")?;
    assert_eq!(
        (&a["metric"]["namespace"], &a["metric"]["pod"]),
        (&"shop".into(), &"web-0".into())
    );
    let b = metric_of(POD_B).ok_or("pod B")?;
    assert!(b["metric"].get("pod").is_none(), "{b}");
    Ok(())
}
