//! Tests for attribution: hand-computed splits and conservation properties.
use proptest::prelude::*;

use super::*;
use crate::tasks::delta::TaskDelta;

fn task(pid: u32, per_cpu: &[u64]) -> TaskDelta {
    TaskDelta {
        id: ProcessId {
            pid,
            start_boottime_ns: 1,
        },
        per_cpu_ns: per_cpu.to_vec(),
        cgroup_id: 0,
    }
}

fn pkg(cpus: &[u32], uj: u64) -> PackageEnergy {
    PackageEnergy {
        cpus: cpus.to_vec(),
        energy_uj: uj,
        no_basis: false,
    }
}

#[test]
fn largest_remainder_by_hand() {
    // 10 by 1:1:1 → 3.33 each; the one left goes to the lowest index among equal remainders.
    assert_eq!(split::largest_remainder(10, &[1, 1, 1]), vec![4, 3, 3]);
    // 7 by 2:1 → 4.67, 2.33 → 5, 2.
    assert_eq!(split::largest_remainder(7, &[2, 1]), vec![5, 2]);
    assert_eq!(split::largest_remainder(7, &[0, 0]), vec![0, 0]);
    assert_eq!(
        split::largest_remainder(u64::MAX, &[u64::MAX, u64::MAX]),
        vec![u64::MAX / 2 + 1, u64::MAX / 2]
    );
}

#[test]
fn one_package_two_processes_and_idle_by_hand() {
    // 1,000,000 µJ on a 2-CPU package in a 100 ms tick: A ran 100 ms on cpu0, B 50 ms on
    // cpu1, cpu1 idled 50 ms. Total time 200 ms: A 1/2, B 1/4, idle 1/4.
    let tasks = [task(1, &[100_000_000, 0]), task(2, &[0, 50_000_000])];
    let packages = [pkg(&[0, 1], 1_000_000)];
    let input = TickInput {
        packages: &packages,
        host_uj: 1_000_000,
        tasks: &tasks,
        idle_ns: &[0, 50_000_000],
        lost_ns: 0,
        policy: IdlePolicy::IdleBucket,
    };
    let out = attribute(&input);
    assert_eq!(
        out.per_task_uj.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![500_000, 250_000]
    );
    assert_eq!(
        (out.attributed_uj, out.idle_uj, out.unattributed_uj),
        (750_000, 250_000, 0)
    );
    assert_eq!(out.busy_ns, 150_000_000);
    assert!(out.conserves());
    // Spread: idle's quarter goes to A and B 2:1.
    let out = attribute(&TickInput {
        policy: IdlePolicy::Spread,
        ..input
    });
    assert_eq!(
        out.per_task_uj.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![666_667, 333_333]
    );
    assert_eq!((out.idle_uj, out.unattributed_uj), (0, 0));
    assert!(out.conserves());
}

#[test]
fn two_packages_use_their_own_cpus() {
    // Package 0 = cpu0, package 1 = cpu1. A runs only on cpu0, B only on cpu1.
    let tasks = [task(1, &[10, 0]), task(2, &[0, 30])];
    let packages = [pkg(&[0], 600), pkg(&[1], 900)];
    let out = attribute(&TickInput {
        packages: &packages,
        host_uj: 1500,
        tasks: &tasks,
        idle_ns: &[10, 0],
        lost_ns: 0,
        policy: IdlePolicy::IdleBucket,
    });
    assert_eq!(
        out.per_task_uj.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![300, 900]
    );
    assert_eq!(out.idle_uj, 300);
    assert!(out.conserves());
}

#[test]
fn energy_without_basis_is_unattributed() {
    let tasks = [task(1, &[10])];
    // Recovered after a gap; host has 50 µJ beyond the packages (e.g. psys-only remainder).
    let packages = [PackageEnergy {
        cpus: vec![0],
        energy_uj: 400,
        no_basis: true,
    }];
    let out = attribute(&TickInput {
        packages: &packages,
        host_uj: 450,
        tasks: &tasks,
        idle_ns: &[0],
        lost_ns: 0,
        policy: IdlePolicy::IdleBucket,
    });
    assert_eq!(
        (out.total_uj, out.attributed_uj, out.unattributed_uj),
        (450, 0, 450)
    );
    // A package with no time at all (e.g. procfs saw nothing): unattributed.
    let packages = [pkg(&[0], 400)];
    let out = attribute(&TickInput {
        packages: &packages,
        host_uj: 400,
        tasks: &[],
        idle_ns: &[0],
        lost_ns: 0,
        policy: IdlePolicy::Spread,
    });
    assert_eq!(out.unattributed_uj, 400);
    assert!(out.conserves());
}

#[test]
fn lost_time_takes_its_share_as_unattributed() {
    let tasks = [task(1, &[30, 0])];
    let packages = [pkg(&[0, 1], 1000)];
    let out = attribute(&TickInput {
        packages: &packages,
        host_uj: 1000,
        tasks: &tasks,
        idle_ns: &[0, 30],
        lost_ns: 40,
        policy: IdlePolicy::IdleBucket,
    });
    assert_eq!(
        (out.attributed_uj, out.idle_uj, out.unattributed_uj),
        (300, 300, 400)
    );
}

fn arb_tick() -> impl Strategy<Value = (Vec<Vec<u64>>, Vec<u64>, Vec<u64>, u64, bool)> {
    (1usize..5).prop_flat_map(|ncpus| {
        (
            prop::collection::vec(prop::collection::vec(0u64..200_000_000, ncpus), 0..20),
            prop::collection::vec(0u64..100_000_000, ncpus),
            prop::collection::vec(0u64..10_000_000_000, 1..3),
            0u64..1_000_000,
            any::<bool>(),
        )
    })
}

proptest! {
    /// Conservation holds exactly for any tick, and each process gets its exact share ±1 µJ.
    #[test]
    fn conserves_every_microjoule((tasks, idle, pkg_uj, lost, spread) in arb_tick()) {
        let ncpus = idle.len() as u32;
        // Packages take the CPUs round-robin.
        let npk = pkg_uj.len() as u32;
        let packages: Vec<PackageEnergy> = pkg_uj.iter().enumerate().map(|(p, &uj)| PackageEnergy {
            cpus: (0..ncpus).filter(|c| c % npk == p as u32).collect(),
            energy_uj: uj,
            no_basis: false,
        }).collect();
        let tasks: Vec<TaskDelta> = tasks.iter().enumerate().map(|(i, t)| task(i as u32, t)).collect();
        let host: u64 = pkg_uj.iter().sum::<u64>() + 17;
        let policy = if spread { IdlePolicy::Spread } else { IdlePolicy::IdleBucket };
        let out = attribute(&TickInput { packages: &packages, host_uj: host, tasks: &tasks, idle_ns: &idle, lost_ns: lost, policy });
        prop_assert!(out.conserves());
        prop_assert_eq!(out.total_uj, host);
        if npk == 1 && lost == 0 && !spread {
            let denom: u128 = tasks.iter().map(|t| u128::from(t.total_ns())).sum::<u128>() + idle.iter().map(|&v| u128::from(v)).sum::<u128>();
            for (t, (_, got)) in tasks.iter().zip(&out.per_task_uj) {
                if let Some(exact) = (u128::from(pkg_uj[0]) * u128::from(t.total_ns())).checked_div(denom) {
                    prop_assert!((*got as i128 - exact as i128).abs() <= 1);
                }
            }
        }
    }
}
