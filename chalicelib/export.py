"""CSV export of traces (the console's Export): a header row, at most 5,000 rows, and no cell a
spreadsheet would run as a formula.

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'`, as OWASP
recommends for CSV injection: spreadsheets then show the text instead of evaluating it.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterable
from typing import Any

from chalicelib.model import Trace

MAX_ROWS = 5000
# Lambda answers at most 6 MB; bigger exports go to S3 behind a presigned URL.
MAX_INLINE_BYTES = 5 * 1024 * 1024

COLUMNS = (
    "time",
    "trace_name",
    "trace_rating",
    "trace_type",
    "service_type",
    "resource_type",
    "resource_id",
    "resource_name",
    "user",
    "source_ip",
    "code",
    "api_version",
    "trace_id",
    "record_time",
    "request_id",
    "request",
    "response",
    "message",
    "tracker_name",
    "enterprise_project_id",
    "read_only",
    "user_detail",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def iso_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _cell(trace: Trace, column: str) -> str:
    if column in ("time", "record_time"):
        return iso_ms(int(trace[column])) if column in trace else ""
    if column == "user":
        user: dict[str, Any] = trace.get("user") or {}
        return str(user.get("name") or user.get("id") or "")
    if column == "user_detail":
        return json.dumps(trace.get("user") or {}, separators=(",", ":"), ensure_ascii=False)
    value = trace.get(column)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_csv(traces: Iterable[Trace]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for n, trace in enumerate(traces):
        if n >= MAX_ROWS:
            break
        writer.writerow([neutralise(_cell(trace, c)) for c in COLUMNS])
    return out.getvalue()
