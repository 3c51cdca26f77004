//! cgroup path labels on recorded Kubernetes, Docker, Podman and systemd paths; the cgroup2
//! mount from mountinfo; the id → path index on a directory tree (ids are inode numbers); and,
//! as root, a real cgroup with a busy process in it.

mod fleet_support;

use std::{os::unix::fs::MetadataExt, path::Path, time::Duration};

use fleet_support::{real_cgroup, spawn_busy_into};

use carbon_ops::fleet::{
    cgroup::{CgroupLabels, Runtime, cgroup2_mount, labels, v2_path_of},
    index::{CgroupIndex, find_cgroup2_mount},
};

const UID: &str = "6f0b1c2e-4d3a-4b5c-9e8f-0123456789ab";
const UID_: &str = "6f0b1c2e_4d3a_4b5c_9e8f_0123456789ab";
const ID: &str = "5e1d7c0c3a9b8e4f2d1c0b9a8f7e6d5c4b3a29180716253443526170819a0b1c";

fn pod(qos: &'static str, ctr: Option<(&str, Runtime)>) -> CgroupLabels {
    CgroupLabels {
        pod_uid: Some(UID.into()),
        qos: Some(qos),
        container_id: ctr.map(|c| c.0.to_owned()),
        runtime: ctr.map(|c| c.1),
        service: None,
    }
}

#[test]
fn kubernetes_systemd_driver() {
    let p = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"
    );
    assert_eq!(
        labels(&p),
        pod("burstable", Some((ID, Runtime::Containerd)))
    );
    let p = format!(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-{ID}.scope"
    );
    assert_eq!(labels(&p), pod("besteffort", Some((ID, Runtime::Crio))));
    let p = format!("/kubepods.slice/kubepods-pod{UID_}.slice/docker-{ID}.scope");
    assert_eq!(labels(&p), pod("guaranteed", Some((ID, Runtime::Docker))));
    // The pod's own slice, and CRI-O's conmon: the pod, no container.
    let p = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
    assert_eq!(labels(&p), pod("burstable", None));
    let p = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-conmon-{ID}.scope"
    );
    assert_eq!(labels(&p), pod("burstable", None));
}

#[test]
fn kubernetes_cgroupfs_driver_and_nested_kind() {
    let p = format!("/kubepods/burstable/pod{UID}/{ID}");
    assert_eq!(labels(&p), pod("burstable", Some((ID, Runtime::Unknown))));
    let p = format!("/kubepods/pod{UID}/{ID}");
    assert_eq!(labels(&p), pod("guaranteed", Some((ID, Runtime::Unknown))));
    let p = format!("/kubepods/besteffort/pod{UID}");
    assert_eq!(labels(&p), pod("besteffort", None));
    // kind: a kubelet in a container, systemd driver, under kubelet.slice.
    let p = format!(
        "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope"
    );
    assert_eq!(
        labels(&p),
        pod("besteffort", Some((ID, Runtime::Containerd)))
    );
    // A static pod's UID is a 32-hex config hash.
    let l = labels(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8a2b3c4d5e6f708192a3b4c5d6e7f809.slice",
    );
    assert_eq!(
        l.pod_uid.as_deref(),
        Some("8a2b3c4d5e6f708192a3b4c5d6e7f809")
    );
}

#[test]
fn docker_podman_and_systemd() {
    let l = labels(&format!("/docker/{ID}"));
    assert_eq!(
        (l.container_id.as_deref(), l.runtime, l.pod_uid),
        (Some(ID), Some(Runtime::Docker), None)
    );
    let l = labels(&format!("/system.slice/docker-{ID}.scope"));
    assert_eq!(
        (l.container_id.as_deref(), l.runtime, l.service),
        (Some(ID), Some(Runtime::Docker), None)
    );
    let l = labels(&format!(
        "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
    ));
    assert_eq!(
        (l.container_id.as_deref(), l.runtime),
        (Some(ID), Some(Runtime::Podman))
    );
    assert_eq!(
        labels("/system.slice/nginx.service").service.as_deref(),
        Some("nginx.service")
    );
    assert_eq!(
        labels("/system.slice/containerd.service")
            .service
            .as_deref(),
        Some("containerd.service")
    );
    assert_eq!(
        labels("/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox.scope")
            .service
            .as_deref(),
        Some("user@1000.service")
    );
}

#[test]
fn things_that_are_not_pods_or_containers() {
    for p in [
        "/",
        "",
        "/user.slice/user-1000.slice/session-3.scope",
        "/kubepods/burstable/podnot-a-uid/abc",
        "/system.slice/pod-thing.slice",
        "/docker",
        "/docker/not-hex-at-all",
        "/kubepods.slice/kubepods-burstable.slice",
        &format!("/elsewhere/pod{UID}/{ID}"), // no kubepods ancestor
    ] {
        let l = labels(p);
        assert_eq!(
            (l.pod_uid.clone(), l.container_id.clone()),
            (None, None),
            "{p}: {l:?}"
        );
    }
}

#[test]
fn cgroup2_mount_from_mountinfo() {
    // This hybrid machine's lines (recorded).
    let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
    assert_eq!(
        cgroup2_mount(hybrid).as_deref(),
        Some(Path::new("/sys/fs/cgroup/unified"))
    );
    // A container: the runtime's namespaced mount, then the host's /sys bind-mounted over it.
    let pod = "700 690 0:30 /kubepods.slice/x.scope /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n\
720 700 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
    assert_eq!(
        cgroup2_mount(pod).as_deref(),
        Some(Path::new("/sys/fs/cgroup"))
    );
    let escaped = "41 31 0:38 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw\n";
    assert_eq!(
        cgroup2_mount(escaped).as_deref(),
        Some(Path::new("/mnt/cg two"))
    );
    assert_eq!(
        cgroup2_mount("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"),
        None
    );
    assert_eq!(
        v2_path_of("1:cpu:/\n0::/system.slice/a.service\n").as_deref(),
        Some("/system.slice/a.service")
    );
}

#[test]
fn index_resolves_inodes_and_keeps_departed() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    std::fs::create_dir_all(root.join("a/b/c"))?;
    std::fs::write(root.join("a/cgroup.procs"), "")?;
    let ino = |p: &str| std::fs::metadata(root.join(p)).map(|m| m.ino());
    let mut idx = CgroupIndex::new(root.to_path_buf());
    idx.min_refresh = Duration::ZERO;
    assert_eq!(idx.refresh().ok(), Some(4)); // root, a, a/b, a/b/c; files are not cgroups
    assert_eq!(idx.resolve(ino("a/b")?).as_deref(), Some("/a/b"));
    assert_eq!(idx.resolve(ino("")?).as_deref(), Some("/"));
    // New cgroup: a miss walks again.
    std::fs::create_dir(root.join("a/new"))?;
    let walks = idx.walks();
    assert_eq!(idx.resolve(ino("a/new")?).as_deref(), Some("/a/new"));
    assert_eq!(idx.walks(), walks + 1);
    // Removed: still resolvable while departed entries are kept, gone once they expire.
    let gone = ino("a/b/c")?;
    std::fs::remove_dir(root.join("a/b/c"))?;
    idx.refresh().ok();
    assert_eq!(idx.lookup(gone).as_deref(), Some("/a/b/c"));
    idx.keep_departed = Duration::ZERO;
    idx.refresh().ok();
    assert_eq!(idx.lookup(gone), None);
    // Misses do not walk more than once per min_refresh.
    idx.min_refresh = Duration::from_secs(3600);
    let walks = idx.walks();
    assert_eq!(idx.resolve(u64::MAX), None);
    assert_eq!(idx.resolve(u64::MAX - 1), None);
    assert_eq!(idx.walks(), walks);
    Ok(())
}

#[test]
fn find_mount_through_a_proc_root() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("self"))?;
    std::fs::write(
        dir.path().join("self/mountinfo"),
        "41 31 0:38 / /x/cg rw - cgroup2 cgroup2 rw\n",
    )?;
    assert_eq!(
        find_cgroup2_mount(dir.path()).ok().as_deref(),
        Some(Path::new("/x/cg"))
    );
    std::fs::write(dir.path().join("self/mountinfo"), "")?;
    let e = find_cgroup2_mount(dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("no cgroup2 filesystem"), "{e}");
    Ok(())
}

#[test]
fn real_cgroup_id_resolves_to_its_path() -> std::io::Result<()> {
    let Some(mut cg) = real_cgroup("carbon-ops-fleet-test") else {
        return Ok(());
    };
    let pid = spawn_busy_into(&mut cg)?;
    let name = cg
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let want = format!("/{name}");
    // The kernel says the process is in it...
    let proc_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    assert_eq!(v2_path_of(&proc_cgroup).as_deref(), Some(want.as_str()));
    // ...and the directory's inode, the cgroup id, resolves to that path.
    let id = std::fs::metadata(&cg.dir)?.ino();
    let mut idx = CgroupIndex::open(Path::new("/proc")).map_err(std::io::Error::other)?;
    assert_eq!(idx.resolve(id).as_deref(), Some(want.as_str()));
    // The mount's own directory is the root cgroup, id 1 on cgroup2.
    assert_eq!(idx.resolve(1).as_deref(), Some("/"));
    Ok(())
}

proptest::proptest! {
    /// Any text is a path `labels` answers for without panicking.
    #[test]
    fn labels_never_panic(path in "(/[a-z0-9_.@:-]{0,70}){0,8}") {
        let _ = labels(&path);
    }

    /// A pod UID reads the same from the systemd driver's slice (with `_`) and the cgroupfs
    /// driver's directory (with `-`), under every QoS class.
    #[test]
    fn both_drivers_agree_on_the_pod(
        uid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        id in "[0-9a-f]{64}",
        qos in proptest::sample::select(vec!["burstable", "besteffort", ""]),
    ) {
        let slice_qos = if qos.is_empty() { String::new() } else { format!("-{qos}") };
        let systemd = format!(
            "/kubepods.slice/kubepods{slice_qos}.slice/kubepods{slice_qos}-pod{}.slice/cri-containerd-{id}.scope",
            uid.replace('-', "_")
        );
        let dir_qos = if qos.is_empty() { String::new() } else { format!("/{qos}") };
        let cgroupfs = format!("/kubepods{dir_qos}/pod{uid}/{id}");
        let (a, b) = (labels(&systemd), labels(&cgroupfs));
        let want_qos = if qos.is_empty() { "guaranteed" } else { qos };
        proptest::prop_assert_eq!(a.pod_uid.as_deref(), Some(uid.as_str()));
        proptest::prop_assert_eq!(b.pod_uid.as_deref(), Some(uid.as_str()));
        proptest::prop_assert_eq!((a.qos, b.qos), (Some(want_qos), Some(want_qos)));
        proptest::prop_assert_eq!(a.container_id.as_deref(), Some(id.as_str()));
        proptest::prop_assert_eq!(b.container_id.as_deref(), Some(id.as_str()));
    }
}
