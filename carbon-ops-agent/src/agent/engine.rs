//! The tick loop: at each tick instant, read energy and CPU accounting for that same instant,
//! difference, attribute, and apply to the store.
//!
//! Runs on its own thread (no async: it sleeps to absolute monotonic deadlines). The server
//! reads the store through [`Shared`]: root peers the latest tick, other peers a copy
//! published once per `resolution` (the RAPL side-channel mitigation).

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;

use super::store::{Clocks, ProcMeta, Store, ZoneView};
use crate::{
    attribution::{IdlePolicy, PackageEnergy, TickInput, attribute},
    energy::{Ticker, meter::EnergyTick, meter::Meter},
    tasks::{
        AttributionMode, ProcessId, TaskStats, boottime_now_ns, delta::Differ, monotonic_now_ns,
        procfs::live_meta,
    },
};

/// Facts about the running agent, fixed at start.
#[derive(Clone, Debug, Serialize)]
pub struct AgentInfo {
    /// carbon-ops version.
    pub version: &'static str,
    /// Random id; changes on every start.
    pub instance_id: String,
    /// `sysfs`, `msr` or `model`.
    pub energy_source: &'static str,
    /// Why that source (one line).
    pub energy_source_reason: String,
    /// `ebpf` or `procfs`.
    pub attribution_mode: &'static str,
    /// Why that mode, when it is not the one asked for.
    pub attribution_reason: Option<String>,
    /// Tick interval.
    pub interval_ms: u64,
    /// Idle policy.
    pub idle_policy: &'static str,
    /// Granularity served to non-root peers.
    pub resolution_ms: u64,
}

/// What the tick loop and the server share.
pub struct Shared {
    /// Fixed facts.
    pub info: AgentInfo,
    /// When the agent started.
    pub started: Instant,
    /// The latest tick (root peers).
    pub fine: Mutex<Store>,
    /// A copy refreshed every `resolution` (other peers).
    pub coarse: Mutex<Arc<Store>>,
    /// Ticks that fired late by 1 ms or more.
    pub late_ticks: AtomicU64,
    /// Snapshot failures (the tick's energy then goes unattributed).
    pub snapshot_errors: AtomicU64,
}

impl Shared {
    /// A fresh handle.
    pub fn new(info: AgentInfo, retention_s: f64) -> Shared {
        Shared {
            info,
            started: Instant::now(),
            fine: Mutex::new(Store::new(retention_s)),
            coarse: Mutex::new(Arc::new(Store::new(retention_s))),
            late_ticks: AtomicU64::new(0),
            snapshot_errors: AtomicU64::new(0),
        }
    }

    /// The store a peer may read: the latest for root, the coarse copy for others.
    pub fn view(&self, root: bool) -> Arc<Store> {
        if root {
            let fine = self.fine.lock().unwrap_or_else(|p| p.into_inner());
            Arc::new(fine.clone())
        } else {
            self.coarse
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        }
    }

    /// Runs `f` on the store a peer may read, without copying the latest one.
    pub fn with_view<R>(&self, root: bool, f: impl FnOnce(&Store) -> R) -> R {
        if root {
            let fine = self.fine.lock().unwrap_or_else(|p| p.into_inner());
            f(&fine)
        } else {
            let coarse = self
                .coarse
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            f(&coarse)
        }
    }
}

/// The loop's parts.
pub struct Engine {
    /// Energy.
    pub meter: Meter,
    /// CPU, memory and GPU telemetry.
    pub telemetry: crate::telemetry::Telemetry,
    /// CPU accounting.
    pub tasks: Box<dyn TaskStats>,
    /// Idle policy.
    pub policy: IdlePolicy,
    /// procfs root, for the comm and uid of live processes.
    pub proc_root: PathBuf,
    /// Shared with the server.
    pub shared: Arc<Shared>,
    /// Tick interval.
    pub interval: Duration,
    /// Where each exited process's final figures go (`--ledger-exits`), if anywhere.
    pub exit_log: Option<std::sync::mpsc::Sender<serde_json::Value>>,
    /// Non-root granularity.
    pub resolution: Duration,
    differ: Differ,
    first: bool,
    last_coarse_ns: u64,
}

impl Engine {
    /// Assembles an engine.
    #[expect(
        clippy::too_many_arguments,
        reason = "one constructor wiring every part of the loop"
    )]
    pub fn new(
        meter: Meter,
        telemetry: crate::telemetry::Telemetry,
        tasks: Box<dyn TaskStats>,
        policy: IdlePolicy,
        proc_root: PathBuf,
        shared: Arc<Shared>,
        interval: Duration,
        resolution: Duration,
    ) -> Engine {
        Engine {
            meter,
            telemetry,
            tasks,
            policy,
            proc_root,
            shared,
            interval,
            resolution,
            exit_log: None,
            differ: Differ::new(),
            first: true,
            last_coarse_ns: 0,
        }
    }

    /// The attribution mode of the CPU accounting.
    pub fn mode(&self) -> AttributionMode {
        self.tasks.mode()
    }

    /// Ticks until `stop` is set.
    pub fn run(mut self, stop: &AtomicBool) {
        let mut ticker = Ticker::new(self.interval);
        while !stop.load(Ordering::SeqCst) {
            let t = ticker.wait_next();
            if t.lateness_ns >= 1_000_000 {
                self.shared.late_ticks.fetch_add(1, Ordering::Relaxed);
            }
            self.step(t.actual_ns);
        }
    }

    /// One tick at the instant `at_ns` (CLOCK_MONOTONIC).
    pub fn step(&mut self, at_ns: u64) {
        let energy = self.meter.tick(at_ns);
        self.telemetry.tick(at_ns);
        self.telemetry.observe_energy(&energy);
        let snapshot = self.tasks.snapshot(at_ns);
        let clocks = Clocks {
            unix_now: unix_now(),
            mono_now_ns: monotonic_now_ns(),
            boot_now_ns: boottime_now_ns(),
        };
        let mut store = self.shared.fine.lock().unwrap_or_else(|p| p.into_inner());
        store.uncertainty_rel = energy.relative_uncertainty;
        store.telemetry = Arc::new(self.telemetry.view().clone());
        store.zones = zones(&energy);
        let delta = match snapshot {
            Ok(snap) => self.differ.diff(&snap),
            Err(e) => {
                tracing::warn!(error = %e, "CPU accounting snapshot failed; this tick's energy is unattributed");
                self.shared.snapshot_errors.fetch_add(1, Ordering::Relaxed);
                crate::tasks::delta::TickDelta {
                    from_ns: at_ns,
                    to_ns: at_ns,
                    ..Default::default()
                }
            }
        };
        if self.first {
            // The first snapshot is the baseline (procfs: whole lifetimes before the agent).
            self.first = false;
            store.at_unix = clocks.mono_to_unix(at_ns);
            return;
        }
        let packages: Vec<PackageEnergy> = energy
            .packages
            .iter()
            .map(|p| PackageEnergy {
                cpus: p.cpus.clone(),
                energy_uj: p.total_uj.0,
                no_basis: energy
                    .zones
                    .iter()
                    .any(|z| z.package == Some(p.package) && z.flags.recovered),
            })
            .collect();
        let attr = attribute(&TickInput {
            packages: &packages,
            host_uj: energy.host_uj.0,
            tasks: &delta.tasks,
            idle_ns: &delta.idle_ns,
            lost_ns: delta.lost_ns,
            policy: self.policy,
        });
        debug_assert!(attr.conserves());
        let root = self.proc_root.clone();
        let mut meta = |id: ProcessId| {
            live_meta(&root, id.pid)
                .map(|(comm, uid, ppid)| ProcMeta { comm, uid, ppid })
                .unwrap_or(ProcMeta {
                    comm: String::new(),
                    uid: u32::MAX,
                    ppid: 0,
                })
        };
        store.apply(&clocks, &delta, &attr, &mut meta);
        if let Some(log) = &self.exit_log {
            for e in &delta.exited {
                if let Some(r) = store.procs.get(&e.id) {
                    let mut m = r.fields();
                    m.insert("uncertainty_rel".into(), store.uncertainty_rel.into());
                    m.insert(
                        "energy_source".into(),
                        self.shared.info.energy_source.into(),
                    );
                    m.insert(
                        "attribution_mode".into(),
                        self.shared.info.attribution_mode.into(),
                    );
                    let _ = log.send(serde_json::Value::Object(m));
                }
            }
        }
        let res_ns = u64::try_from(self.resolution.as_nanos()).unwrap_or(u64::MAX);
        if at_ns.saturating_sub(self.last_coarse_ns) >= res_ns {
            self.last_coarse_ns = at_ns;
            let copy = Arc::new(store.clone());
            drop(store);
            *self.shared.coarse.lock().unwrap_or_else(|p| p.into_inner()) = copy;
        }
    }
}

fn zones(e: &EnergyTick) -> Vec<ZoneView> {
    e.zones
        .iter()
        .map(|z| ZoneView {
            name: z.name.clone(),
            kind: serde_json::to_value(z.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            package: z.package,
            energy_uj: z.cumulative_uj.0,
            stale: z.stale,
        })
        .collect()
}

/// Unix seconds now.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
