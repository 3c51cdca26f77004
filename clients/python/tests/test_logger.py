"""EnergyLogger: window maths by hand, monitor_only without an agent, reconnects and
re-baselining."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from carbon_ops import MONITOR_ONLY, EnergyLogger
from carbon_ops._procfs import parse_stat_cpu_ns, process_cpu_ns

PID = 4242
KEYS = {"label", "timestamp_start", "timestamp_end", "pid", "energy", "allocation_ratio",
        "attribution_mode", "energy_source", "uncertainty_rel", "note"}


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        x += 1


def baseline(fake):
    """Agent at t=1000.0 s: host busy 10 s of CPU; pid 4242 at 2 s CPU, 2 Wh (7.2e9 uJ)."""
    fake.set_host(at=1000.0, host_busy_cpu_ns=10_000_000_000, host_energy_uj=50_000_000_000)
    fake.set_process(PID, cpu_time_ns=2_000_000_000, energy_uj=7_200_000_000)


def test_window_maths_by_hand(fake):
    baseline(fake)
    log = EnergyLogger(socket_path=fake.path, pid=PID)
    assert log.attribution_mode == "procfs"
    # +10.5 s; the process used 1 s of CPU of the host's 4 s busy; 1.8e9 uJ = 0.5 Wh.
    fake.set_host(at=1010.5, host_busy_cpu_ns=14_000_000_000)
    fake.set_process(PID, cpu_time_ns=3_000_000_000, energy_uj=9_000_000_000)
    m = log.log_metrics("step-1")
    assert set(m) == KEYS
    assert m["label"] == "step-1" and m["pid"] == PID
    assert (m["timestamp_start"], m["timestamp_end"]) == (1000.0, 1010.5)
    assert m["energy"] == {"energy_wh_total": 0.5, "energy_uj": 1_800_000_000,
                           "cpu_time_ns": 1_000_000_000}
    assert m["allocation_ratio"] == 0.25
    assert (m["attribution_mode"], m["energy_source"], m["uncertainty_rel"]) == (
        "procfs", "sysfs", 0.05)
    assert m["note"] is None

    # Next window starts where the last ended. Host idle (no busy CPU): ratio 0, not a
    # division by zero; energy 360 uJ = 1e-7 Wh.
    fake.set_host(at=1011.0)
    fake.set_process(PID, energy_uj=9_000_000_360)
    m = log.log_metrics("idle")
    assert (m["timestamp_start"], m["timestamp_end"]) == (1010.5, 1011.0)
    assert m["energy"] == {"energy_wh_total": 360 / 3.6e9, "energy_uj": 360, "cpu_time_ns": 0}
    assert m["allocation_ratio"] == 0.0

    # More process CPU than host busy CPU (sampling skew) is clamped to 1.
    fake.set_host(at=1012.0, host_busy_cpu_ns=15_000_000_000, attribution_mode="ebpf")
    fake.set_process(PID, cpu_time_ns=5_000_000_000)
    m = log.log_metrics("skew")
    assert m["allocation_ratio"] == 1.0
    assert m["energy"]["cpu_time_ns"] == 2_000_000_000
    assert m["attribution_mode"] == "ebpf"


def test_pid_defaults_to_self(fake):
    fake.auto_step = (0.1, 1_000_000, 3_600_000, 4_000_000)
    log = EnergyLogger(socket_path=fake.path)
    m = log.log_metrics("x")
    assert log.pid == os.getpid() == m["pid"]
    assert fake.requests[-1]["pid"] == os.getpid()
    # one auto step: 3.6e6 uJ = 0.001 Wh, 1 ms of 4 ms busy
    assert m["energy"] == {"energy_wh_total": 0.001, "energy_uj": 3_600_000,
                           "cpu_time_ns": 1_000_000}
    assert m["allocation_ratio"] == 0.25


def test_socket_from_environment(fake, monkeypatch):
    monkeypatch.setenv("CARBON_OPS_SOCKET", fake.path)
    baseline(fake)
    log = EnergyLogger(pid=PID)
    assert log.socket_path == fake.path
    assert log.log_metrics("x")["attribution_mode"] == "procfs"


def test_monitor_only_without_agent(sock_path):
    t0 = time.time()
    log = EnergyLogger(socket_path=sock_path)  # must not raise
    assert log.attribution_mode == MONITOR_ONLY
    c0 = time.process_time_ns()
    burn(0.05)
    c1 = time.process_time_ns()
    m = log.log_metrics("offline")
    t1 = time.time()
    assert set(m) == KEYS
    assert m["attribution_mode"] == "monitor_only"
    assert m["energy"]["energy_wh_total"] is None and m["energy"]["energy_uj"] is None
    # the process's own CPU time, bracketing the burn
    assert c1 - c0 <= m["energy"]["cpu_time_ns"] <= c1 - c0 + 20_000_000
    assert t0 <= m["timestamp_start"] <= m["timestamp_end"] <= t1
    assert m["energy_source"] is None and m["allocation_ratio"] is None
    assert sock_path in m["note"]


def test_monitor_only_other_pid_reads_proc(sock_path):
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nt=time.process_time()+0.2\n"
                              "while time.process_time()<t: pass\ntime.sleep(30)"])
    try:
        log = EnergyLogger(socket_path=sock_path, pid=child.pid)
        time.sleep(0.6)
        m = log.log_metrics("child")
        # the child burnt 0.2 s after (or around) our baseline; clock ticks are 10 ms
        assert 0 <= m["energy"]["cpu_time_ns"] <= 400_000_000
        assert m["pid"] == child.pid and m["attribution_mode"] == MONITOR_ONLY
    finally:
        child.kill()
        child.wait()


def test_stat_parsing_by_hand():
    # comm with spaces and a ')' inside; utime 250 ticks, stime 50 ticks at 100 Hz = 3 s
    line = "77 (a) b (c)) S 1 77 77 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 123 0 0\n"
    assert parse_stat_cpu_ns(line, 100) == 3_000_000_000
    assert process_cpu_ns(2**22 + 12345) is None  # beyond pid_max: no such process


def test_own_cpu_from_proc_matches_process_time(short_dir):
    # the /proc reader on our own pid (through a proc root that is the real one, by path)
    os.symlink("/proc", os.path.join(short_dir, "proc"))
    burn(0.05)
    via_proc = process_cpu_ns(os.getpid(), os.path.join(short_dir, "proc"))
    direct = time.process_time_ns()
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert abs(direct - via_proc) <= 3 * tick + 20_000_000


def test_agent_away_then_back_rebaselines(fake):
    baseline(fake)
    log = EnergyLogger(socket_path=fake.path, pid=PID)
    fake.stop()
    m = log.log_metrics("away")
    assert m["attribution_mode"] == MONITOR_ONLY and m["energy"]["energy_wh_total"] is None
    assert m["timestamp_start"] == 1000.0  # contiguous with the last agent reading
    assert m["note"].startswith("monitor_only:")
    m = log.log_metrics("still away")
    assert m["attribution_mode"] == MONITOR_ONLY

    # back as a new instance with counters from scratch
    fake.processes.clear()
    back_at = time.time() + 1.0  # the agent's clock: after the monitor_only window's start
    fake.set_host(at=back_at, host_busy_cpu_ns=1_000_000_000)
    fake.set_process(PID, cpu_time_ns=100_000_000, energy_uj=36_000_000)
    fake.start()
    m = log.log_metrics("back")
    assert m["attribution_mode"] == MONITOR_ONLY and m["energy"]["energy_uj"] is None
    assert "re-baselined" in m["note"] and "reachable again" in m["note"]
    assert m["timestamp_end"] == back_at
    assert log.attribution_mode == "procfs"

    fake.set_host(at=back_at + 1.0, host_busy_cpu_ns=1_500_000_000)
    fake.set_process(PID, cpu_time_ns=200_000_000, energy_uj=72_000_000)
    m = log.log_metrics("measured")
    assert m["note"] is None and m["timestamp_start"] == back_at
    assert m["energy"] == {"energy_wh_total": 0.01, "energy_uj": 36_000_000,
                           "cpu_time_ns": 100_000_000}
    assert m["allocation_ratio"] == 0.2


def test_agent_down_at_construction_then_up(fake):
    fake.stop()
    log = EnergyLogger(socket_path=fake.path, pid=PID)
    assert log.attribution_mode == MONITOR_ONLY
    baseline(fake)
    fake.start()
    m = log.log_metrics("first")
    assert m["attribution_mode"] == MONITOR_ONLY and "re-baselined" in m["note"]
    fake.set_host(at=1001.0)
    fake.set_process(PID, energy_uj=7_200_003_600)
    m = log.log_metrics("second")
    assert m["energy"]["energy_uj"] == 3600 and m["note"] is None


def test_restart_between_calls_is_detected_by_instance_id(fake):
    baseline(fake)
    log = EnergyLogger(socket_path=fake.path, pid=PID)
    fake.stop()
    # a restarted agent whose counters happen to be larger: only instance_id tells
    fake.set_host(at=1005.0, host_busy_cpu_ns=90_000_000_000)
    fake.set_process(PID, cpu_time_ns=9_000_000_000, energy_uj=90_000_000_000)
    fake.start()
    m = log.log_metrics("after restart")
    assert m["energy"]["energy_uj"] is None
    assert "restarted" in m["note"] and "re-baselined" in m["note"]
    fake.set_host(at=1006.0)
    fake.set_process(PID, energy_uj=90_000_000_036)
    assert log.log_metrics("next")["energy"]["energy_uj"] == 36


def test_dropped_connection_same_instance_keeps_measuring(fake):
    baseline(fake)
    log = EnergyLogger(socket_path=fake.path, pid=PID)
    fake.drop_connections()
    fake.set_host(at=1001.0)
    fake.set_process(PID, energy_uj=7_200_000_360)
    m = log.log_metrics("x")
    assert m["energy"]["energy_uj"] == 360 and m["note"] is None
    assert fake.connections == 2


def test_pid_reuse_rebaselines(fake):
    baseline(fake)
    log = EnergyLogger(socket_path=fake.path, pid=PID)
    fake.set_process(PID, started=1_764_345_999.0, cpu_time_ns=10, energy_uj=10)
    m = log.log_metrics("x")
    assert m["energy"]["energy_uj"] is None and "another process" in m["note"]


def test_counters_going_backwards_rebaselines(fake):
    baseline(fake)
    log = EnergyLogger(socket_path=fake.path, pid=PID)
    fake.set_process(PID, energy_uj=1)
    m = log.log_metrics("x")
    assert m["energy"]["energy_uj"] is None and "backwards" in m["note"]


def test_unknown_pid_is_monitor_only_with_the_agents_reason(fake):
    log = EnergyLogger(socket_path=fake.path, pid=31337)
    m = log.log_metrics("x")
    assert m["attribution_mode"] == MONITOR_ONLY and "not_found" in m["note"]


def test_bad_answer_line_degrades_then_recovers(fake):
    baseline(fake)
    log = EnergyLogger(socket_path=fake.path, pid=PID)
    fake.script.append(("raw", b"garbage\n"))
    m = log.log_metrics("bad")
    assert m["attribution_mode"] == MONITOR_ONLY and "not JSON" in m["note"]
    m = log.log_metrics("rebaseline")
    assert "re-baselined" in m["note"]
    fake.set_host(at=1002.0)
    fake.set_process(PID, energy_uj=7_200_000_072)
    assert log.log_metrics("ok")["energy"]["energy_uj"] == 72


@pytest.mark.parametrize("field", ["energy_uj", "cpu_time_ns", "host_busy_cpu_ns", "at"])
def test_answer_missing_a_counter_is_not_trusted(fake, field):
    baseline(fake)
    fake.set_process(PID, **{field: None})
    log = EnergyLogger(socket_path=fake.path, pid=PID)
    m = log.log_metrics("x")
    assert m["attribution_mode"] == MONITOR_ONLY and field in m["note"]


def test_status_is_asked_once_per_connection(fake):
    baseline(fake)
    log = EnergyLogger(socket_path=fake.path, pid=PID)
    for _ in range(3):
        log.log_metrics("x")
    fake.drop_connections()
    log.log_metrics("after drop")
    assert [r["op"] for r in fake.requests] == [
        "status", "process", "process", "process", "process", "process", "status"]
