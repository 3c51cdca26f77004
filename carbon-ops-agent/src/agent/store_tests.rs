//! Tests for the state store.
use super::*;
use crate::tasks::delta::TaskDelta;

const CLOCKS: Clocks = Clocks {
    unix_now: 1_000_000.0,
    mono_now_ns: 50_000_000_000,
    boot_now_ns: 60_000_000_000,
};

fn id(pid: u32, start: u64) -> ProcessId {
    ProcessId {
        pid,
        start_boottime_ns: start,
    }
}

fn tick(
    at: u64,
    tasks: &[(ProcessId, u64, u64)],
    exited: Vec<ExitInfo>,
) -> (TickDelta, TickAttribution) {
    let d = TickDelta {
        from_ns: at - 100_000_000,
        to_ns: at,
        tasks: tasks
            .iter()
            .map(|&(id, ns, _)| TaskDelta {
                id,
                per_cpu_ns: vec![ns],
                cgroup_id: 9,
            })
            .collect(),
        idle_ns: vec![0],
        exited,
        lost_ns: 0,
        regressions: 0,
    };
    let attributed: u64 = tasks.iter().map(|t| t.2).sum();
    let a = TickAttribution {
        total_uj: attributed + 10,
        attributed_uj: attributed,
        idle_uj: 10,
        unattributed_uj: 0,
        per_task_uj: tasks.iter().map(|t| (t.0, t.2)).collect(),
        busy_ns: tasks.iter().map(|t| t.1).sum(),
    };
    (d, a)
}

fn meta(_: ProcessId) -> ProcMeta {
    ProcMeta {
        comm: "live".into(),
        uid: 1000,
        ppid: 1,
    }
}

#[test]
fn accumulates_and_converts_clocks() {
    let mut s = Store::new(600.0);
    let a = id(10, 59_000_000_000);
    for at in [49_800_000_000u64, 49_900_000_000] {
        let (d, t) = tick(at, &[(a, 30_000_000, 300)], vec![]);
        s.apply(&CLOCKS, &d, &t, &mut meta);
    }
    let r = s.by_pid(10).expect("record");
    assert_eq!(
        (r.cpu_time_ns, r.energy_uj, r.uid, r.comm.as_str()),
        (60_000_000, 600, 1000, "live")
    );
    assert_eq!(r.cgroup_id, 9);
    // Started 1 s before boot-clock "now"; last tick 0.1 s before monotonic "now".
    assert!((r.started_unix - 999_999.0).abs() < 1e-6);
    assert!((s.at_unix - 999_999.9).abs() < 1e-6);
    assert_eq!(s.energy.total_uj, 620);
    assert_eq!(s.host_busy_ns, 60_000_000);
    assert_eq!(r.allocation_ratio(s.host_busy_ns), 1.0);
}

#[test]
fn recent_energy_covers_the_last_ring_of_ticks() {
    let mut s = Store::new(600.0);
    let a = id(10, 1);
    let b = id(11, 1);
    for i in 0..15u64 {
        let uj = if i < 12 { 100 } else { 0 };
        let (d, t) = tick(
            40_000_000_000 + i * 100_000_000,
            &[(a, 1, uj), (b, 1, 1)],
            vec![],
        );
        s.apply(&CLOCKS, &d, &t, &mut meta);
    }
    // Ticks 6..=15 are the window; a had 100 µJ in ticks 6..=12 (7 ticks).
    assert_eq!(s.by_pid(10).expect("a").recent_uj(s.tick), 700);
    assert_eq!(s.by_pid(11).expect("b").recent_uj(s.tick), 10);
}

#[test]
fn exits_are_kept_for_the_retention_window_and_pid_reuse_is_separate() {
    let mut s = Store::new(1.0);
    let old = id(10, 1);
    let exit = ExitInfo {
        id: old,
        exit_monotonic_ns: 49_000_000_000,
        uid: 0,
        ppid: 1,
        comm: "short".into(),
        cgroup_id: 3,
    };
    let (d, t) = tick(49_000_000_000, &[(old, 5, 50)], vec![exit]);
    s.apply(&CLOCKS, &d, &t, &mut meta);
    let r = s.by_pid(10).expect("exited record");
    assert_eq!((r.comm.as_str(), r.uid), ("short", 0));
    assert!((r.exited_unix.expect("exited") - 999_999.0).abs() < 1e-6);
    // Same PID, newer start: a different record, and the newest answers for the PID.
    let new = id(10, 2);
    let (d, t) = tick(49_100_000_000, &[(new, 7, 70)], vec![]);
    s.apply(&CLOCKS, &d, &t, &mut meta);
    assert_eq!(s.procs.len(), 2);
    assert_eq!(s.by_pid(10).expect("newest").energy_uj, 70);
    // 1.5 s later the exited one is past retention.
    let (d, t) = tick(50_500_000_000, &[], vec![]);
    s.apply(&CLOCKS, &d, &t, &mut meta);
    assert_eq!(s.procs.len(), 1);
    assert!(s.procs.contains_key(&new));
    assert_eq!(s.by_pid(10).expect("the live one still answers").id, new);
}

#[test]
fn an_exited_process_is_dropped_exactly_when_its_retention_ends() {
    let mut s = Store::new(1.0);
    let gone = id(20, 1);
    let exit = ExitInfo {
        id: gone,
        exit_monotonic_ns: 49_000_000_000,
        uid: 0,
        ppid: 1,
        comm: "gone".into(),
        cgroup_id: 0,
    };
    let (d, t) = tick(49_000_000_000, &[(gone, 5, 50)], vec![exit]);
    s.apply(&CLOCKS, &d, &t, &mut meta);
    // Exactly at exit + retention it is still kept; one tick later it is gone.
    let (d, t) = tick(50_000_000_000, &[], vec![]);
    s.apply(&CLOCKS, &d, &t, &mut meta);
    assert!(s.by_pid(20).is_some(), "kept through the whole window");
    let (d, t) = tick(50_100_000_000, &[], vec![]);
    s.apply(&CLOCKS, &d, &t, &mut meta);
    assert!(s.by_pid(20).is_none(), "dropped after the window");
    assert!(s.procs.is_empty());
}

#[test]
fn tree_follows_parents_and_ignores_reused_pids() {
    let mut s = Store::new(600.0);
    let mut m = |id: ProcessId| ProcMeta {
        comm: "p".into(),
        uid: 0,
        ppid: match id.pid {
            20 => 10,
            30 => 20,
            40 => 10,
            _ => 1,
        },
    };
    // 10 → 20 → 30, 10 → 40 (40 started before 10: a reused pid, not a child), 50 unrelated.
    let ids = [
        id(10, 100),
        id(20, 200),
        id(30, 300),
        id(40, 50),
        id(50, 400),
    ];
    let tasks: Vec<(ProcessId, u64, u64)> = ids.iter().map(|&i| (i, 1000, 7)).collect();
    let (d, t) = tick(49_000_000_000, &tasks, vec![]);
    s.apply(&CLOCKS, &d, &t, &mut m);
    let mut pids: Vec<u32> = s.tree(id(10, 100)).iter().map(|r| r.id.pid).collect();
    pids.sort_unstable();
    assert_eq!(pids, vec![10, 20, 30]);
}

#[test]
fn exit_record_fills_in_what_proc_could_not_tell() {
    let mut s = Store::new(600.0);
    let a = id(10, 1);
    // First seen live, but /proc had nothing (already reaped).
    let mut unknown = |_: ProcessId| ProcMeta {
        comm: String::new(),
        uid: u32::MAX,
        ppid: 0,
    };
    let (d, t) = tick(49_000_000_000, &[(a, 5, 50)], vec![]);
    s.apply(&CLOCKS, &d, &t, &mut unknown);
    let exit = ExitInfo {
        id: a,
        exit_monotonic_ns: 49_050_000_000,
        uid: 7,
        ppid: 3,
        comm: "gone".into(),
        cgroup_id: 0,
    };
    let (d, t) = tick(49_100_000_000, &[], vec![exit]);
    s.apply(&CLOCKS, &d, &t, &mut unknown);
    let r = s.by_pid(10).expect("record");
    assert_eq!((r.ppid, r.uid, r.comm.as_str()), (3, 7, "gone"));
}
