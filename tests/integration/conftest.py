"""Fixtures for the app driven through chalice.test.Client on moto, with signed requests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import signing
from chalicelib.access_keys import KeyUser, NewAccessKey
from chalicelib.clock import FixedClock
from chalicelib.config import Settings
from chalicelib.permissions import FULL_ACCESS
from chalicelib.wiring import Services, build
from tests.conftest import DOMAIN, OTHER_PROJECT, PROJECT

# A project the key reaches but OpenCTS does not know: requests for it pass authorization and get
# CTS.0006 from the handler.
UNREGISTERED_PROJECT = "nobody"
# chalice.test.Client sends only the headers it is given; the signed Host is ours to choose.
HOST = "localhost"


@pytest.fixture
def services(created: dict[str, str], settings: Settings, clock: FixedClock) -> Iterator[Services]:
    settings = dataclasses.replace(settings, ingest_dlq_url=created["ingest_dlq_url"])
    svc = build(settings, clock)
    svc.projects.register(PROJECT, DOMAIN)
    svc.projects.register(OTHER_PROJECT, DOMAIN)
    app_module.use_services(svc)
    yield svc
    app_module.use_services(None)


@pytest.fixture
def full_key(services: Services) -> NewAccessKey:
    """A `CTS FullAccess` key for PROJECT and OTHER_PROJECT (and UNREGISTERED_PROJECT): what
    `client` signs with."""
    return services.keys.create(
        user=KeyUser("u-tester", "tester"),
        domain_id=DOMAIN,
        project_ids=[PROJECT, OTHER_PROJECT, UNREGISTERED_PROJECT],
        policy=FULL_ACCESS,
    )


class SignedHttp:
    """`client.http` with every request signed (SDK-HMAC-SHA256) by one access key, as the
    official SDK signs it: the query sent in canonical form, the body hashed."""

    def __init__(self, client: Client, key_id: str, secret: str, clock: FixedClock) -> None:
        self._client = client
        self._key_id = key_id
        self._secret = secret
        self._clock = clock

    def request(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> Any:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        given = dict(headers or {})
        # A non-JSON Content-Type makes the signer declare UNSIGNED-PAYLOAD, which we refuse;
        # leaving it unsigned lets the tests of content types reach the handler.
        content_type = given.pop("Content-Type", None)
        signed = signing.sign(
            access_key_id=self._key_id,
            secret=self._secret,
            method=method,
            host=HOST,
            path=parts.path,
            now_ms=self._clock.now_ms(),
            query=query,
            headers=given,
            body=body,
        )
        if content_type is not None:
            signed["Content-Type"] = content_type
        target = parts.path + ("?" + signing.query_string(query) if query else "")
        return self._client.http.request(method, target, headers=signed, body=body)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Any:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.request("DELETE", url, **kwargs)


class SignedClient:
    """chalice.test.Client whose `http` signs; `unsigned` is the plain one."""

    def __init__(self, client: Client, http: SignedHttp) -> None:
        self.unsigned = client
        self.http = http
        self.lambda_ = client.lambda_
        self.events = client.events

    def signed_by(self, key_id: str, secret: str, clock: FixedClock) -> SignedHttp:
        return SignedHttp(self.unsigned, key_id, secret, clock)


@pytest.fixture
def client(services: Services, full_key: NewAccessKey, clock: FixedClock) -> Iterator[Any]:
    with Client(app_module.app) as c:
        yield SignedClient(c, SignedHttp(c, full_key.key.access_key_id, full_key.secret, clock))
