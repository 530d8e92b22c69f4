"""Trace file layout, bodies and limits; CloudWatch Logs batching at and past every limit."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from chalicelib.trace_files import (
    FileLayout,
    NotATraceFile,
    build_files,
    encode_trace,
    is_trace_file,
    read_traces,
)
from chalicelib.transfer import (
    LOG_EVENT_OVERHEAD,
    LOG_MAX_BYTES,
    LOG_MAX_EVENT_BYTES,
    LOG_MAX_EVENTS,
    LOG_MAX_SPAN_MS,
    aggregate,
    log_batches,
    log_message,
)

# 2026-03-05T07:08:09Z: a month and a day below 10.
MARCH_5 = 1_772_694_489_000


def _trace(n: int, service: str = "ECS", **extra: Any) -> dict[str, Any]:
    return {"trace_id": f"t{n:04d}", "time": 1_000 + n, "service_type": service, **extra}


def test_key_layout_has_unpadded_folders_and_a_padded_name() -> None:
    layout = FileLayout("audit", "eu-west-1", "p1", "system")
    key = layout.key(MARCH_5, "ecs", "0123456789abcdef")
    assert key == (
        "audit/CloudTraces/eu-west-1/2026/3/5/system/ECS/"
        "audit_CloudTrace_eu-west-1-p1_2026-03-05T07-08-09Z_0123456789abcdef.json.gz"
    )
    assert is_trace_file(key)


def test_key_layout_without_prefix_service_folder_or_compression() -> None:
    layout = FileLayout("", "us-east-1", "p1", "objects", compress_type="json",
                        sort_by_service=False)
    assert layout.key(MARCH_5, "OBS", "ffffffffffffffff") == (
        "CloudTraces/us-east-1/2026/3/5/objects/"
        "CloudTrace_us-east-1-p1_2026-03-05T07-08-09Z_ffffffffffffffff.json"
    )


def test_day_folders_cover_the_window() -> None:
    layout = FileLayout("a", "r", "p", "system")
    folders = layout.day_folders(MARCH_5 - 86_400_000, MARCH_5 + 1)
    assert folders == ["a/CloudTraces/r/2026/3/4/system/", "a/CloudTraces/r/2026/3/5/system/"]


def test_files_group_by_service_and_sort_by_time() -> None:
    traces = [_trace(3), _trace(1, "IAM"), _trace(2)]
    files = build_files(traces)
    assert [(f.service_type, f.trace_ids) for f in files] == [
        ("ECS", ("t0002", "t0003")),
        ("IAM", ("t0001",)),
    ]
    assert json.loads(gzip.decompress(files[0].body)) == [_trace(2), _trace(3)]
    assert (files[0].oldest_ms, files[0].newest_ms) == (1002, 1003)


def test_a_file_exactly_at_the_bound_is_not_split_one_byte_more_is() -> None:
    traces = [_trace(n) for n in range(3)]
    exact = len(b"[" + b",".join(encode_trace(t) for t in traces) + b"]")
    assert len(build_files(traces, max_bytes=exact)) == 1
    split = build_files(traces, max_bytes=exact - 1)
    assert [f.count for f in split] == [2, 1]
    assert all(f.uncompressed_size <= exact - 1 for f in split)


def test_a_trace_larger_than_the_bound_gets_a_file_of_its_own() -> None:
    traces = [_trace(1), _trace(2, message="x" * 500), _trace(3)]
    files = build_files(traces, max_bytes=200)
    assert [f.trace_ids for f in files] == [("t0001",), ("t0002",), ("t0003",)]


def test_reading_back_refuses_trailing_data_and_bad_bodies() -> None:
    body = build_files([_trace(1)])[0].body
    assert read_traces("k.json.gz", body) == [_trace(1)]
    with pytest.raises(NotATraceFile, match="after the gzip member"):
        read_traces("k.json.gz", body + gzip.compress(b"[]"))
    with pytest.raises(NotATraceFile, match="truncated"):
        read_traces("k.json.gz", body[:-4])
    with pytest.raises(NotATraceFile, match="not gzip"):
        read_traces("k.json.gz", b"plain")
    with pytest.raises(NotATraceFile, match="array"):
        read_traces("k.json", b'{"a": 1}')
    with pytest.raises(NotATraceFile, match="JSON"):
        read_traces("k.json", b"[")


def test_aggregate_is_order_free_and_sees_one_changed_id() -> None:
    assert aggregate(["a", "b", "c"]) == aggregate(["c", "a", "b"])
    assert aggregate(["a", "b"]) != aggregate(["a", "c"])
    assert aggregate([]) == (0, 0)


# -- PutLogEvents limits ----------------------------------------------------------------------
def test_ten_thousand_events_fit_one_batch_and_one_more_does_not() -> None:
    events = [(1000 + i, "m") for i in range(LOG_MAX_EVENTS)]
    assert [len(b) for b in log_batches(events)] == [LOG_MAX_EVENTS]
    assert [len(b) for b in log_batches([*events, (99_999, "m")])] == [LOG_MAX_EVENTS, 1]


def test_a_batch_stays_within_the_byte_limit_counting_26_bytes_an_event() -> None:
    per_event = 1000
    fits = (LOG_MAX_BYTES - 2 * per_event) // (per_event + LOG_EVENT_OVERHEAD)
    message = "x" * per_event
    events = [(i, message) for i in range(fits)]
    assert len(log_batches(events)) == 1
    # Fill up to exactly the limit with one last event, then pass it by one byte.
    room = LOG_MAX_BYTES - fits * (per_event + LOG_EVENT_OVERHEAD) - LOG_EVENT_OVERHEAD
    assert room > per_event
    assert len(log_batches([*events, (fits, "y" * room)])) == 1
    assert len(log_batches([*events, (fits, "y" * (room + 1))])) == 2


def test_a_batch_spans_less_than_24_hours_and_events_come_in_time_order() -> None:
    start = 1_000_000
    inside = [(start + LOG_MAX_SPAN_MS, "b"), (start, "a")]
    assert log_batches(inside) == [[(start, "a"), (start + LOG_MAX_SPAN_MS, "b")]]
    past = [(start, "a"), (start + LOG_MAX_SPAN_MS + 1, "b")]
    assert log_batches(past) == [[(start, "a")], [(start + LOG_MAX_SPAN_MS + 1, "b")]]


def test_an_oversized_trace_loses_its_largest_fields_in_the_log_event() -> None:
    small = _trace(1)
    assert json.loads(log_message(small)) == small
    big = _trace(2, request="r" * 300_000, response="ok")
    message = log_message(big)
    assert len(message.encode()) <= LOG_MAX_EVENT_BYTES
    parsed = json.loads(message)
    assert parsed["request"].startswith("(omitted from the log event: 300000")
    assert parsed["response"] == "ok"
    huge = _trace(3, resource_name="n" * 300_000)
    parsed = json.loads(log_message(huge))
    assert parsed["trace_id"] == "t0003"
    assert "omitted" in parsed
