"""``EnergyLogger``: the energy one process used between two calls, from the agent.

Each call takes a snapshot with the ``process`` op (cumulative ``energy_uj``, ``cpu_time_ns``
and the host's cumulative ``host_busy_cpu_ns`` at the agent's tick ``at``) and differences it
against the previous one. Without an agent the logger never raises: it reports
``attribution_mode = "monitor_only"`` with the process's own CPU time and no energy, and
re-baselines when the agent is back (a window is only measured between two answers of the
same agent instance about the same process).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from ._procfs import process_cpu_ns
from .client import AgentClient
from .errors import AgentError, CarbonOpsError

#: Microjoules in one watt-hour (3600 J).
UJ_PER_WH = 3_600_000_000
#: ``attribution_mode`` of a window whose energy is not known.
MONITOR_ONLY = "monitor_only"

_COUNTERS = ("cpu_time_ns", "energy_uj", "host_busy_cpu_ns")


@dataclass(frozen=True)
class _Snapshot:
    """One reading: always the local clock and CPU time; the agent's answer when it gave one."""

    local_time: float
    local_cpu_ns: int | None
    agent: dict[str, Any] | None
    instance_id: str | None
    error: str | None

    @property
    def ts(self) -> float:
        if self.agent is not None:
            return float(self.agent["at"])
        return self.local_time


def _check_process_answer(p: dict[str, Any]) -> str | None:
    for key in _COUNTERS:
        v = p.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            return f"the agent's process answer has no valid {key!r}"
    at = p.get("at")
    if not isinstance(at, (int, float)) or isinstance(at, bool):
        return "the agent's process answer has no valid 'at'"
    return None


class EnergyLogger:
    """Energy of process ``pid`` (default: this process) between successive ``log_metrics``.

    The constructor takes the baseline and never raises when the agent is down.
    """

    def __init__(self, socket_path: str | None = None, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else int(pid)
        self._client = AgentClient(socket_path)
        self._instance_id: str | None = None
        self._instance_conn = -1
        self._prev = self._snapshot()

    @property
    def socket_path(self) -> str:
        return self._client.socket_path

    @property
    def attribution_mode(self) -> str:
        """The agent's mode (``ebpf``/``procfs``) at the last reading, or ``monitor_only``."""
        a = self._prev.agent
        return str(a.get("attribution_mode")) if a is not None else MONITOR_ONLY

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EnergyLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- readings -----------------------------------------------------------------------

    def _refresh_instance(self) -> None:
        st = self._client.status()
        iid = st.get("instance_id")
        self._instance_id = None if iid is None else str(iid)
        self._instance_conn = self._client.connections

    def _snapshot(self) -> _Snapshot:
        local_time = time.time()
        local_cpu = process_cpu_ns(self.pid)
        try:
            if self._client.connections != self._instance_conn:
                # status once per connection: a new connection may reach a restarted agent
                self._refresh_instance()
            p = self._client.process(self.pid)
            if self._client.connections != self._instance_conn:
                # Reconnected while asking: the answer came from a (possibly new) instance.
                self._refresh_instance()
        except AgentError as exc:
            return _Snapshot(local_time, local_cpu, None, None, f"the agent refused: {exc}")
        except CarbonOpsError as exc:
            return _Snapshot(local_time, local_cpu, None, None, str(exc))
        bad = _check_process_answer(p)
        if bad is not None:
            return _Snapshot(local_time, local_cpu, None, None, bad)
        return _Snapshot(local_time, local_cpu, p, self._instance_id, None)

    # -- windows ------------------------------------------------------------------------

    def log_metrics(self, label: str) -> dict[str, Any]:
        """The window since the previous call (or construction), as a dict; never raises
        because of the agent. Keys: ``label``, ``timestamp_start``, ``timestamp_end``, ``pid``,
        ``energy`` {``energy_wh_total``, ``energy_uj``, ``cpu_time_ns``}, ``allocation_ratio``,
        ``attribution_mode``, ``energy_source``, ``uncertainty_rel``, ``note``."""
        cur = self._snapshot()
        prev, self._prev = self._prev, cur
        start = prev.ts
        end = max(cur.ts, start)
        if prev.agent is not None and cur.agent is not None:
            why = self._rebaseline_reason(prev, cur)
            if why is None:
                return self._measured(label, prev.agent, cur.agent, start, end)
            note = f"{why}; re-baselined now, the next window is measured"
        elif cur.agent is not None:
            what = "agent reachable again" if prev.error is not None else "agent reached"
            note = (
                f"{what}; re-baselined now: this window's energy is unknown, "
                "the next window is measured"
            )
        else:
            note = f"monitor_only: {cur.error}"
        return self._monitor_only(label, prev, cur, start, end, note)

    @staticmethod
    def _rebaseline_reason(prev: _Snapshot, cur: _Snapshot) -> str | None:
        a, b = prev.agent or {}, cur.agent or {}
        if prev.instance_id != cur.instance_id:
            return "the agent restarted (instance_id changed), its counters started again"
        if a.get("started") != b.get("started"):
            return f"pid {b.get('pid')} now belongs to another process (start time changed)"
        for key in _COUNTERS:
            if b[key] < a[key]:
                return f"the agent's {key} went backwards ({a[key]} -> {b[key]})"
        return None

    def _measured(
        self, label: str, a: dict[str, Any], b: dict[str, Any], start: float, end: float
    ) -> dict[str, Any]:
        d_uj = b["energy_uj"] - a["energy_uj"]
        d_cpu = b["cpu_time_ns"] - a["cpu_time_ns"]
        d_host = b["host_busy_cpu_ns"] - a["host_busy_cpu_ns"]
        ratio = 0.0 if d_host == 0 else min(1.0, max(0.0, d_cpu / d_host))
        return {
            "label": label,
            "timestamp_start": start,
            "timestamp_end": end,
            "pid": self.pid,
            "energy": {
                "energy_wh_total": d_uj / UJ_PER_WH,
                "energy_uj": d_uj,
                "cpu_time_ns": d_cpu,
            },
            "allocation_ratio": ratio,
            "attribution_mode": b.get("attribution_mode"),
            "energy_source": b.get("energy_source"),
            "uncertainty_rel": b.get("uncertainty_rel"),
            "note": None,
        }

    def _monitor_only(
        self,
        label: str,
        prev: _Snapshot,
        cur: _Snapshot,
        start: float,
        end: float,
        note: str,
    ) -> dict[str, Any]:
        cpu: int | None = None
        if prev.local_cpu_ns is not None and cur.local_cpu_ns is not None:
            cpu = max(0, cur.local_cpu_ns - prev.local_cpu_ns)
        return {
            "label": label,
            "timestamp_start": start,
            "timestamp_end": end,
            "pid": self.pid,
            "energy": {"energy_wh_total": None, "energy_uj": None, "cpu_time_ns": cpu},
            "allocation_ratio": None,
            "attribution_mode": MONITOR_ONLY,
            "energy_source": None,
            "uncertainty_rel": None,
            "note": note,
        }
