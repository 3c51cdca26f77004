"""A fake carbon-ops agent for the client's tests: a thread serving the socket protocol (v1,
docs/protocol.md) on a temp Unix socket, with state the test sets by hand and scripted
misbehaviour (error answers, lines that are not JSON, dropped connections, going away and
coming back as a new instance).

Also runnable as a script (``python fake_agent.py SOCKET``) for manual checks.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections import deque
from typing import Any

MAX_LINE = 64 * 1024
ESTIMATE_FIELDS = {
    "start_ts", "end_ts", "energy_wh", "energy_sigma_wh", "energy_rel_uncertainty", "pid",
    "region", "series", "intensity_kind", "intensity_rel_uncertainty", "gap_policy", "pue",
    "pue_sigma", "datacenter", "method", "confidence", "samples", "seed", "provider", "zone",
    "record",
}
#: region -> (canonical, g/kWh, year); values of the bundled table (docs/carbon.md).
REGIONS = {"FR": ("FRA", 56.039, 2023), "FRA": ("FRA", 56.039, 2023)}


class FakeAgent:
    """Serves ``status``, ``process``, ``top`` and ``estimate`` from the fields below."""

    def __init__(self, path: str, default_region: str | None = None) -> None:
        self.path = path
        self.default_region = default_region
        self.lock = threading.Lock()
        self.instance_id = ""
        self.energy_source = "sysfs"
        self.attribution_mode = "procfs"
        self.uncertainty_rel = 0.05
        self.at = 1_764_345_600.0
        self.host_busy_cpu_ns = 0
        self.host_energy_uj = 0
        #: pid -> process fields (cpu_time_ns, energy_uj, started, comm, ...).
        self.processes: dict[int, dict[str, Any]] = {}
        #: When set, an unknown pid is created, and each `process` answer for a pid not set by
        #: hand advances it by this step (at, cpu_time_ns, energy_uj, host_busy_cpu_ns).
        self.auto_step: tuple[float, int, int, int] | None = None
        self._auto: set = set()
        #: Scripted replacements for the next answers: ("raw", bytes) | ("close", None) |
        #: ("error", (code, message)).
        self.script: deque[tuple[str, Any]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, instance_id: str | None = None) -> FakeAgent:
        """Listens (again); a new ``instance_id`` unless one is given, as after a restart."""
        self.instance_id = instance_id or uuid.uuid4().hex
        if os.path.exists(self.path):
            os.unlink(self.path)
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(self.path)
        ls.listen(16)
        ls.settimeout(0.05)
        self._listener = ls
        self._stop = threading.Event()
        t = threading.Thread(target=self._accept_loop, args=(ls, self._stop), daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        """Goes away: closes the listener and every connection, removes the socket file."""
        if self._listener is None:
            return
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()
        self._listener.close()
        self._listener = None
        with self.lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def _accept_loop(self, ls: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                conn, _ = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self._conns.append(conn)
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    # -- state helpers ----------------------------------------------------------------------

    def set_process(self, pid: int, **fields: Any) -> None:
        with self.lock:
            p = self.processes.setdefault(pid, _new_process(pid))
            p.update(fields)
            self._auto.discard(pid)

    def set_host(self, **fields: Any) -> None:
        with self.lock:
            for k, v in fields.items():
                setattr(self, k, v)

    def drop_connections(self) -> None:
        """Closes the open connections but keeps listening (same instance)."""
        with self.lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    # -- serving ----------------------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > MAX_LINE:
                        self._send(conn, _err(None, "line_too_long", "request line over 64 KiB"))
                        return
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                    continue
                line, buf = buf[:nl], buf[nl + 1 :]
                if len(line) > MAX_LINE:
                    self._send(conn, _err(None, "line_too_long", "request line over 64 KiB"))
                    return
                if not line.strip():
                    continue
                with self.lock:
                    scripted = self.script.popleft() if self.script else None
                if scripted is not None:
                    kind, arg = scripted
                    if kind == "close":
                        return
                    if kind == "raw":
                        conn.sendall(arg)
                        continue
                answer = self._answer(line)
                if scripted is not None and scripted[0] == "error":
                    answer = _err(answer.get("id"), *scripted[1])
                self._send(conn, answer)
        except OSError:
            return
        finally:
            conn.close()

    @staticmethod
    def _send(conn: socket.socket, answer: dict[str, Any]) -> None:
        conn.sendall(json.dumps(answer).encode() + b"\n")

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            req = json.loads(line)
        except ValueError:
            return _err(None, "bad_json", "request is not JSON")
        if not isinstance(req, dict):
            return _err(None, "bad_json", "request is not a JSON object")
        rid = req.get("id")
        with self.lock:
            self.requests.append(req)
            if req.get("v") != 1:
                return _err(rid, "unsupported_version", "only v 1 is spoken")
            op = req.get("op")
            handler = {"status": self._status, "process": self._process,
                       "top": self._top, "estimate": self._estimate}.get(op)
            if handler is None:
                return _err(rid, "unknown_op", f"unknown op {op!r}")
            fields = {k: v for k, v in req.items() if k not in ("v", "op", "id")}
            res = handler(fields)
        if isinstance(res, tuple):
            return _err(rid, *res)
        out: dict[str, Any] = {"v": 1, "ok": True, "result": res}
        if "id" in req:
            out["id"] = rid
        return out

    def _status(self, f: dict[str, Any]) -> Any:
        total = self.host_energy_uj
        return {
            "version": "0.0.0-fake", "instance_id": self.instance_id,
            "energy_source": self.energy_source, "attribution_mode": self.attribution_mode,
            "interval_ms": 100, "uptime_s": 1.0, "at": self.at, "resolution_ms": 100,
            "zones": [{"name": "package-0", "kind": "package", "package": 0,
                       "energy_uj": total, "stale": False}],
            "energy": {"total_uj": total, "attributed_uj": total, "idle_uj": 0,
                       "unattributed_uj": 0},
            "host_busy_cpu_ns": self.host_busy_cpu_ns,
            "uncertainty_rel": self.uncertainty_rel, "idle_policy": "separate",
            "processes": len(self.processes),
        }

    def _process(self, f: dict[str, Any]) -> Any:
        pid = f.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return ("bad_request", "field `pid` must be a positive integer")
        if pid not in self.processes:
            if self.auto_step is None:
                return ("not_found", f"no process with pid {pid}")
            self.processes[pid] = _new_process(pid)
            self._auto.add(pid)
        elif pid in self._auto and self.auto_step is not None:
            dt, dcpu, duj, dhost = self.auto_step
            p = self.processes[pid]
            p["cpu_time_ns"] += dcpu
            p["energy_uj"] += duj
            self.at += dt
            self.host_busy_cpu_ns += dhost
            self.host_energy_uj += duj
        proc = self.processes[pid]
        e = proc.get("energy_uj")
        # host values first, so a test can override any of them per process (e.g. `at=None`)
        p: dict[str, Any] = {
            "at": self.at, "host_busy_cpu_ns": self.host_busy_cpu_ns,
            "host_energy_uj": self.host_energy_uj, "energy_source": self.energy_source,
            "attribution_mode": self.attribution_mode, "uncertainty_rel": self.uncertainty_rel,
            "energy_wh_total": e / 3.6e9 if isinstance(e, int) else None,
        }
        p.update(proc)
        return p

    def _top(self, f: dict[str, Any]) -> Any:
        n, by = f.get("n", 10), f.get("by", "power")
        if by not in ("power", "energy") or not isinstance(n, int) or not 0 < n <= 1000:
            return ("bad_request", "`by` is power or energy, `n` is 1..1000")
        procs = sorted(self.processes.values(), key=lambda p: -p["energy_uj"])[:n]
        return {"by": by, "window_s": 10.0, "processes": [
            {"pid": p["pid"], "comm": p["comm"], "uid": p["uid"], "power_w": 0.0,
             "energy_uj": p["energy_uj"], "cpu_time_ns": p["cpu_time_ns"],
             "exited": p["exited"]} for p in procs]}

    def _estimate(self, f: dict[str, Any]) -> Any:
        unknown = sorted(set(f) - ESTIMATE_FIELDS)
        if unknown:
            return ("bad_request", f"unknown field `{unknown[0]}`")
        if f.get("energy_wh") is None:
            return ("bad_request", "no energy: give energy_wh or pid")
        region = f.get("region") or self.default_region
        if region is None:
            return ("bad_request", "no intensity source: give a region or a series")
        if region.upper() not in REGIONS:
            return ("bad_request", f"unknown region `{region}`; see --list-regions")
        canon, g_kwh, year = REGIONS[region.upper()]
        e = float(f["energy_wh"])
        pue = float(f.get("pue") or 1.58)
        kwh = e / 1000 * pue
        g = kwh * g_kwh
        conf = float(f.get("confidence", 95))
        return {
            "energy_consumed_wh": e, "energy_consumed_kwh": e / 1000,
            "total_energy_with_pue_kwh": kwh, "carbon_emissions_gco2": g,
            "carbon_emissions_kgco2": g / 1000, "carbon_intensity_used_gco2_kwh": g_kwh,
            "intensity_uncertainty": 0.3, "pue_used": pue, "region": canon,
            "start_ts": str(f.get("start_ts")), "end_ts": str(f.get("end_ts")),
            "coverage": 1.0, "intensity_kind": "average",
            "provenance": {"dataset": "fake", "year": year, "source": "bundled",
                           "energy_source": "caller", "energy_spread": "single",
                           "energy_sigma_wh": f.get("energy_sigma_wh") or 0.0,
                           "gap_policy": None, "pue_source": "user" if "pue" in f else
                           "datacenter:enterprise", "pue_sigma": 0.0, "fallback_reason": None},
            "meta": {"method": f.get("method", "analytical_truncated"), "ci_lower_g": g * 0.5,
                     "ci_upper_g": g * 1.5,
                     "confidence_level_pct": conf * 100 if conf < 1 else conf,
                     "samples": None, "seed": None},
        }


def _new_process(pid: int) -> dict[str, Any]:
    return {"pid": pid, "comm": "python3", "uid": os.getuid(), "cgroup": "/", "cpu_time_ns": 0,
            "energy_uj": 0, "allocation_ratio": 0.0, "started": 1_764_345_000.0,
            "exited": None}


def _err(rid: Any, code: str, message: str) -> dict[str, Any]:
    out: dict[str, Any] = {"v": 1, "ok": False, "error": {"code": code, "message": message}}
    if rid is not None:
        out["id"] = rid
    return out


if __name__ == "__main__":
    import sys
    import time

    agent = FakeAgent(sys.argv[1], default_region="FR")
    agent.auto_step = (0.1, 1_000_000, 3_600_000, 4_000_000)
    agent.start()
    print(f"fake agent on {agent.path}", flush=True)
    while True:
        time.sleep(3600)
