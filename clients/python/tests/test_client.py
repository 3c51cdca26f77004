"""AgentClient against the fake agent: envelope, errors, persistence, reconnects, bad lines."""

from __future__ import annotations

import json
import os
import threading

import pytest

from carbon_ops import AgentClient, AgentError, AgentUnavailable, ProtocolError
from carbon_ops.client import DEFAULT_SOCKET, resolve_socket_path


def test_socket_path_argument_then_env_then_default(monkeypatch):
    assert resolve_socket_path() == DEFAULT_SOCKET == "/run/carbon-ops.sock"
    monkeypatch.setenv("CARBON_OPS_SOCKET", "/tmp/env.sock")
    assert resolve_socket_path() == "/tmp/env.sock"
    assert AgentClient().socket_path == "/tmp/env.sock"
    assert AgentClient("/tmp/arg.sock").socket_path == "/tmp/arg.sock"


def test_envelope_and_result(fake):
    fake.set_process(4242, cpu_time_ns=5, energy_uj=7)
    c = AgentClient(fake.path)
    st = c.status()
    assert st["instance_id"] == fake.instance_id
    assert st["energy_source"] == "sysfs"
    p = c.process(4242)
    assert (p["pid"], p["cpu_time_ns"], p["energy_uj"]) == (4242, 5, 7)
    assert c.request("top", n=3)["by"] == "power"
    assert fake.requests == [
        {"v": 1, "op": "status", "id": 1},
        {"v": 1, "op": "process", "pid": 4242, "id": 2},
        {"v": 1, "op": "top", "n": 3, "id": 3},
    ]


def test_one_persistent_connection(fake):
    fake.set_process(1, cpu_time_ns=1)
    c = AgentClient(fake.path)
    for _ in range(5):
        c.process(1)
    assert fake.connections == 1 and c.connections == 1


def test_error_answers_raise_agent_error_with_code(fake):
    c = AgentClient(fake.path)
    with pytest.raises(AgentError) as e:
        c.process(99)
    assert e.value.code == "not_found" and "99" in e.value.message
    with pytest.raises(AgentError) as e:
        c.request("frobnicate")
    assert e.value.code == "unknown_op"
    with pytest.raises(AgentError) as e:
        c.top(5, by="heat")
    assert e.value.code == "bad_request"
    # errors do not break the connection
    assert c.status()["version"] and fake.connections == 1


def test_no_agent_is_agent_unavailable(sock_path):
    c = AgentClient(sock_path)
    with pytest.raises(AgentUnavailable) as e:
        c.status()
    assert sock_path in str(e.value) and "CARBON_OPS_SOCKET" in str(e.value)


def test_socket_file_that_nobody_listens_on(short_dir):
    import socket as s

    path = os.path.join(short_dir, "dead.sock")
    ls = s.socket(s.AF_UNIX, s.SOCK_STREAM)
    ls.bind(path)
    ls.close()  # the file stays, nobody listens: ECONNREFUSED
    with pytest.raises(AgentUnavailable):
        AgentClient(path).status()


def test_reconnects_after_the_connection_drops(fake):
    c = AgentClient(fake.path)
    c.status()
    fake.drop_connections()
    assert c.status()["instance_id"] == fake.instance_id
    assert c.connections == 2


def test_agent_goes_away_and_comes_back(fake):
    c = AgentClient(fake.path)
    first = c.status()["instance_id"]
    fake.stop()
    with pytest.raises(AgentUnavailable):
        c.status()
    with pytest.raises(AgentUnavailable):
        c.status()
    fake.start()
    assert c.status()["instance_id"] == fake.instance_id != first


def test_kept_connection_closed_unanswered_is_retried_once(fake):
    c = AgentClient(fake.path)
    c.status()
    fake.script.append(("close", None))
    assert c.status()["instance_id"] == fake.instance_id
    assert c.connections == 2
    # closed again on the fresh connection: no second retry
    fake.script.extend([("close", None), ("close", None)])
    with pytest.raises(AgentUnavailable):
        c.status()


def test_line_that_is_not_json_is_protocol_error_then_recovers(fake):
    c = AgentClient(fake.path)
    fake.script.append(("raw", b"this is not json\n"))
    with pytest.raises(ProtocolError):
        c.status()
    # the next request is paired with its own answer on a fresh connection
    fake.set_process(7, cpu_time_ns=70)
    assert c.process(7)["cpu_time_ns"] == 70
    assert c.connections == 2


@pytest.mark.parametrize(
    "raw",
    [
        b"[1, 2]\n",
        b'{"v": 2, "ok": true, "result": {}}\n',
        b'{"v": 1, "ok": true, "result": {}, "id": 999}\n',
        b'{"v": 1, "ok": true, "result": 5, "id": 1}\n',
        b'{"v": 1, "ok": "yes", "id": 1}\n',
    ],
)
def test_malformed_answers(fake, raw):
    c = AgentClient(fake.path)
    fake.script.append(("raw", raw))
    with pytest.raises(ProtocolError):
        c.status()
    assert c.status()["version"]


def test_no_answer_times_out(fake):
    c = AgentClient(fake.path, timeout=0.2)
    fake.script.append(("raw", b""))  # read the request, answer nothing
    with pytest.raises(AgentUnavailable) as e:
        c.status()
    assert "did not answer" in str(e.value)


def test_line_too_long_closes_and_next_request_reconnects(fake):
    c = AgentClient(fake.path)
    with pytest.raises(AgentError) as e:
        c.request("status", padding="x" * (70 * 1024))
    assert e.value.code == "line_too_long"
    assert c.status()["version"]
    assert c.connections == 2


def test_non_finite_field_is_refused_locally(fake):
    with pytest.raises(ValueError):
        AgentClient(fake.path).estimate(energy_wh=float("nan"))
    assert fake.requests == []


def test_estimate_omits_none_fields(fake):
    fake.default_region = "FR"
    AgentClient(fake.path).estimate(energy_wh=1.0, pue=None, region=None)
    assert fake.requests[0] == {"v": 1, "op": "estimate", "energy_wh": 1.0, "id": 1}


def test_threads_share_one_client(fake):
    for pid in range(1, 5):
        fake.set_process(pid, cpu_time_ns=pid * 10)
    c = AgentClient(fake.path)
    bad = []

    def work(pid):
        for _ in range(50):
            p = c.process(pid)
            if p["pid"] != pid or p["cpu_time_ns"] != pid * 10:
                bad.append(p)

    ts = [threading.Thread(target=work, args=(pid,)) for pid in range(1, 5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert bad == [] and c.connections == 1
    ids = [r["id"] for r in fake.requests]
    assert sorted(ids) == list(range(1, 201))


def test_answer_bytes_split_across_reads():
    """An answer arriving in pieces is reassembled; a second answer in the same read is kept
    for the next request."""
    import socket as s

    a, b = s.socketpair()
    a.settimeout(2)
    c = AgentClient("/nonexistent")
    c._sock, c.connections = a, 1
    one = json.dumps({"v": 1, "ok": True, "result": {"x": 1}, "id": 1}).encode() + b"\n"
    two = json.dumps({"v": 1, "ok": True, "result": {"x": 2}, "id": 2}).encode() + b"\n"
    b.sendall(one[:7])
    t = threading.Timer(0.05, lambda: b.sendall(one[7:] + two))
    t.start()
    assert c.request("status") == {"x": 1}
    assert c.request("status") == {"x": 2}
    t.join()
    sent = b.recv(4096).decode().splitlines()
    assert [json.loads(x)["id"] for x in sent] == [1, 2]
    a.close()
    b.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root connects regardless of the socket's mode")
def test_permission_denied_names_the_group(fake):
    os.chmod(fake.path, 0)
    with pytest.raises(AgentUnavailable) as e:
        AgentClient(fake.path).status()
    assert "carbon-users" in str(e.value)
