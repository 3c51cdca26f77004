//! One handler per op. Handlers are synchronous and bounded; every failure is an answer.
//!
//! Peer rules (`SO_PEERCRED`): root sees everything; any other uid sees its own processes
//! and the host totals, both from the copy published once per `resolution` (fine-grained
//! RAPL readings are a side channel: PLATYPUS, CVE-2020-8694). Asking for another user's
//! process is `permission_denied`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::{
    agent::{
        engine::{Shared, unix_now},
        store::{ProcRecord, Store},
    },
    carbon::{
        cli::now,
        request::{PidEnergy, estimate_request},
    },
    fleet::aggregate::{CgroupQuery, GroupBy},
    protocol::{self, ProtoError, Request, TopBy},
    units::MicroJoules,
};

/// Who is asking.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// Effective uid of the peer process.
    pub uid: u32,
    /// Its pid, when the kernel says.
    pub pid: Option<i32>,
}

impl Peer {
    fn root(self) -> bool {
        self.uid == 0
    }
}

/// The ledger as the server needs it.
pub trait LedgerOps: Send + Sync {
    /// Appends durably; returns `(seq, hash)`.
    fn append(&self, kind: &str, payload: Map<String, Value>) -> Result<(u64, String), String>;
    /// The head: `{seq, hash}`.
    fn head(&self) -> Result<Value, String>;
    /// Verification report.
    fn verify(&self) -> Result<Value, String>;
}

/// What handlers read.
pub struct Ctx {
    /// The store and agent facts.
    pub shared: Arc<Shared>,
    /// The ledger, when one is configured and open.
    pub ledger: Option<Arc<dyn LedgerOps>>,
    /// Region used by `estimate` when a request names neither a region nor a series.
    pub default_region: Option<String>,
    /// Per-cgroup / container / pod view (`cgroup`, `top` by group, metrics).
    pub fleet: Option<Arc<crate::fleet::service::Fleet>>,
}

/// Parses and answers one line.
pub fn handle_line(ctx: &Ctx, peer: Peer, line: &[u8]) -> Value {
    match protocol::parse_request(line) {
        Ok(env) => handle_envelope(ctx, peer, env),
        Err((id, e)) => protocol::err(id, &e),
    }
}

/// Answers one parsed request.
pub fn handle_envelope(ctx: &Ctx, peer: Peer, env: protocol::Envelope) -> Value {
    match handle(ctx, peer, env.request) {
        Ok(result) => protocol::ok(env.id, result),
        Err(e) => protocol::err(env.id, &e),
    }
}

fn not_found(pid: u32) -> ProtoError {
    ProtoError::new(
        "not_found",
        format!(
            "no process {pid} is known (never seen, or exited more than the retention window ago)"
        ),
    )
}

fn visible(peer: Peer, rec: &ProcRecord) -> Result<(), ProtoError> {
    if peer.root() || rec.uid == peer.uid {
        Ok(())
    } else {
        Err(ProtoError::new(
            "permission_denied",
            format!(
                "process {} belongs to another user; only root may read it",
                rec.id.pid
            ),
        ))
    }
}

/// Answers one typed request.
pub fn handle(ctx: &Ctx, peer: Peer, req: Request) -> Result<Value, ProtoError> {
    let shared = &ctx.shared;
    match req {
        Request::Status {} => Ok(shared.with_view(peer.root(), |s| status(shared, s, peer))),
        Request::Process { pid } => shared.with_view(peer.root(), |s| {
            let rec = s.by_pid(pid).ok_or_else(|| not_found(pid))?;
            visible(peer, rec)?;
            Ok(process(shared, s, rec))
        }),
        Request::Tree { pid } => shared.with_view(peer.root(), |s| {
            // The root may be unknown yet have known children (a parent that only waits has
            // used no CPU time procfs could see): its children are then the tree.
            let root = match s.by_pid(pid) {
                Some(rec) => {
                    visible(peer, rec)?;
                    rec.id
                }
                None => crate::tasks::ProcessId {
                    pid,
                    start_boottime_ns: 0,
                },
            };
            let all = s.tree(root);
            if all.is_empty() {
                return Err(not_found(pid));
            }
            Ok(tree(shared, s, peer, pid, &all))
        }),
        Request::Top { n, by } => {
            let n = n.unwrap_or(10).min(1000);
            let group = match by {
                Some(TopBy::Pod) => Some(GroupBy::Pod),
                Some(TopBy::Container) => Some(GroupBy::Container),
                Some(TopBy::Cgroup) => Some(GroupBy::Cgroup),
                _ => None,
            };
            if let Some(g) = group {
                return Ok(fleet(ctx)?.top_groups(peer.root(), peer.uid, g, n));
            }
            Ok(shared.with_view(peer.root(), |s| {
                top(shared, s, peer, n, by.unwrap_or_default())
            }))
        }
        Request::Estimate(req) => estimate(ctx, peer, &req),
        Request::LedgerAppend { kind, payload } => {
            let ledger = ledger(ctx)?;
            if kind == "genesis" {
                return Err(ProtoError::new("bad_request", "kind `genesis` is reserved"));
            }
            // Entries from non-root peers are wrapped with the kernel-reported uid, so no one
            // can append as another.
            let payload = peer_wrap(peer, payload);
            let (seq, hash) = ledger
                .append(&kind, payload)
                .map_err(|m| ProtoError::new("ledger", m))?;
            Ok(json!({"seq": seq, "hash": hash}))
        }
        Request::Cgroup {
            path,
            pod_uid,
            pod,
            container_id,
        } => fleet(ctx)?.cgroup_op(
            peer.root(),
            peer.uid,
            &CgroupQuery {
                path,
                pod_uid,
                pod,
                container_id,
            },
        ),
        Request::LedgerHead {} => ledger(ctx)?
            .head()
            .map_err(|m| ProtoError::new("ledger", m)),
        Request::LedgerVerify {} => ledger(ctx)?
            .verify()
            .map_err(|m| ProtoError::new("ledger", m)),
    }
}

fn peer_wrap(peer: Peer, payload: Map<String, Value>) -> Map<String, Value> {
    if peer.root() {
        return payload;
    }
    match crate::ledger::peer_payload(peer.uid, Value::Object(payload)) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn fleet(ctx: &Ctx) -> Result<&Arc<crate::fleet::service::Fleet>, ProtoError> {
    ctx.fleet
        .as_ref()
        .ok_or_else(|| ProtoError::new("unavailable", "this agent has no cgroup view"))
}

fn ledger(ctx: &Ctx) -> Result<&Arc<dyn LedgerOps>, ProtoError> {
    ctx.ledger.as_ref().ok_or_else(|| {
        ProtoError::new(
            "unavailable",
            "this agent has no ledger open (see its log and --ledger)",
        )
    })
}

fn status(shared: &Shared, s: &Store, peer: Peer) -> Value {
    let info = &shared.info;
    let mut v = json!({
        "version": info.version,
        "instance_id": info.instance_id,
        "energy_source": info.energy_source,
        "energy_source_reason": info.energy_source_reason,
        "attribution_mode": info.attribution_mode,
        "attribution_reason": info.attribution_reason,
        "interval_ms": info.interval_ms,
        "uptime_s": shared.started.elapsed().as_secs_f64(),
        "at": s.at_unix,
        "resolution_ms": if peer.root() { info.interval_ms } else { info.resolution_ms.max(info.interval_ms) },
        "zones": s.zones,
        "energy": s.energy,
        "host_busy_cpu_ns": s.host_busy_ns,
        "uncertainty_rel": s.uncertainty_rel,
        "idle_policy": info.idle_policy,
        "processes": s.procs.len(),
        "late_ticks": shared.late_ticks.load(std::sync::atomic::Ordering::Relaxed),
        "snapshot_errors": shared.snapshot_errors.load(std::sync::atomic::Ordering::Relaxed),
        "now": unix_now(),
    });
    s.telemetry.merge_status(&mut v);
    v
}

fn process(shared: &Shared, s: &Store, r: &ProcRecord) -> Value {
    let mut m = r.fields();
    let extra = json!({
        "energy_wh_total": MicroJoules(r.energy_uj).watt_hours(),
        "allocation_ratio": r.allocation_ratio(s.host_busy_ns),
        "uncertainty_rel": s.uncertainty_rel,
        "at": s.at_unix,
        "host_busy_cpu_ns": s.host_busy_ns,
        "host_energy_uj": s.energy.total_uj,
        "energy_source": shared.info.energy_source,
        "attribution_mode": shared.info.attribution_mode,
    });
    if let Value::Object(e) = extra {
        m.extend(e);
    }
    let mut v = Value::Object(m);
    s.telemetry.merge_process(&mut v, r.id.pid);
    v
}

fn tree(shared: &Shared, s: &Store, peer: Peer, pid: u32, all: &[&ProcRecord]) -> Value {
    let (mut cpu, mut uj, mut n, mut hidden) = (0u64, 0u64, 0usize, 0usize);
    for r in all {
        if peer.root() || r.uid == peer.uid {
            cpu += r.cpu_time_ns;
            uj += r.energy_uj;
            n += 1;
        } else {
            hidden += 1;
        }
    }
    json!({
        "pid": pid,
        "processes": n,
        "hidden_processes": hidden,
        "cpu_time_ns": cpu,
        "energy_uj": uj,
        "energy_wh_total": MicroJoules(uj).watt_hours(),
        "uncertainty_rel": s.uncertainty_rel,
        "attribution_mode": shared.info.attribution_mode,
        "energy_source": shared.info.energy_source,
        "at": s.at_unix,
    })
}

fn top(shared: &Shared, s: &Store, peer: Peer, n: usize, by: TopBy) -> Value {
    let window_s = shared.info.interval_ms as f64 / 1000.0 * crate::agent::store::RING as f64;
    let mut rows: Vec<(&ProcRecord, u64)> = s
        .procs
        .values()
        .filter(|r| peer.root() || r.uid == peer.uid)
        .map(|r| (r, r.recent_uj(s.tick)))
        .collect();
    match by {
        TopBy::Power => rows.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.energy_uj.cmp(&a.0.energy_uj))),
        _ => rows.sort_by_key(|r| std::cmp::Reverse(r.0.energy_uj)),
    }
    let processes: Vec<Value> = rows
        .iter()
        .take(n)
        .map(|(r, recent)| {
            json!({
                "pid": r.id.pid,
                "comm": r.comm,
                "uid": r.uid,
                "power_w": *recent as f64 / 1e6 / window_s,
                "energy_uj": r.energy_uj,
                "cpu_time_ns": r.cpu_time_ns,
                "exited": r.exited_unix,
            })
        })
        .collect();
    json!({
        "by": match by { TopBy::Power => "power", _ => "energy" },
        "window_s": window_s,
        "energy_source": shared.info.energy_source,
        "processes": processes,
    })
}

fn estimate(
    ctx: &Ctx,
    peer: Peer,
    req: &crate::carbon::request::EstimateRequest,
) -> Result<Value, ProtoError> {
    let owned;
    let req = if req.region.is_none() && req.series.is_none() && ctx.default_region.is_some() {
        let mut r = req.clone();
        r.region.clone_from(&ctx.default_region);
        owned = r;
        &owned
    } else {
        req
    };
    let pid_energy = match (req.energy_wh, req.pid) {
        (None, Some(pid)) => Some(ctx.shared.with_view(peer.root(), |s| {
            let r = s.by_pid(pid).ok_or_else(|| not_found(pid))?;
            visible(peer, r)?;
            let wh = MicroJoules(r.energy_uj).watt_hours();
            // The process's whole recorded energy, spread uniformly over the span (the record
            // says so); per-tick history is not kept by the agent.
            Ok::<_, ProtoError>(PidEnergy {
                energy_wh: wh,
                energy_sigma_wh: wh * s.uncertainty_rel,
                ticks: Vec::new(),
            })
        })?),
        _ => None,
    };
    let record = estimate_request(req, pid_energy.as_ref(), now())
        .map_err(|e| ProtoError::new("bad_request", e.to_string()))?;
    let mut value = record.to_json();
    if req.record {
        let ledger = ledger(ctx)?;
        let Value::Object(payload) = value.clone() else {
            return Err(ProtoError::new("internal", "record is not an object"));
        };
        let payload = peer_wrap(peer, payload);
        let (seq, hash) = ledger
            .append("estimate", payload)
            .map_err(|m| ProtoError::new("ledger", m))?;
        if let Value::Object(m) = &mut value {
            m.insert("ledger".into(), json!({"seq": seq, "hash": hash}));
        }
    }
    Ok(value)
}
