//! Shared helpers for the agent's end-to-end tests: a fake powercap tree advanced at a known
//! power by a writer thread, the real agent binary started on it, and a line client.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use carbon_ops::energy::fake::{FakePowercap, FakeZone};
use serde_json::{Value, json};

/// Package power the fake tree is advanced at.
pub const WATTS: u64 = 20;
/// A small range, so the counter wraps every 0.5 s.
pub const RANGE_UJ: u64 = 10_000_000;

/// A fake powercap tree whose package counter advances at [`WATTS`].
pub struct FakeRapl {
    pub dir: tempfile::TempDir,
    pub class_root: PathBuf,
    stop: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<u64>>,
}

impl FakeRapl {
    pub fn start() -> FakeRapl {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut pc = FakePowercap::build(
            dir.path(),
            &[FakeZone::new("intel-rapl:0", "package-0", RANGE_UJ, 0)],
        )
        .expect("fake tree");
        let class_root = pc.class_root();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let writer = std::thread::spawn(move || {
            // Real-time priority where allowed, so the fake "hardware" keeps its constant power
            // even when the tests saturate the CPUs (a starved writer would deliver energy in
            // bursts).
            let param = libc::sched_param { sched_priority: 50 };
            // SAFETY: valid pointer; failure (not root) just leaves normal priority.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
            // Advance by elapsed time × power every 5 ms, so energy tracks wall time exactly.
            let start = Instant::now();
            let mut written = 0u64;
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
                let due = (start.elapsed().as_micros() as u64) * WATTS;
                pc.advance("intel-rapl:0", due - written).expect("advance");
                written = due;
            }
            written
        });
        FakeRapl {
            dir,
            class_root,
            stop,
            writer: Some(writer),
        }
    }
}

impl Drop for FakeRapl {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// The real agent, killed on drop.
pub struct Agent {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Agent {
    /// Starts the agent on `rapl` with `extra` arguments and waits for its socket.
    pub fn start(rapl: &FakeRapl, attribution: &str, extra: &[&str]) -> Agent {
        Agent::start_at(rapl, attribution, None, extra)
    }

    /// [`Agent::start`] on a given socket path.
    pub fn start_at(
        rapl: &FakeRapl,
        attribution: &str,
        socket: Option<&Path>,
        extra: &[&str],
    ) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = socket.map_or_else(|| dir.path().join("agent.sock"), Path::to_path_buf);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_carbon-ops-agent"));
        cmd.args([
            "--rapl-mode",
            "sysfs",
            "--attribution",
            attribution,
            "--interval",
            "100ms",
        ])
        .arg("--powercap-root")
        .arg(&rapl.class_root)
        .arg("--socket")
        .arg(&socket)
        .arg("--ledger")
        .arg(dir.path().join("ledger.jsonl"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn agent");
        let mut agent = Agent { child, socket, dir };
        agent.wait_ready();
        agent
    }

    fn wait_ready(&mut self) {
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(e) = self.child.stderr.as_mut() {
                    let _ = std::io::Read::read_to_string(e, &mut err);
                }
                panic!("agent exited early with {status}: {err}");
            }
            if UnixStream::connect(&self.socket).is_ok() {
                // Two ticks, so that totals exist.
                std::thread::sleep(Duration::from_millis(250));
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("agent socket never appeared");
    }

    pub fn client(&self) -> LineClient {
        LineClient::connect(&self.socket)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then copies the ledger (and its side files) out of the agent's temporary
    /// directory before it is removed; returns the exit status.
    pub fn terminate_keep(mut self, ledger: &Path, to: &Path) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(10);
        let st = loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                break s;
            }
            assert!(Instant::now() < until, "agent did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::fs::copy(ledger, to).expect("copy ledger");
        let _ = std::fs::copy(
            ledger.with_extension("jsonl.head"),
            to.with_extension("jsonl.head"),
        );
        st
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            assert!(Instant::now() < until, "agent did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client speaking raw lines.
pub struct LineClient {
    pub reader: BufReader<UnixStream>,
    pub writer: UnixStream,
}

impl LineClient {
    pub fn connect(path: &Path) -> LineClient {
        let s = UnixStream::connect(path).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        LineClient {
            reader: BufReader::new(s.try_clone().expect("clone")),
            writer: s,
        }
    }

    /// Sends raw bytes (a newline is not added).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Reads one answer line.
    pub fn answer(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("answer {line:?} is not JSON: {e}"))
    }

    /// Sends a request and returns the answer.
    pub fn ask(&mut self, req: Value) -> Value {
        let mut bytes = serde_json::to_vec(&req).expect("json");
        bytes.push(b'\n');
        self.send_raw(&bytes);
        self.answer()
    }

    pub fn op(&mut self, op: &str, fields: Value) -> Value {
        let mut req = json!({"v": 1, "op": op});
        if let (Value::Object(m), Value::Object(f)) = (&mut req, fields) {
            m.extend(f);
        }
        self.ask(req)
    }
}

/// Whether this process may load eBPF; in CI (`CARBON_OPS_REQUIRE_PRIVILEGED=1`) it must.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var_os("CARBON_OPS_REQUIRE_PRIVILEGED").is_none(),
            "{test}: CI requires root for the privileged tests"
        );
        eprintln!("\n*** SKIPPED {test}: needs root (eBPF) ***\n");
    }
    root
}

/// Sum of `/proc/<pid>/task/*/schedstat` first fields.
pub fn schedstat_ns(pid: u32) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path().join("schedstat")).unwrap_or_default();
        total += text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// Steal time of all CPUs so far (`/proc/stat`, ns at USER_HZ = 100). In a VM with
/// paravirtual steal accounting, the kernel's `sum_exec_runtime` (schedstat) leaves out time
/// the hypervisor gave to other guests while a task was on the CPU; the eBPF programs measure
/// switch-to-switch wall time, which includes it. On bare metal (where RAPL is) steal is 0.
pub fn steal_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    s.lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(8)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 10_000_000
}
