//! carbon-ops: per-process energy and carbon on Linux, exactly enough to be audited.
//!
//! The library behind the `carbon-ops-agent` daemon and the `carbon-ops` client. Data flows
//! one way, once per tick: energy sources ([`energy`]) and the kernel's CPU accounting
//! ([`tasks`], fed by [`ebpf`] or procfs) are read at the same instant, attribution splits
//! each package's energy between processes, the carbon estimator ([`carbon`]) turns energy
//! into emissions with uncertainty, and the ledger ([`ledger`]) keeps a tamper-evident record.
//! Pure logic has no I/O; I/O edges take their root paths as arguments.

pub mod agent;
pub mod attribution;
pub mod carbon;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod ebpf;
pub mod energy;
pub mod fleet;
pub mod ledger;
pub mod ledger_adapter;
pub mod protocol;
pub mod server;
pub mod tasks;
pub mod telemetry;
pub mod units;
pub mod ux;
