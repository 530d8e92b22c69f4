"""A real HTTP server (Chalice's local server) over moto, and requests signed as the SDK signs."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from chalicelib import signing
from chalicelib.clock import FixedClock
from tests.integration.conftest import full_key, services  # noqa: F401 - shared fixtures


class SdkHmacAuth(requests.auth.AuthBase):
    """Signs the request exactly as it goes out (final URL, final body bytes): whatever a fuzzer
    puts in it, the signature is right, so the API's answer is about the request, not the auth."""

    def __init__(self, key_id: str, secret: str, clock: FixedClock) -> None:
        self.key_id = key_id
        self.secret = secret
        self.clock = clock

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url or "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower()
            not in (
                "content-type",
                "content-length",
                "user-agent",
                "accept",
                "accept-encoding",
                "connection",
            )
        }
        signed = signing.sign(
            access_key_id=self.key_id,
            secret=self.secret,
            method=request.method or "GET",
            host=parts.netloc,
            path=parts.path,
            now_ms=self.clock.now_ms(),
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers=headers,
            body=body,
        )
        request.headers.update(signed)
        return request


@pytest.fixture
def signed_session(full_key, clock: FixedClock) -> Iterator[requests.Session]:  # noqa: F811
    session = requests.Session()
    session.auth = SdkHmacAuth(full_key.key.access_key_id, full_key.secret, clock)
    yield session
    session.close()
