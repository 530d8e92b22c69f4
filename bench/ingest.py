"""Ingest throughput: OpenCTS's batch ingest path against raw `batch_write_item`, same run, same
moto backend, same table.

"ours" is what `POST /v3/{project}/traces` does once the body has arrived: `parse_report_body` on
the raw bytes (the bodies are encoded outside the timed region: that is the reporter's work), then
`Ingestor.report` (validation, the duplicate check with BatchGetItem, item building, BatchWriteItem
with retries, the catalog) in batches of 500.
"raw" writes the same traces, converted to DynamoDB items outside the timed region, with bare
`batch_write_item` calls of 25 under another project id.

The traces are split into rounds (5 by default); in each round both sides write that round's
traces, and the side that goes first alternates from round to round. Times are CPU time of this
process (everything runs in it; other load on a shared machine does not move them; `wall_ratio` is
the wall-clock ratio). Rates and ratios are medians of the per-round figures; `us_per_trace` is
the mean over all rounds, split into the time inside moto and the rest ("client": our code,
botocore's serialisation and parsing). The DynamoDB client is the functions' own
(`chalicelib.aws.client`, same botocore config). moto's own CPU per item is paid equally by both
sides and has no counterpart on our side of a real DynamoDB, so `client_ratio` (client time, ours
over raw) is the figure that shows our overhead.

Prints one JSON line on stdout; `--profile` adds a phase breakdown and a cProfile listing on stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from moto import mock_aws  # noqa: E402

import chalicelib.ingest as ingest_module  # noqa: E402
import chalicelib.store as store_module  # noqa: E402
from bench.common import (  # noqa: E402
    BACKEND,
    DEFAULT_SEED,
    DOMAIN,
    NOW_MS,
    DynamoCalls,
    Stack,
    TraceFactory,
    build_vocabulary,
    chunks,
    configure_aws_env,
    emit,
    fast_moto,
    make_stack,
    median,
    progress,
    recent_times,
    timed_backend,
)
from chalicelib.catalog import Catalog  # noqa: E402
from chalicelib.clock import FixedClock  # noqa: E402
from chalicelib.dynamo import to_item  # noqa: E402
from chalicelib.ingest import MAX_TRACES_PER_CALL, parse_report_body  # noqa: E402
from chalicelib.model import parse_trace  # noqa: E402
from chalicelib.projects import ProjectRegistry  # noqa: E402
from chalicelib.store import TraceStore  # noqa: E402

TARGET_RATIO_MAX = 1.3
RAW_CHUNK = 25
RAW_MAX_ATTEMPTS = 8
DEFAULT_ROUNDS = 5
OURS_PROJECT = "bench-ours"
RAW_PROJECT = "bench-raw"  # its own project id, so that trace ids never collide with ours


@dataclass
class Run:
    """One side's timed pass: CPU seconds of this process, the part of them spent inside moto,
    and wall seconds."""

    seconds: float
    backend: float
    wall: float = 0.0

    @property
    def client(self) -> float:
        return self.seconds - self.backend


@dataclass
class Side:
    """Per-trace seconds of each round (rounds may differ by a few traces), and call counts."""

    per_trace: list[Run] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    traces: int = 0
    total: Run = field(default_factory=lambda: Run(0.0, 0.0))

    def add(self, run: Run, traces: int, batches: int, calls: dict[str, int]) -> None:
        self.per_trace.append(Run(run.seconds / traces, run.backend / traces, run.wall / traces))
        self.total.seconds += run.seconds
        self.total.backend += run.backend
        self.traces += traces
        self.batches += batches
        for name, count in calls.items():
            self.calls[name] = self.calls.get(name, 0) + count

    def median(self, pick: Callable[[Run], float]) -> float:
        return median([pick(r) for r in self.per_trace])

    def mean(self, pick: Callable[[Run], float]) -> float:
        return pick(self.total) / self.traces


def encode_bodies(traces: Sequence[dict[str, Any]], batch: int) -> list[bytes]:
    """The request bodies a reporter sends: `{"traces": [...]}`, `batch` traces each."""
    return [json.dumps({"traces": list(c)}).encode() for c in chunks(traces, batch)]


def raw_items(project_id: str, traces: Sequence[dict[str, Any]], now_ms: int) -> list[Any]:
    """The DynamoDB items our path would write, built once, outside the timed region."""
    return [to_item(TraceStore.to_item(project_id, parse_trace(t, now_ms), 1)) for t in traces]


def ingest_ours(stack: Stack, project_id: str, bodies: Sequence[bytes]) -> tuple[Run, int]:
    backend = BACKEND.seconds
    wall = time.perf_counter()
    start = time.process_time()
    stored = 0
    for body in bodies:
        results = stack.ingestor.report(project_id, parse_report_body(body))
        stored += sum(1 for r in results if r.status == "stored")
    cpu = time.process_time() - start
    return Run(cpu, BACKEND.seconds - backend, time.perf_counter() - wall), stored


def write_raw(stack: Stack, items: Sequence[Any]) -> Run:
    backend = BACKEND.seconds
    wall = time.perf_counter()
    start = time.process_time()
    for chunk in chunks(items, RAW_CHUNK):
        pending: Any = {stack.traces_table: [{"PutRequest": {"Item": i}} for i in chunk]}
        for _ in range(RAW_MAX_ATTEMPTS):
            out = stack.client.batch_write_item(RequestItems=pending)
            pending = out.get("UnprocessedItems") or {}
            if not pending:
                break
        else:
            raise RuntimeError("raw batch_write_item left items unprocessed")
    cpu = time.process_time() - start
    return Run(cpu, BACKEND.seconds - backend, time.perf_counter() - wall)


def settle_heap() -> None:
    """Collects, then freezes what survives (moto's stored items, mostly) out of the collector.

    Otherwise the cyclic collector's full passes walk moto's ever-growing heap, and the side
    that allocates more (ours: parsing, validation) triggers more of them: a cost of the bench
    (a Lambda container does not hold the table), not of either side."""
    gc.collect()
    gc.freeze()


def generate(traces: int, seed: int, now_ms: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    factory = TraceFactory(rng, build_vocabulary(rng))
    # Reporters send what happened in the last hour or so.
    return factory.traces(recent_times(rng, traces, now_ms))


def run(
    traces: int = 20_000,
    rounds: int = DEFAULT_ROUNDS,
    batch: int = MAX_TRACES_PER_CALL,
    seed: int = DEFAULT_SEED,
    *,
    profile: bool = False,
    stock_moto: bool = False,
) -> dict[str, Any]:
    configure_aws_env()
    began = time.perf_counter()
    now = NOW_MS
    generated = generate(traces, seed, now)
    ours, raw = Side(), Side()
    with mock_aws(), fast_moto(not stock_moto), timed_backend():
        stack = make_stack(FixedClock(now))
        stack.projects.register(OURS_PROJECT, DOMAIN)
        calls = DynamoCalls().attach(stack.client)
        share = -(-traces // rounds)
        for r in range(rounds):
            part = generated[r * share : (r + 1) * share]
            if not part:
                break
            bodies = encode_bodies(part, batch)
            items = raw_items(RAW_PROJECT, part, now)
            order = ("ours", "raw") if r % 2 == 0 else ("raw", "ours")
            for side in order:
                calls.reset()
                settle_heap()
                if side == "ours":
                    result, stored = ingest_ours(stack, OURS_PROJECT, bodies)
                    if stored != len(part):
                        raise RuntimeError(f"ours stored {stored} of {len(part)} traces")
                    ours.add(result, len(part), len(bodies), calls.calls)
                else:
                    result = write_raw(stack, items)
                    raw.add(result, len(part), len(bodies), calls.calls)
                progress(
                    f"ingest round {r + 1}/{rounds} {side}: {len(part) / result.seconds:,.0f} "
                    f"traces/s ({result.backend / result.seconds:.0%} inside moto)"
                )
        if profile:
            profile_ours(stack, generated, encode_bodies(generated, batch))

    ours_s, raw_s = ours.median(lambda r: r.seconds), raw.median(lambda r: r.seconds)
    ours_client, raw_client = ours.median(lambda r: r.client), raw.median(lambda r: r.client)
    ratio = ours_s / raw_s

    def per_trace_us(side: Side) -> dict[str, float]:
        return {
            "total": round(side.mean(lambda r: r.seconds) * 1e6, 1),
            "moto": round(side.mean(lambda r: r.backend) * 1e6, 1),
            "client": round(side.mean(lambda r: r.client) * 1e6, 1),
        }

    def per_batch(side: Side) -> dict[str, float]:
        return {k: round(v / side.batches, 2) for k, v in sorted(side.calls.items())}

    return {
        "bench": "ingest",
        "traces": traces,
        "ours_traces_per_s": round(1 / ours_s, 1),
        "raw_traces_per_s": round(1 / raw_s, 1),
        "ratio": round(ratio, 3),
        "target_ratio_max": TARGET_RATIO_MAX,
        "meets_target": ratio <= TARGET_RATIO_MAX,
        "client_ratio": round(ours_client / raw_client, 3),
        "wall_ratio": round(ours.median(lambda r: r.wall) / raw.median(lambda r: r.wall), 3),
        "us_per_trace": {"ours": per_trace_us(ours), "raw": per_trace_us(raw)},
        "calls_per_batch": {"ours": per_batch(ours), "raw": per_batch(raw)},
        "rounds": rounds,
        "batch": batch,
        "moto": "stock" if stock_moto else "fast",
        "seconds": round(time.perf_counter() - began, 1),
    }


# --- profile ------------------------------------------------------------------------------------


@dataclass
class Phase:
    calls: int = 0
    seconds: float = 0.0
    backend: float = 0.0


@contextmanager
def phases() -> Iterator[dict[str, Phase]]:
    """Times the steps of Ingestor.report by wrapping them (inclusive time, and moto's share)."""
    found: dict[str, Phase] = {}

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        phase = found.setdefault(name, Phase())

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            backend = BACKEND.seconds
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                phase.calls += 1
                phase.seconds += time.process_time() - start
                phase.backend += BACKEND.seconds - backend

        return wrapper

    saved: list[tuple[Any, str, Any]] = [
        (ingest_module, "parse_trace", vars(ingest_module)["parse_trace"]),
        (ProjectRegistry, "require", ProjectRegistry.require),
        (TraceStore, "existing", TraceStore.existing),
        (TraceStore, "to_item", TraceStore.__dict__["to_item"]),
        (TraceStore, "put_new", TraceStore.put_new),
        (store_module, "to_item", vars(store_module)["to_item"]),
        (Catalog, "record", Catalog.record),
    ]
    labels = {
        "parse_trace": "validate (parse_trace)",
        "require": "project lookup",
        "existing": "dedupe BatchGetItem (existing)",
        "put_new": "BatchWriteItem (put_new)",
        "record": "catalog writes (Catalog.record)",
    }
    for owner, name, original in saved:
        if name == "to_item" and owner is TraceStore:
            setattr(
                owner,
                name,
                staticmethod(timed("item building (TraceStore.to_item)", original.__func__)),
            )
        elif owner is store_module:
            setattr(owner, name, timed("  of which DynamoDB JSON (dynamo.to_item)", original))
        else:
            setattr(owner, name, timed(labels[name], original))
    try:
        yield found
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def profile_ours(
    stack: Stack, generated: Sequence[dict[str, Any]], bodies: Sequence[bytes]
) -> None:
    traces = len(generated)
    stack.projects.register("bench-profile-phases", DOMAIN)
    settle_heap()
    parse_seconds = 0.0
    with phases() as found:
        backend = BACKEND.seconds
        start = time.process_time()
        for body in bodies:
            t0 = time.process_time()
            parsed = parse_report_body(body)
            parse_seconds += time.process_time() - t0
            stack.ingestor.report("bench-profile-phases", parsed)
        total = time.process_time() - start
        total_backend = BACKEND.seconds - backend
    progress(f"\nphases of ours ({traces} traces, {len(bodies)} batches; inclusive times)")
    progress(f"{'phase':44} {'calls':>7} {'ms':>9} {'moto ms':>9} {'client us/trace':>16}")
    rows = [("parse_report_body (json.loads)", Phase(len(bodies), parse_seconds, 0.0))]
    rows += list(found.items())
    accounted = parse_seconds + sum(p.seconds for n, p in found.items() if not n.startswith(" "))
    rows.append(("rest of report (results, bookkeeping)", Phase(0, total - accounted, 0.0)))
    rows.append(("total", Phase(len(bodies), total, total_backend)))
    for name, p in rows:
        client_us = (p.seconds - p.backend) / traces * 1e6
        progress(
            f"{name:44} {p.calls:7d} {p.seconds * 1e3:9.0f} {p.backend * 1e3:9.0f} "
            f"{client_us:16.1f}"
        )

    items = raw_items("bench-profile-raw", generated, NOW_MS)
    settle_heap()
    reference = write_raw(stack, items)
    progress(
        f"{'reference: raw batch_write_item':44} {'':7} {reference.seconds * 1e3:9.0f} "
        f"{reference.backend * 1e3:9.0f} {reference.client / traces * 1e6:16.1f}"
    )

    stack.projects.register("bench-profile-cprofile", DOMAIN)
    settle_heap()
    profiler = cProfile.Profile()
    profiler.enable()
    for body in bodies:
        stack.ingestor.report("bench-profile-cprofile", parse_report_body(body))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"chalicelib|bench", 30)
    stats.sort_stats("tottime").print_stats(25)
    progress(out.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--batch", type=int, default=MAX_TRACES_PER_CALL)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--profile", action="store_true", help="phase breakdown and cProfile")
    parser.add_argument("--stock-moto", action="store_true", help="without bench speed-ups")
    args = parser.parse_args(argv)
    if args.traces < 1 or args.rounds < 1 or not 1 <= args.batch <= MAX_TRACES_PER_CALL:
        parser.error("--traces and --rounds must be positive, --batch 1..500")
    emit(
        run(
            args.traces,
            args.rounds,
            args.batch,
            args.seed,
            profile=args.profile,
            stock_moto=args.stock_moto,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
