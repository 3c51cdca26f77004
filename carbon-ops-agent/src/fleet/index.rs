//! cgroup v2 id → path (thin I/O): the index the aggregation and the metrics resolve through.
//!
//! A cgroup v2 id (what `bpf_get_current_cgroup_id()` returns) is the inode number of the
//! cgroup's directory in the cgroup2 filesystem. The index walks the tree under the mount
//! once, reading each directory's inode from `readdir` (`d_ino`: no `stat` per cgroup), and
//! walks it again on a miss, at most once per `min_refresh` so that an id of a cgroup already
//! gone does not trigger a walk per lookup. Cgroups that disappear stay resolvable for
//! `keep_departed`, so a pod's exited processes keep their labels while the store retains them.
//! The walk is bounded in depth and in entries.

use std::{
    collections::HashMap,
    os::unix::fs::DirEntryExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use thiserror::Error;

use super::cgroup::{cgroup2_mount, v2_path_of};

/// Deepest directory level walked below the mount.
pub const MAX_DEPTH: usize = 32;
/// Most cgroups indexed (a node with 110 pods has a few thousand).
pub const MAX_ENTRIES: usize = 200_000;

/// What can fail while locating or walking the cgroup tree.
#[derive(Debug, Error)]
pub enum IndexError {
    /// mountinfo unreadable.
    #[error("cannot read {path}; is procfs mounted there?")]
    Mountinfo {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No cgroup2 line.
    #[error(
        "no cgroup2 filesystem is mounted (none in {path}); cgroup attribution needs cgroup v2 (mount it, e.g. `mount -t cgroup2 none /sys/fs/cgroup`)"
    )]
    NoCgroup2 {
        /// The mountinfo read.
        path: PathBuf,
    },
    /// The mount root is unreadable.
    #[error(
        "cannot list the cgroup2 mount {path}; mount /sys read-only into the agent's container"
    )]
    Walk {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Finds the cgroup2 mount from `<proc_root>/self/mountinfo` (see [`cgroup2_mount`] for
/// which one wins). Where the host's tree is mounted somewhere unusual, skip this and give
/// the path to [`CgroupIndex::new`].
pub fn find_cgroup2_mount(proc_root: &Path) -> Result<PathBuf, IndexError> {
    let path = proc_root.join("self/mountinfo");
    let text = std::fs::read_to_string(&path).map_err(|source| IndexError::Mountinfo {
        path: path.clone(),
        source,
    })?;
    cgroup2_mount(&text).ok_or(IndexError::NoCgroup2 { path })
}

/// The cgroup v2 path of a live process, from `<proc_root>/<pid>/cgroup` (the procfs-mode
/// fallback, where no cgroup id is known).
pub fn cgroup_path_of_pid(proc_root: &Path, pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).ok()?;
    v2_path_of(&text)
}

/// The id → path index.
#[derive(Debug)]
pub struct CgroupIndex {
    mount: PathBuf,
    by_id: HashMap<u64, Arc<str>>,
    departed: HashMap<u64, (Arc<str>, Instant)>,
    last_walk: Option<Instant>,
    /// Fewest time between two walks triggered by misses.
    pub min_refresh: Duration,
    /// How long a removed cgroup stays resolvable.
    pub keep_departed: Duration,
    walks: u64,
}

impl CgroupIndex {
    /// An empty index of the tree mounted at `mount` (nothing read yet).
    pub fn new(mount: PathBuf) -> CgroupIndex {
        CgroupIndex {
            mount,
            by_id: HashMap::new(),
            departed: HashMap::new(),
            last_walk: None,
            min_refresh: Duration::from_secs(1),
            keep_departed: Duration::from_secs(600),
            walks: 0,
        }
    }

    /// The index of the host's cgroup2 mount, found through `<proc_root>/self/mountinfo`, walked once.
    pub fn open(proc_root: &Path) -> Result<CgroupIndex, IndexError> {
        let mut index = CgroupIndex::new(find_cgroup2_mount(proc_root)?);
        index.refresh()?;
        Ok(index)
    }

    /// The mount walked.
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// Walks performed so far.
    pub fn walks(&self) -> u64 {
        self.walks
    }

    /// Cgroups indexed now (removed ones still kept included).
    pub fn len(&self) -> usize {
        self.by_id.len() + self.departed.len()
    }

    /// Nothing indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rebuilds the index; returns the number of cgroups found.
    pub fn refresh(&mut self) -> Result<usize, IndexError> {
        let now = Instant::now();
        self.last_walk = Some(now);
        self.walks += 1;
        let mut fresh = HashMap::new();
        let root_ino = std::fs::metadata(&self.mount)
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .map_err(|source| IndexError::Walk {
                path: self.mount.clone(),
                source,
            })?;
        fresh.insert(root_ino, Arc::<str>::from("/"));
        let mut stack = vec![(self.mount.clone(), String::new(), 0usize)];
        while let Some((dir, rel, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue; // removed while walking
            };
            for e in entries.flatten() {
                if fresh.len() >= MAX_ENTRIES {
                    break;
                }
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let child = format!("{rel}/{}", e.file_name().to_string_lossy());
                fresh.insert(e.ino(), Arc::<str>::from(child.as_str()));
                if depth + 1 < MAX_DEPTH {
                    stack.push((e.path(), child, depth + 1));
                }
            }
        }
        for (id, path) in self.by_id.drain() {
            if !fresh.contains_key(&id) {
                self.departed.insert(id, (path, now));
            }
        }
        let keep = self.keep_departed;
        self.departed
            .retain(|id, (_, at)| !fresh.contains_key(id) && now.duration_since(*at) < keep);
        self.by_id = fresh;
        Ok(self.by_id.len())
    }

    /// The path of cgroup `id` (`/`-rooted, as `/proc/<pid>/cgroup` shows it), walking the
    /// tree again on a miss unless the last walk was under `min_refresh` ago.
    pub fn resolve(&mut self, id: u64) -> Option<Arc<str>> {
        if let Some(p) = self.lookup(id) {
            return Some(p);
        }
        let due = self
            .last_walk
            .is_none_or(|t| t.elapsed() >= self.min_refresh);
        if due && self.refresh().is_err() {
            return None;
        }
        self.lookup(id)
    }

    /// The path of cgroup `id` if already indexed (no I/O).
    pub fn lookup(&self, id: u64) -> Option<Arc<str>> {
        self.by_id
            .get(&id)
            .or_else(|| self.departed.get(&id).map(|(p, _)| p))
            .cloned()
    }
}
