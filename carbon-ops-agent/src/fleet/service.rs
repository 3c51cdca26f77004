//! The fleet view as the agent serves it: one [`Fleet`] shared by the socket ops
//! (`cgroup`, `top` by pod/container/cgroup) and the metrics endpoint.
//!
//! Metrics are rendered from the copy of the store published once per `resolution` (the
//! same one non-root socket peers get): the endpoint is unauthenticated, and fine-grained
//! energy readings are a side channel (PLATYPUS). The resolver and the accumulator sit
//! behind one mutex, so concurrent scrapes and queries each see one consistent state.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{
    accumulate::Accumulator,
    aggregate::{CgroupQuery, GroupBy, aggregate, query},
    metrics::{MetricsConfig, render},
    resolver::Resolver,
};
use crate::{
    agent::{
        engine::Shared,
        store::{ProcRecord, RING},
    },
    protocol::ProtoError,
};

/// Most members listed by the `cgroup` op.
pub const MAX_MEMBERS: usize = 100;

struct State {
    resolver: Resolver,
    acc: Accumulator,
}

/// Shared fleet state.
pub struct Fleet {
    shared: Arc<Shared>,
    state: Mutex<State>,
    cfg: MetricsConfig,
}

impl Fleet {
    /// A fleet view over `shared`, resolving paths with `resolver`.
    pub fn new(shared: Arc<Shared>, resolver: Resolver, cfg: MetricsConfig) -> Fleet {
        Fleet {
            shared,
            state: Mutex::new(State {
                resolver,
                acc: Accumulator::new(),
            }),
            cfg,
        }
    }

    /// The Prometheus text for one scrape.
    pub fn render_metrics(&self) -> String {
        let store = self.shared.view(false);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State { resolver, acc } = &mut *st;
        acc.observe(&store, &mut |r| resolver.path_of(r));
        resolver.prune(&store);
        render(&self.shared.info, &store, acc, &self.cfg)
    }

    /// `cgroup {path|pod_uid|container_id}`: sums and members of the processes matched.
    /// Non-root peers see only their own processes (from the coarse copy).
    pub fn cgroup_op(&self, root: bool, uid: u32, q: &CgroupQuery) -> Result<Value, ProtoError> {
        if q.path.is_none() && q.pod_uid.is_none() && q.container_id.is_none() {
            return Err(ProtoError::new(
                "bad_request",
                "`cgroup` needs `path`, `pod_uid` or `container_id`",
            ));
        }
        let include = |r: &ProcRecord| root || r.uid == uid;
        let detail = self.shared.with_view(root, |s| {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            query(s, q, &mut |r| st.resolver.path_of(r), &include, MAX_MEMBERS)
        });
        let d = detail.ok_or_else(|| {
            ProtoError::new(
                "not_found",
                "no known process matches (check the path or UID; exited processes are kept only for the retention window)",
            )
        })?;
        Ok(json!({
            "labels": d.labels,
            "energy_uj": d.sums.energy_uj,
            "cpu_time_ns": d.sums.cpu_time_ns,
            "processes": d.sums.processes,
            "running": d.sums.running,
            "members": d.members,
            "energy_source": self.shared.info.energy_source,
        }))
    }

    /// `top` grouped by pod, container or cgroup: the `n` groups using the most power.
    pub fn top_groups(&self, root: bool, uid: u32, by: GroupBy, n: usize) -> Value {
        let include = |r: &ProcRecord| root || r.uid == uid;
        let window_s = self.shared.info.interval_ms as f64 / 1000.0 * RING as f64;
        let agg = self.shared.with_view(root, |s| {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            aggregate(s, by, &mut |r| st.resolver.path_of(r), &include)
        });
        let mut groups = agg.groups.clone();
        groups.sort_by(|a, b| {
            b.sums
                .recent_uj
                .cmp(&a.sums.recent_uj)
                .then(b.sums.energy_uj.cmp(&a.sums.energy_uj))
        });
        let rows: Vec<Value> = groups
            .iter()
            .take(n)
            .map(|g| {
                json!({
                    "key": g.key,
                    "labels": g.labels,
                    "cgroup": g.cgroup,
                    "power_w": g.sums.recent_uj as f64 / 1e6 / window_s,
                    "energy_uj": g.sums.energy_uj,
                    "cpu_time_ns": g.sums.cpu_time_ns,
                    "processes": g.sums.processes,
                    "running": g.sums.running,
                })
            })
            .collect();
        json!({
            "by": by,
            "window_s": window_s,
            "energy_source": self.shared.info.energy_source,
            "groups": rows,
            "outside": agg.outside,
            "hidden_uj": agg.hidden.energy_uj,
            "departed_uj": agg.departed_uj,
            "attributed_uj": agg.attributed_uj,
        })
    }
}

/// Human rendering of a grouped `top` answer (for the CLI).
pub fn render_top_groups(v: &Value) -> String {
    let by = v["by"].as_str().unwrap_or("group");
    let mut s = format!(
        "{:<40} {:>10} {:>14} {:>10} {:>6}\n",
        by.to_uppercase(),
        "POWER (W)",
        "ENERGY (J)",
        "CPU (s)",
        "PROCS"
    );
    let f = |x: &Value| x.as_f64().unwrap_or(0.0);
    for g in v["groups"].as_array().into_iter().flatten() {
        let key = g["key"].as_str().unwrap_or("?");
        let key = if by == "container" && key.len() > 12 {
            &key[..12]
        } else {
            key
        };
        s += &format!(
            "{:<40} {:>10.3} {:>14.3} {:>10.2} {:>6}\n",
            key,
            f(&g["power_w"]),
            f(&g["energy_uj"]) / 1e6,
            f(&g["cpu_time_ns"]) / 1e9,
            g["processes"].as_u64().unwrap_or(0)
        );
    }
    s += &format!(
        "outside any {by}: {:.3} J; departed (beyond retention): {:.3} J\n",
        f(&v["outside"]["energy_uj"]) / 1e6,
        f(&v["departed_uj"]) / 1e6
    );
    s
}

/// Human rendering of a `cgroup` answer (for the CLI).
pub fn render_cgroup(v: &Value) -> String {
    let f = |x: &Value| x.as_f64().unwrap_or(0.0);
    let l = &v["labels"];
    let mut s = String::new();
    for (name, key) in [
        ("pod uid", "pod_uid"),
        ("qos", "qos"),
        ("container", "container_id"),
        ("runtime", "runtime"),
        ("service", "service"),
    ] {
        if let Some(x) = l[key].as_str() {
            s += &format!("{name:<15} {x}\n");
        }
    }
    s += &format!(
        "energy          {:.3} J\ncpu time        {:.3} s\nprocesses       {} ({} running)\n\n{:>8} {:<16} {:>14} {:>10}  CGROUP\n",
        f(&v["energy_uj"]) / 1e6,
        f(&v["cpu_time_ns"]) / 1e9,
        v["processes"].as_u64().unwrap_or(0),
        v["running"].as_u64().unwrap_or(0),
        "PID",
        "COMM",
        "ENERGY (J)",
        "CPU (s)"
    );
    for m in v["members"].as_array().into_iter().flatten() {
        s += &format!(
            "{:>8} {:<16} {:>14.3} {:>10.2}  {}\n",
            m["pid"].as_u64().unwrap_or(0),
            m["comm"].as_str().unwrap_or("?"),
            f(&m["energy_uj"]) / 1e6,
            f(&m["cpu_time_ns"]) / 1e9,
            m["cgroup"].as_str().unwrap_or("?")
        );
    }
    s
}
