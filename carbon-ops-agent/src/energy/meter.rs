//! The meter: one source, one wrap-safe accumulator per zone, stale zones with backoff, and the
//! fold of zones into per-package and host energy without double counting.
//!
//! [`Meter::tick`] is called once per poller tick with the tick's monotonic instant; it never
//! panics. A zone whose read fails is marked stale and retried with exponential backoff; while
//! stale it contributes nothing (no energy is invented) and says so. When it comes back, the
//! delta covers the whole gap (it is measured by the counter, not invented) and is flagged
//! `recovered` with the span it covers, or `gap_flagged` if a full wrap was possible meanwhile.
//! Host rule: Σ package + Σ dram; core/uncore are inside their package, mmio zones duplicate a
//! package, psys is reported apart (it already contains the packages).

use super::counter::Counter;
use super::{EnergySource, EnergySourceKind, ZoneKind};
use crate::units::MicroJoules;
use serde::Serialize;

/// Backoff of stale zones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterConfig {
    /// First retry delay after a failed read.
    pub backoff_initial_ns: u64,
    /// Longest retry delay.
    pub backoff_max_ns: u64,
}

impl Default for MeterConfig {
    fn default() -> Self {
        MeterConfig {
            backoff_initial_ns: 100_000_000,
            backoff_max_ns: 10_000_000_000,
        }
    }
}

/// What happened to one zone's counter this tick.
pub type ZoneFlags = super::counter::CounterFlags;

/// One zone in one tick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ZoneTick {
    pub id: String,
    pub name: String,
    pub kind: ZoneKind,
    pub package: Option<u32>,
    /// Energy counted this tick.
    pub delta_uj: MicroJoules,
    /// Energy since the meter started; never decreases.
    pub cumulative_uj: MicroJoules,
    /// Nanoseconds `delta_uj` covers (normally the tick's elapsed time).
    pub span_ns: u64,
    /// The zone could not be read this tick (or is waiting for its retry).
    pub stale: bool,
    pub flags: ZoneFlags,
    /// The last read error while stale.
    pub error: Option<String>,
}

/// One package in one tick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PackageTick {
    pub package: u32,
    /// Logical CPUs of the package.
    pub cpus: Vec<u32>,
    /// Σ package zones of this package this tick.
    pub package_uj: MicroJoules,
    /// Σ DRAM zones of this package this tick (outside the package figure).
    pub dram_uj: MicroJoules,
    /// `package_uj + dram_uj`: this package's share of the host energy.
    pub total_uj: MicroJoules,
    /// A package or dram zone of this package was stale: the figures are incomplete.
    pub stale: bool,
}

/// Everything the meter learned at one tick instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnergyTick {
    /// The tick's monotonic instant (shared with the eBPF snapshot).
    pub at_monotonic_ns: u64,
    /// Nanoseconds since the previous tick (0 at the first).
    pub elapsed_ns: u64,
    pub energy_source: EnergySourceKind,
    /// Relative standard uncertainty of the package figures.
    pub relative_uncertainty: f64,
    pub zones: Vec<ZoneTick>,
    pub packages: Vec<PackageTick>,
    /// Host energy this tick without double counting (Σ package + Σ dram, or psys alone
    /// where there is no package zone).
    pub host_uj: MicroJoules,
    /// Platform (psys) energy this tick, where the platform has it.
    pub psys_uj: Option<MicroJoules>,
    /// A zone counted in `host_uj` was stale: the host figure is incomplete.
    pub host_stale: bool,
}

#[derive(Debug)]
struct ZoneState {
    counter: Counter,
    stale: bool,
    failures: u32,
    retry_at_ns: u64,
    error: Option<String>,
}

/// A source with its accumulators. `Send`, so it can be moved to the poller thread.
pub struct Meter {
    source: Box<dyn EnergySource>,
    config: MeterConfig,
    zones: Vec<ZoneState>,
    prev_at: Option<u64>,
}

const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<Meter>();
};

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("source", &self.source.describe())
            .field("zones", &self.zones)
            .finish()
    }
}

impl Meter {
    /// A meter over `source` with default backoff.
    pub fn new(source: Box<dyn EnergySource>) -> Meter {
        Meter::with_config(source, MeterConfig::default())
    }

    /// A meter over `source`.
    pub fn with_config(source: Box<dyn EnergySource>, config: MeterConfig) -> Meter {
        let zones = source
            .zones()
            .iter()
            .map(|z| ZoneState {
                counter: Counter::new(z.counter),
                stale: false,
                failures: 0,
                retry_at_ns: 0,
                error: None,
            })
            .collect();
        Meter {
            source,
            config,
            zones,
            prev_at: None,
        }
    }

    /// The source.
    pub fn source(&self) -> &dyn EnergySource {
        self.source.as_ref()
    }

    /// Which kind of source.
    pub fn kind(&self) -> EnergySourceKind {
        self.source.kind()
    }

    /// Read every zone at `at_monotonic_ns` and account it. Never panics.
    pub fn tick(&mut self, at_monotonic_ns: u64) -> EnergyTick {
        let at = at_monotonic_ns;
        let elapsed_ns = self.prev_at.map_or(0, |p| at.saturating_sub(p));
        self.prev_at = Some(at);
        if let Err(e) = self.source.begin_tick(at) {
            tracing::debug!(error = %e, "energy source could not sample this tick");
        }
        let mut zones = Vec::with_capacity(self.zones.len());
        for (i, state) in self.zones.iter_mut().enumerate() {
            let Some(info) = self.source.zones().get(i) else {
                continue;
            };
            let (id, name, kind, package) =
                (info.id.clone(), info.name.clone(), info.kind, info.package);
            let mut tick = ZoneTick {
                id,
                name,
                kind,
                package,
                delta_uj: MicroJoules(0),
                cumulative_uj: MicroJoules(state.counter.cumulative_uj()),
                span_ns: 0,
                stale: state.stale,
                flags: ZoneFlags::default(),
                error: None,
            };
            if state.stale && at < state.retry_at_ns {
                tick.error.clone_from(&state.error);
                zones.push(tick);
                continue;
            }
            let result = self
                .source
                .read_zone(i, at)
                .map_err(|e| e.to_string())
                .and_then(|raw| state.counter.observe(raw, at).map_err(|e| e.to_string()));
            match result {
                Ok(obs) => {
                    if state.stale {
                        tracing::info!(zone = %tick.id, gap_ns = obs.span_ns, "energy zone readable again");
                    }
                    if obs.reset {
                        tracing::warn!(zone = %tick.id, "energy counter reset detected; not counted");
                    }
                    if obs.gap_flagged {
                        tracing::warn!(zone = %tick.id, span_ns = obs.span_ns, "read gap allows a full counter wrap; energy is a lower bound");
                    }
                    tick.flags = ZoneFlags::observed(&obs, state.stale);
                    tick.delta_uj = MicroJoules(obs.delta_uj);
                    tick.cumulative_uj = MicroJoules(state.counter.cumulative_uj());
                    tick.span_ns = obs.span_ns;
                    tick.stale = false;
                    state.stale = false;
                    state.failures = 0;
                    state.error = None;
                }
                Err(e) => {
                    if !state.stale {
                        tracing::warn!(zone = %tick.id, error = %e, "energy zone unreadable; marked stale");
                    }
                    state.failures = state.failures.saturating_add(1);
                    let shift = state.failures.saturating_sub(1).min(32);
                    let delay = self
                        .config
                        .backoff_initial_ns
                        .saturating_mul(1u64 << shift)
                        .min(self.config.backoff_max_ns);
                    state.retry_at_ns = at.saturating_add(delay);
                    state.stale = true;
                    state.error = Some(e);
                    tick.stale = true;
                    tick.error.clone_from(&state.error);
                }
            }
            zones.push(tick);
        }
        self.fold(at, elapsed_ns, zones)
    }

    fn fold(&self, at: u64, elapsed_ns: u64, zones: Vec<ZoneTick>) -> EnergyTick {
        let mut packages: Vec<PackageTick> = self
            .source
            .packages()
            .iter()
            .map(|p| PackageTick {
                package: p.package,
                cpus: p.cpus.clone(),
                package_uj: MicroJoules(0),
                dram_uj: MicroJoules(0),
                total_uj: MicroJoules(0),
                stale: false,
            })
            .collect();
        let has_package = zones.iter().any(|z| z.kind == ZoneKind::Package);
        let mut host = MicroJoules(0);
        let mut host_stale = false;
        let mut psys: Option<MicroJoules> = None;
        for z in &zones {
            let counted = match z.kind {
                ZoneKind::Package | ZoneKind::Dram => true,
                ZoneKind::Psys => {
                    psys = Some(psys.unwrap_or_default().saturating_add(z.delta_uj));
                    !has_package
                }
                _ => false,
            };
            if !counted {
                continue;
            }
            host = host.saturating_add(z.delta_uj);
            host_stale |= z.stale;
            if let Some(p) = packages.iter_mut().find(|p| z.package == Some(p.package)) {
                match z.kind {
                    ZoneKind::Package => p.package_uj = p.package_uj.saturating_add(z.delta_uj),
                    ZoneKind::Dram => p.dram_uj = p.dram_uj.saturating_add(z.delta_uj),
                    _ => {}
                }
                p.total_uj = p.total_uj.saturating_add(z.delta_uj);
                p.stale |= z.stale;
            }
        }
        EnergyTick {
            at_monotonic_ns: at,
            elapsed_ns,
            energy_source: self.source.kind(),
            relative_uncertainty: self.source.relative_uncertainty(),
            zones,
            packages,
            host_uj: host,
            psys_uj: psys,
            host_stale,
        }
    }
}
