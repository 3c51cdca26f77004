//! Tests for snapshot differencing.
use proptest::prelude::*;

use super::*;
use crate::tasks::{LossCounters, TaskSample};

fn id(pid: u32, start: u64) -> ProcessId {
    ProcessId {
        pid,
        start_boottime_ns: start,
    }
}

fn sample(pid: u32, start: u64, per_cpu: &[u64]) -> TaskSample {
    TaskSample {
        id: id(pid, start),
        per_cpu_ns: per_cpu.to_vec(),
        switches: 0,
        cgroup_id: 7,
    }
}

fn snap(at: u64, tasks: Vec<TaskSample>, idle: &[u64]) -> Snapshot {
    Snapshot {
        at_ns: at,
        ncpus: idle.len(),
        tasks,
        idle_ns: idle.to_vec(),
        exited: vec![],
        lost: LossCounters::default(),
    }
}

#[test]
fn first_snapshot_counts_in_full_then_differences() {
    let mut d = Differ::new();
    let t0 = d.diff(&snap(100, vec![sample(10, 1, &[5, 0])], &[50, 60]));
    assert_eq!((t0.from_ns, t0.to_ns), (100, 100));
    assert_eq!(t0.tasks[0].per_cpu_ns, vec![5, 0]);
    let t1 = d.diff(&snap(
        200,
        vec![sample(10, 1, &[8, 4]), sample(11, 2, &[0, 3])],
        &[90, 100],
    ));
    assert_eq!((t1.from_ns, t1.to_ns), (100, 200));
    assert_eq!(t1.tasks.len(), 2);
    assert_eq!(t1.tasks[0].per_cpu_ns, vec![3, 4]);
    assert_eq!(t1.tasks[1].per_cpu_ns, vec![0, 3]);
    assert_eq!(t1.idle_ns, vec![40, 40]);
    assert_eq!(t1.regressions, 0);
}

#[test]
fn idle_processes_are_omitted_and_reused_pids_are_distinct() {
    let mut d = Differ::new();
    d.diff(&snap(0, vec![sample(10, 1, &[5])], &[0]));
    // Same pid, new start time: a new process, counted from zero.
    let t = d.diff(&snap(
        1,
        vec![sample(10, 1, &[5]), sample(10, 99, &[2])],
        &[0],
    ));
    assert_eq!(t.tasks.len(), 1);
    assert_eq!(t.tasks[0].id, id(10, 99));
    assert_eq!(t.tasks[0].per_cpu_ns, vec![2]);
}

#[test]
fn exited_processes_are_forgotten_after_their_final_delta() {
    let mut d = Differ::new();
    d.diff(&snap(0, vec![sample(10, 1, &[5])], &[0]));
    let mut s = snap(1, vec![sample(10, 1, &[9])], &[0]);
    s.exited.push(ExitInfo {
        id: id(10, 1),
        exit_monotonic_ns: 1,
        uid: 0,
        ppid: 1,
        comm: "x".into(),
        cgroup_id: 0,
    });
    let t = d.diff(&s);
    assert_eq!(t.tasks[0].per_cpu_ns, vec![4]);
    assert_eq!(t.exited.len(), 1);
    assert!(d.prev.is_empty());
}

#[test]
fn regressions_count_and_contribute_zero() {
    let mut d = Differ::new();
    d.diff(&snap(0, vec![sample(10, 1, &[5, 5])], &[0, 0]));
    let t = d.diff(&snap(1, vec![sample(10, 1, &[4, 6])], &[0, 0]));
    assert_eq!(t.regressions, 1);
    assert_eq!(t.tasks[0].per_cpu_ns, vec![0, 1]);
}

#[test]
fn lost_ns_is_differenced() {
    let mut d = Differ::new();
    let mut s = snap(0, vec![], &[0]);
    s.lost.task_lost_ns = 10;
    assert_eq!(d.diff(&s).lost_ns, 10);
    s.lost.task_lost_ns = 25;
    assert_eq!(d.diff(&s).lost_ns, 15);
}

proptest! {
    /// Summing the deltas of monotone cumulative snapshots gives back the last cumulative value.
    #[test]
    fn deltas_sum_to_the_cumulative(steps in prop::collection::vec(prop::collection::vec(0u64..1_000_000, 3), 1..30)) {
        let mut d = Differ::new();
        let mut cum = [0u64; 3];
        let mut summed = [0u64; 3];
        for (i, step) in steps.iter().enumerate() {
            for c in 0..3 { cum[c] += step[c]; }
            let t = d.diff(&snap(i as u64, vec![sample(1, 1, &cum)], &[0, 0, 0]));
            prop_assert_eq!(t.regressions, 0);
            for td in &t.tasks {
                for (sum, v) in summed.iter_mut().zip(&td.per_cpu_ns) {
                    *sum += v;
                }
            }
        }
        prop_assert_eq!(summed, cum);
    }
}

#[test]
fn absent_processes_are_unchanged_not_restarted() {
    let mut d = Differ::new();
    d.diff(&snap(
        0,
        vec![sample(10, 1, &[5]), sample(11, 1, &[7])],
        &[0],
    ));
    // 11 did not move: the source leaves it out.
    let t = d.diff(&snap(1, vec![sample(10, 1, &[6])], &[0]));
    assert_eq!(t.tasks.len(), 1);
    // When 11 moves again, only its increase counts.
    let t = d.diff(&snap(2, vec![sample(11, 1, &[9])], &[0]));
    assert_eq!(t.tasks[0].per_cpu_ns, vec![2]);
}
