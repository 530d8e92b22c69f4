"""Key event notifications delivered from the traces table's stream, through app.py's
`notification_matcher` handler, to SNS topics (observed through subscribed SQS queues) and
Lambda functions on moto; faults injected where moto cannot fail on demand."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import boto3
import pytest

import app as app_module
from chalicelib import aws
from chalicelib.clock import MS_PER_HOUR, FixedClock
from chalicelib.config import Settings
from chalicelib.local.driver import LocalDriver
from chalicelib.notification_types import Target
from chalicelib.wiring import Services, build
from tests.conftest import DOMAIN, PROJECT, trace
from tests.delivery_support import (
    REGION,
    StreamReader,
    failing,
    queue_bodies,
    received,
    subscribed_queue,
)
from tests.pattern_matcher import PatternMatcher

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def matcher() -> PatternMatcher:
    return PatternMatcher()


@pytest.fixture
def services(
    created: dict[str, str], settings: Settings, clock: FixedClock, matcher: PatternMatcher
) -> Iterator[Services]:
    """The app's services with the in-test matcher wired in (the hook the product's matcher
    takes)."""
    settings = dataclasses.replace(settings, ingest_dlq_url=created["ingest_dlq_url"])
    svc = build(settings, clock, matcher_factory=lambda control, clock: matcher)
    svc.projects.register(PROJECT, DOMAIN)
    app_module.use_services(svc)
    yield svc
    app_module.use_services(None)


@pytest.fixture
def stream(created: dict[str, str]) -> StreamReader:
    return StreamReader(created["traces_stream_arn"])


def topic(name: str) -> str:
    arn: str = boto3.client("sns", region_name=REGION).create_topic(Name=name)["TopicArn"]
    return arn


def smn(matcher: PatternMatcher, nid: str, topic_arn: str, pattern: dict[str, Any]) -> Target:
    return matcher.add(Target(PROJECT, nid, f"name_{nid}", "smn", topic_arn), pattern)


def report(client: Any, *traces: dict[str, Any]) -> None:
    response = client.http.post(
        f"/v3/{PROJECT}/traces", headers=JSON, body=json.dumps({"traces": traces}).encode()
    )
    assert response.status_code == 200, response.body
    assert response.json_body["meta_data"]["stored"] == len(traces)


def deliver(client: Any, records: list[dict[str, Any]]) -> list[str]:
    """Runs the handler as Lambda would; returns the sequence numbers it asks to retry."""
    reply = client.lambda_.invoke("notification_matcher", StreamReader.event(records)).payload
    return [f["itemIdentifier"] for f in reply["batchItemFailures"]]


def seq(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


ECS_CREATE = {"service_type": ["ECS"], "trace_name": ["createServer"]}


class TestDelivery:
    def test_a_matching_trace_is_published_with_the_trace_and_its_attributes(
        self, client: Any, matcher: PatternMatcher, stream: StreamReader
    ) -> None:
        # Given a notification on ECS createServer, its topic read through a queue
        arn = topic("ecs-create")
        queue = subscribed_queue(arn, "ecs-create-q")
        smn(matcher, "n1", arn, ECS_CREATE)

        # When a matching and a non-matching trace are reported and the stream delivered
        report(
            client,
            trace(trace_id="t-match"),
            trace(trace_id="t-other", trace_name="deleteServer", trace_rating="warning"),
        )
        assert deliver(client, stream.new_records()) == []

        # Then exactly the matching trace was published, as JSON, with the attributes
        (message,) = received(queue)
        body = json.loads(message["Message"])
        assert body["trace_id"] == "t-match"
        assert body["project_id"] == PROJECT
        assert body["user"]["name"] == "alice"
        assert isinstance(body["time"], int)
        attributes = {k: v["Value"] for k, v in message["MessageAttributes"].items()}
        assert attributes == {
            "service_type": "ECS",
            "trace_name": "createServer",
            "trace_rating": "normal",
            "project_id": PROJECT,
            "notification_name": "name_n1",
        }

    def test_updates_and_removals_are_not_new_traces(
        self, client: Any, matcher: PatternMatcher, stream: StreamReader
    ) -> None:
        arn = topic("all")
        queue = subscribed_queue(arn, "all-q")
        smn(matcher, "n1", arn, {"service_type": ["ECS"]})
        report(client, trace(trace_id="t-1"))
        (insert,) = stream.new_records()
        modify = {**insert, "eventName": "MODIFY"}
        remove = {**insert, "eventName": "REMOVE"}
        assert deliver(client, [modify, remove]) == []
        assert received(queue) == []

    def test_a_function_is_invoked_asynchronously_with_the_trace_and_the_notification(
        self, client: Any, matcher: PatternMatcher, stream: StreamReader
    ) -> None:
        # Given a function notification (moto's Lambda; its runtime needs Docker, so what was
        # sent is read from the request botocore hands to moto)
        function_arn = _function("on-trace")
        matcher.add(Target(PROJECT, "f1", "to_fn", "fun", function_arn), ECS_CREATE)
        sent: list[dict[str, Any]] = []
        lam = aws.client("lambda", REGION, "")

        def spy(params: dict[str, Any], **_: Any) -> None:
            sent.append(params)

        lam.meta.events.register("before-call.lambda.Invoke", spy, unique_id="spy")
        try:
            report(client, trace(trace_id="t-fn"))
            assert deliver(client, stream.new_records()) == []
        finally:
            lam.meta.events.unregister("before-call.lambda.Invoke", unique_id="spy")

        (request,) = sent
        assert unquote(request["url_path"]).endswith(f"/functions/{function_arn}/invocations")
        assert request["headers"]["X-Amz-Invocation-Type"] == "Event"
        payload = json.loads(request["body"])
        assert payload["cts"]["trace_id"] == "t-fn"
        assert payload["notification"] == {
            "project_id": PROJECT,
            "notification_id": "f1",
            "notification_name": "to_fn",
            "notification_type": "fun",
        }


def _injected(code: str) -> str:
    return f"An error occurred ({code}) when calling the Publish operation: injected {code}"


def _function(name: str) -> str:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    arn: str = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": buffer.getvalue()},
    )["FunctionArn"]
    return arn


class TestFaults:
    def test_a_failing_topic_blocks_neither_other_notifications_nor_other_traces(
        self, client: Any, matcher: PatternMatcher, stream: StreamReader
    ) -> None:
        # Given two notifications on the same operation, topic A failing
        bad, good = topic("a-bad"), topic("b-good")
        bad_q, good_q = subscribed_queue(bad, "a-q"), subscribed_queue(good, "b-q")
        smn(matcher, "na", bad, ECS_CREATE)
        smn(matcher, "nb", good, {"service_type": ["ECS"]})
        report(client, trace(trace_id="t-1"), trace(trace_id="t-2", trace_name="stopServer"))
        records = stream.new_records()
        sns = aws.client("sns", REGION, "")

        # When the batch is delivered while A fails
        with failing(sns, "Publish", "InternalError", lambda p: p["body"]["TopicArn"] == bad):
            retry = deliver(client, records)

        # Then B got both traces, A none, and only t-1's record is to be retried
        assert sorted(json.loads(m["Message"])["trace_id"] for m in received(good_q)) == [
            "t-1",
            "t-2",
        ]
        assert received(bad_q) == []
        first = next(r for r in records if r["dynamodb"]["Keys"]["pk"]["S"].endswith("t-1"))
        assert retry == [seq(first)]

        # When Lambda retries from the failed record, A now working
        index = records.index(first)
        assert deliver(client, records[index:]) == []

        # Then A got t-1 once and B got nothing again
        assert [json.loads(m["Message"])["trace_id"] for m in received(bad_q)] == ["t-1"]
        assert received(good_q) == []

    def test_a_retried_batch_re_sends_nothing_already_sent(
        self, client: Any, matcher: PatternMatcher, stream: StreamReader
    ) -> None:
        # Given three traces, the second one's topic throttled the first time
        arn, throttled = topic("all"), topic("throttled")
        queue, throttled_q = subscribed_queue(arn, "all-q"), subscribed_queue(throttled, "t-q")
        smn(matcher, "n1", arn, {"service_type": ["ECS"]})
        smn(matcher, "n2", throttled, {"trace_id": ["s-2"]})
        report(client, *(trace(trace_id=f"s-{n}") for n in (1, 2, 3)))
        records = stream.new_records()
        sns = aws.client("sns", REGION, "")
        with failing(
            sns, "Publish", "Throttled", lambda p: p["body"]["TopicArn"] == throttled, 400
        ) as failed:
            retry = deliver(client, records)
        assert len(failed) == 1
        assert retry == [seq(records[1])]
        assert len(received(queue)) == 3

        # When Lambda re-delivers from the first failed record (s-2 and s-3 come again)
        assert deliver(client, records[1:]) == []

        # Then only the throttled delivery was made; s-2 and s-3 were not sent twice
        assert received(queue) == []
        assert [json.loads(m["Message"])["trace_id"] for m in received(throttled_q)] == ["s-2"]

    def test_a_failing_function_is_retried_and_other_targets_still_get_the_trace(
        self, client: Any, matcher: PatternMatcher, stream: StreamReader
    ) -> None:
        # Given a function that does not exist (moto answers ResourceNotFoundException) and a
        # topic on the same trace
        missing = f"arn:aws:lambda:{REGION}:{DOMAIN}:function:gone"
        matcher.add(Target(PROJECT, "f1", "fn", "fun", missing), ECS_CREATE)
        arn = topic("t")
        queue = subscribed_queue(arn, "t-q")
        smn(matcher, "n1", arn, ECS_CREATE)
        report(client, trace(trace_id="t-1"))
        records = stream.new_records()

        assert deliver(client, records) == [seq(records[0])]
        assert len(received(queue)) == 1

        # A throttled function (TooManyRequestsException) fails the same way, and the topic
        # is not published again on the retry
        lam = aws.client("lambda", REGION, "")
        with failing(lam, "Invoke", "TooManyRequestsException", lambda p: True, 429) as failed:
            assert deliver(client, records) == [seq(records[0])]
        assert len(failed) == 1
        assert received(queue) == []

    def test_after_the_last_attempt_the_record_goes_to_the_dead_letter_queue(
        self,
        client: Any,
        matcher: PatternMatcher,
        stream: StreamReader,
        created: dict[str, str],
        services: Services,
    ) -> None:
        # Given a topic that always fails
        arn = topic("down")
        smn(matcher, "n1", arn, ECS_CREATE)
        report(client, trace(trace_id="t-down"))
        records = stream.new_records()
        sns = aws.client("sns", REGION, "")
        attempts = services.settings.notify_max_attempts
        assert attempts == 3

        # When Lambda retries it up to the bound
        with failing(sns, "Publish", "InternalError", lambda p: True) as failed:
            replies = [deliver(client, records) for _ in range(attempts)]

        # Then it was retried twice, and the third failure sent it to the queue
        assert replies == [[seq(records[0])], [seq(records[0])], []]
        assert len(failed) == attempts
        (entry,) = queue_bodies(created["notify_dlq_url"])
        assert entry["handler"] == "notifications"
        assert entry["attempts"] == attempts
        assert entry["reason"] == "failed 3 times"
        assert entry["errors"] == {"n1": f"{arn}: InternalError: {_injected('InternalError')}"}
        assert entry["record"]["dynamodb"]["NewImage"]["trace_id"] == {"S": "t-down"}

    def test_a_record_too_old_goes_to_the_dead_letter_queue_on_its_next_failure(
        self,
        client: Any,
        matcher: PatternMatcher,
        stream: StreamReader,
        created: dict[str, str],
        clock: FixedClock,
    ) -> None:
        arn = topic("down")
        smn(matcher, "n1", arn, ECS_CREATE)
        report(client, trace(trace_id="t-old"))
        (record,) = stream.new_records()
        record["dynamodb"]["ApproximateCreationDateTime"] = (
            clock.now_ms() - 7 * MS_PER_HOUR
        ) / 1000
        with failing(aws.client("sns", REGION, ""), "Publish", "InternalError", lambda p: True):
            assert deliver(client, [record]) == []
        (entry,) = queue_bodies(created["notify_dlq_url"])
        assert entry["attempts"] == 1
        assert entry["reason"].startswith("still failing 25200 s after it was written")

    def test_a_poison_record_is_dead_lettered_at_once_and_the_batch_goes_on(
        self,
        client: Any,
        matcher: PatternMatcher,
        stream: StreamReader,
        created: dict[str, str],
    ) -> None:
        arn = topic("all")
        queue = subscribed_queue(arn, "all-q")
        smn(matcher, "n1", arn, {"service_type": ["ECS"]})
        report(client, trace(trace_id="t-1"), trace(trace_id="t-2"))
        first, second = stream.new_records()
        # An image no decoder reads (a binary set) and one that is not a trace at all
        undecodable = json.loads(json.dumps(first))
        undecodable["dynamodb"]["NewImage"]["trace_name"] = {"BS": ["AAEC"]}
        not_a_trace = json.loads(json.dumps(first))
        not_a_trace["dynamodb"]["NewImage"] = {"pk": {"S": "x"}}

        assert deliver(client, [undecodable, not_a_trace, second]) == []

        assert [json.loads(m["Message"])["trace_id"] for m in received(queue)] == ["t-2"]
        reasons = [e["reason"] for e in queue_bodies(created["notify_dlq_url"])]
        assert reasons == [
            "poison record: undecodable NewImage: unexpected DynamoDB type BS",
            "poison record: the new item is not a trace (no project_id or trace_id)",
        ]


def test_the_local_driver_feeds_the_stream_to_both_stream_functions(
    client: Any, matcher: PatternMatcher, created: dict[str, str]
) -> None:
    # Given the app's own functions, driven as the local stack drives them
    arn = topic("local")
    queue = subscribed_queue(arn, "local-q")
    smn(matcher, "n1", arn, ECS_CREATE)
    driver = LocalDriver(
        app_module.app,
        lambda service: boto3.client(service, region_name=REGION),
        REGION,
        default_stream_arn=created["traces_stream_arn"],
    )
    names = sorted(p.function.name for p in driver.stream_pollers)
    assert names == ["login_audit", "notification_matcher"]
    assert all(p.starting_position == "TRIM_HORIZON" for p in driver.stream_pollers)
    for poller in driver.stream_pollers:
        poller.prime()

    # When a trace is reported and each stream function polls
    report(client, trace(trace_id="t-local"))
    delivered = [poller.poll_once() for poller in driver.stream_pollers]

    # Then both saw it, and the notification went out once
    assert delivered == [1, 1]
    assert [json.loads(m["Message"])["trace_id"] for m in received(queue)] == ["t-local"]
