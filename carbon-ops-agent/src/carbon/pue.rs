//! Power usage effectiveness (facility energy / IT energy) by datacenter type, as a truncated
//! normal on [1, ∞): never 0 (the original tool's default of 0 gave 0 g), never below 1.

use serde::{Deserialize, Serialize};

use super::error::CarbonError;

/// A PUE with its standard uncertainty and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pue {
    pub value: f64,
    pub sigma: f64,
    /// `datacenter:<type>` or `user`.
    pub source: String,
}

/// One datacenter type: `(name, value, sigma, typical range, why)`.
pub type DatacenterType = (&'static str, f64, f64, (f64, f64), &'static str);

/// The datacenter types.
pub const DATACENTER_TYPES: [DatacenterType; 4] = [
    (
        "hyperscale",
        1.10,
        0.05,
        (1.06, 1.20),
        "large cloud operators report fleet-wide annual PUE of about 1.1",
    ),
    (
        "enterprise",
        1.58,
        0.20,
        (1.3, 2.0),
        "Uptime Institute global survey average (1.58 in 2023); the default when the facility is unknown",
    ),
    (
        "small",
        1.8,
        0.30,
        (1.4, 2.5),
        "server rooms and small on-premises facilities without modern cooling",
    ),
    (
        "none",
        1.0,
        0.0,
        (1.0, 1.0),
        "no facility overhead: a laptop or desktop measured at the wall or by RAPL alone",
    ),
];

/// The default datacenter type.
pub const DEFAULT_DATACENTER: &str = "enterprise";

impl Pue {
    /// The PUE of a datacenter type (see [`DATACENTER_TYPES`]).
    pub fn for_datacenter(name: &str) -> Result<Self, CarbonError> {
        let n = name.trim().to_ascii_lowercase();
        DATACENTER_TYPES
            .iter()
            .find(|t| t.0 == n)
            .map(|t| Pue {
                value: t.1,
                sigma: t.2,
                source: format!("datacenter:{}", t.0),
            })
            .ok_or_else(|| CarbonError::UnknownDatacenter {
                name: name.to_owned(),
                known: DATACENTER_TYPES.map(|t| t.0).join(", "),
            })
    }

    /// The default ([`DEFAULT_DATACENTER`]).
    pub fn default_datacenter() -> Self {
        Pue {
            value: 1.58,
            sigma: 0.20,
            source: format!("datacenter:{DEFAULT_DATACENTER}"),
        }
    }

    /// A user-given PUE (σ defaults to 0: taken as exact).
    pub fn user(value: f64, sigma: Option<f64>) -> Result<Self, CarbonError> {
        if !value.is_finite() || value < 1.0 {
            return Err(CarbonError::InvalidPue { value });
        }
        let sigma = sigma.unwrap_or(0.0);
        if !sigma.is_finite() || sigma < 0.0 {
            return Err(CarbonError::InvalidUncertainty {
                field: "pue_sigma",
                value: sigma,
            });
        }
        Ok(Pue {
            value,
            sigma,
            source: "user".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_errors() {
        assert_eq!(Pue::for_datacenter("Hyperscale").expect("ok").value, 1.10);
        assert_eq!(
            Pue::for_datacenter(DEFAULT_DATACENTER).expect("ok"),
            Pue::default_datacenter()
        );
        assert!(Pue::for_datacenter("igloo").is_err());
        for bad in [0.0, 0.99, f64::NAN, f64::INFINITY, -1.0] {
            assert!(Pue::user(bad, None).is_err(), "{bad}");
        }
        assert!(Pue::user(1.2, Some(-0.1)).is_err());
        assert_eq!(Pue::user(1.0, None).expect("ok").sigma, 0.0);
    }
}
