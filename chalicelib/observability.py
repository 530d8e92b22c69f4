"""One place for metrics and tracing: Powertools Metrics (CloudWatch embedded metric format) and
Tracer (X-Ray), behind plain callables for domain code, which never imports Powertools.

Two kinds of metrics (names, units and dimensions in docs/OPERATIONS.md, "Observability"):
- function-wide ones (`count`, `seconds`) go to the shared `metrics` set, flushed once per
  invocation by the `log_metrics` middleware app.py registers for every function;
- metrics with their own dimensions (`ingest_outcome` per ingest source, `tracker_lag` per
  tracker) are written at once as their own EMF document, since Powertools gives one dimension
  set to a whole flush and one invocation can see several sources (an API call and its audit
  trace) or trackers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

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


def ingest_outcome(source: str, statuses: Mapping[str, int], latencies_ms: Sequence[int]) -> None:
    """One ingest call: how many traces were stored, duplicate, rejected or failed, and the
    delivery latency (record_time - time) of the stored ones as the call's max and mean, with the
    dimension Source (api, audit, queue, cloudtrail, data)."""
    emf = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    emf.add_dimension(name="Source", value=source)
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
    emf.flush_metrics()


def tracker_lag(project_id: str, tracker_name: str, lag_s: float) -> None:
    """How far one tracker's S3 transfer is behind (now - its watermark), per tracker."""
    emf = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    emf.add_dimension(name="ProjectId", value=project_id)
    emf.add_dimension(name="TrackerName", value=tracker_name)
    emf.add_metric(name="TransferLag", unit=MetricUnit.Seconds, value=lag_s)
    emf.flush_metrics()
