"""Self-audit traces: names from Table 8-1, warnings for failures, secrets never kept."""

from __future__ import annotations

import json

from chalicelib.audit import AUDITED, REDACTED, audit_trace, redact
from chalicelib.model import parse_trace
from tests.conftest import NOW_MS

CREATE = AUDITED[("POST", "/v3/{project_id}/tracker")]


def test_secrets_are_removed_at_any_depth() -> None:
    body = {
        "access_key": {"id": "AK1", "secret": "s3cr3t"},
        "list": [{"Password": "x"}],
        "sk": "y",
        "token_id": "z",
        "name": "keep",
    }
    assert redact(body) == {
        "access_key": {"id": "AK1", "secret": REDACTED},
        "list": [{"Password": REDACTED}],
        "sk": REDACTED,
        "token_id": REDACTED,
        "name": "keep",
    }


def test_a_successful_create_is_a_normal_cts_trace() -> None:
    request = json.dumps(
        {
            "tracker_type": "system",
            "tracker_name": "system",
            "obs_info": {"bucket_name": "b"},
            "kms_secret": "hide",
        }
    ).encode()
    trace = audit_trace(
        CREATE,
        user={"id": "u1", "name": "alice"},
        source_ip="203.0.113.9",
        request_body=request,
        response_body={"id": "t1", "status": "enabled"},
        status=201,
        params={},
        now_ms=NOW_MS,
        request_id="req-1",
    )
    assert trace["service_type"] == "CTS"
    assert trace["resource_type"] == "tracker"
    assert trace["trace_name"] == "createTracker"
    assert trace["trace_rating"] == "normal"
    assert trace["resource_name"] == "system"
    assert trace["code"] == "201"
    assert "hide" not in trace["request"]
    assert json.loads(trace["response"]) == {"id": "t1", "status": "enabled"}
    assert parse_trace(trace, NOW_MS)["user"]["name"] == "alice"


def test_a_refused_call_is_a_warning_with_the_error() -> None:
    trace = audit_trace(
        AUDITED[("DELETE", "/v3/{project_id}/trackers")],
        user={"name": "bob"},
        source_ip="",
        request_body=b"",
        response_body={"error_code": "CTS.1102", "error_msg": "no tracker"},
        status=404,
        params={"tracker_name": ["audit-a"]},
        now_ms=NOW_MS,
        request_id="r",
    )
    assert trace["trace_rating"] == "warning"
    assert trace["code"] == "404"
    assert trace["message"] == "no tracker"
    assert trace["resource_name"] == "audit-a"
    assert json.loads(trace["request"]) == {"tracker_name": "audit-a"}
    parse_trace(trace, NOW_MS)


def test_exports_are_audited_as_get_trace() -> None:
    export = AUDITED[("GET", "/v3/{project_id}/traces/export")]
    assert (export.resource_type, export.trace_name) == ("trace", "getTrace")
