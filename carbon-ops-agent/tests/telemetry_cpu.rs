//! `/proc/stat` parser and differ on recorded text, and cpufreq present / absent.

use carbon_ops::telemetry::cpu::{
    CpuTimes, CpuWindow, Frequency, parse_proc_stat, read_frequency, read_proc_stat, utilisation,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Recorded on the 2-CPU build machine (a VM), with its `intr`/`ctxt` lines shortened.
const STAT_A: &str = "cpu  344207 0 41205 284198 4715 0 963 874 0 0
cpu0 174828 0 20758 139042 2736 0 180 448 0 0
cpu1 169379 0 20447 145155 1979 0 783 425 0 0
intr 4333590 0 0 0 0
ctxt 9912345
btime 1764300000
processes 52311
procs_running 2
procs_blocked 0
softirq 1234 0 1 2 3 4 5 6 7 8 9
";

/// The same machine later: cpu0 ran 150 user + 10 system jiffies and idled 40; cpu1 ran 20
/// user and idled 175, waited 5 on I/O.
const STAT_B: &str = "cpu  344377 0 41215 284413 4720 0 963 874 0 0
cpu0 174978 0 20768 139082 2736 0 180 448 0 0
cpu1 169399 0 20447 145330 1984 0 783 425 0 0
intr 4339999 0 0 0 0
";

#[test]
fn parses_recorded_stat_by_hand() -> TestResult {
    let s = parse_proc_stat(STAT_A)?;
    // busy = user + nice + system + irq + softirq + steal; idle = idle + iowait.
    assert_eq!(
        s.host,
        CpuTimes {
            busy: 344_207 + 41_205 + 963 + 874,
            idle: 284_198 + 4_715,
        }
    );
    assert_eq!(s.cpus.len(), 2);
    assert_eq!(s.cpus[1].0, 1);
    assert_eq!(
        s.cpus[1].1,
        CpuTimes {
            busy: 169_379 + 20_447 + 783 + 425,
            idle: 145_155 + 1_979,
        }
    );
    Ok(())
}

#[test]
fn guest_time_is_not_counted_twice() -> TestResult {
    // guest (9th) and guest_nice (10th) are already inside user and nice.
    let s = parse_proc_stat("cpu 100 0 0 50 0 0 0 0 80 0\n")?;
    assert_eq!(
        s.host,
        CpuTimes {
            busy: 100,
            idle: 50
        }
    );
    Ok(())
}

#[test]
fn differ_by_hand() -> TestResult {
    let u = utilisation(&parse_proc_stat(STAT_A)?, &parse_proc_stat(STAT_B)?);
    assert_eq!(
        u.cpus[0],
        (
            0,
            Some(CpuWindow {
                busy: 160,
                total: 200
            })
        )
    );
    assert_eq!(
        u.cpus[1],
        (
            1,
            Some(CpuWindow {
                busy: 20,
                total: 200
            })
        )
    );
    assert_eq!(
        u.host,
        Some(CpuWindow {
            busy: 180,
            total: 400
        })
    );
    assert_eq!(u.host.map(|w| w.fraction()), Some(0.45));
    assert_eq!(u.cpus[0].1.map(|w| w.fraction()), Some(0.8));
    Ok(())
}

#[test]
fn reset_hotplug_and_empty_window_have_no_utilisation() -> TestResult {
    let a = parse_proc_stat("cpu 10 0 0 10\ncpu0 10 0 0 10\ncpu3 5 0 0 5\n")?;
    // cpu0's counters went back (offlined and onlined); cpu3 disappeared; cpu4 appeared.
    let b = parse_proc_stat("cpu 10 0 0 10\ncpu0 2 0 0 3\ncpu4 1 0 0 1\n")?;
    let u = utilisation(&a, &b);
    assert_eq!(u.host, None, "no time passed: no utilisation, not 0");
    assert_eq!(u.cpus, vec![(0, None)]);
    Ok(())
}

#[test]
fn malformed_stat_is_refused_with_line() {
    let e = parse_proc_stat("cpu 1 2 x 4\n")
        .map(|_| ())
        .unwrap_err_string();
    assert!(e.contains("line 1") && e.contains("`x`"), "{e}");
    let e = parse_proc_stat("cpu0 1 2 3 4\n")
        .map(|_| ())
        .unwrap_err_string();
    assert!(e.contains("no aggregate `cpu` line"), "{e}");
    let e = parse_proc_stat("cpu 1 2 3\n")
        .map(|_| ())
        .unwrap_err_string();
    assert!(e.contains("fewer than four"), "{e}");
}

#[test]
fn reads_stat_from_a_root() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("stat"), STAT_A)?;
    assert_eq!(read_proc_stat(dir.path())?, parse_proc_stat(STAT_A)?);
    let e = read_proc_stat(&dir.path().join("nope"))
        .map(|_| ())
        .unwrap_err_string();
    assert!(e.contains("cannot read"), "{e}");
    Ok(())
}

#[test]
fn frequency_present_absent_and_zero() -> TestResult {
    let dir = tempfile::tempdir()?;
    let f0 = dir.path().join("cpu0/cpufreq");
    std::fs::create_dir_all(&f0)?;
    std::fs::write(f0.join("scaling_cur_freq"), "2400000\n")?;
    let f2 = dir.path().join("cpu2/cpufreq");
    std::fs::create_dir_all(&f2)?;
    std::fs::write(f2.join("scaling_cur_freq"), "0\n")?;
    assert_eq!(read_frequency(dir.path(), 0), Frequency::Khz(2_400_000));
    match read_frequency(dir.path(), 1) {
        Frequency::Unavailable(r) => assert!(r.contains("no cpufreq for cpu1"), "{r}"),
        f => panic!("absent cpufreq must be unavailable, got {f:?}"),
    }
    assert!(
        matches!(read_frequency(dir.path(), 2), Frequency::Unavailable(r) if r.contains("reads 0"))
    );
    Ok(())
}

#[test]
fn this_machine_frequency_is_a_reading_or_a_reason_never_zero() {
    // The build VM has no cpufreq; a machine that has it must give a positive kHz figure.
    match read_frequency(std::path::Path::new("/sys/devices/system/cpu"), 0) {
        Frequency::Khz(k) => assert!(k > 0),
        Frequency::Unavailable(r) => assert!(!r.is_empty()),
    }
}

trait ErrString {
    fn unwrap_err_string(self) -> String;
}

impl<E: std::fmt::Display> ErrString for Result<(), E> {
    fn unwrap_err_string(self) -> String {
        match self {
            Ok(()) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn line(label: &str, f: &[u64; 8]) -> String {
        let fields: Vec<String> = f.iter().map(u64::to_string).collect();
        format!("{label} {} 0 0\n", fields.join(" "))
    }

    proptest! {
        #[test]
        fn windows_are_fractions_or_absent(
            a in proptest::array::uniform8(0u64..1 << 40),
            b in proptest::array::uniform8(0u64..1 << 40),
        ) {
            let sa = parse_proc_stat(&(line("cpu", &a) + &line("cpu0", &a))).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let sb = parse_proc_stat(&(line("cpu", &b) + &line("cpu0", &b))).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let u = utilisation(&sa, &sb);
            prop_assert_eq!(u.cpus.len(), 1);
            prop_assert_eq!(u.cpus[0].1, u.host);
            if let Some(w) = u.host {
                prop_assert!(w.busy <= w.total && w.total > 0);
                prop_assert!((0.0..=1.0).contains(&w.fraction()));
                // Present only when neither busy nor idle went back.
                prop_assert!(sb.host.busy >= sa.host.busy && sb.host.idle >= sa.host.idle);
            }
        }
    }
}
