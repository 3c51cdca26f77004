//! Monotonic per-pod, per-container and per-service counters for the metrics (pure).
//!
//! A sum over the store's processes is not a counter: it drops when the store forgets an
//! exited process after its retention window, which Prometheus would read as a reset. The
//! [`Accumulator`] instead remembers each process's last energy and CPU time and adds only
//! increments to its groups, so a group's counter never decreases while the group lives. A
//! group with no process left in the store is removed (its series ends). The number of groups
//! of each kind is capped ([`MAX_GROUPS`]); increments of groups beyond the cap are counted in
//! `dropped_uj` instead of creating a series.

use std::{collections::HashMap, sync::Arc};

use super::{
    aggregate::PathOf,
    cgroup::{CgroupLabels, Runtime, labels},
};
use crate::{agent::store::Store, tasks::ProcessId};

/// Most groups of each kind kept (a node runs at most a few hundred pods).
pub const MAX_GROUPS: usize = 2_000;

/// A group's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Energy, µJ, cumulative while the group lives.
    pub energy_uj: u64,
    /// On-CPU ns, cumulative.
    pub cpu_time_ns: u64,
    /// Pod QoS class (pods and containers).
    pub qos: Option<&'static str>,
    /// Pod UID (containers).
    pub pod_uid: Option<String>,
    /// Runtime (containers).
    pub runtime: Option<Runtime>,
    /// Processes of the group in the store at the last observation.
    pub members: u64,
}

/// Group kinds exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// By pod UID.
    Pod,
    /// By container id.
    Container,
    /// By systemd service unit (outside pods and containers).
    Service,
}

/// Per-group monotonic counters, fed one store view at a time.
#[derive(Debug, Default)]
pub struct Accumulator {
    last: HashMap<ProcessId, (u64, u64)>,
    groups: HashMap<(Kind, String), Counter>,
    /// Energy of increments that found no room under [`MAX_GROUPS`], µJ.
    pub dropped_uj: u64,
}

fn keys(l: &CgroupLabels) -> impl Iterator<Item = (Kind, String)> + '_ {
    let pod = l.pod_uid.clone().map(|u| (Kind::Pod, u));
    let ctr = l.container_id.clone().map(|c| (Kind::Container, c));
    let svc = l
        .service
        .clone()
        .filter(|_| l.pod_uid.is_none() && l.container_id.is_none())
        .map(|s| (Kind::Service, s));
    pod.into_iter().chain(ctr).chain(svc)
}

impl Accumulator {
    /// An empty accumulator.
    pub fn new() -> Accumulator {
        Accumulator::default()
    }

    /// Adds what each process gained since the last call to its groups, then forgets
    /// processes the store no longer has and groups left without members.
    pub fn observe(&mut self, store: &Store, path_of: &mut PathOf<'_>) {
        for c in self.groups.values_mut() {
            c.members = 0;
        }
        let per_kind = |groups: &HashMap<(Kind, String), Counter>, k: Kind| {
            groups.keys().filter(|(kind, _)| *kind == k).count()
        };
        let mut counts =
            [Kind::Pod, Kind::Container, Kind::Service].map(|k| per_kind(&self.groups, k));
        // Increments summed per distinct path first: a node has far fewer cgroups than processes.
        let mut per_path: HashMap<Arc<str>, (u64, u64, u64)> = HashMap::new();
        for r in store.procs.values() {
            let (e0, c0) = self
                .last
                .insert(r.id, (r.energy_uj, r.cpu_time_ns))
                .unwrap_or((0, 0));
            let Some(path) = path_of(r) else { continue };
            let d = per_path.entry(path).or_default();
            d.0 = d.0.saturating_add(r.energy_uj.saturating_sub(e0));
            d.1 = d.1.saturating_add(r.cpu_time_ns.saturating_sub(c0));
            d.2 += 1;
        }
        for (path, (de, dc, members)) in per_path {
            let l = labels(&path);
            for key in keys(&l) {
                let slot = key.0 as usize;
                if !self.groups.contains_key(&key) {
                    if counts[slot] >= MAX_GROUPS {
                        self.dropped_uj = self.dropped_uj.saturating_add(de);
                        continue;
                    }
                    counts[slot] += 1;
                }
                let c = self.groups.entry(key).or_default();
                c.energy_uj = c.energy_uj.saturating_add(de);
                c.cpu_time_ns = c.cpu_time_ns.saturating_add(dc);
                c.qos = l.qos;
                c.pod_uid.clone_from(&l.pod_uid);
                c.runtime = l.runtime;
                c.members += members;
            }
        }
        self.last.retain(|id, _| store.procs.contains_key(id));
        self.groups.retain(|_, c| c.members > 0);
    }

    /// Groups of one kind, sorted by key.
    pub fn groups(&self, kind: Kind) -> Vec<(&str, &Counter)> {
        let mut v: Vec<(&str, &Counter)> = self
            .groups
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, key), c)| (key.as_str(), c))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
}
