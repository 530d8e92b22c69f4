"""The trace model (SPEC 3): validation of reported traces and their stored, wire-ready form.

A reported trace is checked field by field; the first bad field gives one clear error naming the
field and why (`CTS.0005`). Unknown fields are refused rather than dropped, so a typo in a reporter
is seen at once instead of silently losing data. `record_time` is always assigned by the service.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.clock import MS_PER_DAY, MS_PER_SECOND
from chalicelib.errors import CtsError, invalid_trace_field

RETENTION_MS = 7 * MS_PER_DAY
# A reporter's clock may run ahead of ours; a trace from further in the future is refused.
MAX_FUTURE_SKEW_MS = 15 * 60 * MS_PER_SECOND
# DynamoDB items are at most 400 KB with their index attributes; a trace keeps well below that.
MAX_TRACE_BYTES = 256 * 1024

MANAGEMENT_TYPES = frozenset({"ConsoleAction", "ApiCall", "SystemAction"})
DATA_TYPES = frozenset({"ObsSDK", "ObsAPI", "Others"})
RATINGS = frozenset({"normal", "warning", "incident"})
SYSTEM_TRACKER = "system"

TRACE_NAME_RE = re.compile(r"^[A-Za-z][0-9A-Za-z._-]{0,63}$")
SERVICE_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
TRACE_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
TRACKER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PROJECT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

# Fields in the order of the CTS v3 Traces model, then the data-trace extras.
TRACE_FIELDS = (
    "trace_id",
    "trace_name",
    "trace_rating",
    "trace_type",
    "time",
    "record_time",
    "user",
    "service_type",
    "resource_type",
    "resource_id",
    "resource_name",
    "source_ip",
    "request",
    "response",
    "code",
    "api_version",
    "message",
    "request_id",
    "location_info",
    "endpoint",
    "resource_url",
    "enterprise_project_id",
    "resource_account_id",
    "read_only",
    "operation_id",
    "user_agent",
    "content_length",
    "total_time",
    "tracker_name",
)

USER_STRING_FIELDS = (
    "id",
    "name",
    "user_name",
    "account_id",
    "access_key_id",
    "principal_urn",
    "principal_id",
    "principal_is_root_user",
    "type",
)


Trace = dict[str, Any]


def _text(field: str, value: Any, max_len: int, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise invalid_trace_field(field, "must be a string")
    if not value and not allow_empty:
        raise invalid_trace_field(field, "must not be empty")
    if len(value) > max_len:
        raise invalid_trace_field(field, f"must be at most {max_len} characters")
    if _CONTROL_RE.search(value):
        raise invalid_trace_field(field, "must not contain control characters")
    return value


def _pattern(field: str, value: Any, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise invalid_trace_field(field, rule)
    return value


def _integer(field: str, value: Any, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_trace_field(field, "must be an integer")
    if value < minimum:
        raise invalid_trace_field(field, f"must be at least {minimum}")
    if value > 2**53:
        raise invalid_trace_field(field, "is too large")
    return value


def _free_text(field: str, value: Any) -> str:
    """request, response and message are stored as strings; JSON given on ingest is serialised."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    raise invalid_trace_field(field, "must be a string or a JSON object")


def _code(field: str, value: Any) -> str:
    if isinstance(value, bool):
        raise invalid_trace_field(field, "must be a string or an integer")
    if isinstance(value, int):
        return str(value)
    return _text(field, value, 64)


def _user(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_trace_field("user", "must be an object")
    user: dict[str, Any] = {}
    for key, item in value.items():
        if key in USER_STRING_FIELDS:
            user[key] = _text(f"user.{key}", item, 1024)
        elif key == "domain":
            if not isinstance(item, dict):
                raise invalid_trace_field("user.domain", "must be an object")
            unknown = set(item) - {"id", "name"}
            if unknown:
                raise invalid_trace_field(
                    f"user.domain.{sorted(unknown)[0]}", "is not a known field"
                )
            user["domain"] = {k: _text(f"user.domain.{k}", v, 256) for k, v in item.items()}
        elif key == "invoked_by":
            if not isinstance(item, list) or len(item) > 32:
                raise invalid_trace_field("user.invoked_by", "must be a list of at most 32 strings")
            user["invoked_by"] = [_text("user.invoked_by", v, 256) for v in item]
        elif key == "session_context":
            user["session_context"] = _session_context(item)
        else:
            raise invalid_trace_field(f"user.{key}", "is not a known field")
    if "principal_is_root_user" in user and user["principal_is_root_user"] not in ("true", "false"):
        raise invalid_trace_field("user.principal_is_root_user", "must be 'true' or 'false'")
    return user


def _session_context(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) - {"attributes"}:
        raise invalid_trace_field("user.session_context", "must be {'attributes': {...}}")
    attributes = value.get("attributes", {})
    if not isinstance(attributes, dict) or set(attributes) - {"created_at", "mfa_authenticated"}:
        raise invalid_trace_field(
            "user.session_context.attributes", "may hold only created_at and mfa_authenticated"
        )
    return {
        "attributes": {
            k: _text(f"user.session_context.attributes.{k}", v, 64) for k, v in attributes.items()
        }
    }


def _bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid_trace_field(field, "must be true or false")
    return value


_Check = Callable[[str, Any], Any]

_OPTIONAL: dict[str, _Check] = {
    "resource_id": lambda f, v: _text(f, v, 2048),
    "resource_name": lambda f, v: _text(f, v, 1024),
    "request": _free_text,
    "response": _free_text,
    "message": _free_text,
    "code": _code,
    "api_version": lambda f, v: _text(f, v, 64),
    "request_id": lambda f, v: _text(f, v, 256),
    "location_info": lambda f, v: _text(f, v, 2048),
    "endpoint": lambda f, v: _text(f, v, 1024),
    "resource_url": lambda f, v: _text(f, v, 2048),
    "enterprise_project_id": lambda f, v: _text(f, v, 64),
    "resource_account_id": lambda f, v: _text(f, v, 64),
    "read_only": _bool,
    "operation_id": lambda f, v: _text(f, v, 256),
    "user_agent": lambda f, v: _text(f, v, 1024),
    "content_length": _integer,
    "total_time": _integer,
}


def parse_trace(raw: Any, now_ms: int) -> Trace:
    """Validate one reported trace and return its stored form, or raise CtsError (CTS.0005)."""
    if not isinstance(raw, dict):
        raise invalid_trace_field("trace", "each trace must be a JSON object")
    known = set(TRACE_FIELDS)
    for key in raw:
        if key not in known:
            raise invalid_trace_field(str(key)[:64], "is not a known trace field")

    trace: Trace = {}
    trace_id = raw.get("trace_id")
    trace["trace_id"] = (
        str(uuid.uuid4())
        if trace_id is None
        else _pattern("trace_id", trace_id, TRACE_ID_RE, "must be 1-128 of letters, digits, ._:-")
    )
    trace["trace_name"] = _pattern(
        "trace_name",
        raw.get("trace_name"),
        TRACE_NAME_RE,
        "must start with a letter and be 1-64 of letters, digits, '.', '_' and '-'",
    )
    rating = raw.get("trace_rating")
    if rating not in RATINGS:
        raise invalid_trace_field("trace_rating", "must be one of normal, warning, incident")
    trace["trace_rating"] = rating
    trace_type = raw.get("trace_type")
    if trace_type not in MANAGEMENT_TYPES | DATA_TYPES:
        raise invalid_trace_field(
            "trace_type",
            "must be ConsoleAction, ApiCall or SystemAction (management) "
            "or ObsSDK, ObsAPI or Others (data)",
        )
    trace["trace_type"] = trace_type

    if "time" not in raw:
        raise invalid_trace_field("time", "is required (milliseconds since the epoch)")
    occurred = _integer("time", raw["time"], minimum=1)
    if occurred < now_ms - RETENTION_MS:
        raise invalid_trace_field("time", "is older than the 7-day retention")
    if occurred > now_ms + MAX_FUTURE_SKEW_MS:
        raise invalid_trace_field("time", "is more than 15 minutes in the future")
    trace["time"] = occurred
    trace["record_time"] = now_ms

    trace["service_type"] = _pattern(
        "service_type",
        raw.get("service_type"),
        SERVICE_TYPE_RE,
        "must start with a letter and be 1-64 of letters, digits, '.', '_' and '-'",
    )
    trace["resource_type"] = _text(
        "resource_type", raw.get("resource_type"), 128, allow_empty=False
    )

    system_action = trace_type == "SystemAction"
    user = _user(raw.get("user", {}))
    if not user and not system_action:
        raise invalid_trace_field("user", "is required unless trace_type is SystemAction")
    if user and not (user.get("name") or user.get("id")):
        raise invalid_trace_field("user", "must carry at least a name or an id")
    trace["user"] = user
    source_ip = _text("source_ip", raw.get("source_ip", ""), 128)
    if not source_ip and not system_action:
        raise invalid_trace_field("source_ip", "is required unless trace_type is SystemAction")
    trace["source_ip"] = source_ip

    for field, check in _OPTIONAL.items():
        value = raw.get(field)
        if value is not None:
            trace[field] = check(field, value)

    tracker = raw.get("tracker_name")
    if trace_type in DATA_TYPES:
        trace["tracker_name"] = _pattern(
            "tracker_name",
            tracker,
            TRACKER_NAME_RE,
            "is required for data traces: 1-64 of letters, digits, '_' and '-'",
        )
    else:
        if tracker not in (None, SYSTEM_TRACKER):
            raise invalid_trace_field("tracker_name", "management traces belong to 'system'")
        trace["tracker_name"] = SYSTEM_TRACKER

    if len(json.dumps(trace, ensure_ascii=False).encode()) > MAX_TRACE_BYTES:
        raise invalid_trace_field("trace", f"is larger than {MAX_TRACE_BYTES} bytes")
    return trace


def is_data_trace(trace: Mapping[str, Any]) -> bool:
    return trace.get("trace_type") in DATA_TYPES


def check_project_id(project_id: str) -> str:
    if not PROJECT_ID_RE.match(project_id):
        raise CtsError(
            400, "CTS.0001", "Invalid parameter 'project_id': must be 1-64 of A-Z a-z 0-9 _ -"
        )
    return project_id
