"""The notification matcher: one compiled form for CTS rules and EventBridge patterns, an index
over a project's rules, and a per-container cache that recompiles only when the rules change.

Compiled form. A notification becomes a conjunction of EventBridge patterns over the trace JSON,
each compiled by chalicelib.pattern (one engine, one set of semantics):

* `operations` (customized only): ``{"$or": [{"service_type": [S], "resource_type": [R],
  "trace_name": [T, ...]}, ...]}``, one branch per (service, resource type), without $or when
  there is one branch;
* `users`: ``{"user": {"name": [...]}}`` (traces carry no user group: users match by name);
* `filter`: AND -> one leaf per field (``"f = v"`` -> ``[v]``, ``"f != v"`` -> ``[{"anything-but":
  [v, ...]}, {"exists": false}]``); OR -> ``{"$or": [{f: leaf}, ...]}``;
* `pattern`: the user's own EventBridge pattern.

The parts are kept apart (EventBridge has no AND of two patterns that both use $or), and named,
so a failed match says which part failed: ``"filter: field 'code' value "200" does not match
..."``. A disabled notification is never compiled into the index, and never matches.

Index. Matching cost grows with the candidate rules, not with all rules. A customized rule is
filed under each (service_type, trace_name) of its operations; the lookup plus a set test of
(service_type, resource_type, trace_name) is exactly the operations pattern, evaluated as
EventBridge's own engine does (a state machine on exact values), so the patterns run only for
the other parts. A complete rule whose pattern names top-level `service_type` (and `trace_name`)
by exact values only is filed under them; every other rule is always a candidate. A trace whose
`service_type` or `trace_name` is not a string (only possible in tests) checks every rule.

Cache. `NotificationMatcher` keeps, per project, the index and the version of the project's
notification set (the `#SET` item of chalicelib/notifications.py, whose version moves on every
create, update and delete). Within `ttl_ms` (default 2 s) of the last check it uses the index as
is; after that one GetItem reads the version, and only a changed version reloads (one Query) and
recompiles. A change therefore reaches every container within the TTL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib import notification_model as nm
from chalicelib.clock import Clock
from chalicelib.notification_model import Notification
from chalicelib.notification_types import Target
from chalicelib.pattern import CompiledPattern, PatternError, compile_pattern

logger = logging.getLogger("opencts.notification_rules")

DEFAULT_TTL_MS = 2000
# A complete rule's pattern with more (service_type, trace_name) pairs than this is filed under
# its service types only.
MAX_PAIRS_INDEXED = 1000
DISABLED_REASON = "the notification is disabled: a disabled notification never matches"


# -- building the patterns -------------------------------------------------------------------
def operations_pattern(operations: Iterable[nm.Operation]) -> dict[str, Any]:
    grouped: dict[tuple[str, str], dict[str, None]] = {}
    for op in operations:
        names = grouped.setdefault((op.service_type, op.resource_type), {})
        for name in op.trace_names:
            names.setdefault(name, None)
    branches = [
        {"service_type": [s], "resource_type": [r], "trace_name": list(names)}
        for (s, r), names in grouped.items()
    ]
    return branches[0] if len(branches) == 1 else {"$or": branches}


def users_pattern(user_names: Iterable[str]) -> dict[str, Any]:
    return {"user": {"name": list(user_names)}}


def filter_pattern(filter_: nm.Filter) -> dict[str, Any]:
    def leaf(rule: nm.FilterRule) -> list[Any]:
        if rule.negated:
            return [{"anything-but": [rule.value]}, {"exists": False}]
        return [rule.value]

    if filter_.condition == nm.OR:
        branches = [{r.field: leaf(r)} for r in filter_.rules]
        return branches[0] if len(branches) == 1 else {"$or": branches}
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r.field for r in filter_.rules):
        merged = nm.and_leaf(filter_, name)
        if merged is None:
            raise nm.contradictory_filter(name)
        out[name] = merged
    return out


def rule_patterns(notification: Notification) -> list[tuple[str, dict[str, Any]]]:
    """The named parts of a notification's compiled form, as EventBridge patterns."""
    parts: list[tuple[str, dict[str, Any]]] = []
    if notification.operation_type == nm.CUSTOMIZED:
        parts.append(("operations", operations_pattern(notification.operations)))
    names = notification.user_names()
    if names:
        parts.append(("users", users_pattern(names)))
    if notification.filter is not None and notification.filter.applies:
        parts.append(("filter", filter_pattern(notification.filter)))
    if notification.pattern is not None:
        parts.append(("pattern", dict(notification.pattern)))
    return parts


# -- the compiled rule -----------------------------------------------------------------------
@dataclass(frozen=True)
class CompiledRule:
    notification: Notification
    # (service_type, resource_type, trace_name) of a customized rule; empty for complete.
    operations: frozenset[tuple[str, str, str]]
    parts: tuple[tuple[str, CompiledPattern], ...]
    # The parts the index does not answer (all but operations), and the delivery target.
    residual: tuple[CompiledPattern, ...] = field(init=False, repr=False, compare=False)
    target: Target = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        residual = tuple(p for name, p in self.parts if name != "operations")
        n = self.notification
        target = Target(
            project_id=n.project_id,
            notification_id=n.notification_id,
            notification_name=n.notification_name,
            notification_type=n.notification_type,
            topic_id=n.topic_id,
        )
        object.__setattr__(self, "residual", residual)
        object.__setattr__(self, "target", target)

    def matches(self, trace: Mapping[str, Any]) -> bool:
        """Every part, by the patterns alone (rule testing, replay)."""
        return self.notification.enabled and all(p.matches(trace) for _, p in self.parts)

    def matches_candidate(self, trace: Mapping[str, Any], key: tuple[Any, Any, Any]) -> bool:
        """For a candidate found by the index: the operation set (`key` is the trace's
        service_type, resource_type and trace_name), then the other parts."""
        if self.operations and key not in self.operations:
            return False
        return all(compiled.matches(trace) for compiled in self.residual)

    def explain(self, trace: Mapping[str, Any]) -> str | None:
        """None when the trace matches; otherwise the part and the condition that failed."""
        if not self.notification.enabled:
            return DISABLED_REASON
        for name, compiled in self.parts:
            if name == "operations":
                if not compiled.matches(trace):
                    shown = "/".join(
                        repr(trace.get(k)) if k in trace else "<missing>"
                        for k in ("service_type", "resource_type", "trace_name")
                    )
                    return (
                        f"operations: the trace's service_type/resource_type/trace_name {shown} "
                        f"is not one of the notification's {len(self.operations)} operations"
                    )
                continue
            reason = compiled.explain(trace)
            if reason is not None:
                return f"{name}: {reason}"
        return None


def compile_rule(
    notification: Notification, extra_pattern: Mapping[str, Any] | None = None
) -> CompiledRule:
    """Compiles a notification (and, for rule testing, one more pattern ANDed with it).
    Raises CtsError CTS.1205/CTS.1206 when a part is not a valid pattern."""
    named = rule_patterns(notification)
    if extra_pattern is not None:
        named.append(("pattern", dict(extra_pattern)))
    parts: list[tuple[str, CompiledPattern]] = []
    for name, source in named:
        try:
            # Only the user's pattern keeps EventBridge's 4 KB limit: 1,000 operations or 50
            # users are a valid CTS rule and need more.
            limit = {} if name == "pattern" else {"max_bytes": None}
            parts.append((name, compile_pattern(source, **limit)))
        except PatternError as e:
            raise nm.invalid_pattern(f"{name}: {e}") from None
    operations = frozenset(
        (op.service_type, op.resource_type, t)
        for op in notification.operations
        for t in op.trace_names
    )
    return CompiledRule(notification, operations, tuple(parts))


def pattern_only_rule(pattern: Mapping[str, Any]) -> CompiledRule:
    """A rule of one EventBridge pattern (TestEventPattern): complete, enabled, no CTS part."""
    bare = Notification(
        project_id="",
        notification_id="",
        notification_name="pattern",
        operation_type=nm.COMPLETE,
        status=nm.ENABLED,
        create_time=0,
    )
    return compile_rule(bare, pattern)


# -- the index -------------------------------------------------------------------------------
def _exact_strings(pattern: Mapping[str, Any] | None, name: str) -> list[str] | None:
    """The values of a top-level leaf made of exact strings only; None otherwise."""
    if pattern is None:
        return None
    leaf = pattern.get(name)
    if not isinstance(leaf, list) or not leaf or not all(isinstance(v, str) for v in leaf):
        return None
    return list(dict.fromkeys(leaf))


@dataclass
class RuleIndex:
    """A project's enabled rules, filed so that a trace meets only its candidates."""

    by_operation: dict[tuple[str, str], list[CompiledRule]] = field(default_factory=dict)
    by_service: dict[str, list[CompiledRule]] = field(default_factory=dict)
    always: list[CompiledRule] = field(default_factory=list)
    size: int = 0

    @classmethod
    def build(cls, rules: Iterable[CompiledRule]) -> RuleIndex:
        index = cls()
        for rule in sorted(rules, key=lambda r: r.notification.notification_name):
            if not rule.notification.enabled:
                continue
            index.size += 1
            index._file(rule)
        return index

    def _file(self, rule: CompiledRule) -> None:
        if rule.operations:
            for s, t in dict.fromkeys((s, t) for s, _, t in rule.operations):
                self.by_operation.setdefault((s, t), []).append(rule)
            return
        services = _exact_strings(rule.notification.pattern, "service_type")
        names = _exact_strings(rule.notification.pattern, "trace_name")
        if services and names and len(services) * len(names) <= MAX_PAIRS_INDEXED:
            for s in services:
                for t in names:
                    self.by_operation.setdefault((s, t), []).append(rule)
        elif services:
            for s in services:
                self.by_service.setdefault(s, []).append(rule)
        else:
            self.always.append(rule)

    def candidates(self, trace: Mapping[str, Any]) -> list[CompiledRule]:
        service = trace.get("service_type")
        name = trace.get("trace_name")
        if not isinstance(service, str) or not isinstance(name, str):
            return self.all_rules()
        return [
            *self.by_operation.get((service, name), ()),
            *self.by_service.get(service, ()),
            *self.always,
        ]

    def all_rules(self) -> list[CompiledRule]:
        seen: dict[str, CompiledRule] = {}
        for bucket in (*self.by_operation.values(), *self.by_service.values(), self.always):
            for rule in bucket:
                seen.setdefault(rule.notification.notification_id, rule)
        return list(seen.values())

    def matching(self, trace: Mapping[str, Any]) -> list[CompiledRule]:
        key = (trace.get("service_type"), trace.get("resource_type"), trace.get("trace_name"))
        found = [r for r in self.candidates(trace) if r.matches_candidate(trace, key)]
        if len(found) > 1:
            found.sort(key=lambda r: r.notification.notification_name)
        return found


# -- the matcher -----------------------------------------------------------------------------
class RuleSource(Protocol):
    """Where the matcher reads a project's notifications (chalicelib.notifications.
    NotificationStore)."""

    def version(self, project_id: str) -> int:
        """The version of the project's notification set; 0 when it has none."""
        ...

    def load(self, project_id: str) -> tuple[int, list[Notification]]:
        """The version and the notifications of the project (one read)."""
        ...


@dataclass
class _Cached:
    version: int
    index: RuleIndex
    checked_at: int


class NotificationMatcher:
    """`Matcher` (chalicelib.notification_types) over the notifications in the control table.

    `matches(project_id, trace)` answers the enabled notifications the stored trace matches, as
    delivery `Target`s ordered by notification name. One instance per container."""

    def __init__(self, source: RuleSource, clock: Clock, ttl_ms: int = DEFAULT_TTL_MS) -> None:
        self._source = source
        self._clock = clock
        self._ttl_ms = ttl_ms
        self._cache: dict[str, _Cached] = {}
        self.compilations = 0  # how many times a project's rules were compiled (observability)

    def matches(self, project_id: str, trace: Mapping[str, Any]) -> list[Target]:
        return [rule.target for rule in self.index(project_id).matching(trace)]

    def index(self, project_id: str) -> RuleIndex:
        now = self._clock.now_ms()
        cached = self._cache.get(project_id)
        if cached is not None and now - cached.checked_at < self._ttl_ms:
            return cached.index
        if cached is not None and self._source.version(project_id) == cached.version:
            cached.checked_at = now
            return cached.index
        version, notifications = self._source.load(project_id)
        index = RuleIndex.build(self._compile(notifications))
        self.compilations += 1
        self._cache[project_id] = _Cached(version, index, now)
        return index

    def invalidate(self, project_id: str | None = None) -> None:
        """Forget the compiled rules (all projects when None): the next match reloads them."""
        if project_id is None:
            self._cache.clear()
        else:
            self._cache.pop(project_id, None)

    @staticmethod
    def _compile(notifications: Iterable[Notification]) -> list[CompiledRule]:
        rules = []
        for n in notifications:
            if not n.enabled:
                continue
            try:
                rules.append(compile_rule(n))
            except Exception:
                # A stored rule that no longer compiles must not silence the project's others.
                logger.exception(
                    "notification skipped: it does not compile",
                    extra={"project_id": n.project_id, "notification_id": n.notification_id},
                )
        return rules
