"""Authentication and authorization over HTTP: every route refuses what is not signed by an
active key, and the CTS policies decide what a key may do, before any handler runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

import app as app_module
from chalicelib import signing
from chalicelib.access_keys import KeyUser, NewAccessKey
from chalicelib.clock import FixedClock
from chalicelib.permissions import (
    ADMINISTRATOR,
    FORBIDDEN_MESSAGE,
    FULL_ACCESS,
    PUBLIC_OPERATIONS,
    PUBLIC_ROUTES,
    READ_ONLY_ACCESS,
    SYSTEM_POLICIES,
    action_for,
)
from chalicelib.wiring import Services
from tests.conftest import DOMAIN, OTHER_PROJECT, PROJECT, trace
from tests.integration.conftest import HOST

JSON = {"Content-Type": "application/json"}


def every_route() -> list[tuple[str, str]]:
    """(method, concrete path) for every route app.py declares, but the public ones (CloudTrail's
    ListPublicKeys: tested unsigned in test_digests.py)."""
    out = []
    for route, methods in app_module.app.routes.items():
        if route in PUBLIC_ROUTES:
            continue
        path = (
            route.replace("{project_id}", PROJECT)
            .replace("{proxy+}", "nope")
            .replace("{notification_type}", "smn")
            .replace("{resource_type}", "cts-tracker")
            .replace("{resource_id}", "t-1")
        )
        out.extend(
            (method, path)
            for method in methods
            if (method, route) not in PUBLIC_OPERATIONS
        )
    return sorted(out)


def make_key(services: Services, policy: str | list[str], projects: list[str]) -> NewAccessKey:
    return services.keys.create(
        user=KeyUser("u-key", "key-user"), domain_id=DOMAIN, project_ids=projects, policy=policy
    )


def assert_refused(response: Any, status: int) -> None:
    assert response.status_code == status, response.body
    body = response.json_body
    assert body == {
        "error_code": f"CTS.0{status}",
        "error_msg": signing.UNAUTHENTICATED_MESSAGE if status == 401 else FORBIDDEN_MESSAGE,
    }
    assert response.headers["X-Request-Id"]


@pytest.mark.parametrize(("method", "path"), every_route())
def test_every_route_refuses_an_unsigned_request(client: Any, method: str, path: str) -> None:
    body = b'{"traces": []}' if method in ("POST", "PUT") else b""
    r = client.unsigned.http.request(method, path, headers=JSON, body=body)
    assert_refused(r, 401)


@pytest.mark.parametrize(("method", "path"), every_route())
def test_every_route_refuses_a_wrong_secret(
    client: Any, full_key: NewAccessKey, clock: FixedClock, method: str, path: str
) -> None:
    forged = client.signed_by(full_key.key.access_key_id, "x" * 40, clock)
    body = b'{"traces": []}' if method in ("POST", "PUT") else b""
    assert_refused(forged.request(method, path, headers=JSON, body=body), 401)


def test_an_unknown_key_a_stale_date_and_a_changed_body_are_refused(
    client: Any, full_key: NewAccessKey, clock: FixedClock
) -> None:
    unknown = client.signed_by("A" * 20, full_key.secret, clock)
    assert_refused(unknown.get(f"/v3/{PROJECT}/traces"), 401)

    stale = FixedClock(clock.now_ms() - 16 * 60_000)
    old = client.signed_by(full_key.key.access_key_id, full_key.secret, stale)
    assert_refused(old.get(f"/v3/{PROJECT}/traces"), 401)

    headers = signing.sign(
        access_key_id=full_key.key.access_key_id,
        secret=full_key.secret,
        method="POST",
        host=HOST,
        path=f"/v3/{PROJECT}/traces",
        now_ms=clock.now_ms(),
        headers=JSON,
        body=json.dumps({"traces": [trace()]}).encode(),
    )
    tampered = json.dumps({"traces": [trace(user={"id": "u-x", "name": "mallory"})]}).encode()
    r = client.unsigned.http.post(f"/v3/{PROJECT}/traces", headers=headers, body=tampered)
    assert_refused(r, 401)


def test_a_disabled_key_is_refused_and_works_again_once_enabled(
    client: Any, services: Services, clock: FixedClock
) -> None:
    key = make_key(services, FULL_ACCESS, [PROJECT])
    http = client.signed_by(key.key.access_key_id, key.secret, clock)
    assert http.get(f"/v3/{PROJECT}/traces").status_code == 200

    services.keys.disable(key.key.access_key_id)
    assert_refused(http.get(f"/v3/{PROJECT}/traces"), 401)

    services.keys.enable(key.key.access_key_id)
    assert http.get(f"/v3/{PROJECT}/traces").status_code == 200


def test_a_deleted_key_is_refused(client: Any, services: Services, clock: FixedClock) -> None:
    key = make_key(services, FULL_ACCESS, [PROJECT])
    services.keys.delete(key.key.access_key_id)
    http = client.signed_by(key.key.access_key_id, key.secret, clock)
    assert_refused(http.get(f"/v3/{PROJECT}/traces"), 401)


def test_a_read_only_key_can_list_but_not_report(
    client: Any, services: Services, clock: FixedClock
) -> None:
    key = make_key(services, READ_ONLY_ACCESS, [PROJECT])
    http = client.signed_by(key.key.access_key_id, key.secret, clock)
    body = json.dumps({"traces": [trace(trace_id="ro")]}).encode()
    assert_refused(http.post(f"/v3/{PROJECT}/traces", headers=JSON, body=body), 403)
    assert http.get(f"/v3/{PROJECT}/traces").json_body["traces"] == []


def test_a_key_reaches_only_its_projects(
    client: Any, services: Services, clock: FixedClock
) -> None:
    key = make_key(services, FULL_ACCESS, [OTHER_PROJECT])
    http = client.signed_by(key.key.access_key_id, key.secret, clock)
    assert_refused(http.get(f"/v3/{PROJECT}/traces"), 403)
    assert_refused(http.get(f"/v3/{PROJECT}/operations"), 403)
    assert http.get(f"/v3/{OTHER_PROJECT}/traces").status_code == 200


def test_a_custom_policy_allows_exactly_its_actions(
    client: Any, services: Services, clock: FixedClock
) -> None:
    key = make_key(services, ["cts:trace:report"], [PROJECT])
    http = client.signed_by(key.key.access_key_id, key.secret, clock)
    body = json.dumps({"traces": [trace(trace_id="reporter")]}).encode()
    r = http.post(f"/v3/{PROJECT}/traces", headers=JSON, body=body)
    assert r.json_body["meta_data"]["stored"] == 1
    assert_refused(http.get(f"/v3/{PROJECT}/traces"), 403)


def test_refusals_never_log_the_secret_or_the_signature(
    client: Any, full_key: NewAccessKey, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    forged = client.signed_by(full_key.key.access_key_id, "y" * 40, clock)
    r = forged.get(f"/v3/{PROJECT}/traces")
    assert_refused(r, 401)
    assert client.http.get(f"/v3/{PROJECT}/traces").status_code == 200
    text = " ".join(str(vars(record)) for record in caplog.records)
    assert "signature mismatch" in text
    assert full_key.secret not in text
    assert "y" * 40 not in text
    assert "Signature=" not in text


# -- the permission matrix over HTTP: representative routes x the system policies -----------------
ROUTES: list[tuple[str, str, bytes]] = [
    ("POST", f"/v3/{PROJECT}/traces", json.dumps({"traces": [trace()]}).encode()),
    ("GET", f"/v3/{PROJECT}/traces", b""),
    ("GET", f"/v3/{PROJECT}/traces/export", b""),
    ("GET", f"/v3/{DOMAIN}/resources", b""),
    ("GET", f"/v3/{PROJECT}/user-resources", b""),
    ("GET", f"/v3/{PROJECT}/operations", b""),
]
_ROUTE_OF = {
    f"/v3/{PROJECT}/traces": "/v3/{project_id}/traces",
    f"/v3/{PROJECT}/traces/export": "/v3/{project_id}/traces/export",
    f"/v3/{DOMAIN}/resources": "/v3/{project_id}/resources",
    f"/v3/{PROJECT}/user-resources": "/v3/{project_id}/user-resources",
    f"/v3/{PROJECT}/operations": "/v3/{project_id}/operations",
}


@pytest.mark.parametrize("policy", [FULL_ACCESS, READ_ONLY_ACCESS, ADMINISTRATOR])
@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_permission_matrix(
    client: Any,
    services: Services,
    clock: FixedClock,
    policy: str,
    method: str,
    path: str,
    body: bytes,
) -> None:
    key = make_key(services, policy, [PROJECT])
    http = client.signed_by(key.key.access_key_id, key.secret, clock)
    r = http.request(method, path, headers=JSON, body=body)
    if action_for(method, _ROUTE_OF[path]) in SYSTEM_POLICIES[policy]:
        assert r.status_code == 200, r.body
    else:
        assert_refused(r, 403)


# -- the Lambda path: API Gateway's proxy event, as the deployed function receives it --------------
@dataclass
class LambdaContext:
    function_name: str = "opencts-dev"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:opencts-dev"
    aws_request_id: str = "req-1"


def gateway_event(
    key: NewAccessKey,
    clock: FixedClock,
    route: str,
    path_parameters: dict[str, str],
    path: str,
    query: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    host = "cts.example.com"
    headers = signing.sign(
        access_key_id=key.key.access_key_id,
        secret=key.secret,
        method="GET",
        host=host,
        path=path,
        now_ms=clock.now_ms(),
        query=query or {},
        headers={"User-Agent": "huaweicloud-usdk-python/3.0"},
    )
    return {
        "resource": route,
        "path": "/api" + path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in (query or {}).items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route,
            "httpMethod": "GET",
            "path": "/api" + path,  # API Gateway's own path carries the stage
            "stage": "api",
            "requestId": "gw-request-1",
            "identity": {"sourceIp": "192.0.2.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def test_the_lambda_event_of_api_gateway_is_verified(
    services: Services, full_key: NewAccessKey, clock: FixedClock
) -> None:
    query = {"service_type": ["ECS"], "limit": ["5"]}
    event = gateway_event(
        full_key, clock, "/v3/{project_id}/traces", {"project_id": PROJECT},
        f"/v3/{PROJECT}/traces", query,
    )  # fmt: skip
    response = app_module.app(event, LambdaContext())
    assert response["statusCode"] == 200, response["body"]
    assert json.loads(response["body"])["traces"] == []
    assert response["headers"]["X-Request-Id"] == "gw-request-1"

    event["multiValueQueryStringParameters"] = {"service_type": ["OBS"], "limit": ["5"]}
    refused = app_module.app(event, LambdaContext())
    assert refused["statusCode"] == 401


def test_the_greedy_route_of_api_gateway_is_verified_with_its_whole_path(
    services: Services, full_key: NewAccessKey, clock: FixedClock
) -> None:
    # API Gateway names the greedy parameter `proxy` and gives it every remaining segment.
    event = gateway_event(full_key, clock, "/{proxy+}", {"proxy": "v3/x/y/z"}, "/v3/x/y/z")
    response = app_module.app(event, LambdaContext())
    assert response["statusCode"] == 404, response["body"]
    assert json.loads(response["body"])["error_code"] == "CTS.0009"
