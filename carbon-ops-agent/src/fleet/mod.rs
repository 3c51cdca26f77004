//! Fleet view: what a node's processes add up to per cgroup, container and pod, and the
//! Prometheus endpoint that exports it.
//!
//! Data flows one way. [`index::CgroupIndex`] (thin I/O) turns the cgroup v2 ids the eBPF
//! programs report into paths; [`cgroup::labels`] (pure) reads Kubernetes pod UIDs, container
//! ids and systemd units out of those paths; [`aggregate`] (pure) sums a
//! [`crate::agent::store::Store`] per group, conserving energy; [`metrics`] (pure) renders the
//! Prometheus text format and [`http`] serves it. Without kubelet enrichment, labels come from
//! the cgroup path alone.

pub mod accumulate;
pub mod aggregate;
pub mod cgroup;
pub mod http;
pub mod index;
pub mod metrics;
pub mod resolver;
pub mod service;
pub mod wiring;
