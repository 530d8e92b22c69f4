"""One place for metrics and tracing: Powertools Metrics (CloudWatch embedded metric format) and
Tracer (X-Ray), behind plain callables for domain code, which never imports Powertools.

Two kinds of metrics (names, units and dimensions in docs/OPERATIONS.md, "Observability"):
- function-wide ones (`count`, `seconds`) go to the shared `metrics` set, flushed once per
  invocation by the `log_metrics` middleware app.py registers for every function;
- metrics with their own dimensions (`ingest_outcome` per ingest source, `tracker_lag` per
  tracker) get one EMF document per dimension set, since Powertools gives one dimension set to a
  whole flush and one invocation can see several sources (an API call and its audit trace) or
  trackers; `log_dimensional_metrics` (middleware too) writes them when the invocation ends.
Nothing is written outside an invocation: the CLI's stdout stays its own answer.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

NAMESPACE = "OpenCTS"
SERVICE = "opencts"

# botocore logs whole request bodies at DEBUG, and the body of KMS Encrypt for a new access key
# holds its secret (base64): its loggers stop at INFO whatever the root level is.
logging.getLogger("botocore").setLevel(logging.INFO)

metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# Disabled by Powertools outside Lambda (no LAMBDA_TASK_ROOT) and by POWERTOOLS_TRACE_DISABLED;
# in Lambda it needs aws-xray-sdk (requirements.txt) and active tracing ("xray": true).
tracer = Tracer(service=SERVICE)

# An ingest result status -> its metric.
INGEST_METRICS = {
    "stored": "TracesStored",
    "duplicate": "TracesDuplicate",
    "rejected": "TracesRejected",
    "failed": "TracesFailed",
}


def count(name: str, value: int) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def seconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)


# Dimension set -> its metrics of the current invocation.
_pending: dict[tuple[tuple[str, str], ...], EphemeralMetrics] = {}


def _dimensional(dimensions: Mapping[str, str]) -> EphemeralMetrics:
    key = tuple(sorted(dimensions.items()))
    found = _pending.get(key)
    if found is None:
        found = _pending[key] = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        for name, value in key:
            found.add_dimension(name=name, value=value)
    return found


def flush_dimensional() -> None:
    while _pending:
        _, emf = _pending.popitem()
        emf.flush_metrics()


def log_dimensional_metrics(handler: Callable[..., Any]) -> Callable[..., Any]:
    """A Lambda handler decorator (app.py registers it for every function)."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        finally:
            flush_dimensional()

    return wrapper


def ingest_outcome(source: str, statuses: Mapping[str, int], latencies_ms: Sequence[int]) -> None:
    """One ingest call: how many traces were stored, duplicate, rejected or failed, and the
    delivery latency (record_time - time) of the stored ones as the call's max and mean, with the
    dimension Source (api, audit, queue, cloudtrail, data)."""
    emf = _dimensional({"Source": source})
    for status, name in INGEST_METRICS.items():
        emf.add_metric(name=name, unit=MetricUnit.Count, value=statuses.get(status, 0))
    if latencies_ms:
        emf.add_metric(
            name="DeliveryLatencyMax", unit=MetricUnit.Milliseconds, value=max(latencies_ms)
        )
        emf.add_metric(
            name="DeliveryLatencyAvg",
            unit=MetricUnit.Milliseconds,
            value=sum(latencies_ms) / len(latencies_ms),
        )


def tracker_lag(project_id: str, tracker_name: str, lag_s: float) -> None:
    """How far one tracker's S3 transfer is behind (now - its watermark), per tracker."""
    emf = _dimensional({"ProjectId": project_id, "TrackerName": tracker_name})
    emf.add_metric(name="TransferLag", unit=MetricUnit.Seconds, value=lag_s)
