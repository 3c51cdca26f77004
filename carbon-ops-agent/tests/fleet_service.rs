//! The fleet view as the agent serves it: the `cgroup` op and grouped `top` (root and
//! non-root peers), their CLI renderings, the flags, and the metrics server bound from them.

mod fleet_support;

use std::{path::Path, sync::Arc, time::Instant};

use carbon_ops::{
    agent::engine::Shared,
    fleet::{
        aggregate::{CgroupQuery, GroupBy},
        index::CgroupIndex,
        metrics::MetricsConfig,
        pods::{PodDirectory, PodName},
        resolver::Resolver,
        service::{Fleet, render_cgroup, render_top_groups},
        wiring::{FleetArgs, spawn_metrics},
    },
};
use clap::Parser;
use fleet_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The store of `store_on_fake_tree` as both the fine and the coarse view.
fn fleet(dir: &Path) -> Result<(Arc<Shared>, Fleet), Box<dyn std::error::Error>> {
    let store = store_on_fake_tree(dir)?;
    let shared = Arc::new(Shared::new(info(), 600.0));
    *shared.fine.lock().map_err(|_| "poisoned")? = store.clone();
    *shared.coarse.lock().map_err(|_| "poisoned")? = Arc::new(store);
    let mut index = CgroupIndex::new(dir.to_path_buf());
    index.refresh()?;
    let f = Fleet::new(
        shared.clone(),
        Resolver::new(Some(index), dir.join("no-proc")),
        MetricsConfig::default(),
    );
    Ok((shared, f))
}

fn op(f: &Fleet, root: bool, uid: u32, query: &CgroupQuery) -> Result<serde_json::Value, String> {
    f.cgroup_op(root, uid, query)
        .map_err(|e| format!("{}: {}", e.code, e.message))
}

fn q(path: Option<&str>, pod: Option<&str>) -> CgroupQuery {
    CgroupQuery {
        path: path.map(str::to_owned),
        pod_uid: pod.map(str::to_owned),
        ..CgroupQuery::default()
    }
}

#[test]
fn cgroup_op_for_root_and_others() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (_, f) = fleet(dir.path())?;
    let v = op(&f, true, 0, &q(None, Some(POD_A)))?;
    assert_eq!(
        (v["energy_uj"].as_u64(), v["processes"].as_u64()),
        (Some(10_000), Some(2))
    );
    assert_eq!(v["labels"]["qos"], "burstable");
    assert_eq!(v["members"][0]["pid"], 1);
    // uid 1001 owns the odd pids: only p1 of pod A.
    let v = op(&f, false, 1001, &q(None, Some(POD_A)))?;
    assert_eq!(
        (v["energy_uj"].as_u64(), v["processes"].as_u64()),
        (Some(6000), Some(1))
    );
    let e = f
        .cgroup_op(false, 1000, &q(None, Some(POD_B)))
        .err()
        .map(|e| e.code);
    assert_eq!(
        e,
        Some("not_found"),
        "pod B's only process (p3) belongs to uid 1001"
    );
    let e = f.cgroup_op(true, 0, &q(None, None)).err().map(|e| e.code);
    assert_eq!(e, Some("bad_request"));
    let text = render_cgroup(&op(&f, true, 0, &q(Some("/system.slice"), None))?);
    assert!(text.contains("service         nginx.service"), "{text}");
    assert!(text.contains("energy          0.001 J"), "{text}");
    Ok(())
}

#[test]
fn grouped_top() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (_, f) = fleet(dir.path())?;
    let v = f.top_groups(true, 0, GroupBy::Container, 2);
    assert_eq!(v["by"], "container");
    let keys: Vec<&str> = v["groups"]
        .as_array()
        .ok_or("groups")?
        .iter()
        .filter_map(|g| g["key"].as_str())
        .collect();
    assert_eq!(keys, [CTR_1, CTR_2]);
    // Energy of the last second (the ring covers the whole run here): 6000 µJ over 1 s.
    assert!((v["groups"][0]["power_w"].as_f64().unwrap_or(0.0) - 0.006).abs() < 1e-12);
    assert_eq!(v["attributed_uj"], 13_001);
    let text = render_top_groups(&v);
    assert!(text.starts_with("CONTAINER"), "{text}");
    assert!(
        text.contains(&CTR_1[..12]) && !text.contains(CTR_1),
        "ids shortened to 12: {text}"
    );
    let v = f.top_groups(false, 1000, GroupBy::Pod, 10);
    assert_eq!(v["groups"][0]["key"], POD_A);
    assert_eq!(
        v["groups"][0]["energy_uj"], 4000,
        "uid 1000 sees p2 only in pod A"
    );
    assert_eq!(
        v["hidden_uj"],
        6000 + 2000 + 1,
        "p1, p3 and p7 (uid 1001) hidden"
    );
    Ok(())
}

/// Pod A named `shop/web-0`; pod B not in the list.
fn name_pod_a(f: &Fleet) {
    let a = PodName {
        namespace: "shop".into(),
        name: "web-0".into(),
    };
    let other = PodName {
        namespace: "shop".into(),
        name: "web-1".into(),
    };
    let dir = PodDirectory::new(
        vec![
            (POD_A.to_owned(), a),
            ("11111111-2222-4333-8444-555555555555".to_owned(), other),
        ],
        Instant::now(),
    );
    f.pod_names().publish(dir);
}

#[test]
fn pod_names_in_answers() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (_, f) = fleet(dir.path())?;
    // Off: no names, and `pod` cannot be resolved.
    let v = f.top_groups(true, 0, GroupBy::Pod, 10);
    assert!(v["groups"][0]["namespace"].is_null() && v["groups"][0]["pod_name"].is_null());
    let by_name = CgroupQuery {
        pod: Some("shop/web-0".into()),
        ..CgroupQuery::default()
    };
    let e = f.cgroup_op(true, 0, &by_name).err().map(|e| e.code);
    assert_eq!(e, Some("unavailable"));
    name_pod_a(&f);
    let v = f.top_groups(true, 0, GroupBy::Pod, 10);
    let rows = v["groups"].as_array().ok_or("groups")?;
    let row = |uid: &str| rows.iter().find(|g| g["key"] == uid).cloned();
    let a = row(POD_A).ok_or("pod A")?;
    assert_eq!(
        (&a["namespace"], &a["pod_name"]),
        (&"shop".into(), &"web-0".into())
    );
    let b = row(POD_B).ok_or("pod B")?;
    assert!(b["namespace"].is_null() && b["pod_name"].is_null(), "{b}");
    let text = render_top_groups(&v);
    assert!(
        text.contains("shop/web-0") && text.contains(POD_B),
        "{text}"
    );
    // Containers of pod A carry its names too.
    let v = f.top_groups(true, 0, GroupBy::Container, 10);
    assert_eq!(v["groups"][0]["key"], CTR_1);
    assert_eq!(v["groups"][0]["pod_name"], "web-0");
    // `cgroup` by name, by UID, both, and the errors.
    let v = op(&f, true, 0, &by_name)?;
    assert_eq!(
        (v["energy_uj"].as_u64(), v["labels"]["pod_uid"].as_str()),
        (Some(10_000), Some(POD_A))
    );
    assert_eq!(
        (v["namespace"].as_str(), v["pod_name"].as_str()),
        (Some("shop"), Some("web-0"))
    );
    let text = render_cgroup(&v);
    assert!(
        text.starts_with("namespace       shop\npod             web-0\npod uid"),
        "{text}"
    );
    let v = op(&f, true, 0, &q(None, Some(POD_B)))?;
    assert!(v["namespace"].is_null() && v["pod_name"].is_null(), "{v}");
    let both = CgroupQuery {
        pod_uid: Some(POD_A.replace('-', "_")),
        ..by_name.clone()
    };
    assert_eq!(op(&f, true, 0, &both)?["energy_uj"], 10_000);
    let code = |q: CgroupQuery| f.cgroup_op(true, 0, &q).err().map(|e| e.code);
    let with_pod = |p: &str| CgroupQuery {
        pod: Some(p.into()),
        ..CgroupQuery::default()
    };
    assert_eq!(code(with_pod("web-0")), Some("bad_request"), "no namespace");
    assert_eq!(code(with_pod("shop/nope")), Some("not_found"));
    // Root is told the name is not listed; others get the answer any mismatch gets.
    let msg = |root: bool, p: &str| {
        f.cgroup_op(root, 1000, &with_pod(p))
            .err()
            .map(|e| e.message)
            .unwrap_or_default()
    };
    assert!(msg(true, "shop/nope").contains("kubelet's pod list"));
    assert_eq!(msg(false, "shop/nope"), msg(false, "shop/web-1"));
    // uid 1000 owns p2, in pod A: found by name.
    let mine = f.cgroup_op(false, 1000, &with_pod("shop/web-0"));
    assert_eq!(mine.map(|v| v["energy_uj"].clone()).ok(), Some(4000.into()));
    assert_eq!(
        code(with_pod("shop/web-1")),
        Some("not_found"),
        "listed, no process"
    );
    let mismatch = CgroupQuery {
        pod_uid: Some(POD_B.into()),
        ..by_name
    };
    assert_eq!(code(mismatch), Some("not_found"));
    // The metrics: pod and container series of pod A named, the others empty.
    let text = f.render_metrics();
    assert!(
        text.contains(&format!(
            "carbon_ops_pod_energy_joules_total{{pod_uid=\"{POD_A}\",qos=\"burstable\",namespace=\"shop\",pod=\"web-0\"}} 0.010000"
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "carbon_ops_container_cpu_seconds_total{{container_id=\"{CTR_1}\",pod_uid=\"{POD_A}\",runtime=\"containerd\",namespace=\"shop\",pod=\"web-0\"}}"
    )));
    assert!(text.contains(&format!(
        "carbon_ops_pod_energy_joules_total{{pod_uid=\"{POD_B}\",qos=\"besteffort\",namespace=\"\",pod=\"\"}}"
    )));
    Ok(())
}

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    fleet: FleetArgs,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_and_metrics_server() -> Result<(), Box<dyn std::error::Error>> {
    let off = Flags::try_parse_from(["agent"])?.fleet;
    assert_eq!(
        (off.metrics_addr, off.metrics_top_processes, off.cgroup_root),
        (None, 10, None)
    );
    // Pod names: off by default, the in-cluster token, 30 s.
    assert_eq!(off.kubelet_pods_url, None);
    assert_eq!(
        off.kubelet_token_file,
        Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token")
    );
    assert_eq!(
        (off.kubelet_ca_file, off.kubelet_refresh),
        (None, std::time::Duration::from_secs(30))
    );
    let on = Flags::try_parse_from([
        "agent",
        "--kubelet-pods-url=https://10.0.3.17:10250/pods",
        "--kubelet-ca-file=/etc/kubernetes/pki/ca.crt",
        "--kubelet-refresh=1m",
    ])?
    .fleet;
    assert_eq!(
        on.kubelet_pods_url.as_deref(),
        Some("https://10.0.3.17:10250/pods")
    );
    assert_eq!(on.kubelet_refresh, std::time::Duration::from_secs(60));
    for bad in [
        "--kubelet-pods-url=10.0.3.17:10250/pods",
        "--kubelet-pods-url=ftp://x/pods",
        "--kubelet-pods-url=https:///pods",
        "--kubelet-refresh=500ms",
        "--kubelet-refresh=30",
    ] {
        assert!(Flags::try_parse_from(["agent", bad]).is_err(), "{bad}");
    }
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("cg"))?;
    let cg = dir.path().join("cg");
    let flags = Flags::try_parse_from([
        "agent",
        "--metrics-addr=127.0.0.1:0",
        "--metrics-top-processes=0",
        &format!("--cgroup-root={}", cg.display()),
    ])?
    .fleet;
    let store = store_on_fake_tree(&cg)?;
    let shared = Arc::new(Shared::new(info(), 600.0));
    *shared.coarse.lock().map_err(|_| "poisoned")? = Arc::new(store);
    let fleet = flags.fleet(shared, dir.path().join("no-proc"));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (addr, server) = spawn_metrics(flags.metrics_addr.ok_or("addr")?, fleet, rx).await?;
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    assert!(
        text.contains(&format!(
            "carbon_ops_pod_energy_joules_total{{pod_uid=\"{POD_A}\",qos=\"burstable\",namespace=\"\",pod=\"\"}} 0.010000"
        )),
        "{text}"
    );
    assert!(
        !text.contains("carbon_ops_process_"),
        "top 0: no per-process series"
    );
    tx.send(true)?;
    server.await?;
    Ok(())
}
