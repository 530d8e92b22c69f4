"""Ingestion against DynamoDB on moto, with the faults moto cannot make injected at the botocore
layer: unprocessed batch items and throttling. Guarantee under test: at least once in, stored once
by trace_id, and nothing dropped without being reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from chalicelib.catalog import Catalog
from chalicelib.clock import FixedClock
from chalicelib.control import DynamoControlTable
from chalicelib.ingest import Ingestor, QueueIngestor, QueueMessage
from chalicelib.projects import ProjectRegistry
from chalicelib.query import TraceFinder, parse_query
from chalicelib.store import DynamoTraceTable, TraceStore
from tests.conftest import DOMAIN, NOW_MS, PROJECT, trace


class Faults:
    """Short-circuits chosen DynamoDB calls before they reach moto (moto never throttles and
    never leaves batch items unprocessed). Each rule sees the call's params and returns a
    parsed response, raises, or returns None to let moto answer."""

    def __init__(self, client: Any) -> None:
        self.rules: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self.calls: dict[str, int] = {}
        client.meta.events.register("before-call.dynamodb.*", self._before_call)

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        name = model.name
        self.calls[name] = self.calls.get(name, 0) + 1
        rule = self.rules.get(name)
        if rule is None:
            return None
        # DynamoDB speaks JSON: the serialized body holds the call's parameters as given.
        parsed = rule(json.loads(params["body"]))
        if parsed is None:
            return None
        return AWSResponse("https://dynamodb.fault", 200, {}, None), parsed


def throttled(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
        operation,
    )


@pytest.fixture
def client(created: dict[str, str]) -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def faults(client: Any) -> Faults:
    return Faults(client)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def ingestor(client: Any, settings: Any, clock: FixedClock, sleeps: list[float]) -> Ingestor:
    control = DynamoControlTable(client, settings.control_table)
    projects = ProjectRegistry(control, clock)
    projects.register(PROJECT, DOMAIN)
    store = TraceStore(DynamoTraceTable(client, settings.traces_table), sleep=sleeps.append)
    return Ingestor(projects, store, Catalog(control), clock)


def listed(ingestor: Ingestor) -> list[str]:
    project = ingestor.projects.require(PROJECT)
    query = parse_query({"limit": ["200"]}, NOW_MS)
    return [t["trace_id"] for t in TraceFinder(ingestor.store).find(project, query, NOW_MS).traces]


def test_batch_results_mix_stored_duplicate_and_rejected(ingestor: Ingestor) -> None:
    ingestor.report(PROJECT, [trace(trace_id="seen")])
    results = ingestor.report(
        PROJECT,
        [
            trace(trace_id="new"),
            trace(trace_id="seen"),
            trace(trace_id="bad", trace_rating="x"),
            trace(trace_id="new"),
            "not an object",
        ],
    )
    assert [(r.trace_id, r.status) for r in results] == [
        ("new", "stored"),
        ("seen", "duplicate"),
        ("bad", "rejected"),
        ("new", "duplicate"),
        (None, "rejected"),
    ]
    assert results[2].error is not None
    assert results[2].error.code == "CTS.0005"
    assert sorted(listed(ingestor)) == ["new", "seen"]


def test_a_duplicate_never_moves_the_stored_trace(ingestor: Ingestor, clock: FixedClock) -> None:
    ingestor.report(PROJECT, [trace(trace_id="once", resource_name="first")])
    clock.advance(5_000)
    (again,) = ingestor.report(PROJECT, [trace(trace_id="once", resource_name="second")])
    assert again.status == "duplicate"
    stored = ingestor.store.get(PROJECT, "once", clock.now_ms())
    assert stored is not None
    assert stored["record_time"] == NOW_MS
    assert stored["resource_name"] == "first"


def test_unprocessed_items_are_retried_with_backoff_until_stored(
    ingestor: Ingestor, faults: Faults, sleeps: list[float]
) -> None:
    # Given DynamoDB leaves half of each of the first three batch writes unprocessed
    left = {"n": 0}

    def half_unprocessed(params: dict[str, Any]) -> Any:
        if left["n"] >= 3:
            return None
        left["n"] += 1
        ((table, requests),) = params["RequestItems"].items()
        keep = requests[: len(requests) // 2]
        boto3.client("dynamodb", region_name="us-east-1").batch_write_item(
            RequestItems={table: keep}
        )
        return {"UnprocessedItems": {table: requests[len(requests) // 2 :]}}

    faults.rules["BatchWriteItem"] = half_unprocessed
    # When 60 traces are reported
    results = ingestor.report(PROJECT, [trace(trace_id=f"u{i:02d}") for i in range(60)])
    # Then all are stored, after sleeping between retries
    assert {r.status for r in results} == {"stored"}
    assert len(listed(ingestor)) == 60
    assert len(sleeps) == 3
    assert all(0 <= s <= 2.0 for s in sleeps)


def test_what_stays_unprocessed_is_reported_failed_never_dropped(
    ingestor: Ingestor, faults: Faults, sleeps: list[float]
) -> None:
    # Given the second chunk of 25 is throttled on every attempt
    calls = {"n": 0}

    def throttle_second_chunk(params: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] >= 2:
            raise throttled("BatchWriteItem")
        return None

    faults.rules["BatchWriteItem"] = throttle_second_chunk
    results = ingestor.report(PROJECT, [trace(trace_id=f"f{i:02d}") for i in range(30)])
    statuses = [r.status for r in results]
    assert statuses[:25] == ["stored"] * 25
    assert statuses[25:] == ["failed"] * 5
    assert all(r.error and r.error.code == "CTS.0503" for r in results[25:])
    assert len(sleeps) == ingestor.store.max_attempts
    # When the reporter sends the same batch again, once DynamoDB has recovered
    del faults.rules["BatchWriteItem"]
    again = ingestor.report(PROJECT, [trace(trace_id=f"f{i:02d}") for i in range(30)])
    # Then the stored ones are duplicates and the failed ones are stored: each exactly once
    assert [r.status for r in again] == ["duplicate"] * 25 + ["stored"] * 5
    assert sorted(listed(ingestor)) == [f"f{i:02d}" for i in range(30)]


def test_a_crash_between_two_writes_loses_nothing_on_redelivery(
    ingestor: Ingestor, faults: Faults
) -> None:
    # Given the process dies after the first of two batch writes
    calls = {"n": 0}

    def crash_on_second(params: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("container killed")
        return None

    faults.rules["BatchWriteItem"] = crash_on_second
    batch = [trace(trace_id=f"c{i:02d}") for i in range(40)]
    with pytest.raises(RuntimeError):
        ingestor.report(PROJECT, batch)
    assert len(listed(ingestor)) == 25
    # When the batch is delivered again (at least once)
    del faults.rules["BatchWriteItem"]
    results = ingestor.report(PROJECT, batch)
    # Then every trace is stored exactly once
    assert [r.status for r in results] == ["duplicate"] * 25 + ["stored"] * 15
    assert sorted(listed(ingestor)) == [f"c{i:02d}" for i in range(40)]


def test_throttled_duplicate_check_is_retried(
    ingestor: Ingestor, faults: Faults, sleeps: list[float]
) -> None:
    ingestor.report(PROJECT, [trace(trace_id="dup")])
    calls = {"n": 0}

    def throttle_first(params: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise throttled("BatchGetItem")
        return None

    faults.rules["BatchGetItem"] = throttle_first
    (result,) = ingestor.report(PROJECT, [trace(trace_id="dup")])
    assert result.status == "duplicate"
    assert len(sleeps) == 1


def test_a_failing_catalog_does_not_fail_stored_traces(
    ingestor: Ingestor, faults: Faults, client: Any, settings: Any
) -> None:
    def fail_catalog(params: dict[str, Any]) -> Any:
        if settings.control_table in params["RequestItems"]:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "BatchWriteItem"
            )
        return None

    faults.rules["BatchWriteItem"] = fail_catalog
    (result,) = ingestor.report(PROJECT, [trace(trace_id="cat")])
    assert result.status == "stored"
    assert listed(ingestor) == ["cat"]


class TestQueue:
    @pytest.fixture
    def parked(self) -> list[dict[str, Any]]:
        return []

    @pytest.fixture
    def queue(self, ingestor: Ingestor, parked: list[dict[str, Any]]) -> QueueIngestor:
        return QueueIngestor(ingestor, parked.append)

    def test_good_messages_are_done_and_poison_is_parked_not_retried(
        self, queue: QueueIngestor, parked: list[dict[str, Any]], ingestor: Ingestor
    ) -> None:
        messages = [
            QueueMessage(
                "m1", json.dumps({"project_id": PROJECT, "traces": [trace(trace_id="q1")]})
            ),
            QueueMessage("m2", "{not json"),
            QueueMessage(
                "m3",
                json.dumps(
                    {
                        "project_id": PROJECT,
                        "traces": [trace(trace_id="q3"), trace(trace_id="q4", time="soon")],
                    }
                ),
            ),
            QueueMessage("m4", json.dumps({"project_id": "unknown-project", "traces": [trace()]})),
            QueueMessage("m5", json.dumps({"traces": []})),
        ]
        retry = queue.process(messages)
        assert retry == []
        assert sorted(listed(ingestor)) == ["q1", "q3"]
        assert [p["message_id"] for p in parked] == ["m2", "m3", "m4", "m5"]
        assert parked[0]["errors"][0]["error_code"] == "CTS.0002"
        assert parked[1]["errors"] == [
            {
                "index": 1,
                "trace_id": "q4",
                "status": "rejected",
                "error_code": "CTS.0005",
                "error_msg": "Invalid trace field 'time': must be an integer",
            }
        ]
        assert parked[2]["errors"][0]["error_code"] == "CTS.0006"

    def test_only_messages_with_storage_failures_are_retried(
        self, queue: QueueIngestor, faults: Faults, ingestor: Ingestor
    ) -> None:
        def throttle_traces(params: dict[str, Any]) -> Any:
            items = next(iter(params["RequestItems"].values()))
            if any(r["PutRequest"]["Item"].get("trace_id", {}).get("S") == "slow" for r in items):
                raise throttled("BatchWriteItem")
            return None

        faults.rules["BatchWriteItem"] = throttle_traces
        retry = queue.process(
            [
                QueueMessage(
                    "fast", json.dumps({"project_id": PROJECT, "traces": [trace(trace_id="ok")]})
                ),
                QueueMessage(
                    "slow", json.dumps({"project_id": PROJECT, "traces": [trace(trace_id="slow")]})
                ),
            ]
        )
        assert retry == ["slow"]
        assert listed(ingestor) == ["ok"]

    def test_a_failing_dead_letter_queue_means_retry(self, ingestor: Ingestor) -> None:
        def broken(_: dict[str, Any]) -> None:
            raise ConnectionError("dlq down")

        retry = QueueIngestor(ingestor, broken).process([QueueMessage("p", "[]")])
        assert retry == ["p"]
