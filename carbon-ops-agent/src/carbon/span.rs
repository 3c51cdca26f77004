//! `estimate_over_span`'s integration: energy × intensity per bucket of a series.
//!
//! The span `[start, end)` is cut at every point's start and end (start + resolution); each
//! piece is either covered by a point (real data) or a gap, filled by the gap policy:
//! `forward_fill` (the last earlier value; before the first point, the first value),
//! `fallback_annual` (the region's annual average), or `error`. The energy of each piece is
//! the caller's per-tick energy record overlapping it (each tick spread uniformly over its own
//! interval, the shares rescaled so they sum to the span's energy), or, without ticks, the
//! span's energy spread uniformly over time. Coverage is the fraction of the span's duration
//! with real data.

use serde::{Deserialize, Serialize};

use super::error::CarbonError;
use super::series::IntensitySeries;
use super::time::Timestamp;

/// What to do where the series has no value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapPolicy {
    #[default]
    ForwardFill,
    FallbackAnnual,
    Error,
}

impl GapPolicy {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            GapPolicy::ForwardFill => "forward_fill",
            GapPolicy::FallbackAnnual => "fallback_annual",
            GapPolicy::Error => "error",
        }
    }
}

/// Energy recorded over one tick of the agent, Wh.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyTick {
    pub start: Timestamp,
    pub end: Timestamp,
    pub wh: f64,
}

/// The integral over a span.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanIntegral {
    /// Σ energy × intensity, gCO2e, before PUE.
    pub grams_it: f64,
    /// Energy-weighted mean intensity (time-weighted when the energy is 0), g/kWh.
    pub intensity: f64,
    /// Energy-weighted relative uncertainty of the intensity (pieces fully correlated).
    pub rel_uncertainty: f64,
    /// Fraction of the span's duration with real data.
    pub coverage: f64,
    /// `uniform` or `per_tick`.
    pub spread: &'static str,
}

/// Inputs besides the series.
#[derive(Clone, Copy, Debug)]
pub struct SpanParams<'a> {
    pub start: Timestamp,
    pub end: Timestamp,
    pub energy_wh: f64,
    pub ticks: Option<&'a [EnergyTick]>,
    pub policy: GapPolicy,
    /// The region's annual average, for `fallback_annual`.
    pub annual_g_per_kwh: Option<f64>,
    /// Relative σ of a real series value.
    pub series_rel: f64,
    /// Relative σ of an annual average applied to a specific hour.
    pub annual_rel: f64,
}

fn overlap(a0: i64, a1: i64, b0: i64, b1: i64) -> i64 {
    (a1.min(b1) - a0.max(b0)).max(0)
}

/// Integrates `p.energy_wh` × `series` over `[p.start, p.end)`; requires `end > start`.
pub fn integrate(
    series: &IntensitySeries,
    p: &SpanParams<'_>,
) -> Result<SpanIntegral, CarbonError> {
    let (s, e) = (p.start.0, p.end.0);
    if e < s {
        return Err(CarbonError::EndBeforeStart {
            start: p.start.to_string(),
            end: p.end.to_string(),
        });
    }
    if e == s {
        return Err(CarbonError::EmptySpan {
            start: p.start.to_string(),
            end: p.end.to_string(),
        });
    }
    let res = series.resolution_ms;
    let mut cuts = vec![s, e];
    for pt in &series.points {
        for c in [pt.ts.0, pt.ts.0.saturating_add(res)] {
            if c > s && c < e {
                cuts.push(c);
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();

    // Per-tick energy within the span, for shares.
    let ticks = p.ticks.filter(|t| !t.is_empty());
    let tick_share = |a: i64, b: i64| -> f64 {
        ticks.map_or(0.0, |ts| {
            ts.iter()
                .map(|t| {
                    let len = t.end.0 - t.start.0;
                    if len <= 0 {
                        if t.start.0 >= a && t.start.0 < b {
                            t.wh
                        } else {
                            0.0
                        }
                    } else {
                        t.wh * overlap(t.start.0, t.end.0, a, b) as f64 / len as f64
                    }
                })
                .sum()
        })
    };
    let tick_total = tick_share(s, e);
    let per_tick = ticks.is_some() && tick_total > 0.0;
    let span = (e - s) as f64;

    let (mut grams, mut energy, mut real_ms) = (0.0, 0.0, 0i64);
    let (mut weighted_i, mut weighted_u, mut time_i) = (0.0, 0.0, 0.0);
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let idx = series.points.partition_point(|pt| pt.ts.0 <= a);
        let covering = idx
            .checked_sub(1)
            .map(|i| series.points[i])
            .filter(|pt| a < pt.ts.0 + res);
        let (g, rel) = match covering {
            Some(pt) => {
                real_ms += b - a;
                (pt.g_per_kwh, p.series_rel)
            }
            None => match p.policy {
                GapPolicy::Error => {
                    return Err(CarbonError::SeriesGap {
                        at: Timestamp(a).to_string(),
                    });
                }
                GapPolicy::ForwardFill => {
                    let pt = idx
                        .checked_sub(1)
                        .map_or(series.points[0], |i| series.points[i]);
                    (pt.g_per_kwh, p.series_rel)
                }
                GapPolicy::FallbackAnnual => (
                    p.annual_g_per_kwh.ok_or(CarbonError::FallbackNeedsRegion)?,
                    p.annual_rel,
                ),
            },
        };
        let piece_wh = if per_tick {
            p.energy_wh * tick_share(a, b) / tick_total
        } else {
            p.energy_wh * (b - a) as f64 / span
        };
        grams += piece_wh / 1000.0 * g;
        energy += piece_wh;
        weighted_i += piece_wh * g;
        weighted_u += piece_wh * g * rel;
        time_i += g * (b - a) as f64 / span;
    }
    let intensity = if energy > 0.0 {
        weighted_i / energy
    } else {
        time_i
    };
    let rel_uncertainty = if weighted_i > 0.0 {
        weighted_u / weighted_i
    } else {
        p.series_rel
    };
    Ok(SpanIntegral {
        grams_it: grams,
        intensity,
        rel_uncertainty,
        coverage: real_ms as f64 / span,
        spread: if per_tick { "per_tick" } else { "uniform" },
    })
}
