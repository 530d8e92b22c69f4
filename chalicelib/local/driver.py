"""The local driver: runs the app's non-HTTP functions for real, as Lambda's event sources would.

`chalice local` serves only the REST API. Everything else OpenCTS does happens in functions that
AWS triggers: an SQS event source mapping for the ingest queue, DynamoDB stream mappings for the
functions that react to new traces, EventBridge rules for the scheduled ones. The driver plays
those parts against the embedded AWS, reading the functions from `app.event_sources`, so a
function added to app.py later runs locally without a change here.

What it keeps of Lambda's behaviour, because the handlers depend on it:
- SQS: batches of up to `batch_size`, partial batch responses (`batchItemFailures`): the
  messages not listed are deleted, the listed ones stay for redelivery after the visibility
  timeout; a handler error or an unreadable response leaves the whole batch.
- DynamoDB streams: batches in shard order; a failure re-delivers from the first failed sequence
  number (the whole batch when the handler raised). After `max_attempts` deliveries of the same
  batch it is skipped and logged, as with an on-failure destination, so one poison record cannot
  stall a laptop's stack forever.
- Schedules: fired on their expression (or every few seconds with --fast), never caught up in a
  burst after the machine slept, with EventBridge's "Scheduled Event" envelope.
A handler error is logged and never stops the driver.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalice.app import (
    Chalice,
    CloudWatchEventConfig,
    DynamoDBEventConfig,
    ScheduledEventConfig,
    SQSEventConfig,
)
from chalice.local import LambdaContext

from chalicelib.local import events
from chalicelib.local.schedules import Every, Schedule, parse_schedule

logger = logging.getLogger("opencts.local.driver")

Handler = Callable[[dict[str, Any], Any], Any]
# Builds a boto3 client for a service name ("sqs", "dynamodb", "dynamodbstreams").
ClientFactory = Callable[[str], Any]
Wait = Callable[[float], bool]  # sleeps up to the given seconds; True when the driver is stopping

SQS_MAX_RECEIVE = 10
ERROR_BACKOFF_SECONDS = 1.0
FAST_PERIOD_SECONDS = 5.0


@dataclass(frozen=True)
class LocalFunction:
    """One handler of the app, called the way Lambda calls it: (event, context)."""

    name: str
    function_name: str
    handler: Handler
    timeout_seconds: int = 60
    memory_mb: int = 512

    def invoke(self, event: dict[str, Any]) -> tuple[bool, Any]:
        context = LambdaContext(self.function_name, self.memory_mb, self.timeout_seconds * 1000)
        try:
            return True, self.handler(event, context)
        except Exception:
            logger.exception("function %s failed", self.name)
            return False, None


@dataclass(frozen=True)
class SqsDelivery:
    received: int
    deleted: int
    retried: int


@dataclass
class SqsPoller:
    """An SQS event source mapping with ReportBatchItemFailures."""

    function: LocalFunction
    sqs: Any
    queue_url: str
    queue_arn: str
    region: str
    batch_size: int = 10
    batching_window_seconds: float = 0.0
    wait_seconds: int = 2
    monotonic: Callable[[], float] = time.monotonic

    def poll_once(self) -> SqsDelivery:
        messages = self._receive()
        if not messages:
            return SqsDelivery(0, 0, 0)
        ok, response = self.function.invoke(events.sqs_event(messages, self.queue_arn, self.region))
        ids = [m["MessageId"] for m in messages]
        failed = events.failed_items(response, ids) if ok else None
        if failed is None:
            if ok:
                logger.warning(
                    "function %s returned an unreadable batchItemFailures; the batch is retried",
                    self.function.name,
                )
            return SqsDelivery(len(messages), 0, len(messages))
        done = [m for m in messages if m["MessageId"] not in failed]
        self._delete(done)
        if failed:
            logger.info(
                "function %s reported %d of %d messages failed; they will be redelivered",
                self.function.name,
                len(failed),
                len(messages),
            )
        return SqsDelivery(len(messages), len(done), len(failed))

    def _receive(self) -> list[dict[str, Any]]:
        wanted = max(1, self.batch_size)
        messages: list[dict[str, Any]] = []
        deadline = self.monotonic() + self.batching_window_seconds
        wait = self.wait_seconds
        while len(messages) < wanted:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_MAX_RECEIVE, wanted - len(messages)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(got)
            remaining = deadline - self.monotonic()
            if not got or remaining <= 0:
                break
            # Inside the batching window, gather more, waiting no longer than the window.
            wait = max(0, min(20, int(remaining)))
        return messages

    def _delete(self, messages: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_MAX_RECEIVE):
            chunk = messages[start : start + SQS_MAX_RECEIVE]
            got = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
            for failure in got.get("Failed", []):
                logger.warning("could not delete a delivered message: %s", failure)


@dataclass
class StreamPoller:
    """A DynamoDB stream event source mapping with ReportBatchItemFailures."""

    function: LocalFunction
    streams: Any
    stream_arn: str
    region: str
    batch_size: int = 100
    starting_position: str = "LATEST"
    max_attempts: int = 4
    _iterators: dict[str, str | None] = field(default_factory=dict)
    _attempts: dict[str, tuple[str, int]] = field(default_factory=dict)
    _primed: bool = False

    def prime(self) -> None:
        """Takes an iterator for every shard; with LATEST, what is written from now on is seen."""
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"][
            "Shards"
        ]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id in self._iterators:
                continue
            # Shards that appear after the start are children of known ones: read them whole.
            position = self.starting_position if not self._primed else "TRIM_HORIZON"
            self._iterators[shard_id] = self._iterator(shard_id, position)
        self._primed = True

    def poll_once(self) -> int:
        """Delivers at most one batch per shard; returns the number of records delivered."""
        self.prime()
        delivered = 0
        for shard_id, iterator in list(self._iterators.items()):
            if iterator is None:
                continue
            got = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
            records = got.get("Records", [])
            following = got.get("NextShardIterator")
            if not records:
                self._iterators[shard_id] = following
                continue
            delivered += len(records)
            self._iterators[shard_id] = self._deliver(shard_id, records, following)
        return delivered

    def _deliver(
        self, shard_id: str, records: Sequence[Mapping[str, Any]], following: str | None
    ) -> str | None:
        sequence_numbers = [str(r["dynamodb"]["SequenceNumber"]) for r in records]
        ok, response = self.function.invoke(
            events.dynamodb_event(records, self.stream_arn, self.region)
        )
        failed = events.failed_items(response, sequence_numbers) if ok else None
        if failed == []:
            self._attempts.pop(shard_id, None)
            return following
        first = sequence_numbers[0] if failed is None else failed[0]
        previous = self._attempts.get(shard_id)
        attempts = previous[1] + 1 if previous and previous[0] == first else 1
        if attempts >= self.max_attempts:
            logger.error(
                "function %s failed %d times from sequence number %s; skipping %d records",
                self.function.name,
                attempts,
                first,
                len(records) - sequence_numbers.index(first),
            )
            self._attempts.pop(shard_id, None)
            return following
        self._attempts[shard_id] = (first, attempts)
        return self._iterator(shard_id, "AT_SEQUENCE_NUMBER", first)

    def _iterator(self, shard_id: str, position: str, sequence_number: str = "") -> str | None:
        options: dict[str, Any] = {
            "StreamArn": self.stream_arn,
            "ShardId": shard_id,
            "ShardIteratorType": position,
        }
        if sequence_number:
            options["SequenceNumber"] = sequence_number
        iterator: str | None = self.streams.get_shard_iterator(**options).get("ShardIterator")
        return iterator


@dataclass
class ScheduledJob:
    function: LocalFunction
    schedule: Schedule
    rule_name: str
    next_at: float | None = None


@dataclass
class Scheduler:
    """The EventBridge rules of the scheduled functions, on an injected clock."""

    jobs: list[ScheduledJob]
    region: str
    account_id: str = events.DEFAULT_ACCOUNT_ID
    clock: Callable[[], float] = time.time

    def start(self) -> None:
        now = self.clock()
        for job in self.jobs:
            job.next_at = job.schedule.next_after(now)

    def run_due(self) -> list[str]:
        """Fires every job that is due; returns their names."""
        now = self.clock()
        fired: list[str] = []
        for job in self.jobs:
            if job.next_at is None or job.next_at > now:
                continue
            when = datetime.datetime.fromtimestamp(job.next_at, datetime.UTC)
            job.function.invoke(
                events.scheduled_event(job.rule_name, when, self.region, self.account_id)
            )
            fired.append(job.function.name)
            following = job.schedule.next_after(job.next_at)
            if following is not None and following <= now:
                # Late by more than a period (the laptop slept): resume, do not catch up.
                following = job.schedule.next_after(now)
            job.next_at = following
        return fired

    def seconds_to_next(self) -> float | None:
        due = [j.next_at for j in self.jobs if j.next_at is not None]
        return max(0.0, min(due) - self.clock()) if due else None

    def run(self, wait: Wait, idle_seconds: float = 60.0) -> None:
        """Fires jobs until `wait` says the driver is stopping."""
        self.start()
        while True:
            try:
                self.run_due()
            except Exception:
                logger.exception("scheduler failed")
            pause = self.seconds_to_next()
            if wait(idle_seconds if pause is None else min(pause, idle_seconds)):
                return


@dataclass
class LocalDriver:
    """Every event source of a Chalice app, driven against the embedded AWS."""

    app: Chalice
    client: ClientFactory
    region: str
    stage: str = "local"
    fast: bool = False
    fast_period_seconds: float = FAST_PERIOD_SECONDS
    # Streams declared on a table the embedded AWS lacks are read from this one (the traces table).
    default_stream_arn: str = ""
    account_id: str = events.DEFAULT_ACCOUNT_ID
    sqs_wait_seconds: int = 2
    stream_interval_seconds: float = 0.5
    clock: Callable[[], float] = time.time
    sqs_pollers: list[SqsPoller] = field(default_factory=list)
    stream_pollers: list[StreamPoller] = field(default_factory=list)
    scheduler: Scheduler | None = None
    skipped: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        jobs: list[ScheduledJob] = []
        for source in self.app.event_sources:
            try:
                if isinstance(source, SQSEventConfig):
                    self.sqs_pollers.append(self._sqs_poller(source))
                elif isinstance(source, DynamoDBEventConfig):
                    self.stream_pollers.append(self._stream_poller(source))
                elif isinstance(source, ScheduledEventConfig):
                    jobs.append(self._job(source))
                elif isinstance(source, CloudWatchEventConfig):
                    self.skipped.append(f"{source.name}: no EventBridge events locally")
                else:
                    self.skipped.append(f"{source.name}: {type(source).__name__} is not driven")
            except Exception as e:
                # A source that cannot be set up is reported, and the others still run.
                logger.warning("event source %s not driven: %s", source.name, e)
                self.skipped.append(f"{source.name}: {e}")
        self.scheduler = Scheduler(jobs, self.region, self.account_id, self.clock)

    # -- setup -----------------------------------------------------------------------------------
    def _function(self, name: str) -> LocalFunction:
        handler: Handler = self.app.handler_map[name]
        return LocalFunction(name, f"{self.app.app_name}-{self.stage}-{name}", handler)

    def _sqs_poller(self, source: SQSEventConfig) -> SqsPoller:
        sqs = self.client("sqs")
        queue_name = source.queue or (source.queue_arn or "").rsplit(":", 1)[-1]
        url: str = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return SqsPoller(
            self._function(source.name),
            sqs,
            url,
            arn,
            self.region,
            batch_size=source.batch_size,
            batching_window_seconds=float(source.maximum_batching_window_in_seconds),
            wait_seconds=self.sqs_wait_seconds,
        )

    def _stream_poller(self, source: DynamoDBEventConfig) -> StreamPoller:
        return StreamPoller(
            self._function(source.name),
            self.client("dynamodbstreams"),
            self._stream_arn(source.stream_arn),
            self.region,
            batch_size=source.batch_size,
            starting_position=source.starting_position,
        )

    def _stream_arn(self, declared: str) -> str:
        """The current stream of the declared table: a table made afresh has a new stream label."""
        # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>
        resource = declared.split(":", 5)[-1]
        parts = resource.split("/")
        if len(parts) >= 2 and parts[0] == "table":
            dynamodb = self.client("dynamodb")
            try:
                table = dynamodb.describe_table(TableName=parts[1])["Table"]
                latest: str | None = table.get("LatestStreamArn")
                if latest:
                    return latest
            except dynamodb.exceptions.ResourceNotFoundException:
                pass
        if not self.default_stream_arn:
            raise ValueError(f"no stream found for {declared!r}")
        logger.warning("stream %s not found; reading %s", declared, self.default_stream_arn)
        return self.default_stream_arn

    def _job(self, source: ScheduledEventConfig) -> ScheduledJob:
        schedule = parse_schedule(source.schedule_expression)
        if self.fast:
            period = self.fast_period_seconds
            schedule = Every(period, f"every {period:g} s (--fast)")
        return ScheduledJob(
            self._function(source.name),
            schedule,
            f"{self.app.app_name}-{self.stage}-{source.name}",
        )

    def describe(self) -> list[str]:
        """One line per driven function, for the banner and the log."""
        lines = [f"queue  {p.function.name} <- {p.queue_url}" for p in self.sqs_pollers]
        lines += [f"stream {p.function.name} <- {p.stream_arn}" for p in self.stream_pollers]
        if self.scheduler is not None:
            lines += [
                f"timer  {j.function.name} {j.schedule.describe()}" for j in self.scheduler.jobs
            ]
        return lines

    # -- running ---------------------------------------------------------------------------------
    def start(self) -> None:
        for stream in self.stream_pollers:
            stream.prime()
        for poller in self.sqs_pollers:
            self._spawn(f"sqs-{poller.function.name}", self._sqs_loop, poller)
        if self.stream_pollers:
            self._spawn("streams", self._stream_loop)
        if self.scheduler is not None and self.scheduler.jobs:
            self._spawn("schedules", self.scheduler.run, self._stop.wait)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"opencts-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _sqs_loop(self, poller: SqsPoller) -> None:
        while not self._stop.is_set():
            try:
                poller.poll_once()
            except Exception:
                logger.exception("polling %s failed", poller.queue_url)
                self._stop.wait(ERROR_BACKOFF_SECONDS)

    def _stream_loop(self) -> None:
        while not self._stop.is_set():
            delivered = 0
            for poller in self.stream_pollers:
                try:
                    delivered += poller.poll_once()
                except Exception:
                    logger.exception("polling %s failed", poller.stream_arn)
            if not delivered:
                self._stop.wait(self.stream_interval_seconds)
