//! Per-group sums of a store: hand-computed groups on recorded paths, conservation (also as a
//! property), the `cgroup` query, monotonic metric counters, and, as root, real cgroups with
//! busy processes measured by the procfs accounting against the kernel's own `cpu.stat`.

mod fleet_support;

use std::{path::Path, sync::Arc, time::Duration};

use carbon_ops::{
    agent::store::{ProcRecord, Store},
    attribution::{IdlePolicy, PackageEnergy, TickInput, attribute},
    fleet::{
        accumulate::{Accumulator, Kind},
        aggregate::{CgroupQuery, GroupBy, aggregate, query},
        resolver::Resolver,
    },
    tasks::{TaskStats, delta::Differ, procfs::ProcfsTaskStats},
};
use fleet_support::*;
use proptest::prelude::*;

fn path_of(r: &ProcRecord) -> Option<Arc<str>> {
    paths(r.cgroup_id).map(Arc::from)
}

fn all(_: &ProcRecord) -> bool {
    true
}

/// p1 ctr1/podA 3000 µJ, p2 ctr2/podA 2000, p3 ctr3/podB 1000, p4 nginx 500, p5 unknown
/// cgroup 250, p6 root cgroup 100; per tick, two ticks.
fn two_ticks() -> Store {
    let mut s = Store::new(600.0);
    let runs = [
        (1, 11, 30_000_000, 3000),
        (2, 12, 20_000_000, 2000),
        (3, 21, 10_000_000, 1000),
        (4, 31, 5_000_000, 500),
        (5, 0, 2_500_000, 250),
        (6, 1, 1_000_000, 100),
    ];
    tick(&mut s, &runs, 40, &[]);
    tick(&mut s, &runs, 40, &[]);
    s
}

fn energy_of(agg: &carbon_ops::fleet::aggregate::Aggregation) -> Vec<(String, u64)> {
    agg.groups
        .iter()
        .map(|g| (g.key.clone(), g.sums.energy_uj))
        .collect()
}

#[test]
fn per_pod_container_cgroup_by_hand() {
    let s = two_ticks();
    let pods = aggregate(&s, GroupBy::Pod, &mut path_of, &all);
    assert_eq!(
        energy_of(&pods),
        vec![(POD_A.into(), 10_000), (POD_B.into(), 2_000)]
    );
    assert_eq!(pods.groups[0].sums.cpu_time_ns, 100_000_000);
    assert_eq!(
        (pods.groups[0].sums.processes, pods.groups[0].sums.running),
        (2, 2)
    );
    assert_eq!(pods.groups[0].labels.qos, Some("burstable"));
    assert_eq!(
        pods.groups[0].labels.container_id, None,
        "a pod keeps pod labels only"
    );
    assert_eq!(pods.outside.energy_uj, 1000 + 500 + 200);
    assert!(pods.conserves());
    let ctrs = aggregate(&s, GroupBy::Container, &mut path_of, &all);
    assert_eq!(
        energy_of(&ctrs),
        vec![
            (CTR_1.into(), 6000),
            (CTR_2.into(), 4000),
            (CTR_3.into(), 2000)
        ]
    );
    assert_eq!(ctrs.groups[2].labels.pod_uid.as_deref(), Some(POD_B));
    assert!(ctrs.conserves());
    let cgs = aggregate(&s, GroupBy::Cgroup, &mut path_of, &all);
    assert_eq!(cgs.groups.len(), 5);
    assert_eq!(cgs.groups[3].key, "/system.slice/nginx.service");
    assert_eq!(cgs.groups[3].sums.energy_uj, 1000);
    assert_eq!(
        cgs.outside.energy_uj, 500,
        "only the unknown cgroup is outside"
    );
    assert_eq!(s.energy.attributed_uj, 13_700);
    assert!(cgs.conserves());
}

#[test]
fn departed_and_hidden_keep_conservation() {
    let mut s = two_ticks();
    s.retention_s = 0.05;
    tick(&mut s, &[(1, 11, 1_000_000, 7)], 0, &[3]);
    tick(&mut s, &[(1, 11, 1_000_000, 7)], 0, &[]);
    assert!(s.by_pid(3).is_none(), "p3 dropped after retention");
    let pods = aggregate(&s, GroupBy::Pod, &mut path_of, &|r: &ProcRecord| {
        r.uid == 1001
    });
    // uid 1001: odd pids 1, 3 (gone), 5; the rest hidden.
    assert_eq!(energy_of(&pods), vec![(POD_A.into(), 6014)]);
    assert_eq!(pods.outside.energy_uj, 500);
    assert_eq!(pods.hidden.energy_uj, 4000 + 1000 + 200);
    assert_eq!(pods.departed_uj, 2000);
    assert!(pods.conserves());
}

#[test]
fn cgroup_query_by_path_pod_and_container() {
    let s = two_ticks();
    let q = |path: Option<&str>, pod: Option<&str>, ctr: Option<&str>| CgroupQuery {
        path: path.map(str::to_owned),
        pod_uid: pod.map(str::to_owned),
        container_id: ctr.map(str::to_owned),
        ..CgroupQuery::default()
    };
    let d = query(
        &s,
        &q(Some("/kubepods.slice/"), None, None),
        &mut path_of,
        &all,
        100,
    );
    let d = d.expect("subtree");
    assert_eq!((d.sums.energy_uj, d.members.len()), (10_000, 2));
    assert_eq!(d.members[0].pid, 1);
    let underscored = POD_A.replace('-', "_");
    let d = query(
        &s,
        &q(None, Some(&underscored), None),
        &mut path_of,
        &all,
        1,
    )
    .expect("pod");
    assert_eq!((d.sums.energy_uj, d.members.len()), (10_000, 1));
    let d = query(
        &s,
        &q(None, None, Some(&CTR_3[..12])),
        &mut path_of,
        &all,
        100,
    )
    .expect("ctr");
    assert_eq!(
        (d.sums.energy_uj, d.labels.pod_uid.as_deref()),
        (2000, Some(POD_B))
    );
    // `/kube` is not an ancestor of `/kubepods.slice`.
    assert!(query(&s, &q(Some("/kube"), None, None), &mut path_of, &all, 100).is_none());
    assert!(query(&s, &q(None, None, None), &mut path_of, &all, 100).is_none());
    let d = query(&s, &q(Some("/"), None, None), &mut path_of, &all, 100).expect("root");
    assert_eq!(d.sums.energy_uj, 13_700 - 500);
}

#[test]
fn accumulator_counters_never_decrease() {
    let mut s = Store::new(0.05);
    let mut acc = Accumulator::new();
    tick(
        &mut s,
        &[(1, 11, 1_000_000, 100), (2, 12, 1_000_000, 50)],
        0,
        &[],
    );
    acc.observe(&s, &mut path_of);
    let pod_a = |acc: &Accumulator| {
        acc.groups(Kind::Pod)
            .iter()
            .find(|(k, _)| *k == POD_A)
            .map(|(_, c)| c.energy_uj)
    };
    assert_eq!(pod_a(&acc), Some(150));
    tick(
        &mut s,
        &[(1, 11, 1_000_000, 100), (2, 12, 1_000_000, 50)],
        0,
        &[1],
    );
    acc.observe(&s, &mut path_of);
    assert_eq!(pod_a(&acc), Some(300));
    tick(&mut s, &[(2, 12, 1_000_000, 50)], 0, &[]);
    assert!(s.by_pid(1).is_none(), "p1 dropped");
    acc.observe(&s, &mut path_of);
    // A sum over the store would now be 150 (p2 only): the counter holds 350.
    assert_eq!(pod_a(&acc), Some(350));
    assert_eq!(
        acc.groups(Kind::Container).len(),
        1,
        "ctr1 left with its last process"
    );
    tick(&mut s, &[(2, 12, 1_000_000, 50)], 0, &[2]);
    tick(&mut s, &[], 0, &[]);
    acc.observe(&s, &mut path_of);
    assert_eq!(pod_a(&acc), None, "pod A left with its last process");
}

proptest! {
    #[test]
    fn conservation_holds_for_any_history(
        ticks in prop::collection::vec(
            (prop::collection::vec((1u32..12, prop::sample::select(vec![0u64, 1, 11, 12, 21, 31, 99]), 0u64..5_000), 0..8),
             prop::collection::vec(1u32..12, 0..2)),
            1..12),
        retention in prop::sample::select(vec![0.05f64, 0.25, 600.0]),
        uid in 1000u32..1002,
    ) {
        let mut s = Store::new(retention);
        let mut acc = Accumulator::new();
        for (runs, exits) in &ticks {
            let mut seen = std::collections::HashSet::new();
            let runs: Vec<Run> = runs.iter().filter(|r| seen.insert(r.0)).map(|&(p, cg, uj)| (p, cg, uj * 1000, uj)).collect();
            tick(&mut s, &runs, 3, exits);
            acc.observe(&s, &mut path_of);
        }
        for by in [GroupBy::Pod, GroupBy::Container, GroupBy::Cgroup] {
            let a = aggregate(&s, by, &mut path_of, &|r: &ProcRecord| r.uid == uid);
            prop_assert!(a.conserves(), "{by:?}: {a:?}");
        }
    }
}

/// Kernel CPU time of a cgroup from its `cpu.stat`, ns.
fn usage_ns(dir: &Path) -> u64 {
    let text = std::fs::read_to_string(dir.join("cpu.stat")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(0, |us| us * 1000)
}

fn pin_to_last_cpu(pid: u32) {
    // SAFETY: a zeroed cpu_set_t is valid; one bit set, applied to `pid`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let last = (libc::sysconf(libc::_SC_NPROCESSORS_ONLN).max(1) - 1) as usize;
        libc::CPU_SET(last, &mut set);
        libc::sched_setaffinity(pid as i32, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[test]
fn real_cgroups_get_their_processes_energy() -> std::io::Result<()> {
    let (Some(mut x), Some(mut y)) = (
        real_cgroup("carbon-ops-fleet-x"),
        real_cgroup("carbon-ops-fleet-y"),
    ) else {
        return Ok(());
    };
    // Two busy processes in x, one in y, sharing one CPU: x should get about 2/3 of it.
    for cg in [&mut x, &mut y] {
        pin_to_last_cpu(spawn_busy_into(cg)?);
    }
    pin_to_last_cpu(spawn_busy_into(&mut x)?);
    let mut stats = ProcfsTaskStats::system();
    let mut differ = Differ::new();
    let ncpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpus: Vec<u32> = (0..ncpus as u32).collect();
    std::thread::sleep(Duration::from_millis(100));
    let (ux0, uy0) = (usage_ns(&x.dir), usage_ns(&y.dir));
    let first = stats.snapshot(0).map_err(std::io::Error::other)?;
    differ.diff(&first);
    std::thread::sleep(Duration::from_millis(900));
    let second = stats.snapshot(1).map_err(std::io::Error::other)?;
    let (ux, uy) = (usage_ns(&x.dir) - ux0, usage_ns(&y.dir) - uy0);
    let delta = differ.diff(&second);
    let packages = [PackageEnergy {
        cpus,
        energy_uj: 9_000_000,
        no_basis: false,
    }];
    let attr = attribute(&TickInput {
        packages: &packages,
        host_uj: 9_000_000,
        tasks: &delta.tasks,
        idle_ns: &delta.idle_ns,
        lost_ns: 0,
        policy: IdlePolicy::IdleBucket,
    });
    let mut s = Store::new(600.0);
    let c = clocks(1);
    s.apply(&c, &delta, &attr, &mut |_| Default::default());
    let mut resolver = Resolver::open("/proc".into(), None);
    let agg = aggregate(&s, GroupBy::Cgroup, &mut |r| resolver.path_of(r), &all);
    assert!(agg.conserves());
    let name = |cg: &RealCgroup| {
        format!(
            "/{}",
            cg.dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    };
    let group = |n: &str| agg.groups.iter().find(|g| g.key == n).map(|g| g.sums);
    let (gx, gy) = (
        group(&name(&x)).expect("x measured"),
        group(&name(&y)).expect("y measured"),
    );
    assert_eq!((gx.processes, gy.processes), (2, 1));
    // procfs CPU time (clock ticks, 10 ms) against the kernel's cgroup accounting (µs).
    for (g, kernel) in [(gx, ux), (gy, uy)] {
        let diff = g.cpu_time_ns.abs_diff(kernel);
        assert!(
            diff <= 60_000_000 + kernel / 10,
            "group cpu {} ns vs cgroup cpu.stat {kernel} ns",
            g.cpu_time_ns
        );
    }
    // Energy follows CPU time: x about twice y.
    let ratio = gx.energy_uj as f64 / gy.energy_uj.max(1) as f64;
    assert!(
        (1.5..2.7).contains(&ratio),
        "x/y energy {ratio} (x {} µJ, y {} µJ)",
        gx.energy_uj,
        gy.energy_uj
    );
    Ok(())
}
