//! Series parsing and integration over a span, against hand-computed figures with a gap.
use carbon_ops::carbon::series::{IntensityKind, parse_series};
use carbon_ops::carbon::span::{EnergyTick, GapPolicy};
use carbon_ops::carbon::time::Timestamp;
use carbon_ops::carbon::{CarbonError, EstimateRequest, PidEnergy, estimate_request};

// Hourly values with 02:00 missing.
const CSV: &str = "timestamp,intensity_gco2_kwh,kind\n\
2024-01-01T00:00:00Z,100,average\n\
2024-01-01T01:00:00Z,200\n\
# 02:00 missing\n\
2024-01-01T03:00:00Z,400\n";

fn req(policy: GapPolicy) -> EstimateRequest {
    EstimateRequest {
        start_ts: Some(Timestamp::parse("2024-01-01T00:30:00Z").expect("ts")),
        end_ts: Some(Timestamp::parse("2024-01-01T03:30:00Z").expect("ts")),
        energy_wh: Some(3000.0),
        series: Some(CSV.into()),
        gap_policy: Some(policy),
        datacenter: Some("none".into()),
        ..EstimateRequest::default()
    }
}

#[test]
fn uniform_spread_with_forward_fill() {
    // 1000 Wh per hour. [00:30,01:00) 0.5 kWh × 100 = 50 g; [01:00,02:00) 1 × 200 = 200 g;
    // gap [02:00,03:00) forward-filled with 200 → 200 g; [03:00,03:30) 0.5 × 400 = 200 g.
    // Total 650 g over 3 kWh: 216.667 g/kWh. Real data 2 h of 3 h.
    let r = estimate_request(&req(GapPolicy::ForwardFill), None, Timestamp(0)).expect("est");
    assert!((r.carbon_emissions_gco2 - 650.0).abs() < 1e-9, "{r:?}");
    assert!((r.carbon_intensity_used_gco2_kwh - 650.0 / 3.0).abs() < 1e-9);
    assert!((r.coverage - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(r.provenance.energy_spread, "uniform");
    assert_eq!(r.provenance.gap_policy.as_deref(), Some("forward_fill"));
    assert_eq!(r.provenance.source, "user_series");
    assert_eq!(r.intensity_uncertainty, 0.10);
    assert_eq!(r.intensity_kind, IntensityKind::Average);
}

#[test]
fn fallback_annual_and_error_policies() {
    // The gap hour takes France's annual 56.039 g/kWh (σ 30 %): 50 + 200 + 56.039 + 200.
    let r = estimate_request(
        &EstimateRequest {
            region: Some("FR".into()),
            ..req(GapPolicy::FallbackAnnual)
        },
        None,
        Timestamp(0),
    )
    .expect("est");
    assert!((r.carbon_emissions_gco2 - 506.039).abs() < 1e-9, "{r:?}");
    assert_eq!(r.region.as_deref(), Some("FRA"));
    let want_rel = (50.0 * 0.1 + 200.0 * 0.1 + 56.039 * 0.3 + 200.0 * 0.1) / 506.039;
    assert!((r.intensity_uncertainty - want_rel).abs() < 1e-12);
    let e = estimate_request(&req(GapPolicy::FallbackAnnual), None, Timestamp(0));
    assert!(matches!(e, Err(CarbonError::FallbackNeedsRegion)), "{e:?}");
    let e = estimate_request(&req(GapPolicy::Error), None, Timestamp(0));
    match e {
        Err(CarbonError::SeriesGap { at }) => assert_eq!(at, "2024-01-01T02:00:00Z"),
        other => panic!("expected a gap error, got {other:?}"),
    }
}

#[test]
fn empty_span_with_a_series_is_an_error() {
    let t = Timestamp::parse("2024-01-01T01:00:00Z").expect("ts");
    let rq = EstimateRequest {
        start_ts: Some(t),
        end_ts: Some(t),
        ..req(GapPolicy::ForwardFill)
    };
    let e = estimate_request(&rq, None, Timestamp(0));
    assert!(matches!(e, Err(CarbonError::EmptySpan { .. })), "{e:?}");
}

#[test]
fn per_tick_energy_shapes_the_buckets() {
    // Ticks: [00:30,01:30) 2000 Wh, [01:30,03:30) 1000 Wh.
    // [00:30,01:00) 1000 Wh × 100 = 100 g; [01:00,02:00) 1000 + 250 Wh × 200 = 250 g;
    // [02:00,03:00) 500 Wh × 200 (filled) = 100 g; [03:00,03:30) 250 Wh × 400 = 100 g. 550 g.
    let ts = |s: &str| Timestamp::parse(s).expect("ts");
    let pe = PidEnergy {
        energy_wh: 3000.0,
        energy_sigma_wh: 0.0,
        ticks: vec![
            EnergyTick {
                start: ts("2024-01-01T00:30:00Z"),
                end: ts("2024-01-01T01:30:00Z"),
                wh: 2000.0,
            },
            EnergyTick {
                start: ts("2024-01-01T01:30:00Z"),
                end: ts("2024-01-01T03:30:00Z"),
                wh: 1000.0,
            },
        ],
    };
    let rq = EstimateRequest {
        energy_wh: None,
        pid: Some(9),
        ..req(GapPolicy::ForwardFill)
    };
    let r = estimate_request(&rq, Some(&pe), Timestamp(0)).expect("est");
    assert!((r.carbon_emissions_gco2 - 550.0).abs() < 1e-9, "{r:?}");
    assert_eq!(r.provenance.energy_spread, "per_tick");
}

#[test]
fn electricity_maps_json_lines_and_document() {
    let jl = "{\"datetime\":\"2024-01-01T00:00:00.000Z\",\"carbonIntensity\":300,\"emissionFactorType\":\"lifecycle\"}\n\
              {\"datetime\":\"2024-01-01T01:00:00.000Z\",\"carbonIntensity\":100}\n";
    let s = parse_series(jl, IntensityKind::Marginal).expect("jsonl");
    assert_eq!(s.points.len(), 2);
    assert_eq!(s.kind, IntensityKind::Average);
    assert_eq!(s.resolution_ms, 3_600_000);
    let doc = r#"{"zone":"DE","history":[{"datetime":"2024-01-01T00:00:00Z","carbonIntensity":300},{"datetime":"2024-01-01T00:15:00Z","carbonIntensity":100}]}"#;
    let s = parse_series(doc, IntensityKind::Marginal).expect("doc");
    assert_eq!(
        (s.points.len(), s.resolution_ms, s.kind),
        (2, 900_000, IntensityKind::Marginal)
    );
    // Unix seconds in CSV.
    let s = parse_series(
        "1704067200,120\n1704070800,80,marginal\n",
        IntensityKind::Average,
    )
    .expect("csv");
    assert_eq!(s.points[0].ts.to_string(), "2024-01-01T00:00:00Z");
    assert_eq!(s.kind, IntensityKind::Marginal);
}

#[test]
fn malformed_series_are_errors_with_line_numbers() {
    let cases: [(&str, usize); 6] = [
        ("2024-01-01T00:00:00Z,100\nnot-a-time,5\n", 2),
        ("2024-01-01T00:00:00Z,-3\n", 1),
        ("2024-01-01T00:00:00Z,NaN\n", 1),
        (
            "2024-01-01T00:00:00Z,1,average\n2024-01-01T01:00:00Z,1,marginal\n",
            2,
        ),
        ("2024-01-01T00:00:00Z,1\n2024-01-01T00:00:00Z,2\n", 2),
        ("{\"datetime\":\"2024-01-01T00:00:00Z\"}\n{\"x\":1}\n", 1),
    ];
    for (text, line) in cases {
        match parse_series(text, IntensityKind::Average) {
            Err(CarbonError::MalformedSeries { line: l, .. }) => assert_eq!(l, line, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert!(matches!(
        parse_series("# nothing\n", IntensityKind::Average),
        Err(CarbonError::EmptySeries)
    ));
}

mod props {
    use carbon_ops::carbon::series::{IntensityKind, IntensitySeries, SeriesPoint};
    use carbon_ops::carbon::span::{GapPolicy, SpanParams, integrate};
    use carbon_ops::carbon::time::Timestamp;
    use proptest::prelude::*;

    proptest! {
        /// Integration conserves energy: the result lies between the smallest and largest
        /// value times the energy, a constant series gives exactly that constant, and coverage
        /// stays in [0, 1].
        #[test]
        fn bounded_by_extremes(
            values in prop::collection::vec(0.0f64..1000.0, 1..12),
            gaps in prop::collection::vec(1i64..4, 12),
            start_off in -7_200_000i64..7_200_000, len in 1i64..50_000_000,
            energy in 0.0f64..1e4, constant in any::<bool>(),
        ) {
            let mut t = 0i64;
            let points: Vec<SeriesPoint> = values.iter().enumerate().map(|(i, &v)| {
                let p = SeriesPoint { ts: Timestamp(t), g_per_kwh: if constant { 250.0 } else { v } };
                t += gaps[i] * 3_600_000;
                p
            }).collect();
            let series = IntensitySeries { points, kind: IntensityKind::Average, resolution_ms: 3_600_000 };
            let p = SpanParams {
                start: Timestamp(start_off), end: Timestamp(start_off + len), energy_wh: energy,
                ticks: None, policy: GapPolicy::ForwardFill, annual_g_per_kwh: None,
                series_rel: 0.1, annual_rel: 0.3,
            };
            let r = integrate(&series, &p).expect("forward fill never fails");
            let lo = series.points.iter().map(|p| p.g_per_kwh).fold(f64::INFINITY, f64::min);
            let hi = series.points.iter().map(|p| p.g_per_kwh).fold(0.0, f64::max);
            let kwh = energy / 1000.0;
            prop_assert!(r.grams_it >= kwh * lo * (1.0 - 1e-12) - 1e-9);
            prop_assert!(r.grams_it <= kwh * hi * (1.0 + 1e-12) + 1e-9);
            prop_assert!((0.0..=1.0).contains(&r.coverage));
            if constant {
                prop_assert!((r.intensity - 250.0).abs() < 1e-9);
                prop_assert!((r.grams_it - kwh * 250.0).abs() < 1e-9 * (1.0 + kwh * 250.0));
            }
        }
    }
}
