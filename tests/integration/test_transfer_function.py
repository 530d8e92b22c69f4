"""The scheduled `transfer_cycle` function, invoked as Lambda invokes it (chalice.test.Client),
on the app's real services over moto."""

from __future__ import annotations

import gzip
import json
from typing import Any

import boto3

import app as app_module
from chalicelib.clock import FixedClock
from chalicelib.local.driver import LocalDriver
from chalicelib.wiring import Services
from tests.conftest import PROJECT, trace


def scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": "c1b4e2b0-0000-4000-8000-000000000001",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-20T12:00:10Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/opencts-dev-transfer_cycle"],
        "detail": {},
    }


def test_the_scheduled_function_writes_the_trace_files(
    client: Any, services: Services, clock: FixedClock
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="audit-files")
    services.trackers.create_tracker(
        PROJECT,
        {
            "tracker_type": "system",
            "tracker_name": "system",
            "obs_info": {"bucket_name": "audit-files", "file_prefix_name": "cts"},
        },
    )
    stored = services.api.report(PROJECT, json.dumps({"traces": [trace()]}).encode())
    clock.advance(60_000)

    out = client.lambda_.invoke("transfer_cycle", scheduled_event()).payload

    assert out["files"] == 1
    assert out["errors"] == []
    listed = s3.list_objects_v2(Bucket="audit-files", Prefix="cts/CloudTraces/")["Contents"]
    (key,) = [o["Key"] for o in listed]
    body = s3.get_object(Bucket="audit-files", Key=key)["Body"].read()
    traces = json.loads(gzip.decompress(body))
    assert [t["trace_id"] for t in traces] == [stored["results"][0]["trace_id"]]


def test_the_local_driver_fires_it_every_5_minutes_or_every_5_s_when_fast() -> None:
    def no_client(service: str) -> Any:
        raise AssertionError(f"no {service} client is needed to plan schedules")

    real = LocalDriver(app_module.app, no_client, "us-east-1")
    fast = LocalDriver(app_module.app, no_client, "us-east-1", fast=True, fast_period_seconds=5)
    assert "timer  transfer_cycle rate(5 minutes)" in real.describe()
    assert "timer  transfer_cycle every 5 s (--fast)" in fast.describe()
