//! The GPU meter against the fake source: counter advance, wraps, driver-reload resets, failed
//! reads, the power-integration fallback, missing samples, processes appearing and exiting.

use carbon_ops::telemetry::gpu::{
    DeviceSample, GpuError, GpuProcess, ProcessSample,
    attrib::Basis,
    fake::{FakeGpu, FakeGpuHandle},
    meter::{DeviceTick, EnergyMethod, GpuMeter, INTEGRATED_UNCERTAINTY},
};

const MS: u64 = 1_000_000;

/// One 300 W device (bound: 600 W, so 60 J = 60 000 mJ per 100 ms tick).
fn one() -> (GpuMeter, FakeGpuHandle) {
    let (fake, h) = FakeGpu::new(vec![FakeGpu::device(0, 300_000)]);
    (GpuMeter::new(Box::new(fake)), h)
}

fn set_counter(h: &FakeGpuHandle, mj: u64) {
    h.set(0, |d| d.energy_mj = Ok(mj));
}

fn dev(m: &mut GpuMeter, at: u64) -> DeviceTick {
    let mut t = m.tick(at);
    assert_eq!(t.devices.len(), 1);
    t.devices.remove(0)
}

fn busy(h: &FakeGpuHandle, util: u32, samples: Vec<ProcessSample>) {
    h.set(0, |d| {
        d.sample = Ok(DeviceSample {
            power_mw: Some(250_000),
            gpu_util_pct: Some(util),
            ..DeviceSample::default()
        });
        d.pending_samples = samples;
    });
}

fn s(pid: u32, t: u64, sm: u32) -> ProcessSample {
    ProcessSample {
        pid,
        timestamp_us: t,
        sm_util_pct: sm,
    }
}

#[test]
fn counter_advance_is_differenced_and_split() {
    let (mut m, h) = one();
    set_counter(&h, 1_000_000);
    let t0 = dev(&mut m, 0);
    assert!(t0.flags.first_reading);
    assert_eq!(t0.energy_uj, 0);
    // 25 000 mJ in 100 ms = 250 W. 80 % busy; one process.
    set_counter(&h, 1_025_000);
    busy(&h, 80, vec![s(77, 10, 80)]);
    let t1 = dev(&mut m, 100 * MS);
    assert_eq!(t1.method, EnergyMethod::Counter);
    assert_eq!((t1.energy_uj, t1.span_ns), (25_000_000, 100 * MS));
    assert_eq!(t1.cumulative_uj, 25_000_000);
    assert_eq!(t1.attribution.per_pid, vec![(77, 20_000_000)]);
    assert_eq!(t1.attribution.idle_uj, 5_000_000);
    assert_eq!(t1.attribution.basis, Basis::SmSamples);
}

#[test]
fn counter_wrap_is_counted_exactly() {
    let (mut m, h) = one();
    set_counter(&h, u64::MAX - 1_000);
    dev(&mut m, 0);
    set_counter(&h, 4_000);
    let t = dev(&mut m, 100 * MS);
    // Modulus 2^64 − 1: 1 000 mJ up to the top, then 4 000.
    assert!(t.flags.wrapped && !t.flags.reset_detected);
    assert_eq!(t.energy_uj, 5_000_000);
}

#[test]
fn driver_reload_reset_counts_only_what_is_plausible() {
    let (mut m, h) = one();
    set_counter(&h, 9_000_000);
    dev(&mut m, 0);
    // Reload: the counter restarts and has counted 2 000 mJ since.
    set_counter(&h, 2_000);
    let t = dev(&mut m, 100 * MS);
    assert!(t.flags.reset_detected);
    assert_eq!(t.energy_uj, 2_000_000);
    // A jump of 1 000 J in 100 ms (10 kW) is no reading of a 300 W board: counted as nothing.
    set_counter(&h, 1_002_000);
    let t = dev(&mut m, 200 * MS);
    assert!(t.flags.reset_detected);
    assert_eq!(t.energy_uj, 0);
    assert_eq!(t.cumulative_uj, 2_000_000, "cumulative never decreases");
}

#[test]
fn failed_read_marks_stale_and_the_recovered_energy_is_unattributed() {
    let (mut m, h) = one();
    busy(&h, 100, vec![]);
    set_counter(&h, 0);
    dev(&mut m, 0);
    h.set(0, |d| {
        d.energy_mj = Err(GpuError::Query {
            device: 0,
            what: "total energy consumption",
            reason: "GPU is lost".into(),
        });
    });
    busy(&h, 100, vec![s(1, 1, 100)]);
    let t = dev(&mut m, 100 * MS);
    assert!(t.stale);
    assert_eq!(t.energy_uj, 0);
    assert!(
        t.errors.iter().any(|e| e.contains("GPU is lost")),
        "{:?}",
        t.errors
    );
    set_counter(&h, 40_000);
    busy(&h, 100, vec![s(1, 2, 100)]);
    let t = dev(&mut m, 200 * MS);
    assert!(t.flags.recovered && !t.stale);
    assert_eq!((t.energy_uj, t.span_ns), (40_000_000, 200 * MS));
    assert_eq!(t.attribution.unattributed_uj, 40_000_000);
    assert!(t.attribution.per_pid.is_empty());
}

#[test]
fn unsupported_counter_falls_back_to_integrating_power() {
    let (mut m, h) = one();
    let power = |mw: Option<u64>| {
        h.set(0, |d| {
            d.energy_mj = Err(GpuError::NotSupported {
                device: 0,
                what: "total energy consumption",
            });
            d.sample = Ok(DeviceSample {
                power_mw: mw,
                gpu_util_pct: Some(100),
                ..DeviceSample::default()
            });
        });
    };
    power(Some(100_000));
    let t = dev(&mut m, 0);
    assert_eq!(t.method, EnergyMethod::PowerIntegration);
    assert_eq!(t.relative_uncertainty, INTEGRATED_UNCERTAINTY);
    assert!(t.flags.first_reading);
    // Trapezoid: (100 W + 200 W) / 2 × 0.1 s = 15 J.
    power(Some(200_000));
    assert_eq!(dev(&mut m, 100 * MS).energy_uj, 15_000_000);
    // 200 W × 0.05 s = 10 J.
    assert_eq!(dev(&mut m, 150 * MS).energy_uj, 10_000_000);
    // A missing power sample: no energy is invented across it.
    power(None);
    let t = dev(&mut m, 250 * MS);
    assert!(t.stale);
    assert_eq!(t.energy_uj, 0);
    power(Some(200_000));
    let t = dev(&mut m, 350 * MS);
    assert!(t.flags.first_reading && t.flags.gap_flagged);
    assert_eq!(t.energy_uj, 0);
    assert_eq!(dev(&mut m, 450 * MS).energy_uj, 20_000_000);
    assert_eq!(dev(&mut m, 450 * MS).cumulative_uj, 45_000_000);
}

#[test]
fn missing_samples_use_memory_share() {
    let (mut m, h) = one();
    dev(&mut m, 0);
    set_counter(&h, 30_000);
    h.set(0, |d| {
        d.sample = Ok(DeviceSample {
            gpu_util_pct: None,
            ..DeviceSample::default()
        });
        d.samples_error = Some(GpuError::NotSupported {
            device: 0,
            what: "process utilization",
        });
        d.processes = vec![
            GpuProcess {
                pid: 11,
                used_memory_bytes: Some(1 << 30),
                gpu_instance_id: Some(1),
            },
            GpuProcess {
                pid: 12,
                used_memory_bytes: Some(3 << 30),
                gpu_instance_id: Some(2),
            },
        ];
    });
    let t = dev(&mut m, 100 * MS);
    assert_eq!(t.attribution.basis, Basis::MemoryShare);
    assert_eq!(
        t.attribution.per_pid,
        vec![(11, 7_500_000), (12, 22_500_000)]
    );
    assert!(t.errors.iter().any(|e| e.contains("not supported")));
}

#[test]
fn processes_appearing_and_exiting_are_charged_for_their_samples_only() {
    let (mut m, h) = one();
    dev(&mut m, 0);
    let mut per_pid = std::collections::BTreeMap::<u32, u64>::new();
    let mut total = (0u64, 0u64);
    // Tick 1: only pid 100. Tick 2: pid 200 starts. Tick 3: pid 100 exited, but its last
    // sample falls in the window. Tick 4: pid 200 alone.
    let script = [
        vec![s(100, 1, 50)],
        vec![s(100, 2, 50), s(200, 2, 50)],
        vec![s(100, 3, 20), s(200, 3, 60)],
        vec![s(200, 4, 90)],
    ];
    for (k, samples) in script.into_iter().enumerate() {
        set_counter(&h, 20_000 * (k as u64 + 1));
        busy(&h, 100, samples);
        let t = dev(&mut m, (k as u64 + 1) * 100 * MS);
        assert!(t.attribution.conserves());
        total.0 += t.energy_uj;
        total.1 += t.attribution.attributed_uj;
        for (pid, uj) in t.attribution.per_pid {
            *per_pid.entry(pid).or_default() += uj;
        }
    }
    // 20 J per tick at 100 % busy: pid 100 gets 20 + 10 + 5 J, pid 200 10 + 15 + 20 J.
    assert_eq!(per_pid.get(&100), Some(&35_000_000));
    assert_eq!(per_pid.get(&200), Some(&45_000_000));
    assert_eq!(total, (80_000_000, 80_000_000));
}

#[test]
fn two_devices_are_independent() {
    let (fake, h) = FakeGpu::new(vec![FakeGpu::device(0, 700_000), FakeGpu::device(1, 0)]);
    let mut m = GpuMeter::new(Box::new(fake));
    m.tick(0);
    h.set(0, |d| d.energy_mj = Ok(50_000));
    // Device 1 reports no power limit: the default bound (2 kW, doubled) still admits 150 J.
    h.set(1, |d| d.energy_mj = Ok(150_000));
    let t = m.tick(100 * MS);
    assert_eq!(t.devices[0].energy_uj, 50_000_000);
    assert_eq!(t.devices[1].energy_uj, 150_000_000);
    assert_eq!(t.devices[1].name, "Fake GPU 1");
}

#[test]
fn last_samples_are_carried_for_a_second_then_memory_share() {
    let (mut m, h) = one();
    dev(&mut m, 0);
    h.set(0, |d| {
        d.processes = vec![GpuProcess {
            pid: 9,
            used_memory_bytes: Some(1 << 30),
            gpu_instance_id: None,
        }];
    });
    set_counter(&h, 10_000);
    busy(&h, 100, vec![s(5, 1, 30), s(6, 1, 10)]);
    let t = dev(&mut m, 100 * MS);
    assert_eq!(t.attribution.basis, Basis::SmSamples);
    assert_eq!(t.attribution.per_pid, vec![(5, 7_500_000), (6, 2_500_000)]);
    // No new sample 1 s after the last ones arrived: still carried (3:1).
    set_counter(&h, 14_000);
    busy(&h, 100, vec![]);
    let t = dev(&mut m, 1100 * MS);
    assert_eq!(t.attribution.basis, Basis::SmSamplesCarried);
    assert_eq!(t.attribution.per_pid, vec![(5, 3_000_000), (6, 1_000_000)]);
    // Past a second: the samples are stale; memory share of the running process.
    set_counter(&h, 18_000);
    busy(&h, 100, vec![]);
    let t = dev(&mut m, 1200 * MS);
    assert_eq!(t.attribution.basis, Basis::MemoryShare);
    assert_eq!(t.attribution.per_pid, vec![(9, 4_000_000)]);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// One scripted tick: counter (mJ; `None` = failed read), utilisation, samples
    /// `(pid, timestamp, sm %)`, ms since the previous tick.
    type Step = (Option<u64>, Option<u32>, Vec<(u32, u64, u32)>, u64);

    fn step() -> impl Strategy<Value = Step> {
        (
            proptest::option::weighted(0.9, 0u64..u64::MAX - 1),
            proptest::option::of(0u32..=100),
            proptest::collection::vec((0u32..5, 0u64..50, 0u32..=100), 0..6),
            1u64..2_000, // ms since the previous tick
        )
    }

    proptest! {
        #[test]
        fn any_counter_sequence_conserves_and_never_decreases(
            steps in proptest::collection::vec(step(), 1..40)
        ) {
            let (mut m, h) = one();
            let (mut at, mut sum, mut last_cum) = (0u64, 0u64, 0u64);
            for (raw, util, samples, dt) in steps {
                at += dt * MS;
                h.set(0, |d| {
                    d.energy_mj = raw.ok_or(GpuError::Query {
                        device: 0,
                        what: "total energy consumption",
                        reason: "scripted".into(),
                    });
                    d.sample = Ok(DeviceSample {
                        power_mw: Some(100_000),
                        gpu_util_pct: util,
                        ..DeviceSample::default()
                    });
                    d.pending_samples = samples.iter().map(|&(p, t, u)| s(p, t, u)).collect();
                });
                let t = dev(&mut m, at);
                prop_assert!(t.attribution.conserves());
                prop_assert_eq!(t.attribution.total_uj, t.energy_uj);
                prop_assert!(t.cumulative_uj >= last_cum);
                sum += t.energy_uj;
                prop_assert_eq!(t.cumulative_uj, sum);
                last_cum = t.cumulative_uj;
                // Never more than twice the 300 W limit over the span, plus one mJ of slack.
                prop_assert!(u128::from(t.energy_uj) <= 600u128 * u128::from(t.span_ns) / 1000 + 1000);
            }
        }
    }
}
