//! `carbon-ops estimate` flags, parsed as the binary will parse them, without an agent.
use carbon_ops::carbon::cli::{EstimateArgs, render, request_from_args, run};
use carbon_ops::carbon::estimate_request;
use carbon_ops::carbon::time::Timestamp;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: EstimateArgs,
}

fn parse(argv: &[&str]) -> EstimateArgs {
    Cli::try_parse_from(std::iter::once("estimate").chain(argv.iter().copied()))
        .expect("flags parse")
        .args
}

#[test]
fn energy_region_pue_by_hand() {
    let a = parse(&[
        "--energy-wh",
        "2000",
        "--start",
        "2024-05-01T12:00:00Z",
        "--end",
        "1714568400",
        "--region",
        "gcp:europe-west1",
        "--pue",
        "1.1",
        "--confidence",
        "90",
        "--json",
    ]);
    let req = request_from_args(&a).expect("request");
    let r = estimate_request(&req, None, Timestamp(0)).expect("estimate");
    // 2 kWh × 1.1 × 122 g/kWh = 268.4 g.
    assert!((r.carbon_emissions_gco2 - 268.4).abs() < 1e-9);
    assert_eq!(r.end_ts, "2024-05-01T13:00:00Z");
    assert!((r.meta.confidence_level_pct - 90.0).abs() < 1e-9);
    let text = render(&r);
    assert!(text.contains("268.4000 gCO2e"), "{text}");
    assert_eq!(run(a).expect("run"), 0);
}

#[test]
fn series_file_and_monte_carlo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("grid.csv");
    std::fs::write(
        &path,
        "2024-01-01T00:00:00Z,100\n2024-01-01T01:00:00Z,300\n",
    )
    .expect("write");
    let a = parse(&[
        "--energy-wh",
        "1000",
        "--start",
        "2024-01-01T00:00:00Z",
        "--end",
        "2024-01-01T02:00:00Z",
        "--series",
        path.to_str().expect("utf8"),
        "--datacenter",
        "none",
        "--method",
        "monte_carlo",
        "--samples",
        "5000",
        "--seed",
        "3",
        "--gap-policy",
        "error",
    ]);
    let r =
        estimate_request(&request_from_args(&a).expect("req"), None, Timestamp(0)).expect("est");
    // 0.5 kWh × 100 + 0.5 kWh × 300 = 200 g.
    assert!((r.carbon_emissions_gco2 - 200.0).abs() < 1e-9);
    assert_eq!((r.meta.samples, r.meta.seed), (Some(5000), Some(3)));
    assert_eq!(r.meta.method, "monte_carlo");
}

#[test]
fn bad_flags_and_missing_inputs() {
    assert!(Cli::try_parse_from(["estimate", "--method", "guess"]).is_err());
    assert!(Cli::try_parse_from(["estimate", "--gap-policy", "ignore"]).is_err());
    assert!(Cli::try_parse_from(["estimate", "--energy-wh", "lots"]).is_err());
    // Without an agent, --energy-wh is required.
    assert!(run(parse(&["--region", "FR"])).is_err());
    let e = run(parse(&["--energy-wh", "1", "--region", "Narnia"])).expect_err("unknown region");
    assert!(format!("{e:#}").contains("--list-regions"), "{e:#}");
    let missing = parse(&["--energy-wh", "1", "--series", "/nonexistent/grid.csv"]);
    assert!(request_from_args(&missing).is_err());
    assert_eq!(run(parse(&["--list-regions"])).expect("list"), 0);
}

#[test]
fn provider_flag_falls_back_when_unreachable() {
    let a = parse(&[
        "--energy-wh",
        "1000",
        "--start",
        "2024-05-01T12:00:00Z",
        "--end",
        "2024-05-01T13:00:00Z",
        "--provider",
        "gb",
        "--provider-url",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(
        a.provider,
        Some(carbon_ops::carbon::live::Provider::GbCarbonIntensity)
    );
    assert_eq!(run(a).expect("falls back to bundled GB"), 0);
    assert!(Cli::try_parse_from(["estimate", "--provider", "watttime"]).is_err());
}
