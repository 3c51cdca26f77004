//! Host power by zone from two agent `status` answers (pure).
//!
//! The agent serves each zone's cumulative, already-unwrapped energy (`zones[].energy_uj`) and
//! the time of the tick it comes from (`at`). Power over a window is the difference of the
//! integers divided by the difference of the tick times; the subtraction saturates, so an
//! agent restart (totals back near zero) shows as no power rather than as a huge negative one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One zone's cumulative energy at one tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneReading {
    /// Zone name (`package-0`, `dram`, …).
    pub name: String,
    /// Cumulative µJ since the agent started.
    pub energy_uj: u64,
}

/// The zones of one `status` answer and the time of its tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Unix seconds of the tick the figures come from.
    pub at: f64,
    /// Every zone, in the agent's order.
    pub zones: Vec<ZoneReading>,
    /// Host cumulative energy (all zones that the agent attributes), µJ.
    pub host_uj: u64,
}

impl Snapshot {
    /// Reads a `status` result, or a ledger `sample` payload (the same fields); `None` when it
    /// lacks `at` or `zones`.
    pub fn from_status(v: &Value) -> Option<Snapshot> {
        let at = v.get("at")?.as_f64()?;
        let zones = v
            .get("zones")?
            .as_array()?
            .iter()
            .filter_map(|z| {
                Some(ZoneReading {
                    name: z.get("name")?.as_str()?.to_owned(),
                    energy_uj: z.get("energy_uj")?.as_u64()?,
                })
            })
            .collect();
        let host_uj = v["energy"]["total_uj"].as_u64().unwrap_or(0);
        Some(Snapshot { at, zones, host_uj })
    }
}

/// One zone's mean power over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZonePower {
    /// Zone name.
    pub name: String,
    /// Mean power, W.
    pub power_w: f64,
}

/// Mean power of each zone of `cur` that also appears in `prev`, over `cur.at − prev.at`.
/// Empty when the window is not positive (the agent has not ticked in between).
pub fn zone_power(prev: &Snapshot, cur: &Snapshot) -> Vec<ZonePower> {
    let dt = cur.at - prev.at;
    if dt.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Vec::new();
    }
    cur.zones
        .iter()
        .filter_map(|z| {
            let p = prev.zones.iter().find(|p| p.name == z.name)?;
            let uj = z.energy_uj.saturating_sub(p.energy_uj);
            Some(ZonePower {
                name: z.name.clone(),
                power_w: uj as f64 / 1e6 / dt,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap(at: f64, pkg: u64, dram: u64) -> Snapshot {
        Snapshot::from_status(&json!({
            "at": at,
            "zones": [{"name": "package-0", "energy_uj": pkg}, {"name": "dram", "energy_uj": dram}],
            "energy": {"total_uj": pkg}
        }))
        .expect("snapshot")
    }

    #[test]
    fn power_is_the_energy_difference_over_the_tick_difference() {
        // 30 J in 1.5 s = 20 W; 3 J in 1.5 s = 2 W.
        let p = zone_power(
            &snap(100.0, 1_000_000, 0),
            &snap(101.5, 31_000_000, 3_000_000),
        );
        assert_eq!(p.len(), 2);
        assert!((p[0].power_w - 20.0).abs() < 1e-9, "{p:?}");
        assert!((p[1].power_w - 2.0).abs() < 1e-9, "{p:?}");
    }

    #[test]
    fn no_tick_in_between_or_a_restart_gives_no_power() {
        assert!(zone_power(&snap(5.0, 10, 10), &snap(5.0, 20, 20)).is_empty());
        let p = zone_power(&snap(5.0, 10_000_000, 10), &snap(6.0, 5, 20));
        assert_eq!(p[0].power_w, 0.0);
    }
}
