//! The fleet view as the agent serves it: one [`Fleet`] shared by the socket ops
//! (`cgroup`, `top` by pod/container/cgroup) and the metrics endpoint.
//!
//! Metrics are rendered from the copy of the store published once per `resolution` (the
//! same one non-root socket peers get): the endpoint is unauthenticated, and fine-grained
//! energy readings are a side channel (PLATYPUS). The resolver and the accumulator sit
//! behind one mutex, so concurrent scrapes and queries each see one consistent state. Pod
//! names and namespaces come from the [`PodNames`] directory (empty unless a
//! [`super::kubelet::Refresher`] feeds it): answers carry `namespace` and `pod_name`, null for
//! pods it does not know.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{
    accumulate::Accumulator,
    aggregate::{CgroupQuery, GroupBy, aggregate, query},
    kubelet::PodNames,
    metrics::{MetricsConfig, render},
    pods::{PodDirectory, split_pod_ref},
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

/// The `cgroup` op's `not_found` message (all a non-root peer learns about a pod name).
const NO_MATCH: &str = "no known process matches (check the path or UID; exited processes are kept only for the retention window)";

struct State {
    resolver: Resolver,
    acc: Accumulator,
}

/// Shared fleet state.
pub struct Fleet {
    shared: Arc<Shared>,
    state: Mutex<State>,
    cfg: MetricsConfig,
    pods: Arc<PodNames>,
}

/// `namespace` and `pod_name` of a pod UID, null when unknown.
fn pod_fields(pods: &PodDirectory, uid: Option<&str>) -> (Value, Value) {
    match uid.and_then(|u| pods.get(u)) {
        Some(p) => (json!(p.namespace), json!(p.name)),
        None => (Value::Null, Value::Null),
    }
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
            pods: Arc::new(PodNames::default()),
        }
    }

    /// The pod-name directory this view reads (a refresher publishes into it).
    pub fn pod_names(&self) -> &Arc<PodNames> {
        &self.pods
    }

    /// The UID of a `namespace/name` pod reference. Only root is told that a name is not in
    /// the pod list (others get [`NO_MATCH`], so they cannot probe for pod names).
    fn resolve_pod(
        &self,
        root: bool,
        pods: &PodDirectory,
        pod: &str,
    ) -> Result<String, ProtoError> {
        let (ns, name) = split_pod_ref(pod).ok_or_else(|| {
            ProtoError::new("bad_request", "`pod` is `namespace/name` (e.g. shop/web-0)")
        })?;
        if !self.pods.configured() {
            return Err(ProtoError::new(
                "unavailable",
                "pod names are off: start the agent with --kubelet-pods-url (docs/deploy-kubernetes.md), or ask by `pod_uid`",
            ));
        }
        pods.uid_of(ns, name).map(str::to_owned).ok_or_else(|| {
            if !root {
                return ProtoError::new("not_found", NO_MATCH);
            }
            ProtoError::new(
                "not_found",
                format!(
                    "no pod {ns}/{name} in the kubelet's pod list (fetched every --kubelet-refresh; the agent's log says if it cannot be)"
                ),
            )
        })
    }

    /// The Prometheus text for one scrape.
    pub fn render_metrics(&self) -> String {
        let store = self.shared.view(false);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State { resolver, acc } = &mut *st;
        acc.observe(&store, &mut |r| resolver.path_of(r));
        resolver.prune(&store);
        render(
            &self.shared.info,
            &store,
            acc,
            &self.cfg,
            &self.pods.current(),
        )
    }

    /// `cgroup {path|pod_uid|pod|container_id}`: sums and members of the processes matched.
    /// Non-root peers see only their own processes (from the coarse copy).
    pub fn cgroup_op(&self, root: bool, uid: u32, q: &CgroupQuery) -> Result<Value, ProtoError> {
        if q.path.is_none() && q.pod_uid.is_none() && q.pod.is_none() && q.container_id.is_none() {
            return Err(ProtoError::new(
                "bad_request",
                "`cgroup` needs `path`, `pod_uid`, `pod` or `container_id`",
            ));
        }
        let pods = self.pods.current();
        let mut q = q.clone();
        if let Some(pod) = q.pod.take() {
            let found = self.resolve_pod(root, &pods, &pod)?;
            let asked = q
                .pod_uid
                .as_ref()
                .map(|u| u.replace('_', "-").to_ascii_lowercase());
            if asked.is_some_and(|u| u != found) {
                let why = if root {
                    format!("`pod` {pod} has UID {found}, not the `pod_uid` asked for")
                } else {
                    NO_MATCH.to_owned()
                };
                return Err(ProtoError::new("not_found", why));
            }
            q.pod_uid = Some(found);
        }
        let q = &q;
        let include = |r: &ProcRecord| root || r.uid == uid;
        let detail = self.shared.with_view(root, |s| {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            query(s, q, &mut |r| st.resolver.path_of(r), &include, MAX_MEMBERS)
        });
        let d = detail.ok_or_else(|| ProtoError::new("not_found", NO_MATCH))?;
        let (namespace, pod_name) = pod_fields(&pods, d.labels.pod_uid.as_deref());
        Ok(json!({
            "labels": d.labels,
            "namespace": namespace,
            "pod_name": pod_name,
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
        let pods = self.pods.current();
        let rows: Vec<Value> = groups
            .iter()
            .take(n)
            .map(|g| {
                let (namespace, pod_name) = pod_fields(&pods, g.labels.pod_uid.as_deref());
                json!({
                    "key": g.key,
                    "labels": g.labels,
                    "namespace": namespace,
                    "pod_name": pod_name,
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
        let named = match (g["namespace"].as_str(), g["pod_name"].as_str()) {
            (Some(ns), Some(name)) if by == "pod" => Some(format!("{ns}/{name}")),
            _ => None,
        };
        let key = match &named {
            Some(n) => n.as_str(),
            None if by == "container" && key.len() > 12 => &key[..12],
            None => key,
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
    for (name, x) in [
        ("namespace", &v["namespace"]),
        ("pod", &v["pod_name"]),
        ("pod uid", &l["pod_uid"]),
        ("qos", &l["qos"]),
        ("container", &l["container_id"]),
        ("runtime", &l["runtime"]),
        ("service", &l["service"]),
    ] {
        if let Some(x) = x.as_str() {
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
