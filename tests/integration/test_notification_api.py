"""Key event notifications over the REST API (signed client, moto): create, list by type,
update, delete several, quotas, self-audit, rule testing against an event and over the traces
reported through the API."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.clock import FixedClock
from chalicelib.wiring import Services
from tests.conftest import NOW_MS, PROJECT, trace

JSON = {"Content-Type": "application/json"}
TOPIC = "arn:aws:sns:us-east-1:123456789012:alerts"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:on-trace"
BASE = f"/v3/{PROJECT}/notifications"


def notification(name: str = "ecs_deletes", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "notification_name": name,
        "operation_type": "customized",
        "operations": [
            {"service_type": "ECS", "resource_type": "ecs", "trace_names": ["deleteServer"]}
        ],
        "notify_user_list": [{"user_group": "admins", "user_list": ["alice"]}],
        "topic_id": TOPIC,
        "filter": {"is_support_filter": True, "condition": "AND", "rule": ["code != 500"]},
    }
    body.update(over)
    return body


def send(client: Any, method: str, path: str, body: Any) -> Any:
    return client.http.request(method, path, headers=JSON, body=json.dumps(body).encode())


def test_lifecycle(client: Any, services: Services) -> None:
    created = send(client, "POST", BASE, notification())
    assert created.status_code == 201, created.body
    one = created.json_body
    assert one["notification_type"] == "smn"
    assert one["status"] == "enabled"
    assert one["project_id"] == PROJECT
    second = send(client, "POST", BASE, notification("to_lambda", topic_id=FUNCTION)).json_body

    smn = client.http.get(f"{BASE}/smn").json_body["notifications"]
    assert [n["notification_name"] for n in smn] == ["ecs_deletes"]
    assert smn[0] == one
    fun = client.http.get(f"{BASE}/fun?notification_name=to_lambda").json_body["notifications"]
    assert [n["notification_id"] for n in fun] == [second["notification_id"]]
    assert client.http.get(f"{BASE}/fun?notification_name=other").json_body == {"notifications": []}

    quotas = client.http.get(f"/v3/{PROJECT}/quotas").json_body["resources"]
    assert {"type": "smn_notification", "used": 2, "quota": 100} in quotas

    updated = send(
        client,
        "PUT",
        BASE,
        notification(notification_id=one["notification_id"], status="disabled"),
    )
    assert updated.status_code == 200, updated.body
    assert updated.json_body["status"] == "disabled"

    ids = f"{one['notification_id']},{second['notification_id']}"
    deleted = client.http.delete(f"{BASE}?notification_id={ids}")
    assert deleted.status_code == 204
    assert client.http.get(f"{BASE}/smn").json_body == {"notifications": []}
    quotas = client.http.get(f"/v3/{PROJECT}/quotas").json_body["resources"]
    assert {"type": "smn_notification", "used": 0, "quota": 100} in quotas


def test_matcher_sees_api_changes(client: Any, services: Services, clock: FixedClock) -> None:
    assert services.matcher is not None
    hit = trace(service_type="ECS", resource_type="ecs", trace_name="deleteServer", code="200")
    assert services.matcher.matches(PROJECT, hit) == []
    created = send(client, "POST", BASE, notification()).json_body
    clock.advance(2000)
    found = services.matcher.matches(PROJECT, hit)
    assert [(t.notification_id, t.topic_id) for t in found] == [(created["notification_id"], TOPIC)]
    assert services.matcher.matches(PROJECT, {**hit, "code": "500"}) == []


def test_errors_are_cts_bodies(client: Any) -> None:
    cases = [
        ("POST", BASE, notification(notification_name="bad-name"), 400, "CTS.1203"),
        ("POST", BASE, notification(pattern={"a": [{"nope": 1}]}), 400, "CTS.1205"),
        ("POST", BASE, [1, 2], 400, "CTS.0002"),
        ("PUT", BASE, notification(notification_id="missing", status="enabled"), 404, "CTS.1202"),
    ]
    for method, path, body, status, code in cases:
        response = send(client, method, path, body)
        assert (response.status_code, response.json_body["error_code"]) == (status, code)
        assert response.headers["X-Request-Id"]
    assert send(client, "POST", BASE, notification()).status_code == 201
    again = send(client, "POST", BASE, notification())
    assert (again.status_code, again.json_body["error_code"]) == (409, "CTS.1201")
    listed = client.http.get(f"{BASE}/sms")
    assert (listed.status_code, listed.json_body["error_code"]) == (400, "CTS.0001")
    gone = client.http.delete(f"{BASE}?notification_id=nope")
    assert (gone.status_code, gone.json_body["error_code"]) == (404, "CTS.1202")
    malformed = client.http.post(BASE, headers=JSON, body=b"{not json")
    assert (malformed.status_code, malformed.json_body["error_code"]) == (400, "CTS.0002")


def test_self_audit(client: Any) -> None:
    created = send(client, "POST", BASE, notification()).json_body
    send(client, "POST", BASE, notification(notification_name="bad name"))
    send(
        client,
        "PUT",
        BASE,
        notification(notification_id=created["notification_id"], status="disabled"),
    )
    client.http.delete(f"{BASE}?notification_id={created['notification_id']}")
    send(client, "POST", f"{BASE}/test", {"pattern": {"a": ["b"]}, "event": {"a": "b"}})
    traces = client.http.get(
        f"/v3/{PROJECT}/traces?service_type=CTS&resource_type=notification&limit=50"
    ).json_body["traces"]
    seen = sorted((t["trace_name"], t["code"], t["resource_name"]) for t in traces)
    assert seen == [
        ("createNotification", "201", "ecs_deletes"),
        ("createNotification", "400", "bad name"),
        ("deleteNotification", "204", created["notification_id"]),
        ("updateNotification", "200", "ecs_deletes"),
    ]
    assert all(t["user"]["name"] == "tester" for t in traces)


def test_rule_testing(client: Any) -> None:
    event = trace(service_type="ECS", resource_type="ecs", trace_name="deleteServer", code="500")
    answer = send(client, "POST", f"{BASE}/test", {"notification": notification(), "event": event})
    assert answer.status_code == 200
    assert answer.json_body["matched"] is False
    assert answer.json_body["reason"].startswith("filter: field 'code'")
    answer = send(
        client, "POST", f"{BASE}/test", {"pattern": {"x": [{"prefix": "a"}]}, "event": {"x": "ab"}}
    )
    assert answer.json_body == {"matched": True, "reason": "every condition matched"}
    bad = send(client, "POST", f"{BASE}/test", {"pattern": {"x": "a"}, "event": {}})
    assert (bad.status_code, bad.json_body["error_code"]) == (400, "CTS.1205")
    assert "'x'" in bad.json_body["error_msg"]


def test_rule_testing_over_reported_traces(client: Any) -> None:
    reported = [
        trace(
            trace_id=f"w{i:02d}",
            time=NOW_MS - 600_000 + i * 1000,
            service_type="ECS",
            resource_type="ecs",
            trace_name="deleteServer" if i % 2 else "createServer",
            user={"name": "alice" if i < 6 else "bob"},
        )
        for i in range(10)
    ]
    stored = send(client, "POST", f"/v3/{PROJECT}/traces", {"traces": reported})
    assert stored.json_body["meta_data"]["stored"] == 10
    rule = {"notification": notification(), "from": NOW_MS - 3_600_000, "to": NOW_MS, "limit": 2}
    first = send(client, "POST", f"{BASE}/test", rule).json_body
    assert [t["trace_id"] for t in first["traces"]] == ["w05", "w03"]
    marker = first["meta_data"]["marker"]
    assert marker
    rest = send(client, "POST", f"{BASE}/test", {**rule, "next": marker}).json_body
    assert [t["trace_id"] for t in rest["traces"]] == ["w01"]
    assert rest["meta_data"]["marker"] is None
