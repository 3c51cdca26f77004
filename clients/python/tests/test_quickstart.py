"""The original README's quick-start, run unchanged in a child Python: against the fake agent
(with and without a region the agent can use) and with no agent at all. It must exit 0."""

from __future__ import annotations

import ast
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from quickstart_text import QUICKSTART

DOC = Path(__file__).resolve().parents[3] / "docs" / "python-client.md"


def run_quickstart(env):
    p = subprocess.run([sys.executable, "-c", QUICKSTART], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return ast.literal_eval(p.stdout.strip())


def test_quickstart_against_the_agent(fake, child_env):
    fake.default_region = "FR"
    # each `process` answer for the child's pid advances 0.1 s, 1 ms CPU, 3.6e6 uJ
    fake.auto_step = (0.1, 1_000_000, 3_600_000, 4_000_000)
    d = run_quickstart(child_env(CARBON_OPS_SOCKET=fake.path))
    # 0.001 Wh x default PUE 1.58 x 56.039 g/kWh (FR) = 8.854162e-5 g
    assert d["energy_consumed_wh"] == 0.001
    assert math.isclose(d["carbon_emissions_gco2"], 0.001 / 1000 * 1.58 * 56.039, rel_tol=1e-12)
    assert "note" not in d
    est = [r for r in fake.requests if r["op"] == "estimate"]
    assert len(est) == 1 and est[0]["end_ts"] - est[0]["start_ts"] == pytest.approx(0.1)


def test_quickstart_agent_without_region(fake, child_env):
    fake.auto_step = (0.1, 1_000_000, 3_600_000, 4_000_000)
    d = run_quickstart(child_env(CARBON_OPS_SOCKET=fake.path))
    assert d["carbon_emissions_gco2"] is None and d["energy_consumed_wh"] == 0.001
    assert "no intensity source" in d["note"]


def test_quickstart_without_agent(sock_path, child_env):
    d = run_quickstart(child_env(CARBON_OPS_SOCKET=sock_path))
    assert d["carbon_emissions_gco2"] is None and d["energy_consumed_wh"] is None
    assert "energy_wh is None" in d["note"]


def test_quickstart_with_default_socket_path(child_env):
    """No CARBON_OPS_SOCKET: /run/carbon-ops.sock, usually absent here; exit 0 either way."""
    d = run_quickstart(child_env())
    assert "carbon_emissions_gco2" in d


@pytest.mark.skipif(not DOC.exists(), reason="docs/python-client.md not beside this checkout")
def test_documented_quickstart_is_the_tested_one():
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert QUICKSTART in blocks
