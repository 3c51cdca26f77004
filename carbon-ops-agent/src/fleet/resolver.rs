//! Process → cgroup path (thin I/O): by cgroup id through the [`CgroupIndex`] (eBPF mode), or
//! from `/proc/<pid>/cgroup` where the id is unknown (procfs mode reports id 0), cached per
//! process identity and pruned to the processes the store still has.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use super::index::{CgroupIndex, cgroup_path_of_pid};
use crate::{
    agent::store::{ProcRecord, Store},
    tasks::ProcessId,
};

/// Resolves processes to cgroup paths.
#[derive(Debug)]
pub struct Resolver {
    index: Option<CgroupIndex>,
    proc_root: PathBuf,
    by_proc: HashMap<ProcessId, Arc<str>>,
}

impl Resolver {
    /// A resolver over `index` (none: ids are not resolved) with `/proc` at `proc_root`.
    pub fn new(index: Option<CgroupIndex>, proc_root: PathBuf) -> Resolver {
        Resolver {
            index,
            proc_root,
            by_proc: HashMap::new(),
        }
    }

    /// The agent's resolver: the cgroup2 tree at `cgroup_root` when given, else the mount
    /// found in `<proc_root>/self/mountinfo`; without one (logged once), only the procfs
    /// fallback works.
    pub fn open(proc_root: PathBuf, cgroup_root: Option<PathBuf>) -> Resolver {
        let index = match cgroup_root {
            Some(root) => {
                let mut i = CgroupIndex::new(root);
                match i.refresh() {
                    Ok(_) => Ok(i),
                    Err(e) => Err(e),
                }
            }
            None => CgroupIndex::open(&proc_root),
        };
        let index = index
            .map_err(|e| tracing::warn!(error = %e, "cgroup ids will not be resolved to paths"))
            .ok();
        Resolver::new(index, proc_root)
    }

    /// The index, if any.
    pub fn index(&self) -> Option<&CgroupIndex> {
        self.index.as_ref()
    }

    /// The cgroup path of a process, `None` when unknown.
    pub fn path_of(&mut self, r: &ProcRecord) -> Option<Arc<str>> {
        if r.cgroup_id != 0
            && let Some(p) = self.index.as_mut().and_then(|i| i.resolve(r.cgroup_id))
        {
            return Some(p);
        }
        if let Some(p) = self.by_proc.get(&r.id) {
            return Some(p.clone());
        }
        if r.exited_unix.is_some() {
            return None;
        }
        let p: Arc<str> = Arc::from(cgroup_path_of_pid(&self.proc_root, r.id.pid)?);
        self.by_proc.insert(r.id, p.clone());
        Some(p)
    }

    /// Forgets the per-process cache entries of processes `store` no longer has.
    pub fn prune(&mut self, store: &Store) {
        self.by_proc.retain(|id, _| store.procs.contains_key(id));
    }
}
