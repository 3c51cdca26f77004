//! Energy benchmarks: one poll of a 2-package, 8-zone fake powercap tree (target: well under
//! 100 µs), the pure counter step, and the poller's CPU use at 10 Hz measured with
//! `getrusage(RUSAGE_THREAD)` over a real run (target: under 0.2 % of one core).
//!
//! `cargo bench -p carbon-ops-agent --bench energy`; set `ENERGY_BENCH_POLLER_SECS` to change
//! the poller run (default 10 s).

use carbon_ops::energy::fake::{FakePowercap, FakeZone, write_cpu_topology};
use carbon_ops::energy::{Counter, CounterSpec, Meter, PowercapSource, Ticker};
use criterion::{Criterion, black_box};
use std::path::Path;
use std::time::Duration;

fn tree(base: &Path) -> (FakePowercap, std::path::PathBuf) {
    let r = 262_143_328_850;
    let zones = [
        FakeZone::new("intel-rapl:0", "package-0", r, 1_000_000),
        FakeZone::new("intel-rapl:0:0", "core", r, 2_000_000),
        FakeZone::new("intel-rapl:0:1", "uncore", r, 3_000_000),
        FakeZone::new("intel-rapl:0:2", "dram", r, 4_000_000),
        FakeZone::new("intel-rapl:1", "package-1", r, 5_000_000),
        FakeZone::new("intel-rapl:1:0", "core", r, 6_000_000),
        FakeZone::new("intel-rapl:1:1", "uncore", r, 7_000_000),
        FakeZone::new("intel-rapl:1:2", "dram", r, 8_000_000),
    ];
    let fake = FakePowercap::build(base, &zones).expect("build fake tree");
    let cpus = write_cpu_topology(base, &[(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)])
        .expect("write topology");
    (fake, cpus)
}

fn bench_poll(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fake, cpus) = tree(dir.path());
    let src = PowercapSource::discover(&fake.class_root(), &cpus).expect("discover");
    let mut meter = Meter::new(Box::new(src));
    let mut at = 0u64;
    c.bench_function("energy_poll_2pkg_8zones", |b| {
        b.iter(|| {
            at += 100_000_000;
            black_box(meter.tick(at))
        })
    });
    let mut counter = Counter::new(CounterSpec::microjoules(262_143_328_850, 1_000_000_000));
    let mut raw = 0u64;
    let mut at = 0u64;
    c.bench_function("energy_counter_observe", |b| {
        b.iter(|| {
            raw = (raw + 1_234_567) % 262_143_328_851;
            at += 100_000_000;
            black_box(counter.observe(black_box(raw), at))
        })
    });
}

fn thread_cpu_ns() -> u64 {
    // SAFETY: an all-zero rusage is a valid value; getrusage fills it for this thread.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// On-CPU time of this thread from the scheduler (`/proc/thread-self/schedstat`, field 1, ns):
/// exact, where `getrusage` may be sampled at the scheduler tick.
fn thread_sched_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Run the poller at 10 Hz for `secs` on a std thread and print its CPU use; with
/// `with_meter = false` only the ticker runs (the cost of waking up 10 times a second).
fn poller_cpu(secs: u64, with_meter: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fake, cpus) = tree(dir.path());
    let src = PowercapSource::discover(&fake.class_root(), &cpus).expect("discover");
    let label = if with_meter {
        "energy_poller_10hz"
    } else {
        "energy_ticker_only_10hz"
    };
    let handle = std::thread::spawn(move || {
        let mut meter = Meter::new(Box::new(src));
        let mut ticker = Ticker::new(Duration::from_millis(100));
        let cpu0 = thread_cpu_ns();
        let sched0 = thread_sched_ns();
        let wall0 = carbon_ops::energy::monotonic_now_ns();
        let n = secs * 10;
        let mut host = 0u64;
        for _ in 0..n {
            let t = ticker.wait_next();
            if with_meter {
                host += meter.tick(t.actual_ns).host_uj.0;
            }
        }
        // Read the scheduler figure first: reading it costs CPU itself.
        let sched = thread_sched_ns() - sched0;
        let cpu = thread_cpu_ns() - cpu0;
        let wall = carbon_ops::energy::monotonic_now_ns() - wall0;
        (n, cpu, sched, wall, ticker.max_lateness_ns(), host)
    });
    let (n, cpu, sched, wall, max_late, _) = handle.join().expect("poller thread");
    println!(
        "{label}: {n} ticks in {:.3} s wall, {:.3} ms CPU (user+sys, RUSAGE_THREAD) \
         = {:.4} % of one core; scheduler on-CPU time {:.3} ms = {:.4} % ({:.1} µs per tick); \
         max lateness {:.3} ms",
        wall as f64 / 1e9,
        cpu as f64 / 1e6,
        cpu as f64 / wall as f64 * 100.0,
        sched as f64 / 1e6,
        sched as f64 / wall as f64 * 100.0,
        sched as f64 / n as f64 / 1e3,
        max_late as f64 / 1e6
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_poll(&mut c);
    c.final_summary();
    let secs: u64 = std::env::var("ENERGY_BENCH_POLLER_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    poller_cpu(secs, false);
    poller_cpu(secs, true);
}
