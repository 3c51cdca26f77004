#!/usr/bin/env bash
# GPU check for carbon-ops telemetry (issue 7), for a machine with an NVIDIA GPU.
#
# Builds the agent, keeps the GPU busy with a small PyTorch matmul loop, and checks with the
# agent's own telemetry code (tests/telemetry_gpu_live.rs) that: NVML loads, the device
# energy counter advances, per-process GPU energy goes to the workload's PID, and
# device = attributed + idle + unattributed holds exactly. If the agent binary already serves
# a `gpu` section in `status`, it is started with GPU telemetry and checked through its socket
# too. Prints the GPU model. Exit: 0 pass, 1 fail, 77 skipped (no NVIDIA library or no torch).
#
# Usage: scripts/gpu-check.sh [SECONDS]   (default 15; output kept in $GPU_CHECK_OUT or a temp dir)
#        scripts/gpu-check.sh --prepare DIR
#            builds here (release) and copies carbon-ops-agent, carbon-ops and the check binary
#            into DIR, for a GPU machine that cannot build (no network for crates); there run
#            GPU_CHECK_PREBUILT=DIR scripts/gpu-check.sh [SECONDS].
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

build() { # DIR: build release binaries and the check binary, copy them into DIR
  mkdir -p "$1"
  cargo build --release -p carbon-ops-agent --bins >"$1/build.log" 2>&1 || return 1
  local exe
  exe=$(cargo test --release -p carbon-ops-agent --test telemetry_gpu_live --no-run 2>&1 |
    tee -a "$1/build.log" | sed -n 's/.*Executable .*(\(.*telemetry_gpu_live-[^)]*\)).*/\1/p' | tail -1)
  [ -n "$exe" ] && [ -x "$exe" ] || return 1
  cp "$CARGO_TARGET_DIR/release/carbon-ops-agent" "$CARGO_TARGET_DIR/release/carbon-ops" "$1/" &&
    cp "$exe" "$1/telemetry_gpu_live"
}
if [ "${1:-}" = "--prepare" ]; then
  [ -n "${2:-}" ] || { echo "usage: $0 --prepare DIR" >&2; exit 2; }
  build "$2" || { echo "[gpu-check] build failed: see $2/build.log" >&2; exit 1; }
  echo "[gpu-check] prepared $2: run GPU_CHECK_PREBUILT=$2 $0 on the GPU machine"
  exit 0
fi
SECS=${1:-15}
OUT=${GPU_CHECK_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
log() { printf '[gpu-check] %s\n' "$*"; }
skip() { log "SKIP: $*"; exit 77; }
fail() { log "FAIL: $*"; exit 1; }

if ! { ldconfig -p 2>/dev/null | grep -q 'libnvidia-ml\.so'; } &&
   ! ls /usr/lib*/libnvidia-ml.so* /usr/lib*/*/libnvidia-ml.so* >/dev/null 2>&1; then
  skip "no libnvidia-ml.so on this machine (no NVIDIA driver): GPU telemetry reports unavailable here"
fi
PY=${PYTHON:-python3}
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  skip "PyTorch with CUDA is not importable by $PY: no GPU workload to run (install torch, or set PYTHON)"
fi

if [ -n "${GPU_CHECK_PREBUILT:-}" ]; then
  BIN=$GPU_CHECK_PREBUILT
  [ -x "$BIN/telemetry_gpu_live" ] || fail "$BIN/telemetry_gpu_live missing: run $0 --prepare $BIN first"
else
  log "building (release) ..."
  BIN=$OUT/bin
  build "$BIN" || fail "build failed: see $BIN/build.log"
fi

log "starting the GPU workload (matmul loop, $((SECS + 20)) s) ..."
"$PY" - "$((SECS + 20))" >"$OUT/workload.log" 2>&1 <<'PYEOF' &
import sys, time, torch
end = time.time() + float(sys.argv[1])
a = torch.randn(4096, 4096, device="cuda")
b = torch.randn(4096, 4096, device="cuda")
torch.cuda.synchronize()
print("ready", torch.cuda.get_device_name(0), flush=True)
while time.time() < end:
    for _ in range(20):
        c = a @ b
    torch.cuda.synchronize()
print("done", float(c[0, 0]), flush=True)
PYEOF
WL=$!
AGENT=
cleanup() { kill "$WL" 2>/dev/null; [ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT
for _ in $(seq 1 120); do grep -q ready "$OUT/workload.log" && break; kill -0 "$WL" 2>/dev/null || break; sleep 0.5; done
grep -q ready "$OUT/workload.log" || fail "workload did not start: $(tail -5 "$OUT/workload.log")"
log "workload pid $WL on $(sed -n 's/^ready //p' "$OUT/workload.log")"

log "telemetry check for $SECS s ..."
CARBON_OPS_GPU_CHECK_PID=$WL CARBON_OPS_GPU_CHECK_SECS=$SECS \
  "$BIN/telemetry_gpu_live" --nocapture >"$OUT/live.log" 2>&1
LIVE=$?
grep '^GPU_CHECK ' "$OUT/live.log" | sed 's/^GPU_CHECK //' >"$OUT/gpu-check.json"
if [ -s "$OUT/gpu-check.json" ]; then
  "$PY" - "$OUT/gpu-check.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
print("[gpu-check] source:", r["gpu_source"], "| ticks:", r["ticks"], "| split bases:", r["bases"])
for d in r["devices"]:
    print(f"[gpu-check] GPU {d['index']}: {d['name']} method={d['method']} energy={d['energy_uj']/1e6:.1f} J "
          f"attributed={d['attributed_uj']/1e6:.1f} J idle={d['idle_uj']/1e6:.1f} J "
          f"unattributed={d['unattributed_uj']/1e6:.1f} J advanced={d['advanced']} conserves={d['conserves']}")
print(f"[gpu-check] workload pid {r['workload_pid']}: {r['workload_gpu_energy_uj']/1e6:.1f} J (top pid {r['top_pid']})")
PYEOF
fi
[ "$LIVE" -eq 0 ] || fail "telemetry check failed: $(grep -m1 'FAIL' "$OUT/live.log" || tail -20 "$OUT/live.log")"
log "telemetry check passed"

if "$BIN/carbon-ops-agent" --help 2>/dev/null | grep -q -- '--gpu'; then
  SOCK=$OUT/agent.sock
  "$BIN/carbon-ops-agent" --gpu nvml --attribution procfs --interval 100ms --socket "$SOCK" \
    --no-ledger >"$OUT/agent.log" 2>&1 &
  AGENT=$!
  for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
  [ -S "$SOCK" ] || fail "agent did not start: $(tail -5 "$OUT/agent.log")"
  sleep 5
  "$BIN/carbon-ops" --socket "$SOCK" status --json >"$OUT/status.json" || fail "status failed"
  "$BIN/carbon-ops" --socket "$SOCK" process "$WL" --json >"$OUT/process.json" || fail "process failed"
  "$PY" - "$OUT/status.json" "$OUT/process.json" <<'PYEOF' || fail "agent-level check failed"
import json, sys
s = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2]))
s = s.get("result", s); p = p.get("result", p)
g = s["gpu"]
assert g["available"], g
for d in g["devices"]:
    assert d["energy_uj"] > 0, d
    assert d["energy_uj"] == d["attributed_uj"] + d["idle_uj"] + d["unattributed_uj"], d
assert p["gpu_energy_uj"] > 0, p
print(f"[gpu-check] agent: status gpu ok, process {p.get('pid')} gpu_energy_uj={p['gpu_energy_uj']}")
PYEOF
else
  fail "agent binary $BIN/carbon-ops-agent has no --gpu flag: it is older than this script; rebuild it"
fi
log "PASS (output in $OUT)"
