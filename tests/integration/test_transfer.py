"""The transfer cycle (issue 4 items 1-3) against both adapter sets: in memory, and DynamoDB, S3
and CloudWatch Logs on moto. Faults are injected by wrapping the S3 adapter or through the
cycle's `after_put` hook; every no-fault test asserts that each trace id appears exactly once
across all the files written."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import keys
from chalicelib.catalog import Catalog
from chalicelib.clock import MS_PER_DAY, FixedClock
from chalicelib.control import ControlTable, DynamoControlTable, MemoryControlTable
from chalicelib.deliveries import DeliveryLog
from chalicelib.ingest import Ingestor
from chalicelib.model import parse_trace
from chalicelib.projects import ProjectRegistry
from chalicelib.resources import control_table_definition, ensure_table, traces_table_definition
from chalicelib.store import DynamoTraceTable, MemoryTraceTable, TraceStore
from chalicelib.trace_files import read_traces
from chalicelib.trackers import MemoryTransferBuckets, S3TransferBuckets, TrackerService
from chalicelib.transfer import (
    LATE_WINDOW_MS,
    LEASE_MS,
    SLOT_MS,
    TransferCycle,
)
from chalicelib.transfer_adapters import (
    BucketFailure,
    CloudWatchLogSink,
    DynamoRecordedTraces,
    LogSink,
    MemoryLogSink,
    MemoryRecordedTraces,
    MemoryTraceFileBucket,
    S3TraceFileBucket,
    TraceFileBucket,
)
from tests.conftest import DOMAIN, NOW_MS, PROJECT, trace

REGION = "us-east-1"
BUCKET = "trace-bucket"
SETTLE = 10_000  # past the cycle's 5 s settle delay


class Crash(BaseException):
    """An abrupt end of the run, as a killed Lambda: nothing is cleaned up, the lease stays."""


@dataclass
class FlakyBucket:
    """Wraps a TraceFileBucket: puts number `fail_on` (1-based) and later raise `code`, until
    `fail_on` is cleared; `puts` counts the attempts."""

    inner: TraceFileBucket
    fail_on: int | None = None
    code: str = "InternalError"
    puts: int = 0

    def put(
        self, bucket: str, key: str, body: bytes, content_type: str, kms_id: str | None
    ) -> None:
        self.puts += 1
        if self.fail_on is not None and self.puts >= self.fail_on:
            raise BucketFailure(self.code, "injected")
        self.inner.put(bucket, key, body, content_type, kms_id)

    def get(self, bucket: str, key: str) -> bytes | None:
        return self.inner.get(bucket, key)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return self.inner.list_keys(bucket, prefix)

    def ensure_lifecycle(self, bucket: str, rule_id: str, prefix: str, days: int | None) -> None:
        self.inner.ensure_lifecycle(bucket, rule_id, prefix, days)


@dataclass
class Rig:
    backend: str
    clock: FixedClock
    control: ControlTable
    projects: ProjectRegistry
    trackers: TrackerService
    store: TraceStore
    ingestor: Ingestor
    bucket: FlakyBucket
    logs: LogSink
    recorded: Any
    make_bucket: Any
    drop_bucket: Any
    s3: Any = None
    logs_client: Any = None
    hex_counter: list[int] = field(default_factory=lambda: [0])

    def cycle(self, **kwargs: Any) -> TransferCycle:
        def next_hex() -> str:
            self.hex_counter[0] += 1
            return f"{self.hex_counter[0]:016x}"

        kwargs.setdefault("random_part", next_hex)
        return TransferCycle(
            projects=self.projects,
            trackers=self.trackers,
            recorded=self.recorded,
            control=self.control,
            bucket=self.bucket,
            logs=self.logs,
            deliveries=DeliveryLog(self.control),
            clock=self.clock,
            region=REGION,
            **kwargs,
        )

    def run(self, **kwargs: Any) -> Any:
        return self.cycle(**kwargs).run()

    def report(self, count: int = 1, **overrides: Any) -> list[str]:
        raws = [trace(**overrides) for _ in range(count)]
        results = self.ingestor.report(PROJECT, raws)
        assert all(r.status == "stored" for r in results), results
        return [str(r.trace_id) for r in results]

    def file_keys(self, bucket: str = BUCKET) -> list[str]:
        return [k for k in self.bucket.list_keys(bucket, "") if "CloudTrace_" in k]

    def files(self, bucket: str = BUCKET) -> dict[str, list[dict[str, Any]]]:
        out = {}
        for key in self.file_keys(bucket):
            body = self.bucket.get(bucket, key)
            assert body is not None
            out[key] = read_traces(key, body)
        return out

    def delivered(self, bucket: str = BUCKET) -> Counter[str]:
        return Counter(t["trace_id"] for f in self.files(bucket).values() for t in f)

    def tracker(self, name: str = "system") -> Any:
        return next(t for t in self.trackers.trackers(PROJECT) if t.tracker_name == name)

    def log_events(self, stream: str = "system-trace") -> list[tuple[int, str]]:
        if isinstance(self.logs, MemoryLogSink):
            return list(self.logs.streams.get(("CTS", stream), []))
        try:
            got = self.logs_client.get_log_events(
                logGroupName="CTS", logStreamName=stream, startFromHead=True
            )
        except self.logs_client.exceptions.ResourceNotFoundException:
            return []
        return [(e["timestamp"], e["message"]) for e in got["events"]]


def _memory_rig() -> Rig:
    clock = FixedClock(NOW_MS)
    control = MemoryControlTable()
    projects = ProjectRegistry(control, clock)
    check_buckets = MemoryTransferBuckets(REGION)
    files = MemoryTraceFileBucket()
    table = MemoryTraceTable()
    store = TraceStore(table, sleep=lambda s: None)

    def make(name: str) -> None:
        check_buckets.add(name)
        files.add(name)

    def drop(name: str) -> None:
        check_buckets.remove(name)
        files.buckets.pop(name, None)

    return Rig(
        "memory",
        clock,
        control,
        projects,
        TrackerService(control, check_buckets, projects, clock, REGION, DOMAIN),
        store,
        Ingestor(projects, store, Catalog(control), clock),
        FlakyBucket(files),
        MemoryLogSink(),
        MemoryRecordedTraces(table),
        make,
        drop,
    )


def _moto_rig(traces_table: str = "traces", control_table: str = "control") -> Rig:
    clock = FixedClock(NOW_MS)
    ddb = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    logs = boto3.client("logs", region_name=REGION)
    ensure_table(ddb, traces_table_definition(traces_table))
    ensure_table(ddb, control_table_definition(control_table))
    control = DynamoControlTable(ddb, control_table)
    projects = ProjectRegistry(control, clock)
    store = TraceStore(DynamoTraceTable(ddb, traces_table), sleep=lambda s: None)

    def make(name: str) -> None:
        s3.create_bucket(Bucket=name)

    def drop(name: str) -> None:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=name, Key=o["Key"])
        s3.delete_bucket(Bucket=name)

    return Rig(
        "moto",
        clock,
        control,
        projects,
        TrackerService(control, S3TransferBuckets(s3, REGION), projects, clock, REGION, DOMAIN),
        store,
        Ingestor(projects, store, Catalog(control), clock),
        FlakyBucket(S3TraceFileBucket(s3)),
        CloudWatchLogSink(logs),
        DynamoRecordedTraces(ddb, traces_table, sleep=lambda s: None),
        make,
        drop,
        s3=s3,
        logs_client=logs,
    )


@pytest.fixture(params=["memory", "moto"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    if request.param == "memory":
        built = _memory_rig()
        built.projects.register(PROJECT, DOMAIN)
        yield built
        return
    with mock_aws():
        built = _moto_rig()
        built.projects.register(PROJECT, DOMAIN)
        yield built


def _system(rig: Rig, bucket: str = BUCKET, **obs: Any) -> None:
    rig.make_bucket(bucket)
    rig.trackers.create_tracker(
        PROJECT,
        {
            "tracker_type": "system",
            "tracker_name": "system",
            "obs_info": {"bucket_name": bucket, "file_prefix_name": "audit", **obs},
        },
    )


def _exactly_once(rig: Rig, expected: list[str], bucket: str = BUCKET) -> None:
    delivered = rig.delivered(bucket)
    assert sorted(delivered) == sorted(expected)
    assert set(delivered.values()) == {1}, [t for t, n in delivered.items() if n > 1]


# -- files ---------------------------------------------------------------------------------------
def test_traces_become_one_gzip_json_file_per_service_at_the_spec_key(rig: Rig) -> None:
    _system(rig)
    ecs = rig.report(3)
    iam = rig.report(2, service_type="IAM", resource_type="user")
    rig.clock.advance(SETTLE)

    report = rig.run()

    assert report.files == 2
    assert report.traces == 5
    stamp = "2026-11-20T12-00-10Z"
    folder = "audit/CloudTraces/us-east-1/2026/11/20/system"
    assert rig.file_keys() == [
        f"{folder}/ECS/audit_CloudTrace_us-east-1-{PROJECT}_{stamp}_0000000000000001.json.gz",
        f"{folder}/IAM/audit_CloudTrace_us-east-1-{PROJECT}_{stamp}_0000000000000002.json.gz",
    ]
    files = rig.files()
    assert [t["trace_id"] for t in files[rig.file_keys()[0]]] == sorted(ecs, key=lambda i: i)
    assert {t["service_type"] for t in files[rig.file_keys()[1]]} == {"IAM"}
    _exactly_once(rig, ecs + iam)
    for key in rig.file_keys():
        body = rig.bucket.get(BUCKET, key)
        assert body is not None
        member = zlib.decompressobj(wbits=31)
        raw = member.decompress(body)
        assert member.eof
        assert member.unused_data == b""  # one gzip member, nothing after it
        assert json.loads(raw)[0]["record_time"] == NOW_MS


def test_every_file_is_in_the_delivery_log_with_the_hash_of_its_json(rig: Rig) -> None:
    _system(rig)
    rig.report(2)
    rig.report(1, service_type="IAM", resource_type="user", time=NOW_MS - 90_000)
    rig.clock.advance(SETTLE)
    rig.run()

    logged = DeliveryLog(rig.control).delivered_in_hour(PROJECT, "system", NOW_MS)
    assert sorted(f.key for f in logged) == rig.file_keys()
    for entry in logged:
        body = rig.bucket.get(BUCKET, entry.key)
        assert body is not None
        assert entry.sha256 == hashlib.sha256(gzip.decompress(body)).hexdigest()
        assert entry.size == len(body)
        assert entry.delivered_ms == NOW_MS + SETTLE
        assert entry.bucket == BUCKET
    iam = next(f for f in logged if "/IAM/" in f.key)
    assert (iam.oldest_event_ms, iam.newest_event_ms, iam.count) == (
        NOW_MS - 90_000, NOW_MS - 90_000, 1
    )


def test_plain_json_without_service_folders(rig: Rig) -> None:
    _system(rig, compress_type="json", is_sort_by_service=False)
    ids = rig.report(2) + rig.report(2, service_type="IAM", resource_type="user")
    rig.clock.advance(SETTLE)
    rig.run()

    (key,) = rig.file_keys()
    assert key.startswith("audit/CloudTraces/us-east-1/2026/11/20/system/audit_CloudTrace_")
    assert key.endswith(".json")
    body = rig.bucket.get(BUCKET, key)
    assert body is not None
    assert json.loads(body)[0]["trace_id"] in ids
    _exactly_once(rig, ids)


def test_a_file_past_the_size_bound_is_split(rig: Rig) -> None:
    _system(rig)
    ids = rig.report(12)
    rig.clock.advance(SETTLE)
    one = len(json.dumps(rig.store.to_trace(rig.store.table.get(f"{PROJECT}|{ids[0]}") or {})))
    bound = one * 4 + 40
    rig.run(max_file_bytes=bound)

    assert len(rig.file_keys()) >= 3
    for key in rig.file_keys():
        body = rig.bucket.get(BUCKET, key)
        assert body is not None
        assert len(gzip.decompress(body)) <= bound
    _exactly_once(rig, ids)


def test_encrypted_trace_files_use_the_trackers_kms_key(rig: Rig) -> None:
    if rig.backend == "moto":
        key_id = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
    else:
        key_id = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    rig.make_bucket(BUCKET)
    rig.trackers.create_tracker(
        PROJECT,
        {
            "tracker_type": "system",
            "tracker_name": "system",
            "obs_info": {"bucket_name": BUCKET},
            "is_support_trace_files_encryption": True,
            "kms_id": key_id,
        },
    )
    rig.report(1)
    rig.clock.advance(SETTLE)
    rig.run()

    (key,) = rig.file_keys()
    assert key.startswith("CloudTraces/us-east-1/2026/11/20/system/ECS/CloudTrace_us-east-1-")
    if rig.backend == "moto":
        head = rig.s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert key_id in head["SSEKMSKeyId"]
    else:
        inner = rig.bucket.inner
        assert isinstance(inner, MemoryTraceFileBucket)
        assert inner.buckets[BUCKET][key][2] == key_id


def test_data_traces_go_to_the_data_trackers_bucket_with_its_lifecycle(rig: Rig) -> None:
    _system(rig)
    rig.make_bucket("watched")
    rig.make_bucket("data-files")
    rig.trackers.create_tracker(
        PROJECT,
        {
            "tracker_type": "data",
            "tracker_name": "objects",
            "data_bucket": {"data_bucket_name": "watched", "data_event": ["WRITE"]},
            "obs_info": {
                "bucket_name": "data-files",
                "file_prefix_name": "d",
                "bucket_lifecycle": 30,
            },
        },
    )
    system_ids = rig.report(2)
    data_ids = rig.report(
        3, trace_type="ObsSDK", tracker_name="objects", service_type="OBS", resource_type="bucket"
    )
    rig.clock.advance(SETTLE)
    rig.run()
    rig.run()  # the lifecycle rule is set once

    _exactly_once(rig, system_ids)
    _exactly_once(rig, data_ids, "data-files")
    (key,) = rig.file_keys("data-files")
    assert key.startswith("d/CloudTraces/us-east-1/2026/11/20/objects/OBS/d_CloudTrace_")
    if rig.backend == "moto":
        rules = rig.s3.get_bucket_lifecycle_configuration(Bucket="data-files")["Rules"]
        assert len(rules) == 1
        assert rules[0]["Expiration"] == {"Days": 30}
        assert rules[0]["Filter"] == {"Prefix": "d/CloudTraces/"}
        assert rules[0]["Status"] == "Enabled"
    else:
        inner = rig.bucket.inner
        assert isinstance(inner, MemoryTraceFileBucket)
        assert inner.lifecycle["data-files"] == {
            f"opencts-{PROJECT}-objects": ("d/CloudTraces/", 30)
        }

    rig.trackers.update_tracker(
        PROJECT,
        {"tracker_type": "data", "tracker_name": "objects", "obs_info": {"bucket_lifecycle": 0}},
    )
    rig.run()
    if rig.backend == "moto":
        with pytest.raises(rig.s3.exceptions.ClientError, match="NoSuchLifecycle"):
            rig.s3.get_bucket_lifecycle_configuration(Bucket="data-files")


# -- guarantees ----------------------------------------------------------------------------------
def test_many_cycles_deliver_each_trace_exactly_once(rig: Rig) -> None:
    _system(rig)
    ids: list[str] = []
    for step in range(14):  # 70 minutes: slots open, close and move the watermark
        ids += rig.report(2, time=rig.clock.now_ms() - 1000)
        rig.clock.advance(SETTLE)
        rig.run()
        rig.clock.advance(SLOT_MS - SETTLE + (step % 3) * 1000)
    rig.clock.advance(LATE_WINDOW_MS + SLOT_MS)
    rig.run()

    _exactly_once(rig, ids)
    state = rig.control.get(f"XFER#{PROJECT}|system", "STATE")
    assert state is not None
    assert state["s3"]["next_slot"] > NOW_MS + 40 * 60_000
    assert state["lease_until"] == 0
    slots = rig.control.query(f"XFER#{PROJECT}|system", "SLOT#")
    assert len(slots) <= LATE_WINDOW_MS // SLOT_MS + 2  # only open slots are kept


def test_a_failed_put_half_way_misses_nothing_and_duplicates_nothing(rig: Rig) -> None:
    _system(rig)
    ids = rig.report(2) + rig.report(2, service_type="IAM", resource_type="user")
    ids += rig.report(1, service_type="VPC", resource_type="vpc")
    rig.clock.advance(SETTLE)
    rig.bucket.fail_on = 2  # the first file is written, the second put fails

    report = rig.run()

    assert report.trackers[0].error == "S3 InternalError"
    assert len(rig.file_keys()) == 1
    assert rig.tracker().status == "enabled"  # a transient error is not a bucket error
    rig.bucket.fail_on = None
    rig.clock.advance(SLOT_MS)
    rig.run()
    _exactly_once(rig, ids)


def test_a_failure_after_the_put_before_the_state_update_is_reconciled(rig: Rig) -> None:
    _system(rig)
    ids = rig.report(3)
    rig.clock.advance(SETTLE)

    def boom(key: str) -> None:
        raise RuntimeError("the control table went away")

    report = rig.run(after_put=boom)
    assert report.trackers[0].error == "s3: RuntimeError"
    assert len(rig.file_keys()) == 1  # the object exists, the slot item says "pending"

    rig.clock.advance(SLOT_MS)
    rig.run()
    _exactly_once(rig, ids)
    log = DeliveryLog(rig.control)
    logged = log.delivered_in_hour(PROJECT, "system", NOW_MS)
    assert [f.key for f in logged] == rig.file_keys()  # recorded once, by the reconciliation
    assert logged[0].count == 3


def test_a_crash_keeps_the_lease_until_it_expires_then_nothing_is_lost(rig: Rig) -> None:
    _system(rig)
    ids = rig.report(2)
    rig.clock.advance(SETTLE)

    def crash(key: str) -> None:
        raise Crash()

    with pytest.raises(Crash):
        rig.run(after_put=crash)
    more = rig.report(1)
    rig.clock.advance(SLOT_MS)
    assert rig.run().trackers[0].skipped == "leased"  # the crashed run still holds it
    rig.clock.advance(LEASE_MS)
    rig.run()
    _exactly_once(rig, ids + more)


def test_a_put_that_never_happened_is_delivered_again(rig: Rig) -> None:
    _system(rig)
    ids = rig.report(2)
    rig.clock.advance(SETTLE)
    rig.bucket.fail_on = 1
    rig.run()
    assert rig.file_keys() == []
    rig.bucket.fail_on = None
    rig.clock.advance(SLOT_MS)
    rig.run()
    _exactly_once(rig, ids)


def test_a_run_starting_late_delivers_everything_in_files_by_slot(rig: Rig) -> None:
    _system(rig)
    rig.clock.advance(SETTLE)
    rig.run()  # transfer starts
    ids = []
    for _ in range(24):  # two hours without a run
        ids += rig.report(1, time=rig.clock.now_ms() - 1000)
        rig.clock.advance(SLOT_MS)
    rig.clock.advance(3 * 3_600_000)

    rig.run()

    _exactly_once(rig, ids)
    for traces in rig.files().values():
        assert len({keys.slot_start(t["record_time"]) for t in traces}) == 1
    state = rig.control.get(f"XFER#{PROJECT}|system", "STATE")
    assert state is not None
    assert state["s3"]["next_slot"] == keys.slot_start(rig.clock.now_ms() - LATE_WINDOW_MS)


def test_two_runs_at_once_deliver_each_slot_once(rig: Rig) -> None:
    _system(rig)
    ids = rig.report(2) + rig.report(2, service_type="IAM", resource_type="user")
    rig.clock.advance(SETTLE)
    second: list[Any] = []

    def race(key: str) -> None:
        if not second:
            second.append(rig.run())

    first = rig.run(after_put=race)

    assert second[0].trackers[0].skipped == "leased"
    assert first.trackers[0].files == 2
    _exactly_once(rig, ids)


def test_a_trace_recorded_late_inside_a_written_slot_is_delivered_next_cycle(rig: Rig) -> None:
    _system(rig)
    early = rig.report(3)
    rig.clock.advance(30_000)
    late_stamp = rig.clock.now_ms() - 20_000  # stamped before the run, visible only after it
    rig.run()
    assert sum(rig.delivered().values()) == 3

    slow = parse_trace(trace(trace_id="slow-writer"), late_stamp)
    assert rig.store.put_new([TraceStore.to_item(PROJECT, slow, 1)]) == set()
    rig.clock.advance(SLOT_MS)
    rig.run()

    _exactly_once(rig, [*early, "slow-writer"])
    newest = max(rig.file_keys(), key=lambda k: k.rsplit("_", 2)[1])
    assert [t["trace_id"] for t in rig.files()[newest]] == ["slow-writer"]


def test_a_configuration_change_takes_effect_in_the_current_cycle(rig: Rig) -> None:
    _system(rig)
    first = rig.report(1)
    rig.clock.advance(SETTLE)
    rig.run()
    rig.trackers.update_tracker(
        PROJECT,
        {
            "tracker_type": "system",
            "tracker_name": "system",
            "obs_info": {"bucket_name": BUCKET, "file_prefix_name": "new", "compress_type": "json"},
        },
    )
    second = rig.report(1)
    rig.clock.advance(SETTLE)
    rig.run()

    by_prefix = {k.split("/", 1)[0]: k for k in rig.file_keys()}
    assert set(by_prefix) == {"audit", "new"}
    assert by_prefix["new"].endswith(".json")
    assert [t["trace_id"] for t in rig.files()[by_prefix["new"]]] == second
    _exactly_once(rig, first + second)


def test_disabled_traces_are_not_backfilled_and_transfer_resumes(rig: Rig) -> None:
    _system(rig)
    before = rig.report(1)
    rig.clock.advance(SETTLE)
    rig.run()
    disable = {"tracker_type": "system", "tracker_name": "system", "status": "disabled"}
    rig.trackers.update_tracker(PROJECT, disable)
    rig.clock.advance(SLOT_MS)
    rig.run()
    rig.report(2)  # recorded while disabled
    rig.clock.advance(2 * SLOT_MS)
    rig.run()
    rig.trackers.update_tracker(PROJECT, {**disable, "status": "enabled"})
    after = rig.report(1)
    rig.clock.advance(SETTLE)
    rig.run()
    rig.clock.advance(LATE_WINDOW_MS + 2 * SLOT_MS)
    rig.run()

    _exactly_once(rig, before + after)


def test_a_removed_bucket_is_an_error_then_recovers_with_the_backlog(rig: Rig) -> None:
    _system(rig)
    first = rig.report(1)
    rig.clock.advance(SETTLE)
    rig.run()
    rig.drop_bucket(BUCKET)
    backlog = []
    for _ in range(3):
        backlog += rig.report(1, time=rig.clock.now_ms() - 1000)
        rig.clock.advance(SLOT_MS)
        report = rig.run()
        assert report.trackers[0].error == "S3 NoSuchBucket"
        tracker = rig.tracker()
        assert (tracker.status, tracker.bucket_error) == ("error", "noBucket")

    rig.make_bucket(BUCKET)
    rig.clock.advance(SETTLE)
    rig.run()

    assert rig.tracker().status == "enabled"
    # The first trace's file went with the bucket; its slot is still open, so it is written
    # again: a file that is gone delivered nothing.
    _exactly_once(rig, first + backlog)


def test_a_refused_write_is_a_bucket_policy_error(rig: Rig) -> None:
    _system(rig)
    ids = rig.report(1)
    rig.clock.advance(SETTLE)
    rig.bucket.fail_on, rig.bucket.code = 1, "AccessDenied"
    rig.run()
    tracker = rig.tracker()
    assert (tracker.status, tracker.bucket_error) == ("error", "bucketPolicyError")
    rig.bucket.fail_on = None
    rig.clock.advance(SLOT_MS)
    rig.run()
    assert rig.tracker().status == "enabled"
    _exactly_once(rig, ids)


def test_traces_older_than_the_retention_are_not_waited_for(rig: Rig) -> None:
    _system(rig)
    rig.report(1)
    rig.clock.advance(SETTLE)
    rig.bucket.fail_on = 1
    rig.run()
    rig.bucket.fail_on = None
    rig.clock.advance(8 * MS_PER_DAY)
    rig.run()
    state = rig.control.get(f"XFER#{PROJECT}|system", "STATE")
    assert state is not None
    assert state["s3"]["next_slot"] >= rig.clock.now_ms() - 7 * MS_PER_DAY - LATE_WINDOW_MS


# -- CloudWatch Logs -----------------------------------------------------------------------------
def test_lts_gets_every_trace_once_in_time_order_after_the_late_window(rig: Rig) -> None:
    if rig.backend == "moto":
        # moto's PutLogEvents judges "too old" by the real clock: start the test at real time.
        rig.clock.current_ms = keys.slot_start(time.time_ns() // 1_000_000)
    base = rig.clock.now_ms()
    rig.trackers.create_tracker(
        PROJECT, {"tracker_type": "system", "tracker_name": "system", "is_lts_enabled": True}
    )
    ids = rig.report(3, time=base - 5000) + rig.report(2, time=base - 9000)
    rig.clock.advance(SETTLE)
    rig.run()
    assert rig.log_events() == []  # not final yet
    rig.clock.advance(LATE_WINDOW_MS)
    later = rig.report(1)
    report = rig.run()
    assert report.trackers[0].log_events == 5
    rig.clock.advance(LATE_WINDOW_MS + SETTLE)
    rig.run()
    rig.run()

    events = rig.log_events()
    sent = [json.loads(m)["trace_id"] for _, m in events]
    assert sorted(sent) == sorted(ids + later)
    assert len(set(sent)) == len(sent)
    first_batch = [t for t, _ in events[:5]]
    assert first_batch == sorted(first_batch)


def test_lts_failure_does_not_hold_s3_back_and_catches_up(rig: Rig) -> None:
    if rig.backend == "moto":
        pytest.skip("the failure is injected into the in-memory log sink")
    _system(rig)
    rig.trackers.update_tracker(
        PROJECT, {"tracker_type": "system", "tracker_name": "system", "is_lts_enabled": True}
    )
    assert isinstance(rig.logs, MemoryLogSink)
    rig.logs.fail = True
    ids = rig.report(2)
    rig.clock.advance(SETTLE)
    rig.run()  # the first cycle after the change: both channels start here
    rig.clock.advance(LATE_WINDOW_MS)
    report = rig.run()
    assert report.trackers[0].error == "lts: RuntimeError"
    _exactly_once(rig, ids)
    rig.logs.fail = False
    rig.run()
    assert sorted(json.loads(m)["trace_id"] for _, m in rig.log_events()) == sorted(ids)


def test_events_cloudwatch_logs_rejects_are_counted() -> None:
    with mock_aws():
        sink = CloudWatchLogSink(boto3.client("logs", region_name=REGION))
        sink.ensure_stream("CTS", "system-trace")
        sink.ensure_stream("CTS", "system-trace")  # idempotent
        now = time.time_ns() // 1_000_000
        events = [(now - 20 * MS_PER_DAY, "old"), (now, "fine"), (now + 3 * 3_600_000, "new")]
        assert sink.put_events("CTS", "system-trace", events) == 2


def test_trackers_not_reached_in_time_wait_for_the_next_cycle(rig: Rig) -> None:
    _system(rig)
    ids = rig.report(1)
    rig.clock.advance(SETTLE)
    left = iter([900_000, 59_999])  # a minute's reserve out of 15 minutes is gone at once
    late = rig.cycle().run(time_left_ms=lambda: next(left))
    assert late.out_of_time
    assert late.trackers == []
    left = iter([900_000, 60_000])
    assert rig.cycle().run(time_left_ms=lambda: next(left)).trackers[0].files == 1
    _exactly_once(rig, ids)


def test_a_missing_bucket_does_not_hold_lts_back(rig: Rig) -> None:
    if rig.backend == "moto":
        rig.clock.current_ms = keys.slot_start(time.time_ns() // 1_000_000)
    _system(rig, bucket="soon-gone")
    rig.trackers.update_tracker(
        PROJECT, {"tracker_type": "system", "tracker_name": "system", "is_lts_enabled": True}
    )
    rig.drop_bucket("soon-gone")
    ids = rig.report(2, time=rig.clock.now_ms() - 1000)
    rig.clock.advance(SETTLE)
    rig.run()
    rig.clock.advance(LATE_WINDOW_MS)
    report = rig.run()
    assert report.trackers[0].error == "S3 NoSuchBucket"
    assert sorted(json.loads(m)["trace_id"] for _, m in rig.log_events()) == sorted(ids)


def test_sharded_slots_are_read_in_full(rig: Rig) -> None:
    _system(rig)
    rig.projects.set_shards(PROJECT, 4)
    rig.clock.advance(20 * 60_000)  # the new count is in force 16 minutes after the change
    ids = rig.report(12, time=rig.clock.now_ms() - 1000)
    rig.clock.advance(SETTLE)
    rig.run()
    shards = {
        (rig.store.table.get(f"{PROJECT}|{i}") or {})[keys.RECORD.attribute].rsplit("|", 1)[1]
        for i in ids
    }
    assert len(shards) > 1
    _exactly_once(rig, ids)


def test_excluded_kms_data_key_traces_stay_out_of_the_files(rig: Rig) -> None:
    _system(rig)
    rig.trackers.update_tracker(
        PROJECT,
        {
            "tracker_type": "system",
            "tracker_name": "system",
            "management_event_selector": {"exclude_service": ["KMS"]},
        },
    )
    rig.report(2, service_type="KMS", resource_type="key", trace_name="createDatakey")
    kept = rig.report(1, service_type="KMS", resource_type="key", trace_name="createKey")
    rig.clock.advance(SETTLE)
    rig.run()
    rig.clock.advance(SLOT_MS)
    rig.run()
    _exactly_once(rig, kept)


def test_a_bucket_policy_denying_writes_on_moto_is_a_bucket_policy_error() -> None:
    with mock_aws():
        rig = _moto_rig()
        rig.projects.register(PROJECT, DOMAIN)
        _system(rig)
        ids = rig.report(1)
        deny = {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/*",
            }],
        }  # fmt: skip
        rig.s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(deny))
        rig.clock.advance(SETTLE)
        # moto answers the denied put with a bare 403 (S3 itself says AccessDenied): both count.
        assert rig.run().trackers[0].error in ("S3 AccessDenied", "S3 403")
        assert rig.tracker().bucket_error == "bucketPolicyError"
        rig.s3.delete_bucket_policy(Bucket=BUCKET)
        rig.clock.advance(SLOT_MS)
        rig.run()
        assert rig.tracker().status == "enabled"
        _exactly_once(rig, ids)
