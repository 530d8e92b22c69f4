"""The login audit end to end: a console sign-in from CloudTrail, through the EventBridge
handler, the traces table's stream and app.py's `login_audit` handler, to the SMN_Topic topic
in RegionName (observed through a subscribed SQS queue)."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

import app as app_module
from chalicelib.clock import FixedClock
from chalicelib.cloudtrail import convert_event
from chalicelib.config import Settings
from chalicelib.wiring import Services, build
from tests.conftest import DOMAIN, PROJECT
from tests.delivery_support import StreamReader, received, subscribed_queue

FIXTURES = pathlib.Path(__file__).parent.parent / "fixtures" / "cloudtrail"
AUDIT_REGION = "eu-west-1"
WHITELIST = "198.51.100.0/24, 2001:db8::/32"


@pytest.fixture
def alarm_topic(created: dict[str, str]) -> str:
    sns = boto3.client("sns", region_name=AUDIT_REGION)
    arn: str = sns.create_topic(Name="cts_test")["TopicArn"]
    return arn


@pytest.fixture
def services(
    created: dict[str, str], settings: Settings, clock: FixedClock, alarm_topic: str
) -> Iterator[Services]:
    env = (("SMN_Topic", alarm_topic), ("RegionName", AUDIT_REGION), ("IP", WHITELIST))
    settings = dataclasses.replace(settings, login_audit_env=env)
    svc = build(settings, clock)
    svc.projects.register(PROJECT, DOMAIN)
    app_module.use_services(svc)
    yield svc
    app_module.use_services(None)


def sign_in(client: Any, clock: FixedClock, fixture: str, source_ip: str) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads((FIXTURES / fixture).read_text())
    envelope["detail"]["sourceIPAddress"] = source_ip
    clock.current_ms = convert_event(envelope)["time"] + 1000
    client.lambda_.invoke("cloudtrail_events", envelope)
    return envelope


def run_audit(client: Any, stream: StreamReader) -> list[str]:
    event = StreamReader.event(stream.new_records())
    reply = client.lambda_.invoke("login_audit", event).payload
    return [f["itemIdentifier"] for f in reply["batchItemFailures"]]


@pytest.mark.parametrize(
    ("fixture", "action"),
    [
        ("signin_console_login_success_mfa.json", "login"),
        ("signin_console_login_failure.json", "login"),
        ("signin_console_login_root.json", "login"),
        ("signin_switch_role.json", "login"),
        ("signin_exit_role.json", "logout"),
    ],
)
def test_a_console_sign_in_from_outside_the_whitelist_raises_the_alarm(
    client: Any,
    clock: FixedClock,
    created: dict[str, str],
    alarm_topic: str,
    fixture: str,
    action: str,
) -> None:
    # Given the audit's topic in RegionName, read through a queue
    queue = subscribed_queue(alarm_topic, "alarms", AUDIT_REGION)
    stream = StreamReader(created["traces_stream_arn"])

    # When CloudTrail reports a console sign-in from an address outside the whitelist
    sign_in(client, clock, fixture, "10.65.56.139")
    assert run_audit(client, stream) == []

    # Then the topic got the best practice's alarm text, once
    (message,) = received(queue, AUDIT_REGION)
    assert message["Message"] == f"Illegal operation[IP:10.65.56.139, Action:{action}]"
    assert message["TopicArn"] == alarm_topic


def test_sign_ins_from_the_whitelist_and_other_operations_raise_nothing(
    client: Any, clock: FixedClock, created: dict[str, str], alarm_topic: str
) -> None:
    queue = subscribed_queue(alarm_topic, "alarms", AUDIT_REGION)
    stream = StreamReader(created["traces_stream_arn"])
    sign_in(client, clock, "signin_console_login_success_mfa.json", "198.51.100.23")
    sign_in(client, clock, "signin_exit_role.json", "2001:db8:1::5")
    sign_in(client, clock, "iam_create_user_root.json", "10.65.56.139")
    assert run_audit(client, stream) == []
    assert received(queue, AUDIT_REGION) == []


def test_a_retried_batch_does_not_raise_the_alarm_twice(
    client: Any, clock: FixedClock, created: dict[str, str], alarm_topic: str
) -> None:
    queue = subscribed_queue(alarm_topic, "alarms", AUDIT_REGION)
    stream = StreamReader(created["traces_stream_arn"])
    sign_in(client, clock, "signin_console_login_success_mfa.json", "10.0.0.9")
    event = StreamReader.event(stream.new_records())
    for _ in range(2):  # Lambda delivers a batch again after a timeout or a crash
        client.lambda_.invoke("login_audit", event)
    assert len(received(queue, AUDIT_REGION)) == 1
