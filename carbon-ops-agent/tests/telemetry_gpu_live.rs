//! The real-GPU check, run by `scripts/gpu-check.sh` on a machine with an NVIDIA GPU while a
//! known process keeps the GPU busy. Skips (with a message) unless `CARBON_OPS_GPU_CHECK_PID`
//! names that process. Checks: NVML loads, each device's energy counter advances, the busy
//! process gets GPU energy and the most of it, and the cumulative figures conserve exactly.
//! Prints one `GPU_CHECK {json}` line with the figures (and the GPU model) for the record.

use std::time::{Duration, Instant};

use carbon_ops::telemetry::{GpuMode, GpuState, Telemetry, TelemetryConfig};
use serde_json::json;

#[test]
fn gpu_check_live() {
    let Ok(pid) = std::env::var("CARBON_OPS_GPU_CHECK_PID") else {
        eprintln!("skipped: set CARBON_OPS_GPU_CHECK_PID (scripts/gpu-check.sh does) to run");
        return;
    };
    let pid: u32 = pid.parse().expect("CARBON_OPS_GPU_CHECK_PID is a pid");
    let secs: u64 = std::env::var("CARBON_OPS_GPU_CHECK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut tel = Telemetry::new(TelemetryConfig {
        gpu: GpuMode::Nvml { lib_path: None },
        ..TelemetryConfig::default()
    });
    if let GpuState::Unavailable(r) = tel.gpu_state() {
        panic!("FAIL: NVML unavailable on the GPU machine: {r}");
    }
    let clock = Instant::now();
    let start_ns = 1_000_000_000u64;
    let mut first_energy: Option<Vec<u64>> = None;
    let mut methods = Vec::new();
    let mut bases = std::collections::BTreeMap::<String, u64>::new();
    let mut ticks = 0u64;
    while clock.elapsed() < Duration::from_secs(secs) {
        let at = start_ns + u64::try_from(clock.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let t = tel.tick(at);
        ticks += 1;
        if let Some(g) = &t.gpu {
            for d in &g.devices {
                let b = serde_json::to_value(d.attribution.basis).unwrap_or_default();
                *bases
                    .entry(b.as_str().unwrap_or("?").to_owned())
                    .or_default() += 1;
                methods.push(d.method);
            }
            if first_energy.is_none() && ticks == 2 {
                first_energy = Some(g.devices.iter().map(|d| d.cumulative_uj).collect());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = tel.view();
    let mut ok = true;
    let mut devices = Vec::new();
    for (k, d) in v.gpu.devices.iter().enumerate() {
        let advanced = d.energy_uj
            > first_energy
                .as_ref()
                .and_then(|f| f.get(k))
                .copied()
                .unwrap_or(0);
        let pids: u64 = v
            .pids
            .values()
            .filter_map(|e| e.per_device_uj.get(&d.index))
            .sum();
        let conserves = d.energy_uj == d.attributed_uj + d.idle_uj + d.unattributed_uj
            && d.attributed_uj == pids + d.expired_uj;
        ok &= conserves;
        devices.push(json!({
            "index": d.index, "name": d.name, "method": d.method,
            "energy_uj": d.energy_uj, "attributed_uj": d.attributed_uj, "idle_uj": d.idle_uj,
            "unattributed_uj": d.unattributed_uj, "advanced": advanced, "conserves": conserves,
            "last_power_mw": d.sample.power_mw, "last_util_pct": d.sample.gpu_util_pct,
            "errors": d.errors,
        }));
    }
    let advanced_any = devices.iter().any(|d| d["advanced"] == true);
    let workload_uj = v.gpu_energy_uj(pid);
    let top = v
        .pids
        .iter()
        .max_by_key(|(_, e)| e.total_uj())
        .map(|(p, _)| *p);
    let report = json!({
        "gpu_source": v.gpu.source, "seconds": secs, "ticks": ticks, "workload_pid": pid,
        "workload_gpu_energy_uj": workload_uj, "top_pid": top, "bases": bases,
        "devices": devices,
    });
    println!("GPU_CHECK {report}");
    assert!(
        advanced_any,
        "FAIL: no device's energy counter advanced: {report}"
    );
    assert!(
        workload_uj > 0,
        "FAIL: the workload pid {pid} got no GPU energy: {report}"
    );
    assert_eq!(
        top,
        Some(pid),
        "FAIL: another pid got more GPU energy: {report}"
    );
    assert!(ok, "FAIL: conservation broken: {report}");
}
