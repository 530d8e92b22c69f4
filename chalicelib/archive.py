"""Archived traces (issue 4 item 6): `opencts archive` finds traces in a tracker's trace files, of
any age, with the ListTraces filters and their semantics (query.parse_query validates them; a
`trace_id` ignores the other filters; filters are exact and ANDed; newest first).

Which files are read: trace files are foldered by the UTC day they were WRITTEN, and a trace is
written after it is recorded, which is at most 7 days after its `time` (older traces are refused
at ingest) and at most 15 minutes before it. So the traces of [from, to] lie in the day folders
from the day of `from` - 15 minutes to the day of `to` + 7 days + `--extra-days` (default 1, for
the transfer's own delay; raise it after a long outage of the bucket). Only those folders are
listed (never the whole bucket), and their files are read in parallel (8 at a time).

It is an operator command: it reads the tracker from the control table and the files from S3
with the caller's AWS credentials (`--stage S`, or the local stack of `.opencts/local.json`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TextIO

from chalicelib.admin import settings_for
from chalicelib.aws import client
from chalicelib.clock import MS_PER_DAY
from chalicelib.control import DynamoControlTable
from chalicelib.errors import CtsError
from chalicelib.model import MAX_FUTURE_SKEW_MS, RETENTION_MS
from chalicelib.query import FILTER_PATHS, TraceQuery, parse_query
from chalicelib.trace_files import FileLayout, NotATraceFile, is_trace_file, read_traces
from chalicelib.tracker_model import DATA, SYSTEM, Tracker, tracker_key
from chalicelib.transfer_adapters import BucketFailure, S3TraceFileBucket, TraceFileBucket

PARALLEL_DOWNLOADS = 8


@dataclass(frozen=True)
class ArchiveResult:
    traces: list[dict[str, Any]]
    files_read: int
    unreadable: list[str]


def archive_query(params: Mapping[str, str], from_ms: int, to_ms: int) -> TraceQuery:
    """The ListTraces parameters, validated as ListTraces does, over a window of any age."""
    wanted = {k: [v] for k, v in params.items() if v}
    wanted["from"], wanted["to"] = [str(from_ms)], [str(to_ms)]
    # parse_query clamps `from` to the 7-day retention of its "now": give it the "now" that
    # keeps `from` as it is, whatever the window's length (a 14-day window ending now included).
    return parse_query(wanted, from_ms + RETENTION_MS)


def matches(trace: Mapping[str, Any], query: TraceQuery) -> bool:
    if query.trace_id is not None:
        return trace.get("trace_id") == query.trace_id
    if not query.from_ms <= int(trace.get("time", -1)) <= query.to_ms:
        return False
    for name, value in query.filters.items():
        found: Any = trace
        for part in FILTER_PATHS[name]:
            found = found.get(part) if isinstance(found, Mapping) else None
        if found != value:
            return False
    return True


@dataclass
class ArchiveSearch:
    bucket: TraceFileBucket
    bucket_name: str
    layout: FileLayout

    def folders(self, query: TraceQuery, extra_days: int, now_ms: int) -> list[str]:
        first = query.from_ms - MAX_FUTURE_SKEW_MS
        last = query.to_ms + RETENTION_MS + extra_days * MS_PER_DAY
        return self.layout.day_folders(first, min(last, now_ms))

    def search(self, query: TraceQuery, now_ms: int, extra_days: int = 1) -> ArchiveResult:
        keys = [
            key
            for folder in self.folders(query, extra_days, now_ms)
            for key in self.bucket.list_keys(self.bucket_name, folder)
            if is_trace_file(key)
        ]
        unreadable: list[str] = []

        def read(key: str) -> list[dict[str, Any]]:
            body = self.bucket.get(self.bucket_name, key)
            if body is None:
                return []
            try:
                return read_traces(key, body)
            except NotATraceFile as e:
                unreadable.append(str(e))
                return []

        found: dict[str, dict[str, Any]] = {}
        with ThreadPoolExecutor(PARALLEL_DOWNLOADS) as pool:
            for traces in pool.map(read, keys):
                for trace in traces:
                    if matches(trace, query):
                        # A trace delivered twice (only ever after a failure) is listed once.
                        found[str(trace.get("trace_id"))] = trace
        ordered = sorted(found.values(), key=lambda t: (-int(t["time"]), str(t["trace_id"])))
        return ArchiveResult(ordered, len(keys), sorted(unreadable))


# -- the command (`opencts archive`, wired in chalicelib/cli.py) ---------------------------------
class ArchiveError(Exception):
    """Why the search could not run, worded for the person who asked."""


def add_arguments(archive: argparse.ArgumentParser) -> None:
    archive.add_argument("--tracker", required=True, help="the tracker whose files to search")
    archive.add_argument("--stage", help="deployment stage; default: the local stack")
    archive.add_argument("--bucket", help="default: the tracker's transfer bucket")
    archive.add_argument("--prefix", help="file prefix; default: the tracker's")
    archive.add_argument(
        "--extra-days", type=int, default=1, help="days of delivery delay to allow (default 1)"
    )


def search_tracker_files(
    args: argparse.Namespace,
    project: str,
    params: Mapping[str, str],
    window: tuple[int, int],
    now_ms: int,
) -> ArchiveResult:
    """Reads the tracker from the stage's control table, then searches its files."""
    settings = settings_for(args.stage, None)
    control = DynamoControlTable(
        client("dynamodb", settings.region, settings.aws_endpoint), settings.control_table
    )
    item = control.get(*tracker_key(project, args.tracker))
    tracker = Tracker.from_item(item) if item else None
    bucket_name = args.bucket or (tracker.obs_info.bucket_name if tracker else "")
    if not bucket_name:
        why = "has no transfer bucket" if tracker else f"is not a tracker of {project}"
        raise ArchiveError(f"{args.tracker!r} {why}: give --bucket")
    prefix = args.prefix
    if prefix is None:
        prefix = tracker.obs_info.file_prefix_name if tracker else ""
    wanted = dict(params)
    data = tracker is not None and tracker.tracker_type == DATA
    wanted["trace_type"] = DATA if data else SYSTEM
    wanted["tracker_name"] = args.tracker if data else ""
    try:
        query = archive_query(wanted, *window)
    except CtsError as e:
        raise ArchiveError(e.message) from None
    layout = FileLayout(prefix, settings.region, project, args.tracker)
    s3 = S3TraceFileBucket(client("s3", settings.region, settings.aws_endpoint))
    try:
        return ArchiveSearch(s3, bucket_name, layout).search(query, now_ms, args.extra_days)
    except BucketFailure as e:
        raise ArchiveError(f"cannot read bucket {bucket_name}: {e.code}") from None


def print_result(
    result: ArchiveResult,
    output: str,
    out: TextIO,
    table: Callable[[Sequence[Mapping[str, Any]]], str],
) -> int:
    """0 when every file was read; 1 when some could not be (they are named)."""
    if output == "json":
        body = {"traces": result.traces, "files_read": result.files_read}
        print(json.dumps(body, indent=2, ensure_ascii=False), file=out)
    else:
        if result.traces:
            print(table(result.traces), file=out)
        print(f"({len(result.traces)} traces in {result.files_read} trace files)", file=out)
    for problem in result.unreadable:
        print(f"unreadable: {problem}", file=out)
    return 1 if result.unreadable else 0
