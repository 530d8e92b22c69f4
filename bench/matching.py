"""Notification matching throughput of the product: traces/s on one core for 1, 10, 100 and
1,000 notifications, next to moto's EventBridge matcher (moto.events.models.EventPattern) on the
same rules and traces in the same run.

Traces: 10,000 synthetic CTS traces (bench.common.TraceFactory: skewed services, operations,
users; 5 % data traces), each given a project.

Notifications: CreateNotification bodies of realistic shape, created through the product's
NotificationService over a MemoryControlTable (so every body is parsed and validated as the API
does): 1 to 3 services with 1 to 5 operations each (grouped by resource type as the console
does), a user list on a third of them (1 or 2 groups, 1 to 8 users), a filter on a quarter
(`code != 200`, `api_version = v3`, `trace_type = ApiCall`, `trace_rating != normal`, AND or
OR), on some an extra EventBridge `pattern` (prefix, cidr, numeric, anything-but, wildcard); one
in twenty is `complete` (every operation), most of those with a `trace_rating` filter. Every
notification names an SNS topic, so it is created enabled.

Projects: a project holds at most 100 notifications (SPEC, CTS.1204), and the benchmark keeps
the product's limit rather than lifting it. 1, 10 and 100 notifications live in one project
and every trace belongs to it; 1,000 notifications are 10 projects of 100 and the traces are
spread over them round robin, so each trace meets its own project's 100 rules (as in
production, where a trace only ever meets its project's notifications). Because that is
cheaper per trace than 1,000 rules in one project, the 1,000 entry also reports
`one_project_traces_per_s`: the same 1,000 notifications copied into one project through the
store (NotificationStore.put and its notification set, which do not check the quota), every
trace in it — the worst case the index has to carry, shown next to the figure, not instead.

Ours: the product's `NotificationMatcher(store, clock).matches(project_id, trace)`
(chalicelib/notification_rules.py) with a fixed clock, after a warm-up that loads and compiles
every project's rules. moto: each notification's named parts as the product compiles them
(`rule_patterns`), each loaded as a moto EventPattern, ANDed; every rule of the trace's project
on every trace, which is what moto's events backend does for the rules of one bus. Times are
CPU time (time.process_time) of this single-threaded process, each timed phase after a
gc.collect() (moto's phase leaves garbage that would otherwise be collected during ours); moto
runs on a prefix of the traces when it would take longer than its budget, and its rate is over
the traces it saw.
`mismatches` counts traces on which the two disagree (over the traces both saw; must be 0).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from moto.events.models import EventPattern  # noqa: E402

from bench.common import (  # noqa: E402
    DEFAULT_SEED,
    DOMAIN,
    NOW_MS,
    REGION,
    Operation,
    TraceFactory,
    Vocabulary,
    build_vocabulary,
    emit,
    progress,
    recent_times,
)
from chalicelib import notification_model as nm  # noqa: E402
from chalicelib.clock import FixedClock  # noqa: E402
from chalicelib.control import MemoryControlTable  # noqa: E402
from chalicelib.notification_model import Notification  # noqa: E402
from chalicelib.notification_rules import NotificationMatcher, rule_patterns  # noqa: E402
from chalicelib.notifications import NotificationService, NotificationStore  # noqa: E402
from chalicelib.projects import ProjectRegistry  # noqa: E402

TARGETS = {"100": 50_000, "1000": 20_000}
COUNTS = (1, 10, 100, 1000)
PER_PROJECT = nm.MAX_NOTIFICATIONS
TOPIC = f"arn:aws:sns:{REGION}:{DOMAIN}:bench-alerts"
ONE_PROJECT = "bench-one"

Match = Callable[[str, Mapping[str, Any]], set[str]]


# -- the notifications ---------------------------------------------------------------------------
def make_bodies(rng: random.Random, vocabulary: Vocabulary, count: int) -> list[dict[str, Any]]:
    """`count` CreateNotification bodies of realistic shape (see the module docstring)."""
    by_service: dict[str, list[Operation]] = {}
    for op in vocabulary.operations:
        by_service.setdefault(op.service_type, []).append(op)
    services = sorted(by_service)
    # Rules favour the busy services a little, as people watch what they use.
    weights = [len(by_service[s]) for s in services]
    users = [u["name"] for u in vocabulary.users]
    bodies: list[dict[str, Any]] = []
    for n in range(count):
        body: dict[str, Any] = {"notification_name": f"n{n:04d}", "topic_id": TOPIC}
        complete = rng.random() < 0.05
        if complete:
            body["operation_type"] = nm.COMPLETE
        else:
            body["operation_type"] = nm.CUSTOMIZED
            body["operations"] = _operations(rng, by_service, services, weights)
        if rng.random() < 1 / 3:
            picked = rng.sample(users, rng.randint(1, 8))
            half = rng.randint(1, len(picked) - 1) if len(picked) > 1 and rng.random() < 0.3 else 0
            groups = [picked[:half], picked[half:]] if half else [picked]
            body["notify_user_list"] = [
                {"user_group": f"group{g}", "user_list": names} for g, names in enumerate(groups)
            ]
        if complete and rng.random() < 0.7:
            # `complete` with `trace_rating = incident` (or warning): the usual alarm
            rating = rng.choice(("incident", "warning"))
            body["filter"] = _filter("AND", [f"trace_rating = {rating}"])
        elif rng.random() < 0.25 or complete:
            body["filter"] = _random_filter(rng)
        if rng.random() < 0.15:
            body["pattern"] = rng.choice(
                [
                    {"source_ip": [{"cidr": "10.0.0.0/8"}]},
                    {"total_time": [{"numeric": [">", 1000]}]},
                    {"resource_name": [{"prefix": "server-"}]},
                    {"user_agent": [{"wildcard": "*Linux*"}]},
                    {"trace_type": [{"anything-but": ["SystemAction"]}]},
                ]
            )
        bodies.append(body)
    return bodies


def _operations(
    rng: random.Random,
    by_service: dict[str, list[Operation]],
    services: list[str],
    weights: list[int],
) -> list[dict[str, Any]]:
    chosen = set(rng.choices(services, weights, k=rng.randint(1, 3)))
    out: list[dict[str, Any]] = []
    for service in sorted(chosen):
        ops = rng.sample(by_service[service], min(len(by_service[service]), rng.randint(1, 5)))
        by_type: dict[str, list[str]] = {}
        for op in ops:
            by_type.setdefault(op.resource_type, []).append(op.trace_name)
        out.extend(
            {"service_type": service, "resource_type": rt, "trace_names": sorted(names)}
            for rt, names in sorted(by_type.items())
        )
    return out


def _filter(condition: str, rules: list[str]) -> dict[str, Any]:
    return {"is_support_filter": True, "condition": condition, "rule": rules}


def _random_filter(rng: random.Random) -> dict[str, Any]:
    rules = rng.sample(
        ["code != 200", "api_version = v3", "trace_type = ApiCall", "trace_rating != normal"],
        rng.randint(1, 2),
    )
    return _filter(rng.choice(("AND", "OR")) if len(rules) == 2 else "AND", rules)


# -- the product: notifications created through the service, matched by the matcher -------------
@dataclass
class Product:
    store: NotificationStore
    service: NotificationService
    clock: FixedClock

    @classmethod
    def new(cls) -> Product:
        table = MemoryControlTable()
        clock = FixedClock(NOW_MS)
        store = NotificationStore(table)
        service = NotificationService(store, ProjectRegistry(table, clock), clock)
        return cls(store, service, clock)

    def create(self, project_id: str, bodies: Sequence[dict[str, Any]]) -> None:
        self.service.projects.register(project_id, DOMAIN)
        for body in bodies:
            self.service.create_notification(project_id, body)

    def copy_into(self, project_id: str, notifications: Sequence[Notification]) -> None:
        """The notifications in one project, past the quota: the store does not check it."""
        current = self.store.members(project_id)
        for i, n in enumerate(notifications):
            self.store.put(
                Notification(**{**vars(n), "project_id": project_id, "notification_id": f"c{i}"})
            )
        members = {f"c{i}": f"{n.notification_name}_{i}" for i, n in enumerate(notifications)}
        assert self.store.save_set(project_id, current, members)

    def matcher(self, projects: Sequence[str]) -> Match:
        matcher = NotificationMatcher(self.store, self.clock)
        for project_id in projects:
            matcher.index(project_id)  # warm-up: load and compile every project's rules

        def match(project_id: str, trace: Mapping[str, Any]) -> set[str]:
            return {t.notification_id for t in matcher.matches(project_id, trace)}

        return match

    def notifications(self, project_id: str) -> list[Notification]:
        return self.store.load(project_id)[1]


def moto_matcher(by_project: Mapping[str, Sequence[Notification]]) -> Match:
    """Every enabled notification's parts (as the product compiles them), as moto EventPatterns,
    ANDed; every rule of the trace's project on every trace."""
    loaded = {
        project_id: [
            (n.notification_id, [EventPattern.load(json.dumps(p)) for _, p in rule_patterns(n)])
            for n in notifications
            if n.enabled
        ]
        for project_id, notifications in by_project.items()
    }

    def match(project_id: str, trace: Mapping[str, Any]) -> set[str]:
        event = dict(trace)
        return {
            notification_id
            for notification_id, parts in loaded[project_id]
            if all(p.matches_event(event) for p in parts)  # type: ignore[arg-type]
        }

    return match


# -- the run --------------------------------------------------------------------------------------
def _rate(
    match: Match, work: Sequence[tuple[str, Mapping[str, Any]]], budget_s: float
) -> tuple[float, list[set[str]]]:
    results: list[set[str]] = []
    gc.collect()  # what the previous phase left behind is not this phase's cost
    start = time.process_time()
    for project_id, trace in work:
        results.append(match(project_id, trace))
        if budget_s and len(results) % 200 == 0 and time.process_time() - start > budget_s:
            break
    elapsed = max(time.process_time() - start, 1e-9)
    return len(results) / elapsed, results


def _mismatches(ours: Sequence[set[str]], theirs: Sequence[set[str]]) -> int:
    return sum(1 for a, b in zip(ours, theirs, strict=False) if a != b)


def run(traces: int, counts: Sequence[int], seed: int, moto_budget_s: float) -> dict[str, Any]:
    rng = random.Random(seed)
    vocabulary = build_vocabulary(rng)
    factory = TraceFactory(rng, vocabulary)
    stored = factory.traces(recent_times(rng, traces, NOW_MS))
    by_count: dict[str, Any] = {}
    mismatches = 0
    for count in counts:
        product = Product.new()
        bodies = make_bodies(random.Random(seed + count), vocabulary, count)
        projects = [f"bench-p{i}" for i in range((count + PER_PROJECT - 1) // PER_PROJECT)]
        for i, project_id in enumerate(projects):
            product.create(project_id, bodies[i * PER_PROJECT : (i + 1) * PER_PROJECT])
        by_project = {p: product.notifications(p) for p in projects}
        work = [(projects[i % len(projects)], t) for i, t in enumerate(stored)]
        ours_rate, ours = _rate(product.matcher(projects), work, 0)
        moto_rate, theirs = _rate(moto_matcher(by_project), work, moto_budget_s)
        mismatches += _mismatches(ours, theirs)
        figures: dict[str, Any] = {
            "ours_traces_per_s": round(ours_rate),
            "moto_traces_per_s": round(moto_rate),
            "ratio": round(ours_rate / moto_rate, 1),
            "projects": len(projects),
            "moto_traces": len(theirs),
            "matches_per_trace": round(sum(len(r) for r in ours) / len(ours), 3),
        }
        if len(projects) > 1:
            everything = [n for p in projects for n in by_project[p]]
            product.copy_into(ONE_PROJECT, everything)
            one_work = [(ONE_PROJECT, t) for t in stored]
            one_rate, one = _rate(product.matcher([ONE_PROJECT]), one_work, 0)
            moto_one_rate, moto_one = _rate(
                moto_matcher({ONE_PROJECT: product.notifications(ONE_PROJECT)}),
                one_work,
                moto_budget_s,
            )
            mismatches += _mismatches(one, moto_one)
            figures["one_project_traces_per_s"] = round(one_rate)
            figures["one_project_moto_traces_per_s"] = round(moto_one_rate)
            figures["one_project_ratio"] = round(one_rate / moto_one_rate, 1)
            figures["one_project_matches_per_trace"] = round(sum(len(r) for r in one) / len(one), 3)
        by_count[str(count)] = figures
        progress(f"{count} notifications: {figures}")
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
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    emit(run(args.traces, counts, args.seed, args.moto_budget))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
