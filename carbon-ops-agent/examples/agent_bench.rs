//! Load harness for the agent: its CPU and memory at 1,000 and 10,000 live processes in
//! `ebpf` and `procfs` modes side by side, and socket throughput and latency with 32
//! concurrent clients. Prints a Markdown table (the figures in `docs/benchmarks.md`).
//!
//! Run as root after `cargo xtask build-ebpf`:
//! `cargo run --release --example agent_bench -- [--quick] [--sizes 1000,10000] [--modes ebpf,procfs]`
//! (`--sizes`/`--modes` run a subset, e.g. to profile one case with `perf record -p`).
//!
//! Method: N forked processes each wake once a second (so they are live and run, as on a
//! busy node); the release agent runs on a fake powercap tree; after a 3 s warm-up its
//! user+system CPU time (from `/proc/<pid>/stat`) over 10 s gives its share of one core, and
//! `VmRSS` its memory. Throughput: 32 threads, one connection each, send `process` requests
//! back to back for 5 s; each request's round trip is recorded; p50/p99 from the sorted list.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use carbon_ops::energy::fake::{FakePowercap, FakeZone};

fn spawn_sleepers(n: usize) -> Vec<i32> {
    (0..n)
        .map(|_| {
            // SAFETY: the child only sleeps in a loop (async-signal-safe) until killed.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                loop {
                    // SAFETY: plain sleep.
                    unsafe { libc::usleep(1_000_000) };
                }
            }
            pid
        })
        .collect()
}

fn kill_all(pids: &[i32]) {
    for &p in pids {
        // SAFETY: our own children.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    for &p in pids {
        let mut st = 0;
        // SAFETY: reaping our own children.
        unsafe { libc::waitpid(p, &mut st, 0) };
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s
        .rsplit_once(')')
        .map(|(_, r)| r.to_owned())
        .unwrap_or_default();
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn start_agent(bin: &Path, class_root: &Path, socket: &Path, mode: &str) -> Child {
    let child = Command::new(bin)
        .args([
            "--rapl-mode",
            "sysfs",
            "--attribution",
            mode,
            "--no-ledger",
            "--max-connections",
            "8192",
        ])
        .arg("--powercap-root")
        .arg(class_root)
        .arg("--socket")
        .arg(socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("agent");
    let until = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(socket).is_err() {
        assert!(Instant::now() < until, "agent did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn throughput(socket: &Path, pid: u32, secs: u64) -> (f64, f64, f64) {
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let socket = socket.to_path_buf();
            std::thread::spawn(move || {
                let s = UnixStream::connect(&socket).expect("connect");
                let mut r = BufReader::new(s.try_clone().expect("clone"));
                let mut w = s;
                let req = format!("{{\"v\":1,\"op\":\"process\",\"pid\":{pid}}}\n");
                let mut lat = Vec::new();
                let mut line = String::new();
                let end = Instant::now() + Duration::from_secs(secs);
                while Instant::now() < end {
                    let t = Instant::now();
                    w.write_all(req.as_bytes()).expect("write");
                    line.clear();
                    r.read_line(&mut line).expect("read");
                    lat.push(t.elapsed().as_nanos() as u64);
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("client"))
        .collect();
    all.sort_unstable();
    let q = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1e6;
    (all.len() as f64 / secs as f64, q(0.50), q(0.99))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let list = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
    };
    let default_sizes: &[usize] = if quick { &[1000] } else { &[1000, 10_000] };
    let sizes: Vec<usize> = list("--sizes")
        .map(|v| v.iter().filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_else(|| default_sizes.to_vec());
    let modes = list("--modes").unwrap_or_else(|| vec!["ebpf".into(), "procfs".into()]);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = root.join("target/release/carbon-ops-agent");
    assert!(
        bin.exists(),
        "build it first: cargo build --release -p carbon-ops-agent"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let pc = FakePowercap::build(
        dir.path(),
        &[FakeZone::new(
            "intel-rapl:0",
            "package-0",
            262_143_328_850,
            0,
        )],
    )
    .expect("fake");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let measure = if quick { 4 } else { 10 };
    println!("| processes | mode | agent CPU (% of one core) | RSS (MiB) |");
    println!("|---:|---|---:|---:|");
    let mut results = Vec::new();
    for &n in &sizes {
        let sleepers = spawn_sleepers(n);
        std::thread::sleep(Duration::from_secs(2));
        for mode in modes.iter().map(String::as_str) {
            let socket = dir.path().join(format!("{mode}-{n}.sock"));
            let mut agent = start_agent(&bin, &pc.class_root(), &socket, mode);
            std::thread::sleep(Duration::from_secs(3));
            let t0 = cpu_ticks(agent.id());
            std::thread::sleep(Duration::from_secs(measure));
            let t1 = cpu_ticks(agent.id());
            let cpu = (t1 - t0) as f64 / hz / measure as f64 * 100.0;
            let rss = rss_kib(agent.id()) as f64 / 1024.0;
            println!("| {n} | {mode} | {cpu:.2} | {rss:.1} |");
            results.push((n, mode.to_owned(), cpu));
            let _ = agent.kill();
            let _ = agent.wait();
        }
        kill_all(&sleepers);
    }
    for w in results.chunks(2) {
        if let [(n, a, e), (_, b, p)] = w
            && a == "ebpf"
            && b == "procfs"
        {
            println!(
                "\nat {n} processes procfs costs {:.1}× the CPU of ebpf",
                p / e.max(0.01)
            );
        }
    }
    let socket = dir.path().join("tp.sock");
    let mut agent = start_agent(&bin, &pc.class_root(), &socket, "ebpf");
    std::thread::sleep(Duration::from_secs(1));
    let (rps, p50, p99) = throughput(&socket, agent.id(), if quick { 2 } else { 5 });
    println!(
        "\n| clients | requests/s | p50 (ms) | p99 (ms) |\n|---:|---:|---:|---:|\n| 32 | {rps:.0} | {p50:.3} | {p99:.3} |"
    );
    let _ = agent.kill();
    let _ = agent.wait();
}
