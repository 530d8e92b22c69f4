"""The CTS-rule corpus (tests/fixtures/cts_rules.json), run through the real matcher.

Each case is created as a notification through NotificationService (over the in-memory control
table), then the trace is matched twice: by NotificationMatcher (the index and the cache, as
delivery runs it) and by the rule test (`test` with the same body and the trace as the event),
which must also name the failing part and condition."""

from __future__ import annotations

import json
import pathlib
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.clock import FixedClock
from chalicelib.control import MemoryControlTable
from chalicelib.notification_rules import NotificationMatcher
from chalicelib.notifications import NotificationService, NotificationStore
from chalicelib.projects import ProjectRegistry

CORPUS = json.loads(
    (pathlib.Path(__file__).parent.parent / "fixtures" / "cts_rules.json").read_text()
)["cases"]
PROJECT = "corpus-project"
TOPIC = "arn:aws:sns:us-east-1:123456789012:corpus"


def _decimals(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def test_corpus_size_and_coverage() -> None:
    assert len(CORPUS) >= 60
    matched = sum(c["matched"] for c in CORPUS)
    assert 20 <= matched <= len(CORPUS) - 20
    kinds = {c["notification"]["operation_type"] for c in CORPUS}
    assert kinds == {"complete", "customized"}
    assert any(c.get("status") == "disabled" for c in CORPUS)
    assert any("pattern" in c["notification"] and "operations" in c["notification"] for c in CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_case(case: dict[str, Any]) -> None:
    table = MemoryControlTable()
    clock = FixedClock()
    projects = ProjectRegistry(table, clock)
    projects.register(PROJECT, "123456789012")
    service = NotificationService(NotificationStore(table), projects, clock)
    body = {"notification_name": "corpus_case", "topic_id": TOPIC, **case["notification"]}
    created = service.create_notification(PROJECT, body)
    status = case.get("status", "enabled")
    if status != "enabled":
        service.update_notification(
            PROJECT, {**body, "notification_id": created["notification_id"], "status": status}
        )
    trace = _decimals(case["trace"]) if case.get("decimal_numbers") else case["trace"]

    targets = NotificationMatcher(NotificationStore(table), clock).matches(PROJECT, trace)

    assert bool(targets) is case["matched"]
    if targets:
        assert [t.notification_id for t in targets] == [created["notification_id"]]
        assert targets[0].topic_id == TOPIC
        assert targets[0].notification_type == "smn"
    tested = service.test(PROJECT, {"notification": {**body, "status": status}, "event": trace})
    assert tested["matched"] is case["matched"]
    assert case["reason"] in tested["reason"]
