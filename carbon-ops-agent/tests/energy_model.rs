//! The model source against a fake procfs, and `auto` selection (sysfs → msr → model).

use carbon_ops::energy::fake::{
    FakePowercap, FakeZone, cpuinfo, write_cpu_topology, write_msr, write_procfs,
};
use carbon_ops::energy::msr::{INTEL_PKG_ENERGY, INTEL_POWER_UNIT};
use carbon_ops::energy::{
    EnergyPaths, EnergySource, EnergySourceKind, Meter, ModelSource, RaplMode, SelectOptions,
    SourceError, select,
};
use std::path::Path;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SKYLAKE: &str = "Intel(R) Xeon(R) Platinum 8175M CPU @ 2.50GHz";

#[test]
fn model_energy_from_utilisation_by_hand() -> TestResult {
    let dir = tempfile::tempdir()?;
    let info = cpuinfo("GenuineIntel", 6, 0x55, SKYLAKE);
    let cpus = write_cpu_topology(dir.path(), &[(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)])?;
    let proc = write_procfs(dir.path(), &info, &[(1000, 1000); 4])?;
    let src = ModelSource::open(&proc, &cpus, None)?;
    assert_eq!(src.coefficients().label, "CCF AWS Skylake");
    assert_eq!(src.relative_uncertainty(), 0.30);
    let mut meter = Meter::new(Box::new(src));
    assert_eq!(meter.tick(0).host_uj.0, 0);
    // One second later: cpu0 100 % busy, cpu1 50 %, cpu2 0 %, cpu3 25 %.
    write_procfs(
        dir.path(),
        &info,
        &[(1100, 1000), (1050, 1050), (1000, 1100), (1025, 1075)],
    )?;
    let t = meter.tick(1_000_000_000);
    // Skylake: idle 0.65 W, max 4.26 W per CPU (Cloud Carbon Footprint, AWS table).
    // Package 0: 2 × 0.65 + 3.61 × 1.5 = 6.715 W; package 1: 1.3 + 3.61 × 0.25 = 2.2025 W.
    let p0 = t.packages[0].package_uj.0 as i64;
    let p1 = t.packages[1].package_uj.0 as i64;
    assert!((p0 - 6_715_000).abs() <= 1, "{p0}");
    assert!((p1 - 2_202_500).abs() <= 1, "{p1}");
    assert_eq!(t.host_uj.0 as i64, p0 + p1);
    assert_eq!(t.energy_source, EnergySourceKind::Model);
    assert_eq!(t.relative_uncertainty, 0.30);
    assert_eq!(t.packages[1].cpus, vec![2, 3]);
    assert_eq!(serde_json::to_value(&t)?["energy_source"], "model");
    Ok(())
}

#[test]
fn unknown_cpu_uses_the_table_average_and_a_larger_uncertainty() -> TestResult {
    let dir = tempfile::tempdir()?;
    let info = cpuinfo("GenuineIntel", 6, 0x6A, "Intel(R) Xeon(R) Processor");
    // No topology directory: every CPU of /proc/stat in package 0.
    let proc = write_procfs(dir.path(), &info, &[(0, 0); 2])?;
    let src = ModelSource::open(&proc, &dir.path().join("nope"), None)?;
    assert_eq!(src.relative_uncertainty(), 0.50);
    let mut meter = Meter::new(Box::new(src));
    meter.tick(0);
    write_procfs(dir.path(), &info, &[(0, 100), (0, 100)])?;
    // Idle for 2 s: 2 CPUs × 0.74 W × 2 s = 2.96 J.
    let t = meter.tick(2_000_000_000);
    assert!(
        (t.host_uj.0 as i64 - 2_960_000).abs() <= 1,
        "{}",
        t.host_uj.0
    );
    Ok(())
}

fn paths(base: &Path) -> EnergyPaths {
    EnergyPaths {
        powercap_root: base.join("sys/class/powercap"),
        msr_root: base.join("dev/cpu"),
        cpu_root: base.join("sys/devices/system/cpu"),
        procfs_root: base.join("proc"),
    }
}

fn base_system(base: &Path) -> std::io::Result<()> {
    write_cpu_topology(base, &[(0, 0, 0), (1, 0, 1)])?;
    write_procfs(base, &cpuinfo("GenuineIntel", 6, 0x9E, "x"), &[(0, 0); 2])?;
    Ok(())
}

#[test]
fn auto_prefers_sysfs() -> TestResult {
    let dir = tempfile::tempdir()?;
    base_system(dir.path())?;
    FakePowercap::build(
        dir.path(),
        &[FakeZone::new("intel-rapl:0", "package-0", 1000, 1)],
    )?;
    write_msr(&dir.path().join("dev/cpu"), 0, INTEL_POWER_UNIT, 0xA0E03)?;
    let (meter, reason) = select(&paths(dir.path()), &SelectOptions::default())?;
    assert_eq!(meter.kind(), EnergySourceKind::Sysfs);
    assert!(reason.starts_with("auto chose sysfs"), "{reason}");
    Ok(())
}

#[test]
fn auto_falls_back_to_msr_when_zones_are_unreadable() -> TestResult {
    let dir = tempfile::tempdir()?;
    base_system(dir.path())?;
    let fake = FakePowercap::build(
        dir.path(),
        &[FakeZone::new("intel-rapl:0", "package-0", 1000, 1)],
    )?;
    // An energy_uj that yields nothing, as for a non-root reader of a 0400 attribute.
    std::fs::remove_file(
        fake.zone_dir("intel-rapl:0")
            .ok_or("zone")?
            .join("energy_uj"),
    )?;
    let msr = dir.path().join("dev/cpu");
    write_msr(&msr, 0, INTEL_POWER_UNIT, 0xA0E03)?;
    write_msr(&msr, 0, INTEL_PKG_ENERGY, 42)?;
    let (meter, reason) = select(&paths(dir.path()), &SelectOptions::default())?;
    assert_eq!(meter.kind(), EnergySourceKind::Msr);
    assert!(
        reason.starts_with("auto chose msr because sysfs failed"),
        "{reason}"
    );
    assert!(reason.contains("none is readable"), "{reason}");
    Ok(())
}

#[test]
fn auto_falls_back_to_model_and_says_why() -> TestResult {
    let dir = tempfile::tempdir()?;
    base_system(dir.path())?;
    let (meter, reason) = select(&paths(dir.path()), &SelectOptions::default())?;
    assert_eq!(meter.kind(), EnergySourceKind::Model);
    assert!(reason.contains("no RAPL zone"), "{reason}");
    assert!(reason.contains("modprobe msr"), "{reason}");
    Ok(())
}

#[test]
fn a_forced_mode_does_not_fall_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    base_system(dir.path())?;
    let opts = SelectOptions {
        mode: RaplMode::Sysfs,
        ..SelectOptions::default()
    };
    let err = select(&paths(dir.path()), &opts).err().ok_or("selected")?;
    assert!(matches!(err, SourceError::NoPowercapZones { .. }));
    Ok(())
}

#[test]
fn model_source_goes_stale_without_proc_stat_and_recovers_over_the_gap() -> TestResult {
    let dir = tempfile::tempdir()?;
    let info = cpuinfo("GenuineIntel", 6, 0x55, SKYLAKE);
    let proc = write_procfs(dir.path(), &info, &[(0, 0)])?;
    let mut meter = Meter::new(Box::new(ModelSource::open(
        &proc,
        &dir.path().join("x"),
        None,
    )?));
    meter.tick(0);
    std::fs::remove_file(proc.join("stat"))?;
    let t = meter.tick(100_000_000);
    assert!(t.zones[0].stale && t.host_stale && t.host_uj.0 == 0);
    // Back at 300 ms (the first retry is due at 200 ms), 1 CPU fully busy throughout:
    // 4.26 W × 0.3 s = 1.278 J, measured over the whole span since the last sample.
    write_procfs(dir.path(), &info, &[(30, 0)])?;
    let t = meter.tick(300_000_000);
    assert!(!t.zones[0].stale && t.zones[0].flags.recovered);
    assert_eq!(t.zones[0].span_ns, 300_000_000);
    assert!(
        (t.host_uj.0 as i64 - 1_278_000).abs() <= 1,
        "{}",
        t.host_uj.0
    );
    Ok(())
}
