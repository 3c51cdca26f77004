"""Blocking client for the carbon-ops agent's socket protocol (v1).

Newline-delimited JSON over a Unix stream socket: one request per line, one answer per line,
in order. :class:`AgentClient` keeps one connection open, tags each request with an ``id``
and checks the echo, and reconnects when the connection has gone (an agent restart).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

from .errors import AgentError, AgentUnavailable, ProtocolError

#: Where the agent listens unless told otherwise (``--socket`` on the agent).
DEFAULT_SOCKET = "/run/carbon-ops.sock"
#: Environment variable naming the socket, read when no path is passed.
SOCKET_ENV = "CARBON_OPS_SOCKET"
#: Protocol version spoken by this client.
PROTOCOL_VERSION = 1
#: Longest answer line accepted (the agent caps requests at 64 KiB; answers such as
#: ``top`` with 1000 processes or a record are far below this).
MAX_ANSWER_BYTES = 16 * 1024 * 1024


def resolve_socket_path(socket_path: str | None = None) -> str:
    """The socket path: the argument, else ``$CARBON_OPS_SOCKET``, else ``/run/carbon-ops.sock``."""
    if socket_path:
        return os.fspath(socket_path)
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET


class AgentClient:
    """One persistent connection to the agent.

    ``request(op, **fields)`` returns the answer's ``result`` dict, raises
    :class:`AgentError` when the agent answers ``ok: false``, :class:`AgentUnavailable` when it
    cannot be reached, and :class:`ProtocolError` when the answer is malformed. Safe to share
    between threads (requests are serialised).
    """

    def __init__(self, socket_path: str | None = None, timeout: float = 2.0) -> None:
        self.socket_path = resolve_socket_path(socket_path)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""
        self._next_id = 1
        self._lock = threading.Lock()
        #: Number of connections opened so far; a change tells callers a reconnect happened
        #: (the agent may have restarted, so cumulative counters may have been reset).
        self.connections = 0

    # -- connection ---------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.socket_path)
        except OSError as exc:
            s.close()
            if isinstance(exc, PermissionError):
                raise AgentUnavailable(
                    f"no permission to connect to the carbon-ops agent at {self.socket_path}: "
                    "add this user to the socket's group (carbon-users) and log in again"
                ) from exc
            raise AgentUnavailable(
                f"cannot connect to the carbon-ops agent at {self.socket_path}: "
                f"{exc.strerror or exc} (is carbon-ops-agent running? set {SOCKET_ENV} to "
                "its --socket path)"
            ) from exc
        self._sock = s
        self._buf = b""
        self.connections += 1
        return s

    def close(self) -> None:
        """Closes the connection (the next request opens a new one)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._buf = b""

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Sends ``{"v": 1, "op": op, **fields, "id": n}`` and returns the answer's result."""
        with self._lock:
            rid = self._next_id
            self._next_id += 1
            msg: dict[str, Any] = {"v": PROTOCOL_VERSION, "op": op}
            msg.update(fields)
            msg["id"] = rid
            try:
                line = json.dumps(msg, allow_nan=False, separators=(",", ":")).encode() + b"\n"
            except ValueError as exc:
                raise ValueError(f"request {op!r} has a field JSON cannot carry: {exc}") from exc
            answer = self._exchange(line)
            return self._result(answer, rid)

    def _exchange(self, line: bytes) -> dict[str, Any]:
        reused = self._sock is not None
        try:
            return self._send_recv(line)
        except _Stale:
            self._drop()
            if not reused:
                raise AgentUnavailable(
                    f"the carbon-ops agent at {self.socket_path} closed the connection"
                ) from None
        # The kept connection had gone (agent restarted or dropped us): one fresh attempt.
        try:
            return self._send_recv(line)
        except _Stale:
            self._drop()
            raise AgentUnavailable(
                f"the carbon-ops agent at {self.socket_path} closed the connection"
            ) from None

    def _send_recv(self, line: bytes) -> dict[str, Any]:
        sock = self._sock if self._sock is not None else self._connect()
        try:
            sock.sendall(line)
        except socket.timeout as exc:
            self._drop()
            raise AgentUnavailable(f"timed out sending to the agent at {self.socket_path}") from exc
        except OSError as exc:
            raise _Stale() from exc
        raw = self._read_line(sock)
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            self._drop()
            raise ProtocolError(f"the agent sent a line that is not JSON: {raw[:200]!r}") from exc
        if not isinstance(answer, dict):
            self._drop()
            raise ProtocolError(f"the agent sent JSON that is not an object: {raw[:200]!r}")
        return answer

    def _read_line(self, sock: socket.socket) -> bytes:
        got_any = False
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                raw, self._buf = self._buf[:nl], self._buf[nl + 1 :]
                return raw
            if len(self._buf) > MAX_ANSWER_BYTES:
                self._drop()
                raise ProtocolError(f"the agent's answer is over {MAX_ANSWER_BYTES} bytes")
            try:
                chunk = sock.recv(65536)
            except socket.timeout as exc:
                self._drop()
                raise AgentUnavailable(
                    f"the agent at {self.socket_path} did not answer within {self.timeout} s"
                ) from exc
            except OSError as exc:
                if got_any:
                    self._drop()
                    raise AgentUnavailable(f"connection to the agent broke: {exc}") from exc
                raise _Stale() from exc
            if not chunk:
                if got_any or self._buf:
                    self._drop()
                    raise AgentUnavailable("the agent closed the connection mid-answer")
                raise _Stale()
            got_any = True
            self._buf += chunk

    def _result(self, answer: dict[str, Any], rid: int) -> dict[str, Any]:
        if answer.get("v") != PROTOCOL_VERSION:
            self._drop()
            raise ProtocolError(f"the agent answered protocol version {answer.get('v')!r}, not 1")
        if "id" in answer and answer["id"] != rid:
            self._drop()
            raise ProtocolError(f"answer id {answer['id']!r} does not match request id {rid}")
        ok = answer.get("ok")
        if ok is True:
            result = answer.get("result")
            if not isinstance(result, dict):
                self._drop()
                raise ProtocolError("the agent answered ok without a result object")
            return result
        if ok is False:
            err = answer.get("error")
            if not isinstance(err, dict):
                err = {}
            code = str(err.get("code", "internal"))
            message = str(err.get("message", ""))
            if code in ("line_too_long", "bad_json") or "id" not in answer:
                # The agent closes after line_too_long; an answer without our id means the
                # stream is no longer paired with our requests.
                self._drop()
            raise AgentError(code, message)
        self._drop()
        raise ProtocolError(f"the agent's answer has no boolean 'ok': {answer!r:.200}")

    # -- ops ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The ``status`` op: energy source, attribution mode, zones, cumulative energy, ..."""
        return self.request("status")

    def process(self, pid: int) -> dict[str, Any]:
        """The ``process`` op: one process's cumulative CPU time and energy, plus host totals."""
        return self.request("process", pid=int(pid))

    def top(self, n: int = 10, by: str = "power") -> dict[str, Any]:
        """The ``top`` op: the ``n`` processes with most ``power`` (default) or ``energy``."""
        return self.request("top", n=int(n), by=by)

    def estimate(self, **fields: Any) -> dict[str, Any]:
        """The ``estimate`` op: a carbon record (fields as in docs/carbon.md; None omitted)."""
        return self.request("estimate", **{k: v for k, v in fields.items() if v is not None})


class _Stale(Exception):
    """The kept connection is dead before any answer byte arrived (safe to resend once)."""
