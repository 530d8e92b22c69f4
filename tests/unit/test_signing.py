"""SDK-HMAC-SHA256: requests signed by the official Huawei Cloud SDK verify with ours, any change
to a signed part is refused with the same 401, and our signer is byte-identical to the SDK's.

Given a request signed by `huaweicloudsdkcore` (its Signer directly, or the whole CtsClient over
real HTTP), When OpenCTS receives it as an HTTP server would, Then `verify` names the access key.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer import signer as sdk_signer_module
from huaweicloudsdkcore.signer.signer import Signer
from huaweicloudsdkcts.v3 import (
    BatchCreateResourceTagsRequest,
    BatchCreateResourceTagsRequestBody,
    CreateTrackerRequest,
    CreateTrackerRequestBody,
    CtsClient,
    ListTraceResourcesRequest,
    ListTracesRequest,
    Tags,
    TrackerObsInfo,
)

from chalicelib import signing
from chalicelib.errors import CtsError
from chalicelib.signing import NotAuthenticated, SignedRequest, query_string, sign, verify

AK = "QWERTYUIOPASDFGHJKL1"
SK = "s3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3tS3CR3T0123"
OTHER_AK = "ZXCVBNMLKJHGFDSAPOI2"
OTHER_SK = "0therSecret0therSecret0therSecret0therSe"
PROJECT = "demo-project"
DOMAIN = "123456789012"
HOST = "cts.example.com:8443"
SIGNED_AT = datetime.datetime(2026, 11, 20, 12, 0, 0)  # the SDK's naive UTC
NOW_MS = 1_795_176_000_000  # the same instant, 2026-11-20T12:00:00Z
MINUTE_MS = 60_000
SECRETS = {AK: SK, OTHER_AK: OTHER_SK}


def lookup(access_key_id: str) -> str | None:
    return SECRETS.get(access_key_id)


@pytest.fixture(autouse=True)
def frozen_sdk_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's signer reads datetime.utcnow(); freeze it at SIGNED_AT."""

    class Frozen(datetime.datetime):
        @classmethod
        def utcnow(cls) -> Frozen:
            return cls(2026, 11, 20, 12, 0, 0)

    monkeypatch.setattr(sdk_signer_module, "datetime", Frozen)


def sdk_request(
    method: str,
    path: str,
    query: list[tuple[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    body: str | bytes | None = None,
) -> SdkRequest:
    return SdkRequest(
        method=method,
        schema="https",
        host=HOST,
        resource_path=path,
        query_params=query or [],
        header_params=dict(headers or {"Content-Type": "application/json"}),
        body=body,
    )


def sdk_sign(request: SdkRequest, ak: str = AK, sk: str = SK) -> SdkRequest:
    """As CtsClient signs: BasicCredentials adds X-Project-Id, then the SDK-HMAC-SHA256 Signer."""
    credentials = BasicCredentials(ak, sk, PROJECT)
    signed: SdkRequest = credentials.sign_request(request)
    return signed


def received(request: SdkRequest) -> SignedRequest:
    """What an HTTP server sees of the SDK's request: the URI split, the query decoded."""
    parts = urlsplit(request.uri)
    body = request.body or b""
    return SignedRequest(
        method=request.method,
        path=parts.path,
        query=parse_qs(parts.query, keep_blank_values=True),
        headers=dict(request.header_params),
        body=body if isinstance(body, bytes) else body.encode(),
    )


def refused(request: SignedRequest, now_ms: int = NOW_MS) -> NotAuthenticated:
    with pytest.raises(NotAuthenticated) as caught:
        verify(request, lookup, now_ms)
    error = caught.value
    assert error.status == 401
    assert error.body() == {
        "error_code": "CTS.0401",
        "error_msg": signing.UNAUTHENTICATED_MESSAGE,
    }
    return error


# -- requests signed by the SDK verify -------------------------------------------------------------
QUERY = [
    ("trace_type", "system"),
    ("limit", 10),
    ("user", "ålice ü"),
    ("resource_name", "a b/c?d=e&f+g%h#i"),
    ("tag", "zeta"),
    ("tag", "alpha"),
    ("empty", ""),
    ("unreserved", "A-Z_a.z~0"),
]


def test_get_with_repeated_unicode_and_reserved_query_values_verifies() -> None:
    request = received(sdk_sign(sdk_request("GET", f"/v3/{PROJECT}/traces", QUERY)))
    assert request.query["tag"] == ["alpha", "zeta"]
    assert request.query["resource_name"] == ["a b/c?d=e&f+g%h#i"]
    assert verify(request, lookup, NOW_MS) == AK


def test_post_with_a_json_body_verifies() -> None:
    body = json.dumps({"tracker_type": "system", "tracker_name": "system", "ü": "ñ"})
    request = received(sdk_sign(sdk_request("POST", f"/v3/{PROJECT}/tracker", body=body)))
    assert verify(request, lookup, NOW_MS) == AK


def test_path_parameters_verify_whether_the_path_arrives_encoded_or_decoded() -> None:
    resource_id = "tracker one/ü%"
    encoded = f"/v3/{PROJECT}/cts-tracker/{quote(resource_id, safe='')}/tags/create"
    request = received(sdk_sign(sdk_request("POST", encoded, body=b'{"tags": []}')))
    assert verify(request, lookup, NOW_MS) == AK
    # A gateway that decodes the path: only a literal '%' in a decoded value cannot round-trip.
    decoded = f"/v3/{PROJECT}/cts-tracker/tracker one/ü/tags/create"
    no_percent = received(
        sdk_sign(
            sdk_request(
                "POST",
                f"/v3/{PROJECT}/cts-tracker/{quote('tracker one/ü', safe='')}/tags/create",
                body=b'{"tags": []}',
            )
        )
    )
    assert verify(dataclasses.replace(no_percent, path=decoded), lookup, NOW_MS) == AK


def test_trailing_slash_is_signed_the_same() -> None:
    request = received(sdk_sign(sdk_request("GET", f"/v3/{PROJECT}/quotas/")))
    assert verify(request, lookup, NOW_MS) == AK
    assert verify(dataclasses.replace(request, path=f"/v3/{PROJECT}/quotas"), lookup, NOW_MS)


def test_a_non_ascii_header_value_sent_as_utf8_bytes_verifies() -> None:
    headers = {"Content-Type": "application/json", "X-Custom": "  café ünïcode  "}
    signed = sdk_sign(sdk_request("GET", f"/v3/{PROJECT}/trackers", headers=headers))
    # The SDK puts the UTF-8 bytes on the wire; an HTTP server reads them back as Latin-1.
    assert signed.header_params["X-Custom"] == "café ünïcode".encode().decode("latin-1")
    assert verify(received(signed), lookup, NOW_MS) == AK
    # A gateway that already decoded the value as UTF-8 verifies too.
    as_text = received(signed)
    headers_text = {**as_text.headers, "x-custom": "café ünïcode"}
    assert verify(dataclasses.replace(as_text, headers=headers_text), lookup, NOW_MS) == AK


def test_a_correct_content_sha256_header_is_accepted() -> None:
    body = b'{"a": 1}'
    headers = {
        "Content-Type": "application/json",
        "X-Sdk-Content-Sha256": hashlib.sha256(body).hexdigest(),
    }
    request = received(sdk_sign(sdk_request("PUT", f"/v3/{PROJECT}/tracker", None, headers, body)))
    assert verify(request, lookup, NOW_MS) == AK


def test_header_names_are_case_insensitive() -> None:
    request = received(sdk_sign(sdk_request("GET", f"/v3/{PROJECT}/traces", QUERY)))
    upper = {name.upper(): value for name, value in request.headers.items()}
    assert verify(dataclasses.replace(request, headers=upper), lookup, NOW_MS) == AK


# -- any change to a signed part is refused --------------------------------------------------------
@pytest.fixture
def good() -> SignedRequest:
    body = json.dumps({"tracker_type": "data", "tracker_name": "t1"}).encode()
    request = sdk_request("POST", f"/v3/{PROJECT}/tracker", [("x", "1"), ("x", "2")], body=body)
    signed = received(sdk_sign(request))
    assert verify(signed, lookup, NOW_MS) == AK
    return signed


def with_header(request: SignedRequest, name: str, value: str | None) -> SignedRequest:
    headers = {k: v for k, v in request.headers.items() if k != name}
    if value is not None:
        headers[name] = value
    return dataclasses.replace(request, headers=headers)


def authorization_parts(request: SignedRequest) -> tuple[str, str, str]:
    found = signing._AUTHORIZATION_RE.match(request.headers["authorization"])
    assert found is not None
    ak, signed_headers, signature = found.groups()
    return ak, signed_headers, signature


TAMPERINGS: dict[str, Callable[[SignedRequest], SignedRequest]] = {
    "method": lambda r: dataclasses.replace(r, method="PUT"),
    "path": lambda r: dataclasses.replace(r, path="/v3/other-project/tracker"),
    "query value": lambda r: dataclasses.replace(r, query={"x": ["1", "3"]}),
    "query value dropped": lambda r: dataclasses.replace(r, query={"x": ["1"]}),
    "query parameter added": lambda r: dataclasses.replace(r, query={**r.query, "y": ["1"]}),
    "signed header": lambda r: with_header(r, "x-project-id", "other-project"),
    "host": lambda r: with_header(r, "host", "evil.example.com"),
    "signed header missing": lambda r: with_header(r, "x-project-id", None),
    "body": lambda r: dataclasses.replace(r, body=r.body.replace(b"t1", b"t2")),
    "body dropped": lambda r: dataclasses.replace(r, body=b""),
    "date": lambda r: with_header(r, "x-sdk-date", "20261120T120001Z"),
    "date malformed": lambda r: with_header(r, "x-sdk-date", "2026-11-20T12:00:00Z"),
    "date missing": lambda r: with_header(r, "x-sdk-date", None),
    "key of another user": lambda r: with_header(
        r, "authorization", r.headers["authorization"].replace(AK, OTHER_AK)
    ),
    "unknown key": lambda r: with_header(
        r, "authorization", r.headers["authorization"].replace(AK, "UNKNOWNUNKNOWNUNKNOW")
    ),
    "signature": lambda r: with_header(
        r,
        "authorization",
        r.headers["authorization"][:-1] + ("0" if r.headers["authorization"][-1] != "0" else "1"),
    ),
    "signed headers list": lambda r: with_header(
        r, "authorization", r.headers["authorization"].replace("x-project-id;", "")
    ),
    "other scheme": lambda r: with_header(
        r, "authorization", r.headers["authorization"].replace("SDK-HMAC-SHA256", "SDK-HMAC-SM3")
    ),
    "authorization malformed": lambda r: with_header(r, "authorization", "SDK-HMAC-SHA256 x"),
    "authorization missing": lambda r: with_header(r, "authorization", None),
    "content hash of another body": lambda r: with_header(
        r, "x-sdk-content-sha256", hashlib.sha256(b"other").hexdigest()
    ),
    "unsigned payload": lambda r: with_header(r, "x-sdk-content-sha256", "UNSIGNED-PAYLOAD"),
}


@pytest.mark.parametrize("part", sorted(TAMPERINGS))
def test_tampering_with_any_part_is_refused_with_the_same_401(
    good: SignedRequest, part: str
) -> None:
    refused(TAMPERINGS[part](good))


def test_the_reason_is_kept_for_the_logs_only() -> None:
    request = received(sdk_sign(sdk_request("GET", f"/v3/{PROJECT}/traces")))
    error = refused(with_header(request, "authorization", None))
    assert error.reason == "no Authorization header"
    assert "Authorization" not in json.dumps(error.body())


def test_an_unknown_key_costs_the_same_hmac_as_a_known_one(
    good: SignedRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = signing._signature

    def counting(secret: str, string_to_sign: str) -> str:
        calls.append(secret)
        return real(secret, string_to_sign)

    monkeypatch.setattr(signing, "_signature", counting)
    refused(TAMPERINGS["unknown key"](good))
    assert len(calls) == 1


def _signed_without(header: str) -> SignedRequest:
    """A request signed correctly, but whose SignedHeaders leave out `header`."""
    request = received(sdk_sign(sdk_request("GET", f"/v3/{PROJECT}/traces")))
    names = [n for n in authorization_parts(request)[1].split(";") if n != header]
    values = {n: signing._header_text(request.headers[n]) for n in names}
    date = request.headers["x-sdk-date"]
    string_to_sign = signing._string_to_sign(
        "GET", request.path, [], values, names, signing.EMPTY_BODY_SHA256, date
    )
    authorization = (
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders={';'.join(names)}, "
        f"Signature={signing._signature(SK, string_to_sign)}"
    )
    return with_header(request, "authorization", authorization)


@pytest.mark.parametrize("header", ["host", "x-sdk-date"])
def test_host_and_date_must_be_signed(header: str) -> None:
    assert verify(_signed_without("user-agent"), lookup, NOW_MS) == AK  # the helper is sound
    error = refused(_signed_without(header))
    assert "not signed" in error.reason


def test_the_sdk_unsigned_payload_for_non_json_bodies_is_refused() -> None:
    headers = {"Content-Type": "text/plain"}
    signed = sdk_sign(sdk_request("POST", f"/v3/{PROJECT}/traces", None, headers, b"hello"))
    assert signed.header_params["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    refused(received(signed))
    # Without a body there is nothing to protect: the SDK's GET with that header verifies.
    empty = sdk_sign(sdk_request("GET", f"/v3/{PROJECT}/traces", None, headers))
    assert verify(received(empty), lookup, NOW_MS) == AK


# -- the clock-skew window -------------------------------------------------------------------------
@pytest.mark.parametrize("offset_ms", [-15 * MINUTE_MS, 15 * MINUTE_MS, 0, -1000, 1000])
def test_a_date_within_15_minutes_either_way_is_accepted(
    good: SignedRequest, offset_ms: int
) -> None:
    assert verify(good, lookup, NOW_MS + offset_ms) == AK


@pytest.mark.parametrize(
    "offset_ms", [-15 * MINUTE_MS - 1, 15 * MINUTE_MS + 1, 15 * MINUTE_MS + 1000, -86_400_000]
)
def test_a_date_past_15_minutes_is_refused(good: SignedRequest, offset_ms: int) -> None:
    assert "15 minutes" in refused(good, NOW_MS + offset_ms).reason


# -- our signer is the SDK's -----------------------------------------------------------------------
SIGN_CASES: dict[str, tuple[str, str, list[tuple[str, Any]], dict[str, str], bytes]] = {
    "GET with a query": ("GET", f"/v3/{PROJECT}/traces", QUERY, {}, b""),
    "POST JSON": (
        "POST",
        f"/v3/{PROJECT}/tracker",
        [],
        {"Content-Type": "application/json;charset=UTF-8"},
        json.dumps({"tracker_name": "system", "ü": 1}).encode(),
    ),
    "DELETE with a path parameter": (
        "DELETE",
        f"/v3/{PROJECT}/cts-tracker/{quote('a b/ü', safe='')}/tags/delete",
        [],
        {},
        b'{"tags": [{"key": "k"}]}',
    ),
    "headers the SDK does not sign": (
        "GET",
        f"/v3/{PROJECT}/quotas",
        [],
        {"User-Agent": "opencts-cli", "X_Unsigned": "1", "X-Custom": " ünï "},
        b"",
    ),
    "non-JSON content": ("POST", "/v3/p/traces", [], {"Content-Type": "text/csv"}, b"a,b"),
    "a given date": ("GET", "/v3/p/trackers", [], {"X-Sdk-Date": "20261120T115900Z"}, b""),
}


@pytest.mark.parametrize("case", sorted(SIGN_CASES))
def test_sign_produces_exactly_the_sdk_signers_headers(case: str) -> None:
    method, path, query, extra, body = SIGN_CASES[case]
    headers = {"Content-Type": "application/json", **extra}
    theirs = Signer(BasicCredentials(AK, SK)).sign(
        sdk_request(method, path, list(query), headers, body or None)
    )
    ours = sign(
        access_key_id=AK,
        secret=SK,
        method=method,
        host=HOST,
        path=path,
        query=[(k, str(v)) for k, v in query],
        headers=headers,
        body=body,
        now_ms=NOW_MS,
    )
    assert list(ours.items()) == list(theirs.header_params.items())
    expected_uri = path + ("?" + query_string([(k, str(v)) for k, v in query]) if query else "")
    assert theirs.uri == expected_uri


def test_sign_accepts_a_mapping_query_and_verifies() -> None:
    query = {"tag": ["zeta", "alpha"], "user": "ålice"}
    headers = sign(
        access_key_id=AK,
        secret=SK,
        method="GET",
        host=HOST,
        path=f"/v3/{PROJECT}/traces",
        query=query,
        now_ms=NOW_MS,
    )
    assert query_string(query) == "tag=alpha&tag=zeta&user=%C3%A5lice"
    request = SignedRequest(
        "GET",
        f"/v3/{PROJECT}/traces",
        parse_qs(query_string(query), keep_blank_values=True),
        headers,
    )
    assert verify(request, lookup, NOW_MS + 5 * MINUTE_MS) == AK


def test_format_date_is_the_sdk_date_format() -> None:
    assert signing.format_date(NOW_MS + 999) == SIGNED_AT.strftime("%Y%m%dT%H%M%SZ")


def test_every_failure_is_a_cts_error() -> None:
    assert issubclass(NotAuthenticated, CtsError)


# -- the whole SDK over real HTTP ------------------------------------------------------------------
@dataclasses.dataclass
class Captured:
    requests: list[SignedRequest] = dataclasses.field(default_factory=list)


@pytest.fixture
def capture_server() -> Iterator[tuple[str, Captured]]:
    """A stdlib HTTP server that records each request as received and answers `{}`."""
    captured = Captured()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _record(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            captured.requests.append(
                SignedRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers=dict(self.headers.items()),
                    body=self.rfile.read(length) if length else b"",
                )
            )
            payload = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _record

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", captured
    finally:
        server.shutdown()
        server.server_close()


def test_the_official_cts_client_over_http_verifies(
    capture_server: tuple[str, Captured], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the real clock: the SDK dates its requests with datetime.utcnow()
    endpoint, captured = capture_server
    config = HttpConfig.get_default_config()
    config.retry_times = 0
    client = (
        CtsClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(AK, SK, PROJECT))
        .with_endpoints([endpoint])
        .build()
    )
    client.list_traces(
        ListTracesRequest(
            trace_type="system", limit=50, user="ålice ü", resource_name="a/b c+d", _from=1
        )
    )
    client.create_tracker(
        CreateTrackerRequest(
            body=CreateTrackerRequestBody(
                tracker_type="data",
                tracker_name="t-ü",
                obs_info=TrackerObsInfo(bucket_name="my-bucket", file_prefix_name="p"),
            )
        )
    )
    client.batch_create_resource_tags(
        BatchCreateResourceTagsRequest(
            resource_type="cts-tracker",
            resource_id="id with/slash",
            body=BatchCreateResourceTagsRequestBody(tags=[Tags(key="k", value="v")]),
        )
    )
    client.list_trace_resources(ListTraceResourcesRequest(domain_id=DOMAIN))

    now = time.time_ns() // 1_000_000
    assert [r.method for r in captured.requests] == ["GET", "POST", "POST", "GET"]
    assert captured.requests[3].path == f"/v3/{DOMAIN}/resources"
    for request in captured.requests:
        assert verify(request, lookup, now) == AK
    tampered = dataclasses.replace(captured.requests[1], body=captured.requests[1].body + b" ")
    refused(tampered, now)
    wrong_secret = {AK: OTHER_SK}
    with pytest.raises(NotAuthenticated):
        verify(captured.requests[0], wrong_secret.get, now)
