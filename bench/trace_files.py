"""Trace-file building throughput: the transfer cycle's real file builder against plain
`gzip.compress(json.dumps(batch).encode())` of the same traces, in the same run.

"ours" is `chalicelib.trace_files.build_files` on a batch of stored traces (as the transfer cycle
reads them back: every field, request/response as strings): grouping by service, ordering by
time, JSON per trace (to split at the size bound), the SHA-256 of each file's JSON (for the
digests), and one gzip member per file. "raw" is one `json.dumps` and one `gzip.compress` of the
whole batch. Both use gzip's default level (9).

The batch is built once outside the timed region; rounds alternate which side goes first; times
are CPU time of this process. Figures are medians over the rounds: traces/s for each side and
`ratio` = ours / raw (target >= 0.7). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from bench.common import (  # noqa: E402
    DEFAULT_SEED,
    NOW_MS,
    TraceFactory,
    build_vocabulary,
    emit,
    median,
    progress,
    recent_times,
)
from chalicelib.model import parse_trace  # noqa: E402
from chalicelib.trace_files import build_files  # noqa: E402

TARGET_RATIO_MIN = 0.7
DEFAULT_ROUNDS = 5


def stored_traces(count: int, seed: int) -> list[dict[str, Any]]:
    """Traces as the transfer cycle reads them: validated, with record_time."""
    rng = random.Random(seed)
    factory = TraceFactory(rng, build_vocabulary(rng))
    return [parse_trace(factory.trace(t), NOW_MS) for t in recent_times(rng, count, NOW_MS)]


def ours(batch: Sequence[dict[str, Any]]) -> int:
    return sum(len(f.body) for f in build_files(batch))


def raw(batch: Sequence[dict[str, Any]]) -> int:
    return len(gzip.compress(json.dumps(batch).encode()))


def _timed(side: Callable[[Sequence[dict[str, Any]]], int], batch: Sequence[Any]) -> float:
    start = time.process_time()
    side(batch)
    return time.process_time() - start


def run(traces: int, rounds: int, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    batch = stored_traces(traces, seed)
    ours_rates: list[float] = []
    raw_rates: list[float] = []
    ratios: list[float] = []
    for number in range(rounds):
        first, second = (ours, raw) if number % 2 == 0 else (raw, ours)
        times = {first: _timed(first, batch), second: _timed(second, batch)}
        ours_rate = traces / max(times[ours], 1e-9)
        raw_rate = traces / max(times[raw], 1e-9)
        ours_rates.append(ours_rate)
        raw_rates.append(raw_rate)
        ratios.append(ours_rate / raw_rate)
        progress(f"round {number + 1}/{rounds}: ours {ours_rate:,.0f}/s raw {raw_rate:,.0f}/s")
    ratio = median(ratios)
    files = build_files(batch)
    return {
        "bench": "trace_files",
        "traces": traces,
        "rounds": rounds,
        "ours_traces_per_s": round(median(ours_rates)),
        "raw_traces_per_s": round(median(raw_rates)),
        "ratio": round(ratio, 3),
        "target_ratio_min": TARGET_RATIO_MIN,
        "meets_target": ratio >= TARGET_RATIO_MIN,
        "files": len(files),
        "ours_bytes": sum(len(f.body) for f in files),
        "raw_bytes": raw(batch),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    emit(run(args.traces, args.rounds, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
