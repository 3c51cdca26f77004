"""A process's own CPU time, read without the agent (for ``monitor_only`` windows)."""

from __future__ import annotations

import os
import time


def parse_stat_cpu_ns(stat: str, clk_tck: int) -> int:
    """utime + stime of a ``/proc/<pid>/stat`` line, in nanoseconds.

    The command name (field 2) is in parentheses and may itself contain spaces or ``)``, so
    fields are counted after the *last* ``)``: state is field 3, utime field 14, stime 15.
    """
    rest = stat[stat.rindex(")") + 1 :].split()
    utime, stime = int(rest[11]), int(rest[12])
    return (utime + stime) * 1_000_000_000 // clk_tck


def process_cpu_ns(pid: int, proc_root: str = "/proc") -> int | None:
    """CPU time (user + system) of ``pid`` in ns: ``time.process_time_ns()`` for this process,
    else ``/proc/<pid>/stat``; None when the process cannot be read (gone, hidden)."""
    if pid == os.getpid() and proc_root == "/proc":
        return time.process_time_ns()
    try:
        path = os.path.join(proc_root, str(pid), "stat")
        with open(path, encoding="ascii", errors="replace") as f:
            stat = f.read()
        return parse_stat_cpu_ns(stat, os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None
