//! Per-process GPU split (pure): hand-computed windows, the memory-share fallback, and
//! exact conservation for any input (property test).

use carbon_ops::telemetry::gpu::{
    GpuProcess, ProcessSample,
    attrib::{Basis, DeviceWindow, split_device},
};
use proptest::prelude::*;

fn s(pid: u32, timestamp_us: u64, sm: u32) -> ProcessSample {
    ProcessSample {
        pid,
        timestamp_us,
        sm_util_pct: sm,
    }
}

fn p(pid: u32, mem: Option<u64>) -> GpuProcess {
    GpuProcess {
        pid,
        used_memory_bytes: mem,
        gpu_instance_id: None,
    }
}

fn win<'a>(
    energy_uj: u64,
    util: Option<u32>,
    samples: &'a [ProcessSample],
    processes: &'a [GpuProcess],
) -> DeviceWindow<'a> {
    DeviceWindow {
        energy_uj,
        no_basis: false,
        gpu_util_pct: util,
        samples,
        processes,
        carried: false,
    }
}

#[test]
fn split_by_sm_samples_by_hand() {
    // 60 % busy: 600 µJ active, 400 idle. Weights: pid 10 → 30 + 30, pid 20 → 20 (of 80).
    let samples = [s(10, 1, 30), s(10, 2, 30), s(20, 1, 20)];
    let a = split_device(&win(1000, Some(60), &samples, &[]));
    assert_eq!(a.basis, Basis::SmSamples);
    assert_eq!(a.idle_uj, 400);
    assert_eq!(a.per_pid, vec![(10, 450), (20, 150)]);
    assert_eq!((a.attributed_uj, a.unattributed_uj), (600, 0));
    assert!(a.conserves());
}

#[test]
fn remainders_go_to_the_largest_then_lowest() {
    // 1001 µJ at 50 %: 500.5 / 500.5 → active gets the odd µJ (ties to the lower index).
    // Active 501 between equal weights: 250.5 each → pid 3 (lower) gets 251.
    let samples = [s(7, 1, 40), s(3, 1, 40)];
    let a = split_device(&win(1001, Some(50), &samples, &[]));
    assert_eq!(a.idle_uj, 500);
    assert_eq!(a.per_pid, vec![(3, 251), (7, 250)]);
    assert!(a.conserves());
}

#[test]
fn duplicate_samples_count_once_and_util_is_clamped() {
    let samples = [s(1, 5, 50), s(1, 5, 50), s(2, 5, 50)];
    let a = split_device(&win(900, Some(180), &samples, &[]));
    assert_eq!(a.idle_uj, 0);
    assert_eq!(a.per_pid, vec![(1, 450), (2, 450)]);
}

#[test]
fn missing_samples_fall_back_to_memory_share() {
    // No utilisation figure: everything is active. 1 GiB vs 2 GiB of framebuffer.
    let procs = [p(5, Some(1 << 30)), p(6, Some(2 << 30)), p(8, None)];
    let a = split_device(&win(900, None, &[], &procs));
    assert_eq!(a.basis, Basis::MemoryShare);
    assert_eq!(a.per_pid, vec![(5, 300), (6, 600)]);
    // Samples with no SM activity are no basis either.
    let idle_samples = [s(5, 1, 0)];
    let b = split_device(&win(900, None, &idle_samples, &procs));
    assert_eq!(b.basis, Basis::MemoryShare);
}

#[test]
fn nothing_to_split_by_is_unattributed() {
    let a = split_device(&win(1000, Some(25), &[], &[p(9, None)]));
    assert_eq!(a.basis, Basis::None);
    assert_eq!(
        (a.idle_uj, a.unattributed_uj, a.attributed_uj),
        (750, 250, 0)
    );
    assert!(a.per_pid.is_empty() && a.conserves());
}

#[test]
fn energy_spanning_a_gap_has_no_basis() {
    let samples = [s(1, 1, 90)];
    let mut w = win(5000, Some(90), &samples, &[]);
    w.no_basis = true;
    let a = split_device(&w);
    assert_eq!(
        (a.unattributed_uj, a.attributed_uj, a.idle_uj),
        (5000, 0, 0)
    );
}

proptest! {
    #[test]
    fn conserves_exactly(
        energy in any::<u64>(),
        util in proptest::option::of(0u32..300),
        samples in proptest::collection::vec((0u32..8, 0u64..6, 0u32..120), 0..20),
        procs in proptest::collection::vec((0u32..8, proptest::option::of(0u64..u64::MAX / 16)), 0..6),
        no_basis in any::<bool>(),
    ) {
        let samples: Vec<_> = samples.into_iter().map(|(p, t, u)| s(p, t, u)).collect();
        let procs: Vec<_> = procs.into_iter().map(|(pid, m)| p(pid, m)).collect();
        let mut w = win(energy, util, &samples, &procs);
        w.no_basis = no_basis;
        let a = split_device(&w);
        prop_assert!(a.conserves());
        prop_assert_eq!(a.total_uj, energy);
        // Pids only ever come from the samples or the process list.
        for (pid, _) in &a.per_pid {
            prop_assert!(samples.iter().any(|x| x.pid == *pid) || procs.iter().any(|x| x.pid == *pid));
        }
    }
}
