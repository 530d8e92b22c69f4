"""Notification matching throughput: traces/s on one core for 1, 10, 100 and 1,000 notifications,
next to moto's EventBridge matcher (moto.events.models.EventPattern) on the same rules and traces
in the same run.

Traces: 10,000 synthetic CTS traces (bench.common.TraceFactory: skewed services, operations,
users; 5 % data traces). Notifications: CTS rules of realistic shape written as the EventBridge
patterns they compile to (the notification API compiles CTS rules into chalicelib/pattern.py
patterns): 1 to 3 services with 1 to 5 operations each (`$or` over services when several),
a user list on a third of them, filter rules (`code != 200`, `trace_rating = warning`, AND/OR)
on a quarter, and on some an extra EventBridge pattern (prefix, cidr, numeric, anything-but,
wildcard); one in twenty is `complete` (every operation), most of those with a filter.

Ours: `build_matcher(rules)` (swappable with `--matcher module:function`, so the product's
NotificationMatcher can be measured after merging) indexes each rule branch by
(service_type, trace_name), (service_type, any) or (any, any) and compiles, per branch, only the
conditions the index does not already decide (chalicelib/pattern.py). moto: every rule's pattern
on every trace, which is what moto's events backend does. Times are CPU time (time.process_time)
of this single-threaded process; moto runs on a prefix of the traces when it would take too
long, and its rate is over the traces it saw. `mismatches` counts traces on which the two
disagree (over the traces both saw). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from moto.events.models import EventPattern  # noqa: E402

from bench.common import (  # noqa: E402
    DEFAULT_SEED,
    NOW_MS,
    Operation,
    TraceFactory,
    Vocabulary,
    build_vocabulary,
    emit,
    progress,
    recent_times,
)
from chalicelib.pattern import CompiledPattern, compile_pattern  # noqa: E402

Rule = tuple[str, dict[str, Any]]  # (notification id, EventBridge pattern)
Match = Callable[[Mapping[str, Any]], list[str]]
TARGETS = {"100": 50_000, "1000": 20_000}
COUNTS = (1, 10, 100, 1000)
ANY = "*"


# -- the rules -----------------------------------------------------------------------------------
def make_rules(rng: random.Random, vocabulary: Vocabulary, count: int) -> list[Rule]:
    by_service: dict[str, list[Operation]] = {}
    for op in vocabulary.operations:
        by_service.setdefault(op.service_type, []).append(op)
    services = sorted(by_service)
    # Rules favour the busy services a little, as people watch what they use.
    weights = [len(by_service[s]) for s in services]
    users = [u["name"] for u in vocabulary.users]
    rules: list[Rule] = []
    for n in range(count):
        pattern: dict[str, Any] = {}
        if rng.random() >= 0.05:
            chosen = set(rng.choices(services, weights, k=rng.randint(1, 3)))
            branches: list[dict[str, Any]] = []
            for service in sorted(chosen):
                ops = rng.sample(
                    by_service[service], min(len(by_service[service]), rng.randint(1, 5))
                )
                # A CTS operation is (service_type, resource_type, trace_names): one branch each.
                by_type: dict[str, set[str]] = {}
                for op in ops:
                    by_type.setdefault(op.resource_type, set()).add(op.trace_name)
                branches.extend(
                    {"service_type": [service], "resource_type": [rt], "trace_name": sorted(names)}
                    for rt, names in sorted(by_type.items())
                )
            if len(branches) == 1:
                pattern.update(branches[0])
            else:
                pattern["$or"] = branches
        complete = not pattern
        if complete and rng.random() < 0.7:
            # `complete` with the filter `trace_rating = incident` (or warning): the usual alarm
            pattern["trace_rating"] = [rng.choice(("incident", "warning"))]
        if rng.random() < 1 / 3:
            pattern["user"] = {"name": rng.sample(users, rng.randint(1, 8))}
        if rng.random() < 0.25 or (complete and "trace_rating" not in pattern):
            _add_filter(rng, pattern)
        if rng.random() < 0.15:
            _add_extra(rng, pattern)
        rules.append((f"n{n:04d}", pattern))
    return rules


def _add_filter(rng: random.Random, pattern: dict[str, Any]) -> None:
    conditions: list[dict[str, Any]] = [
        {"code": [{"anything-but": "200"}]},
        {"api_version": ["v3"]},
        {"trace_type": ["ApiCall"]},
    ]
    chosen = rng.sample(conditions, rng.randint(1, 2))
    if len(chosen) == 2 and rng.random() < 0.5 and "$or" not in pattern:
        pattern["$or"] = chosen  # filter condition OR
    else:
        for condition in chosen:
            pattern.update(condition)


def _add_extra(rng: random.Random, pattern: dict[str, Any]) -> None:
    extra: dict[str, Any] = rng.choice(
        [
            {"source_ip": [{"cidr": "10.0.0.0/8"}]},
            {"total_time": [{"numeric": [">", 1000]}]},
            {"resource_name": [{"prefix": "server-"}]},
            {"user_agent": [{"wildcard": "*Linux*"}]},
            {"trace_type": [{"anything-but": ["SystemAction"]}]},
        ]
    )
    pattern.update(extra)


# -- ours: an index on (service_type, trace_name) and the remaining conditions compiled --------
RATING = "~rating"  # index key of service-less branches that name the trace_rating


def _branches(pattern: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pattern as a union of $or-free-at-the-top conjunctions on service/name when the
    top-level $or is over operations; otherwise the pattern itself."""
    alternatives = pattern.get("$or")
    common = {k: v for k, v in pattern.items() if k != "$or"}
    if alternatives and all("service_type" in b for b in alternatives):
        return [{**common, **b} for b in alternatives]
    return [dict(pattern)]


def _plain_values(leaf: Any) -> list[str] | None:
    if isinstance(leaf, list) and leaf and all(isinstance(v, str) for v in leaf):
        return leaf
    return None


def build_matcher(rules: Sequence[Rule]) -> Match:
    index: dict[tuple[str, str, str], list[tuple[str, CompiledPattern | None]]] = {}
    # Rules share conditions (`code != 200`, a user list): compiled once, evaluated once a trace.
    compiled_by_source: dict[str, CompiledPattern] = {}
    for rule_id, pattern in rules:
        for branch in _branches(pattern):
            services = _plain_values(branch.get("service_type"))
            names = _plain_values(branch.get("trace_name")) if services else None
            types = _plain_values(branch.get("resource_type")) if names else None
            ratings = None if services else _plain_values(branch.get("trace_rating"))
            decided = {"service_type"} if services else set()
            decided |= {"trace_name"} if names else set()
            decided |= {"resource_type"} if types else set()
            decided |= {"trace_rating"} if ratings else set()
            rest = {k: v for k, v in branch.items() if k not in decided}
            compiled = None
            if rest:
                source = json.dumps(rest, sort_keys=True)
                compiled = compiled_by_source.get(source)
                if compiled is None:
                    compiled = compiled_by_source[source] = compile_pattern(rest)
            keys: list[tuple[str, str, str]]
            if services:
                keys = [
                    (s, t, n) for s in services for t in (types or [ANY]) for n in (names or [ANY])
                ]
            else:
                keys = [(RATING, r, ANY) for r in ratings] if ratings else [(ANY, ANY, ANY)]
            for key in keys:
                index.setdefault(key, []).append((rule_id, compiled))
    empty: list[tuple[str, CompiledPattern | None]] = []
    wildcard = index.get((ANY, ANY, ANY), empty)

    def match(trace: Mapping[str, Any]) -> list[str]:
        service = trace.get("service_type")
        name = trace.get("trace_name")
        found: list[str] = []
        seen: set[str] = set()
        verdicts: dict[int, bool] = {}
        for bucket in (
            index.get((service, trace.get("resource_type"), name), empty),  # type: ignore[arg-type]
            index.get((service, ANY, name), empty),  # type: ignore[arg-type]
            index.get((service, ANY, ANY), empty),  # type: ignore[arg-type]
            index.get((RATING, trace.get("trace_rating"), ANY), empty),  # type: ignore[arg-type]
            wildcard,
        ):
            for rule_id, compiled in bucket:
                if rule_id in seen:
                    continue
                if compiled is not None:
                    verdict = verdicts.get(id(compiled))
                    if verdict is None:
                        verdict = verdicts[id(compiled)] = compiled.matches(trace)
                    if not verdict:
                        continue
                seen.add(rule_id)
                found.append(rule_id)
        return found

    return match


def moto_matcher(rules: Sequence[Rule]) -> Match:
    loaded = [(rule_id, EventPattern.load(json.dumps(p))) for rule_id, p in rules]

    def match(trace: Mapping[str, Any]) -> list[str]:
        return [rule_id for rule_id, p in loaded if p.matches_event(dict(trace))]  # type: ignore[arg-type]

    return match


def _load(spec: str) -> Callable[[Sequence[Rule]], Match]:
    module, _, name = spec.partition(":")
    builder: Callable[[Sequence[Rule]], Match] = getattr(importlib.import_module(module), name)
    return builder


# -- the run --------------------------------------------------------------------------------------
def _rate(
    match: Match, traces: Sequence[Mapping[str, Any]], budget_s: float
) -> tuple[float, list[set[str]]]:
    results: list[set[str]] = []
    start = time.process_time()
    for trace in traces:
        results.append(set(match(trace)))
        if budget_s and len(results) % 200 == 0 and time.process_time() - start > budget_s:
            break
    elapsed = max(time.process_time() - start, 1e-9)
    return len(results) / elapsed, results


def run(
    traces: int,
    counts: Sequence[int],
    seed: int,
    moto_budget_s: float,
    builder: Callable[[Sequence[Rule]], Match],
) -> dict[str, Any]:
    rng = random.Random(seed)
    vocabulary = build_vocabulary(rng)
    factory = TraceFactory(rng, vocabulary)
    stored = factory.traces(recent_times(rng, traces, NOW_MS))
    by_count: dict[str, Any] = {}
    mismatches = 0
    for count in counts:
        rules = make_rules(random.Random(seed + count), vocabulary, count)
        ours_rate, ours = _rate(builder(rules), stored, 0)
        moto_rate, theirs = _rate(moto_matcher(rules), stored, moto_budget_s)
        mismatches += sum(1 for a, b in zip(ours, theirs, strict=False) if a != b)
        by_count[str(count)] = {
            "ours_traces_per_s": round(ours_rate),
            "moto_traces_per_s": round(moto_rate),
            "ratio": round(ours_rate / moto_rate, 1),
            "moto_traces": len(theirs),
            "matches_per_trace": round(sum(len(r) for r in ours) / len(ours), 3),
        }
        progress(f"{count} notifications: {by_count[str(count)]}")
    meets = all(
        by_count[c]["ours_traces_per_s"] >= target for c, target in TARGETS.items() if c in by_count
    )
    return {
        "bench": "matching",
        "traces": traces,
        "by_notifications": by_count,
        "targets_traces_per_s": TARGETS,
        "meets_targets": meets,
        "mismatches": mismatches,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--counts", default=",".join(map(str, COUNTS)))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--moto-budget", type=float, default=5.0, help="CPU s per count for moto")
    parser.add_argument(
        "--matcher", default="bench.matching:build_matcher", help="module:function building ours"
    )
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    emit(run(args.traces, counts, args.seed, args.moto_budget, _load(args.matcher)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
