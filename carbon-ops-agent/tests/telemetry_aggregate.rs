//! The `Telemetry` aggregate over temp procfs/sysfs trees and the fake GPU: the `status` and
//! `process` sections, cumulative conservation, pid retention, DRAM energy, and the real NVML
//! loader on a machine without the NVIDIA library.

use std::path::{Path, PathBuf};

use carbon_ops::telemetry::{
    GpuMode, GpuState, Telemetry, TelemetryConfig,
    gpu::{
        DeviceSample, GpuError, ProcessSample,
        fake::{FakeGpu, FakeGpuHandle},
        nvml::NvmlSource,
    },
};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;
const MS: u64 = 1_000_000;

struct Tree {
    _dir: tempfile::TempDir,
    proc_root: PathBuf,
    cpu_root: PathBuf,
}

fn tree() -> std::io::Result<Tree> {
    let dir = tempfile::tempdir()?;
    let proc_root = dir.path().join("proc");
    let cpu_root = dir.path().join("cpu");
    std::fs::create_dir_all(proc_root.join("31337"))?;
    std::fs::create_dir_all(cpu_root.join("cpu0/cpufreq"))?;
    std::fs::write(cpu_root.join("cpu0/cpufreq/scaling_cur_freq"), "3000000\n")?;
    std::fs::write(
        proc_root.join("meminfo"),
        "MemTotal: 8000 kB\nMemFree: 1000 kB\nMemAvailable: 6000 kB\n",
    )?;
    std::fs::write(
        proc_root.join("31337/status"),
        "Name:\tpython\nVmRSS:\t 512 kB\n",
    )?;
    write_stat(&proc_root, 0, 0)?;
    Ok(Tree {
        _dir: dir,
        proc_root,
        cpu_root,
    })
}

/// `/proc/stat` with cpu0 and cpu1 busy `b0` and `b1` jiffies out of 1000 each.
fn write_stat(proc_root: &Path, b0: u64, b1: u64) -> std::io::Result<()> {
    std::fs::write(proc_root.join("stat"), stat_text(b0, b1))
}

fn stat_text(b0: u64, b1: u64) -> String {
    let (i0, i1) = (1000 - b0, 1000 - b1);
    format!(
        "cpu {} 0 0 {} 0 0 0 0 0 0\ncpu0 {b0} 0 0 {i0} 0 0 0 0 0 0\ncpu1 {b1} 0 0 {i1} 0 0 0 0 0 0\n",
        b0 + b1,
        i0 + i1
    )
}

fn cfg(t: &Tree) -> TelemetryConfig {
    TelemetryConfig {
        proc_root: t.proc_root.clone(),
        cpu_sysfs_root: t.cpu_root.clone(),
        gpu: GpuMode::Off,
        pid_retention_ns: 250 * MS,
    }
}

fn with_fake(t: &Tree) -> (Telemetry, FakeGpuHandle) {
    let (fake, h) = FakeGpu::new(vec![FakeGpu::device(0, 400_000)]);
    (Telemetry::with_gpu_source(cfg(t), Box::new(fake)), h)
}

fn gpu_step(h: &FakeGpuHandle, counter_mj: u64, util: u32, samples: Vec<ProcessSample>) {
    h.set(0, |d| {
        d.energy_mj = Ok(counter_mj);
        d.sample = Ok(DeviceSample {
            power_mw: Some(200_000),
            gpu_util_pct: Some(util),
            memory_used_bytes: Some(1 << 30),
            memory_total_bytes: Some(80 << 30),
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

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(u64::MAX)
}

#[test]
fn status_and_process_sections() -> TestResult {
    let t = tree()?;
    let (mut tel, h) = with_fake(&t);
    gpu_step(&h, 0, 0, vec![]);
    tel.tick(0);
    // cpu0: +300 busy, +100 idle; cpu1: +100 busy, +300 idle.
    std::fs::write(
        t.proc_root.join("stat"),
        "cpu 400 0 0 2400 0 0 0 0 0 0\ncpu0 300 0 0 1100 0 0 0 0 0 0\ncpu1 100 0 0 1300 0 0 0 0 0 0\n",
    )?;
    gpu_step(&h, 30_000, 50, vec![s(31337, 1, 50)]);
    let tick = tel.tick(100 * MS);
    let cpu = tick.cpu.ok_or("no cpu window")?;
    // cpu0: 300 busy of 300 + 100 = 400 jiffies; host: 400 of 400 + 400.
    assert_eq!(cpu.cpus[0].1.map(|w| w.fraction()), Some(0.75));
    assert_eq!(cpu.host.map(|w| w.fraction()), Some(0.5));

    let st = tel.status_json();
    assert_eq!(st["cpu"]["host_utilisation"], 0.5);
    assert_eq!(st["cpu"]["cpus"][0]["frequency_khz"], 3_000_000);
    assert!(st["cpu"]["cpus"][1]["frequency_khz"].is_null());
    assert!(
        st["cpu"]["cpus"][1]["frequency_unavailable"]
            .as_str()
            .is_some_and(|r| r.contains("no cpufreq for cpu1"))
    );
    assert_eq!(u(&st["memory"]["host"]["used_bytes"]), 2000 * 1024);
    assert!(st["memory"]["dram_energy_uj"].is_null());
    assert!(st["memory"]["dram_unavailable"].is_string());
    let g = &st["gpu"];
    assert_eq!(g["available"], true);
    assert_eq!(g["state"], "active");
    let d = &g["devices"][0];
    assert_eq!(d["name"], "Fake GPU 0");
    assert_eq!(d["method"], "counter");
    assert_eq!(u(&d["energy_uj"]), 30_000_000);
    assert_eq!(u(&d["attributed_uj"]), 15_000_000);
    assert_eq!(u(&d["idle_uj"]), 15_000_000);
    assert_eq!(d["sample"]["power_mw"], 200_000);

    let p = tel.process_json(31337);
    assert_eq!(u(&p["rss_bytes"]), 512 * 1024);
    assert_eq!(u(&p["gpu_energy_uj"]), 15_000_000);
    assert_eq!(u(&p["gpu_devices"][0]["energy_uj"]), 15_000_000);
    let mut answer = serde_json::json!({"pid": 31337, "energy_uj": 5});
    tel.view().merge_process(&mut answer, 31337);
    assert_eq!(answer["energy_uj"], 5);
    assert_eq!(u(&answer["gpu_energy_uj"]), 15_000_000);
    let mut status = serde_json::json!({"version": "x"});
    tel.view().merge_status(&mut status);
    assert!(status["gpu"].is_object() && status["cpu"].is_object() && status["version"] == "x");
    let gone = tel.process_json(4);
    assert!(gone["rss_bytes"].is_null());
    assert!(
        gone["rss_error"]
            .as_str()
            .is_some_and(|e| e.contains("no process 4"))
    );
    assert_eq!(u(&gone["gpu_energy_uj"]), 0);
    Ok(())
}

#[test]
fn cumulative_totals_conserve_across_ticks_and_pid_expiry() -> TestResult {
    let t = tree()?;
    let (mut tel, h) = with_fake(&t);
    gpu_step(&h, 1000, 0, vec![]);
    tel.tick(0);
    let windows: [(u64, u32, Vec<ProcessSample>); 5] = [
        (7_001, 33, vec![s(1, 1, 10), s(2, 1, 20)]),
        (13_003, 100, vec![s(2, 2, 90)]),
        (13_500, 5, vec![]),
        (20_000, 70, vec![s(3, 3, 70)]),
        (20_010, 70, vec![s(3, 4, 1)]),
    ];
    for (k, (mj, util, samples)) in windows.into_iter().enumerate() {
        gpu_step(&h, mj, util, samples);
        tel.tick((k as u64 + 1) * 100 * MS);
        let st = tel.status_json();
        let d = &st["gpu"]["devices"][0];
        let pids: u64 = tel.view().pids.values().map(|e| e.total_uj()).sum();
        assert_eq!(
            u(&d["energy_uj"]),
            u(&d["attributed_uj"]) + u(&d["idle_uj"]) + u(&d["unattributed_uj"])
        );
        assert_eq!(u(&d["attributed_uj"]), pids + u(&d["expired_uj"]));
    }
    let d = &tel.status_json()["gpu"]["devices"][0];
    assert_eq!(u(&d["energy_uj"]), 19_010_000);
    // pid 1 last had energy at 100 ms: forgotten at 500 ms (retention 250 ms), kept in expired.
    assert!(!tel.view().pids.contains_key(&1));
    assert!(u(&d["expired_uj"]) > 0);
    assert!(tel.view().pids.contains_key(&3));
    Ok(())
}

#[test]
fn unreadable_proc_files_are_reported_not_fatal() -> TestResult {
    let t = tree()?;
    std::fs::remove_file(t.proc_root.join("stat"))?;
    std::fs::remove_file(t.proc_root.join("meminfo"))?;
    let mut tel = Telemetry::new(cfg(&t));
    let tick = tel.tick(0);
    assert!(tick.cpu.is_none() && tick.memory.is_none() && tick.gpu.is_none());
    let st = tel.status_json();
    assert!(
        st["cpu"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("stat"))
    );
    assert!(
        st["memory"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("meminfo"))
    );
    assert_eq!(st["gpu"]["state"], "disabled");
    assert_eq!(st["gpu"]["available"], false);
    Ok(())
}

#[test]
fn no_nvidia_library_is_unavailable_with_the_reason() -> TestResult {
    let t = tree()?;
    let mut c = cfg(&t);
    c.gpu = GpuMode::Nvml {
        lib_path: Some(PathBuf::from("/nonexistent/libnvidia-ml.so.1")),
    };
    let mut tel = Telemetry::new(c);
    assert!(matches!(tel.gpu_state(), GpuState::Unavailable(_)));
    tel.tick(0);
    let st = tel.status_json();
    assert_eq!(st["gpu"]["available"], false);
    let reason = st["gpu"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("/nonexistent/libnvidia-ml.so.1"),
        "{reason}"
    );
    assert!(reason.contains("install the NVIDIA driver"), "{reason}");
    assert_eq!(u(&tel.process_json(31337)["gpu_energy_uj"]), 0);
    Ok(())
}

#[test]
fn real_nvml_loader_on_this_machine_does_not_panic() {
    // Build machines have no NVIDIA driver: the default names must fail to load, cleanly.
    // On a GPU machine the same call must find at least one device.
    match NvmlSource::open(None) {
        Err(GpuError::Unavailable { reason }) => {
            eprintln!("NVML absent: {reason}");
            assert!(reason.contains("libnvidia-ml"), "{reason}");
        }
        Err(e) => panic!("only `Unavailable` is expected from open, got {e}"),
        Ok(src) => {
            use carbon_ops::telemetry::gpu::GpuSource;
            eprintln!("NVML present: {}", src.describe());
            assert!(!src.devices().is_empty());
        }
    }
    let tel = Telemetry::new(TelemetryConfig::default());
    let st = tel.status_json();
    assert!(st["gpu"]["state"] == "unavailable" || st["gpu"]["state"] == "active");
}

#[test]
fn dram_energy_from_the_energy_tick() -> TestResult {
    use carbon_ops::energy::{
        EnergySourceKind, ZoneKind,
        meter::{EnergyTick, ZoneFlags, ZoneTick},
    };
    use carbon_ops::units::MicroJoules;
    let zone = |kind, cum| ZoneTick {
        id: String::new(),
        name: String::new(),
        kind,
        package: Some(0),
        delta_uj: MicroJoules(0),
        cumulative_uj: MicroJoules(cum),
        span_ns: 0,
        stale: false,
        flags: ZoneFlags::default(),
        error: None,
    };
    let t = tree()?;
    let mut tel = Telemetry::new(cfg(&t));
    let mut e = EnergyTick {
        at_monotonic_ns: 0,
        elapsed_ns: 0,
        energy_source: EnergySourceKind::Model,
        relative_uncertainty: 0.1,
        zones: vec![zone(ZoneKind::Package, 900)],
        packages: Vec::new(),
        host_uj: MicroJoules(0),
        psys_uj: None,
        host_stale: false,
    };
    tel.observe_energy(&e);
    assert!(tel.status_json()["memory"]["dram_energy_uj"].is_null());
    e.zones.push(zone(ZoneKind::Dram, 40));
    e.zones.push(zone(ZoneKind::Dram, 2));
    tel.observe_energy(&e);
    assert_eq!(tel.status_json()["memory"]["dram_energy_uj"], 42);
    Ok(())
}

#[test]
fn frequencies_are_refreshed_once_a_second() -> TestResult {
    let t = tree()?;
    let mut tel = Telemetry::new(cfg(&t));
    let f = t.cpu_root.join("cpu0/cpufreq/scaling_cur_freq");
    tel.tick(0);
    std::fs::write(&f, "1200000\n")?;
    tel.tick(900 * MS);
    assert_eq!(
        tel.status_json()["cpu"]["cpus"][0]["frequency_khz"],
        3_000_000
    );
    tel.tick(1000 * MS);
    assert_eq!(
        tel.status_json()["cpu"]["cpus"][0]["frequency_khz"],
        1_200_000
    );
    Ok(())
}
