"""Read amplification of ListTraces: items DynamoDB reads per item returned, per kind of filter.

50,000 traces over the last 7 days in 3 projects (30k/15k/5k by default) with realistic
cardinalities (~20 services, ~60 resource types, ~2,000 resource ids, ~150 trace names, ~40 users,
skewed popularity, 5% data traces of a data tracker) are stored as reporters send them: each
project's traces as they happen, a batch when 500 are waiting or the oldest has waited 15 minutes,
with a FixedClock moved to the moment of each send, so `time` and `record_time` are spread over the
7 days as in production. By default a batch is stored with `TraceStore.to_item` + `put_new` (the
items `Ingestor.report` would write, without its duplicate check and catalog writes, which change
nothing here and cost more than half the ingest time); `--ingest report` goes through
`Ingestor.report`. The clock is then set to "now".

Then, for each selective filter (`trace_id`, `resource_id`, `trace_name`, `user`,
`service_type`+`resource_type`; values drawn from the data, shared among the projects by size) over
the 7-day window, and for the plain listing over windows of 1 h, 1 h across midnight, 24 h and 7
days, `TraceFinder.find(project, parse_query(params, now), now)` is called page after page
(following the marker; limit 10 and limit 100; a listing stops once it has returned `--max-rows`
rows, 200 by default: amplification happens page by page, and moto's cost is per row). DynamoDB's
own count of the items it read (ScannedCount of every Query, and GetItem hits, summed through
botocore events) is divided by the number of traces returned. Every listing is also checked against
the generated data: the rows must be exactly the newest matching traces, in order, with no
duplicates. Done twice, in two processes when there are two cores (`--jobs`), each with its own
moto: with every project at 1 shard (the default) and at 4 shards (`ProjectRegistry.set_shards
(project, 4)` before its traces are stored). `by_filter` mixes the limit-10 and limit-100 pages;
`detail_by_shards` splits them (`by_limit`), by window, and counts DynamoDB calls per page.

Prints one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from moto import mock_aws  # noqa: E402

from bench.common import (  # noqa: E402
    DEFAULT_SEED,
    DOMAIN,
    NOW_MS,
    DynamoCalls,
    Stack,
    TraceFactory,
    build_vocabulary,
    configure_aws_env,
    emit,
    fast_moto,
    make_stack,
    progress,
)
from chalicelib.clock import MS_PER_DAY, MS_PER_HOUR, MS_PER_SECOND, FixedClock  # noqa: E402
from chalicelib.ingest import MAX_TRACES_PER_CALL  # noqa: E402
from chalicelib.model import is_data_trace, parse_trace  # noqa: E402
from chalicelib.query import TraceFinder, parse_query  # noqa: E402
from chalicelib.store import TraceStore  # noqa: E402

PROJECT_SHARES = (("bench-big", 0.6), ("bench-mid", 0.3), ("bench-small", 0.1))
SELECTIVE = ("trace_id", "resource_id", "trace_name", "user", "service_type+resource_type")
WINDOW = "window"
LIMITS = (10, 100)
SHARD_COUNTS = (1, 4)
SPAN_MS = 7 * MS_PER_DAY
# Traces start a little after now - 7 days, so every one is inside the queryable 7 days.
START_MARGIN_MS = 10 * 60 * MS_PER_SECOND
FLUSH_AFTER_MS = 15 * 60 * MS_PER_SECOND
SELECTIVE_MAX = 2.0
WINDOW_MAX = 1.2
DEFAULT_TRACES = 50_000
DEFAULT_VALUES = 20
DEFAULT_MAX_ROWS = 200

Trace = dict[str, Any]


# --- data ----------------------------------------------------------------------------------------


def generate(traces: int, seed: int, now_ms: int) -> dict[str, list[Trace]]:
    """Each project's reported traces, oldest first, spread uniformly over the last 7 days."""
    rng = random.Random(seed)
    factory = TraceFactory(rng, build_vocabulary(rng))
    start = now_ms - SPAN_MS + START_MARGIN_MS
    out: dict[str, list[Trace]] = {}
    left = traces
    for n, (project, share) in enumerate(PROJECT_SHARES):
        count = left if n + 1 == len(PROJECT_SHARES) else round(traces * share)
        left -= count
        out[project] = factory.traces(sorted(rng.randrange(start, now_ms) for _ in range(count)))
    return out


def ingest(
    stack: Stack, data: Mapping[str, Sequence[Trace]], now_ms: int, path: str = "store"
) -> int:
    """Reports every project's traces as they happen: a batch per project when 500 wait or the
    oldest has waited FLUSH_AFTER_MS, at that moment of the FixedClock. Returns the batch count.

    `path` "report" sends each batch through `Ingestor.report`; "store" builds the same items the
    same way (`parse_trace` at the send time, `TraceStore.to_item` with the shard count in force
    at the trace's time) and writes them with `TraceStore.put_new`, skipping the duplicate check
    and the catalog, which change nothing stored here and cost more than half of the ingest time
    (the unit test checks that both paths give the same figures)."""
    merged: Iterator[tuple[int, str, Trace]] = heapq.merge(
        *([(t["time"], p, t) for t in traces] for p, traces in data.items()),
        key=lambda e: e[0],
    )
    waiting: dict[str, list[Trace]] = {p: [] for p in data}
    batches = 0

    def send(project: str, at_ms: int) -> None:
        nonlocal batches
        stack.clock.current_ms = now = max(stack.clock.current_ms, at_ms)
        if path == "report":
            results = stack.ingestor.report(project, waiting[project])
            stored = sum(1 for r in results if r.status == "stored")
        else:
            plan = stack.projects.require(project)
            parsed = [parse_trace(t, now) for t in waiting[project]]
            items = [TraceStore.to_item(project, t, plan.shards_at(t["time"])) for t in parsed]
            stored = len(items) - len(stack.store.put_new(items))
        if stored != len(waiting[project]):
            raise RuntimeError(f"{project}: stored {stored} of {len(waiting[project])} traces")
        waiting[project] = []
        batches += 1

    for time_ms, project, trace in merged:
        batch = waiting[project]
        if batch and (
            len(batch) >= MAX_TRACES_PER_CALL or time_ms - batch[0]["time"] >= FLUSH_AFTER_MS
        ):
            send(project, time_ms)
        waiting[project].append(trace)
    for project, batch in waiting.items():
        if batch:
            send(project, min(batch[-1]["time"] + MS_PER_SECOND, now_ms))
    stack.clock.current_ms = now_ms
    return batches


def value_of(kind: str, trace: Trace) -> Any:
    if kind == "service_type+resource_type":
        return (trace["service_type"], trace["resource_type"])
    if kind == "user":
        return (trace.get("user") or {}).get("name")
    return trace.get(kind)


def params_for(kind: str, value: Any) -> dict[str, list[str]]:
    if kind == "service_type+resource_type":
        return {"service_type": [value[0]], "resource_type": [value[1]]}
    return {kind: [value]}


def pick_values(
    rng: random.Random, data: Mapping[str, Sequence[Trace]], per_filter: int
) -> dict[str, list[tuple[str, Any]]]:
    """`per_filter` values present in the management traces, shared among projects by size."""
    shares = dict(PROJECT_SHARES)
    picked: dict[str, list[tuple[str, Any]]] = {}
    for kind in SELECTIVE:
        picked[kind] = []
        for project, traces in data.items():
            want = max(1, round(per_filter * shares[project]))
            present = {value_of(kind, t) for t in traces if not is_data_trace(t)}
            values = sorted(v for v in present if v)
            picked[kind] += [(project, v) for v in rng.sample(values, min(want, len(values)))]
    return picked


def windows(now_ms: int) -> dict[str, tuple[int, int]]:
    midnight = now_ms - now_ms % MS_PER_DAY
    return {
        "1h": (now_ms - MS_PER_HOUR, now_ms),
        "1h_midnight": (midnight - MS_PER_HOUR // 2, midnight + MS_PER_HOUR // 2),
        "24h": (now_ms - MS_PER_DAY, now_ms),
        "7d": (now_ms - SPAN_MS, now_ms),
    }


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Tally:
    listings: int = 0
    pages: int = 0
    empty_pages: int = 0
    returned: int = 0
    items_read: int = 0
    page_scanned: int = 0
    calls: int = 0
    seconds: float = 0.0

    def add(self, other: Tally) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def ratio(self) -> float:
        return round(self.items_read / self.returned, 3) if self.returned else 0.0


@dataclass
class Checks:
    row_mismatches: int = 0
    scanned_mismatches: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.row_mismatches += 1
        if len(self.failures) < 5:
            self.failures.append(what)


def expected_rows(
    traces: Sequence[Trace], params: Mapping[str, list[str]], from_ms: int, to_ms: int
) -> list[tuple[int, str]]:
    """The (time, trace_id) of every management trace the listing must return, newest first."""
    wanted = [(name, values[0]) for name, values in params.items()]
    rows = [
        (t["time"], t["trace_id"])
        for t in traces
        if not is_data_trace(t)
        and from_ms <= t["time"] <= to_ms
        and all(value_of(k, t) == v for k, v in wanted)
    ]
    return sorted(rows, reverse=True)


@dataclass
class Walker:
    finder: TraceFinder
    stack: Stack
    calls: DynamoCalls
    now_ms: int
    max_rows: int
    checks: Checks

    def listing(
        self,
        project_id: str,
        traces: Sequence[Trace],
        params: dict[str, list[str]],
        window: tuple[int, int],
        limit: int,
    ) -> Tally:
        """The pages of one listing (until max_rows rows), checked against the data."""
        project = self.stack.projects.require(project_id)
        base = {**params, "from": [str(window[0])], "to": [str(window[1])], "limit": [str(limit)]}
        tally = Tally(listings=1)
        rows: list[tuple[int, str]] = []
        read_before = self.calls.items_read
        calls_before = self.calls.calls.get("Query", 0) + self.calls.calls.get("GetItem", 0)
        start = time.perf_counter()
        marker: str | None = None
        while True:
            query_params = dict(base)
            if marker:
                query_params["next"] = [marker]
            page = self.finder.find(project, parse_query(query_params, self.now_ms), self.now_ms)
            tally.pages += 1
            tally.returned += len(page.traces)
            tally.page_scanned += page.scanned
            tally.empty_pages += not page.traces
            rows += [(t["time"], t["trace_id"]) for t in page.traces]
            marker = page.marker
            if marker is None or len(rows) >= self.max_rows:
                break
        tally.seconds = time.perf_counter() - start
        tally.items_read = self.calls.items_read - read_before
        tally.calls = (
            self.calls.calls.get("Query", 0) + self.calls.calls.get("GetItem", 0) - calls_before
        )
        if tally.page_scanned != tally.items_read:
            self.checks.scanned_mismatches += 1
        expected = expected_rows(traces, params, *window)
        complete = marker is None
        if rows != (expected if complete else expected[: len(rows)]) or (
            not complete and len(rows) != tally.pages * limit
        ):
            self.checks.fail(
                f"{project_id} {params} limit {limit}: {len(rows)} rows, "
                f"{len(expected)} expected, complete={complete}"
            )
        return tally


def measure(
    stack: Stack,
    data: Mapping[str, Sequence[Trace]],
    values: Mapping[str, Sequence[tuple[str, Any]]],
    now_ms: int,
    max_rows: int,
    checks: Checks,
) -> tuple[dict[str, Tally], dict[str, Tally], dict[int, dict[str, Tally]], DynamoCalls]:
    """Tallies by filter kind, by window, and by filter kind for each limit."""
    calls = DynamoCalls().attach(stack.client)
    walker = Walker(TraceFinder(stack.store), stack, calls, now_ms, max_rows, checks)
    by_filter: dict[str, Tally] = {}
    by_limit: dict[int, dict[str, Tally]] = {limit: {} for limit in LIMITS}

    def count(kind: str, limit: int, tally: Tally) -> None:
        by_filter.setdefault(kind, Tally()).add(tally)
        by_limit[limit].setdefault(kind, Tally()).add(tally)

    week = (now_ms - SPAN_MS, now_ms)
    for kind in SELECTIVE:
        for project, value in values[kind]:
            for limit in LIMITS:
                params = params_for(kind, value)
                count(kind, limit, walker.listing(project, data[project], params, week, limit))
    by_window: dict[str, Tally] = {}
    for name, window in windows(now_ms).items():
        by_window[name] = Tally()
        for project in data:
            for limit in LIMITS:
                tally = walker.listing(project, data[project], {}, window, limit)
                by_window[name].add(tally)
                count(WINDOW, limit, tally)
    return by_filter, by_window, by_limit, calls


# --- the benchmark -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchSettings:
    traces: int = DEFAULT_TRACES
    values_per_filter: int = DEFAULT_VALUES
    max_rows: int = DEFAULT_MAX_ROWS
    seed: int = DEFAULT_SEED
    ingest_path: str = "store"
    stock_moto: bool = False


def measure_shards(shards: int, settings: BenchSettings) -> dict[str, Any]:
    """One shard count, start to end, in its own moto: generate, store, list, tally.

    Self-contained (the same seed gives the same data), so shard counts can run in parallel."""
    configure_aws_env()
    now = NOW_MS
    data = generate(settings.traces, settings.seed, now)
    values = pick_values(random.Random(settings.seed + 1), data, settings.values_per_filter)
    checks = Checks()
    with mock_aws(), fast_moto(not settings.stock_moto):
        # Shard counts are set an hour before the first trace: a change takes effect a cache
        # period and the largest clock skew after it is made. botocore's client-side parameter
        # validation is off: it changes no figure here and costs a sixth of the ingest time.
        stack = make_stack(
            FixedClock(now - SPAN_MS - MS_PER_HOUR),
            traces_table=f"opencts-bench-traces-s{shards}",
            control_table=f"opencts-bench-control-s{shards}",
            validate_params=False,
        )
        for project in data:
            stack.projects.register(project, DOMAIN)
            if shards != 1:
                stack.projects.set_shards(project, shards)
        t0 = time.perf_counter()
        batches = ingest(stack, data, now, settings.ingest_path)
        ingest_s = time.perf_counter() - t0
        progress(
            f"query_amplification shards={shards}: stored {settings.traces} traces in "
            f"{batches} batches, {ingest_s:.1f} s ({settings.traces / ingest_s:,.0f} traces/s)"
        )
        t0 = time.perf_counter()
        by_filter, by_window, by_limit, calls = measure(
            stack, data, values, now, settings.max_rows, checks
        )
        query_s = time.perf_counter() - t0
    ratios = {kind: t.ratio for kind, t in by_filter.items()}
    progress(f"query_amplification shards={shards}: {ratios}, listings {query_s:.1f} s")
    pages = sum(t.pages for t in by_filter.values())
    return {
        "shards": shards,
        "ratios": ratios,
        "scans": calls.scans,
        "checks": checks,
        "detail": {
            "by_limit": {
                str(limit): {kind: t.ratio for kind, t in tallies.items()}
                for limit, tallies in by_limit.items()
            },
            "by_window": {name: t.ratio for name, t in by_window.items()},
            "dynamo_calls_per_page": {
                kind: round(t.calls / t.pages, 2) for kind, t in by_filter.items()
            },
            "rows_returned": {kind: t.returned for kind, t in by_filter.items()},
            "pages": pages,
            "empty_last_pages": sum(t.empty_pages for t in by_filter.values()),
            "pages_per_s": round(pages / query_s, 1),
            "ingest_s": round(ingest_s, 1),
            "query_s": round(query_s, 1),
        },
    }


def run(
    traces: int = DEFAULT_TRACES,
    values_per_filter: int = DEFAULT_VALUES,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = DEFAULT_SEED,
    *,
    shard_counts: Sequence[int] = SHARD_COUNTS,
    ingest_path: str = "store",
    stock_moto: bool = False,
    jobs: int = 1,
) -> dict[str, Any]:
    began = time.perf_counter()
    settings = BenchSettings(traces, values_per_filter, max_rows, seed, ingest_path, stock_moto)
    workers = max(1, min(jobs, len(shard_counts)))
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(measure_shards, shard_counts, repeat(settings)))
    else:
        parts = [measure_shards(shards, settings) for shards in shard_counts]

    out: dict[str, Any] = {
        "bench": "query_amplification",
        "traces": traces,
        "projects": len(PROJECT_SHARES),
        "scans": sum(p["scans"] for p in parts),
    }
    # The targets hold for the default (one shard per project). A sharded (hot) project is
    # reported beside them: merging n shards reads at least (limit + n - 1) / limit rows per
    # returned row, so at limit 10 four shards cannot reach 1.2 by construction.
    checks = Checks()
    for part in parts:
        shards = part["shards"]
        suffix = "" if shards == 1 else f"_{shards}_shards"
        out[f"by_filter{suffix}"] = part["ratios"]
        out[f"meets_targets{suffix}"] = out["scans"] == 0 and all(
            ratio <= (WINDOW_MAX if kind == WINDOW else SELECTIVE_MAX)
            for kind, ratio in part["ratios"].items()
        )
        checks.row_mismatches += part["checks"].row_mismatches
        checks.scanned_mismatches += part["checks"].scanned_mismatches
        checks.failures = (checks.failures + part["checks"].failures)[:5]
    out["targets"] = {"selective_max": SELECTIVE_MAX, "window_max": WINDOW_MAX}
    out["detail_by_shards"] = {str(p["shards"]): p["detail"] for p in parts}
    out["checks"] = {
        "row_mismatches": checks.row_mismatches,
        "scanned_mismatches": checks.scanned_mismatches,
        "failures": checks.failures,
    }
    out["values_per_filter"] = values_per_filter
    out["max_rows"] = max_rows
    out["ingest"] = "Ingestor.report" if ingest_path == "report" else "TraceStore.to_item+put_new"
    out["moto"] = "stock" if stock_moto else "fast"
    out["jobs"] = workers
    out["seconds"] = round(time.perf_counter() - began, 1)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--traces", type=int, default=DEFAULT_TRACES)
    parser.add_argument("--values", type=int, default=DEFAULT_VALUES, help="values per filter")
    parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--ingest",
        choices=("store", "report"),
        default="store",
        help="store: TraceStore.to_item+put_new (default, faster); report: Ingestor.report",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="shard counts measured in parallel processes",
    )
    parser.add_argument("--stock-moto", action="store_true", help="without bench speed-ups")
    args = parser.parse_args(argv)
    if args.traces < 10 or args.values < 1 or args.max_rows < 1:
        parser.error("--traces must be at least 10, --values and --max-rows positive")
    result = run(
        args.traces,
        args.values,
        args.max_rows,
        args.seed,
        ingest_path=args.ingest,
        stock_moto=args.stock_moto,
        jobs=args.jobs,
    )
    emit(result)
    checks = result["checks"]
    if checks["row_mismatches"] or checks["scanned_mismatches"]:
        # A finding about ListTraces, not a failed run: reported, and the exit code stays 0.
        progress(f"query_amplification: listings disagree with the data: {checks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
