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

Index. Matching cost grows with the candidate rules that survive the keys, not with all rules
(RuleIndex). A customized rule is filed under each (service_type, resource_type, trace_name) of
its operations: the lookup is exactly the operations pattern on string values. A complete rule
whose pattern names top-level `service_type` (and `trace_name`) by exact values only is filed
under them; every other rule is in `always`. Each key's rules are prepared into a bucket: rules
decided by the key alone, rules grouped by their remaining parts, and rules with a user list
filed under each user name. Identical parts (a filter, a user list, a pattern) are one compiled
object per project and are evaluated at most once per trace. A trace whose key fields are
arrays (or not strings), or whose `user` is not an object with a string name, takes a slower
path with the same answers (every rule in full; the user part as a pattern).

Cache. `NotificationMatcher` keeps, per project, the index and the version of the project's
notification set (the `#SET` item of chalicelib/notifications.py, whose version moves on every
create, update and delete). Within `ttl_ms` (default 2 s) of the last check it uses the index as
is; after that one GetItem reads the version, and only a changed version reloads (one Query) and
recompiles. A change therefore reaches every container within the TTL.
"""

from __future__ import annotations

import json
import logging
import operator
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
SharedParts = dict[tuple[bool, str], CompiledPattern]
Group = tuple[tuple[CompiledPattern, ...], tuple["CompiledRule", ...]]


@dataclass(frozen=True)
class CompiledRule:
    notification: Notification
    # (service_type, resource_type, trace_name) of a customized rule; empty for complete.
    operations: frozenset[tuple[str, str, str]]
    parts: tuple[tuple[str, CompiledPattern], ...]
    # The user names of the `users` part (empty: no such part), the parts the index answers
    # neither by its keys nor by user name (the filter and the pattern), and the target.
    user_names: frozenset[str] = field(init=False, repr=False, compare=False)
    others: tuple[CompiledPattern, ...] = field(init=False, repr=False, compare=False)
    users_part: tuple[CompiledPattern, ...] = field(init=False, repr=False, compare=False)
    target: Target = field(init=False, repr=False, compare=False)
    name: str = field(init=False, repr=False, compare=False)  # the order of matches

    def __post_init__(self) -> None:
        n = self.notification
        target = Target(
            project_id=n.project_id,
            notification_id=n.notification_id,
            notification_name=n.notification_name,
            notification_type=n.notification_type,
            topic_id=n.topic_id,
        )
        others = tuple(p for name, p in self.parts if name not in ("operations", "users"))
        users = tuple(p for name, p in self.parts if name == "users")
        names = frozenset(n.user_names()) if users else frozenset()
        object.__setattr__(self, "user_names", names)
        object.__setattr__(self, "others", others)
        object.__setattr__(self, "users_part", users)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "name", n.notification_name)

    def matches(self, trace: Mapping[str, Any]) -> bool:
        """Every part, by the patterns alone (rule testing, replay, unusual traces)."""
        return self.notification.enabled and all(p.matches(trace) for _, p in self.parts)

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
    notification: Notification,
    extra_pattern: Mapping[str, Any] | None = None,
    shared: SharedParts | None = None,
) -> CompiledRule:
    """Compiles a notification (and, for rule testing, one more pattern ANDed with it).
    With `shared`, a part identical to one compiled before (same kind, same JSON) is that same
    CompiledPattern object, so the index evaluates it once per trace whoever uses it.
    Raises CtsError CTS.1205/CTS.1206 when a part is not a valid pattern."""
    named = rule_patterns(notification)
    if extra_pattern is not None:
        named.append(("pattern", dict(extra_pattern)))
    parts: list[tuple[str, CompiledPattern]] = []
    for name, source in named:
        # Only the user's pattern keeps EventBridge's 4 KB limit: 1,000 operations or 50
        # users are a valid CTS rule and need more.
        limited = name == "pattern"
        key = (limited, _canonical(source)) if shared is not None else None
        compiled = shared.get(key) if shared is not None and key is not None else None
        if compiled is None:
            try:
                limit = {} if limited else {"max_bytes": None}
                compiled = compile_pattern(source, **limit)
            except PatternError as e:
                raise nm.invalid_pattern(f"{name}: {e}") from None
            if shared is not None and key is not None:
                shared[key] = compiled
        parts.append((name, compiled))
    operations = frozenset(
        (op.service_type, op.resource_type, t)
        for op in notification.operations
        for t in op.trace_names
    )
    return CompiledRule(notification, operations, tuple(parts))


def _canonical(source: Mapping[str, Any]) -> str:
    try:
        return json.dumps(source, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return f"unshared:{id(source)}"  # not JSON: compile_pattern will say why


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


def _groups(rules: Iterable[tuple[CompiledRule, tuple[CompiledPattern, ...]]]) -> tuple[Group, ...]:
    """Rules grouped by the parts they still need (in first-seen order): a group's parts are
    evaluated once, and a group without parts matches as is."""
    grouped: dict[tuple[int, ...], tuple[tuple[CompiledPattern, ...], list[CompiledRule]]] = {}
    for rule, parts in rules:
        grouped.setdefault(tuple(id(p) for p in parts), (parts, []))[1].append(rule)
    return tuple((parts, tuple(members)) for parts, members in grouped.values())


_NO_GROUPS: tuple[Group, ...] = ()
_ABSENT: Any = object()


class _Bucket:
    """The rules filed under one index key, prepared for matching:

    * `plain`: rules the key alone decides (no user list, no filter, no pattern);
    * `groups`: rules without a user list, grouped by their remaining parts;
    * `by_user`: rules with a user list, under each of their user names, grouped by their
      remaining parts: a trace whose `user.name` is a string meets only the rules listing it;
    * `user_groups`: the same rules with the user part among the parts to evaluate, for a trace
      whose `user` is not a plain object with a string name."""

    __slots__ = ("by_user", "groups", "plain", "rules", "user_groups")

    def __init__(self, rules: list[CompiledRule]) -> None:
        self.rules = rules
        free = [r for r in rules if not r.user_names]
        self.plain = tuple(r for r in free if not r.others)
        self.groups = _groups((r, r.others) for r in free if r.others)
        listed = [r for r in rules if r.user_names]
        per_user: dict[str, list[CompiledRule]] = {}
        for rule in listed:
            for name in rule.user_names:
                per_user.setdefault(name, []).append(rule)
        self.by_user = {
            name: _groups((r, r.others) for r in members) for name, members in per_user.items()
        }
        self.user_groups = _groups((r, r.users_part + r.others) for r in listed)

    def collect(
        self,
        trace: Mapping[str, Any],
        user: Any,
        verdicts: dict[CompiledPattern, bool],
        found: list[CompiledRule],
    ) -> None:
        """Appends the bucket's rules that match `trace`. `user` is the trace's user name when
        it is a string, `_ABSENT` when the trace has no `user`, None otherwise."""
        found.extend(self.plain)
        if user is None:
            extra = self.user_groups
        elif user is _ABSENT or not self.by_user:
            extra = _NO_GROUPS
        else:
            extra = self.by_user.get(user, _NO_GROUPS)
        for groups in (self.groups, extra):
            for parts, members in groups:
                for part in parts:
                    verdict = verdicts.get(part)
                    if verdict is None:
                        verdict = verdicts[part] = part.matches(trace)
                    if not verdict:
                        break
                else:
                    found.extend(members)


def _buckets(filed: dict[Any, list[CompiledRule]]) -> dict[Any, _Bucket]:
    return {key: _Bucket(rules) for key, rules in filed.items()}


_name_of = operator.attrgetter("name")


@dataclass
class RuleIndex:
    """A project's enabled rules, filed so that a trace meets only its candidates.

    A customized rule is filed under each (service_type, resource_type, trace_name) of its
    operations, which decides its operations part; a complete rule under the (service_type,
    trace_name) pairs or the service types its pattern names by exact values, or else in
    `always`. A rule sits in one of the four kinds only, so a trace meets each rule at most
    once: in its own key of each kind."""

    by_operation: dict[tuple[str, str, str], list[CompiledRule]] = field(default_factory=dict)
    by_pair: dict[tuple[str, str], list[CompiledRule]] = field(default_factory=dict)
    by_service: dict[str, list[CompiledRule]] = field(default_factory=dict)
    always: list[CompiledRule] = field(default_factory=list)
    size: int = 0
    _operation_buckets: dict[tuple[str, str, str], _Bucket] = field(
        default_factory=dict, repr=False
    )
    _pair_buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict, repr=False)
    _service_buckets: dict[str, _Bucket] = field(default_factory=dict, repr=False)
    _always_bucket: _Bucket | None = field(default=None, repr=False)

    @classmethod
    def build(cls, rules: Iterable[CompiledRule]) -> RuleIndex:
        index = cls()
        for rule in sorted(rules, key=_name_of):
            if not rule.notification.enabled:
                continue
            index.size += 1
            index._file(rule)
        index._operation_buckets = _buckets(index.by_operation)
        index._pair_buckets = _buckets(index.by_pair)
        index._service_buckets = _buckets(index.by_service)
        index._always_bucket = _Bucket(index.always) if index.always else None
        return index

    def _file(self, rule: CompiledRule) -> None:
        if rule.operations:
            for key in sorted(rule.operations):
                self.by_operation.setdefault(key, []).append(rule)
            return
        services = _exact_strings(rule.notification.pattern, "service_type")
        names = _exact_strings(rule.notification.pattern, "trace_name")
        if services and names and len(services) * len(names) <= MAX_PAIRS_INDEXED:
            for s in services:
                for t in names:
                    self.by_pair.setdefault((s, t), []).append(rule)
        elif services:
            for s in services:
                self.by_service.setdefault(s, []).append(rule)
        else:
            self.always.append(rule)

    def _keyed(self, trace: Mapping[str, Any]) -> list[_Bucket] | None:
        """The trace's buckets; None when a key field is not a string (only in tests and rule
        testing: then every rule is evaluated in full)."""
        service = trace.get("service_type", _ABSENT)
        name = trace.get("trace_name", _ABSENT)
        resource_type = trace.get("resource_type", _ABSENT)
        if type(service) is not str or type(name) is not str:
            return None
        found: list[_Bucket] = []
        if type(resource_type) is str:
            bucket = self._operation_buckets.get((service, resource_type, name))
            if bucket is not None:
                found.append(bucket)
        elif isinstance(resource_type, list | tuple):
            return None
        for bucket in (
            self._pair_buckets.get((service, name)),
            self._service_buckets.get(service),
            self._always_bucket,
        ):
            if bucket is not None:
                found.append(bucket)
        return found

    def candidates(self, trace: Mapping[str, Any]) -> list[CompiledRule]:
        """The rules the index leaves to the patterns for this trace."""
        buckets = self._keyed(trace)
        if buckets is None:
            return self.all_rules()
        return [rule for bucket in buckets for rule in bucket.rules]

    def all_rules(self) -> list[CompiledRule]:
        seen: dict[str, CompiledRule] = {}
        for bucket in (
            *self.by_operation.values(),
            *self.by_pair.values(),
            *self.by_service.values(),
            self.always,
        ):
            for rule in bucket:
                seen.setdefault(rule.notification.notification_id, rule)
        return list(seen.values())

    def matching(self, trace: Mapping[str, Any]) -> list[CompiledRule]:
        buckets = self._keyed(trace)
        if buckets is None:
            found = [r for r in self.all_rules() if r.matches(trace)]
        else:
            found = []
            if buckets:
                user = trace.get("user", _ABSENT)
                if type(user) is dict:
                    user = user.get("name")
                    if type(user) is not str:
                        user = None
                elif user is not _ABSENT:
                    user = None
                verdicts: dict[CompiledPattern, bool] = {}
                for bucket in buckets:
                    bucket.collect(trace, user, verdicts, found)
        if len(found) > 1:
            found.sort(key=_name_of)
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
        shared: SharedParts = {}  # filters, user lists and patterns repeat: compiled once
        for n in notifications:
            if not n.enabled:
                continue
            try:
                rules.append(compile_rule(n, shared=shared))
            except Exception:
                # A stored rule that no longer compiles must not silence the project's others.
                logger.exception(
                    "notification skipped: it does not compile",
                    extra={"project_id": n.project_id, "notification_id": n.notification_id},
                )
        return rules
