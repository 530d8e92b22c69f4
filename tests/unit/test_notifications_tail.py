"""`opencts notifications tail` over a moto SNS topic and its subscribed queue."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.cli import build_parser
from chalicelib.local.notifications import ensure_local_subscriber
from chalicelib.notifications_tail import cmd_tail

REGION = "us-east-1"


def tail(argv: list[str], sqs: Any, url: str) -> list[str]:
    args: argparse.Namespace = build_parser().parse_args(["notifications", "tail", *argv])
    out = io.StringIO()

    def queue(_: Path | None) -> tuple[Any, str]:
        return sqs, url

    assert cmd_tail(args, out, queue) == 0
    return out.getvalue().splitlines()


@pytest.fixture
def published() -> Any:
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        made = ensure_local_subscriber(sns, sqs)
        assert ensure_local_subscriber(sns, sqs) == made  # idempotent: one subscription
        topic = made["notifications_topic_arn"]
        assert len(sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]) == 1
        trace = {"project_id": "p", "trace_id": "t-1", "service_type": "ECS",
                 "trace_name": "createServer", "trace_rating": "normal",
                 "user": {"name": "alice"}, "source_ip": "192.0.2.1"}  # fmt: skip
        sns.publish(
            TopicArn=topic,
            Message=json.dumps(trace),
            MessageAttributes={"notification_name": {"DataType": "String", "StringValue": "n"}},
        )
        sns.publish(TopicArn=topic, Message="Illegal operation[IP:10.0.0.1, Action:login]")
        yield sqs, made["notifications_queue_url"]


def test_readable_lines_consume_the_queue(published: Any) -> None:
    sqs, url = published
    lines = tail(["--wait", "0"], sqs, url)
    assert len(lines) == 2
    assert lines[0].endswith(
        "opencts-local-notifications [n] p ECS createServer normal trace=t-1 user=alice "
        "ip=192.0.2.1"
    )
    assert lines[1].endswith("Illegal operation[IP:10.0.0.1, Action:login]")
    assert tail(["--wait", "0"], sqs, url) == []


def test_json_lines_and_max(published: Any) -> None:
    sqs, url = published
    (line,) = tail(["--wait", "0", "--max", "1", "--output", "json", "--follow"], sqs, url)
    record = json.loads(line)
    assert record["message"]["trace_id"] == "t-1"
    assert record["attributes"] == {"notification_name": "n"}
    assert record["topic"] == "opencts-local-notifications"


def test_wait_is_bounded_by_sqs_limits() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["notifications", "tail", "--wait", "21"])
