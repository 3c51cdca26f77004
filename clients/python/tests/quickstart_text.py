"""The original README's quick-start, verbatim: it must run unchanged (tests run it as a
child process; docs/python-client.md shows the same text)."""

QUICKSTART = '''\
from carbon_ops import CarbonEstimator, EnergyLogger
try:
    logger = EnergyLogger()
except Exception as exc:
    raise SystemExit(f"EnergyLogger initialisation failed: {exc}")
metric = logger.log_metrics("training_step")
estimator = CarbonEstimator()
record = estimator.estimate_over_span(
    start_ts=metric["timestamp_start"],
    end_ts=metric["timestamp_end"],
    energy_wh=metric["energy"]["energy_wh_total"],
)
print(record.to_dict())
'''
