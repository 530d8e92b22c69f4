"""NotificationService and NotificationMatcher over the in-memory control table: the per-project
limit and unique names under concurrent writers (injected races), the index, the cache and its
TTL, rule testing against one event and over stored traces (in-memory trace table)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from chalicelib import notification_model as nm
from chalicelib.catalog import Catalog
from chalicelib.clock import FixedClock
from chalicelib.control import Item, MemoryControlTable
from chalicelib.errors import CtsError
from chalicelib.ingest import Ingestor
from chalicelib.notification_model import Notification
from chalicelib.notification_rules import (
    NotificationMatcher,
    RuleIndex,
    SharedParts,
    compile_rule,
)
from chalicelib.notifications import MAX_TEST_SCAN, NotificationService, NotificationStore
from chalicelib.projects import ProjectRegistry
from chalicelib.query import TraceFinder
from chalicelib.store import MemoryTraceTable, TraceStore
from tests.conftest import NOW_MS, trace

PROJECT = "p-1"
TOPIC = "arn:aws:sns:us-east-1:123456789012:alerts"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:on-trace"


def body(name: str = "n", **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "notification_name": name,
        "operation_type": "customized",
        "operations": [
            {"service_type": "ECS", "resource_type": "ecs", "trace_names": ["deleteServer"]}
        ],
        "topic_id": TOPIC,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


class CountingTable(MemoryControlTable):
    """Counts reads; `before_checked` runs once before the next conditional write (a racing
    writer, injected)."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.queries = 0
        self.before_checked: Any = None
        self.refuse_checked = False

    def get(self, pk: str, sk: str) -> Item | None:
        self.gets += 1
        return super().get(pk, sk)

    def query(self, pk: str, sk_prefix: str = "") -> list[Item]:
        self.queries += 1
        return super().query(pk, sk_prefix)

    def put_checked(self, item: Item, expected_version: int | None) -> bool:
        if self.before_checked is not None:
            race, self.before_checked = self.before_checked, None
            race()
        if self.refuse_checked:
            return False
        return super().put_checked(item, expected_version)


@pytest.fixture
def table() -> CountingTable:
    return CountingTable()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW_MS)


@pytest.fixture
def service(table: CountingTable, clock: FixedClock) -> NotificationService:
    projects = ProjectRegistry(table, clock)
    projects.register(PROJECT, "123456789012")
    store = TraceStore(MemoryTraceTable())
    svc = NotificationService(NotificationStore(table), projects, clock, TraceFinder(store))
    svc.ingestor = Ingestor(projects, store, Catalog(table), clock)  # type: ignore[attr-defined]
    return svc


def other_writer(table: CountingTable, clock: FixedClock) -> NotificationService:
    return NotificationService(NotificationStore(table), ProjectRegistry(table, clock), clock)


def code_of(call: Any) -> str:
    with pytest.raises(CtsError) as e:
        call()
    return e.value.code


class TestLimits:
    def test_100_per_project(self, service: NotificationService) -> None:
        for i in range(100):
            service.create_notification(PROJECT, body(f"n{i}"))
        assert service.count(PROJECT) == 100
        assert code_of(lambda: service.create_notification(PROJECT, body("n100"))) == "CTS.1204"
        first = service.list_notifications(PROJECT, "smn", {"notification_name": ["n0"]})
        service.delete_notifications(
            PROJECT, {"notification_id": [first["notifications"][0]["notification_id"]]}
        )
        service.create_notification(PROJECT, body("n100"))
        assert service.count(PROJECT) == 100

    def test_race_for_the_last_place(
        self, service: NotificationService, table: CountingTable, clock: FixedClock
    ) -> None:
        for i in range(99):
            service.create_notification(PROJECT, body(f"n{i}"))
        table.before_checked = lambda: other_writer(table, clock).create_notification(
            PROJECT, body("winner")
        )
        assert code_of(lambda: service.create_notification(PROJECT, body("loser"))) == "CTS.1204"
        names = {n.notification_name for n in NotificationStore(table).load(PROJECT)[1]}
        assert len(names) == 100
        assert "winner" in names
        assert "loser" not in names
        # The loser's item is gone too, not only unlisted.
        assert not [i for i in table.items.values() if i.get("notification_name") == "loser"]

    def test_race_for_one_name(
        self, service: NotificationService, table: CountingTable, clock: FixedClock
    ) -> None:
        table.before_checked = lambda: other_writer(table, clock).create_notification(
            PROJECT, body("same")
        )
        assert code_of(lambda: service.create_notification(PROJECT, body("same"))) == "CTS.1201"
        assert service.count(PROJECT) == 1

    def test_race_lost_then_won(
        self, service: NotificationService, table: CountingTable, clock: FixedClock
    ) -> None:
        table.before_checked = lambda: other_writer(table, clock).create_notification(
            PROJECT, body("first")
        )
        service.create_notification(PROJECT, body("second"))
        assert service.count(PROJECT) == 2

    def test_writes_that_never_win(
        self, service: NotificationService, table: CountingTable
    ) -> None:
        table.refuse_checked = True
        assert code_of(lambda: service.create_notification(PROJECT, body("x"))) == "CTS.1207"
        assert not [i for i in table.items.values() if i.get("notification_name") == "x"]

    def test_unknown_project(self, service: NotificationService) -> None:
        assert code_of(lambda: service.create_notification("nobody", body())) == "CTS.0006"


class TestCrud:
    def test_names_unique(self, service: NotificationService) -> None:
        service.create_notification(PROJECT, body("a"))
        b = service.create_notification(PROJECT, body("b"))
        assert code_of(lambda: service.create_notification(PROJECT, body("a"))) == "CTS.1201"
        rename = body("a", notification_id=b["notification_id"], status="enabled")
        assert code_of(lambda: service.update_notification(PROJECT, rename)) == "CTS.1201"
        # The refused rename left b as it was.
        listed = service.list_notifications(PROJECT, "smn", {})["notifications"]
        assert [n["notification_name"] for n in listed] == ["a", "b"]

    def test_update_replaces_and_keeps_id_and_time(
        self, service: NotificationService, clock: FixedClock
    ) -> None:
        created = service.create_notification(PROJECT, body("a"))
        clock.advance(5000)
        updated = service.update_notification(
            PROJECT,
            body(
                "renamed",
                notification_id=created["notification_id"],
                status="disabled",
                operation_type="complete",
                operations=None,
                topic_id=FUNCTION,
            ),
        )
        assert updated["notification_id"] == created["notification_id"]
        assert updated["create_time"] == created["create_time"]
        assert updated["operations"] == []
        assert updated["notification_type"] == "fun"
        assert updated["status"] == "disabled"
        assert service.list_notifications(PROJECT, "smn", {})["notifications"] == []
        assert service.list_notifications(PROJECT, "fun", {})["notifications"] == [updated]

    def test_update_unknown(self, service: NotificationService) -> None:
        update = body(notification_id="missing", status="enabled")
        assert code_of(lambda: service.update_notification(PROJECT, update)) == "CTS.1202"

    def test_created_status_follows_the_topic(self, service: NotificationService) -> None:
        assert service.create_notification(PROJECT, body("a"))["status"] == "enabled"
        assert service.create_notification(PROJECT, body("b", topic_id=None))["status"] == (
            "disabled"
        )

    def test_delete_several(self, service: NotificationService) -> None:
        ids = [
            service.create_notification(PROJECT, body(f"n{i}"))["notification_id"] for i in range(3)
        ]
        service.delete_notifications(PROJECT, {"notification_id": [f"{ids[0]},{ids[2]}"]})
        listed = service.list_notifications(PROJECT, "smn", {})["notifications"]
        assert [n["notification_id"] for n in listed] == [ids[1]]

    def test_delete_all_or_nothing(self, service: NotificationService) -> None:
        kept = service.create_notification(PROJECT, body("kept"))["notification_id"]
        params = {"notification_id": [f"{kept},nope"]}
        assert code_of(lambda: service.delete_notifications(PROJECT, params)) == "CTS.1202"
        assert service.count(PROJECT) == 1

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"notification_id": [""]},
            {"notification_id": ["a,,b"]},
            {"other": ["x"]},
            {"notification_id": ["bad id"]},
        ],
    )
    def test_delete_bad_params(self, service: NotificationService, params: Any) -> None:
        assert code_of(lambda: service.delete_notifications(PROJECT, params)) == "CTS.0001"

    def test_list_params(self, service: NotificationService) -> None:
        assert code_of(lambda: service.list_notifications(PROJECT, "sms", {})) == "CTS.0001"
        bad = {"notification_name": ["has space"]}
        assert code_of(lambda: service.list_notifications(PROJECT, "smn", bad)) == "CTS.0001"
        assert service.list_notifications("unknown", "smn", {}) == {"notifications": []}

    def test_half_written_item_is_invisible(
        self, service: NotificationService, table: CountingTable, clock: FixedClock
    ) -> None:
        orphan = Notification(
            PROJECT, "orphan-id", "orphan", "complete", "enabled", 1, topic_id=TOPIC
        )
        table.put(orphan.item())
        assert service.list_notifications(PROJECT, "smn", {})["notifications"] == []
        matcher = NotificationMatcher(NotificationStore(table), clock)
        assert matcher.matches(PROJECT, trace()) == []


class TestMatcher:
    def test_compiled_once_and_checked_after_the_ttl(
        self, service: NotificationService, table: CountingTable, clock: FixedClock
    ) -> None:
        created = service.create_notification(PROJECT, body("a"))
        matcher = NotificationMatcher(NotificationStore(table), clock, ttl_ms=2000)
        hit = trace(service_type="ECS", resource_type="ecs", trace_name="deleteServer")
        assert [t.notification_name for t in matcher.matches(PROJECT, hit)] == ["a"]
        reads = (table.gets, table.queries)
        for _ in range(50):
            matcher.matches(PROJECT, hit)
        assert (table.gets, table.queries) == reads  # within the TTL: no read at all
        assert matcher.compilations == 1

        clock.advance(2000)
        matcher.matches(PROJECT, hit)
        assert (table.gets, table.queries) == (reads[0] + 1, reads[1])  # one GetItem
        assert matcher.compilations == 1  # same version: not compiled again

        service.update_notification(
            PROJECT, body("a", notification_id=created["notification_id"], status="disabled")
        )
        assert matcher.matches(PROJECT, hit) != []  # the TTL has not passed yet
        clock.advance(2000)
        assert matcher.matches(PROJECT, hit) == []
        assert matcher.compilations == 2

    def test_targets(self, service: NotificationService, clock: FixedClock) -> None:
        service.create_notification(PROJECT, body("to_sns"))
        service.create_notification(PROJECT, body("to_lambda", topic_id=FUNCTION))
        service.create_notification(PROJECT, body("no_topic", topic_id=None))
        matcher = NotificationMatcher(service.store, clock)
        found = matcher.matches(
            PROJECT, trace(service_type="ECS", resource_type="ecs", trace_name="deleteServer")
        )
        assert [(t.notification_name, t.notification_type, t.topic_id) for t in found] == [
            ("to_lambda", "fun", FUNCTION),
            ("to_sns", "smn", TOPIC),
        ]
        assert matcher.matches("other-project", trace()) == []

    def test_a_rule_that_no_longer_compiles_is_skipped(
        self, service: NotificationService, table: CountingTable, clock: FixedClock
    ) -> None:
        bad = service.create_notification(
            PROJECT, body("bad", operation_type="complete", operations=None)
        )
        service.create_notification(
            PROJECT, body("good", operation_type="complete", operations=None)
        )
        item = table.get(f"NOTIFICATION#{PROJECT}", bad["notification_id"])
        assert item is not None
        table.put({**item, "pattern": '{"a": [{"bogus": 1}]}'})
        found = NotificationMatcher(service.store, clock).matches(PROJECT, trace())
        assert [t.notification_name for t in found] == ["good"]


def _rule(i: int, **over: Any) -> Notification:
    spec = nm.parse_create(body(f"r{i}", **over))
    return spec.notification(PROJECT, f"id-{i}", 0, "enabled")


class TestIndex:
    def test_candidates_grow_with_matching_rules_only(self) -> None:
        rules = [
            compile_rule(
                _rule(
                    i,
                    operations=[
                        {"service_type": f"S{i}", "resource_type": "r", "trace_names": ["op"]}
                    ],
                )
            )
            for i in range(1000)
        ]
        index = RuleIndex.build(rules)
        hit = {"service_type": "S7", "resource_type": "r", "trace_name": "op"}
        assert len(index.candidates(hit)) == 1
        assert [r.notification.notification_name for r in index.matching(hit)] == ["r7"]
        assert index.candidates({"service_type": "X", "trace_name": "op"}) == []

    def test_complete_rules(self) -> None:
        always = compile_rule(_rule(1, operation_type="complete", operations=None))
        by_service = compile_rule(
            _rule(2, operation_type="complete", operations=None, pattern={"service_type": ["OBS"]})
        )
        by_pair = compile_rule(
            _rule(
                3,
                operation_type="complete",
                operations=None,
                pattern={"service_type": ["IAM"], "trace_name": ["login"]},
            )
        )
        not_indexable = compile_rule(
            _rule(
                4,
                operation_type="complete",
                operations=None,
                pattern={"service_type": [{"prefix": "I"}]},
            )
        )
        index = RuleIndex.build([always, by_service, by_pair, not_indexable])
        assert index.always == [always, not_indexable]
        assert index.by_service == {"OBS": [by_service]}
        assert index.by_pair == {("IAM", "login"): [by_pair]}
        login = {"service_type": "IAM", "trace_name": "login", "resource_type": "user"}
        assert {r.notification.notification_name for r in index.matching(login)} == {
            "r1",
            "r3",
            "r4",
        }
        # A service_type that is not a string (a test event, never a trace) checks every rule.
        odd = {"service_type": ["OBS"], "trace_name": "x"}
        assert len(index.candidates(odd)) == 4
        assert {r.notification.notification_name for r in index.matching(odd)} == {"r1", "r2"}

    def test_disabled_rules_are_not_indexed(self) -> None:
        rule = compile_rule(
            Notification(PROJECT, "i", "off", "complete", "disabled", 0, topic_id=TOPIC)
        )
        assert RuleIndex.build([rule]).size == 0


class TestRuleTesting:
    def test_pattern_alone_any_event(self, service: NotificationService) -> None:
        answer = service.test(
            PROJECT,
            {"pattern": {"detail": {"state": ["running"]}}, "event": {"detail": {"state": "x"}}},
        )
        assert answer["matched"] is False
        assert "detail.state" in answer["reason"]
        answer = service.test(
            PROJECT, {"pattern": '{"source": ["aws.ec2"]}', "event": {"source": "aws.ec2"}}
        )
        assert answer == {"matched": True, "reason": "every condition matched"}

    def test_notification_and_pattern_together(self, service: NotificationService) -> None:
        event = trace(service_type="ECS", resource_type="ecs", trace_name="deleteServer")
        answer = service.test(
            PROJECT,
            {"notification": body(), "pattern": {"source_ip": ["1.1.1.1"]}, "event": event},
        )
        assert answer["matched"] is False
        assert answer["reason"].startswith("pattern: field 'source_ip'")

    @pytest.mark.parametrize(
        ("request_body", "code", "words"),
        [
            ({"event": {}}, "CTS.1203", "notification, a pattern"),
            ({"pattern": {"a": [{"nope": 1}]}, "event": {}}, "CTS.1205", "nope"),
            ({"notification": body(operations=[]), "event": {}}, "CTS.1203", "operations"),
            ({"pattern": {"a": ["b"]}}, "CTS.1203", "from/to"),
            ({"pattern": {"a": ["b"]}, "event": [1]}, "CTS.1203", "JSON object"),
            ({"pattern": {"a": ["b"]}, "event": {}, "from": 1}, "CTS.1203", "not both"),
            ({"pattern": {"a": ["b"]}, "event": {}, "extra": 1}, "CTS.1203", "extra"),
            (
                {"notification": {**body(), "status": "on"}, "event": {}},
                "CTS.1203",
                "notification.status",
            ),
            ({"pattern": {"a": ["b"]}, "from": "yesterday"}, "CTS.1203", "from"),
            ({"pattern": {"a": ["b"]}, "from": 1, "limit": 201}, "CTS.1203", "limit"),
            ({"pattern": {"a": ["b"]}, "from": 1, "limit": 0}, "CTS.1203", "limit"),
            ({"pattern": {"a": ["b"]}, "from": 1, "next": "garbage"}, "CTS.0007", "marker"),
        ],
    )
    def test_refusals(
        self, service: NotificationService, request_body: Any, code: str, words: str
    ) -> None:
        with pytest.raises(CtsError) as e:
            service.test(PROJECT, request_body)
        assert e.value.code == code
        assert e.value.status == 400
        assert words in e.value.message

    def test_traces_of_a_window_paged(
        self, service: NotificationService, clock: FixedClock
    ) -> None:
        ingestor: Ingestor = service.ingestor  # type: ignore[attr-defined]
        raw = [
            trace(
                trace_id=f"t{i:03d}",
                time=NOW_MS - 3_600_000 + i * 1000,
                trace_rating="warning" if i % 3 == 0 else "normal",
            )
            for i in range(30)
        ]
        assert all(r.status == "stored" for r in ingestor.report(PROJECT, raw))
        rule = {"pattern": {"trace_rating": ["warning"]}, "from": NOW_MS - 7_200_000, "to": NOW_MS}
        seen: list[str] = []
        request: dict[str, Any] = {**rule, "limit": 4}
        pages = 0
        while True:
            page = service.test(PROJECT, request)
            pages += 1
            seen.extend(t["trace_id"] for t in page["traces"])
            assert page["meta_data"]["count"] == len(page["traces"]) <= 4
            if page["meta_data"]["marker"] is None:
                break
            request = {**rule, "limit": 4, "next": page["meta_data"]["marker"]}
        assert seen == [f"t{i:03d}" for i in range(29, -1, -1) if i % 3 == 0]
        assert pages == 3

    def test_a_call_reads_a_bounded_number_of_traces(
        self, service: NotificationService, clock: FixedClock
    ) -> None:
        ingestor: Ingestor = service.ingestor  # type: ignore[attr-defined]
        total = MAX_TEST_SCAN + 150
        raw = [trace(trace_id=f"t{i:05d}", time=NOW_MS - 3_600_000 + i) for i in range(total)]
        for start in range(0, total, 500):
            ingestor.report(PROJECT, raw[start : start + 500])
        rule = {"pattern": {"trace_rating": ["incident"]}, "from": NOW_MS - 7_200_000}
        first = service.test(PROJECT, rule)
        assert first["traces"] == []
        assert first["meta_data"]["scanned"] == MAX_TEST_SCAN
        assert first["meta_data"]["marker"] is not None
        second = service.test(PROJECT, {**rule, "next": first["meta_data"]["marker"]})
        assert second["meta_data"]["scanned"] == 150
        assert second["meta_data"]["marker"] is None

    def test_window_needs_a_known_project(self, service: NotificationService) -> None:
        with pytest.raises(CtsError) as e:
            service.test("nobody", {"pattern": {"a": ["b"]}, "from": 1})
        assert e.value.code == "CTS.0006"


def test_index_agrees_with_the_patterns_alone() -> None:
    """The index (operation set + residual parts) answers exactly what every rule's full
    patterns answer, over rules and traces drawn at random (seeded)."""
    rng = random.Random(5)
    services = ["ECS", "EVS", "IAM", "OBS"]
    names = ["create", "delete", "login", "stop"]

    def random_rule(i: int) -> Notification:
        extra: dict[str, Any] = {}
        if rng.random() < 0.3:
            extra["notify_user_list"] = [
                {"user_group": "g", "user_list": rng.sample(["a", "b", "c"], 2)}
            ]
        if rng.random() < 0.3:
            extra["filter"] = {
                "is_support_filter": True,
                "condition": rng.choice(["AND", "OR"]),
                "rule": rng.sample(
                    ["code = 200", "trace_rating != normal", "resource_name = x"], 2
                ),
            }
        if rng.random() < 0.3:
            extra["pattern"] = rng.choice(
                [
                    {"service_type": rng.sample(services, 2)},
                    {"service_type": [rng.choice(services)], "trace_name": [rng.choice(names)]},
                    {"source_ip": [{"cidr": "10.0.0.0/8"}]},
                ]
            )
        if rng.random() < 0.3:
            return _rule(i, operation_type="complete", operations=None, **extra)
        operations = [
            {
                "service_type": s,
                "resource_type": rng.choice(["r1", "r2"]),
                "trace_names": rng.sample(names, 2),
            }
            for s in rng.sample(services, 2)
        ]
        return _rule(i, operations=operations, **extra)

    shared: SharedParts = {}  # as the matcher compiles: identical parts are one object
    rules = [compile_rule(random_rule(i), shared=shared) for i in range(60)]
    assert len({id(p) for r in rules for _, p in r.parts}) < sum(len(r.parts) for r in rules)
    index = RuleIndex.build(rules)
    matched = 0
    odd_users: list[Any] = [[{"name": "a"}, {"name": "d"}], {"name": 7}, {"id": "a"}, None, "a"]
    for _ in range(1500):
        event: dict[str, Any] = {
            "service_type": rng.choice(services),
            "resource_type": rng.choice(["r1", "r2"]),
            "trace_name": rng.choice(names),
            "user": {"name": rng.choice(["a", "b", "c", "d"])},
            "code": rng.choice(["200", "500"]),
            "trace_rating": rng.choice(["normal", "warning"]),
            "source_ip": rng.choice(["10.1.1.1", "192.168.1.1"]),
        }
        if rng.random() < 0.3:
            event["resource_name"] = "x"
        # Unusual shapes take the other paths: no user or a user that is not an object with a
        # string name (evaluated by the user part), key fields missing or arrays (every rule).
        if rng.random() < 0.1:
            del event["user"]
        elif rng.random() < 0.1:
            event["user"] = rng.choice(odd_users)
        if rng.random() < 0.05:
            del event[rng.choice(["service_type", "resource_type", "trace_name"])]
        elif rng.random() < 0.05:
            key = rng.choice(["service_type", "resource_type", "trace_name"])
            event[key] = [event[key], "other"]
        elif rng.random() < 0.03:
            event["resource_type"] = None
        expected = [r.notification.notification_name for r in rules if r.matches(event)]
        assert [r.notification.notification_name for r in index.matching(event)] == sorted(
            expected
        ), event
        matched += len(expected)
    assert 1500 < matched < 1500 * len(rules) // 4  # neither trivial nor everything
