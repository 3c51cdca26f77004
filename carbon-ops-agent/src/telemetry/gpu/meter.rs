//! The GPU meter: one [`GpuSource`], one wrap-safe accumulator per device, and each window's
//! per-process split.
//!
//! The device's energy counter (mJ, `u64`, counting from driver load) is differenced by the
//! same [`Counter`] as the RAPL zones, so the same rules apply: a wrap is counted exactly, a
//! fall no wrap explains (driver reload) counts only what the new value plausibly holds, a
//! rise beyond the board's power limit counts nothing. Where the counter is `NotSupported`
//! (pre-Volta boards) the meter integrates power samples with the trapezoid rule instead,
//! marked [`EnergyMethod::PowerIntegration`] with a larger uncertainty. The counter's modulus
//! is taken as `2^64 − 1` (the accumulator's range); at 1 kW it takes 5.8 × 10^8 years to
//! reach it. Never panics: a failed read marks the device stale and the next good reading's
//! energy, which spans the gap, is left unattributed.

use serde::Serialize;

use super::{
    DeviceSample, GpuError, GpuSource, MigInstance, ProcessSample,
    attrib::{DeviceWindow, GpuAttribution, split_device},
};
use crate::energy::counter::{Counter, CounterSpec};

/// Relative standard uncertainty of energy from the device counter (NVML documents board
/// power within ±5 %).
pub const COUNTER_UNCERTAINTY: f64 = 0.05;
/// Relative standard uncertainty of energy from integrated power samples: ±5 % on each sample
/// plus the unseen variation between samples.
pub const INTEGRATED_UNCERTAINTY: f64 = 0.15;
/// How long the last window's SM samples stand in for a window without any, ns (1 s):
/// NVML refreshes per-process utilisation every 1/6 s to 1 s depending on the board, so
/// most 100 ms ticks see no new sample.
pub const SAMPLE_CARRY_NS: u64 = 1_000_000_000;
/// Power bound used when a device reports no power limit, mW (above any current board).
pub const DEFAULT_MAX_POWER_MW: u64 = 2_000_000;

/// How a device's energy was measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnergyMethod {
    /// `nvmlDeviceGetTotalEnergyConsumption`, differenced.
    #[default]
    Counter,
    /// Power samples integrated over time (the counter is not supported).
    PowerIntegration,
}

/// What happened to a device's energy this tick (the same flags as a RAPL zone's).
pub type GpuFlags = crate::energy::counter::CounterFlags;

/// One device in one tick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceTick {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    /// Energy this tick, µJ.
    pub energy_uj: u64,
    /// Energy since the meter started, µJ; never decreases.
    pub cumulative_uj: u64,
    /// Nanoseconds `energy_uj` covers.
    pub span_ns: u64,
    pub method: EnergyMethod,
    pub relative_uncertainty: f64,
    pub flags: GpuFlags,
    /// The energy could not be read this tick.
    pub stale: bool,
    pub sample: DeviceSample,
    pub mig: Vec<MigInstance>,
    pub attribution: GpuAttribution,
    /// Read errors of this tick, one line each.
    pub errors: Vec<String>,
}

/// Every device at one tick instant.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GpuTick {
    pub at_ns: u64,
    pub devices: Vec<DeviceTick>,
}

#[derive(Debug)]
struct DeviceState {
    counter: Counter,
    method: EnergyMethod,
    stale: bool,
    /// Integration: last power sample `(mW, at_ns)`, Σ (p0 + p1)·dt in mW·ns, and µJ given.
    last_power: Option<(u64, u64)>,
    twice_mw_ns: u128,
    integrated_uj: u64,
    /// The last non-empty window's samples and the tick they arrived at.
    last_samples: Vec<ProcessSample>,
    last_samples_at: u64,
}

/// A GPU source with its accumulators. `Send`.
pub struct GpuMeter {
    source: Box<dyn GpuSource>,
    devices: Vec<DeviceState>,
}

impl std::fmt::Debug for GpuMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuMeter")
            .field("source", &self.source.describe())
            .field("devices", &self.devices)
            .finish()
    }
}

/// The counter spec of a device counter in mJ bounded by twice `max_power_mw`.
pub fn device_counter_spec(max_power_mw: u64) -> CounterSpec {
    let max = if max_power_mw == 0 {
        DEFAULT_MAX_POWER_MW
    } else {
        max_power_mw
    };
    CounterSpec {
        modulus: u64::MAX,
        uj_num: 1000,
        uj_den: 1,
        // Twice the limit: boards overshoot their limit for short spells, and a rise taken
        // for a reset would drop real energy.
        max_power_uw: max.saturating_mul(2000),
    }
}

impl GpuMeter {
    /// A meter over `source`.
    pub fn new(source: Box<dyn GpuSource>) -> GpuMeter {
        let devices = source
            .devices()
            .iter()
            .map(|d| DeviceState {
                counter: Counter::new(device_counter_spec(d.max_power_mw)),
                method: EnergyMethod::Counter,
                stale: false,
                last_power: None,
                twice_mw_ns: 0,
                integrated_uj: 0,
                last_samples: Vec::new(),
                last_samples_at: 0,
            })
            .collect();
        GpuMeter { source, devices }
    }

    /// The source's description.
    pub fn describe(&self) -> String {
        self.source.describe()
    }

    /// Reads every device at `at_ns` (monotonic), differences and splits. Never panics.
    pub fn tick(&mut self, at_ns: u64) -> GpuTick {
        let infos = self.source.devices().to_vec();
        let mut out = GpuTick {
            at_ns,
            devices: Vec::with_capacity(infos.len()),
        };
        for (info, state) in infos.iter().zip(self.devices.iter_mut()) {
            let i = info.index;
            let src = self.source.as_mut();
            let mut errors = Vec::new();
            let mut note = |e: GpuError| errors.push(e.to_string());
            let sample = src.sample(i).unwrap_or_else(|e| {
                note(e);
                DeviceSample::default()
            });
            let mut flags = GpuFlags::default();
            let (mut energy_uj, mut span_ns, mut stale) = (0, 0, false);
            if state.method == EnergyMethod::Counter {
                match src.energy_mj(i) {
                    Ok(raw) => match state.counter.observe(raw, at_ns) {
                        Ok(obs) => {
                            flags = GpuFlags::observed(&obs, state.stale);
                            energy_uj = obs.delta_uj;
                            span_ns = obs.span_ns;
                        }
                        Err(e) => {
                            stale = true;
                            note(GpuError::Query {
                                device: i,
                                what: "total energy",
                                reason: e.to_string(),
                            });
                        }
                    },
                    Err(GpuError::NotSupported { .. }) => {
                        tracing::info!(
                            device = i,
                            "GPU energy counter not supported; integrating power samples"
                        );
                        state.method = EnergyMethod::PowerIntegration;
                    }
                    Err(e) => {
                        stale = true;
                        note(e);
                    }
                }
            }
            if state.method == EnergyMethod::PowerIntegration {
                match sample.power_mw {
                    Some(p) => {
                        match state.last_power {
                            None => flags.first_reading = true,
                            Some((p0, t0)) => {
                                span_ns = at_ns.saturating_sub(t0);
                                state.twice_mw_ns +=
                                    u128::from(p0.saturating_add(p)) * u128::from(span_ns);
                                // mW·ns = 10^-6 µJ; the sum holds twice the trapezoid area.
                                let cum = u64::try_from(state.twice_mw_ns / 2_000_000)
                                    .unwrap_or(u64::MAX);
                                energy_uj = cum.saturating_sub(state.integrated_uj);
                                state.integrated_uj = state.integrated_uj.max(cum);
                            }
                        }
                        flags.gap_flagged = state.stale;
                        state.last_power = Some((p, at_ns));
                    }
                    None => {
                        // The interval around a missing sample cannot be integrated.
                        state.last_power = None;
                        stale = true;
                    }
                }
            }
            let cumulative_uj = match state.method {
                EnergyMethod::Counter => state.counter.cumulative_uj(),
                EnergyMethod::PowerIntegration => state.integrated_uj,
            };
            if !stale && state.stale {
                tracing::info!(device = i, "GPU energy readable again");
            } else if stale && !state.stale {
                tracing::warn!(
                    device = i,
                    "GPU energy unreadable; marked stale (the reason is in status)"
                );
            }
            state.stale = stale;
            let mut samples = src.process_samples(i).unwrap_or_else(|e| {
                note(e);
                Vec::new()
            });
            let mut carried = false;
            if samples.iter().any(|s| s.sm_util_pct > 0) {
                state.last_samples.clone_from(&samples);
                state.last_samples_at = at_ns;
            } else if !state.last_samples.is_empty()
                && at_ns.saturating_sub(state.last_samples_at) <= SAMPLE_CARRY_NS
            {
                samples.clone_from(&state.last_samples);
                carried = true;
            }
            let processes = src.processes(i).unwrap_or_else(|e| {
                note(e);
                Vec::new()
            });
            let mig = src.mig_instances(i).unwrap_or_else(|e| {
                note(e);
                Vec::new()
            });
            let attribution = split_device(&DeviceWindow {
                energy_uj,
                no_basis: flags.recovered || flags.gap_flagged,
                gpu_util_pct: sample.gpu_util_pct,
                samples: &samples,
                processes: &processes,
                carried,
            });
            debug_assert!(attribution.conserves());
            out.devices.push(DeviceTick {
                index: i,
                name: info.name.clone(),
                uuid: info.uuid.clone(),
                energy_uj,
                cumulative_uj,
                span_ns,
                method: state.method,
                relative_uncertainty: match state.method {
                    EnergyMethod::Counter => COUNTER_UNCERTAINTY,
                    EnergyMethod::PowerIntegration => INTEGRATED_UNCERTAINTY,
                },
                flags,
                stale,
                sample,
                mig,
                attribution,
                errors,
            });
        }
        out
    }
}
