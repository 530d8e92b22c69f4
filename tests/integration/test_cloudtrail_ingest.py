"""CloudTrail events from EventBridge, end to end: the handler stores them as CTS traces that
ListTraces finds, once per eventID."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.clock import FixedClock
from chalicelib.cloudtrail import convert_event
from chalicelib.model import parse_trace
from tests.conftest import PROJECT

FIXTURES = sorted((pathlib.Path(__file__).parent.parent / "fixtures" / "cloudtrail").glob("*.json"))


def load(path: pathlib.Path) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(path.read_text())
    return envelope


def test_there_are_documented_samples() -> None:
    assert len(FIXTURES) >= 10


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_sample_is_stored_once_and_found(
    client: Client,
    clock: FixedClock,
    path: pathlib.Path,
) -> None:
    envelope = load(path)
    expected = convert_event(envelope)
    clock.current_ms = expected["time"] + 60_000
    parse_trace(expected, clock.current_ms)  # the converted trace passes validation

    # When EventBridge delivers the event twice (it delivers at least once)
    for _ in range(2):
        client.lambda_.invoke("cloudtrail_events", envelope)

    # Then it is stored once and found by its eventID and by its service
    trace_id = envelope["detail"]["eventID"]
    by_id = client.http.get(f"/v3/{PROJECT}/traces?trace_id={trace_id}").json_body["traces"]
    assert len(by_id) == 1
    stored = by_id[0]
    assert stored["trace_name"] == expected["trace_name"]
    assert stored["service_type"] == expected["service_type"]
    listed = client.http.get(
        f"/v3/{PROJECT}/traces?service_type={expected['service_type']}"
        f"&from={expected['time'] - 1}&to={expected['time'] + 1}"
    ).json_body["traces"]
    assert [t["trace_id"] for t in listed] == [trace_id]


def test_console_sign_in_becomes_an_iam_login_trace(client: Client, clock: FixedClock) -> None:
    path = next(p for p in FIXTURES if "console_login_failure" in p.stem)
    envelope = load(path)
    clock.current_ms = convert_event(envelope)["time"] + 1000
    client.lambda_.invoke("cloudtrail_events", envelope)
    (stored,) = client.http.get(
        f"/v3/{PROJECT}/traces?service_type=IAM&trace_name=login"
    ).json_body["traces"]
    assert stored["trace_rating"] == "warning"
    assert stored["resource_type"] == "user"
    assert stored["source_ip"] == envelope["detail"]["sourceIPAddress"]


def test_events_that_are_not_cloudtrail_operations_are_skipped(
    client: Client,
    clock: FixedClock,
) -> None:
    client.lambda_.invoke(
        "cloudtrail_events",
        {
            "version": "0",
            "id": "x",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "account": "123456789012",
            "time": "2026-11-20T11:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {"state": "running"},
        },
    )
    assert client.http.get(f"/v3/{PROJECT}/traces?from=0").json_body["traces"] == []
