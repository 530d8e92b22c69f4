"""The guides' sample traces, brought to today, for the local stack.

    .venv/bin/python -m docs.guides.guidedata recent FILE | .venv/bin/opencts report -
    .venv/bin/python -m docs.guides.guidedata archive FILE

Run from the repository root (where `make run` wrote `.opencts/local.json`).

Each file under docs/guides/data/ is a plain JSON list of CTS traces, as a reporter sends them,
written as if "now" were DATA_NOW (2026-11-20T12:00:00Z). Both commands shift every `time` by the
same amount so that DATA_NOW becomes the present moment, keeping the story's spacing (a trace
"9 days ago" in the file is 9 days ago when you run the guide).

- `recent` prints the traces of the last 7 days (a JSON list on standard output) for
  `opencts report -`: the service refuses older ones (the 7-day retention).
- `archive` stands in for the transfers of the past: it writes the traces older than 7 days to the
  local system tracker's bucket as trace files, in SPEC 8's layout and form (gzip JSON array per
  service, the stored trace with `record_time` and `tracker_name`, foldered by the day the
  transfer would have written them: 5 minutes after the trace), using boto3 against the embedded
  AWS of `.opencts/local.json`. `opencts archive` then finds them like any other trace file.
  They were never recorded, so no digest lists them: `opencts validate` over those days would
  (rightly) call them unlisted files.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chalicelib.aws import client
from chalicelib.errors import CtsError
from chalicelib.local.state import find_state, read_state
from chalicelib.model import RETENTION_MS, parse_trace
from chalicelib.trace_files import FileLayout, build_files, random_hex

DATA_NOW_MS = int(datetime.datetime(2026, 11, 20, 12, tzinfo=datetime.UTC).timestamp() * 1000)
# A trace this close to the 7-day edge could cross it between `recent` and `opencts report`.
EDGE_MARGIN_MS = 60 * 60 * 1000
RECORD_DELAY_MS = 2_000  # from the operation to its recording
TRANSFER_PERIOD_MS = 5 * 60 * 1000  # the transfer cycle writes what was recorded since its last run
SYSTEM_TRACKER = "system"


def now_ms() -> int:
    return int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)


def load(path: str, now: int) -> list[dict[str, Any]]:
    traces = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(traces, list) or not all(isinstance(t, dict) for t in traces):
        raise SystemExit(f"{path}: expected a JSON list of traces")
    shift = now - DATA_NOW_MS
    return [{**t, "time": int(t["time"]) + shift} for t in traces]


def recent(traces: Sequence[dict[str, Any]], now: int) -> list[dict[str, Any]]:
    return [t for t in traces if t["time"] >= now - RETENTION_MS + EDGE_MARGIN_MS]


def archived(traces: Sequence[dict[str, Any]], now: int) -> list[dict[str, Any]]:
    return [t for t in traces if t["time"] < now - RETENTION_MS + EDGE_MARGIN_MS]


def upload_moment(trace_time: int) -> int:
    """When the transfer cycle after the trace's recording ran."""
    recorded = trace_time + RECORD_DELAY_MS
    return recorded - recorded % TRANSFER_PERIOD_MS + TRANSFER_PERIOD_MS


def write_archive(traces: Sequence[dict[str, Any]], state: dict[str, Any]) -> list[str]:
    resources = state.get("resources", {})
    bucket, prefix = str(resources["trace_bucket"]), str(resources["trace_prefix"])
    layout = FileLayout(prefix, state["region"], state["project_id"], SYSTEM_TRACKER)
    batches: dict[int, list[dict[str, Any]]] = {}
    for raw in traces:
        try:
            stored = parse_trace(raw, raw["time"] + RECORD_DELAY_MS)
        except CtsError as e:
            raise SystemExit(f"trace {raw.get('trace_id')}: {e.message}") from None
        batches.setdefault(upload_moment(stored["time"]), []).append(stored)
    # The embedded AWS (moto) takes any credentials; a real account's are never needed here.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    s3 = client("s3", state["region"], state["aws_endpoint"])
    keys = []
    for moment, batch in sorted(batches.items()):
        for file in build_files(batch):
            key = layout.key(moment, file.service_type, random_hex())
            s3.put_object(Bucket=bucket, Key=key, Body=file.body, ContentType="application/json")
            keys.append(f"s3://{bucket}/{key}")
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.guides.guidedata", description=__doc__)
    parser.add_argument("command", choices=("recent", "archive"))
    parser.add_argument("file", help="a data file under docs/guides/data/")
    args = parser.parse_args(argv)
    now = now_ms()
    traces = load(args.file, now)
    if args.command == "recent":
        print(json.dumps(recent(traces, now), indent=1, ensure_ascii=False))
        return 0
    state_path = find_state()
    if state_path is None:
        raise SystemExit("no .opencts/local.json here or above: start the stack with `make run`")
    state = read_state(state_path)
    old = archived(traces, now)
    keys = write_archive(old, state)
    print(f"wrote {len(old)} traces older than 7 days in {len(keys)} trace files:")
    for key in keys:
        print(f"  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
