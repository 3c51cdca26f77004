//! Prometheus text exposition (format 0.0.4) of a [`Store`] (pure): host energy per zone,
//! the attributed / idle / unattributed buckets, per-pod, per-container and per-service
//! counters from the [`Accumulator`], and per-process counters for the top N only. Pod and
//! container series carry `namespace` and `pod` from the [`PodDirectory`] (empty when the pod
//! is not in it, or pod names are off), so every series of a family has the same label names.
//!
//! Cardinality is bounded: one series per zone and bucket, at most
//! [`super::accumulate::MAX_GROUPS`] pods, containers and services each (groups leave with
//! their last process), and `process_top_n` processes (0 turns them off). Energy is printed
//! in joules from integer microjoules, exactly (`12.000001`), never through a float.
//! `docs/metrics.md` is the reference.

use std::fmt::Write;

use super::{
    accumulate::{Accumulator, Counter, Kind},
    pods::PodDirectory,
};
use crate::agent::{engine::AgentInfo, store::Store};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Processes exported individually (most cumulative energy first); 0: none.
    pub process_top_n: usize,
}

impl Default for MetricsConfig {
    fn default() -> MetricsConfig {
        MetricsConfig { process_top_n: 10 }
    }
}

/// Microjoules as exact decimal joules.
pub fn joules(uj: u64) -> String {
    format!("{}.{:06}", uj / 1_000_000, uj % 1_000_000)
}

/// Nanoseconds as exact decimal seconds.
pub fn seconds(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Escapes a label value (`\`, `"` and newline).
pub fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Builds the exposition text; one family at a time.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

fn group_labels<'a>(
    kind: Kind,
    key: &'a str,
    c: &'a Counter,
    pods: &'a PodDirectory,
) -> Vec<(&'static str, &'a str)> {
    let named = |uid: Option<&str>| {
        let p = uid.and_then(|u| pods.get(u));
        [
            ("namespace", p.map_or("", |p| p.namespace.as_str())),
            ("pod", p.map_or("", |p| p.name.as_str())),
        ]
    };
    match kind {
        Kind::Pod => {
            let mut l = vec![("pod_uid", key), ("qos", c.qos.unwrap_or(""))];
            l.extend(named(Some(key)));
            l
        }
        Kind::Container => {
            let mut l = vec![
                ("container_id", key),
                ("pod_uid", c.pod_uid.as_deref().unwrap_or("")),
                ("runtime", c.runtime.map_or("", |r| r.as_str())),
            ];
            l.extend(named(c.pod_uid.as_deref()));
            l
        }
        Kind::Service => vec![("service", key)],
    }
}

/// Renders the whole exposition; pod names and namespaces come from `pods`.
pub fn render(
    info: &AgentInfo,
    store: &Store,
    acc: &Accumulator,
    cfg: &MetricsConfig,
    pods: &PodDirectory,
) -> String {
    let mut o = Out(String::with_capacity(4096));
    o.family(
        "carbon_ops_info",
        "gauge",
        "Agent facts; always 1. energy_source: sysfs, msr or model (model is an estimate, not a measurement).",
    );
    o.sample(
        "carbon_ops_info",
        &[
            ("version", info.version),
            ("energy_source", info.energy_source),
            ("attribution_mode", info.attribution_mode),
            ("idle_policy", info.idle_policy),
        ],
        "1",
    );
    o.family(
        "carbon_ops_host_energy_joules_total",
        "counter",
        "Host energy per RAPL zone since the agent started, wraparound corrected.",
    );
    for z in &store.zones {
        o.sample(
            "carbon_ops_host_energy_joules_total",
            &[("zone", &z.name), ("kind", &z.kind)],
            &joules(z.energy_uj),
        );
    }
    o.family(
        "carbon_ops_zone_stale",
        "gauge",
        "1 while a zone cannot be read (its counter then stands still).",
    );
    for z in &store.zones {
        o.sample(
            "carbon_ops_zone_stale",
            &[("zone", &z.name)],
            if z.stale { "1" } else { "0" },
        );
    }
    let e = &store.energy;
    o.family(
        "carbon_ops_energy_joules_total",
        "counter",
        "Host energy by where attribution put it; the three buckets add up to the host total exactly.",
    );
    for (bucket, uj) in [
        ("attributed", e.attributed_uj),
        ("idle", e.idle_uj),
        ("unattributed", e.unattributed_uj),
    ] {
        o.sample(
            "carbon_ops_energy_joules_total",
            &[("bucket", bucket)],
            &joules(uj),
        );
    }
    o.family(
        "carbon_ops_host_cpu_busy_seconds_total",
        "counter",
        "On-CPU time of all processes the agent accounted for.",
    );
    o.sample(
        "carbon_ops_host_cpu_busy_seconds_total",
        &[],
        &seconds(store.host_busy_ns),
    );
    o.family(
        "carbon_ops_energy_uncertainty_ratio",
        "gauge",
        "Relative standard uncertainty (1 sigma) of the energy source.",
    );
    o.sample(
        "carbon_ops_energy_uncertainty_ratio",
        &[],
        &format!("{}", store.uncertainty_rel),
    );
    o.family(
        "carbon_ops_processes",
        "gauge",
        "Processes known to the agent (exited ones within retention included).",
    );
    o.sample("carbon_ops_processes", &[], &store.procs.len().to_string());
    o.family(
        "carbon_ops_last_tick_timestamp_seconds",
        "gauge",
        "Unix time of the tick these figures are from.",
    );
    o.sample(
        "carbon_ops_last_tick_timestamp_seconds",
        &[],
        &format!("{:.3}", store.at_unix),
    );
    for (kind, what) in [
        (Kind::Pod, "pod"),
        (Kind::Container, "container"),
        (Kind::Service, "service"),
    ] {
        let groups = acc.groups(kind);
        let name = format!("carbon_ops_{what}_energy_joules_total");
        o.family(
            &name,
            "counter",
            &format!("Energy attributed to the processes of each {what}, from the cgroup path."),
        );
        for (key, c) in &groups {
            o.sample(
                &name,
                &group_labels(kind, key, c, pods),
                &joules(c.energy_uj),
            );
        }
        let name = format!("carbon_ops_{what}_cpu_seconds_total");
        o.family(
            &name,
            "counter",
            &format!("On-CPU time of the processes of each {what}."),
        );
        for (key, c) in &groups {
            let labels = group_labels(kind, key, c, pods);
            o.sample(&name, &labels, &seconds(c.cpu_time_ns));
        }
    }
    o.family(
        "carbon_ops_dropped_energy_joules_total",
        "counter",
        "Energy of groups not exported because the per-kind series cap was reached.",
    );
    o.sample(
        "carbon_ops_dropped_energy_joules_total",
        &[],
        &joules(acc.dropped_uj),
    );
    let mut top: Vec<_> = store.procs.values().collect();
    top.sort_by(|a, b| b.energy_uj.cmp(&a.energy_uj).then(a.id.cmp(&b.id)));
    top.truncate(cfg.process_top_n);
    if !top.is_empty() {
        o.family(
            "carbon_ops_process_energy_joules_total",
            "counter",
            "Energy of the top N processes by cumulative energy (--metrics-top-processes).",
        );
        for r in &top {
            let pid = r.id.pid.to_string();
            o.sample(
                "carbon_ops_process_energy_joules_total",
                &[("pid", &pid), ("comm", &r.comm)],
                &joules(r.energy_uj),
            );
        }
        o.family(
            "carbon_ops_process_cpu_seconds_total",
            "counter",
            "On-CPU time of the same top N processes.",
        );
        for r in &top {
            let pid = r.id.pid.to_string();
            o.sample(
                "carbon_ops_process_cpu_seconds_total",
                &[("pid", &pid), ("comm", &r.comm)],
                &seconds(r.cpu_time_ns),
            );
        }
    }
    o.0
}
