//! MSR source against fake `/dev/cpu/<n>/msr` files: 8-byte little-endian registers at their
//! offsets (sparse files), Intel and AMD, with 32-bit counter wraps.

use carbon_ops::energy::fake::{cpuinfo, write_cpu_topology, write_msr, write_procfs};
use carbon_ops::energy::msr::{
    AMD_CORE_ENERGY, AMD_PKG_ENERGY, AMD_POWER_UNIT, INTEL_DRAM_ENERGY, INTEL_PKG_ENERGY,
    INTEL_POWER_UNIT, INTEL_PP0_ENERGY, INTEL_PSYS_ENERGY,
};
use carbon_ops::energy::{
    EnergySource, EnergySourceKind, Meter, MsrOptions, MsrSource, SourceError, ZoneKind,
};
use std::path::{Path, PathBuf};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Roots {
    msr: PathBuf,
    cpus: PathBuf,
    proc: PathBuf,
}

fn roots(base: &Path, info: &str, topo: &[(u32, u32, u32)]) -> std::io::Result<Roots> {
    Ok(Roots {
        msr: base.join("dev/cpu"),
        cpus: write_cpu_topology(base, topo)?,
        proc: write_procfs(base, info, &[(0, 0)])?,
    })
}

/// Intel client-style units: power 1/8 W, energy 2^-14 J (61.03515625 µJ), time 2^-10 s.
const INTEL_UNITS: u64 = 0x000A_0E03;

#[test]
fn intel_two_packages_one_cpu_each_with_32_bit_wraps() -> TestResult {
    let dir = tempfile::tempdir()?;
    let info = cpuinfo("GenuineIntel", 6, 0x9E, "Intel(R) Core(TM) i7-8700");
    let topo = [(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)];
    let r = roots(dir.path(), &info, &topo)?;
    for cpu in [0, 2] {
        write_msr(&r.msr, cpu, INTEL_POWER_UNIT, INTEL_UNITS)?;
        // Upper 32 bits hold reserved garbage that must be masked off.
        write_msr(&r.msr, cpu, INTEL_PKG_ENERGY, 0xDEAD_0000_FFFF_F000)?;
        write_msr(&r.msr, cpu, INTEL_PP0_ENERGY, 1)?;
        write_msr(&r.msr, cpu, INTEL_DRAM_ENERGY, 0xFFFF_FF00)?;
    }
    // PSYS only on the first CPU's file; CPUs 1 and 3 have no msr file at all: if the source
    // tried to read them it would fail, which proves one CPU per package. PP1 (0x641) lies
    // inside cpu0's sparse file and reads 0: absent, as the kernel decides.
    write_msr(&r.msr, 0, INTEL_PSYS_ENERGY, 5)?;
    let src = MsrSource::open(&r.msr, &r.cpus, &r.proc, &MsrOptions::default())?;
    let z: Vec<(&str, ZoneKind, Option<u32>)> = src
        .zones()
        .iter()
        .map(|z| (z.id.as_str(), z.kind, z.package))
        .collect();
    assert_eq!(
        z,
        vec![
            ("msr:cpu0:package-0", ZoneKind::Package, Some(0)),
            ("msr:cpu0:core", ZoneKind::Core, Some(0)),
            ("msr:cpu0:dram", ZoneKind::Dram, Some(0)),
            ("msr:cpu0:psys", ZoneKind::Psys, None),
            ("msr:cpu2:package-1", ZoneKind::Package, Some(1)),
            ("msr:cpu2:core", ZoneKind::Core, Some(1)),
            ("msr:cpu2:dram", ZoneKind::Dram, Some(1)),
        ]
    );
    assert_eq!(src.kind(), EnergySourceKind::Msr);
    let mut meter = Meter::new(Box::new(src));
    meter.tick(0);
    // Package 0: 0xFFFF_F000 → 0x0000_1000 is a wrap of 0x2000 = 8192 ticks.
    // 8192 × 61.03515625 µJ = 500 000 µJ exactly (0.5 J in 100 ms = 5 W).
    write_msr(&r.msr, 0, INTEL_PKG_ENERGY, 0xDEAD_0000_0000_1000)?;
    // DRAM 0: 0xFFFF_FF00 → 0x100 wraps by 0x200 = 512 ticks = 31 250 µJ.
    write_msr(&r.msr, 0, INTEL_DRAM_ENERGY, 0x100)?;
    // Package 1 does not move; its DRAM does not either.
    let t = meter.tick(100_000_000);
    let p0 = &t.packages[0];
    assert_eq!((p0.package_uj.0, p0.dram_uj.0), (500_000, 31_250));
    assert_eq!(
        (t.packages[1].package_uj.0, t.packages[1].dram_uj.0),
        (0, 0)
    );
    assert!(t.zones[0].flags.wrapped && t.zones[2].flags.wrapped);
    assert_eq!(t.host_uj.0, 531_250);
    assert_eq!(t.packages[0].cpus, vec![0, 1]);
    // Fractions of a µJ are carried, not lost: 3 more ticks of 61.035… µJ, three times.
    let mut sum = 0;
    for k in 1..=3u64 {
        write_msr(&r.msr, 0, INTEL_PKG_ENERGY, 0x1000 + 3 * k)?;
        sum += meter.tick(100_000_000 + k * 100_000_000).packages[0]
            .package_uj
            .0;
    }
    // 9 ticks × 61.03515625 = 549.31640625 µJ; cumulative floor(8201 × 61.035…) − 500 000.
    assert_eq!(sum, 549);
    Ok(())
}

#[test]
fn intel_server_dram_uses_the_fixed_15_3_uj_unit() -> TestResult {
    let dir = tempfile::tempdir()?;
    // Skylake-SP (model 0x55).
    let info = cpuinfo(
        "GenuineIntel",
        6,
        0x55,
        "Intel(R) Xeon(R) Platinum 8175M CPU",
    );
    let r = roots(dir.path(), &info, &[(0, 0, 0)])?;
    write_msr(&r.msr, 0, INTEL_POWER_UNIT, INTEL_UNITS)?;
    write_msr(&r.msr, 0, INTEL_PKG_ENERGY, 0)?;
    write_msr(&r.msr, 0, INTEL_DRAM_ENERGY, 5)?;
    let mut meter = Meter::new(Box::new(MsrSource::open(
        &r.msr,
        &r.cpus,
        &r.proc,
        &MsrOptions::default(),
    )?));
    meter.tick(0);
    write_msr(&r.msr, 0, INTEL_DRAM_ENERGY, 1005)?;
    write_msr(&r.msr, 0, INTEL_PKG_ENERGY, 1000)?;
    let t = meter.tick(100_000_000);
    // DRAM: 1000 × 15.3 µJ; package: 1000 × 61.03515625 µJ = 61 035.15625 → 61 035.
    assert_eq!(t.packages[0].dram_uj.0, 15_300);
    assert_eq!(t.packages[0].package_uj.0, 61_035);
    Ok(())
}

#[test]
fn amd_package_and_per_core_counters_with_wraps() -> TestResult {
    let dir = tempfile::tempdir()?;
    let info = cpuinfo("AuthenticAMD", 25, 1, "AMD EPYC 7763 64-Core Processor");
    // One package, two physical cores, SMT siblings 2 and 3. The package is read on CPU 0 and
    // each core on its last sibling (2, 3). (The core and package registers are adjacent
    // addresses; a flat fake file can hold both only on different CPUs.)
    let topo = [(0, 0, 0), (1, 0, 1), (2, 0, 0), (3, 0, 1)];
    let r = roots(dir.path(), &info, &topo)?;
    // AMD units: energy status unit 16 → 2^-16 J = 15.2587890625 µJ.
    write_msr(&r.msr, 0, AMD_POWER_UNIT, 0x000A_1003)?;
    for cpu in [2, 3] {
        write_msr(&r.msr, cpu, AMD_CORE_ENERGY, 0xFFFF_FFFF)?;
    }
    write_msr(&r.msr, 0, AMD_PKG_ENERGY, 0xFFFF_0000)?;
    let opts = MsrOptions {
        amd_per_core: true,
        ..MsrOptions::default()
    };
    let src = MsrSource::open(&r.msr, &r.cpus, &r.proc, &opts)?;
    let names: Vec<&str> = src.zones().iter().map(|z| z.name.as_str()).collect();
    assert_eq!(names, vec!["package-0", "core-0", "core-1"]);
    let mut meter = Meter::new(Box::new(src));
    meter.tick(0);
    // Package wraps by 0x1_0000 + 0x1_0000 = 131 072 ticks = 2 000 000 µJ (2 J).
    write_msr(&r.msr, 0, AMD_PKG_ENERGY, 0x0001_0000)?;
    // Core 0 wraps by one tick to 0; core 1 by 65 536 + 1 ticks.
    write_msr(&r.msr, 2, AMD_CORE_ENERGY, 0)?;
    write_msr(&r.msr, 3, AMD_CORE_ENERGY, 0x1_0000)?;
    let t = meter.tick(100_000_000);
    assert_eq!(t.packages[0].package_uj.0, 2_000_000);
    assert_eq!(t.zones[1].delta_uj.0, 15); // 15.258… µJ, fraction carried
    assert_eq!(t.zones[2].delta_uj.0, 1_000_015); // 65 537 × 15.2587890625 = 1 000 015.26
    assert_eq!(t.host_uj.0, 2_000_000, "cores are inside the package");
    Ok(())
}

#[test]
fn msr_cpus_option_picks_the_cpus() -> TestResult {
    let dir = tempfile::tempdir()?;
    let info = cpuinfo("GenuineIntel", 6, 0x9E, "x");
    let r = roots(dir.path(), &info, &[(0, 0, 0), (1, 0, 1)])?;
    write_msr(&r.msr, 1, INTEL_POWER_UNIT, INTEL_UNITS)?;
    write_msr(&r.msr, 1, INTEL_PP0_ENERGY, 0)?; // extends the sparse file past PP0: reads 0
    write_msr(&r.msr, 1, INTEL_PKG_ENERGY, 7)?;
    let opts = MsrOptions {
        cpus: Some(vec![1]),
        ..MsrOptions::default()
    };
    let src = MsrSource::open(&r.msr, &r.cpus, &r.proc, &opts)?;
    assert_eq!(src.zones()[0].id, "msr:cpu1:package-0");
    Ok(())
}

#[test]
fn missing_msr_driver_says_modprobe() -> TestResult {
    let dir = tempfile::tempdir()?;
    let info = cpuinfo("GenuineIntel", 6, 0x9E, "x");
    let r = roots(dir.path(), &info, &[(0, 0, 0)])?;
    let err = MsrSource::open(&r.msr, &r.cpus, &r.proc, &MsrOptions::default())
        .err()
        .ok_or("opened without msr files")?;
    assert!(matches!(err, SourceError::MsrMissing { .. }));
    assert!(err.to_string().contains("modprobe msr"), "{err}");
    Ok(())
}

#[test]
fn unsupported_vendor_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let info = cpuinfo("AuthenticAMD", 0x15, 2, "AMD Opteron");
    let r = roots(dir.path(), &info, &[(0, 0, 0)])?;
    write_msr(&r.msr, 0, AMD_POWER_UNIT, 0x000A_1003)?;
    let err = MsrSource::open(&r.msr, &r.cpus, &r.proc, &MsrOptions::default())
        .err()
        .ok_or("opened a family 15h CPU")?;
    assert!(matches!(
        err,
        SourceError::MsrUnsupportedCpu { family: 0x15, .. }
    ));
    Ok(())
}
