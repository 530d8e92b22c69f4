"""ListTraces (SPEC 5): parameters, query plan, newest-first merge over shards, and paging.

A query reads only its project's partitions, only the days of its window (newest first), and
through the most selective index its filters allow; the remaining filters are applied by DynamoDB
as a FilterExpression. Within a day, the shards of a partition are merged lazily: each shard is read
in slices sized to the rows still wanted, so a page reads about `limit` items plus at most one
partial slice per shard (bench/query_amplification.py measures it).

Paging is keyset paging on (time, trace_id): the marker is the last row returned and the window
and filters it was made for, so later pages never repeat or skip a row, even while new traces
arrive, and a marker cannot be replayed against other filters.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import heapq
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib import keys
from chalicelib.clock import MS_PER_HOUR
from chalicelib.errors import CtsError, invalid_marker, invalid_parameter
from chalicelib.model import (
    RATINGS,
    RETENTION_MS,
    SYSTEM_TRACKER,
    TRACKER_NAME_RE,
    Trace,
)
from chalicelib.projects import Project
from chalicelib.store import Filter, Item, PartitionQuery, TraceStore

DEFAULT_LIMIT = 10
MAX_LIMIT = 200
DEFAULT_WINDOW_MS = MS_PER_HOUR
MAX_FILTER_LEN = 2048
# Control characters, and U+FFFD: what invalid UTF-8 in a query string is decoded to.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\ufffd]")

# Filter parameters and the trace attribute each one compares, in the order an index is chosen.
FILTER_PATHS: dict[str, tuple[str, ...]] = {
    "resource_id": ("resource_id",),
    "trace_name": ("trace_name",),
    "user": ("user", "name"),
    "service_type": ("service_type",),
    "resource_type": ("resource_type",),
    "resource_name": ("resource_name",),
    "trace_rating": ("trace_rating",),
    "access_key_id": ("user", "access_key_id"),
    "enterprise_project_id": ("enterprise_project_id",),
}
PARAMETERS = frozenset(
    {"trace_type", "limit", "from", "to", "next", "tracker_name", "trace_id", *FILTER_PATHS}
)


@dataclass(frozen=True)
class TraceQuery:
    kind: str
    from_ms: int
    to_ms: int
    limit: int
    filters: dict[str, str]
    trace_id: str | None = None
    after: tuple[int, str] | None = None  # the last row of the previous page

    def fingerprint(self) -> str:
        canon = json.dumps([self.kind, sorted(self.filters.items())], separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TracePage:
    traces: list[Trace]
    marker: str | None
    scanned: int

    def body(self) -> dict[str, Any]:
        return {
            "traces": self.traces,
            "meta_data": {"count": len(self.traces), "marker": self.marker},
        }


def _single(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise invalid_parameter(name, "is given more than once")
    return values[0]


def _int(name: str, text: str, low: int, high: int) -> int:
    if not re.fullmatch(r"-?[0-9]{1,16}", text):
        raise invalid_parameter(name, "must be an integer")
    value = int(text)
    if not low <= value <= high:
        raise invalid_parameter(name, f"must be between {low} and {high}")
    return value


def parse_query(params: Mapping[str, Sequence[str]], now_ms: int) -> TraceQuery:
    """Validate ListTraces parameters (multi-valued, as received) into a TraceQuery."""
    for name in params:
        if name not in PARAMETERS:
            raise invalid_parameter(name[:64], "is not a ListTraces parameter")
    trace_type = _single(params, "trace_type") or "system"
    tracker = _single(params, "tracker_name")
    if trace_type == "system":
        if tracker not in (None, "", SYSTEM_TRACKER):
            raise invalid_parameter("tracker_name", "management traces belong to 'system'")
        kind = "s"
    elif trace_type == "data":
        if not tracker or not TRACKER_NAME_RE.match(tracker):
            raise invalid_parameter(
                "tracker_name", "is required with trace_type=data: a data tracker's name"
            )
        kind = f"d:{tracker}"
    else:
        raise invalid_parameter("trace_type", "must be 'system' or 'data'")

    limit_text = _single(params, "limit")
    limit = DEFAULT_LIMIT if limit_text is None else _int("limit", limit_text, 1, MAX_LIMIT)

    filters: dict[str, str] = {}
    for name in FILTER_PATHS:
        value = _single(params, name)
        if value is None or value == "":
            continue
        if len(value) > MAX_FILTER_LEN or _CONTROL_RE.search(value):
            raise invalid_parameter(
                name, f"must be at most {MAX_FILTER_LEN} printable characters of valid UTF-8"
            )
        filters[name] = value
    if "trace_rating" in filters and filters["trace_rating"] not in RATINGS:
        raise invalid_parameter("trace_rating", "must be one of normal, warning, incident")

    trace_id = _single(params, "trace_id") or None
    if trace_id is not None and (len(trace_id) > MAX_FILTER_LEN or _CONTROL_RE.search(trace_id)):
        raise invalid_parameter(
            "trace_id", f"must be at most {MAX_FILTER_LEN} printable characters"
        )
    from_text, to_text = _single(params, "from"), _single(params, "to")
    to_ms = now_ms if to_text is None else _int("to", to_text, 0, 2**53)
    from_ms = to_ms - DEFAULT_WINDOW_MS if from_text is None else _int("from", from_text, 0, 2**53)
    if from_ms > to_ms:
        raise invalid_parameter("from", "must not be later than 'to'")
    query = TraceQuery(kind, max(from_ms, now_ms - RETENTION_MS), to_ms, limit, filters, trace_id)

    marker = _single(params, "next")
    if marker:
        query = _resume(query, marker, now_ms)
    return query


def make_marker(query: TraceQuery, last: Trace) -> str:
    state = {
        "t": last["time"],
        "i": last["trace_id"],
        "w": [query.from_ms, query.to_ms],
        "f": query.fingerprint(),
    }
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _resume(query: TraceQuery, marker: str, now_ms: int) -> TraceQuery:
    try:
        state = json.loads(base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)))
        after = (int(state["t"]), str(state["i"]))
        window = (int(state["w"][0]), int(state["w"][1]))
        fingerprint = str(state["f"])
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error):
        raise invalid_marker() from None
    if fingerprint != query.fingerprint():
        raise CtsError(400, "CTS.0007", "The 'next' marker was made for other filters")
    # The window of the first page holds for every page, so a moving "last hour" skips nothing.
    return TraceQuery(
        query.kind,
        max(window[0], now_ms - RETENTION_MS),
        window[1],
        query.limit,
        query.filters,
        query.trace_id,
        after,
    )


def choose_index(query: TraceQuery) -> tuple[keys.Index, str, list[Filter]]:
    """The most selective index for the filters, its key value, and the filters left over."""
    f = query.filters
    if "resource_id" in f:
        index, value, used = keys.RESOURCE_ID, f["resource_id"], {"resource_id"}
    elif "trace_name" in f:
        index, value, used = keys.TRACE_NAME, f["trace_name"], {"trace_name"}
    elif "user" in f:
        index, value, used = keys.USER, f["user"], {"user"}
    elif "service_type" in f and "resource_type" in f:
        value = f"{f['service_type']}{keys.SEP}{f['resource_type']}"
        index, used = keys.SERVICE_RESOURCE, {"service_type", "resource_type"}
    elif "service_type" in f:
        index, value, used = keys.SERVICE, f["service_type"], {"service_type"}
    else:
        index, value, used = keys.TIME, "", set()
    rest = [(FILTER_PATHS[name], v) for name, v in sorted(f.items()) if name not in used]
    return index, value, rest


@dataclass
class _Shard:
    query: PartitionQuery
    buffer: list[Item] = field(default_factory=list)
    position: int = 0
    start: Any = None
    done: bool = False


@dataclass
class TraceFinder:
    store: TraceStore

    def find(self, project: Project, query: TraceQuery, now_ms: int) -> TracePage:
        if query.trace_id is not None:
            trace = self.store.get(project.project_id, query.trace_id, now_ms)
            return TracePage([trace] if trace else [], None, 1 if trace else 0)
        index, value, rest = choose_index(query)
        upper = keys.sort_key_upper(query.to_ms)
        if query.after is not None:
            upper = min(upper, keys.sort_key_before(keys.sort_key(*query.after)))
        lower = keys.sort_key_lower(query.from_ms)
        rows: list[Item] = []
        scanned = 0
        exhausted = True
        for day in keys.days_between(query.from_ms, query.to_ms):
            day_start = _day_start(day)
            if query.after is not None and day_start > query.after[0]:
                continue
            shards = [
                _Shard(
                    PartitionQuery(
                        index,
                        keys.partition_key(project.project_id, query.kind, index, day, n, value),
                        lower,
                        upper,
                        tuple(rest),
                        now_ms // 1000,
                    )
                )
                for n in range(project.shards_for_day(day_start))
            ]
            # With filters left to DynamoDB, slices read more rows per call to bound round trips.
            got, read, more = self._merge(shards, query.limit - len(rows), 20 if rest else 1)
            rows.extend(got)
            scanned += read
            if len(rows) >= query.limit:
                exhausted = not more and day == keys.day_of(query.from_ms)
                break
        traces = [TraceStore.to_trace(r) for r in rows]
        marker = make_marker(query, traces[-1]) if traces and not exhausted else None
        return TracePage(traces, marker, scanned)

    def _merge(
        self, shards: list[_Shard], want: int, min_slice: int
    ) -> tuple[list[Item], int, bool]:
        """Newest `want` rows across shards; also whether any shard may hold more."""
        scanned = 0
        heap: list[tuple[str, int]] = []

        def refill(i: int) -> None:
            nonlocal scanned
            shard = shards[i]
            while shard.position >= len(shard.buffer) and not shard.done:
                slice_size = max(min_slice, -(-(want - len(out)) // len(shards)))
                page = self.store.table.query(shard.query, slice_size, shard.start)
                scanned += page.scanned
                shard.buffer, shard.position = page.items, 0
                shard.start, shard.done = page.next_start, page.next_start is None
            if shard.position < len(shard.buffer):
                # Max-heap on the sort key, via inverted characters.
                heapq.heappush(heap, (_desc(shard.buffer[shard.position][keys.SORT_KEY]), i))

        out: list[Item] = []
        for i in range(len(shards)):
            refill(i)
        while heap and len(out) < want:
            _, i = heapq.heappop(heap)
            shard = shards[i]
            out.append(shard.buffer[shard.position])
            shard.position += 1
            if len(out) < want:
                refill(i)
        more = any(not s.done or s.position < len(s.buffer) for s in shards)
        return out, scanned, more


def _desc(sort_key: str) -> str:
    # Sort keys are printable ASCII; inverting each character and closing with a character above
    # every inverted one reverses the order, prefixes included.
    return "".join(chr(0x7F - ord(c)) for c in sort_key) + "\x7f"


def _day_start(day: str) -> int:
    return calendar.timegm(time.strptime(day, "%Y%m%d")) * 1000
