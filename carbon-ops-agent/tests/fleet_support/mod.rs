//! Helpers shared by the fleet tests: a store built tick by tick with chosen cgroups.
#![allow(dead_code, reason = "each test file uses a subset")]

use std::{
    path::Path,
    process::{Child, Command},
    time::Duration,
};

use carbon_ops::{
    agent::store::{Clocks, ProcMeta, Store},
    attribution::TickAttribution,
    fleet::index::find_cgroup2_mount,
    tasks::{
        ExitInfo, ProcessId,
        delta::{TaskDelta, TickDelta},
    },
};

/// Clocks of tick `n` (100 ms apart).
pub fn clocks(n: u64) -> Clocks {
    Clocks {
        unix_now: 1_764_345_600.0 + n as f64 * 0.1,
        mono_now_ns: 1_000_000_000 + n * 100_000_000,
        boot_now_ns: 2_000_000_000 + n * 100_000_000,
    }
}

/// A process id (start time 1 s after boot).
pub fn pid(p: u32) -> ProcessId {
    ProcessId {
        pid: p,
        start_boottime_ns: 1_000_000_000,
    }
}

/// One running process in a tick: `(pid, cgroup id, cpu ns, µJ)`.
pub type Run = (u32, u64, u64, u64);

/// Applies one tick of `runs` (plus `idle_uj` to the idle bucket) and `exits` (pids), with
/// comm `p<pid>` and uid `1000 + pid % 2`.
pub fn tick(store: &mut Store, runs: &[Run], idle_uj: u64, exits: &[u32]) {
    let n = store.tick + 1;
    let c = clocks(n);
    let d = TickDelta {
        from_ns: c.mono_now_ns - 100_000_000,
        to_ns: c.mono_now_ns,
        tasks: runs
            .iter()
            .map(|&(p, cg, ns, _)| TaskDelta {
                id: pid(p),
                per_cpu_ns: vec![ns],
                cgroup_id: cg,
            })
            .collect(),
        idle_ns: vec![0],
        exited: exits
            .iter()
            .map(|&p| ExitInfo {
                id: pid(p),
                exit_monotonic_ns: c.mono_now_ns,
                uid: 1000 + p % 2,
                ppid: 1,
                comm: format!("p{p}"),
                cgroup_id: 0,
            })
            .collect(),
        lost_ns: 0,
        regressions: 0,
    };
    let attributed: u64 = runs.iter().map(|r| r.3).sum();
    let a = TickAttribution {
        total_uj: attributed + idle_uj,
        attributed_uj: attributed,
        idle_uj,
        unattributed_uj: 0,
        per_task_uj: runs.iter().map(|r| (pid(r.0), r.3)).collect(),
        busy_ns: runs.iter().map(|r| r.2).sum(),
    };
    store.apply(&c, &d, &a, &mut |id: ProcessId| ProcMeta {
        comm: format!("p{}", id.pid),
        uid: 1000 + id.pid % 2,
        ppid: 1,
    });
}

pub const POD_A: &str = "6f0b1c2e-4d3a-4b5c-9e8f-0123456789ab";
pub const POD_B: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
pub const CTR_1: &str = "5e1d7c0c3a9b8e4f2d1c0b9a8f7e6d5c4b3a29180716253443526170819a0b1c";
pub const CTR_2: &str = "aa11bb22cc33dd44ee55ff6600778899aabbccddeeff00112233445566778899";
pub const CTR_3: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Recorded paths by cgroup id: pod A (two containers, systemd driver, containerd), pod B
/// (cgroupfs driver), a systemd service, and the root.
pub fn paths(id: u64) -> Option<&'static str> {
    Some(match id {
        11 => {
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f0b1c2e_4d3a_4b5c_9e8f_0123456789ab.slice/cri-containerd-5e1d7c0c3a9b8e4f2d1c0b9a8f7e6d5c4b3a29180716253443526170819a0b1c.scope"
        }
        12 => {
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f0b1c2e_4d3a_4b5c_9e8f_0123456789ab.slice/cri-containerd-aa11bb22cc33dd44ee55ff6600778899aabbccddeeff00112233445566778899.scope"
        }
        21 => {
            "/kubepods/besteffort/pod0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        }
        31 => "/system.slice/nginx.service",
        1 => "/",
        _ => return None,
    })
}

/// A child cgroup under the real cgroup2 mount, removed on drop (after its processes).
pub struct RealCgroup {
    pub dir: std::path::PathBuf,
    pub children: Vec<Child>,
}

impl Drop for RealCgroup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn real_cgroup(name: &str) -> Option<RealCgroup> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: real cgroup test needs root (it creates a cgroup and moves a process)");
        return None;
    }
    let Ok(mount) = find_cgroup2_mount(Path::new("/proc")) else {
        eprintln!("SKIPPED: no cgroup2 mount on this machine");
        return None;
    };
    let dir = mount.join(format!("{name}-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir(&dir) {
        eprintln!("SKIPPED: cannot create a cgroup at {}: {e}", dir.display());
        return None;
    }
    Some(RealCgroup {
        dir,
        children: Vec::new(),
    })
}

pub fn spawn_busy_into(cg: &mut RealCgroup) -> std::io::Result<u32> {
    let child = Command::new("sh")
        .arg("-c")
        .arg("while :; do :; done")
        .spawn()?;
    let pid = child.id();
    cg.children.push(child);
    std::fs::write(cg.dir.join("cgroup.procs"), pid.to_string())?;
    Ok(pid)
}

/// Agent facts for rendering.
pub fn info() -> carbon_ops::agent::engine::AgentInfo {
    carbon_ops::agent::engine::AgentInfo {
        version: "0.1.0",
        instance_id: "feedc0de".into(),
        energy_source: "sysfs",
        energy_source_reason: "test".into(),
        attribution_mode: "ebpf",
        attribution_reason: None,
        interval_ms: 100,
        idle_policy: "idle_bucket",
        resolution_ms: 1000,
    }
}

/// Builds the recorded paths as directories under `root` (a fake cgroup2 tree) and returns
/// the store of [`paths`]'s processes with the directories' inodes as cgroup ids: p1 ctr1/podA
/// 3000 µJ, p2 ctr2/podA 2000, p3 ctr3/podB 1000, p4 nginx 500 per tick, two ticks; p7
/// (`comm` with a quote) 1 µJ in the root cgroup.
pub fn store_on_fake_tree(root: &Path) -> std::io::Result<Store> {
    use std::os::unix::fs::MetadataExt;
    let mut ids = Vec::new();
    for id in [11, 12, 21, 31] {
        let dir = root.join(paths(id).unwrap_or("/").trim_start_matches('/'));
        std::fs::create_dir_all(&dir)?;
        ids.push(std::fs::metadata(&dir)?.ino());
    }
    let root_id = std::fs::metadata(root)?.ino();
    let mut s = Store::new(600.0);
    let runs = [
        (1, ids[0], 30_000_000, 3000),
        (2, ids[1], 20_000_000, 2000),
        (3, ids[2], 10_000_000, 1000),
        (4, ids[3], 5_000_000, 500),
    ];
    tick(&mut s, &runs, 40, &[]);
    tick(&mut s, &runs, 40, &[]);
    tick(&mut s, &[(7, root_id, 1000, 1)], 0, &[]);
    if let Some(r) = s.procs.values_mut().find(|r| r.id.pid == 7) {
        r.comm = "we\"ird\\name".into();
    }
    s.zones = vec![carbon_ops::agent::store::ZoneView {
        name: "package-0".into(),
        kind: "package".into(),
        package: Some(0),
        energy_uj: 13_081,
        stale: false,
    }];
    s.uncertainty_rel = 0.05;
    Ok(s)
}
