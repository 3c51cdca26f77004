//! `/proc/meminfo` and `VmRSS` parsers on recorded text; RSS read on demand from a root.

use carbon_ops::telemetry::{
    TelemetryError,
    memory::{parse_meminfo, parse_vmrss, read_meminfo, read_rss},
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Recorded on the build machine (24 GiB VM, no swap), first lines and the HugePages counts.
const MEMINFO: &str = "MemTotal:       24684084 kB
MemFree:         5866840 kB
MemAvailable:   23650360 kB
Buffers:          289968 kB
Cached:         17198936 kB
SwapCached:            0 kB
Active:          4090436 kB
Inactive:       13808556 kB
SwapTotal:             0 kB
SwapFree:              0 kB
Dirty:            187236 kB
HugePages_Total:       0
HugePages_Free:        0
Hugepagesize:       2048 kB
DirectMap1G:    23068672 kB
";

#[test]
fn parses_recorded_meminfo_by_hand() -> TestResult {
    let m = parse_meminfo(MEMINFO)?;
    assert_eq!(m.total_bytes, 24_684_084 * 1024);
    assert_eq!(m.free_bytes, 5_866_840 * 1024);
    assert_eq!(m.available_bytes, Some(23_650_360 * 1024));
    assert_eq!(m.cached_bytes, (289_968 + 17_198_936) * 1024);
    assert_eq!(m.swap_total_bytes, 0);
    // used = total − available = 1_033_724 KiB.
    assert_eq!(m.used_bytes(), 1_033_724 * 1024);
    assert_eq!(m.fields.get("Hugepagesize"), Some(&(2048 * 1024)));
    assert!(
        !m.fields.contains_key("HugePages_Total"),
        "a count is not bytes"
    );
    Ok(())
}

#[test]
fn old_kernel_without_memavailable_uses_free() -> TestResult {
    let m =
        parse_meminfo("MemTotal: 1000 kB\nMemFree: 400 kB\nSwapTotal: 10 kB\nSwapFree: 4 kB\n")?;
    assert_eq!(m.available_bytes, None);
    assert_eq!(m.used_bytes(), 600 * 1024);
    assert_eq!(
        (m.swap_total_bytes, m.swap_free_bytes),
        (10 * 1024, 4 * 1024)
    );
    Ok(())
}

#[test]
fn missing_or_bad_fields_are_refused() {
    let e = parse_meminfo("MemFree: 1 kB\n")
        .err()
        .map(|e| e.to_string());
    assert!(e.is_some_and(|e| e.contains("no `MemTotal` line")));
    let e = parse_meminfo("MemTotal: 12x kB\nMemFree: 1 kB\n")
        .err()
        .map(|e| e.to_string());
    assert!(e.is_some_and(|e| e.contains("line 1") && e.contains("MemTotal")));
}

#[test]
fn vmrss_by_hand() -> TestResult {
    let status = "Name:\tpython3\nState:\tR (running)\nVmPeak:\t  999 kB\nVmRSS:\t   123456 kB\nRssAnon:\t 1 kB\n";
    assert_eq!(parse_vmrss(status)?, Some(123_456 * 1024));
    // Kernel threads have no VmRSS.
    assert_eq!(parse_vmrss("Name:\tkworker/0:1\nState:\tI (idle)\n")?, None);
    assert!(parse_vmrss("VmRSS:\t12 MB\n").is_err());
    Ok(())
}

#[test]
fn rss_and_meminfo_from_a_root() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("meminfo"), MEMINFO)?;
    std::fs::create_dir_all(dir.path().join("4242"))?;
    std::fs::write(
        dir.path().join("4242/status"),
        "Name:\tx\nVmRSS:\t 2048 kB\n",
    )?;
    assert_eq!(read_meminfo(dir.path())?.total_bytes, 24_684_084 * 1024);
    assert_eq!(read_rss(dir.path(), 4242)?, Some(2 * 1024 * 1024));
    assert!(matches!(
        read_rss(dir.path(), 4243),
        Err(TelemetryError::NoProcess { pid: 4243 })
    ));
    Ok(())
}

#[test]
fn own_rss_from_real_procfs_is_positive() -> TestResult {
    let rss = read_rss(std::path::Path::new("/proc"), std::process::id())?;
    assert!(rss.is_some_and(|b| b > 0));
    Ok(())
}
