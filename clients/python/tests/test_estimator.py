"""CarbonEstimator: pass-through of the agent's record, and null records (never invented
figures) without energy, without agent, or when the agent declines."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from carbon_ops import AgentError, AgentUnavailable, CarbonEstimator, CarbonRecord
from carbon_ops.estimator import format_rfc3339

START, END = 1714564800.0, 1714568400.0  # 2024-05-01 12:00 to 13:00 UTC
RECORD_KEYS = {
    "energy_consumed_wh", "energy_consumed_kwh", "total_energy_with_pue_kwh",
    "carbon_emissions_gco2", "carbon_emissions_kgco2", "carbon_intensity_used_gco2_kwh",
    "intensity_uncertainty", "pue_used", "region", "start_ts", "end_ts", "coverage",
    "intensity_kind", "provenance", "meta",
}
PROVENANCE_KEYS = {"dataset", "year", "source", "energy_source", "energy_spread",
                   "energy_sigma_wh", "gap_policy", "pue_source", "pue_sigma",
                   "fallback_reason"}
META_KEYS = {"method", "ci_lower_g", "ci_upper_g", "confidence_level_pct", "samples", "seed"}


def test_pass_through_of_the_agents_record(fake):
    est = CarbonEstimator(region="FR", pue=1.2, socket_path=fake.path)
    rec = est.estimate_over_span(START, END, 1500.0)
    assert isinstance(rec, CarbonRecord) and rec.ok and rec.note is None
    # exactly what the agent sent: 1.5 kWh x 1.2 x 56.039 g/kWh = 100.8702 g
    d = rec.to_dict()
    assert set(d) == RECORD_KEYS
    assert math.isclose(d["carbon_emissions_gco2"], 100.8702, rel_tol=1e-12)
    assert rec.carbon_emissions_gco2 == d["carbon_emissions_gco2"] == rec["carbon_emissions_gco2"]
    assert d["region"] == "FRA" and d["pue_used"] == 1.2
    assert fake.requests == [{
        "v": 1, "op": "estimate", "id": 1, "start_ts": START, "end_ts": END,
        "energy_wh": 1500.0, "region": "FR", "pue": 1.2, "method": "analytical_truncated",
        "confidence": 0.95,
    }]
    # to_dict is a copy
    d["meta"]["method"] = "changed"
    assert rec.to_dict()["meta"]["method"] == "analytical_truncated"


def test_sigma_method_confidence_are_sent(fake):
    est = CarbonEstimator(region="FR", method="monte_carlo", confidence=90,
                          socket_path=fake.path)
    rec = est.estimate_over_span("2024-05-01T12:00:00Z", END, 10.0, energy_sigma_wh=0.5)
    req = fake.requests[0]
    assert (req["start_ts"], req["energy_sigma_wh"], req["method"], req["confidence"]) == (
        "2024-05-01T12:00:00Z", 0.5, "monte_carlo", 90)
    assert "pue" not in req
    assert rec.to_dict()["meta"]["method"] == "monte_carlo"


def test_aware_datetimes_are_sent_as_unix_seconds(fake):
    est = CarbonEstimator(region="FR", socket_path=fake.path)
    s = dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    est.estimate_over_span(s, END, 1.0)
    assert fake.requests[0]["start_ts"] == START
    with pytest.raises(ValueError):
        est.estimate_over_span(dt.datetime(2024, 5, 1), END, 1.0)


def test_region_from_environment(fake, monkeypatch):
    monkeypatch.setenv("CARBON_OPS_REGION", "FR")
    CarbonEstimator(socket_path=fake.path).estimate_over_span(START, END, 1.0)
    assert fake.requests[0]["region"] == "FR"


def assert_null_record(d, energy_wh, note_has):
    assert set(d) == RECORD_KEYS | {"note"}
    assert set(d["provenance"]) == PROVENANCE_KEYS and set(d["meta"]) == META_KEYS
    for k in ("total_energy_with_pue_kwh", "carbon_emissions_gco2", "carbon_emissions_kgco2",
              "carbon_intensity_used_gco2_kwh", "intensity_uncertainty", "pue_used",
              "coverage", "intensity_kind"):
        assert d[k] is None, k
    assert d["meta"]["ci_lower_g"] is None and d["meta"]["ci_upper_g"] is None
    assert d["energy_consumed_wh"] == energy_wh
    assert d["start_ts"] == "2024-05-01T12:00:00Z" and d["end_ts"] == "2024-05-01T13:00:00Z"
    assert note_has in d["note"]


def test_no_energy_is_a_null_record_without_asking(fake):
    rec = CarbonEstimator(region="FR", socket_path=fake.path).estimate_over_span(
        START, END, None)
    assert not rec.ok and rec.carbon_emissions_gco2 is None
    assert_null_record(rec.to_dict(), None, "energy_wh is None")
    assert rec.to_dict()["energy_consumed_kwh"] is None
    assert fake.requests == []


def test_no_agent_is_a_null_record(sock_path):
    rec = CarbonEstimator(region="FR", pue=1.2, socket_path=sock_path).estimate_over_span(
        START, END, 2.5, energy_sigma_wh=0.1)
    d = rec.to_dict()
    assert_null_record(d, 2.5, "agent unreachable")
    assert d["energy_consumed_kwh"] == 0.0025
    assert d["region"] == "FR" and d["meta"]["method"] == "analytical_truncated"
    assert d["meta"]["confidence_level_pct"] == 95.0
    assert d["provenance"]["energy_sigma_wh"] == 0.1


def test_agent_declining_is_a_null_record_with_its_reason(fake):
    rec = CarbonEstimator(socket_path=fake.path).estimate_over_span(START, END, 1.0)
    assert_null_record(rec.to_dict(), 1.0, "bad_request")
    assert "no intensity source" in rec.note


def test_strict_raises(fake, sock_path):
    with pytest.raises(AgentError):
        CarbonEstimator(socket_path=fake.path, strict=True).estimate_over_span(START, END, 1.0)
    with pytest.raises(ValueError):
        CarbonEstimator(socket_path=fake.path, strict=True).estimate_over_span(START, END, None)
    fake.stop()
    with pytest.raises(AgentUnavailable):
        CarbonEstimator(region="FR", socket_path=fake.path,
                        strict=True).estimate_over_span(START, END, 1.0)


@pytest.mark.parametrize("kw", [{"method": "guess"}, {"confidence": 0}, {"confidence": 100},
                                {"confidence": float("nan")}, {"pue": 0.9},
                                {"pue": float("inf")}])
def test_bad_settings_are_refused_at_construction(kw):
    with pytest.raises(ValueError):
        CarbonEstimator(**kw)


@pytest.mark.parametrize("e", [float("nan"), float("inf"), -1.0])
def test_bad_energy_is_refused(fake, e):
    with pytest.raises(ValueError):
        CarbonEstimator(region="FR", socket_path=fake.path).estimate_over_span(START, END, e)
    assert fake.requests == []


def test_rfc3339_like_the_agent():
    assert format_rfc3339(1714564800) == "2024-05-01T12:00:00Z"
    assert format_rfc3339(1714564800.25) == "2024-05-01T12:00:00.250Z"
    assert format_rfc3339(0.0004) == "1970-01-01T00:00:00Z"
    assert format_rfc3339(-0.5) == "1969-12-31T23:59:59.500Z"
    assert format_rfc3339("2024-05-01T14:00:00+02:00") == "2024-05-01T14:00:00+02:00"
    assert format_rfc3339(float("nan")) is None
