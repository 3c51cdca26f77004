//! Per-cgroup, per-container and per-pod sums of a [`Store`] (pure), with conservation.
//!
//! Every attributed microjoule lands in exactly one place: a group, `outside` (processes whose
//! cgroup is unknown or names no group of the kind asked), `hidden` (processes the caller's
//! filter excluded, e.g. another user's) or `departed` (processes the store already dropped
//! after their retention window: their energy stays in the host's `attributed` total). So
//! `sum(groups) + outside + hidden + departed == store.energy.attributed_uj`, checked by
//! [`Aggregation::conserves`]. Paths come from a resolver the caller passes (the
//! [`super::index::CgroupIndex`] in the agent, a map in tests).

use std::{collections::HashMap, sync::Arc};

use serde::{Deserialize, Serialize};

use super::cgroup::{CgroupLabels, labels};
use crate::agent::store::{ProcRecord, Store};

/// What to group processes by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The cgroup v2 path itself.
    #[default]
    Cgroup,
    /// The container id in the path.
    Container,
    /// The Kubernetes pod UID in the path.
    Pod,
}

impl GroupBy {
    /// Parses `cgroup`, `container` or `pod`.
    pub fn parse(s: &str) -> Option<GroupBy> {
        match s {
            "cgroup" => Some(GroupBy::Cgroup),
            "container" => Some(GroupBy::Container),
            "pod" => Some(GroupBy::Pod),
            _ => None,
        }
    }

    /// The group key of a path's labels, or `None` when the path names no such group.
    pub fn key(self, path: &str, l: &CgroupLabels) -> Option<String> {
        match self {
            GroupBy::Cgroup => Some(path.to_owned()),
            GroupBy::Container => l.container_id.clone(),
            GroupBy::Pod => l.pod_uid.clone(),
        }
    }
}

/// Energy, CPU time and process count of a set of processes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sums {
    /// Energy attributed, µJ.
    pub energy_uj: u64,
    /// On-CPU ns.
    pub cpu_time_ns: u64,
    /// Energy over the store's recent window (the last [`crate::agent::store::RING`] ticks), µJ.
    pub recent_uj: u64,
    /// Processes (exited ones still retained included).
    pub processes: u64,
    /// Of which still running.
    pub running: u64,
}

impl Sums {
    fn add(&mut self, r: &ProcRecord, tick: u64) {
        self.energy_uj = self.energy_uj.saturating_add(r.energy_uj);
        self.cpu_time_ns = self.cpu_time_ns.saturating_add(r.cpu_time_ns);
        self.recent_uj = self.recent_uj.saturating_add(r.recent_uj(tick));
        self.processes += 1;
        self.running += u64::from(r.exited_unix.is_none());
    }
}

/// One group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupRow {
    /// The key: a cgroup path, a container id or a pod UID.
    pub key: String,
    /// Labels read from the (first) member's path; for a pod, its pod UID and QoS class.
    pub labels: CgroupLabels,
    /// A member cgroup path (for `cgroup` the key itself).
    pub cgroup: String,
    /// The members' sums.
    pub sums: Sums,
}

/// A store summed per group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Aggregation {
    /// Grouping used.
    pub by: GroupBy,
    /// Groups, most energy first (ties by key).
    pub groups: Vec<GroupRow>,
    /// Processes in no group of this kind (unknown cgroup, or a path without a pod/container).
    pub outside: Sums,
    /// Processes the filter excluded.
    pub hidden: Sums,
    /// Energy of processes dropped from the store after retention, µJ.
    pub departed_uj: u64,
    /// The host's attributed total these add up to, µJ.
    pub attributed_uj: u64,
}

impl Aggregation {
    /// `sum(groups) + outside + hidden + departed == attributed`.
    pub fn conserves(&self) -> bool {
        let groups: u128 = self
            .groups
            .iter()
            .map(|g| u128::from(g.sums.energy_uj))
            .sum();
        groups
            + u128::from(self.outside.energy_uj)
            + u128::from(self.hidden.energy_uj)
            + u128::from(self.departed_uj)
            == u128::from(self.attributed_uj)
    }
}

/// Resolves a process to its cgroup v2 path (`None`: unknown).
pub type PathOf<'a> = dyn FnMut(&ProcRecord) -> Option<Arc<str>> + 'a;

/// Sums `store` per group of kind `by`. `include` filters processes (the rest are `hidden`).
pub fn aggregate(
    store: &Store,
    by: GroupBy,
    path_of: &mut PathOf<'_>,
    include: &dyn Fn(&ProcRecord) -> bool,
) -> Aggregation {
    let mut groups: HashMap<String, GroupRow> = HashMap::new();
    let (mut outside, mut hidden) = (Sums::default(), Sums::default());
    let mut all: u128 = 0;
    let mut label_cache: HashMap<Arc<str>, CgroupLabels> = HashMap::new();
    for r in store.procs.values() {
        all += u128::from(r.energy_uj);
        if !include(r) {
            hidden.add(r, store.tick);
            continue;
        }
        let Some(path) = path_of(r) else {
            outside.add(r, store.tick);
            continue;
        };
        let l = label_cache
            .entry(path.clone())
            .or_insert_with(|| labels(&path));
        let Some(key) = by.key(&path, l) else {
            outside.add(r, store.tick);
            continue;
        };
        let row = groups.entry(key.clone()).or_insert_with(|| GroupRow {
            key,
            labels: group_labels(by, l),
            cgroup: path.to_string(),
            sums: Sums::default(),
        });
        row.sums.add(r, store.tick);
    }
    let attributed = store.energy.attributed_uj;
    let departed = u128::from(attributed).saturating_sub(all);
    let mut groups: Vec<GroupRow> = groups.into_values().collect();
    groups.sort_by(|a, b| {
        b.sums
            .energy_uj
            .cmp(&a.sums.energy_uj)
            .then_with(|| a.key.cmp(&b.key))
    });
    Aggregation {
        by,
        groups,
        outside,
        hidden,
        departed_uj: u64::try_from(departed).unwrap_or(u64::MAX),
        attributed_uj: attributed,
    }
}

/// The labels a group keeps: a pod's members differ in container, so a pod keeps only pod ones.
fn group_labels(by: GroupBy, l: &CgroupLabels) -> CgroupLabels {
    match by {
        GroupBy::Pod => CgroupLabels {
            pod_uid: l.pod_uid.clone(),
            qos: l.qos,
            ..CgroupLabels::default()
        },
        _ => l.clone(),
    }
}

/// What `cgroup {path|pod_uid|pod|container_id}` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupQuery {
    /// A cgroup path: the cgroup and everything below it.
    pub path: Option<String>,
    /// A pod UID (dashes or underscores).
    pub pod_uid: Option<String>,
    /// A pod as `namespace/name`; the caller resolves it to `pod_uid` with the pod directory
    /// ([`query`] does not read it).
    #[serde(default)]
    pub pod: Option<String>,
    /// A container id, or a prefix of one (`docker ps` prints 12 digits).
    pub container_id: Option<String>,
}

/// One process of a queried group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Member {
    /// PID.
    pub pid: u32,
    /// Name.
    pub comm: String,
    /// Its cgroup path.
    pub cgroup: String,
    /// Energy, µJ.
    pub energy_uj: u64,
    /// On-CPU ns.
    pub cpu_time_ns: u64,
    /// Exit time, Unix seconds.
    pub exited: Option<f64>,
}

/// The answer to a [`CgroupQuery`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupDetail {
    /// Sums over the members.
    pub sums: Sums,
    /// Members, most energy first, at most `max_members`.
    pub members: Vec<Member>,
    /// Labels of the first member's path.
    pub labels: CgroupLabels,
}

/// Does `path` lie at or below `prefix`?
fn under(path: &str, prefix: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    p.is_empty()
        || path == p
        || path
            .strip_prefix(p)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Answers a query; `None` when the query names nothing (no field set) or no process matches.
pub fn query(
    store: &Store,
    q: &CgroupQuery,
    path_of: &mut PathOf<'_>,
    include: &dyn Fn(&ProcRecord) -> bool,
    max_members: usize,
) -> Option<GroupDetail> {
    if q.path.is_none() && q.pod_uid.is_none() && q.container_id.is_none() {
        return None;
    }
    let want_pod = q
        .pod_uid
        .as_ref()
        .map(|u| u.replace('_', "-").to_ascii_lowercase());
    let want_ctr = q.container_id.as_ref().map(|c| c.to_ascii_lowercase());
    let mut sums = Sums::default();
    let mut members = Vec::new();
    let mut first_labels = None;
    for r in store.procs.values().filter(|r| include(r)) {
        let Some(path) = path_of(r) else { continue };
        let l = labels(&path);
        let ok = q.path.as_ref().is_none_or(|p| under(&path, p))
            && want_pod
                .as_ref()
                .is_none_or(|u| l.pod_uid.as_ref() == Some(u))
            && want_ctr.as_ref().is_none_or(|c| {
                l.container_id
                    .as_ref()
                    .is_some_and(|id| id.starts_with(c.as_str()))
            });
        if !ok {
            continue;
        }
        sums.add(r, store.tick);
        first_labels.get_or_insert(l);
        members.push(Member {
            pid: r.id.pid,
            comm: r.comm.clone(),
            cgroup: path.to_string(),
            energy_uj: r.energy_uj,
            cpu_time_ns: r.cpu_time_ns,
            exited: r.exited_unix,
        });
    }
    let labels = first_labels?;
    members.sort_by(|a, b| b.energy_uj.cmp(&a.energy_uj).then(a.pid.cmp(&b.pid)));
    members.truncate(max_members);
    Some(GroupDetail {
        sums,
        members,
        labels,
    })
}
