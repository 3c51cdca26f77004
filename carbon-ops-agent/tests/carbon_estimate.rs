//! The estimator end to end: unit conversions by hand, region lookups, the record's shape,
//! and every bad input of the issue.
use carbon_ops::carbon::region::lookup;
use carbon_ops::carbon::time::Timestamp;
use carbon_ops::carbon::uncertainty::Method;
use carbon_ops::carbon::{CarbonError, EstimateRequest, PidEnergy, estimate_request};

fn t(s: &str) -> Option<Timestamp> {
    Some(Timestamp::parse(s).expect("timestamp"))
}

fn base() -> EstimateRequest {
    EstimateRequest {
        start_ts: t("2024-05-01T12:00:00Z"),
        end_ts: t("2024-05-01T13:00:00Z"),
        energy_wh: Some(1500.0),
        region: Some("FR".into()),
        pue: Some(1.2),
        ..EstimateRequest::default()
    }
}

fn run(req: &EstimateRequest) -> Result<carbon_ops::carbon::Record, CarbonError> {
    estimate_request(req, None, Timestamp(0))
}

#[test]
fn units_by_hand() {
    // France 2023 in the bundled table: 56.039 g/kWh. 1500 Wh = 1.5 kWh; × PUE 1.2 = 1.8 kWh;
    // × 56.039 = 100.8702 g = 0.1008702 kg.
    let r = run(&base()).expect("estimate");
    assert_eq!(r.energy_consumed_wh, 1500.0);
    assert_eq!(r.energy_consumed_kwh, 1.5);
    assert!((r.total_energy_with_pue_kwh - 1.8).abs() < 1e-12);
    assert_eq!(r.carbon_intensity_used_gco2_kwh, 56.039);
    assert!((r.carbon_emissions_gco2 - 100.8702).abs() < 1e-9);
    assert!((r.carbon_emissions_kgco2 - 0.100_870_2).abs() < 1e-12);
    assert_eq!(r.pue_used, 1.2);
    assert_eq!(r.region.as_deref(), Some("FRA"));
    assert_eq!(r.provenance.year, Some(2023));
    assert_eq!(r.provenance.source, "bundled");
    assert_eq!(r.coverage, 1.0);
    assert_eq!(r.intensity_uncertainty, 0.30);
    assert_eq!(r.start_ts, "2024-05-01T12:00:00Z");
    assert_eq!(r.meta.confidence_level_pct, 95.0);
    assert!(r.meta.ci_lower_g > 0.0 && r.meta.ci_lower_g < r.carbon_emissions_gco2);
    assert!(r.meta.ci_upper_g > r.carbon_emissions_gco2);
}

#[test]
fn record_json_has_exactly_the_issue_fields() {
    let v = run(&base()).expect("estimate").to_json();
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut want = vec![
        "energy_consumed_wh",
        "energy_consumed_kwh",
        "total_energy_with_pue_kwh",
        "carbon_emissions_gco2",
        "carbon_emissions_kgco2",
        "carbon_intensity_used_gco2_kwh",
        "intensity_uncertainty",
        "pue_used",
        "region",
        "start_ts",
        "end_ts",
        "coverage",
        "intensity_kind",
        "provenance",
        "meta",
    ];
    want.sort_unstable();
    assert_eq!(keys, want);
    let mut meta: Vec<&str> = v["meta"]
        .as_object()
        .expect("meta")
        .keys()
        .map(String::as_str)
        .collect();
    meta.sort_unstable();
    assert_eq!(
        meta,
        [
            "ci_lower_g",
            "ci_upper_g",
            "confidence_level_pct",
            "method",
            "samples",
            "seed"
        ]
    );
    assert_eq!(v["intensity_kind"], "average");
    assert_eq!(v["meta"]["method"], "analytical_truncated");
}

#[test]
fn region_lookups() {
    let fr = lookup("FR").expect("FR");
    assert_eq!(fr, lookup("fra").expect("fra"));
    assert_eq!(fr.region, "FRA");
    assert_eq!(lookup("DE").expect("DE").region, "DEU");
    let g = lookup("gcp:europe-west1").expect("gcp");
    assert_eq!(
        (g.region.as_str(), g.g_per_kwh),
        ("gcp:europe-west1", 122.0)
    );
    assert_eq!(lookup("GCP:Europe-West1").expect("case").g_per_kwh, 122.0);
    assert_eq!(lookup("gcp:us-central1").expect("gcp").g_per_kwh, 430.0);
    for bad in ["XX", "ZZZ", "France", "", "aws:us-east-1", "gcp:mars-1"] {
        let e = lookup(bad).expect_err(bad);
        assert!(matches!(e, CarbonError::UnknownRegion { .. }), "{bad}");
        assert!(e.to_string().contains("--list-regions"), "{e}");
    }
    assert!(
        lookup("aws:us-east-1")
            .expect_err("aws")
            .to_string()
            .contains("gcp")
    );
}

#[test]
fn bad_inputs_are_clear_errors() {
    for e in [f64::NAN, f64::INFINITY, -1.0] {
        let r = run(&EstimateRequest {
            energy_wh: Some(e),
            ..base()
        });
        assert!(
            matches!(r, Err(CarbonError::InvalidEnergy { .. })),
            "{e}: {r:?}"
        );
    }
    let r = run(&EstimateRequest {
        energy_sigma_wh: Some(f64::NAN),
        ..base()
    });
    assert!(
        matches!(r, Err(CarbonError::InvalidUncertainty { .. })),
        "{r:?}"
    );
    let r = run(&EstimateRequest {
        start_ts: t("2024-05-01T14:00:00Z"),
        ..base()
    });
    assert!(
        matches!(r, Err(CarbonError::EndBeforeStart { .. })),
        "{r:?}"
    );
    let r = run(&EstimateRequest {
        region: Some("Atlantis".into()),
        ..base()
    });
    assert!(matches!(r, Err(CarbonError::UnknownRegion { .. })), "{r:?}");
    let r = run(&EstimateRequest {
        region: None,
        series: Some("2024-05-01T12:00:00Z,abc\n".into()),
        ..base()
    });
    assert!(
        matches!(r, Err(CarbonError::MalformedSeries { line: 1, .. })),
        "{r:?}"
    );
    for p in [0.0, 0.5, f64::NAN] {
        let r = run(&EstimateRequest {
            pue: Some(p),
            ..base()
        });
        assert!(
            matches!(r, Err(CarbonError::InvalidPue { .. })),
            "{p}: {r:?}"
        );
    }
    for c in [0.0, 100.0, -5.0, f64::NAN] {
        let r = run(&EstimateRequest {
            confidence: Some(c),
            ..base()
        });
        assert!(
            matches!(r, Err(CarbonError::BadConfidence { .. })),
            "{c}: {r:?}"
        );
    }
    let r = run(&EstimateRequest {
        region: None,
        ..base()
    });
    assert!(matches!(r, Err(CarbonError::NoIntensitySource)), "{r:?}");
    let r = run(&EstimateRequest {
        energy_wh: None,
        ..base()
    });
    assert!(matches!(r, Err(CarbonError::NoEnergy)), "{r:?}");
    let r = run(&EstimateRequest {
        energy_wh: None,
        pid: Some(42),
        ..base()
    });
    assert!(
        matches!(r, Err(CarbonError::NoPidEnergy { pid: 42 })),
        "{r:?}"
    );
    assert!(Timestamp::parse("yesterday").is_err());
}

#[test]
fn sigma_zero_everywhere_is_the_documented_point_interval() {
    for method in [Method::AnalyticalTruncated, Method::MonteCarlo] {
        let req = EstimateRequest {
            energy_sigma_wh: Some(0.0),
            intensity_rel_uncertainty: Some(0.0),
            method: Some(method),
            ..base()
        };
        let r = run(&req).expect("estimate");
        assert!(
            (r.meta.ci_lower_g - r.carbon_emissions_gco2).abs() < 1e-9,
            "{r:?}"
        );
        assert!(
            (r.meta.ci_upper_g - r.carbon_emissions_gco2).abs() < 1e-9,
            "{r:?}"
        );
    }
    // Zero energy: zero emissions, a zero-width interval, no NaN.
    let r = run(&EstimateRequest {
        energy_wh: Some(0.0),
        ..base()
    })
    .expect("estimate");
    assert_eq!(
        (
            r.carbon_emissions_gco2,
            r.meta.ci_lower_g,
            r.meta.ci_upper_g
        ),
        (0.0, 0.0, 0.0)
    );
    assert!(r.all_finite());
}

#[test]
fn monte_carlo_is_seeded_and_recorded() {
    let req = EstimateRequest {
        method: Some(Method::MonteCarlo),
        seed: Some(11),
        samples: Some(2000),
        energy_sigma_wh: Some(75.0),
        ..base()
    };
    let a = run(&req).expect("mc");
    assert_eq!(a, run(&req).expect("mc"));
    assert_eq!((a.meta.samples, a.meta.seed), (Some(2000), Some(11)));
    let b = run(&EstimateRequest {
        seed: Some(12),
        ..req.clone()
    })
    .expect("mc");
    assert_ne!(a.meta.ci_lower_g, b.meta.ci_lower_g);
    let an = run(&EstimateRequest {
        method: None,
        ..req
    })
    .expect("an");
    assert_eq!((an.meta.samples, an.meta.seed), (None, None));
}

#[test]
fn pid_energy_and_defaults() {
    let pe = PidEnergy {
        energy_wh: 10.0,
        energy_sigma_wh: 0.5,
        ticks: vec![],
    };
    let req = EstimateRequest {
        energy_wh: None,
        pid: Some(7),
        pue: None,
        ..base()
    };
    let r = estimate_request(&req, Some(&pe), Timestamp(0)).expect("pid");
    assert_eq!(r.provenance.energy_source, "pid:7");
    assert_eq!(r.provenance.energy_sigma_wh, 0.5);
    // Default PUE: enterprise 1.58, never 0.
    assert_eq!(r.pue_used, 1.58);
    assert_eq!(r.provenance.pue_source, "datacenter:enterprise");
    // Unix-second timestamps in JSON (number or string) are accepted.
    let req: EstimateRequest = serde_json::from_str(
        r#"{"start_ts": 1714564800, "end_ts": "2024-05-01T13:00:00Z", "energy_wh": 1.0, "region": "gcp:europe-west1", "method": "monte_carlo", "confidence": 0.9}"#,
    )
    .expect("json request");
    let r = run(&req).expect("estimate");
    assert_eq!(r.start_ts, "2024-05-01T12:00:00Z");
    assert!((r.meta.confidence_level_pct - 90.0).abs() < 1e-9);
    assert!(serde_json::from_str::<EstimateRequest>(r#"{"energy": 1}"#).is_err());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn any_number() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            -1e3f64..1e3,
            0.0f64..1e9,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Whatever the numbers, the result is an error or a record with only finite numbers
        /// and an ordered, non-negative interval.
        #[test]
        fn never_nan_in_a_record(
            e in any_number(), s in any_number(), pue in any_number(), rel in any_number(),
            c in prop_oneof![Just(95.0), 0.0f64..120.0], mc in any::<bool>(),
            region in prop_oneof![Just("FR"), Just("gcp:us-east1"), Just("IS"), Just("IND")],
        ) {
            let req = EstimateRequest {
                energy_wh: Some(e),
                energy_sigma_wh: Some(s),
                pue: Some(pue),
                intensity_rel_uncertainty: Some(rel),
                confidence: Some(c),
                method: Some(if mc { Method::MonteCarlo } else { Method::AnalyticalTruncated }),
                samples: Some(500),
                region: Some(region.into()),
                ..base()
            };
            if let Ok(r) = run(&req) {
                prop_assert!(r.all_finite(), "{r:?}");
                prop_assert!(0.0 <= r.meta.ci_lower_g && r.meta.ci_lower_g <= r.meta.ci_upper_g, "{r:?}");
                prop_assert!(r.carbon_emissions_gco2 >= 0.0);
            }
        }
    }
}
