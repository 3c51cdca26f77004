"""``CarbonEstimator``: the agent's carbon estimate (``estimate`` op) over a time span.

The figures come from the agent (grid intensity table, PUE, interval; see docs/carbon.md).
When there is no energy figure, no agent, or the agent declines, the record keeps the same
keys with null figures and a ``note`` saying why: this client never invents a number.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import os
from typing import Any, Union

from .client import AgentClient
from .errors import AgentError, CarbonOpsError

#: Methods the agent implements.
METHODS = ("analytical_truncated", "monte_carlo")
#: Environment variable giving a default region (``FR``, ``DEU``, ``gcp:europe-west1``).
REGION_ENV = "CARBON_OPS_REGION"

Timestamp = Union[float, int, str, _dt.datetime]


def format_rfc3339(ts: Timestamp) -> str | None:
    """A span bound as the agent writes it: RFC 3339 UTC, milliseconds only when non-zero."""
    if isinstance(ts, str):
        return ts
    if isinstance(ts, _dt.datetime):
        ts = _to_unix(ts)
    if not isinstance(ts, (int, float)) or not math.isfinite(ts):
        return None
    ms = int(round(float(ts) * 1000.0))
    secs, frac = divmod(ms, 1000)
    base = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(seconds=secs)
    text = base.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{frac:03d}Z" if frac else f"{text}Z"


def _to_unix(ts: _dt.datetime) -> float:
    if ts.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous: give it a tzinfo (e.g. timezone.utc)")
    return ts.timestamp()


def _wire_ts(ts: Timestamp) -> float | int | str:
    if isinstance(ts, _dt.datetime):
        return _to_unix(ts)
    if isinstance(ts, bool) or not isinstance(ts, (int, float, str)):
        raise TypeError(
            f"a timestamp is unix seconds, an RFC 3339 string or a datetime, not {ts!r}"
        )
    if isinstance(ts, float) and not math.isfinite(ts):
        raise ValueError(f"timestamp {ts!r} is not finite")
    return ts


class CarbonRecord:
    """A carbon estimate. ``to_dict()`` is the agent's record (docs/carbon.md); when no
    estimate could be made, the same keys with null figures plus ``note``."""

    def __init__(self, data: dict[str, Any], note: str | None = None) -> None:
        self._data = data
        self.note = note

    @property
    def ok(self) -> bool:
        """Whether the figures are the agent's estimate (False: null figures, see ``note``)."""
        return self.note is None

    @property
    def carbon_emissions_gco2(self) -> float | None:
        return self._data.get("carbon_emissions_gco2")

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def to_dict(self) -> dict[str, Any]:
        d = copy.deepcopy(self._data)
        if self.note is not None:
            d["note"] = self.note
        return d

    def __repr__(self) -> str:
        return f"CarbonRecord({self.to_dict()!r})"


class CarbonEstimator:
    """Asks the agent for carbon estimates with fixed region, PUE, method and confidence.

    ``region`` defaults to ``$CARBON_OPS_REGION``, else it is left to the agent (an agent
    without a configured region declines, and the record says so). ``strict=True`` raises
    :class:`~carbon_ops.errors.CarbonOpsError` instead of returning a record with null figures.
    """

    def __init__(
        self,
        region: str | None = None,
        pue: float | None = None,
        method: str = "analytical_truncated",
        confidence: float = 0.95,
        socket_path: str | None = None,
        strict: bool = False,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        c = confidence / 100.0 if confidence >= 1 else confidence
        if not (math.isfinite(c) and 0 < c < 1):
            raise ValueError(
                f"confidence must be in (0, 1) or [1, 100) percent, not {confidence!r}"
            )
        if pue is not None and not (math.isfinite(pue) and pue >= 1):
            raise ValueError(f"pue must be a finite number >= 1, not {pue!r}")
        self.region = region if region is not None else (os.environ.get(REGION_ENV) or None)
        self.pue = pue
        self.method = method
        self.confidence = confidence
        self.strict = strict
        self._client = AgentClient(socket_path)

    def close(self) -> None:
        self._client.close()

    def estimate_over_span(
        self,
        start_ts: Timestamp,
        end_ts: Timestamp,
        energy_wh: float | None,
        energy_sigma_wh: float | None = None,
    ) -> CarbonRecord:
        """Carbon of ``energy_wh`` (Wh at the IT equipment) used over ``[start_ts, end_ts]``
        (unix seconds, RFC 3339 or aware datetimes)."""
        if energy_wh is None:
            reason = "no energy figure (energy_wh is None, e.g. a monitor_only window)"
            if self.strict:
                raise ValueError(reason)
            return self._null(start_ts, end_ts, None, energy_sigma_wh, f"not estimated: {reason}")
        for name, v in (("energy_wh", energy_wh), ("energy_sigma_wh", energy_sigma_wh)):
            if v is not None and (isinstance(v, bool) or not math.isfinite(v) or v < 0):
                raise ValueError(f"{name} must be a finite number >= 0, not {v!r}")
        fields = {
            "start_ts": _wire_ts(start_ts),
            "end_ts": _wire_ts(end_ts),
            "energy_wh": energy_wh,
            "energy_sigma_wh": energy_sigma_wh,
            "region": self.region,
            "pue": self.pue,
            "method": self.method,
            "confidence": self.confidence,
        }
        try:
            result = self._client.estimate(**fields)
        except AgentError as exc:
            if self.strict:
                raise
            note = f"not estimated: the agent declined ({exc.code}: {exc.message})"
            return self._null(start_ts, end_ts, energy_wh, energy_sigma_wh, note)
        except CarbonOpsError as exc:
            if self.strict:
                raise
            note = f"not estimated: agent unreachable ({exc})"
            return self._null(start_ts, end_ts, energy_wh, energy_sigma_wh, note)
        return CarbonRecord(result)

    def _null(
        self,
        start_ts: Timestamp,
        end_ts: Timestamp,
        energy_wh: float | None,
        energy_sigma_wh: float | None,
        note: str,
    ) -> CarbonRecord:
        """The record's keys; only the caller's own inputs filled in, every figure null."""
        c = self.confidence if self.confidence >= 1 else self.confidence * 100.0
        data: dict[str, Any] = {
            "energy_consumed_wh": energy_wh,
            "energy_consumed_kwh": None if energy_wh is None else energy_wh / 1000.0,
            "total_energy_with_pue_kwh": None,
            "carbon_emissions_gco2": None,
            "carbon_emissions_kgco2": None,
            "carbon_intensity_used_gco2_kwh": None,
            "intensity_uncertainty": None,
            "pue_used": None,
            "region": self.region,
            "start_ts": _safe_rfc3339(start_ts),
            "end_ts": _safe_rfc3339(end_ts),
            "coverage": None,
            "intensity_kind": None,
            "provenance": {
                "dataset": None,
                "year": None,
                "source": None,
                "energy_source": "caller",
                "energy_spread": None,
                "energy_sigma_wh": energy_sigma_wh,
                "gap_policy": None,
                "pue_source": None,
                "pue_sigma": None,
                "fallback_reason": None,
            },
            "meta": {
                "method": self.method,
                "ci_lower_g": None,
                "ci_upper_g": None,
                "confidence_level_pct": round(c, 10),
                "samples": None,
                "seed": None,
            },
        }
        return CarbonRecord(data, note)


def _safe_rfc3339(ts: Timestamp) -> str | None:
    try:
        return format_rfc3339(ts)
    except (ValueError, OverflowError, TypeError):
        return None
