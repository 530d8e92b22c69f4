"""Key event notifications (SPEC 7; issue 5 items 1 and 4): Create/Update/List/DeleteNotification
and rule testing, over the control table.

Storage: one item per notification (`NOTIFICATION#<project_id>` / `<notification_id>`) and, under
the same key, the project's notification set (`#SET`: `version` and `members`, id -> name). The
set is the source of truth and the only item written conditionally (ControlTable.put_checked):
every create, update and delete moves its version by one, so two concurrent creates cannot both
take the 100th place or the same name, and the matcher sees every change by reading one item.
A notification item is written before the set names it, and the set forgets an id before its
item is deleted: an item the set does not name (a call that failed half-way) is ignored by every
reader, never half-visible. One Query reads a project's set and notifications together.

Rule testing (`test`): a notification body and/or an EventBridge pattern, against one event (the
answer says which part and condition failed) or against the project's stored traces of a window
(at most the last 7 days). The window is read newest first with chalicelib.query's paging and
filtered in memory by the compiled rule; one call reads at most `MAX_TEST_SCAN` traces, then
answers what it found with a marker to continue, so a call's cost is bounded whatever the rule
matches.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import notification_model as nm
from chalicelib.clock import Clock
from chalicelib.control import ControlTable, Item
from chalicelib.errors import CtsError, invalid_parameter
from chalicelib.model import check_project_id
from chalicelib.notification_model import Notification
from chalicelib.notification_rules import CompiledRule, compile_rule, pattern_only_rule
from chalicelib.params import Params, one_param, only_params
from chalicelib.projects import ProjectRegistry
from chalicelib.query import TraceFinder, make_marker, parse_query

logger = logging.getLogger("opencts.notifications")

SET_SK = "#SET"
MAX_ATTEMPTS = 5
MAX_TEST_SCAN = 1000
TEST_READ_PAGE = 200
DEFAULT_TEST_LIMIT = 10
MAX_TEST_LIMIT = 200
TEST_FIELDS = frozenset(
    {
        "notification",
        "pattern",
        "event",
        "from",
        "to",
        "limit",
        "next",
        "trace_type",
        "tracker_name",
    }
)


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class NotificationSet:
    version: int  # 0: the project has never had a notification (no #SET item)
    members: dict[str, str]  # notification_id -> notification_name

    def id_named(self, name: str) -> str | None:
        for notification_id, member_name in self.members.items():
            if member_name == name:
                return notification_id
        return None


@dataclass
class NotificationStore:
    """The notifications of each project in the control table (also the matcher's RuleSource)."""

    table: ControlTable

    @staticmethod
    def _pk(project_id: str) -> str:
        return nm.notification_key(project_id, "")[0]

    def members(self, project_id: str) -> NotificationSet:
        item = self.table.get(self._pk(project_id), SET_SK)
        return self._set(item)

    @staticmethod
    def _set(item: Item | None) -> NotificationSet:
        if item is None:
            return NotificationSet(0, {})
        members = item.get("members") or {}
        return NotificationSet(int(item["version"]), {str(k): str(v) for k, v in members.items()})

    def save_set(self, project_id: str, current: NotificationSet, members: dict[str, str]) -> bool:
        item = {
            "pk": self._pk(project_id),
            "sk": SET_SK,
            "version": current.version + 1,
            "members": members,
        }
        return self.table.put_checked(item, current.version or None)

    def version(self, project_id: str) -> int:
        return self.members(project_id).version

    def load(self, project_id: str) -> tuple[int, list[Notification]]:
        items = self.table.query(self._pk(project_id))
        found = self._set(next((i for i in items if i["sk"] == SET_SK), None))
        notifications = [
            Notification.from_item(i)
            for i in items
            if i["sk"] != SET_SK and i["sk"] in found.members
        ]
        return found.version, notifications

    def get(self, project_id: str, notification_id: str) -> Notification | None:
        item = self.table.get(*nm.notification_key(project_id, notification_id))
        return Notification.from_item(item) if item else None

    def put(self, notification: Notification) -> None:
        self.table.put(notification.item())

    def delete(self, project_id: str, notification_id: str) -> None:
        self.table.delete(*nm.notification_key(project_id, notification_id))


@dataclass
class NotificationService:
    """Parsed JSON bodies and query parameters in, the SDK response models' dicts out, CtsError
    for every refusal. `finder` serves rule testing over stored traces."""

    store: NotificationStore
    projects: ProjectRegistry
    clock: Clock
    finder: TraceFinder | None = None
    new_id: Callable[[], str] = _new_id

    # -- CreateNotification -------------------------------------------------------------------
    def create_notification(self, project_id: str, body: Any) -> dict[str, Any]:
        """POST /v3/{project_id}/notifications -> CreateNotificationResponse (answer 201).
        Created enabled when it names a topic, disabled otherwise."""
        self.projects.require(project_id)
        spec = nm.parse_create(body)
        notification = spec.notification(
            project_id,
            self.new_id(),
            self.clock.now_ms(),
            nm.ENABLED if spec.topic_id else nm.DISABLED,
        )
        written = False
        for _ in range(MAX_ATTEMPTS):
            current = self.store.members(project_id)
            try:
                if current.id_named(spec.notification_name) is not None:
                    raise nm.notification_exists(spec.notification_name)
                if len(current.members) >= nm.MAX_NOTIFICATIONS:
                    raise nm.notification_quota_exceeded()
            except CtsError:
                if written:
                    self.store.delete(project_id, notification.notification_id)
                raise
            if not written:
                self.store.put(notification)
                written = True
            members = {**current.members, notification.notification_id: spec.notification_name}
            if self.store.save_set(project_id, current, members):
                logger.info(
                    "notification created",
                    extra={
                        "project_id": project_id,
                        "notification_id": notification.notification_id,
                    },
                )
                return notification.body()
        self.store.delete(project_id, notification.notification_id)
        raise nm.concurrent_change()

    # -- UpdateNotification -------------------------------------------------------------------
    def update_notification(self, project_id: str, body: Any) -> dict[str, Any]:
        """PUT /v3/{project_id}/notifications -> UpdateNotificationResponse: the whole
        notification is replaced (its id, project and create_time stay)."""
        check_project_id(project_id)
        spec = nm.parse_update(body)
        assert spec.notification_id is not None
        assert spec.status is not None
        notification_id = spec.notification_id
        previous: Notification | None = None
        for _ in range(MAX_ATTEMPTS):
            current = self.store.members(project_id)
            try:
                if notification_id not in current.members:
                    raise nm.notification_not_found(notification_id)
                holder = current.id_named(spec.notification_name)
                if holder not in (None, notification_id):
                    raise nm.notification_exists(spec.notification_name)
            except CtsError:
                if previous is not None:
                    self.store.put(previous)
                raise
            if previous is None:
                previous = self.store.get(project_id, notification_id)
                if previous is None:
                    raise nm.notification_not_found(notification_id)
            updated = spec.notification(
                project_id, notification_id, previous.create_time, spec.status
            )
            self.store.put(updated)
            members = {**current.members, notification_id: spec.notification_name}
            if self.store.save_set(project_id, current, members):
                logger.info(
                    "notification updated",
                    extra={"project_id": project_id, "notification_id": notification_id},
                )
                return updated.body()
        if previous is not None:
            self.store.put(previous)
        raise nm.concurrent_change()

    # -- ListNotifications / DeleteNotification -----------------------------------------------
    def list_notifications(
        self, project_id: str, notification_type: str, params: Params
    ) -> dict[str, Any]:
        """GET /v3/{project_id}/notifications/{notification_type} -> ListNotificationsResponse,
        by name. An unknown project has none."""
        check_project_id(project_id)
        if notification_type not in nm.NOTIFICATION_TYPES:
            raise invalid_parameter("notification_type", "must be smn or fun")
        only_params(params, ("notification_name",))
        name = one_param(params, "notification_name")
        if name is not None and not nm.NAME_RE.match(name):
            raise invalid_parameter(
                "notification_name", "must be 1-64 characters: letters, digits and underscores"
            )
        _, found = self.store.load(project_id)
        chosen = [
            n
            for n in found
            if n.notification_type == notification_type
            and (name is None or n.notification_name == name)
        ]
        chosen.sort(key=lambda n: n.notification_name)
        return {"notifications": [n.body() for n in chosen]}

    def delete_notifications(self, project_id: str, params: Params) -> dict[str, Any]:
        """DELETE /v3/{project_id}/notifications?notification_id=a,b -> empty (answer 204).
        Every id must exist, or none is deleted."""
        check_project_id(project_id)
        only_params(params, ("notification_id",))
        ids: list[str] = []
        for value in params.get("notification_id") or []:
            ids.extend(part.strip() for part in value.split(","))
        if not ids or not all(ids):
            raise invalid_parameter("notification_id", "name one or more ids, comma-separated")
        for notification_id in ids:
            if not nm.NOTIFICATION_ID_RE.match(notification_id):
                raise invalid_parameter("notification_id", "ids are 1-64 of letters, digits and -")
        doomed = list(dict.fromkeys(ids))
        if len(doomed) > nm.MAX_NOTIFICATIONS:
            raise invalid_parameter(
                "notification_id", f"at most {nm.MAX_NOTIFICATIONS} ids in one call"
            )
        for _ in range(MAX_ATTEMPTS):
            current = self.store.members(project_id)
            for notification_id in doomed:
                if notification_id not in current.members:
                    raise nm.notification_not_found(notification_id)
            members = {k: v for k, v in current.members.items() if k not in doomed}
            if self.store.save_set(project_id, current, members):
                for notification_id in doomed:
                    self.store.delete(project_id, notification_id)
                logger.info(
                    "notifications deleted",
                    extra={"project_id": project_id, "notification_ids": doomed},
                )
                return {}
        raise nm.concurrent_change()

    # -- for ListQuotas and the matcher -------------------------------------------------------
    def count(self, project_id: str) -> int:
        """How many notifications the project has (ListQuotas `smn_notification`)."""
        return len(self.store.members(project_id).members)

    # -- rule testing -------------------------------------------------------------------------
    def test(self, project_id: str, body: Any) -> dict[str, Any]:
        """POST /v3/{project_id}/notifications/test.

        With `event`: {"matched": bool, "reason": str}. With `from`/`to` (ms): the stored traces
        of the window the rule matches, newest first, paged by `limit` and `next`:
        {"traces": [...], "meta_data": {"count", "marker", "scanned"}}."""
        check_project_id(project_id)
        obj = nm.body_object(body)
        for key in obj:
            if key not in TEST_FIELDS:
                raise nm.invalid_field(str(key)[:64], "is not a field of a rule test")
        rule = self._test_rule(project_id, obj)
        windowed = any(k in obj for k in ("from", "to", "next"))
        if "event" in obj:
            if windowed:
                raise nm.invalid_field("event", "give either an event or from/to, not both")
            event = obj["event"]
            if not isinstance(event, dict):
                raise nm.invalid_field("event", "must be a JSON object")
            reason = rule.explain(event)
            if reason is None:
                return {"matched": True, "reason": "every condition matched"}
            return {"matched": False, "reason": reason}
        if not windowed:
            raise nm.invalid_field("event", "give an event to test, or from/to (ms) for traces")
        return self._replay(project_id, obj, rule)

    def _test_rule(self, project_id: str, obj: Mapping[str, Any]) -> CompiledRule:
        if "notification" not in obj and "pattern" not in obj:
            raise nm.invalid_field("notification", "give a notification, a pattern, or both")
        pattern = nm.parse_pattern(obj["pattern"]) if "pattern" in obj else None
        if "notification" not in obj:
            assert pattern is not None
            return pattern_only_rule(pattern)
        raw = nm.body_object(obj["notification"])
        status = raw.pop("status", nm.ENABLED)
        if status not in nm.STATUSES:
            raise nm.invalid_field("notification.status", "must be enabled or disabled")
        spec = nm.parse_create(raw)
        notification = spec.notification(project_id, "test", self.clock.now_ms(), status)
        return compile_rule(notification, pattern)

    def _replay(
        self, project_id: str, obj: Mapping[str, Any], rule: CompiledRule
    ) -> dict[str, Any]:
        if self.finder is None:
            raise CtsError(501, "CTS.1208", "Rule testing over stored traces is not configured")
        project = self.projects.require(project_id)
        limit = obj.get("limit", DEFAULT_TEST_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise nm.invalid_field("limit", "must be an integer")
        if not 1 <= limit <= MAX_TEST_LIMIT:
            raise nm.invalid_field("limit", f"must be between 1 and {MAX_TEST_LIMIT}")
        params: dict[str, list[str]] = {"limit": [str(TEST_READ_PAGE)]}
        for key in ("from", "to"):
            if key in obj:
                value = obj[key]
                if isinstance(value, bool) or not isinstance(value, int):
                    raise nm.invalid_field(key, "must be an integer (ms since the epoch)")
                params[key] = [str(value)]
        for key in ("next", "trace_type", "tracker_name"):
            if key in obj:
                if not isinstance(obj[key], str):
                    raise nm.invalid_field(key, "must be a string")
                params[key] = [obj[key]]
        now = self.clock.now_ms()
        query = parse_query(params, now)
        matched: list[dict[str, Any]] = []
        scanned = 0
        marker: str | None = None
        while True:
            page = self.finder.find(project, query, now)
            for position, trace in enumerate(page.traces):
                scanned += 1
                if rule.matches(trace):
                    matched.append(trace)
                last_of_all = position == len(page.traces) - 1 and page.marker is None
                if len(matched) >= limit or (scanned >= MAX_TEST_SCAN and not last_of_all):
                    marker = None if last_of_all else make_marker(query, trace)
                    return _replay_body(matched, marker, scanned)
            if page.marker is None:
                return _replay_body(matched, None, scanned)
            query = parse_query({**params, "next": [page.marker]}, now)


def _replay_body(traces: list[dict[str, Any]], marker: str | None, scanned: int) -> dict[str, Any]:
    return {
        "traces": traces,
        "meta_data": {"count": len(traces), "marker": marker, "scanned": scanned},
    }


