//! Measures what the `sched_switch` program costs per call, as the kernel itself counts it.
//!
//! Method: turn on `kernel.bpf_stats_enabled` (the kernel then accumulates `run_time_ns` and
//! `run_cnt` per program), load the real programs, drive a context-switch-heavy workload
//! (threads ping-ponging bytes through pipes) while a 10 Hz reader takes snapshots like the
//! agent, then read both counters from the program's `/proc/self/fdinfo` entry and divide.
//! Run as root: `cargo run --release --example sched_switch_cost -- [SECONDS] [PROCESSES]`.
//! PROCESSES (default 0) extra short-lived processes per second fill the table, to show the
//! cost does not grow with it.

use std::{
    io::{Read, Write},
    os::fd::{AsFd, AsRawFd},
    time::{Duration, Instant},
};

use carbon_ops::{
    ebpf::{EbpfTaskStats, VMLINUX_BTF},
    tasks::{TaskStats, monotonic_now_ns},
};

fn fdinfo(fd: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("run_time_ns:"), field("run_cnt:"))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let spawn_rate: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let before = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").unwrap_or_default();
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "1")?;
    let mut stats = EbpfTaskStats::load(std::path::Path::new(VMLINUX_BTF))?;
    // Our program: the newest loaded `sched_switch`.
    let prog = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| p.name_as_str() == Some("sched_switch"))
        .max_by_key(|p| p.id())
        .ok_or_else(|| anyhow::anyhow!("sched_switch not found among loaded programs"))?;
    let fd = prog.fd()?;
    let raw = fd.as_fd().as_raw_fd();
    let (t0, c0) = fdinfo(raw);
    // Workload: 4 pairs of threads ping-pong one byte through pipes.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (mut a_r, mut b_w) = std::io::pipe()?;
        let (mut b_r, mut a_w) = std::io::pipe()?;
        let s1 = stop.clone();
        workers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 1];
            while !s1.load(std::sync::atomic::Ordering::Relaxed) {
                if b_w.write_all(b"x").is_err() || b_r.read_exact(&mut buf).is_err() {
                    break;
                }
            }
        }));
        workers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 1];
            while a_r.read_exact(&mut buf).is_ok() {
                if a_w.write_all(b"y").is_err() {
                    break;
                }
            }
        }));
    }
    let start = Instant::now();
    let mut snaps = 0u64;
    let mut snap_ns = 0u64;
    let mut next_spawn = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        let s = stats.snapshot(monotonic_now_ns())?;
        snap_ns += t.elapsed().as_nanos() as u64;
        snaps += 1;
        std::hint::black_box(s.tasks.len());
        if spawn_rate > 0 && Instant::now() >= next_spawn {
            for _ in 0..spawn_rate / 10 {
                let _ = std::process::Command::new("true").status();
            }
            next_spawn += Duration::from_millis(100);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (t1, c1) = fdinfo(raw);
    let calls = c1 - c0;
    let ns = t1 - t0;
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", before.trim())?;
    let snap = stats.snapshot(monotonic_now_ns())?;
    println!(
        "sched_switch: {calls} calls in {secs} s ({:.0}/s), {ns} ns total, {:.1} ns per call (kernel bpf_stats)",
        calls as f64 / secs as f64,
        ns as f64 / calls.max(1) as f64
    );
    println!(
        "snapshot: {snaps} taken, {:.1} µs each on average, {} processes moved in the last tick",
        snap_ns as f64 / snaps.max(1) as f64 / 1e3,
        snap.tasks.len()
    );
    std::process::exit(0);
}
