"""Delivery of new traces from the traces table's stream: key event notifications (SNS topics and
Lambda functions) and, through the same engine, the login audit's alarms.

A stream batch goes through `StreamDelivery.process`, which returns the sequence numbers of the
records to retry (Lambda's `batchItemFailures`). For each INSERT record (a new trace; MODIFY and
REMOVE are not new traces and are skipped) the NEW_IMAGE is decoded, a `Planner` says what to send
for the trace (one `Send` per notification that matched), and every send is tried on its own, so a
failing topic never blocks the other notifications of the trace nor the other traces.

Exactly what a retry re-sends
    Lambda retries a batch from the first failed record, and every record after it comes again,
    including those already delivered. So after each successful send a *sent marker*
    (`pk = sent|<project>|<trace_id>`, `sk = <handler>|<key>`, with a TTL `expires_at`) is
    written to the control table, and before sending, the trace's markers are read (one Query
    per trace that has something to send). A retried record therefore re-sends only what failed.
    The price is one write per delivery and one read per matched trace. What remains: a crash
    (or a failed marker write) between a publish and its marker re-sends that one message on the
    retry, so delivery is at least once, never at most once.

Never silently dropped
    A failed record is retried (it is reported in `batchItemFailures`), and each failure counts an
    attempt in the same marker partition (`sk = <handler>|#attempts`). When a record fails for the
    `max_attempts`-th time, or is older than `max_age_ms` when it fails, it goes with its errors to
    the notification dead-letter queue and is reported done, so the bound holds on a plain
    `chalice deploy` and in the local driver too, not only where the event source mapping's
    MaximumRetryAttempts and on-failure destination are configured (docs/OPERATIONS.md). A record
    that cannot be decoded (a poison record) will never decode on a retry: it goes to the queue at
    once. If the dead-letter queue itself cannot be reached the record stays failed and is retried.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.clock import MS_PER_DAY, MS_PER_HOUR, MS_PER_SECOND, Clock
from chalicelib.control import ControlTable
from chalicelib.dynamo import from_item
from chalicelib.notification_types import Matcher, Target
from chalicelib.store import TraceStore

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger("opencts.delivery")

# SNS and asynchronous Lambda invocations both take at most 256 KiB.
MAX_MESSAGE_BYTES = 256 * 1024
# A stream keeps records 24 hours; a marker outlives every retry of its record.
SENT_MARKER_TTL_MS = 2 * MS_PER_DAY
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_MAX_AGE_MS = 6 * MS_PER_HOUR
MARKER_PREFIX = "sent"
ATTEMPTS_KEY = "#attempts"
# Dropped, in this order, from a trace too large for one message; `opencts_truncated` names them.
BULKY_FIELDS = ("request", "response", "message")
MESSAGE_ATTRIBUTES = ("service_type", "trace_name", "trace_rating", "project_id")


class PoisonRecord(ValueError):
    """A stream record that can never be delivered: no retry can make it readable."""


# -- what is sent ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Send:
    """One delivery for a trace. `key` is unique among the trace's deliveries of one handler
    (the notification id, or the audit's name) and names its sent marker."""

    key: str
    destination: str
    send: Callable[[], None]


class Planner(Protocol):
    def plan(self, project_id: str, trace: Mapping[str, Any]) -> list[Send]: ...


class Topics(Protocol):
    def publish(self, topic_arn: str, message: str, attributes: Mapping[str, str]) -> None: ...


class Functions(Protocol):
    def invoke_async(self, function_arn: str, payload: bytes) -> None: ...


class SnsTopics:
    """SNS: the message and its String message attributes (empty values are left out: SNS
    refuses them)."""

    def __init__(self, client: SNSClient) -> None:
        self._client = client

    def publish(self, topic_arn: str, message: str, attributes: Mapping[str, str]) -> None:
        self._client.publish(
            TopicArn=topic_arn,
            Message=message,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in attributes.items()
                if value
            },
        )


class LambdaFunctions:
    """Lambda: an asynchronous invocation (InvocationType=Event); Lambda queues it and retries
    the function itself, so a 202 here means delivered."""

    def __init__(self, client: Any) -> None:  # a boto3 Lambda client
        self._client = client

    def invoke_async(self, function_arn: str, payload: bytes) -> None:
        self._client.invoke(FunctionName=function_arn, InvocationType="Event", Payload=payload)


@dataclass
class MemoryTopics:
    """In-memory SNS: what was published, per topic."""

    published: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def publish(self, topic_arn: str, message: str, attributes: Mapping[str, str]) -> None:
        self.published.append((topic_arn, message, {k: v for k, v in attributes.items() if v}))


@dataclass
class MemoryFunctions:
    invoked: list[tuple[str, bytes]] = field(default_factory=list)

    def invoke_async(self, function_arn: str, payload: bytes) -> None:
        self.invoked.append((function_arn, payload))


def trace_message(project_id: str, trace: Mapping[str, Any], limit: int = MAX_MESSAGE_BYTES) -> str:
    """The trace as compact JSON with its project_id; bulky fields are dropped (and named in
    `opencts_truncated`) only when the whole would not fit in one message."""
    body: dict[str, Any] = {"project_id": project_id, **trace}
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    dropped: list[str] = []
    for name in BULKY_FIELDS:
        if len(text.encode()) <= limit:
            break
        if name in body:
            del body[name]
            dropped.append(name)
            body["opencts_truncated"] = dropped
            text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return text


def message_attributes(project_id: str, trace: Mapping[str, Any], name: str) -> dict[str, str]:
    values = {a: str(trace.get(a) or "") for a in MESSAGE_ATTRIBUTES}
    values["project_id"] = project_id
    values["notification_name"] = name
    return values


# Room left in a message for its attributes and, for functions, the notification envelope.
_ENVELOPE_BYTES = 2048


@dataclass
class NotificationPlanner:
    """Key event notifications: every enabled notification the matcher finds for the trace.

    `smn`: the trace JSON (with its project_id) to the topic, with the message attributes
    service_type, trace_name, trace_rating, project_id and notification_name, so subscribers
    can filter. `fun`: an asynchronous invocation whose payload is
    `{"cts": <the trace JSON>, "notification": {project_id, notification_id, notification_name,
    notification_type}}`, the shape of a FunctionGraph CTS trigger's event plus the notification.
    """

    matcher: Matcher
    topics: Topics
    functions: Functions

    def plan(self, project_id: str, trace: Mapping[str, Any]) -> list[Send]:
        targets = self.matcher.matches(project_id, trace)
        if not targets:
            return []
        message = trace_message(project_id, trace, MAX_MESSAGE_BYTES - _ENVELOPE_BYTES)
        return [self._send(project_id, trace, message, t) for t in targets]

    def _send(self, project_id: str, trace: Mapping[str, Any], message: str, t: Target) -> Send:
        if t.notification_type == "fun":
            payload = function_payload(message, t)
            return Send(
                t.notification_id,
                t.topic_id,
                lambda: self.functions.invoke_async(t.topic_id, payload),
            )
        attributes = message_attributes(project_id, trace, t.notification_name)
        return Send(
            t.notification_id,
            t.topic_id,
            lambda: self.topics.publish(t.topic_id, message, attributes),
        )


def function_payload(message: str, target: Target) -> bytes:
    notification = json.dumps(
        {
            "project_id": target.project_id,
            "notification_id": target.notification_id,
            "notification_name": target.notification_name,
            "notification_type": target.notification_type,
        },
        separators=(",", ":"),
    )
    return ('{"cts":' + message + ',"notification":' + notification + "}").encode()


# -- sent markers and attempts -----------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryState:
    sent: frozenset[str]
    attempts: int


@dataclass
class SentMarkers:
    """Per trace and handler: which deliveries succeeded, and how many attempts failed."""

    table: ControlTable
    clock: Clock
    handler: str
    ttl_ms: int = SENT_MARKER_TTL_MS

    @staticmethod
    def _pk(project_id: str, trace_id: str) -> str:
        return f"{MARKER_PREFIX}|{project_id}|{trace_id}"

    def state(self, project_id: str, trace_id: str) -> DeliveryState:
        now_s = self.clock.now_ms() // MS_PER_SECOND
        sent: set[str] = set()
        attempts = 0
        prefix = self.handler + "|"
        for item in self.table.query(self._pk(project_id, trace_id), prefix):
            if int(item.get("expires_at", 0)) <= now_s:
                continue  # DynamoDB deletes expired items late (moto never): they count as gone
            key = str(item["sk"])[len(prefix) :]
            if key == ATTEMPTS_KEY:
                attempts = int(item.get("attempts", 0))
            else:
                sent.add(key)
        return DeliveryState(frozenset(sent), attempts)

    def _item(self, project_id: str, trace_id: str, key: str) -> dict[str, Any]:
        return {
            "pk": self._pk(project_id, trace_id),
            "sk": f"{self.handler}|{key}",
            "expires_at": (self.clock.now_ms() + self.ttl_ms) // MS_PER_SECOND,
        }

    def mark_sent(self, project_id: str, trace_id: str, key: str) -> None:
        item = self._item(project_id, trace_id, key)
        item["sent_at"] = self.clock.now_ms()
        self.table.put(item)

    def count_failure(self, project_id: str, trace_id: str, attempts: int) -> None:
        item = self._item(project_id, trace_id, ATTEMPTS_KEY)
        item["attempts"] = attempts
        self.table.put(item)


# -- the engine --------------------------------------------------------------------------------
DeadLetter = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class BatchResult:
    failed: list[str]  # sequence numbers to retry, in batch order
    sent: int = 0
    skipped_already_sent: int = 0
    dead_lettered: int = 0
    send_failures: int = 0  # sends that raised (their record is retried or dead-lettered)


@dataclass
class _Tally:
    sent: int = 0
    already_sent: int = 0
    dead_lettered: int = 0
    send_failures: int = 0


@dataclass
class StreamDelivery:
    """Delivers the new traces of a stream batch through a planner (see the module docstring)."""

    handler: str
    planner: Planner
    markers: SentMarkers
    dead_letter: DeadLetter
    clock: Clock
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_age_ms: int = DEFAULT_MAX_AGE_MS

    def process(self, records: Iterable[Mapping[str, Any]]) -> BatchResult:
        failed: list[str] = []
        tally = _Tally()
        for record in records:
            sequence_number = _sequence_number(record)
            if not self._deliver(record, tally):
                failed.append(sequence_number)
        return BatchResult(
            failed, tally.sent, tally.already_sent, tally.dead_lettered, tally.send_failures
        )

    def _deliver(self, record: Mapping[str, Any], tally: _Tally) -> bool:
        """True when the record is done: delivered, not a new trace, or dead-lettered."""
        if record.get("eventName") != "INSERT":
            return True
        try:
            project_id, trace = decode_trace(record)
        except PoisonRecord as e:
            logger.error("undeliverable stream record (%s): dead-lettered", e)
            return self._dead_letter(record, f"poison record: {e}", {}, 1, tally)
        trace_id = str(trace["trace_id"])
        try:
            sends = self.planner.plan(project_id, trace)
        except Exception as e:
            logger.exception("planning deliveries failed for trace %s", trace_id)
            return self._failed(record, project_id, trace_id, {"*": _describe(e)}, tally)
        if not sends:
            return True
        try:
            state = self.markers.state(project_id, trace_id)
        except Exception as e:
            logger.exception("reading the sent markers of trace %s failed", trace_id)
            return self._failed(record, project_id, trace_id, {"*": _describe(e)}, tally)
        errors: dict[str, str] = {}
        for send in sends:
            if send.key in state.sent:
                tally.already_sent += 1
                continue
            try:
                send.send()
            except Exception as e:
                logger.warning(
                    "delivery to %s failed for trace %s: %s", send.destination, trace_id, e
                )
                errors[send.key] = f"{send.destination}: {_describe(e)}"
                tally.send_failures += 1
                continue
            tally.sent += 1
            try:
                self.markers.mark_sent(project_id, trace_id, send.key)
            except Exception:
                # Sent but not remembered: a retry of this record would send it again.
                logger.exception("sent marker not written for trace %s", trace_id)
        if not errors:
            return True
        return self._failed(record, project_id, trace_id, errors, tally, state.attempts)

    def _failed(
        self,
        record: Mapping[str, Any],
        project_id: str,
        trace_id: str,
        errors: dict[str, str],
        tally: _Tally,
        previous_attempts: int | None = None,
    ) -> bool:
        if previous_attempts is None:
            try:
                previous_attempts = self.markers.state(project_id, trace_id).attempts
            except Exception:
                previous_attempts = 0
        attempts = previous_attempts + 1
        age_ms = self.clock.now_ms() - _created_ms(record, self.clock)
        if attempts >= self.max_attempts or age_ms > self.max_age_ms:
            reason = (
                f"failed {attempts} times"
                if attempts >= self.max_attempts
                else f"still failing {age_ms // MS_PER_SECOND} s after it was written"
            )
            return self._dead_letter(record, reason, errors, attempts, tally)
        try:
            self.markers.count_failure(project_id, trace_id, attempts)
        except Exception:
            logger.exception("attempt count not written for trace %s", trace_id)
        return False

    def _dead_letter(
        self,
        record: Mapping[str, Any],
        reason: str,
        errors: dict[str, str],
        attempts: int,
        tally: _Tally,
    ) -> bool:
        try:
            self.dead_letter(
                {
                    "handler": self.handler,
                    "reason": reason,
                    "errors": errors,
                    "attempts": attempts,
                    "failed_at": self.clock.now_ms(),
                    "record": _jsonable(record),
                }
            )
        except Exception:
            logger.exception("the dead-letter queue refused a record; it stays failed")
            return False
        tally.dead_lettered += 1
        return True


def decode_trace(record: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The project id and stored trace of an INSERT record's NEW_IMAGE (DynamoDB JSON)."""
    image = (record.get("dynamodb") or {}).get("NewImage")
    if not isinstance(image, Mapping) or not image:
        raise PoisonRecord("no NewImage (is the stream's view type NEW_IMAGE?)")
    try:
        item = from_item(dict(image))
    except (TypeError, ValueError, AttributeError) as e:
        raise PoisonRecord(f"undecodable NewImage: {e}") from e
    project_id = item.get("project_id")
    trace = TraceStore.to_trace(item)
    if (
        not isinstance(project_id, str)
        or not project_id
        or not isinstance(trace.get("trace_id"), str)
    ):
        raise PoisonRecord("the new item is not a trace (no project_id or trace_id)")
    return project_id, trace


def _sequence_number(record: Mapping[str, Any]) -> str:
    return str((record.get("dynamodb") or {}).get("SequenceNumber", ""))


def _created_ms(record: Mapping[str, Any], clock: Clock) -> int:
    created = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    if isinstance(created, int | float):
        return int(created * MS_PER_SECOND)
    return clock.now_ms()


def _describe(error: Exception) -> str:
    response = getattr(error, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return f"{code}: {error}" if code else f"{type(error).__name__}: {error}"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def batch_response(result: BatchResult) -> dict[str, Any]:
    """Lambda's partial batch response for a stream (ReportBatchItemFailures)."""
    return {"batchItemFailures": [{"itemIdentifier": s} for s in result.failed]}


# -- the dead-letter queue ---------------------------------------------------------------------
@dataclass
class QueueDeadLetter:
    """The notification dead-letter queue, found by name on first use."""

    sqs: SQSClient
    queue_name: str
    _url: str = ""

    def __call__(self, entry: dict[str, Any]) -> None:
        if not self._url:
            self._url = self.sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
        self.sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(entry, default=str))
