"""carbon-ops: Python client for the carbon-ops agent (standard library only).

- :class:`EnergyLogger`: the energy one process used between two calls (``log_metrics``).
- :class:`CarbonEstimator`: the agent's carbon estimate over a span, as a :class:`CarbonRecord`.
- :class:`~carbon_ops.client.AgentClient`: the socket protocol itself (``status``, ``process``,
  ``top``, ``estimate``).

Without an agent nothing here raises: windows are ``monitor_only`` and records have null
figures with a ``note``. The socket is ``$CARBON_OPS_SOCKET``, else ``/run/carbon-ops.sock``.
"""

from .client import AgentClient
from .errors import AgentError, AgentUnavailable, CarbonOpsError, ProtocolError
from .estimator import CarbonEstimator, CarbonRecord
from .logger import MONITOR_ONLY, EnergyLogger

__version__ = "0.1.0"

__all__ = [
    "AgentClient",
    "AgentError",
    "AgentUnavailable",
    "CarbonEstimator",
    "CarbonOpsError",
    "CarbonRecord",
    "EnergyLogger",
    "MONITOR_ONLY",
    "ProtocolError",
]
