//! Powercap sysfs source against fake trees laid out like the kernel's: symlinked zones,
//! sub-zones, psys and an mmio duplicate; counters advanced at known watts with small ranges.

use carbon_ops::energy::fake::{FakePowercap, FakeZone, write_cpu_topology};
use carbon_ops::energy::{EnergySource, Meter, MeterConfig, PowercapSource, ZoneKind};
use std::path::PathBuf;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Two Intel server packages with core/uncore/dram sub-zones, a psys zone and an mmio duplicate
/// of package 0. Ranges are tiny (25–40 J) so the counters wrap every few ticks.
fn two_socket_tree(base: &std::path::Path) -> std::io::Result<(FakePowercap, PathBuf)> {
    let zones = [
        FakeZone::new("intel-rapl:0", "package-0", 29_999_999, 5_000_000),
        FakeZone::new("intel-rapl:0:0", "core", 29_999_999, 123),
        FakeZone::new("intel-rapl:0:1", "uncore", 29_999_999, 0),
        FakeZone::new("intel-rapl:0:2", "dram", 24_999_999, 24_999_000),
        FakeZone::new("intel-rapl:1", "package-1", 27_000_000, 26_000_000),
        FakeZone::new("intel-rapl:1:0", "core", 24_999_999, 77),
        FakeZone::new("intel-rapl:1:1", "dram", 24_999_999, 10),
        FakeZone::new("intel-rapl:2", "psys", 39_999_999, 1),
        FakeZone::new("intel-rapl-mmio:0", "package-0", 29_999_999, 5_000_000),
    ];
    let fake = FakePowercap::build(base, &zones)?;
    let cpus = write_cpu_topology(base, &[(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)])?;
    Ok((fake, cpus))
}

/// Watts per zone in the simulated machine.
const WATTS: &[(&str, u64)] = &[
    ("intel-rapl:0", 60),
    ("intel-rapl:0:0", 40),
    ("intel-rapl:0:1", 5),
    ("intel-rapl:0:2", 8),
    ("intel-rapl:1", 50),
    ("intel-rapl:1:0", 30),
    ("intel-rapl:1:1", 7),
    ("intel-rapl:2", 150),
    ("intel-rapl-mmio:0", 60),
];

#[test]
fn discovery_follows_symlinks_and_keeps_the_hierarchy() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (fake, cpus) = two_socket_tree(dir.path())?;
    // The class entries are symlinks, as on a real system.
    assert!(std::fs::symlink_metadata(fake.class_root().join("intel-rapl:0"))?.is_symlink());
    let src = PowercapSource::discover(&fake.class_root(), &cpus)?;
    let got: Vec<(&str, &str, ZoneKind, Option<u32>, u64)> = src
        .zones()
        .iter()
        .map(|z| {
            (
                z.id.as_str(),
                z.name.as_str(),
                z.kind,
                z.package,
                z.counter.modulus,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "intel-rapl-mmio:0",
                "package-0",
                ZoneKind::Mmio,
                Some(0),
                30_000_000
            ),
            (
                "intel-rapl:0",
                "package-0",
                ZoneKind::Package,
                Some(0),
                30_000_000
            ),
            (
                "intel-rapl:0:0",
                "core",
                ZoneKind::Core,
                Some(0),
                30_000_000
            ),
            (
                "intel-rapl:0:1",
                "uncore",
                ZoneKind::Uncore,
                Some(0),
                30_000_000
            ),
            (
                "intel-rapl:0:2",
                "dram",
                ZoneKind::Dram,
                Some(0),
                25_000_000
            ),
            (
                "intel-rapl:1",
                "package-1",
                ZoneKind::Package,
                Some(1),
                27_000_001
            ),
            (
                "intel-rapl:1:0",
                "core",
                ZoneKind::Core,
                Some(1),
                25_000_000
            ),
            (
                "intel-rapl:1:1",
                "dram",
                ZoneKind::Dram,
                Some(1),
                25_000_000
            ),
            ("intel-rapl:2", "psys", ZoneKind::Psys, None, 40_000_000),
        ]
    );
    let pk: Vec<(u32, Vec<u32>)> = src
        .packages()
        .iter()
        .map(|p| (p.package, p.cpus.clone()))
        .collect();
    assert_eq!(pk, vec![(0, vec![0, 1]), (1, vec![2, 3])]);
    Ok(())
}

#[test]
fn sub_zones_are_found_when_only_the_device_directory_is_given() -> TestResult {
    // A container bind-mounting only the device directory: sub-zones come from nesting.
    let dir = tempfile::tempdir()?;
    let (_fake, cpus) = two_socket_tree(dir.path())?;
    let devices = dir.path().join("sys/devices/virtual/powercap/intel-rapl");
    let src = PowercapSource::discover(&devices, &cpus)?;
    let ids: Vec<&str> = src.zones().iter().map(|z| z.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "intel-rapl:0",
            "intel-rapl:0:0",
            "intel-rapl:0:1",
            "intel-rapl:0:2",
            "intel-rapl:1",
            "intel-rapl:1:0",
            "intel-rapl:1:1",
            "intel-rapl:2"
        ]
    );
    Ok(())
}

#[test]
fn host_energy_over_seconds_with_many_wraps_matches_truth() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (mut fake, cpus) = two_socket_tree(dir.path())?;
    // Ceiling 200 W: at most 24 J per 120 ms, below every range (≥ 25 J), so wraps are
    // unambiguous.
    let src = PowercapSource::discover(&fake.class_root(), &cpus)?.with_max_zone_power_w(200.0);
    let mut meter = Meter::new(Box::new(src));
    let mut at: u64 = 1_000_000_000;
    meter.tick(at);
    let (mut host, mut psys, mut wraps) = (0u64, 0u64, 0usize);
    let mut per_pkg = [0u64; 2];
    let mut elapsed_ms = 0u64;
    // 6 simulated seconds at 10 Hz with a jittered schedule (80..=120 ms).
    for k in 0..60u64 {
        let dt_ms = 80 + (k * 7) % 41;
        for &(id, w) in WATTS {
            fake.advance(id, w * dt_ms * 1000)?; // W × ms × 1000 = µJ
        }
        at += dt_ms * 1_000_000;
        elapsed_ms += dt_ms;
        let t = meter.tick(at);
        assert_eq!(t.elapsed_ns, dt_ms * 1_000_000);
        assert!(
            t.zones
                .iter()
                .all(|z| !z.stale && !z.flags.reset_detected && !z.flags.gap_flagged)
        );
        wraps += t.zones.iter().filter(|z| z.flags.wrapped).count();
        host += t.host_uj.0;
        psys += t.psys_uj.map_or(0, |p| p.0);
        for p in &t.packages {
            assert_eq!(p.total_uj.0, p.package_uj.0 + p.dram_uj.0);
            per_pkg[p.package as usize] += p.total_uj.0;
        }
    }
    // Truth: packages + dram only (60 + 8 + 50 + 7 W); never core/uncore, mmio or psys.
    let truth = (60 + 8 + 50 + 7) * elapsed_ms * 1000;
    assert!(
        wraps > 60,
        "ranges are small enough to wrap often, got {wraps} wraps"
    );
    let rel = (host as f64 - truth as f64).abs() / truth as f64;
    assert!(rel < 0.005, "host {host} µJ vs truth {truth} µJ ({rel})");
    // With exact differencing the agreement is in fact exact.
    assert_eq!(host, truth);
    assert_eq!(per_pkg, [68 * elapsed_ms * 1000, 57 * elapsed_ms * 1000]);
    assert_eq!(psys, 150 * elapsed_ms * 1000);
    Ok(())
}

#[test]
fn the_modulus_is_range_plus_one() -> TestResult {
    // Range 9999 µJ: values 0..=9999, so 10 000 distinct values. Advance 6000 µJ per tick:
    // 3 wraps every 5 ticks. Taking the modulus as the range would lose 1 µJ per wrap.
    let dir = tempfile::tempdir()?;
    let fake_zones = [FakeZone::new("intel-rapl:0", "package-0", 9_999, 9_000)];
    let mut fake = FakePowercap::build(dir.path(), &fake_zones)?;
    let src = PowercapSource::discover(&fake.class_root(), &dir.path().join("nocpus"))?
        .with_max_zone_power_w(0.07); // 70 mW × 100 ms = 7000 µJ bound
    let mut meter = Meter::new(Box::new(src));
    meter.tick(0);
    let mut wraps = 0;
    for k in 1..=50u64 {
        fake.advance("intel-rapl:0", 6_000)?;
        let t = meter.tick(k * 100_000_000);
        wraps += usize::from(t.zones[0].flags.wrapped);
        assert_eq!(t.zones[0].delta_uj.0, 6_000, "tick {k}");
    }
    assert_eq!(wraps, 30);
    Ok(())
}

#[test]
fn a_reset_is_detected_and_counted_neither_negative_nor_as_a_range() -> TestResult {
    let dir = tempfile::tempdir()?;
    let zones = [FakeZone::new(
        "intel-rapl:0",
        "package-0",
        262_143_328_850,
        100_000_000_000,
    )];
    let mut fake = FakePowercap::build(dir.path(), &zones)?;
    let src = PowercapSource::discover(&fake.class_root(), &dir.path().join("nocpus"))?;
    let mut meter = Meter::new(Box::new(src));
    meter.tick(0);
    fake.advance("intel-rapl:0", 5_000_000)?;
    assert_eq!(meter.tick(100_000_000).host_uj.0, 5_000_000);
    // Module reload: the counter restarts near zero mid-range.
    fake.set_energy("intel-rapl:0", 3_000_000)?;
    let t = meter.tick(200_000_000);
    assert!(t.zones[0].flags.reset_detected);
    assert!(!t.zones[0].flags.wrapped);
    // 3 J in 100 ms is plausible (≤ 1 kW): the energy since the reset is the new value.
    assert_eq!(t.host_uj.0, 3_000_000);
    fake.advance("intel-rapl:0", 4_000_000)?;
    let t = meter.tick(300_000_000);
    assert_eq!(t.host_uj.0, 4_000_000);
    assert_eq!(t.zones[0].cumulative_uj.0, 12_000_000);
    // A jump upward that 1 kW could not produce in 100 ms is also a reset, not energy.
    fake.set_energy("intel-rapl:0", 200_000_000_000)?;
    let t = meter.tick(400_000_000);
    assert!(t.zones[0].flags.reset_detected);
    assert_eq!(t.host_uj.0, 0);
    assert_eq!(t.zones[0].cumulative_uj.0, 12_000_000);
    Ok(())
}

#[test]
fn a_long_gap_that_allows_a_full_wrap_is_flagged() -> TestResult {
    let dir = tempfile::tempdir()?;
    let zones = [FakeZone::new("intel-rapl:0", "package-0", 99_999_999, 0)];
    let mut fake = FakePowercap::build(dir.path(), &zones)?;
    let src = PowercapSource::discover(&fake.class_root(), &dir.path().join("nocpus"))?
        .with_max_zone_power_w(200.0);
    let mut meter = Meter::new(Box::new(src));
    meter.tick(0);
    fake.advance("intel-rapl:0", 2_000_000)?;
    assert!(!meter.tick(100_000_000).zones[0].flags.gap_flagged);
    // Suspend: 10 minutes without a read; 200 W × 600 s = 120 kJ > the 100 J range.
    fake.advance("intel-rapl:0", 30_000_000)?;
    let t = meter.tick(600_100_000_000);
    assert!(t.zones[0].flags.gap_flagged);
    assert_eq!(
        t.zones[0].delta_uj.0, 30_000_000,
        "the least energy the counter allows"
    );
    Ok(())
}

#[test]
fn a_vanished_zone_goes_stale_with_backoff_and_invents_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (mut fake, cpus) = two_socket_tree(dir.path())?;
    let src = PowercapSource::discover(&fake.class_root(), &cpus)?.with_max_zone_power_w(200.0);
    let config = MeterConfig {
        backoff_initial_ns: 100_000_000,
        backoff_max_ns: 400_000_000,
    };
    let mut meter = Meter::with_config(Box::new(src), config);
    let dram = fake
        .zone_dir("intel-rapl:1:1")
        .ok_or("zone")?
        .join("energy_uj");
    let step = |fake: &mut FakePowercap| -> std::io::Result<()> {
        for &(id, w) in WATTS {
            if id != "intel-rapl:1:1" {
                fake.advance(id, w * 100_000)?;
            }
        }
        Ok(())
    };
    meter.tick(0);
    std::fs::remove_file(&dram)?;
    let dram_of = |t: &carbon_ops::energy::EnergyTick| {
        t.zones.iter().find(|z| z.id == "intel-rapl:1:1").cloned()
    };
    for k in 1..=12u64 {
        step(&mut fake)?;
        let t = meter.tick(k * 100_000_000);
        let z = dram_of(&t).ok_or("zone")?;
        assert!(
            z.stale && z.delta_uj.0 == 0 && z.error.is_some(),
            "tick {k}"
        );
        assert!(t.host_stale && t.packages[1].stale && !t.packages[0].stale);
        // Package 1's figure holds only its package zone while dram is stale.
        assert_eq!(t.packages[1].dram_uj.0, 0);
        assert_eq!(t.host_uj.0, (60 + 8 + 50) * 100_000);
    }
    // Attempts failed at 0.1, 0.2, 0.4, 0.8 and 1.2 s (delays 0.1, 0.2, 0.4, then the 0.4 s
    // cap): the next retry is due at 1.6 s. The zone comes back with its counter 3 J on.
    fake.set_energy("intel-rapl:1:1", 10 + 3_000_000)?;
    for k in 13..=15u64 {
        step(&mut fake)?;
        let z = dram_of(&meter.tick(k * 100_000_000)).ok_or("zone")?;
        assert!(
            z.stale && z.delta_uj.0 == 0,
            "still backing off at tick {k}"
        );
    }
    step(&mut fake)?;
    let t = meter.tick(1_600_000_000);
    let z = dram_of(&t).ok_or("zone")?;
    assert!(!z.stale && z.flags.recovered);
    // The delta is the measured counter difference over the whole gap, which was long enough
    // (200 W × 1.6 s > the 25 J range) to hide a wrap: flagged as a lower bound.
    assert_eq!(z.span_ns, 1_600_000_000);
    assert_eq!(z.delta_uj.0, 3_000_000);
    assert!(z.flags.gap_flagged);
    assert!(!t.host_stale);
    Ok(())
}

#[test]
fn amd_zones_under_intel_rapl_names() -> TestResult {
    // AMD family 17h+ exposes package and core under the intel-rapl control type.
    let dir = tempfile::tempdir()?;
    let zones = [
        FakeZone::new("intel-rapl:0", "package-0", 65_532_610_987, 1_000),
        FakeZone::new("intel-rapl:0:0", "core", 65_532_610_987, 500),
    ];
    let mut fake = FakePowercap::build(dir.path(), &zones)?;
    let cpus = write_cpu_topology(dir.path(), &[(0, 0, 0), (1, 0, 0)])?;
    let mut meter = Meter::new(Box::new(PowercapSource::discover(
        &fake.class_root(),
        &cpus,
    )?));
    meter.tick(0);
    fake.advance("intel-rapl:0", 9_000_000)?;
    fake.advance("intel-rapl:0:0", 6_000_000)?;
    let t = meter.tick(100_000_000);
    assert_eq!(t.host_uj.0, 9_000_000, "core is inside the package");
    assert_eq!(t.packages[0].cpus, vec![0, 1]);
    assert_eq!(t.energy_source.as_str(), "sysfs");
    let json = serde_json::to_value(&t)?;
    assert_eq!(json["energy_source"], "sysfs");
    assert_eq!(json["zones"][0]["kind"], "package");
    Ok(())
}
