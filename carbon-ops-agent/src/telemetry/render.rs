//! Human rendering of the telemetry sections for `carbon-ops status` and `carbon-ops process`
//! (appended after the energy table). Reads the answer's JSON, so it works on any agent
//! version: missing sections render as nothing.

use serde_json::Value;

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn gib(v: &Value) -> f64 {
    num(v) / (1u64 << 30) as f64
}

/// The `cpu`, `memory` and `gpu` sections of a `status` answer, as text.
pub fn render_status(v: &Value) -> String {
    let mut s = String::new();
    let cpu = &v["cpu"];
    if cpu.is_object() {
        let host = cpu["host_utilisation"]
            .as_f64()
            .map_or("n/a".to_owned(), |u| format!("{:.1} %", u * 100.0));
        s += &format!("\ncpu             {host} busy\n");
        for c in cpu["cpus"].as_array().into_iter().flatten() {
            let util = c["utilisation"]
                .as_f64()
                .map_or("n/a".to_owned(), |u| format!("{:.1} %", u * 100.0));
            let freq = c["frequency_khz"]
                .as_u64()
                .map_or("freq unavailable".to_owned(), |k| {
                    format!("{:.2} GHz", k as f64 / 1e6)
                });
            s += &format!("  cpu{:<4} {util:>8}  {freq}\n", c["cpu"]);
        }
    }
    let mem = &v["memory"];
    if mem.is_object() {
        let h = &mem["host"];
        if h.is_object() {
            s += &format!(
                "memory          {:.2} GiB used of {:.2} GiB ({:.2} GiB available)\n",
                gib(&h["used_bytes"]),
                gib(&h["total_bytes"]),
                gib(&h["available_bytes"])
            );
        }
        match mem["dram_energy_uj"].as_u64() {
            Some(uj) => s += &format!("dram energy     {:.3} J\n", uj as f64 / 1e6),
            None => s += "dram energy     unavailable (no RAPL dram zone)\n",
        }
    }
    let gpu = &v["gpu"];
    if gpu.is_object() {
        if gpu["available"] != true {
            s += &format!(
                "gpu             {}: {}\n",
                gpu["state"].as_str().unwrap_or("unavailable"),
                gpu["reason"].as_str().unwrap_or("")
            );
            return s;
        }
        for d in gpu["devices"].as_array().into_iter().flatten() {
            let power = d["sample"]["power_mw"]
                .as_f64()
                .map_or("n/a".to_owned(), |mw| format!("{:.0} W", mw / 1000.0));
            let util = d["sample"]["gpu_util_pct"]
                .as_u64()
                .map_or("n/a".to_owned(), |u| format!("{u} %"));
            s += &format!(
                "gpu {}           {}  {power}  util {util}  ({}, ±{:.0} %)\n  energy {:.3} J = attributed {:.3} J + idle {:.3} J + unattributed {:.3} J\n",
                d["index"],
                d["name"].as_str().unwrap_or("?"),
                d["method"].as_str().unwrap_or("?"),
                num(&d["relative_uncertainty"]) * 100.0,
                num(&d["energy_uj"]) / 1e6,
                num(&d["attributed_uj"]) / 1e6,
                num(&d["idle_uj"]) / 1e6,
                num(&d["unattributed_uj"]) / 1e6,
            );
            for m in d["mig"].as_array().into_iter().flatten() {
                s += &format!(
                    "  mig {} {}  {:.2} / {:.2} GiB\n",
                    m["index"],
                    m["uuid"].as_str().unwrap_or("?"),
                    gib(&m["memory_used_bytes"]),
                    gib(&m["memory_total_bytes"])
                );
            }
        }
    }
    s
}

/// The `rss_bytes` and `gpu_energy_uj` fields of a `process` answer, as text.
pub fn render_process(v: &Value) -> String {
    let rss = v["rss_bytes"].as_u64().map_or_else(
        || format!("n/a ({})", v["rss_error"].as_str().unwrap_or("unknown")),
        |b| format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
    );
    let gpu = if v["gpu_state"] == "active" {
        format!("{:.3} J", num(&v["gpu_energy_uj"]) / 1e6)
    } else {
        "n/a (no GPU telemetry)".to_owned()
    };
    format!("rss             {rss}\ngpu energy      {gpu}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_sections_and_unavailable_reasons() {
        let v = json!({
            "cpu": {"host_utilisation": 0.5, "cpus": [
                {"cpu": 0, "utilisation": 0.25, "frequency_khz": 2_400_000},
                {"cpu": 1, "utilisation": null, "frequency_khz": null}]},
            "memory": {"host": {"used_bytes": 1u64 << 30, "total_bytes": 4u64 << 30,
                "available_bytes": 3u64 << 30}, "dram_energy_uj": null},
            "gpu": {"available": false, "state": "unavailable", "reason": "cannot load NVML"},
        });
        let s = render_status(&v);
        assert!(s.contains("50.0 % busy"), "{s}");
        assert!(
            s.contains("2.40 GHz") && s.contains("freq unavailable"),
            "{s}"
        );
        assert!(s.contains("1.00 GiB used of 4.00 GiB"), "{s}");
        assert!(
            s.contains("gpu             unavailable: cannot load NVML"),
            "{s}"
        );
        let g = json!({"gpu": {"available": true, "devices": [{"index": 0, "name": "NVIDIA H200",
            "method": "counter", "relative_uncertainty": 0.05, "energy_uj": 3_000_000,
            "attributed_uj": 2_000_000, "idle_uj": 1_000_000, "unattributed_uj": 0,
            "sample": {"power_mw": 350_000, "gpu_util_pct": null}, "mig": []}]}});
        let s = render_status(&g);
        assert!(
            s.contains("NVIDIA H200  350 W  util n/a  (counter, ±5 %)"),
            "{s}"
        );
        assert!(
            s.contains("energy 3.000 J = attributed 2.000 J + idle 1.000 J"),
            "{s}"
        );
        let p = render_process(
            &json!({"rss_bytes": 3u64 << 20, "gpu_energy_uj": 1_500_000, "gpu_state": "active"}),
        );
        assert_eq!(p, "rss             3.0 MiB\ngpu energy      1.500 J\n");
    }
}
