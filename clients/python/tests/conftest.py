"""Shared fixtures: a short temp socket path, a running fake agent, a clean environment.

Tests import ``carbon_ops`` as installed (``pip install ./clients/python``); run from a source
checkout without installing, ``src/`` is put on the path instead. Subprocesses get the same
package through ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    import carbon_ops  # noqa: F401
except ImportError:  # a source checkout, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import carbon_ops  # noqa: F401

from fake_agent import FakeAgent

PACKAGE_PARENT = str(Path(carbon_ops.__file__).resolve().parents[1])


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARBON_OPS_SOCKET", raising=False)
    monkeypatch.delenv("CARBON_OPS_REGION", raising=False)


@pytest.fixture
def short_dir() -> Iterator[str]:
    """A temp dir with a short path (a Unix socket path must fit in 108 bytes)."""
    d = tempfile.mkdtemp(prefix="co-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sock_path(short_dir: str) -> str:
    return os.path.join(short_dir, "agent.sock")


@pytest.fixture
def fake(sock_path: str) -> Iterator[FakeAgent]:
    agent = FakeAgent(sock_path).start()
    try:
        yield agent
    finally:
        agent.stop()


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python that must import this same carbon_ops."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBON_OPS_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p
    )
    env.update(extra)
    return env


@pytest.fixture
def child_env():
    """``child_env(**extra)``: environment for a child Python importing this carbon_ops."""
    return subprocess_env
