//! Fleet view: what a node's processes add up to per cgroup, container and pod, and the
//! Prometheus endpoint that exports it.
//!
//! Data flows one way. [`index::CgroupIndex`] (thin I/O) turns the cgroup v2 ids the eBPF
//! programs report into paths, and [`resolver::Resolver`] falls back to `/proc/<pid>/cgroup`
//! where no id is known; [`cgroup::labels`] (pure) reads Kubernetes pod UIDs, container ids
//! and systemd units out of those paths; [`aggregate`] (pure) sums a
//! [`crate::agent::store::Store`] per group, conserving energy; [`accumulate`] (pure) keeps
//! per-group counters that never go backwards; [`metrics`] (pure) renders the Prometheus text
//! format and [`http`] serves it. [`service::Fleet`] is what the socket ops and the endpoint
//! share, and [`wiring`] holds the agent's flags and the server start. Optionally
//! (`--kubelet-pods-url`), [`kubelet`] (thin I/O) fetches the node's pod list and [`pods`]
//! (pure) turns it into names and namespaces by pod UID; without it, labels come from the
//! cgroup path alone.

pub mod accumulate;
pub mod aggregate;
pub mod cgroup;
pub mod http;
pub mod index;
pub mod kubelet;
pub mod metrics;
pub mod pods;
pub mod resolver;
pub mod service;
pub mod wiring;
