"""Notification bodies (SPEC 7): every limit at and past its edge, each refusal naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import notification_model as nm
from chalicelib.errors import CtsError

TOPIC = "arn:aws:sns:us-east-1:123456789012:alerts"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:on-trace"


def body(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "notification_name": "ops_alerts",
        "operation_type": "customized",
        "operations": [
            {"service_type": "ECS", "resource_type": "ecs", "trace_names": ["deleteServer"]}
        ],
        "topic_id": TOPIC,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def refused(raw: Any, update: bool = False) -> CtsError:
    with pytest.raises(CtsError) as e:
        (nm.parse_update if update else nm.parse_create)(raw)
    assert e.value.status == 400
    return e.value


def operations(services: int, names_each: int) -> list[dict[str, Any]]:
    return [
        {
            "service_type": f"SVC{s}",
            "resource_type": "thing",
            "trace_names": [f"op{n}" for n in range(names_each)],
        }
        for s in range(services)
    ]


def user_groups(groups: int, users_each: int) -> list[dict[str, Any]]:
    return [
        {"user_group": f"g{g}", "user_list": [f"u{g}_{u}" for u in range(users_each)]}
        for g in range(groups)
    ]


def rules(n: int) -> dict[str, Any]:
    return {"is_support_filter": True, "condition": "OR", "rule": [f"code = {c}" for c in range(n)]}


class TestName:
    @pytest.mark.parametrize("name", ["a", "A_1", "x" * 64])
    def test_valid(self, name: str) -> None:
        assert nm.parse_create(body(notification_name=name)).notification_name == name

    @pytest.mark.parametrize("name", ["", "x" * 65, "has-dash", "with space", "ü"])
    def test_invalid(self, name: str) -> None:
        error = refused(body(notification_name=name))
        assert error.code == "CTS.1203"
        assert "notification_name" in error.message

    def test_required(self) -> None:
        assert "notification_name" in refused(body(notification_name=None)).message


class TestOperations:
    def test_1000_operations_over_100_services(self) -> None:
        spec = nm.parse_create(body(operations=operations(100, 10)))
        assert sum(len(o.trace_names) for o in spec.operations) == 1000

    def test_1001_operations(self) -> None:
        raw = operations(100, 10)
        raw[0]["trace_names"].append("oneMore")
        assert "at most 1000 operations" in refused(body(operations=raw)).message

    def test_101_services(self) -> None:
        assert "at most 100 services" in refused(body(operations=operations(101, 1))).message

    def test_one_service_may_repeat(self) -> None:
        raw = operations(1, 1) * 150
        assert len(nm.parse_create(body(operations=raw)).operations) == 150

    def test_customized_needs_operations(self) -> None:
        assert "at least one operation" in refused(body(operations=[])).message

    def test_complete_takes_none(self) -> None:
        error = refused(body(operation_type="complete"))
        assert "operations" in error.message
        spec = nm.parse_create(body(operation_type="complete", operations=None))
        assert spec.operations == ()

    @pytest.mark.parametrize(
        ("operation", "field"),
        [
            ({"service_type": "1ECS", "resource_type": "r", "trace_names": ["a"]}, "service_type"),
            ({"service_type": "ECS", "resource_type": "", "trace_names": ["a"]}, "resource_type"),
            (
                {"service_type": "ECS", "resource_type": "r" * 129, "trace_names": ["a"]},
                "resource_type",
            ),
            ({"service_type": "ECS", "resource_type": "r", "trace_names": []}, "trace_names"),
            (
                {"service_type": "ECS", "resource_type": "r", "trace_names": ["9x"]},
                "trace_names[0]",
            ),
            ({"service_type": "ECS", "resource_type": "r"}, "trace_names"),
            ({"service_type": "ECS", "resource_type": "r", "trace_names": ["a"], "x": 1}, "x"),
        ],
    )
    def test_invalid_operation(self, operation: dict[str, Any], field: str) -> None:
        assert f"operations[0].{field}" in refused(body(operations=[operation])).message

    def test_operation_type(self) -> None:
        assert "operation_type" in refused(body(operation_type="all")).message


class TestUsers:
    def test_10_groups_and_50_users(self) -> None:
        spec = nm.parse_create(body(notify_user_list=user_groups(10, 5)))
        assert len(spec.notify_user_list) == 10
        assert len(spec.notification("p", "i", 0, "enabled").user_names()) == 50

    def test_11_groups(self) -> None:
        error = refused(body(notify_user_list=user_groups(11, 1)))
        assert "at most 10 user groups" in error.message

    def test_51_users(self) -> None:
        raw = user_groups(10, 5)
        raw[9]["user_list"].append("one_more")
        assert "at most 50 users" in refused(body(notify_user_list=raw)).message

    def test_a_group_lists_its_users(self) -> None:
        error = refused(body(notify_user_list=[{"user_group": "admins", "user_list": []}]))
        assert "notify_user_list[0].user_list" in error.message

    def test_groups_are_distinct(self) -> None:
        raw = [{"user_group": "a", "user_list": ["x"]}, {"user_group": "a", "user_list": ["y"]}]
        assert "listed twice" in refused(body(notify_user_list=raw)).message

    @pytest.mark.parametrize("user", ["", "u" * 65, "bad\nname"])
    def test_user_names(self, user: str) -> None:
        raw = [{"user_group": "g", "user_list": ["ok", user]}]
        assert "notify_user_list[0].user_list[1]" in refused(body(notify_user_list=raw)).message

    def test_64_character_user_name(self) -> None:
        raw = [{"user_group": "g" * 64, "user_list": ["u" * 64]}]
        assert nm.parse_create(body(notify_user_list=raw)).notify_user_list[0].user_list


class TestFilter:
    def test_six_rules(self) -> None:
        parsed = nm.parse_create(body(filter=rules(6))).filter
        assert parsed is not None
        assert len(parsed.rules) == 6

    def test_seven_rules(self) -> None:
        assert "at most 6 rules" in refused(body(filter=rules(7))).message

    @pytest.mark.parametrize(
        "rule",
        [
            "api_version = v1.0_beta-2",
            "api_version != " + "a" * 64,
            "code = 200",
            "code = " + "x" * 256,
            "trace_rating = normal",
            "trace_rating != incident",
            "trace_type = ConsoleAction",
            "trace_type != SystemAction",
            "resource_id = " + "r" * 350,
            "resource_name = " + "n" * 256,
            "resource_name=no-spaces",
        ],
    )
    def test_valid_rules(self, rule: str) -> None:
        raw = {"is_support_filter": True, "condition": "AND", "rule": [rule]}
        assert nm.parse_create(body(filter=raw)).filter is not None

    @pytest.mark.parametrize(
        ("rule", "why"),
        [
            ("api_version = v 1", "api_version value"),
            ("api_version = " + "a" * 65, "api_version value"),
            ("code = " + "x" * 257, "code value"),
            ("code = ", "code value"),
            ("trace_rating = fatal", "trace_rating value"),
            ("trace_type = ObsSDK", "trace_type value"),
            ("resource_id = " + "r" * 351, "resource_id value"),
            ("resource_name = " + "n" * 257, "resource_name value"),
            ("user = alice", "not a filter field"),
            ("code > 200", "<field> = <value>"),
            ("code 200", "<field> = <value>"),
        ],
    )
    def test_invalid_rules(self, rule: str, why: str) -> None:
        raw = {"is_support_filter": True, "condition": "AND", "rule": [rule]}
        error = refused(body(filter=raw))
        assert "filter.rule[0]" in error.message
        assert why in error.message

    def test_condition(self) -> None:
        raw = {"is_support_filter": True, "condition": "XOR", "rule": ["code = 1"]}
        assert "filter.condition" in refused(body(filter=raw)).message

    def test_on_needs_a_rule(self) -> None:
        raw = {"is_support_filter": True, "condition": "AND", "rule": []}
        assert "filter.rule" in refused(body(filter=raw)).message

    def test_contradiction_under_and(self) -> None:
        raw = {"is_support_filter": True, "condition": "AND", "rule": ["code = 1", "code = 2"]}
        with pytest.raises(CtsError) as e:
            nm.parse_create(body(filter=raw))
        assert e.value.code == "CTS.1206"
        raw["condition"] = "OR"
        assert nm.parse_create(body(filter=raw)).filter is not None

    def test_excluded_and_required_contradict(self) -> None:
        raw = {"is_support_filter": True, "condition": "AND", "rule": ["code = 1", "code != 1"]}
        with pytest.raises(CtsError) as e:
            nm.parse_create(body(filter=raw))
        assert e.value.code == "CTS.1206"


class TestTopicAndStatus:
    def test_types_from_the_topic(self) -> None:
        for topic, kind in [
            (TOPIC, "smn"),
            (TOPIC + ".fifo", "smn"),
            (FUNCTION, "fun"),
            (FUNCTION + ":live", "fun"),
            (FUNCTION + ":$LATEST", "fun"),
        ]:
            spec = nm.parse_create(body(topic_id=topic))
            assert spec.notification("p", "i", 0, "enabled").notification_type == kind

    def test_huawei_urn_refused_with_the_reason(self) -> None:
        error = refused(body(topic_id="urn:smn:region:f96188c7:test_topic"))
        assert "SNS topic ARN" in error.message
        assert "Huawei URN" in error.message

    def test_other_text_refused(self) -> None:
        assert "topic_id" in refused(body(topic_id="alerts")).message

    def test_update_requires_status_and_id(self) -> None:
        assert "notification_id" in refused(body(status="enabled"), update=True).message
        assert "status" in refused(body(notification_id="abc"), update=True).message
        error = refused(body(notification_id="abc", status="paused"), update=True)
        assert "status" in error.message

    def test_enabled_needs_a_topic(self) -> None:
        error = refused(body(notification_id="abc", status="enabled", topic_id=None), update=True)
        assert "topic_id" in error.message
        spec = nm.parse_update(body(notification_id="abc", status="disabled", topic_id=None))
        assert spec.status == "disabled"

    def test_unknown_fields_refused(self) -> None:
        assert "'statuss'" in refused(body(statuss="enabled")).message
        assert "'status'" in refused(body(status="enabled")).message  # not a create field

    def test_agency(self) -> None:
        assert nm.parse_create(body(agency_name="cts_admin_trust")).agency_name
        assert "agency_name" in refused(body(agency_name="other")).message

    def test_not_an_object(self) -> None:
        with pytest.raises(CtsError) as e:
            nm.parse_create([])
        assert e.value.code == "CTS.0002"


class TestPattern:
    def test_object_or_string(self) -> None:
        as_object = nm.parse_create(body(pattern={"source_ip": [{"cidr": "10.0.0.0/8"}]}))
        as_text = nm.parse_create(body(pattern='{"source_ip": [{"cidr": "10.0.0.0/8"}]}'))
        assert as_object.pattern == as_text.pattern

    @pytest.mark.parametrize(
        ("pattern", "why"),
        [
            ({"a": [{"bogus": 1}]}, "bogus"),
            ({"a": "text"}, "a"),
            ({"a": []}, "empty"),
            ("{not json", "not JSON"),
            ([1], "JSON object"),
            ({"a": [{"numeric": [">", 10, "<", 5]}]}, "numeric"),
            ({"x" + str(i): ["y" * 100] for i in range(40)}, "too large"),
        ],
    )
    def test_invalid_pattern(self, pattern: Any, why: str) -> None:
        error = refused(body(pattern=pattern))
        assert error.code == "CTS.1205"
        assert why in error.message

    def test_too_deep(self) -> None:
        deep: dict[str, Any] = {"leaf": ["x"]}
        for level in range(10):
            deep = {f"l{level}": deep}
        error = refused(body(pattern=deep))
        assert error.code == "CTS.1205"
        assert "at most 10 levels" in error.message


def test_stored_form_round_trips() -> None:
    spec = nm.parse_create(
        body(
            notify_user_list=user_groups(2, 2),
            filter={"is_support_filter": True, "condition": "AND", "rule": ["code != 200"]},
            pattern={"time": [{"numeric": [">", 1.5]}]},
            agency_name="cts_admin_trust",
        )
    )
    notification = spec.notification("proj", "id-1", 123, "enabled")
    again = nm.Notification.from_item(notification.item())
    assert again == notification
    assert again.body()["filter"]["rule"] == ["code != 200"]
