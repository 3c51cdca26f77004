//! Units as types, converted in one place.
//!
//! Raw counters are integers (`MicroJoules`, `Nanos`) and are differenced as integers before
//! any conversion; floating-point units exist only at the edges (reports, estimates).

use serde::{Deserialize, Serialize};

/// Energy in microjoules: the unit every counter and every attribution is kept in.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct MicroJoules(pub u64);

/// Microjoules in one watt-hour.
pub const MICROJOULES_PER_WH: f64 = 3_600_000_000.0;

impl MicroJoules {
    /// Joules, as a float (for display and estimates only).
    pub fn joules(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// Watt-hours, as a float.
    pub fn watt_hours(self) -> f64 {
        self.0 as f64 / MICROJOULES_PER_WH
    }
    /// Kilowatt-hours, as a float.
    pub fn kilowatt_hours(self) -> f64 {
        self.watt_hours() / 1000.0
    }
    /// Sum that saturates instead of wrapping (a u64 of µJ holds 5.8 million years at 100 W).
    pub fn saturating_add(self, other: MicroJoules) -> MicroJoules {
        MicroJoules(self.0.saturating_add(other.0))
    }
}

/// A duration or instant in nanoseconds (CPU time, monotonic clock readings).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Nanos(pub u64);

impl Nanos {
    /// Seconds, as a float.
    pub fn seconds(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watt_hour_conversions_by_hand() {
        // 3.6e9 µJ = 3600 J = 1 Wh = 0.001 kWh.
        let e = MicroJoules(3_600_000_000);
        assert_eq!(e.joules(), 3600.0);
        assert_eq!(e.watt_hours(), 1.0);
        assert_eq!(e.kilowatt_hours(), 0.001);
        assert_eq!(Nanos(1_500_000_000).seconds(), 1.5);
    }
}
