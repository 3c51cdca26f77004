//! Names in cgroup v2 paths (pure): Kubernetes pod UIDs and QoS classes, container ids and
//! their runtimes, Docker containers and systemd units, plus the cgroup2 mount point read
//! from `/proc/self/mountinfo`.
//!
//! Recognised layouts (the kubelet's two cgroup drivers and the common runtimes):
//! - systemd driver: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with
//!   _ for ->.slice/cri-containerd-<id>.scope` (also `crio-<id>.scope`, `docker-<id>.scope`;
//!   Guaranteed pods sit directly under `kubepods.slice` as `kubepods-pod<uid>.slice`);
//! - cgroupfs driver: `/kubepods/burstable/pod<uid>/<id>` (Guaranteed: `/kubepods/pod<uid>/<id>`);
//! - Docker: `/docker/<id>` (cgroupfs) and `/system.slice/docker-<id>.scope` (systemd);
//!   Podman: `libpod-<id>.scope`;
//! - systemd services: the innermost `*.service` component (`/system.slice/nginx.service`).
//!
//! Nested layouts (kind, a kubelet inside a container: `/kubelet.slice/kubelet-kubepods.slice/…`)
//! are recognised because every component is examined, not a fixed prefix.

use std::path::PathBuf;

use serde::Serialize;

/// Container runtime named by a cgroup path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// containerd through CRI (`cri-containerd-<id>.scope`).
    Containerd,
    /// CRI-O (`crio-<id>.scope`).
    Crio,
    /// Docker (`docker-<id>.scope`, `/docker/<id>`).
    Docker,
    /// Podman (`libpod-<id>.scope`).
    Podman,
    /// A pod's container under the cgroupfs driver, where the path does not name the runtime.
    Unknown,
}

impl Runtime {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::Crio => "crio",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Unknown => "unknown",
        }
    }
}

/// What a cgroup path says about the workload inside it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct CgroupLabels {
    /// Kubernetes pod UID, with dashes (`3f1c…-…`).
    pub pod_uid: Option<String>,
    /// Pod QoS class: `guaranteed`, `burstable` or `besteffort`.
    pub qos: Option<&'static str>,
    /// Full container id as the runtime prints it (hex).
    pub container_id: Option<String>,
    /// Runtime that named the container.
    pub runtime: Option<Runtime>,
    /// Innermost systemd service unit (`nginx.service`).
    pub service: Option<String>,
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A container id: 12 to 64 hex digits (runtimes print 64).
fn container_id(s: &str) -> Option<String> {
    (is_hex(s) && (12..=64).contains(&s.len())).then(|| s.to_ascii_lowercase())
}

/// A pod UID: a UUID (36 chars with dashes) or a static pod's 32-hex config hash.
fn pod_uid(s: &str) -> Option<String> {
    let ok = match s.len() {
        36 => s.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        }),
        32 => is_hex(s),
        _ => false,
    };
    ok.then(|| s.to_ascii_lowercase())
}

fn qos(s: &str) -> Option<&'static str> {
    match s {
        "burstable" => Some("burstable"),
        "besteffort" => Some("besteffort"),
        _ => None,
    }
}

/// A systemd-driver pod slice (`kubepods-burstable-pod<uid_>.slice`, `kubelet-kubepods-pod…`).
fn systemd_pod(comp: &str) -> Option<(String, Option<&'static str>)> {
    let stem = comp.strip_suffix(".slice")?;
    if !stem.contains("kubepods") {
        return None;
    }
    let parts: Vec<&str> = stem.split('-').collect();
    let last = parts.last()?;
    let uid = pod_uid(&last.strip_prefix("pod")?.replace('_', "-"))?;
    let q = parts.iter().find_map(|p| qos(p)).or(Some("guaranteed"));
    Some((uid, q))
}

/// A runtime scope (`cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope`, …).
fn scope(comp: &str) -> Option<(Runtime, String)> {
    let stem = comp.strip_suffix(".scope")?;
    let prefixes = [
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::Crio),
        ("docker-", Runtime::Docker),
        ("libpod-", Runtime::Podman),
    ];
    prefixes.iter().find_map(|(p, rt)| {
        let id = stem.strip_prefix(p)?;
        // `crio-conmon-<id>.scope` is CRI-O's monitor, not the container.
        container_id(id).map(|id| (*rt, id))
    })
}

/// Reads the labels out of a cgroup v2 path (as in `/proc/<pid>/cgroup`: `/`-rooted).
pub fn labels(path: &str) -> CgroupLabels {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let mut out = CgroupLabels::default();
    let mut under_kubepods = false;
    let mut under_docker = false;
    let mut pod_depth = None;
    for (i, c) in comps.iter().enumerate() {
        if let Some((uid, q)) = systemd_pod(c) {
            out.pod_uid = Some(uid);
            out.qos = q;
            pod_depth = Some(i);
        } else if *c == "kubepods" || c.ends_with("kubepods.slice") {
            under_kubepods = true;
        } else if under_kubepods && pod_depth.is_none() && qos(c).is_some() {
            out.qos = qos(c);
        } else if let Some(uid) = c
            .strip_prefix("pod")
            .filter(|_| under_kubepods)
            .and_then(pod_uid)
        {
            out.pod_uid = Some(uid);
            out.qos = out.qos.or(Some("guaranteed"));
            pod_depth = Some(i);
        } else if let Some((rt, id)) = scope(c) {
            out.container_id = Some(id);
            out.runtime = Some(rt);
        } else if let Some(id) = container_id(c).filter(|_| pod_depth == Some(i.wrapping_sub(1))) {
            out.container_id = Some(id);
            out.runtime = Some(Runtime::Unknown);
        } else if let Some(id) = container_id(c).filter(|_| under_docker) {
            out.container_id = Some(id);
            out.runtime = Some(Runtime::Docker);
        } else if c.ends_with(".service") {
            out.service = Some((*c).to_owned());
        }
        under_docker = *c == "docker";
    }
    out
}

/// The cgroup2 mount point in a `/proc/<pid>/mountinfo` text, with `\040`-style escapes
/// decoded. Mounts whose root is the hierarchy's root (`/`) are preferred, and among them
/// the last listed: a container that bind-mounts the host's `/sys` over its own sees the
/// host's cgroup2 mount after (and over) the runtime's namespaced one. Hybrid hosts mount
/// cgroup2 at `/sys/fs/cgroup/unified`.
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    let mounts: Vec<(&str, &str)> = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if right.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            let mut f = left.split_whitespace().skip(3);
            Some((f.next()?, f.next()?))
        })
        .collect();
    let pick = mounts
        .iter()
        .rev()
        .find(|(root, _)| *root == "/")
        .or(mounts.last())?;
    Some(PathBuf::from(unescape_octal(pick.1)))
}

/// The cgroup v2 path in a `/proc/<pid>/cgroup` text (the `0::` line).
pub fn v2_path_of(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end().to_owned())
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let code = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| {
                let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                u8::try_from(v).ok()
            });
        if let Some(c) = code {
            out.push(c);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
