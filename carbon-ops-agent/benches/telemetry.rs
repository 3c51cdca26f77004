//! Telemetry benchmarks: one whole `Telemetry::tick` on a 64-CPU procfs tree (no cpufreq)
//! with a 4-GPU fake carrying 32 processes (the per-tick cost the agent pays at 10 Hz), the
//! `/proc/stat` and `/proc/meminfo` parsers, and the pure per-device GPU split.
//!
//! `cargo bench -p carbon-ops-agent --bench telemetry`.

use carbon_ops::telemetry::{
    GpuMode, Telemetry, TelemetryConfig,
    cpu::parse_proc_stat,
    gpu::{
        DeviceSample, GpuProcess, ProcessSample,
        attrib::{DeviceWindow, split_device},
        fake::FakeGpu,
    },
    memory::parse_meminfo,
};
use criterion::{Criterion, black_box};

fn stat_text(ncpu: u32, k: u64) -> String {
    let mut s = format!("cpu {} 0 {} {} 0 0 0 0 0 0\n", 1000 * k, 10 * k, 900 * k);
    for c in 0..ncpu {
        s += &format!(
            "cpu{c} {} 3 {} {} 7 0 2 1 0 0\n",
            10 * k + u64::from(c),
            k,
            9 * k
        );
    }
    s += "intr 123 0 0 0\nctxt 999\nbtime 1\nprocesses 5\nprocs_running 1\nprocs_blocked 0\n";
    s
}

const MEMINFO: &str = "MemTotal:       24684084 kB\nMemFree:         5866840 kB\nMemAvailable:   23650360 kB\nBuffers:          289968 kB\nCached:         17198936 kB\nSwapCached:            0 kB\nActive:          4090436 kB\nInactive:       13808556 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\nDirty:            187236 kB\nAnonPages:        424324 kB\nMapped:           207412 kB\nShmem:              8872 kB\nSlab:             768660 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n";

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let stat = stat_text(64, 7);
    c.bench_function("telemetry_parse_proc_stat_64cpu", |b| {
        b.iter(|| parse_proc_stat(black_box(&stat)))
    });
    c.bench_function("telemetry_parse_meminfo", |b| {
        b.iter(|| parse_meminfo(black_box(MEMINFO)))
    });
    let samples: Vec<ProcessSample> = (0..32u32)
        .flat_map(|p| {
            (0..6u64).map(move |t| ProcessSample {
                pid: 1000 + p,
                timestamp_us: t,
                sm_util_pct: p % 7 * 3,
            })
        })
        .collect();
    let procs: Vec<GpuProcess> = (0..32u32)
        .map(|p| GpuProcess {
            pid: 1000 + p,
            used_memory_bytes: Some(u64::from(p + 1) << 28),
            gpu_instance_id: None,
        })
        .collect();
    c.bench_function("telemetry_gpu_split_32proc_192samples", |b| {
        b.iter(|| {
            split_device(black_box(&DeviceWindow {
                energy_uj: 70_000_123,
                no_basis: false,
                gpu_util_pct: Some(87),
                samples: &samples,
                processes: &procs,
                carried: false,
            }))
        })
    });

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stat"), stat_text(64, 1)).expect("stat");
    std::fs::write(dir.path().join("meminfo"), MEMINFO).expect("meminfo");
    let (fake, h) = FakeGpu::new((0..4).map(|i| FakeGpu::device(i, 700_000)).collect());
    let mut tel = Telemetry::with_gpu_source(
        TelemetryConfig {
            proc_root: dir.path().to_owned(),
            cpu_sysfs_root: dir.path().join("no-cpufreq"),
            gpu: GpuMode::Off,
            pid_retention_ns: 600_000_000_000,
        },
        Box::new(fake),
    );
    let mut k = 0u64;
    c.bench_function("telemetry_tick_64cpu_4gpu_32proc", |b| {
        b.iter(|| {
            k += 1;
            for d in 0..4 {
                h.set(d, |f| {
                    f.energy_mj = Ok(k * 7_000);
                    f.sample = Ok(DeviceSample {
                        power_mw: Some(70_000),
                        gpu_util_pct: Some(90),
                        ..DeviceSample::default()
                    });
                    f.pending_samples = samples.clone();
                    f.processes = procs.clone();
                });
            }
            black_box(tel.tick(k * 100_000_000))
        })
    });
    c.final_summary();
}
