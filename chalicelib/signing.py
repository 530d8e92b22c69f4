"""AK/SK request signing in the Huawei Cloud SDK's `SDK-HMAC-SHA256` scheme: verify and sign.

OpenCTS authenticates every API call the way Huawei Cloud does, so the official SDK
(`huaweicloudsdkcts`) works unchanged. This module mirrors `huaweicloudsdkcore.signer.Signer`:

    canonical request = METHOD \\n canonical URI \\n canonical query \\n canonical headers \\n
                        signed headers \\n hex(sha256(body))
    string to sign    = "SDK-HMAC-SHA256" \\n X-Sdk-Date \\n hex(sha256(canonical request))
    Authorization     = SDK-HMAC-SHA256 Access=<ak>, SignedHeaders=<h1;h2>, Signature=<hex hmac>

- canonical URI: the path percent-decoded, each segment re-encoded (only `A-Z a-z 0-9 - _ . ~`
  left as is), with a trailing `/` added; so `/v3/p/traces` is signed as `/v3/p/traces/`, and a
  path given decoded or encoded canonicalizes the same (except a decoded value holding `%`).
- canonical query: every (name, value) pair, sorted, both encoded the same way, joined by `&`.
  The SDK also sends exactly this string as the URL's query.
- canonical headers: `name:value` for each signed header, names lower-cased, values stripped.
  The SDK signs every header whose name has no `_`; its non-ASCII values go out as the UTF-8 bytes
  (read back as Latin-1 by an HTTP server, which `_header_text` undoes).

What the verifier adds to the SDK's rules (the SDK never sends anything they refuse):

- `host` and `x-sdk-date` must be signed: without them a signature could be replayed against
  another endpoint or at any time.
- `X-Sdk-Date` (`%Y%m%dT%H%M%SZ`, UTC) must be within 15 minutes of our clock, both ways; exactly
  15 minutes is accepted. Within the window a captured request can be replayed: the scheme has no
  nonce, and TLS is what keeps requests from being captured.
- The body hash is always computed from the body received. A client may send
  `X-Sdk-Content-Sha256`, but it must equal that hash: `UNSIGNED-PAYLOAD` (which the SDK sends for
  non-JSON bodies, none of which our API takes) is refused on a request with a body.
- Every failure, whatever its cause, is the same 401 with the same message, and an unknown access
  key costs the same HMAC as a known one, so neither the answer nor its timing tells an attacker
  which part was wrong. The cause is kept in `NotAuthenticated.reason` for the logs.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import quote, unquote

from chalicelib.errors import CtsError

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW_MS = 15 * 60 * 1000
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
REQUIRED_SIGNED_HEADERS = ("host", "x-sdk-date")

UNAUTHENTICATED_MESSAGE = (
    "Authentication failed: sign the request with an active access key (SDK-HMAC-SHA256)"
)

_AUTHORIZATION_RE = re.compile(
    r"^SDK-HMAC-SHA256\s+Access=([^\s,]+),\s*SignedHeaders=([^\s,]+),\s*"
    r"Signature=([0-9a-fA-F]{64})$"
)
_HEADER_NAME_RE = re.compile(r"^[a-z0-9!#$%&'*+.^`|~-]+$")
_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")
# Signs for an unknown access key, so that it fails after the same work as a wrong signature.
_DECOY_SECRET = "0" * 40

Query = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]


class NotAuthenticated(CtsError):
    """401 with one message for every cause; `reason` is for the logs, never the response."""

    def __init__(self, reason: str) -> None:
        super().__init__(401, "CTS.0401", UNAUTHENTICATED_MESSAGE)
        self.reason = reason


@dataclass(frozen=True)
class SignedRequest:
    """An HTTP request as the API received it.

    `path` is the path without the query (percent-encoded as received, or decoded); `query` the
    decoded parameters, each with all its values; `headers` are looked up case-insensitively (the
    names are lower-cased here; of two names differing only in case the last wins, as in the SDK).
    """

    method: str
    path: str
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        lowered = {name.lower(): value for name, value in self.headers.items()}
        object.__setattr__(self, "headers", MappingProxyType(lowered))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# -- the canonical request, shared by sign() and verify() ----------------------------------------
def _encode(text: str) -> str:
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    uri = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def _pairs(query: Query) -> list[tuple[str, str]]:
    if not isinstance(query, Mapping):
        return [(str(name), str(value)) for name, value in query]
    pairs: list[tuple[str, str]] = []
    for name, values in query.items():
        if isinstance(values, str):
            pairs.append((name, values))
        else:
            pairs.extend((name, value) for value in values)
    return pairs


def query_string(query: Query) -> str:
    """The canonical query string: what the SDK sends as the URL's query, and signs."""
    return "&".join(f"{_encode(name)}={_encode(value)}" for name, value in sorted(_pairs(query)))


def _header_text(value: str) -> str:
    """The signed text of a received header value.

    The SDK sends a non-ASCII value as its UTF-8 bytes, which an HTTP server reads as Latin-1;
    reading it back as UTF-8 restores what was signed. A value that is not such a round trip (plain
    ASCII, real Latin-1, or text a gateway already decoded) is taken as it is.
    """
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("latin-1").decode("utf-8")
    return value.strip()


def _string_to_sign(
    method: str,
    path: str,
    pairs: Iterable[tuple[str, str]],
    header_values: Mapping[str, str],
    signed_headers: Sequence[str],
    body_sha256: str,
    date: str,
) -> str:
    canonical_headers = "".join(f"{name}:{header_values[name]}\n" for name in signed_headers)
    canonical_request = "\n".join(
        (
            method.upper(),
            canonical_uri(path),
            query_string(pairs),
            canonical_headers,
            ";".join(signed_headers),
            body_sha256,
        )
    )
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{date}\n{digest}"


def _signature(secret: str, string_to_sign: str) -> str:
    return hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), "sha256").hexdigest()


def format_date(now_ms: int) -> str:
    return time.strftime(DATE_FORMAT, time.gmtime(now_ms // 1000))


def _parse_date(text: str) -> int | None:
    if not _DATE_RE.match(text):
        return None
    try:
        parsed = time.strptime(text, DATE_FORMAT)
    except ValueError:
        return None
    return calendar.timegm(parsed) * 1000


# -- verify ----------------------------------------------------------------------------------------
def verify(request: SignedRequest, secret_lookup: Callable[[str], str | None], now_ms: int) -> str:
    """The access key id that signed the request, or NotAuthenticated (401).

    `secret_lookup` answers an access key id with its secret, or None when the key is unknown or
    disabled (`AccessKeyStore.secret_for`).
    """
    authorization = request.header("authorization")
    if not authorization:
        raise NotAuthenticated("no Authorization header")
    parsed = _AUTHORIZATION_RE.match(authorization.strip())
    if parsed is None:
        raise NotAuthenticated("malformed Authorization header")
    access_key_id, signed_list, signature = parsed.groups()

    signed_headers = signed_list.split(";")
    if len(set(signed_headers)) != len(signed_headers) or not all(
        _HEADER_NAME_RE.match(name) for name in signed_headers
    ):
        raise NotAuthenticated("malformed SignedHeaders")
    missing = [name for name in REQUIRED_SIGNED_HEADERS if name not in signed_headers]
    if missing:
        raise NotAuthenticated(f"headers {missing} are not signed")
    header_values: dict[str, str] = {}
    for name in signed_headers:
        value = request.header(name)
        if value is None:
            raise NotAuthenticated(f"signed header {name!r} is missing")
        header_values[name] = _header_text(value)

    date = header_values["x-sdk-date"]
    signed_at = _parse_date(date)
    if signed_at is None:
        raise NotAuthenticated("malformed X-Sdk-Date")
    if abs(now_ms - signed_at) > MAX_SKEW_MS:
        raise NotAuthenticated(f"X-Sdk-Date {date} is more than 15 minutes from now")

    body_sha256 = EMPTY_BODY_SHA256
    if request.body:
        body_sha256 = hashlib.sha256(request.body).hexdigest()
        claimed = request.header("x-sdk-content-sha256")
        if claimed is not None and claimed.strip() != body_sha256:
            raise NotAuthenticated("X-Sdk-Content-Sha256 is not the hash of the body")

    string_to_sign = _string_to_sign(
        request.method,
        request.path,
        _pairs(request.query),
        header_values,
        signed_headers,
        body_sha256,
        date,
    )
    secret = secret_lookup(access_key_id)
    expected = _signature(secret if secret is not None else _DECOY_SECRET, string_to_sign)
    matches = hmac.compare_digest(expected, signature.lower())
    if secret is None:
        raise NotAuthenticated(f"access key {access_key_id} is unknown or disabled")
    if not matches:
        raise NotAuthenticated(f"signature mismatch for access key {access_key_id}")
    return access_key_id


# -- sign ------------------------------------------------------------------------------------------
def _find(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def sign(
    *,
    access_key_id: str,
    secret: str,
    method: str,
    host: str,
    path: str,
    now_ms: int,
    query: Query = (),
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> dict[str, str]:
    """The headers to send: `headers` plus those the SDK's signer adds, exactly as it adds them.

    `host` is the endpoint's `host[:port]` (the SDK's `netloc`), `path` the request path and
    `query` its parameters; send the query as `query_string(query)`, as the SDK does. As in the
    SDK, a `Content-Type` other than JSON or BSON adds `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD`
    (which our verifier refuses when there is a body), and a given `X-Sdk-Date` is kept.
    """
    out = dict(headers or {})
    content_type = out.get("Content-Type")
    if content_type and not content_type.startswith(("application/json", "application/bson")):
        out["X-Sdk-Content-Sha256"] = UNSIGNED_PAYLOAD
    date = _find(out, "X-Sdk-Date")
    if date is None:
        date = format_date(now_ms)
        out["X-Sdk-Date"] = date
    if _find(out, "Host") is None:
        out["Host"] = host

    signed_headers = sorted(name.lower() for name in out if "_" not in name)
    header_values: dict[str, str] = {}
    for name, value in out.items():
        text = str(value).strip()
        header_values[name.lower()] = text
        out[name] = text.encode("utf-8").decode("latin-1")

    body_sha256 = EMPTY_BODY_SHA256
    if body:
        body_sha256 = _find(out, "X-Sdk-Content-Sha256") or hashlib.sha256(body).hexdigest()
    string_to_sign = _string_to_sign(
        method, path, _pairs(query), header_values, signed_headers, body_sha256, date
    )
    out["Authorization"] = (
        f"{ALGORITHM} Access={access_key_id}, SignedHeaders={';'.join(signed_headers)}, "
        f"Signature={_signature(secret, string_to_sign)}"
    )
    return out
