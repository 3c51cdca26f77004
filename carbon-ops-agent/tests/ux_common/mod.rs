//! A scripted agent for the `ux` tests: answers `status` (a package zone at 20 W, counted
//! from the wall clock), `tree`, `process`, `top` and `estimate` (with the real estimator),
//! and records every request.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixListener,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use carbon_ops::carbon::{cli::now, request::EstimateRequest, request::estimate_request};
use serde_json::{Value, json};

/// What the fake agent says about trees and processes.
#[derive(Clone, Debug)]
pub struct Script {
    /// `tree` answer, or `None` for `unknown_op` (an agent without the op).
    pub tree: Option<Value>,
    /// `process` answer for any pid.
    pub process: Option<Value>,
    /// `top` processes.
    pub top: Vec<Value>,
}

pub struct FakeAgent {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub requests: Arc<Mutex<Vec<Value>>>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn answer(script: &Script, req: &Value, started: f64) -> Value {
    let ok = |r: Value| json!({"v": 1, "ok": true, "result": r});
    let at = unix_now();
    match req["op"].as_str().unwrap_or("") {
        "status" => {
            // 20 W since start on package-0, 2 W on dram.
            let uj = ((at - started) * 20e6) as u64;
            ok(json!({
                "version": "0.1.0", "energy_source": "sysfs", "attribution_mode": "ebpf",
                "interval_ms": 100, "at": at, "uncertainty_rel": 0.05,
                "zones": [
                    {"name": "package-0", "kind": "package", "package": 0, "energy_uj": uj, "stale": false},
                    {"name": "dram", "kind": "dram", "package": 0, "energy_uj": uj / 10, "stale": false}
                ],
                "energy": {"total_uj": uj + uj / 10, "attributed_uj": 0, "idle_uj": 0, "unattributed_uj": 0}
            }))
        }
        "tree" => match &script.tree {
            Some(t) => {
                let mut t = t.clone();
                t["pid"] = req["pid"].clone();
                ok(t)
            }
            None => {
                json!({"v": 1, "ok": false, "error": {"code": "unknown_op", "message": "unknown op `tree`"}})
            }
        },
        "process" => match &script.process {
            Some(p) => ok(p.clone()),
            None => json!({"v": 1, "ok": false, "error": {"code": "not_found", "message": "no"}}),
        },
        "top" => {
            // A process with `cpu_rate` (cores) has used that much CPU since the agent started.
            let procs: Vec<Value> = script
                .top
                .iter()
                .map(|p| {
                    let mut p = p.clone();
                    if let Some(rate) = p["cpu_rate"].as_f64() {
                        p["cpu_time_ns"] = json!(((at - started) * rate * 1e9) as u64);
                    }
                    if let Value::Object(m) = &mut p {
                        m.remove("cpu_rate");
                    }
                    p
                })
                .collect();
            ok(
                json!({"by": "power", "window_s": 1.0, "energy_source": "sysfs", "processes": procs}),
            )
        }
        "estimate" => {
            let mut fields = req.clone();
            if let Value::Object(m) = &mut fields {
                m.remove("v");
                m.remove("op");
            }
            let parsed: Result<EstimateRequest, _> = serde_json::from_value(fields);
            match parsed
                .map_err(|e| e.to_string())
                .and_then(|r| estimate_request(&r, None, now()).map_err(|e| e.to_string()))
            {
                Ok(rec) => ok(rec.to_json()),
                Err(e) => {
                    json!({"v": 1, "ok": false, "error": {"code": "bad_request", "message": e}})
                }
            }
        }
        other => json!({"v": 1, "ok": false, "error": {"code": "unknown_op", "message": other}}),
    }
}

impl FakeAgent {
    pub fn start(script: Script) -> FakeAgent {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let started = unix_now() - 10.0;
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (script, log) = (script.clone(), log.clone());
                std::thread::spawn(move || {
                    let mut w = conn.try_clone().expect("clone");
                    for line in BufReader::new(conn).lines() {
                        let Ok(line) = line else { return };
                        let req: Value = serde_json::from_str(&line).expect("json request");
                        let a = answer(&script, &req, started);
                        log.lock().expect("log").push(req);
                        let mut out = serde_json::to_vec(&a).expect("encode");
                        out.push(b'\n');
                        if w.write_all(&out).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeAgent {
            dir,
            socket,
            requests,
        }
    }

    pub fn requests(&self, op: &str) -> Vec<Value> {
        self.requests
            .lock()
            .expect("log")
            .iter()
            .filter(|r| r["op"] == op)
            .cloned()
            .collect()
    }
}
