//! The fixed-rate ticker: tick count, absolute deadlines and recorded lateness over a short run
//! under CPU load; catch-up without skipping; re-anchoring after a long stall. Behaviour tests
//! with tolerant bounds, not performance tests.

use carbon_ops::energy::fake::{FakePowercap, FakeZone};
use carbon_ops::energy::{Meter, PowercapSource, Ticker, monotonic_now_ns};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn ten_hz_for_three_seconds_under_load_counts_and_records_lateness() -> TestResult {
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
                x
            })
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let zones = [FakeZone::new("intel-rapl:0", "package-0", 999_999, 0)];
    let fake = FakePowercap::build(dir.path(), &zones)?;
    let mut meter = Meter::new(Box::new(PowercapSource::discover(
        &fake.class_root(),
        &dir.path().join("nocpus"),
    )?));
    let interval = Duration::from_millis(100);
    let start = monotonic_now_ns();
    let mut ticker = Ticker::starting_at(interval, start);
    let mut ticks = Vec::new();
    while monotonic_now_ns() < start + 3_000_000_000 {
        let t = ticker.wait_next();
        // The same instant is what the meter (and the eBPF snapshot) are read at.
        let e = meter.tick(t.actual_ns);
        assert_eq!(e.at_monotonic_ns, t.actual_ns);
        ticks.push(t);
    }
    stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().map_err(|_| "busy thread panicked")?;
    }
    // Ticks due at 0, 0.1, …, 3.0 s: 31 in [start, start + 3 s], ±1 for the boundary.
    assert!((30..=32).contains(&ticks.len()), "{} ticks", ticks.len());
    for (k, t) in ticks.iter().enumerate() {
        assert_eq!(t.index, k as u64);
        // Absolute deadlines: no drift, whatever the lateness of earlier ticks.
        assert_eq!(t.scheduled_ns, start + k as u64 * 100_000_000);
        assert!(t.actual_ns >= t.scheduled_ns);
        assert_eq!(t.lateness_ns, t.actual_ns - t.scheduled_ns);
        assert!(!t.reanchored);
    }
    // Lateness is recorded (a wake-up is never exactly on time) and bounded under this load.
    assert!(ticks.iter().any(|t| t.lateness_ns > 0));
    assert_eq!(
        ticker.max_lateness_ns(),
        ticks.iter().map(|t| t.lateness_ns).max().unwrap_or(0)
    );
    assert!(
        ticker.max_lateness_ns() < 90_000_000,
        "{}",
        ticker.max_lateness_ns()
    );
    Ok(())
}

#[test]
fn a_late_tick_is_caught_up_not_skipped() {
    let start = monotonic_now_ns();
    let mut ticker = Ticker::starting_at(Duration::from_millis(50), start);
    let mut ticks = Vec::new();
    for k in 0..10 {
        ticks.push(ticker.wait_next());
        if k == 2 {
            // A slow tick: 230 ms of work where 50 ms was due.
            std::thread::sleep(Duration::from_millis(230));
        }
    }
    let idx: Vec<u64> = ticks.iter().map(|t| t.index).collect();
    assert_eq!(idx, (0..10).collect::<Vec<_>>());
    // Tick 3 was due at 150 ms and fired after at least 230 ms: late by ≥ 80 ms, fired at once.
    assert!(
        ticks[3].lateness_ns >= 80_000_000,
        "{}",
        ticks[3].lateness_ns
    );
    // Ticks 3..=6 were all due before the stall ended; they fire back to back (a ticker that
    // re-paced late ticks one interval apart would need 150 ms for them).
    assert!(ticks[6].actual_ns - ticks[3].actual_ns < 100_000_000);
    assert!(ticker.late_ticks() >= 3);
    // The schedule is unchanged: tick 9 is still due at 450 ms.
    assert_eq!(ticks[9].scheduled_ns, start + 450_000_000);
}

#[test]
fn a_stall_beyond_the_catch_up_limit_reanchors() {
    let start = monotonic_now_ns();
    let mut ticker = Ticker::starting_at(Duration::from_millis(20), start)
        .with_max_catch_up(Duration::from_millis(100));
    let first = ticker.wait_next();
    std::thread::sleep(Duration::from_millis(300));
    let t = ticker.wait_next();
    assert_eq!((first.index, t.index), (0, 1));
    assert!(t.reanchored);
    assert_eq!(t.lateness_ns, 0);
    let next = ticker.wait_next();
    assert!(!next.reanchored);
    assert_eq!(next.scheduled_ns, t.scheduled_ns + 20_000_000);
}
