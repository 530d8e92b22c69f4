"""Partition design of the traces table (docs/ARCHITECTURE.md, "Traces table").

Base item key: `pk = <project>|<trace_id>`, so a trace is stored once per project whatever the
number of deliveries. Every listing goes through a global secondary index whose partition key
is `<project>|<kind>|<dim>|<day>|<shard>|<value>` and whose sort key is
`t_sk = <time:013d>|<trace_id>`:

- `project` first: a query never reads another project's items.
- `kind` is `s` for management traces or `d:<tracker>` for a data tracker's traces.
- `dim` names the index (`t` time listing, `rid` resource id, `tn` trace name, `u` user,
  `sr` service+resource type, `st` service type); `value` is the filtered value, last so that any
  character in it is unambiguous, and hashed when it would make the key too long.
- `day` (UTC, `yyyymmdd` of the trace's `time`) bounds a partition and lets a window query
  touch only the days inside it, newest first.
- `shard` spreads a hot project's writes over several partitions (write sharding); its count is
  per project and recorded with the time it took effect, so readers know which shards exist.

One more index, `by_record_time` (keys only), serves the transfer cycle, which reads traces by the
time they were RECORDED: partition `<project>|<kind>|r|<slot>|<shard>` where `slot` is the start
of the 5-minute transfer slot of `record_time` (`yyyymmddHHMM`), sort key
`r_sk = <record_time:013d>|<trace_id>`. Every trace belongs to exactly one tracker (its `kind`).
"""

from __future__ import annotations

import functools
import hashlib
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.clock import MS_PER_DAY

SEP = "|"
# Key values beyond this are replaced by their SHA-256, keeping keys inside DynamoDB's 2048 bytes.
MAX_VALUE_BYTES = 1024
# All sort-key characters are printable ASCII below '~', so '~'-padding makes an upper bound.
_SK_PAD = "~" * 160


@dataclass(frozen=True)
class Index:
    name: str
    dim: str
    attribute: str


TIME = Index("by_time", "t", "t_pk")
RESOURCE_ID = Index("by_resource_id", "rid", "rid_pk")
TRACE_NAME = Index("by_trace_name", "tn", "tn_pk")
USER = Index("by_user", "u", "u_pk")
SERVICE_RESOURCE = Index("by_service_resource", "sr", "sr_pk")
SERVICE = Index("by_service", "st", "st_pk")
INDEXES = (TIME, RESOURCE_ID, TRACE_NAME, USER, SERVICE_RESOURCE, SERVICE)
SORT_KEY = "t_sk"

# The transfer cycle's index: by record time, per 5-minute slot (keys only).
RECORD = Index("by_record_time", "r", "r_pk")
RECORD_SORT_KEY = "r_sk"
SLOT_MS = 5 * 60_000


def base_key(project_id: str, trace_id: str) -> str:
    return f"{project_id}{SEP}{trace_id}"


def kind_of(trace: Mapping[str, Any]) -> str:
    tracker = trace.get("tracker_name", "system")
    if trace.get("trace_type") in ("ObsSDK", "ObsAPI", "Others"):
        return f"d:{tracker}"
    return "s"


def day_of(ms: int) -> str:
    return time.strftime("%Y%m%d", time.gmtime(ms // 1000))


def days_between(from_ms: int, to_ms: int) -> list[str]:
    """Day buckets covering [from_ms, to_ms], newest first."""
    days: list[str] = []
    day_start = to_ms - to_ms % MS_PER_DAY
    while day_start + MS_PER_DAY > from_ms:
        days.append(day_of(day_start))
        day_start -= MS_PER_DAY
    return days


def _value(value: str) -> str:
    if len(value.encode()) > MAX_VALUE_BYTES:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


def partition_key(
    project_id: str, kind: str, index: Index, day: str, shard: int, value: str = ""
) -> str:
    return SEP.join((project_id, kind, index.dim, day, str(shard), _value(value)))


def sort_key(time_ms: int, trace_id: str) -> str:
    return f"{time_ms:013d}{SEP}{trace_id}"


def sort_key_lower(from_ms: int) -> str:
    return f"{from_ms:013d}{SEP}"


def sort_key_upper(to_ms: int) -> str:
    """Inclusive upper bound for every trace with time <= to_ms."""
    return f"{to_ms:013d}{SEP}{_SK_PAD}"


def sort_key_before(sk: str) -> str:
    """Inclusive upper bound for every sort key strictly below `sk` (keyset paging)."""
    return sk[:-1] + chr(ord(sk[-1]) - 1) + _SK_PAD


def shard_of(trace_id: str, count: int) -> int:
    return zlib.crc32(trace_id.encode()) % count if count > 1 else 0


def index_values(trace: Mapping[str, Any]) -> Iterator[tuple[Index, str]]:
    """The (index, value) pairs a trace is listed under; absent values leave the index sparse."""
    yield TIME, ""
    if trace.get("resource_id"):
        yield RESOURCE_ID, trace["resource_id"]
    yield TRACE_NAME, trace["trace_name"]
    user_name = trace.get("user", {}).get("name")
    if user_name:
        yield USER, user_name
    yield SERVICE_RESOURCE, f"{trace['service_type']}{SEP}{trace['resource_type']}"
    yield SERVICE, trace["service_type"]


def slot_start(ms: int) -> int:
    """The start of the 5-minute transfer slot holding `ms`."""
    return ms - ms % SLOT_MS


@functools.lru_cache(maxsize=64)
def slot_name(start_ms: int) -> str:
    return time.strftime("%Y%m%d%H%M", time.gmtime(start_ms // 1000))


def record_partition_key(project_id: str, kind: str, slot_start_ms: int, shard: int) -> str:
    return SEP.join((project_id, kind, RECORD.dim, slot_name(slot_start_ms), str(shard)))


def record_sort_key(record_time_ms: int, trace_id: str) -> str:
    return f"{record_time_ms:013d}{SEP}{trace_id}"


def parse_record_sort_key(sk: str) -> tuple[int, str]:
    """(record_time, trace_id) of a `by_record_time` sort key."""
    record_time, _, trace_id = sk.partition(SEP)
    return int(record_time), trace_id
