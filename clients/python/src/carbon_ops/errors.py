"""Exceptions raised by the carbon-ops client.

All derive from :class:`CarbonOpsError`, so ``except CarbonOpsError`` catches every failure
to talk to the agent. ``EnergyLogger`` and ``CarbonEstimator`` catch these themselves and
degrade (``monitor_only``, a record with null figures); only ``AgentClient`` raises them.
"""

from __future__ import annotations


class CarbonOpsError(Exception):
    """Base class of every error this package raises about the agent."""


class AgentUnavailable(CarbonOpsError):
    """The agent could not be reached: no socket, refused, timed out, or the connection
    dropped and reconnecting failed. Start the agent or point ``CARBON_OPS_SOCKET`` at it."""


class AgentError(CarbonOpsError):
    """The agent answered ``ok: false``; ``code`` is the protocol's error code
    (``bad_request``, ``not_found``, ``permission_denied``, ``unavailable``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ProtocolError(CarbonOpsError):
    """The agent's answer broke the protocol (not JSON, wrong version, wrong id, no result).
    The connection is dropped; the next request opens a new one."""
