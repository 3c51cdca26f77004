//! Fleet benchmarks on a node-sized store: 10,000 processes in 200 pods of 2 containers
//! (systemd-driver paths): parsing one path's labels, summing the store per pod, and one
//! scrape (accumulator update + rendering the Prometheus text, every pod named).
//!
//! `cargo bench -p carbon-ops-agent --bench fleet`

#[path = "../tests/fleet_support/mod.rs"]
mod fleet_support;

use std::{collections::HashMap, sync::Arc};

use carbon_ops::{
    agent::store::Store,
    fleet::{
        accumulate::Accumulator,
        aggregate::{GroupBy, aggregate},
        cgroup::labels,
        metrics::{MetricsConfig, render},
        pods::{PodDirectory, PodName},
    },
};
use criterion::{Criterion, black_box};
use fleet_support::{Run, info, tick};

fn pod_path(pod: u64, ctr: u64) -> String {
    format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod:08x}_4d3a_4b5c_9e8f_0123456789ab.slice/cri-containerd-{ctr:064x}.scope"
    )
}

fn node() -> (Store, HashMap<u64, Arc<str>>) {
    let mut paths = HashMap::new();
    for pod in 0..200u64 {
        for c in 0..2u64 {
            let id = 1000 + pod * 2 + c;
            paths.insert(id, Arc::from(pod_path(pod, id)));
        }
    }
    let mut s = Store::new(600.0);
    let runs: Vec<Run> = (0..10_000u32)
        .map(|p| {
            (
                p + 1,
                1000 + u64::from(p) % 400,
                1_000_000,
                100 + u64::from(p),
            )
        })
        .collect();
    tick(&mut s, &runs, 0, &[]);
    (s, paths)
}

fn bench(c: &mut Criterion) {
    let path = pod_path(7, 7);
    c.bench_function("fleet_labels_systemd_path", |b| {
        b.iter(|| labels(black_box(&path)))
    });
    let (store, paths) = node();
    let mut path_of = |r: &carbon_ops::agent::store::ProcRecord| paths.get(&r.cgroup_id).cloned();
    c.bench_function("fleet_aggregate_by_pod_10k_procs", |b| {
        b.iter(|| aggregate(&store, GroupBy::Pod, &mut path_of, &|_| true))
    });
    let mut acc = Accumulator::new();
    let info = info();
    let cfg = MetricsConfig::default();
    let names = (0..200u64)
        .map(|pod| {
            let uid = format!("{pod:08x}-4d3a-4b5c-9e8f-0123456789ab");
            let name = PodName {
                namespace: format!("team-{}", pod % 7),
                name: format!("worker-{pod}-7d9f8b6c5-x2x9q"),
            };
            (uid, name)
        })
        .collect();
    let pods = PodDirectory::new(names, std::time::Instant::now());
    c.bench_function("fleet_scrape_10k_procs_200_pods", |b| {
        b.iter(|| {
            acc.observe(&store, &mut path_of);
            render(&info, &store, &acc, &cfg, &pods)
        })
    });
    println!(
        "exposition size: {} bytes",
        render(&info, &store, &acc, &cfg, &pods).len()
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
