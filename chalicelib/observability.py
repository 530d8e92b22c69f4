"""One place for metrics: Powertools Metrics (CloudWatch embedded metric format, flushed by the
`log_metrics` middleware app.py registers), behind a plain `count` callable for domain code."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

metrics = Metrics(namespace="OpenCTS", service="opencts")


def count(name: str, value: int) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def seconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)
