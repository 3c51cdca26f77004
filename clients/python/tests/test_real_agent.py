"""End to end against the real agent binary, on a fake powercap tree at a steady 20 W.

Runs only when ``CARBON_OPS_AGENT_BIN`` names the agent (``tests/run-python-tests.sh`` sets it
to ``target/debug/carbon-ops-agent`` when that exists); ``CARBON_OPS_ATTRIBUTION=ebpf`` runs
the agent with ``--attribution ebpf`` (needs the privileges eBPF needs), else ``procfs``.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from carbon_ops import CarbonEstimator, AgentClient, AgentError, AgentUnavailable, EnergyLogger

from quickstart_text import QUICKSTART

AGENT_BIN = os.environ.get("CARBON_OPS_AGENT_BIN")
pytestmark = pytest.mark.skipif(
    not AGENT_BIN, reason="set CARBON_OPS_AGENT_BIN to the carbon-ops-agent binary to run"
)

MAX_RANGE_UJ = 262143328850
WATTS = 20
START_UJ = 1_000_000_000


class PowercapWriter:
    """``<root>/intel-rapl:0 -> <root>/devices/virtual/powercap/intel-rapl/intel-rapl:0`` with
    ``name``, ``max_energy_range_uj`` and an ``energy_uj`` advanced every 10 ms at 20 W
    (replaced atomically, so a reader never sees a half-written number)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.zone = root / "devices/virtual/powercap/intel-rapl/intel-rapl:0"
        self.zone.mkdir(parents=True)
        (self.zone / "name").write_text("package-0\n")
        (self.zone / "max_energy_range_uj").write_text(f"{MAX_RANGE_UJ}\n")
        os.symlink(self.zone, root / "intel-rapl:0")
        self._tmp = root / "devices" / ".energy_uj.tmp"
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._write(START_UJ)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _write(self, uj: int) -> None:
        self._tmp.write_text(f"{uj % (MAX_RANGE_UJ + 1)}\n")
        os.replace(self._tmp, self.zone / "energy_uj")

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            elapsed = time.monotonic() - self._t0
            self._write(START_UJ + int(WATTS * 1_000_000 * elapsed))

    def __enter__(self) -> PowercapWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        x += 1


def wait_for(what, fn, timeout: float):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            out = fn()
            if out is not None:
                return out
        except (AgentUnavailable, AgentError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}: {last}")


def test_real_agent_end_to_end(short_dir, child_env):
    tmp = Path(short_dir)
    sock = tmp / "agent.sock"
    attribution = os.environ.get("CARBON_OPS_ATTRIBUTION", "procfs")
    assert attribution in ("procfs", "ebpf")
    (tmp / "powercap").mkdir()
    log_path = tmp / "agent.log"
    with PowercapWriter(tmp / "powercap"), open(log_path, "wb") as agent_log:
        agent = subprocess.Popen(
            [AGENT_BIN, "--rapl-mode", "sysfs", "--powercap-root", str(tmp / "powercap"),
             "--cpu-sysfs-root", "/sys/devices/system/cpu", "--attribution", attribution,
             "--socket", str(sock), "--ledger", str(tmp / "ledger.jsonl"),
             "--interval", "100ms", "--region", "FR"],
            stdout=agent_log, stderr=subprocess.STDOUT,
        )

        def agent_log_text() -> str:
            return log_path.read_text(errors="replace")[-4000:]

        try:
            def socket_up():
                if agent.poll() is not None:
                    pytest.fail(f"agent exited with {agent.returncode}:\n{agent_log_text()}")
                return True if sock.exists() else None

            wait_for("the agent's socket", socket_up, 10.0)
            client = AgentClient(str(sock))
            # the agent has seen this process (a tick after start)
            wait_for("the agent to know this process", lambda: client.process(os.getpid()), 10.0)

            logger = EnergyLogger(socket_path=str(sock))
            assert logger.attribution_mode == attribution
            burn(0.5)
            time.sleep(0.35)  # a few ticks so the burn is attributed

            st = client.status()
            assert st["energy_source"] == "sysfs", st
            assert st["attribution_mode"] == attribution
            e = st["energy"]
            assert e["total_uj"] == e["attributed_uj"] + e["idle_uj"] + e["unattributed_uj"], e
            assert e["total_uj"] > 0

            m = logger.log_metrics("burn")
            assert m["attribution_mode"] in ("ebpf", "procfs"), m
            assert m["energy"]["energy_wh_total"] > 0, m
            assert m["energy"]["energy_uj"] > 0 and m["energy"]["cpu_time_ns"] > 0, m
            assert 0 < m["allocation_ratio"] <= 1 and m["energy_source"] == "sysfs", m
            assert m["timestamp_end"] > m["timestamp_start"], m
            # at most the 20 W the host drew over the window (plus one tick of slack)
            window_s = m["timestamp_end"] - m["timestamp_start"]
            assert m["energy"]["energy_wh_total"] <= WATTS * (window_s + 0.2) / 3600, m

            p = subprocess.run([sys.executable, "-c", QUICKSTART],
                               env=child_env(CARBON_OPS_SOCKET=str(sock)),
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            record = ast.literal_eval(p.stdout.strip())
            assert isinstance(record, dict) and "carbon_emissions_gco2" in record
            # The quick-start's process may be too young for the agent to have seen it (a
            # procfs agent learns of processes at its next tick): then its metric is
            # monitor_only and the record says why, with no invented figure.
            if record["carbon_emissions_gco2"] is None:
                assert record.get("note"), record
            # With a default region on the agent, an estimate of a measured window is real.
            est = CarbonEstimator(socket_path=str(sock)).estimate_over_span(
                start_ts=m["timestamp_start"], end_ts=m["timestamp_end"],
                energy_wh=m["energy"]["energy_wh_total"]).to_dict()
            assert est["region"] in ("FR", "FRA"), est
            assert isinstance(est["carbon_emissions_gco2"], float) and est["carbon_emissions_gco2"] > 0, est
            assert est["meta"]["ci_lower_g"] <= est["carbon_emissions_gco2"] <= est["meta"]["ci_upper_g"], est
            logger.close()
            client.close()
        finally:
            if agent.poll() is None:
                agent.send_signal(signal.SIGTERM)
            try:
                rc = agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
                pytest.fail(f"agent did not exit within 10 s of SIGTERM:\n{agent_log_text()}")
    assert rc == 0, f"agent exit status {rc}:\n{agent_log_text()}"
    assert not sock.exists(), "the agent left its socket behind"
