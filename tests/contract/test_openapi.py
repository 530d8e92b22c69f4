"""The OpenAPI document is the API: it names every route app.py declares and nothing else, it is a
valid OpenAPI 3 document, it is served at /openapi.json, and schemathesis finds every generated
(signed) request answered with no 5xx and a response that matches the document."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis import checks

import app as app_module
from chalicelib import openapi
from chalicelib.permissions import CATCH_ALL_ROUTES, PUBLIC_ROUTES
from chalicelib.wiring import Services
from tests.conftest import PROJECT

DOCUMENT = openapi.document()
JSON = "application/json"


def test_the_document_names_every_route_and_nothing_else() -> None:
    declared = {
        (method.lower(), path)
        for path, methods in app_module.app.routes.items()
        if path not in CATCH_ALL_ROUTES | PUBLIC_ROUTES
        for method in methods
    }
    documented = {
        (method, path) for path, operations in DOCUMENT["paths"].items() for method in operations
    }
    assert documented == declared


def test_the_document_is_valid_openapi_3() -> None:
    validate(DOCUMENT)
    ids = [op["operationId"] for ops in DOCUMENT["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_the_document_is_served_without_a_signature(endpoint: str, services: Services) -> None:
    response = requests.get(f"{endpoint}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == DOCUMENT


def _signed_by_transport(document: dict[str, Any]) -> dict[str, Any]:
    """The document for the fuzzer: the session signs every request on its way out, so the
    security requirement is met by the transport, not by generated headers (tests/integration/
    test_auth.py covers unsigned and badly signed requests)."""
    fuzzed = copy.deepcopy(document)
    for operations in fuzzed["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
    fuzzed["components"].pop("securitySchemes")
    return fuzzed


SCHEMA = schemathesis.openapi.from_dict(_signed_by_transport(DOCUMENT))


@SCHEMA.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_5xx_and_every_response_matches_the_document(
    case: Any, endpoint: str, services: Services, signed_session: requests.Session
) -> None:
    # Most generated project ids are unknown (CTS.0006 / CTS.0403); one in four uses the project
    # the key may reach, so handlers run past authorization on generated bodies and parameters.
    if case.path_parameters and hash(repr(case.query)) % 4 == 0:
        case.path_parameters["project_id"] = PROJECT
    # Not every schema-valid request is accepted: some rules span parameters (tracker_name only
    # with trace_type=data, resource_type only with service_type, ...), which OpenAPI cannot say.
    case.call_and_validate(
        base_url=endpoint,
        session=signed_session,
        excluded_checks=[checks.positive_data_acceptance],
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        ("POST", f"/v3/{PROJECT}/traces", b"x" * (10 * 1024 * 1024), "application/json"),
        ("POST", f"/v3/{PROJECT}/traces", b"[" * 100_000 + b"]" * 100_000, "application/json"),
        ("POST", f"/v3/{PROJECT}/traces", b'{"traces": "\xff\xfe"}', "application/json"),
        ("POST", f"/v3/{PROJECT}/tracker", b"<xml/>", "application/xml"),
        ("PUT", f"/v3/{PROJECT}/tracker", b'{"tracker_name": "system"}', "text/plain"),
        ("GET", f"/v3/{PROJECT}/traces?limit=1&limit=2", b"", ""),
        ("GET", f"/v3/{PROJECT}/traces?limit=99999999999999999999999999", b"", ""),
        ("GET", f"/v3/{PROJECT}/traces?from=-5&to=-1", b"", ""),
        ("GET", f"/v3/{PROJECT}/traces?trace_name=%00", b"", ""),
        ("GET", f"/v3/{PROJECT}/traces?service_type=%FF%FE", b"", ""),
        ("DELETE", f"/v3/{PROJECT}/trackers?tracker_name=a&tracker_name=b", b"", ""),
    ],
)
def test_hostile_requests_get_a_4xx_with_the_cts_body(
    endpoint: str,
    services: Services,
    signed_session: requests.Session,
    method: str,
    path: str,
    body: bytes,
    content_type: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = signed_session.request(
        method, endpoint + path, data=body or None, headers=headers, timeout=30
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    error = response.json()
    assert set(error) == {"error_code", "error_msg"}
    assert error["error_code"].startswith("CTS.")
    assert response.headers["X-Request-Id"]


@pytest.mark.parametrize(
    "reported",
    [
        {"trace_name": "\u0000"},
        {"time": 1e400},
        {"time": -9999999999999999999},
        {"time": 2**80},
        {"user": {"name": "x" * 100_000}},
        [[[[[[[[[[]]]]]]]]]],
    ],
)
def test_a_hostile_trace_in_a_batch_is_rejected_alone(
    endpoint: str, services: Services, signed_session: requests.Session, reported: Any
) -> None:
    """A batch answers 200 with a result per trace: the bad one is rejected with its reason."""
    from tests.conftest import trace  # noqa: PLC0415

    good = trace(trace_id="good-1")
    bad = {**trace(), **reported} if isinstance(reported, dict) else reported
    raw = json.dumps({"traces": [good, bad]}).replace("Infinity", "1e400").encode()
    response = signed_session.post(
        f"{endpoint}/v3/{PROJECT}/traces", data=raw, headers={"Content-Type": JSON}, timeout=30
    )
    assert response.status_code == 200, response.text[:300]
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["stored", "rejected"]
    assert results[1]["error_code"].startswith("CTS.")
