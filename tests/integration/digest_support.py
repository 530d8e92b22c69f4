"""Trace files and trackers for the digest and validator tests: the tests write trace files
themselves (a gzip JSON array in S3, recorded in the delivery log), as the transfer cycle does."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from typing import Any

import boto3

from chalicelib.clock import MS_PER_HOUR, FixedClock
from chalicelib.control import DynamoControlTable
from chalicelib.deliveries import DeliveredFile, DeliveryLog
from chalicelib.digests import ChainHead, ChainHeads
from chalicelib.wiring import Services
from tests.conftest import DOMAIN, NOW_MS, PROJECT, trace

BUCKET = "opencts-trail-bucket"
PREFIX = "audit"
TRACKER = "system"
REGION = "us-east-1"
# A whole hour, two hours before NOW_MS: the chain of the tests starts here.
HOUR0 = NOW_MS - NOW_MS % MS_PER_HOUR - 2 * MS_PER_HOUR


def trace_file_key(at_ms: int, service: str, serial: int, prefix: str = PREFIX) -> str:
    """SPEC 8's key layout and name."""
    t = time.gmtime(at_ms // 1000)
    folder = f"{prefix}/CloudTraces/{REGION}/{t.tm_year}/{t.tm_mon}/{t.tm_mday}/{TRACKER}/{service}"
    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", t)
    return f"{folder}/{prefix}_CloudTrace_{REGION}-{PROJECT}_{stamp}_{serial:016x}.json.gz"


def make_tracker(svc: Services, bucket: str = BUCKET) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    svc.trackers.create_tracker(
        PROJECT,
        {
            "tracker_type": "system",
            "tracker_name": TRACKER,
            "obs_info": {"bucket_name": bucket, "file_prefix_name": PREFIX},
            "is_support_validate": True,
        },
    )


def control(svc: Services) -> DynamoControlTable:
    return DynamoControlTable(
        boto3.client("dynamodb", region_name=REGION), svc.settings.control_table
    )


_serial = iter(range(1, 1 << 30))


def deliver(
    svc: Services, delivered_ms: int, traces: int = 3, service: str = "ECS", bucket: str = BUCKET
) -> DeliveredFile:
    """One trace file delivered at `delivered_ms`: in S3 and in the delivery log."""
    batch: list[dict[str, Any]] = [
        trace(time=delivered_ms - 1000 * (i + 1), trace_id=f"t-{delivered_ms}-{i}")
        for i in range(traces)
    ]
    content = json.dumps(batch).encode()
    key = trace_file_key(delivered_ms, service, next(_serial))
    body = gzip.compress(content)
    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key=key, Body=body)
    delivered = DeliveredFile(
        project_id=PROJECT,
        tracker_name=TRACKER,
        bucket=bucket,
        key=key,
        sha256=hashlib.sha256(content).hexdigest(),
        oldest_event_ms=delivered_ms - 1000 * traces,
        newest_event_ms=delivered_ms - 1000,
        delivered_ms=delivered_ms,
        count=traces,
        size=len(body),
    )
    DeliveryLog(control(svc)).record(delivered)
    return delivered


def build_chain(svc: Services, clock: FixedClock, hours: int, files_per_hour: int = 2) -> list[str]:
    """`hours` digest periods from HOUR0, each with files (the second hour has none), written
    by hourly runs; returns every trace file key."""
    assert svc.digests is not None
    keys = []
    clock.current_ms = HOUR0 + 90_000
    svc.digests.run()  # the first run starts the chain with the hour before HOUR0
    for h in range(hours):
        start = HOUR0 + h * MS_PER_HOUR
        for i in range(files_per_hour if h != 1 else 0):
            keys.append(deliver(svc, start + (i + 1) * 60_000).key)
        clock.current_ms = start + MS_PER_HOUR + 5 * 60_000
        svc.digests.run()
    return keys


def head(svc: Services) -> ChainHead:
    found = ChainHeads(control(svc)).get(PROJECT, TRACKER)
    assert found is not None
    return found


__all__ = ["DOMAIN"]
