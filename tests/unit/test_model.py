"""The trace model: every field's rule, at and past its edge, with one clear error per bad field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.errors import CtsError
from chalicelib.model import MAX_FUTURE_SKEW_MS, MAX_TRACE_BYTES, RETENTION_MS, parse_trace
from tests.conftest import NOW_MS, trace


def rejected(raw: Any) -> CtsError:
    with pytest.raises(CtsError) as caught:
        parse_trace(raw, NOW_MS)
    assert caught.value.code == "CTS.0005"
    assert caught.value.status == 400
    return caught.value


def test_valid_trace_gets_id_and_record_time_from_the_service() -> None:
    # Given a valid trace without trace_id, with a record_time the reporter made up
    raw = trace(record_time=1)
    # When it is parsed
    parsed = parse_trace(raw, NOW_MS)
    # Then the service assigns both
    assert len(parsed["trace_id"]) == 36
    assert parsed["record_time"] == NOW_MS
    assert parsed["tracker_name"] == "system"
    assert parsed["user"]["domain"] == {"id": "123456789012", "name": "acme"}


def test_given_trace_id_is_kept() -> None:
    assert (
        parse_trace(trace(trace_id="7519ef09-lac6-11e7"), NOW_MS)["trace_id"]
        == "7519ef09-lac6-11e7"
    )


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("trace_name", "", "start with a letter"),
        ("trace_name", "1create", "start with a letter"),
        ("trace_name", "create server", "start with a letter"),
        ("trace_name", "a" * 65, "1-64"),
        ("trace_name", 5, "start with a letter"),
        ("trace_rating", "fine", "normal, warning, incident"),
        ("trace_type", "Console", "ConsoleAction"),
        ("service_type", "", "start with a letter"),
        ("service_type", "E" * 65, "1-64"),
        ("resource_type", "", "must not be empty"),
        ("resource_type", "r" * 129, "at most 128"),
        ("resource_id", "x" * 2049, "at most 2048"),
        ("resource_name", "bad\x00name", "control characters"),
        ("source_ip", "10.0.0.1\n", "control characters"),
        ("source_ip", "1" * 129, "at most 128"),
        ("time", "1700000000000", "integer"),
        ("time", 1.5, "integer"),
        ("time", True, "integer"),
        ("time", 0, "at least 1"),
        ("trace_id", "has space", "letters, digits"),
        ("trace_id", "x" * 129, "1-128"),
        ("code", True, "string or an integer"),
        ("code", "c" * 65, "at most 64"),
        ("read_only", "true", "true or false"),
        ("content_length", -1, "at least 0"),
        ("total_time", "12", "integer"),
        ("request", 12, "string or a JSON object"),
        ("tracker_name", "mine", "belong to 'system'"),
    ],
)
def test_each_bad_field_is_named_with_why(field: str, value: Any, why: str) -> None:
    error = rejected(trace(**{field: value}))
    assert f"'{field}'" in error.message
    assert why in error.message


def test_missing_required_fields_are_named() -> None:
    for field in (
        "trace_name",
        "trace_rating",
        "trace_type",
        "service_type",
        "resource_type",
        "time",
    ):
        raw = trace()
        del raw[field]
        assert f"'{field}'" in rejected(raw).message


def test_limits_at_their_edge_are_accepted() -> None:
    parsed = parse_trace(
        trace(
            trace_name="a" + "b" * 63,
            service_type="S" * 64,
            resource_type="r" * 128,
            resource_id="x" * 2048,
            trace_id="t" * 128,
            time=NOW_MS - RETENTION_MS,
        ),
        NOW_MS,
    )
    assert len(parsed["trace_name"]) == 64
    assert parse_trace(trace(time=NOW_MS + MAX_FUTURE_SKEW_MS), NOW_MS)["time"] > NOW_MS


def test_time_outside_retention_or_too_far_ahead_is_refused() -> None:
    assert "7-day" in rejected(trace(time=NOW_MS - RETENTION_MS - 1)).message
    assert "future" in rejected(trace(time=NOW_MS + MAX_FUTURE_SKEW_MS + 1)).message


def test_user_and_source_ip_required_except_for_system_actions() -> None:
    assert "'user'" in rejected(trace(user={})).message
    assert "'source_ip'" in rejected(trace(source_ip="")).message
    parsed = parse_trace(trace(trace_type="SystemAction", user={}, source_ip=""), NOW_MS)
    assert parsed["user"] == {}
    assert parsed["source_ip"] == ""


def test_user_structure_is_checked_field_by_field() -> None:
    assert "'user.nickname'" in rejected(trace(user={"name": "a", "nickname": "b"})).message
    assert "'user.domain'" in rejected(trace(user={"name": "a", "domain": "acme"})).message
    assert (
        "'user.domain.region'"
        in rejected(trace(user={"name": "a", "domain": {"region": "x"}})).message
    )
    assert (
        "'user.principal_is_root_user'"
        in rejected(trace(user={"name": "a", "principal_is_root_user": "yes"})).message
    )
    assert "'user.invoked_by'" in rejected(trace(user={"name": "a", "invoked_by": "svc"})).message
    assert "'user'" in rejected(trace(user={"type": "IAMUser"})).message
    full = {
        "id": "u1",
        "name": "alice",
        "user_name": "alice",
        "domain": {"id": "d", "name": "n"},
        "account_id": "d",
        "access_key_id": "AK",
        "principal_urn": "iam::d:user:alice",
        "principal_id": "p",
        "principal_is_root_user": "false",
        "type": "User",
        "invoked_by": ["ecs.example"],
        "session_context": {
            "attributes": {"created_at": "2026-11-20T10:00:00Z", "mfa_authenticated": "true"}
        },
    }
    assert parse_trace(trace(user=full), NOW_MS)["user"] == full


def test_request_response_message_are_kept_as_strings_and_code_as_string() -> None:
    parsed = parse_trace(
        trace(request={"server": {"name": "web"}}, response=[1, 2], message="done", code=200),
        NOW_MS,
    )
    assert parsed["request"] == '{"server":{"name":"web"}}'
    assert json.loads(parsed["response"]) == [1, 2]
    assert parsed["message"] == "done"
    assert parsed["code"] == "200"


def test_data_traces_need_their_tracker() -> None:
    assert "'tracker_name'" in rejected(trace(trace_type="ObsSDK")).message
    parsed = parse_trace(trace(trace_type="ObsAPI", tracker_name="bucket-audit"), NOW_MS)
    assert parsed["tracker_name"] == "bucket-audit"


def test_unknown_fields_and_non_objects_are_refused() -> None:
    assert "'trace_status'" in rejected(trace(trace_status="normal")).message
    assert "JSON object" in rejected(["not", "a", "trace"]).message


def test_oversized_trace_is_refused() -> None:
    error = rejected(trace(request="x" * (MAX_TRACE_BYTES + 1)))
    assert str(MAX_TRACE_BYTES) in error.message
