"""Key event notifications (SPEC 7): the rules of the notification bodies, and a notification's
stored and wire forms.

Bodies are the official SDK's models: `CreateNotificationRequestBody`,
`UpdateNotificationRequestBody` (with `Operations`, `NotificationUsers`, `Filter`); the answer is
`NotificationsResponseBody`. As for trackers, every rule names the field it refuses
(`operations[3].trace_names[0]`), unknown fields are refused rather than dropped, and a JSON
`null` means "not given".

Decisions where the SDK and the user guide are silent (docs/ARCHITECTURE.md "Notifications"):

* `notification_type` follows `topic_id`: an Amazon SNS topic ARN is `smn`, an AWS Lambda function
  ARN is `fun`. Huawei URNs (`urn:smn:...`) are refused: OpenCTS delivers only through SNS and
  Lambda. A notification without a topic is `smn` (the console's default kind).
* A notification is created `enabled` when it names a topic and `disabled` otherwise; an update
  replaces the whole notification (PUT), and `status: enabled` needs a `topic_id`.
* Names are unique within a project (CTS.1201).
* Traces carry no IAM user group, so `notify_user_list` matches by user name (`user.name`): the
  group names where the users were picked (as in the console, which selects users inside one
  group) and each entry must list its users. At most 10 entries, distinct groups, 50 users.
* `operation_type: complete` takes no `operations` (every operation matches); the user list,
  the filter and the pattern still narrow it. `customized` needs at least one operation.
* An operation is one trace name: at most 1,000 trace names over at most 100 service types.
* Filter values follow the SDK's `Filter.rule` rules: `api_version` 1-64 of letters, digits, `_`,
  `-`, `.`; `code` 1-256 characters; `trace_rating` normal, warning or incident; `trace_type`
  ConsoleAction, ApiCall or SystemAction; `resource_id` 1-350 characters; `resource_name` 1-256.
  A `!=` rule also matches a trace that lacks the field (a trace without a resource name is not
  named X). Under AND, rules on one field that can never hold together are refused.
* `pattern` (OpenCTS extension) is an EventBridge event pattern over the trace JSON, given as a
  JSON object or as a string holding one (as EventBridge's `EventPattern`); it is stored and
  answered as an object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from chalicelib import pattern as eb
from chalicelib.errors import CtsError, malformed_body
from chalicelib.model import SERVICE_TYPE_RE, TRACE_NAME_RE

SMN = "smn"
FUN = "fun"
NOTIFICATION_TYPES = (SMN, FUN)
ENABLED = "enabled"
DISABLED = "disabled"
STATUSES = (ENABLED, DISABLED)
COMPLETE = "complete"
CUSTOMIZED = "customized"
OPERATION_TYPES = (COMPLETE, CUSTOMIZED)
AND = "AND"
OR = "OR"
AGENCY_NAME = "cts_admin_trust"

MAX_NOTIFICATIONS = 100
MAX_OPERATIONS = 1000
MAX_SERVICES = 100
MAX_USER_GROUPS = 10
MAX_USERS = 50
MAX_FILTER_RULES = 6
MAX_USER_NAME = 64
MAX_RESOURCE_TYPE = 128

CREATE_FIELDS = frozenset(
    {
        "notification_name",
        "operation_type",
        "agency_name",
        "operations",
        "notify_user_list",
        "topic_id",
        "filter",
        "pattern",
    }
)
UPDATE_FIELDS = CREATE_FIELDS | {"status", "notification_id"}
OPERATION_FIELDS = frozenset({"service_type", "resource_type", "trace_names"})
USER_FIELDS = frozenset({"user_group", "user_list"})
FILTER_FIELDS = frozenset({"condition", "is_support_filter", "rule"})

NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
NOTIFICATION_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
SNS_TOPIC_RE = re.compile(
    r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$"
)
LAMBDA_FUNCTION_RE = re.compile(
    r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}"
    r"(:(\$LATEST|[A-Za-z0-9_-]{1,128}))?$"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_RULE_RE = re.compile(r"^\s*([a-z_]+)\s*(!=|=)\s*(.*?)\s*$", re.S)
_API_VERSION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _length_rule(low: int, high: int) -> Any:
    def check(value: str) -> str | None:
        if not low <= len(value) <= high or _CONTROL_RE.search(value):
            return f"must be {low}-{high} printable characters"
        return None

    return check


def _enum_rule(*allowed: str) -> Any:
    def check(value: str) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}"

    return check


def _api_version(value: str) -> str | None:
    return None if _API_VERSION_RE.match(value) else "must be 1-64 of letters, digits, _ - ."


# The filter fields and the rule each value follows (the SDK's Filter.rule documentation).
FILTER_VALUE_RULES: dict[str, Any] = {
    "api_version": _api_version,
    "code": _length_rule(1, 256),
    "trace_rating": _enum_rule("normal", "warning", "incident"),
    "trace_type": _enum_rule("ConsoleAction", "ApiCall", "SystemAction"),
    "resource_id": _length_rule(1, 350),
    "resource_name": _length_rule(1, 256),
}


# -- error codes (docs/ARCHITECTURE.md "Error codes") ----------------------------------------
def notification_exists(name: str) -> CtsError:
    return CtsError(409, "CTS.1201", f"Notification '{name}' already exists in this project")


def notification_not_found(notification_id: str) -> CtsError:
    return CtsError(404, "CTS.1202", f"Notification '{notification_id}' does not exist")


def invalid_field(name: str, why: str) -> CtsError:
    return CtsError(400, "CTS.1203", f"Invalid field '{name}': {why}")


def notification_quota_exceeded() -> CtsError:
    return CtsError(
        400, "CTS.1204", f"At most {MAX_NOTIFICATIONS} key event notifications per project"
    )


def invalid_pattern(why: str) -> CtsError:
    return CtsError(400, "CTS.1205", f"Invalid event pattern: {why}")


def contradictory_filter(field_name: str) -> CtsError:
    return CtsError(
        400,
        "CTS.1206",
        f"Filter rules on '{field_name}' contradict each other under AND: the notification "
        "could never match; use OR or drop a rule",
    )


def concurrent_change() -> CtsError:
    return CtsError(
        409, "CTS.1207", "The project's notifications changed while saving; retry the request"
    )


# -- the notification ------------------------------------------------------------------------
@dataclass(frozen=True)
class Operation:
    service_type: str
    resource_type: str
    trace_names: tuple[str, ...]

    def body(self) -> dict[str, Any]:
        return {
            "service_type": self.service_type,
            "resource_type": self.resource_type,
            "trace_names": list(self.trace_names),
        }


@dataclass(frozen=True)
class UserGroup:
    user_group: str
    user_list: tuple[str, ...]

    def body(self) -> dict[str, Any]:
        return {"user_group": self.user_group, "user_list": list(self.user_list)}


@dataclass(frozen=True)
class FilterRule:
    field: str
    negated: bool  # "!=" rather than "="
    value: str

    def text(self) -> str:
        return f"{self.field} {'!=' if self.negated else '='} {self.value}"


@dataclass(frozen=True)
class Filter:
    is_support_filter: bool
    condition: str
    rules: tuple[FilterRule, ...]

    @property
    def applies(self) -> bool:
        return self.is_support_filter and bool(self.rules)

    def body(self) -> dict[str, Any]:
        return {
            "condition": self.condition,
            "is_support_filter": self.is_support_filter,
            "rule": [r.text() for r in self.rules],
        }


@dataclass(frozen=True)
class Notification:
    project_id: str
    notification_id: str
    notification_name: str
    operation_type: str
    status: str
    create_time: int
    operations: tuple[Operation, ...] = ()
    notify_user_list: tuple[UserGroup, ...] = ()
    topic_id: str = ""
    filter: Filter | None = None
    pattern: Mapping[str, Any] | None = None
    agency_name: str = ""

    @property
    def notification_type(self) -> str:
        return notification_type_of(self.topic_id)

    @property
    def enabled(self) -> bool:
        return self.status == ENABLED

    def user_names(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for group in self.notify_user_list:
            for name in group.user_list:
                seen.setdefault(name, None)
        return tuple(seen)

    def body(self) -> dict[str, Any]:
        """NotificationsResponseBody (also CreateNotificationResponse and UpdateNotification-
        Response), plus `pattern` when one is set."""
        out: dict[str, Any] = {
            "notification_id": self.notification_id,
            "notification_name": self.notification_name,
            "notification_type": self.notification_type,
            "operation_type": self.operation_type,
            "operations": [o.body() for o in self.operations],
            "notify_user_list": [u.body() for u in self.notify_user_list],
            "status": self.status,
            "topic_id": self.topic_id,
            "project_id": self.project_id,
            "create_time": self.create_time,
        }
        if self.agency_name:
            out["agency_name"] = self.agency_name
        if self.filter is not None:
            out["filter"] = self.filter.body()
        if self.pattern is not None:
            out["pattern"] = dict(self.pattern)
        return out

    # The stored form is the wire form plus the key: one item per notification.
    def item(self) -> dict[str, Any]:
        pk, sk = notification_key(self.project_id, self.notification_id)
        out = self.body()
        out.pop("notification_type")
        if "pattern" in out:
            # Stored as text: DynamoDB would turn the pattern's numbers into Decimals and
            # refuses empty strings inside lists in some SDKs; text keeps it exactly as given.
            out["pattern"] = json.dumps(out["pattern"], separators=(",", ":"))
        return {"pk": pk, "sk": sk, **out}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Notification:
        raw_filter = item.get("filter")
        pattern_text = item.get("pattern")
        return cls(
            project_id=str(item["project_id"]),
            notification_id=str(item["notification_id"]),
            notification_name=str(item["notification_name"]),
            operation_type=str(item["operation_type"]),
            status=str(item["status"]),
            create_time=int(item["create_time"]),
            operations=tuple(
                Operation(
                    str(o["service_type"]),
                    str(o["resource_type"]),
                    tuple(str(t) for t in o["trace_names"]),
                )
                for o in item.get("operations") or ()
            ),
            notify_user_list=tuple(
                UserGroup(str(u["user_group"]), tuple(str(n) for n in u["user_list"]))
                for u in item.get("notify_user_list") or ()
            ),
            topic_id=str(item.get("topic_id") or ""),
            filter=(
                Filter(
                    bool(raw_filter["is_support_filter"]),
                    str(raw_filter["condition"]),
                    tuple(_parse_rule(str(r), "filter.rule") for r in raw_filter["rule"]),
                )
                if raw_filter
                else None
            ),
            pattern=json.loads(pattern_text) if pattern_text else None,
            agency_name=str(item.get("agency_name") or ""),
        )


def notification_key(project_id: str, notification_id: str) -> tuple[str, str]:
    return f"NOTIFICATION#{project_id}", notification_id


def notification_type_of(topic_id: str) -> str:
    return FUN if LAMBDA_FUNCTION_RE.match(topic_id or "") else SMN


# -- parsing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class NotificationSpec:
    """A parsed Create/UpdateNotification body, before it gets its id and time."""

    notification_name: str
    operation_type: str
    operations: tuple[Operation, ...]
    notify_user_list: tuple[UserGroup, ...]
    topic_id: str
    filter: Filter | None
    pattern: Mapping[str, Any] | None
    agency_name: str
    status: str | None = None
    notification_id: str | None = None

    def notification(
        self, project_id: str, notification_id: str, create_time: int, status: str
    ) -> Notification:
        return Notification(
            project_id=project_id,
            notification_id=notification_id,
            notification_name=self.notification_name,
            operation_type=self.operation_type,
            status=status,
            create_time=create_time,
            operations=self.operations,
            notify_user_list=self.notify_user_list,
            topic_id=self.topic_id,
            filter=self.filter,
            pattern=self.pattern,
            agency_name=self.agency_name,
        )


def body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise malformed_body("expected a JSON object")
    return {k: v for k, v in body.items() if v is not None}


def _only(obj: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            name = f"{where}.{key}" if where else str(key)
            raise invalid_field(name[:128], "is not a field of this body")


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise invalid_field(name, "must be a string")
    return value


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid_field(name, "must be a list")
    return value


def parse_create(body: Any) -> NotificationSpec:
    """A CreateNotificationRequestBody (plus `pattern`)."""
    obj = body_object(body)
    _only(obj, CREATE_FIELDS, "")
    return _parse(obj)


def parse_update(body: Any) -> NotificationSpec:
    """An UpdateNotificationRequestBody (plus `pattern`): `notification_id`, `notification_name`,
    `operation_type` and `status` are required, as in the SDK."""
    obj = body_object(body)
    _only(obj, UPDATE_FIELDS, "")
    if "notification_id" not in obj:
        raise invalid_field("notification_id", "is required")
    notification_id = _string(obj["notification_id"], "notification_id")
    if not NOTIFICATION_ID_RE.match(notification_id):
        raise invalid_field("notification_id", "must be 1-64 of letters, digits and -")
    if "status" not in obj:
        raise invalid_field("status", "is required (enabled or disabled)")
    status = obj["status"]
    if status not in STATUSES:
        raise invalid_field("status", "must be enabled or disabled")
    spec = _parse(obj)
    if status == ENABLED and not spec.topic_id:
        raise invalid_field("topic_id", "is required when status is enabled")
    return replace(spec, status=status, notification_id=notification_id)


def _parse(obj: Mapping[str, Any]) -> NotificationSpec:
    if "notification_name" not in obj:
        raise invalid_field("notification_name", "is required")
    name = _string(obj["notification_name"], "notification_name")
    if not NAME_RE.match(name):
        raise invalid_field(
            "notification_name", "must be 1-64 characters: letters, digits and underscores"
        )
    if "operation_type" not in obj:
        raise invalid_field("operation_type", "is required (complete or customized)")
    operation_type = obj["operation_type"]
    if operation_type not in OPERATION_TYPES:
        raise invalid_field("operation_type", "must be complete or customized")
    operations = parse_operations(obj.get("operations") or [])
    if operation_type == COMPLETE and operations:
        raise invalid_field(
            "operations", "must be empty when operation_type is complete (every operation)"
        )
    if operation_type == CUSTOMIZED and not operations:
        raise invalid_field(
            "operations", "must list at least one operation when operation_type is customized"
        )
    agency = obj.get("agency_name", "")
    if agency not in ("", AGENCY_NAME):
        raise invalid_field("agency_name", f"must be {AGENCY_NAME}")
    return NotificationSpec(
        notification_name=name,
        operation_type=operation_type,
        operations=operations,
        notify_user_list=parse_users(obj.get("notify_user_list") or []),
        topic_id=parse_topic(obj.get("topic_id", "")),
        filter=parse_filter(obj["filter"]) if "filter" in obj else None,
        pattern=parse_pattern(obj["pattern"]) if "pattern" in obj else None,
        agency_name=agency,
    )


def parse_topic(value: Any) -> str:
    topic = _string(value, "topic_id")
    if not topic:
        return ""
    if SNS_TOPIC_RE.match(topic) or LAMBDA_FUNCTION_RE.match(topic):
        return topic
    if topic.startswith("urn:"):
        why = (
            "OpenCTS delivers through Amazon SNS or AWS Lambda: give an SNS topic ARN "
            "(type smn) or a Lambda function ARN (type fun) instead of a Huawei URN"
        )
    else:
        why = (
            "must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>) or a Lambda "
            "function ARN (arn:aws:lambda:<region>:<account>:function:<name>)"
        )
    raise invalid_field("topic_id", why)


def parse_operations(value: Any) -> tuple[Operation, ...]:
    items = _list(value, "operations")
    out: list[Operation] = []
    services: set[str] = set()
    total = 0
    for i, given in enumerate(items):
        where = f"operations[{i}]"
        if not isinstance(given, dict):
            raise invalid_field(where, "must be an object")
        raw = {k: v for k, v in given.items() if v is not None}
        _only(raw, OPERATION_FIELDS, where)
        for required in ("service_type", "resource_type", "trace_names"):
            if required not in raw:
                raise invalid_field(f"{where}.{required}", "is required")
        service = _string(raw["service_type"], f"{where}.service_type")
        if not SERVICE_TYPE_RE.match(service):
            raise invalid_field(
                f"{where}.service_type",
                "must start with a letter and be 1-64 of letters, digits, '.', '_' and '-'",
            )
        resource_type = _string(raw["resource_type"], f"{where}.resource_type")
        if not 1 <= len(resource_type) <= MAX_RESOURCE_TYPE or _CONTROL_RE.search(resource_type):
            raise invalid_field(
                f"{where}.resource_type", f"must be 1-{MAX_RESOURCE_TYPE} printable characters"
            )
        names = _list(raw["trace_names"], f"{where}.trace_names")
        if not names:
            raise invalid_field(f"{where}.trace_names", "must list at least one trace name")
        for j, trace_name in enumerate(names):
            if not isinstance(trace_name, str) or not TRACE_NAME_RE.match(trace_name):
                raise invalid_field(
                    f"{where}.trace_names[{j}]",
                    "must start with a letter and be 1-64 of letters, digits, '.', '_' and '-'",
                )
        total += len(names)
        if total > MAX_OPERATIONS:
            raise invalid_field(
                "operations", f"at most {MAX_OPERATIONS} operations (trace names) in all"
            )
        services.add(service)
        if len(services) > MAX_SERVICES:
            raise invalid_field("operations", f"at most {MAX_SERVICES} services")
        out.append(Operation(service, resource_type, tuple(names)))
    return tuple(out)


def parse_users(value: Any) -> tuple[UserGroup, ...]:
    items = _list(value, "notify_user_list")
    if len(items) > MAX_USER_GROUPS:
        raise invalid_field("notify_user_list", f"at most {MAX_USER_GROUPS} user groups")
    out: list[UserGroup] = []
    groups: set[str] = set()
    total = 0
    for i, given in enumerate(items):
        where = f"notify_user_list[{i}]"
        if not isinstance(given, dict):
            raise invalid_field(where, "must be an object")
        raw = {k: v for k, v in given.items() if v is not None}
        _only(raw, USER_FIELDS, where)
        if "user_group" not in raw:
            raise invalid_field(f"{where}.user_group", "is required")
        group = _string(raw["user_group"], f"{where}.user_group")
        if not 1 <= len(group) <= MAX_USER_NAME or _CONTROL_RE.search(group):
            raise invalid_field(
                f"{where}.user_group", f"must be 1-{MAX_USER_NAME} printable characters"
            )
        if group in groups:
            raise invalid_field(f"{where}.user_group", f"'{group}' is listed twice")
        groups.add(group)
        users = _list(raw.get("user_list", []), f"{where}.user_list")
        if not users:
            raise invalid_field(
                f"{where}.user_list",
                "must list the group's users: traces carry user names, not user groups",
            )
        for j, user in enumerate(users):
            if (
                not isinstance(user, str)
                or not 1 <= len(user) <= MAX_USER_NAME
                or _CONTROL_RE.search(user)
            ):
                raise invalid_field(
                    f"{where}.user_list[{j}]", f"must be 1-{MAX_USER_NAME} printable characters"
                )
        total += len(users)
        if total > MAX_USERS:
            raise invalid_field("notify_user_list", f"at most {MAX_USERS} users in all")
        out.append(UserGroup(group, tuple(users)))
    return tuple(out)


def _parse_rule(text: str, where: str) -> FilterRule:
    found = _RULE_RE.match(text)
    if not found:
        raise invalid_field(where, 'must read "<field> = <value>" or "<field> != <value>"')
    name, op, value = found.groups()
    check = FILTER_VALUE_RULES.get(name)
    if check is None:
        raise invalid_field(
            where, f"'{name[:64]}' is not a filter field ({', '.join(FILTER_VALUE_RULES)})"
        )
    why = check(value)
    if why is not None:
        raise invalid_field(where, f"the {name} value {why}")
    return FilterRule(name, op == "!=", value)


def parse_filter(value: Any) -> Filter:
    if not isinstance(value, dict):
        raise invalid_field("filter", "must be an object")
    raw = {k: v for k, v in value.items() if v is not None}
    _only(raw, FILTER_FIELDS, "filter")
    for required in ("is_support_filter", "condition", "rule"):
        if required not in raw:
            raise invalid_field(f"filter.{required}", "is required")
    if not isinstance(raw["is_support_filter"], bool):
        raise invalid_field("filter.is_support_filter", "must be true or false")
    if raw["condition"] not in (AND, OR):
        raise invalid_field("filter.condition", "must be AND or OR")
    texts = _list(raw["rule"], "filter.rule")
    if len(texts) > MAX_FILTER_RULES:
        raise invalid_field("filter.rule", f"at most {MAX_FILTER_RULES} rules")
    if raw["is_support_filter"] and not texts:
        raise invalid_field("filter.rule", "must hold at least one rule when the filter is on")
    rules = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise invalid_field(f"filter.rule[{i}]", "must be a string")
        rules.append(_parse_rule(text, f"filter.rule[{i}]"))
    parsed = Filter(raw["is_support_filter"], raw["condition"], tuple(rules))
    if parsed.applies and parsed.condition == AND:
        for name in {r.field for r in rules}:
            if and_leaf(parsed, name) is None:
                raise contradictory_filter(name)
    return parsed


def and_leaf(filter_: Filter, field_name: str) -> list[Any] | None:
    """The pattern leaf for the AND of a filter's rules on one field; None when they contradict
    (two different required values, or a value both required and excluded)."""
    equal = {r.value for r in filter_.rules if r.field == field_name and not r.negated}
    different = sorted({r.value for r in filter_.rules if r.field == field_name and r.negated})
    if len(equal) > 1:
        return None
    if equal:
        (value,) = equal
        return None if value in different else [value]
    return [{"anything-but": different}, {"exists": False}]


def parse_pattern(value: Any) -> dict[str, Any]:
    """An EventBridge pattern given as an object or as JSON text; validated by pattern.py."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise invalid_pattern(f"the string is not JSON ({e})") from None
    if not isinstance(value, dict):
        raise invalid_pattern("must be a JSON object (or a string holding one)")
    try:
        eb.compile_pattern(value)
    except eb.PatternError as e:
        raise invalid_pattern(str(e)) from None
    return value
