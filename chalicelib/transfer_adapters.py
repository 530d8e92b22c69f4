"""The AWS adapters of the transfer cycle, each with an in-memory twin.

- `RecordedTraces`: the traces table read by record time (the keys-only `by_record_time` index,
  then BatchGetItem with consistent reads for the full traces).
- `TraceFileBucket`: S3 puts, reads and lifecycle rules of the transfer buckets.
- `LogSink`: CloudWatch Logs (group `CTS`, stream `<tracker>-trace`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from chalicelib import keys
from chalicelib.dynamo import from_item, to_attr
from chalicelib.store import BATCH_GET_MAX, Item, MemoryTraceTable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client

FETCH_ATTEMPTS = 8


# -- the traces table, by record time ---------------------------------------------------------
class RecordedTraces(Protocol):
    def sort_keys(self, pk: str, sk_lo: str, sk_hi: str) -> list[str]:
        """Every `r_sk` of a `by_record_time` partition within [sk_lo, sk_hi], ascending."""
        ...

    def fetch(self, pks: Sequence[str]) -> list[Item]:
        """The full items of these base keys (absent ones are left out)."""
        ...


class DynamoRecordedTraces:
    def __init__(
        self, client: DynamoDBClient, table_name: str, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._client = client
        self._table = table_name
        self._sleep = sleep

    def sort_keys(self, pk: str, sk_lo: str, sk_hi: str) -> list[str]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": keys.RECORD.name,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#pk": keys.RECORD.attribute, "#sk": keys.RECORD_SORT_KEY},
            "ExpressionAttributeValues": {
                ":pk": to_attr(pk),
                ":lo": to_attr(sk_lo),
                ":hi": to_attr(sk_hi),
            },
            "ProjectionExpression": "#sk",
        }
        out: list[str] = []
        while True:
            page = self._client.query(**kwargs)
            out.extend(i[keys.RECORD_SORT_KEY]["S"] for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def fetch(self, pks: Sequence[str]) -> list[Item]:
        found: list[Item] = []
        for start in range(0, len(pks), BATCH_GET_MAX):
            pending: list[Any] = [{"pk": {"S": pk}} for pk in pks[start : start + BATCH_GET_MAX]]
            for attempt in range(FETCH_ATTEMPTS):
                out: Any = self._client.batch_get_item(
                    RequestItems={self._table: {"Keys": pending, "ConsistentRead": True}}
                )
                found.extend(from_item(i) for i in out.get("Responses", {}).get(self._table, []))
                pending = out.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                if not pending:
                    break
                self._sleep(min(2.0, 0.05 * 2**attempt))
            else:
                raise RuntimeError("traces stayed unread after every retry")
        return found


class MemoryRecordedTraces:
    """Reads a MemoryTraceTable by its record-time attributes (a full pass per call: tests)."""

    def __init__(self, table: MemoryTraceTable) -> None:
        self._table = table

    def sort_keys(self, pk: str, sk_lo: str, sk_hi: str) -> list[str]:
        return sorted(
            item[keys.RECORD_SORT_KEY]
            for item in self._table.items.values()
            if item.get(keys.RECORD.attribute) == pk
            and sk_lo <= item[keys.RECORD_SORT_KEY] <= sk_hi
        )

    def fetch(self, pks: Sequence[str]) -> list[Item]:
        return [dict(self._table.items[pk]) for pk in pks if pk in self._table.items]


# -- S3 ---------------------------------------------------------------------------------------
class BucketFailure(Exception):
    """S3 refused a call on a transfer bucket; `code` is S3's error code."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class TraceFileBucket(Protocol):
    def put(
        self, bucket: str, key: str, body: bytes, content_type: str, kms_id: str | None
    ) -> None: ...

    def get(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes, None when it (or its bucket) does not exist."""
        ...

    def list_keys(self, bucket: str, prefix: str) -> list[str]: ...

    def ensure_lifecycle(self, bucket: str, rule_id: str, prefix: str, days: int | None) -> None:
        """Makes the bucket's rule `rule_id` expire objects under `prefix` after `days` (None or
        0: no such rule), keeping every other rule of the bucket."""
        ...


def _code(e: ClientError) -> str:
    error = e.response.get("Error", {})
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code") or status)


_MISSING = frozenset({"NoSuchKey", "404", "NoSuchBucket", "NotFound"})


class S3TraceFileBucket:
    def __init__(self, s3: S3Client) -> None:
        self._s3 = s3

    def put(
        self, bucket: str, key: str, body: bytes, content_type: str, kms_id: str | None
    ) -> None:
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "Body": body,
            "ContentType": content_type,
        }
        if kms_id:
            kwargs["ServerSideEncryption"] = "aws:kms"
            kwargs["SSEKMSKeyId"] = kms_id
        try:
            self._s3.put_object(**kwargs)
        except ClientError as e:
            raise BucketFailure(_code(e), str(e)) from None

    def get(self, bucket: str, key: str) -> bytes | None:
        try:
            got = self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if _code(e) in _MISSING:
                return None
            raise BucketFailure(_code(e), str(e)) from None
        body: bytes = got["Body"].read()
        return body

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        out: list[str] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                out.extend(o["Key"] for o in page.get("Contents", []))
        except ClientError as e:
            raise BucketFailure(_code(e), str(e)) from None
        return out

    def ensure_lifecycle(self, bucket: str, rule_id: str, prefix: str, days: int | None) -> None:
        try:
            try:
                rules: list[Any] = list(
                    self._s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
                )
            except ClientError as e:
                if _code(e) != "NoSuchLifecycleConfiguration":
                    raise
                rules = []
            others = [r for r in rules if r.get("ID") != rule_id]
            wanted = (
                [{
                    "ID": rule_id,
                    "Filter": {"Prefix": prefix},
                    "Status": "Enabled",
                    "Expiration": {"Days": days},
                }]
                if days
                else []
            )
            if [r for r in rules if r.get("ID") == rule_id] == wanted:
                return
            if others or wanted:
                self._s3.put_bucket_lifecycle_configuration(
                    Bucket=bucket,
                    LifecycleConfiguration={"Rules": others + wanted},
                )
            else:
                self._s3.delete_bucket_lifecycle(Bucket=bucket)
        except ClientError as e:
            raise BucketFailure(_code(e), str(e)) from None


@dataclass
class MemoryTraceFileBucket:
    """In-memory buckets; `fail_puts` makes puts raise that S3 error code."""

    buckets: dict[str, dict[str, tuple[bytes, str, str | None]]] = field(default_factory=dict)
    lifecycle: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)
    fail_puts: str | None = None

    def add(self, bucket: str) -> None:
        self.buckets.setdefault(bucket, {})

    def put(
        self, bucket: str, key: str, body: bytes, content_type: str, kms_id: str | None
    ) -> None:
        if self.fail_puts:
            raise BucketFailure(self.fail_puts)
        if bucket not in self.buckets:
            raise BucketFailure("NoSuchBucket")
        self.buckets[bucket][key] = (body, content_type, kms_id)

    def get(self, bucket: str, key: str) -> bytes | None:
        found = self.buckets.get(bucket, {}).get(key)
        return found[0] if found else None

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        if bucket not in self.buckets:
            raise BucketFailure("NoSuchBucket")
        return sorted(k for k in self.buckets[bucket] if k.startswith(prefix))

    def ensure_lifecycle(self, bucket: str, rule_id: str, prefix: str, days: int | None) -> None:
        if bucket not in self.buckets:
            raise BucketFailure("NoSuchBucket")
        rules = self.lifecycle.setdefault(bucket, {})
        if days:
            rules[rule_id] = (prefix, days)
        else:
            rules.pop(rule_id, None)


# -- CloudWatch Logs --------------------------------------------------------------------------
LogEvent = tuple[int, str]  # (timestamp ms, message)


class LogSink(Protocol):
    def ensure_stream(self, group: str, stream: str) -> None: ...

    def put_events(self, group: str, stream: str, events: Sequence[LogEvent]) -> int:
        """Puts one batch (already within the PutLogEvents limits, in time order); returns how
        many events CloudWatch Logs rejected (too old, too new, expired)."""
        ...


class CloudWatchLogSink:
    def __init__(self, logs: CloudWatchLogsClient) -> None:
        self._logs = logs
        self._ready: set[tuple[str, str]] = set()

    def ensure_stream(self, group: str, stream: str) -> None:
        if (group, stream) in self._ready:
            return
        exists = self._logs.exceptions.ResourceAlreadyExistsException
        with contextlib.suppress(exists):
            self._logs.create_log_group(logGroupName=group)
        with contextlib.suppress(exists):
            self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
        self._ready.add((group, stream))

    def put_events(self, group: str, stream: str, events: Sequence[LogEvent]) -> int:
        out = self._logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": t, "message": m} for t, m in events],
        )
        info: Any = out.get("rejectedLogEventsInfo") or {}
        rejected = 0
        if "tooNewLogEventStartIndex" in info:
            rejected += len(events) - int(info["tooNewLogEventStartIndex"])
        old_end = max(
            int(info.get("tooOldLogEventEndIndex", -1)),
            int(info.get("expiredLogEventEndIndex", -1)),
        )
        return rejected + old_end + 1


@dataclass
class MemoryLogSink:
    streams: dict[tuple[str, str], list[LogEvent]] = field(default_factory=dict)
    batches: list[int] = field(default_factory=list)
    fail: bool = False

    def ensure_stream(self, group: str, stream: str) -> None:
        if self.fail:
            raise RuntimeError("CloudWatch Logs unavailable")
        self.streams.setdefault((group, stream), [])

    def put_events(self, group: str, stream: str, events: Sequence[LogEvent]) -> int:
        if self.fail:
            raise RuntimeError("CloudWatch Logs unavailable")
        self.streams[(group, stream)].extend(events)
        self.batches.append(len(events))
        return 0
