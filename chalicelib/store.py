"""Trace storage: the traces-table adapter (DynamoDB or in memory) and the store above it.

The adapter does single calls; `TraceStore` owns idempotency (a trace id already stored is reported
`duplicate` and left untouched, so its `record_time` never moves) and retries of unprocessed batch
items with exponential backoff and full jitter. What still cannot be written after the retries is
reported `failed`, never dropped silently.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from chalicelib import keys
from chalicelib.dynamo import from_item, to_attr, to_item
from chalicelib.model import RETENTION_MS, TRACE_FIELDS, Trace

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]
# An equality filter: the attribute path (e.g. ("user", "access_key_id")) and the value.
Filter = tuple[tuple[str, ...], str]

BATCH_WRITE_MAX = 25
BATCH_GET_MAX = 100
# Errors after which the same request may succeed later: treated like unprocessed items.
RETRYABLE_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


def _retryable(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in RETRYABLE_ERRORS


@dataclass(frozen=True)
class Page:
    items: list[Item]
    scanned: int
    next_start: Any


@dataclass(frozen=True)
class PartitionQuery:
    index: keys.Index
    pk: str
    sk_lo: str
    sk_hi: str
    filters: tuple[Filter, ...]
    now_s: int


class TraceTable(Protocol):
    """One DynamoDB call each; no retries here (TraceStore decides)."""

    def get(self, pk: str) -> Item | None: ...

    def batch_get(self, pks: Sequence[str]) -> tuple[list[Item], list[str]]:
        """Found items and the keys left unprocessed."""
        ...

    def batch_put(self, items: Sequence[Item]) -> list[Item]:
        """Writes the items; returns those left unprocessed."""
        ...

    def query(self, q: PartitionQuery, limit: int, start: Any) -> Page:
        """Newest first within [sk_lo, sk_hi]; `limit` counts items read, as DynamoDB does."""
        ...


def _path_value(item: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = item
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def matches(item: Mapping[str, Any], filters: Iterable[Filter], now_s: int) -> bool:
    if int(item.get("expires_at", 0)) <= now_s:
        return False
    return all(_path_value(item, path) == value for path, value in filters)


class DynamoTraceTable:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, pk: str) -> Item | None:
        got = self._client.get_item(TableName=self._table, Key={"pk": {"S": pk}})
        return from_item(got["Item"]) if "Item" in got else None

    def batch_get(self, pks: Sequence[str]) -> tuple[list[Item], list[str]]:
        try:
            out: Any = self._client.batch_get_item(
                RequestItems={
                    self._table: {
                        "Keys": [{"pk": {"S": pk}} for pk in pks],
                        "ProjectionExpression": "pk",
                    }
                }
            )
        except ClientError as e:
            if _retryable(e):
                return [], list(pks)
            raise
        found = [from_item(i) for i in out.get("Responses", {}).get(self._table, [])]
        left = out.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
        return found, [k["pk"]["S"] for k in left]

    def batch_put(self, items: Sequence[Item]) -> list[Item]:
        requests: list[Any] = [{"PutRequest": {"Item": to_item(i)}} for i in items]
        try:
            out: Any = self._client.batch_write_item(RequestItems={self._table: requests})
        except ClientError as e:
            if _retryable(e):
                return list(items)
            raise
        left = out.get("UnprocessedItems", {}).get(self._table, [])
        return [from_item(r["PutRequest"]["Item"]) for r in left]

    def query(self, q: PartitionQuery, limit: int, start: Any) -> Page:
        names = {"#pk": q.index.attribute, "#sk": keys.SORT_KEY, "#exp": "expires_at"}
        values: dict[str, Any] = {
            ":pk": to_attr(q.pk),
            ":lo": to_attr(q.sk_lo),
            ":hi": to_attr(q.sk_hi),
            ":now": to_attr(q.now_s),
        }
        conditions = ["#exp > :now"]
        for n, (path, value) in enumerate(q.filters):
            parts = []
            for m, part in enumerate(path):
                names[f"#f{n}_{m}"] = part
                parts.append(f"#f{n}_{m}")
            values[f":f{n}"] = to_attr(value)
            conditions.append(f"{'.'.join(parts)} = :f{n}")
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": q.index.name,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :lo AND :hi",
            "FilterExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        out = self._client.query(**kwargs)
        return Page(
            [from_item(i) for i in out.get("Items", [])],
            int(out.get("ScannedCount", 0)),
            out.get("LastEvaluatedKey"),
        )


class MemoryTraceTable:
    """The same contract in memory: per index, partitions kept sorted by sort key."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self._partitions: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def get(self, pk: str) -> Item | None:
        item = self.items.get(pk)
        return dict(item) if item else None

    def batch_get(self, pks: Sequence[str]) -> tuple[list[Item], list[str]]:
        return [{"pk": pk} for pk in pks if pk in self.items], []

    def batch_put(self, items: Sequence[Item]) -> list[Item]:
        for item in items:
            old = self.items.get(item["pk"])
            if old:
                self._unindex(old)
            self.items[item["pk"]] = dict(item)
            for index in keys.INDEXES:
                if index.attribute in item:
                    part = self._partitions.setdefault((index.name, item[index.attribute]), [])
                    bisect.insort(part, (item[keys.SORT_KEY], item["pk"]))
        return []

    def _unindex(self, item: Item) -> None:
        for index in keys.INDEXES:
            if index.attribute in item:
                part = self._partitions.get((index.name, item[index.attribute]), [])
                entry = (item[keys.SORT_KEY], item["pk"])
                if entry in part:
                    part.remove(entry)

    def query(self, q: PartitionQuery, limit: int, start: Any) -> Page:
        part = self._partitions.get((q.index.name, q.pk), [])
        upper = (q.sk_hi, "\uffff") if start is None else start
        hi = (
            bisect.bisect_left(part, upper)
            if start is not None
            else bisect.bisect_right(part, upper)
        )
        lo = bisect.bisect_left(part, (q.sk_lo, ""))
        window = part[max(lo, hi - limit) : hi][::-1]
        got = [self.items[pk] for _, pk in window]
        more = hi - limit > lo
        return Page(
            [dict(i) for i in got if matches(i, q.filters, q.now_s)],
            len(window),
            window[-1] if more and window else None,
        )


def _full_jitter(attempt: int, base_s: float = 0.05, cap_s: float = 2.0) -> float:
    return random.uniform(0, min(cap_s, base_s * 2**attempt))  # noqa: S311 - jitter, not crypto


@dataclass
class TraceStore:
    table: TraceTable
    sleep: Callable[[float], None] = time.sleep
    backoff: Callable[[int], float] = _full_jitter
    max_attempts: int = 8

    @staticmethod
    def to_item(
        project_id: str, trace: Trace, shards: int, record_shards: int | None = None
    ) -> Item:
        """`shards`: the count in force at the trace's `time`; `record_shards`: at its
        `record_time` (for the transfer cycle's index; default `shards`)."""
        item: Item = {"pk": keys.base_key(project_id, trace["trace_id"]), "project_id": project_id}
        item.update(trace)
        item["expires_at"] = (trace["record_time"] + RETENTION_MS) // 1000
        kind = keys.kind_of(trace)
        day = keys.day_of(trace["time"])
        shard = keys.shard_of(trace["trace_id"], shards)
        item[keys.SORT_KEY] = keys.sort_key(trace["time"], trace["trace_id"])
        for index, value in keys.index_values(trace):
            item[index.attribute] = keys.partition_key(project_id, kind, index, day, shard, value)
        record_time = trace["record_time"]
        record_shard = (
            shard
            if record_shards in (None, shards)
            else keys.shard_of(trace["trace_id"], record_shards or 1)
        )
        item[keys.RECORD.attribute] = keys.record_partition_key(
            project_id, kind, keys.slot_start(record_time), record_shard
        )
        item[keys.RECORD_SORT_KEY] = keys.record_sort_key(record_time, trace["trace_id"])
        return item

    @staticmethod
    def to_trace(item: Mapping[str, Any]) -> Trace:
        return {f: item[f] for f in TRACE_FIELDS if f in item}

    def existing(self, pks: Sequence[str]) -> set[str]:
        """The keys already stored. A key still unread after every retry counts as absent: the
        trace is then written again, which its key makes harmless, and reported `stored`."""
        found: set[str] = set()
        for start in range(0, len(pks), BATCH_GET_MAX):
            pending = list(pks[start : start + BATCH_GET_MAX])
            for attempt in range(self.max_attempts):
                items, pending = self.table.batch_get(pending)
                found.update(i["pk"] for i in items)
                if not pending:
                    break
                self.sleep(self.backoff(attempt))
        return found

    def put_new(self, items: Sequence[Item]) -> set[str]:
        """Writes items; returns the base keys that could not be written after every retry."""
        failed: set[str] = set()
        for start in range(0, len(items), BATCH_WRITE_MAX):
            pending = list(items[start : start + BATCH_WRITE_MAX])
            for attempt in range(self.max_attempts):
                pending = self.table.batch_put(pending)
                if not pending:
                    break
                self.sleep(self.backoff(attempt))
            failed.update(i["pk"] for i in pending)
        return failed

    def get(self, project_id: str, trace_id: str, now_ms: int) -> Trace | None:
        item = self.table.get(keys.base_key(project_id, trace_id))
        if item is None or int(item.get("expires_at", 0)) <= now_ms // 1000:
            return None
        return self.to_trace(item)
