//! Benchmarks of the carbon estimator: one analytical estimate (target ≤ 10 µs) and one Monte
//! Carlo estimate with 10,000 samples (target ≤ 5 ms), both through the full request path
//! (region lookup, validation, propagation, record).
use criterion::{Criterion, black_box, criterion_group, criterion_main};

use carbon_ops::carbon::time::Timestamp;
use carbon_ops::carbon::uncertainty::{Method, TruncatedNormal, analytical, monte_carlo};
use carbon_ops::carbon::{EstimateRequest, estimate_request};

fn request(method: Method) -> EstimateRequest {
    EstimateRequest {
        start_ts: Some(Timestamp(1_714_564_800_000)),
        end_ts: Some(Timestamp(1_714_568_400_000)),
        energy_wh: Some(1500.0),
        energy_sigma_wh: Some(75.0),
        region: Some("DE".into()),
        method: Some(method),
        samples: Some(10_000),
        seed: Some(1),
        ..EstimateRequest::default()
    }
}

fn benches(c: &mut Criterion) {
    let an = request(Method::AnalyticalTruncated);
    c.bench_function("estimate_analytical_truncated", |b| {
        b.iter(|| estimate_request(black_box(&an), None, Timestamp(0)))
    });
    let mc = request(Method::MonteCarlo);
    c.bench_function("estimate_monte_carlo_10k", |b| {
        b.iter(|| estimate_request(black_box(&mc), None, Timestamp(0)))
    });
    let f = [
        TruncatedNormal::new(1.5, 0.075, 0.0).expect("ok"),
        TruncatedNormal::new(380.0, 114.0, 0.0).expect("ok"),
        TruncatedNormal::new(1.58, 0.2, 1.0).expect("ok"),
    ];
    c.bench_function("propagate_analytical_only", |b| {
        b.iter(|| analytical(black_box(&f), 0.95))
    });
    // Every input at σ/μ = 0.3, the PUE cut hard at 1: the widest case the issue covers.
    let wide = [
        TruncatedNormal::new(1.5, 0.45, 0.0).expect("ok"),
        TruncatedNormal::new(380.0, 114.0, 0.0).expect("ok"),
        TruncatedNormal::new(1.4, 0.42, 1.0).expect("ok"),
    ];
    c.bench_function("propagate_analytical_wide_0_3", |b| {
        b.iter(|| analytical(black_box(&wide), 0.95))
    });
    c.bench_function("propagate_monte_carlo_10k_only", |b| {
        b.iter(|| monte_carlo(black_box(&f), 0.95, 10_000, 1))
    });
}

criterion_group!(carbon, benches);
criterion_main!(carbon);
