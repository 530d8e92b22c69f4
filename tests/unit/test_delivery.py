"""The delivery engine with its in-memory twins: what a record's failures lead to."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from chalicelib.clock import MS_PER_DAY, FixedClock
from chalicelib.control import MemoryControlTable
from chalicelib.delivery import (
    MAX_MESSAGE_BYTES,
    MemoryFunctions,
    MemoryTopics,
    NotificationPlanner,
    SentMarkers,
    StreamDelivery,
    decode_trace,
    trace_message,
)
from chalicelib.dynamo import to_item
from chalicelib.notification_types import Target
from tests.pattern_matcher import PatternMatcher

TOPIC = "arn:aws:sns:us-east-1:123456789012:t"


def record(
    trace_id: str, seq: str, created_s: float = 1_700_000_000, **extra: Any
) -> dict[str, Any]:
    item = {"pk": f"p|{trace_id}", "project_id": "p", "trace_id": trace_id, "service_type": "ECS"}
    item.update(extra)
    return {
        "eventName": "INSERT",
        "dynamodb": {
            "NewImage": to_item(item),
            "SequenceNumber": seq,
            "ApproximateCreationDateTime": created_s,
        },
    }


class FlakyTopics(MemoryTopics):
    """Raises for the topics in `down` (the in-memory twin's fault switch)."""

    def __init__(self) -> None:
        super().__init__()
        self.down: set[str] = set()

    def publish(self, topic_arn: str, message: str, attributes: Mapping[str, str]) -> None:
        if topic_arn in self.down:
            raise ConnectionError(f"{topic_arn} unreachable")
        super().publish(topic_arn, message, attributes)


class Setup:
    def __init__(self, dead_letter_fails: bool = False) -> None:
        self.clock = FixedClock(1_700_000_000_000)
        self.table = MemoryControlTable()
        self.matcher = PatternMatcher()
        self.matcher.add(Target("p", "n1", "one", "smn", TOPIC), {"service_type": ["ECS"]})
        self.topics = FlakyTopics()
        self.dead: list[dict[str, Any]] = []
        self.dead_letter_fails = dead_letter_fails
        self.delivery = StreamDelivery(
            "notifications",
            NotificationPlanner(self.matcher, self.topics, MemoryFunctions()),
            SentMarkers(self.table, self.clock, "notifications"),
            self.dead_letter,
            self.clock,
        )

    def dead_letter(self, entry: dict[str, Any]) -> None:
        if self.dead_letter_fails:
            raise ConnectionError("queue unreachable")
        self.dead.append(entry)


def test_a_record_stays_failed_when_the_dead_letter_queue_is_unreachable() -> None:
    s = Setup(dead_letter_fails=True)
    s.topics.down.add(TOPIC)
    results = [s.delivery.process([record("t", "1")]).failed for _ in range(5)]
    assert results == [["1"]] * 5  # never acknowledged without a place to keep it


def test_an_expired_sent_marker_no_longer_counts() -> None:
    s = Setup()
    assert s.delivery.process([record("t", "1")]).sent == 1
    again = s.delivery.process([record("t", "1")])
    assert (again.sent, again.skipped_already_sent) == (0, 1)
    s.clock.advance(2 * MS_PER_DAY + 1000)  # past the marker's TTL (DynamoDB deletes late)
    assert s.delivery.process([record("t", "1")]).sent == 1


def test_a_matcher_error_fails_the_record_and_counts_an_attempt() -> None:
    s = Setup()
    s.matcher.add(Target("p", "n2", "two", "smn", TOPIC), {"service_type": ["ECS"]})

    def broken(project_id: str, trace: Mapping[str, Any]) -> list[Target]:
        raise RuntimeError("rules unreadable")

    s.matcher.matches = broken  # type: ignore[method-assign]
    assert [s.delivery.process([record("t", "9")]).failed for _ in range(3)] == [["9"], ["9"], []]
    (entry,) = s.dead
    assert entry["errors"] == {"*": "RuntimeError: rules unreadable"}


def test_a_trace_too_large_for_one_message_loses_its_bulky_fields_only() -> None:
    trace = {"trace_id": "t", "request": "x" * MAX_MESSAGE_BYTES, "response": "small"}
    body = json.loads(trace_message("p", trace))
    assert body["opencts_truncated"] == ["request"]
    assert body["response"] == "small"
    assert len(trace_message("p", trace).encode()) <= MAX_MESSAGE_BYTES


@pytest.mark.parametrize(
    ("dynamodb", "reason"),
    [
        ({}, "no NewImage"),
        ({"NewImage": {"pk": {"S": "x"}}}, "not a trace"),
        ({"NewImage": {"trace_id": {"XX": "1"}}}, "undecodable NewImage"),
        ({"NewImage": {"trace_id": {"S": "a", "N": "1"}}}, "undecodable NewImage"),
    ],
)
def test_poison_records_are_named(dynamodb: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_trace({"eventName": "INSERT", "dynamodb": dynamodb})


def test_numbers_arrive_as_numbers() -> None:
    _, trace = decode_trace(record("t", "1", time=1_700_000_000_123, total_time=12))
    assert trace["time"] == 1_700_000_000_123
    assert isinstance(trace["time"], int)
