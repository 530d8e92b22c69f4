"""The local driver against moto: it must deliver events as Lambda's event sources do, because the
handlers it calls are the ones that run in Lambda.

SQS goes through the real app (its `ingest_queue` handler); streams and schedules through
throwaway Chalice apps defined here, so the driver is shown to work for any handler declared
with the same decorators, including the ones later features add to app.py.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chalice.app import Chalice, Cron, DynamoDBEvent, Rate, SQSEvent

import app as app_module
from chalicelib.aws import client
from chalicelib.config import Settings
from chalicelib.local.driver import LocalDriver, Scheduler, SqsPoller
from chalicelib.local.schedules import UnsupportedSchedule, parse_schedule
from chalicelib.wiring import Services, build
from tests.conftest import DOMAIN, NOW_MS, PROJECT, trace

REGION = "us-east-1"
SQS_RECORD_KEYS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}


def aws_client(service: str) -> Any:
    return client(service, REGION)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The queue the app's handler is declared on (read from the environment when app.py loads).
    return dataclasses.replace(settings, ingest_queue=app_module.INGEST_QUEUE)


@pytest.fixture
def services(created: dict[str, str], settings: Settings, clock: Any) -> Iterator[Services]:
    svc = build(dataclasses.replace(settings, ingest_dlq_url=created["ingest_dlq_url"]), clock)
    svc.projects.register(PROJECT, DOMAIN)
    app_module.use_services(svc)
    yield svc
    app_module.use_services(None)


@pytest.fixture
def ingest(services: Services) -> SqsPoller:
    driver = LocalDriver(app_module.app, aws_client, REGION, sqs_wait_seconds=0)
    (poller,) = [p for p in driver.sqs_pollers if p.function.name == "ingest_queue"]
    return poller


def send(created: dict[str, str], body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    sent = aws_client("sqs").send_message(QueueUrl=created["ingest_queue_url"], MessageBody=text)
    message_id: str = sent["MessageId"]
    return message_id


def drain(poller: SqsPoller) -> int:
    delivered = 0
    while (got := poller.poll_once()).received:
        delivered += got.received
    return delivered


def queue_depth(url: str) -> tuple[int, int]:
    """(visible, in flight) messages."""
    attributes = aws_client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def stored(services: Services, trace_id: str) -> bool:
    body = services.api.list_traces(PROJECT, {"trace_id": [trace_id]})
    return [t["trace_id"] for t in body["traces"]] == [trace_id]


# -- SQS: the app's ingest queue ---------------------------------------------------------------
class TestIngestQueue:
    def test_messages_become_queryable_traces(
        self, created: dict[str, str], services: Services, ingest: SqsPoller
    ) -> None:
        # Given two queue messages carrying three traces
        send(created, {"project_id": PROJECT, "traces": [trace(trace_id="q-1")]})
        send(
            created,
            {"project_id": PROJECT, "traces": [trace(trace_id="q-2"), trace(trace_id="q-3")]},
        )

        # When the driver delivers the queue to the app's handler
        delivered = drain(ingest)

        # Then every trace is queryable and the queue is empty
        assert delivered == 2
        assert all(stored(services, t) for t in ("q-1", "q-2", "q-3"))
        assert queue_depth(created["ingest_queue_url"]) == (0, 0)

    def test_poison_message_goes_to_the_dead_letter_queue_without_blocking_others(
        self, created: dict[str, str], services: Services, ingest: SqsPoller
    ) -> None:
        # Given a message that is not JSON between two good ones
        send(created, {"project_id": PROJECT, "traces": [trace(trace_id="good-1")]})
        poison = send(created, "{not json")
        send(created, {"project_id": PROJECT, "traces": [trace(trace_id="good-2")]})

        # When the driver delivers them
        drain(ingest)

        # Then the good traces are stored, the poison message is parked with its error,
        # and nothing is left to retry
        assert stored(services, "good-1")
        assert stored(services, "good-2")
        parked = aws_client("sqs").receive_message(
            QueueUrl=created["ingest_dlq_url"], MaxNumberOfMessages=10
        )["Messages"]
        assert len(parked) == 1
        record = json.loads(parked[0]["Body"])
        assert record["message_id"] == poison
        assert record["body"] == "{not json"
        assert record["errors"][0]["error_code"] == "CTS.0002"
        assert queue_depth(created["ingest_queue_url"]) == (0, 0)

    def test_a_failed_message_is_the_only_one_left_for_redelivery(
        self,
        created: dict[str, str],
        services: Services,
        ingest: SqsPoller,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # Given storage that refuses one message's trace after every retry (throttling)
        store = services.api.ingestor.store
        monkeypatch.setattr(store, "sleep", lambda seconds: None)
        real_put = store.table.batch_put

        def throttled_put(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            refused = [i for i in items if i["trace_id"].startswith("throttled")]
            rest = [i for i in items if not i["trace_id"].startswith("throttled")]
            return real_put(rest) + refused

        monkeypatch.setattr(store.table, "batch_put", throttled_put)
        send(created, {"project_id": PROJECT, "traces": [trace(trace_id="fine-1")]})
        failing = send(created, {"project_id": PROJECT, "traces": [trace(trace_id="throttled-1")]})
        send(created, {"project_id": PROJECT, "traces": [trace(trace_id="fine-2")]})
        events: list[dict[str, Any]] = []
        poller = recording(ingest, events)

        # When the driver delivers the batch and the handler reports one item failure
        delivery = poller.poll_once()

        # Then only that message stays in the queue (in flight until its visibility timeout)
        assert (delivery.received, delivery.deleted, delivery.retried) == (3, 2, 1)
        assert stored(services, "fine-1")
        assert stored(services, "fine-2")
        assert not stored(services, "throttled-1")
        assert queue_depth(created["ingest_queue_url"]) == (0, 1)

        # And when storage recovers and the visibility timeout ends, it is redelivered and stored
        monkeypatch.setattr(store.table, "batch_put", real_put)
        (handle,) = [r["receiptHandle"] for r in events[0]["Records"] if r["messageId"] == failing]
        aws_client("sqs").change_message_visibility(
            QueueUrl=created["ingest_queue_url"], ReceiptHandle=handle, VisibilityTimeout=0
        )
        again = poller.poll_once()
        assert (again.received, again.deleted) == (1, 1)
        assert [r["messageId"] for r in events[1]["Records"]] == [failing]
        assert stored(services, "throttled-1")
        assert queue_depth(created["ingest_queue_url"]) == (0, 0)


def recording(poller: SqsPoller, events: list[dict[str, Any]]) -> SqsPoller:
    """The same poller, keeping a copy of every event it delivers."""
    handler = poller.function.handler

    def record(event: dict[str, Any], context: Any) -> Any:
        events.append(event)
        return handler(event, context)

    return dataclasses.replace(
        poller, function=dataclasses.replace(poller.function, handler=record)
    )


# -- SQS: event shape and failure modes, with a throwaway app --------------------------------
def queue_app(reply: Callable[[SQSEvent], Any]) -> tuple[Chalice, list[dict[str, Any]]]:
    app = Chalice(app_name="driver-test")
    seen: list[dict[str, Any]] = []

    @app.on_sqs_message(queue="driver-test-queue", batch_size=5)
    def on_message(event: SQSEvent) -> Any:
        seen.append(event.to_dict())
        return reply(event)

    return app, seen


@pytest.fixture
def test_queue(aws: None) -> str:
    url: str = aws_client("sqs").create_queue(QueueName="driver-test-queue")["QueueUrl"]
    return url


class TestSqsPoller:
    def test_builds_the_lambda_sqs_event(self, test_queue: str) -> None:
        # Given a message with attributes of every kind
        app, seen = queue_app(lambda event: None)
        aws_client("sqs").send_message(
            QueueUrl=test_queue,
            MessageBody="hello",
            MessageAttributes={
                "source": {"DataType": "String", "StringValue": "tests"},
                "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
            },
        )
        (poller,) = LocalDriver(app, aws_client, REGION, sqs_wait_seconds=0).sqs_pollers

        # When it is delivered
        poller.poll_once()

        # Then the handler gets the record Lambda would send
        (record,) = seen[0]["Records"]
        assert set(record) >= SQS_RECORD_KEYS
        assert record["body"] == "hello"
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"].endswith(":driver-test-queue")
        assert record["awsRegion"] == REGION
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert record["messageAttributes"]["source"]["stringValue"] == "tests"
        assert record["messageAttributes"]["source"]["dataType"] == "String"
        assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
        assert queue_depth(test_queue) == (0, 0)

    @pytest.mark.parametrize(
        "reply",
        [
            pytest.param("raise", id="handler raises"),
            pytest.param({"batchItemFailures": [{"itemIdentifier": "nope"}]}, id="unknown id"),
        ],
    )
    def test_a_failed_batch_is_kept_whole(self, test_queue: str, reply: Any) -> None:
        # Given a handler that fails the whole batch (by raising, or with an unreadable reply)
        def respond(event: SQSEvent) -> Any:
            if reply == "raise":
                raise RuntimeError("handler bug")
            return reply

        app, _ = queue_app(respond)
        for n in range(3):
            aws_client("sqs").send_message(QueueUrl=test_queue, MessageBody=f"m{n}")
        (poller,) = LocalDriver(app, aws_client, REGION, sqs_wait_seconds=0).sqs_pollers

        # When the batch is delivered
        delivery = poller.poll_once()

        # Then no message is deleted: all are redelivered after the visibility timeout
        assert (delivery.received, delivery.deleted, delivery.retried) == (3, 0, 3)
        assert queue_depth(test_queue) == (0, 3)


# -- DynamoDB stream ---------------------------------------------------------------------------
def stream_app(
    stream_arn: str, reply: Callable[[list[Any]], Any]
) -> tuple[Chalice, list[list[dict[str, Any]]]]:
    app = Chalice(app_name="driver-test")
    batches: list[list[dict[str, Any]]] = []

    @app.on_dynamodb_record(stream_arn=stream_arn, batch_size=10)
    def on_trace(event: DynamoDBEvent) -> Any:
        records = list(event)
        batches.append([r.to_dict() for r in records])
        return reply(records)

    return app, batches


def new_trace_ids(batch: list[dict[str, Any]]) -> list[str]:
    return [r["dynamodb"]["NewImage"]["trace_id"]["S"] for r in batch]


class TestStreamPoller:
    def test_delivers_new_traces_and_redelivers_from_the_first_failure(
        self, created: dict[str, str], services: Services
    ) -> None:
        # Given a stream handler that fails the second record the first time it sees it
        failed_once: set[str] = set()

        def reply(records: list[Any]) -> Any:
            for record in records:
                trace_id = record.new_image["trace_id"]["S"]
                if trace_id == "s-2" and trace_id not in failed_once:
                    failed_once.add(trace_id)
                    return {"batchItemFailures": [{"itemIdentifier": record.sequence_number}]}
            return {"batchItemFailures": []}

        app, batches = stream_app(created["traces_stream_arn"], reply)
        (poller,) = LocalDriver(app, aws_client, REGION).stream_pollers
        poller.prime()  # LATEST: from here on
        traces = [trace(trace_id=f"s-{n}", time=NOW_MS - n) for n in (1, 2, 3)]

        # When three traces are stored and the stream is polled until it is quiet
        services.api.ingestor.report(PROJECT, traces)
        while poller.poll_once():
            pass

        # Then the handler got them as Lambda stream records, and got s-2 and s-3 again
        assert [sorted(new_trace_ids(b)) for b in batches] == [
            ["s-1", "s-2", "s-3"],
            ["s-2", "s-3"],
        ]
        first = batches[0][0]
        assert first["eventName"] == "INSERT"
        assert first["eventSource"] == "aws:dynamodb"
        assert first["eventSourceARN"] == created["traces_stream_arn"]
        assert first["dynamodb"]["StreamViewType"] == "NEW_IMAGE"
        assert {"Keys", "NewImage", "SequenceNumber", "SizeBytes"} <= set(first["dynamodb"])
        assert isinstance(first["dynamodb"]["ApproximateCreationDateTime"], float)
        assert batches[1][0]["dynamodb"]["SequenceNumber"] == next(
            r["dynamodb"]["SequenceNumber"]
            for r in batches[0]
            if r["dynamodb"]["NewImage"]["trace_id"]["S"] == "s-2"
        )

    def test_a_batch_that_keeps_failing_is_skipped_after_max_attempts(
        self, created: dict[str, str], services: Services
    ) -> None:
        # Given a stream handler that always raises
        def reply(records: list[Any]) -> Any:
            raise RuntimeError("handler bug")

        app, batches = stream_app(created["traces_stream_arn"], reply)
        (poller,) = LocalDriver(app, aws_client, REGION).stream_pollers
        poller.prime()
        services.api.ingestor.report(PROJECT, [trace(trace_id="poison")])

        # When the stream is polled more often than the retry budget
        for _ in range(poller.max_attempts + 2):
            poller.poll_once()

        # Then the batch was delivered max_attempts times, then skipped, and the driver lives on
        assert len(batches) == poller.max_attempts
        services.api.ingestor.report(PROJECT, [trace(trace_id="after")])
        poller.poll_once()
        assert new_trace_ids(batches[-1]) == ["after"]

    def test_a_stream_on_an_unknown_table_falls_back_to_the_default_stream(
        self, created: dict[str, str]
    ) -> None:
        # Given a handler declared on a stream of a table the embedded AWS lacks
        declared = "arn:aws:dynamodb:us-east-1:123456789012:table/elsewhere/stream/2020-01-01"
        app, _ = stream_app(declared, lambda records: None)

        # When the driver is built with the traces table's stream as its default
        driver = LocalDriver(
            app, aws_client, REGION, default_stream_arn=created["traces_stream_arn"]
        )

        # Then it reads the traces table's stream
        assert [p.stream_arn for p in driver.stream_pollers] == [created["traces_stream_arn"]]


# -- schedules ---------------------------------------------------------------------------------
class FakeTime:
    """A clock the scheduler's waits move forward: hours pass in no time."""

    def __init__(self, start: float, until: float) -> None:
        self.now = start
        self.until = until

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += max(seconds, 0.001)
        return self.now >= self.until


def schedule_app(fired: list[tuple[str, dict[str, Any]]]) -> Chalice:
    app = Chalice(app_name="driver-test")

    @app.schedule("rate(5 minutes)")
    def transfer(event: Any) -> None:
        fired.append(("transfer", event.to_dict()))

    @app.schedule(Rate(1, unit=Rate.HOURS))
    def digest(event: Any) -> None:
        fired.append(("digest", event.to_dict()))

    @app.schedule(Cron(30, 2, "?", "*", "MON-FRI", "*"))
    def weekday_report(event: Any) -> None:
        fired.append(("weekday_report", event.to_dict()))
        raise RuntimeError("a failing job must not stop the others")

    return app


T0 = NOW_MS / 1000  # 2026-11-20T12:00:00Z, a Friday


class TestSchedules:
    def test_jobs_fire_on_their_period(self) -> None:
        # Given scheduled functions every 5 minutes, every hour, and at 02:30 on weekdays
        fired: list[tuple[str, dict[str, Any]]] = []
        fake = FakeTime(T0, T0 + 24 * 3600 + 1)
        driver = LocalDriver(schedule_app(fired), aws_client, REGION, clock=fake.clock)
        assert driver.scheduler is not None

        # When a day passes
        driver.scheduler.run(fake.wait)

        # Then each fired on its period, with EventBridge's scheduled event
        times = {
            name: [
                datetime.datetime.fromisoformat(e["time"]).timestamp()
                for n, e in fired
                if n == name
            ]
            for name in ("transfer", "digest", "weekday_report")
        }
        assert times["transfer"][:3] == [T0 + 300, T0 + 600, T0 + 900]
        assert len(times["transfer"]) == 24 * 12
        assert len(times["digest"]) == 24
        # Friday 12:00 -> Saturday 12:00: only Saturday 02:30 would match, and it is a weekend
        assert times["weekday_report"] == []
        event = fired[0][1]
        assert event["detail-type"] == "Scheduled Event"
        assert event["source"] == "aws.events"
        assert event["resources"] == [
            "arn:aws:events:us-east-1:123456789012:rule/driver-test-local-transfer"
        ]

    def test_fast_mode_fires_every_few_seconds(self) -> None:
        # Given the driver in --fast mode
        fired: list[tuple[str, dict[str, Any]]] = []
        fake = FakeTime(T0, T0 + 16)
        driver = LocalDriver(
            schedule_app(fired),
            aws_client,
            REGION,
            fast=True,
            fast_period_seconds=5,
            clock=fake.clock,
        )
        assert driver.scheduler is not None

        # When 16 seconds pass
        driver.scheduler.run(fake.wait)

        # Then every job fired at 5, 10 and 15 s, the failing one included
        assert [n for n, _ in fired].count("transfer") == 3
        assert [n for n, _ in fired].count("weekday_report") == 3

    def test_a_late_scheduler_does_not_catch_up_in_a_burst(self) -> None:
        # Given a 5-minute job whose machine slept for an hour
        fired: list[tuple[str, dict[str, Any]]] = []
        fake = FakeTime(T0, T0)
        scheduler = LocalDriver(schedule_app(fired), aws_client, REGION, clock=fake.clock).scheduler
        assert isinstance(scheduler, Scheduler)
        scheduler.start()
        fake.now += 3600

        # When the scheduler runs again
        scheduler.run_due()

        # Then the job fires once and resumes its period from now
        assert [n for n, _ in fired].count("transfer") == 1
        job = next(j for j in scheduler.jobs if j.function.name == "transfer")
        assert job.next_at == T0 + 3600 + 300

    @pytest.mark.parametrize(
        ("expression", "after", "expected"),
        [
            ("cron(0 2 * * ? *)", "2026-11-20T12:00:00", "2026-11-21T02:00:00"),
            ("cron(30 2 ? * MON-FRI *)", "2026-11-20T12:00:00", "2026-11-23T02:30:00"),
            ("cron(*/15 * * * ? *)", "2026-11-20T12:07:00", "2026-11-20T12:15:00"),
            ("cron(0 0 1 JAN ? *)", "2026-11-20T12:00:00", "2027-01-01T00:00:00"),
            ("cron(0 9 ? * WED *)", "2026-11-20T12:00:00", "2026-11-25T09:00:00"),
        ],
    )
    def test_cron_expressions(self, expression: str, after: str, expected: str) -> None:
        at = datetime.datetime.fromisoformat(after + "+00:00").timestamp()
        want = datetime.datetime.fromisoformat(expected + "+00:00").timestamp()
        assert parse_schedule(expression).next_after(at) == want

    @pytest.mark.parametrize(
        "expression",
        ["cron(0 0 L * ? *)", "cron(0 0 ? * 2#1 *)", "rate(5 fortnights)", "every day"],
    )
    def test_unsupported_expressions_are_refused(self, expression: str) -> None:
        with pytest.raises(UnsupportedSchedule):
            parse_schedule(expression)

    def test_an_unsupported_schedule_is_reported_not_run(self) -> None:
        # Given a job whose expression the driver cannot read
        app = Chalice(app_name="driver-test")

        @app.schedule("cron(0 0 L * ? *)")
        def month_end(event: Any) -> None:
            raise AssertionError("must not run")

        # When the driver is built, Then the job is listed as not driven
        driver = LocalDriver(app, aws_client, REGION)
        assert driver.scheduler is not None
        assert driver.scheduler.jobs == []
        assert any(line.startswith("month_end:") for line in driver.skipped)


def test_the_driver_runs_in_threads_and_stops(created: dict[str, str], services: Services) -> None:
    # Given the driver started on the real app
    driver = LocalDriver(app_module.app, aws_client, REGION, sqs_wait_seconds=1)
    driver.start()
    try:
        # When a message arrives on the ingest queue
        send(created, {"project_id": PROJECT, "traces": [trace(trace_id="threaded")]})

        # Then it is stored within seconds
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=10)
        while not stored(services, "threaded"):
            assert datetime.datetime.now() < deadline, "not delivered within 10 s"
            time.sleep(0.05)
    finally:
        driver.stop()
    assert driver.stopping
