//! Ledger benchmarks (issue 6 targets): acknowledged durable appends per second from 32
//! concurrent writer threads through group commit, and verification of 1,000,000 entries.
//!
//! Run: `cargo bench -p carbon-ops-agent --bench ledger`. The ledger lives in a temporary
//! directory on the same disk as `$TMPDIR` (override with `LEDGER_BENCH_DIR`).

use carbon_ops::ledger::chain::{GENESIS_KIND, Tip, genesis_payload};
use carbon_ops::ledger::{LedgerWriter, StoreOptions, VerifyOptions, verify_ledger};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const WRITERS: u64 = 32;
const VERIFY_ENTRIES: u64 = 1_000_000;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("LEDGER_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).expect("bench dir"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}

fn estimate_payload(i: u64) -> serde_json::Value {
    json!({
        "pid": 10_000 + i % 5_000,
        "comm": "python3",
        "cgroup": "/system.slice/batch.service",
        "energy_uj": 1_234_567 + i,
        "co2e_g": 0.000_123_4 * (i % 97) as f64,
        "interval_g": [0.000_1, 0.000_2],
        "intensity_g_per_kwh": 231.5
    })
}

fn group_commit(c: &mut Criterion) {
    let dir = bench_dir();
    let base = dir.path().join("ledger.jsonl");
    let (writer, _) = LedgerWriter::open(&base, StoreOptions::default()).expect("open");
    let mut group = c.benchmark_group("ledger_append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(1));
    group.bench_function("durable_appends_32_writers", |b| {
        b.iter_custom(|iters| {
            let per_thread = iters.div_ceil(WRITERS);
            let start = Instant::now();
            std::thread::scope(|s| {
                let threads: Vec<_> = (0..WRITERS)
                    .map(|t| {
                        let h = writer.handle();
                        s.spawn(move || {
                            for i in 0..per_thread {
                                h.append("estimate", estimate_payload(t * per_thread + i))
                                    .expect("append");
                            }
                        })
                    })
                    .collect();
                for t in threads {
                    t.join().expect("writer thread");
                }
            });
            // Scale to exactly `iters` appends (each thread did `per_thread`).
            start
                .elapsed()
                .mul_f64(iters as f64 / (per_thread * WRITERS) as f64)
        });
    });
    group.finish();
    writer.close();
}

/// Writes a ledger of `entries` entries directly (no fsync) for the verification benchmark.
fn build_ledger(base: &Path, entries: u64) {
    let file = std::fs::File::create(base).expect("create");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let ts = "2026-11-28T16:25:09.123456Z";
    let mut tip = Tip::empty();
    let genesis = genesis_payload("00112233445566778899aabbccddeeff", ts, 0, None);
    out.write_all(
        &tip.append(ts, GENESIS_KIND, &genesis)
            .expect("genesis")
            .line,
    )
    .expect("write");
    for i in 1..entries {
        let payload = estimate_payload(i);
        let payload = payload.as_object().expect("object");
        out.write_all(&tip.append(ts, "estimate", payload).expect("seal").line)
            .expect("write");
    }
    out.flush().expect("flush");
}

fn verify_million(c: &mut Criterion) {
    let dir = bench_dir();
    let base = dir.path().join("ledger.jsonl");
    build_ledger(&base, VERIFY_ENTRIES);
    let mut group = c.benchmark_group("ledger_verify");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Elements(VERIFY_ENTRIES));
    group.bench_function("verify_1m_entries", |b| {
        b.iter(|| {
            let report = verify_ledger(&base, &VerifyOptions::default());
            assert!(report.is_intact() && report.entries == VERIFY_ENTRIES);
        });
    });
    group.finish();
}

criterion_group!(benches, group_commit, verify_million);
criterion_main!(benches);
