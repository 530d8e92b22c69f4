"""Self-audit (user guide chapter 8, Table 8-1): CTS records its own management operations as
traces of service `CTS`, in the project the call was made on, whether the call succeeded or not.

A failed call (4xx/5xx) is a `warning` trace with the status as its code, so refused attempts show
in the trail too. The caller is the access key's user; the source IP is the caller's address as API
Gateway saw it. Request and response bodies are kept with every secret removed: any key whose
name says secret, password, token or signature, at any depth, has its value replaced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REDACTED = "******"
_SECRET_KEY_RE = re.compile(r"secret|password|passwd|token|signature|credential|^sk$", re.I)
MAX_BODY_CHARS = 64 * 1024


@dataclass(frozen=True)
class AuditedOperation:
    resource_type: str
    trace_name: str


# (method, route as app.py declares it) -> what the trace says. Status changes of a tracker are
# updateTracker (Table 8-1); exports are getTrace.
AUDITED: dict[tuple[str, str], AuditedOperation] = {
    ("POST", "/v3/{project_id}/tracker"): AuditedOperation("tracker", "createTracker"),
    ("PUT", "/v3/{project_id}/tracker"): AuditedOperation("tracker", "updateTracker"),
    ("DELETE", "/v3/{project_id}/trackers"): AuditedOperation("tracker", "deleteTracker"),
    ("POST", "/v3/{project_id}/{resource_type}/{resource_id}/tags/create"): AuditedOperation(
        "tracker", "createTags"
    ),
    ("DELETE", "/v3/{project_id}/{resource_type}/{resource_id}/tags/delete"): AuditedOperation(
        "tracker", "deleteTags"
    ),
    ("POST", "/v3/{project_id}/notifications"): AuditedOperation(
        "notification", "createNotification"
    ),
    ("PUT", "/v3/{project_id}/notifications"): AuditedOperation(
        "notification", "updateNotification"
    ),
    ("DELETE", "/v3/{project_id}/notifications"): AuditedOperation(
        "notification", "deleteNotification"
    ),
    ("GET", "/v3/{project_id}/traces/export"): AuditedOperation("trace", "getTrace"),
}

# Key management happens with the operator's AWS credentials (`opencts keys`), not through the
# API; the CLI records it in each project the key reaches.
KEY_OPERATIONS: dict[str, AuditedOperation] = {
    command: AuditedOperation("accessKey", f"{command}AccessKey")
    for command in ("create", "enable", "disable", "delete")
}


def redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _SECRET_KEY_RE.search(str(k)) else redact(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _body_text(body: Any) -> str:
    if body is None or (isinstance(body, bytes | str) and not body):
        return ""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            return "<binary>"
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return str(body)[:MAX_BODY_CHARS]
    text = json.dumps(redact(body), separators=(",", ":"), ensure_ascii=False, default=str)
    return text[:MAX_BODY_CHARS]


def resource_name_of(operation: AuditedOperation, request: Any, params: Mapping[str, Any]) -> str:
    if isinstance(request, Mapping):
        for key in ("tracker_name", "notification_name"):
            if isinstance(request.get(key), str):
                return str(request[key])
    names = params.get("tracker_name") or params.get("notification_id")
    if isinstance(names, list) and names:
        return str(names[0])
    return "system" if operation.resource_type == "tracker" else ""


def audit_trace(
    operation: AuditedOperation,
    *,
    user: Mapping[str, Any],
    source_ip: str,
    request_body: Any,
    response_body: Any,
    status: int,
    params: Mapping[str, Any],
    now_ms: int,
    request_id: str,
) -> dict[str, Any]:
    """The raw trace of one audited call, ready for Ingestor.report."""
    parsed_request: Any = None
    if isinstance(request_body, bytes | str) and request_body:
        try:
            parsed_request = json.loads(request_body)
        except ValueError:
            parsed_request = None
    ok = status < 400
    if not request_body and params:
        request_body = {
            k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in params.items()
        }
    if operation.trace_name == "getTrace":
        response_body = None  # the export itself is not copied into the audit trail
    trace: dict[str, Any] = {
        "trace_name": operation.trace_name,
        "trace_rating": "normal" if ok else "warning",
        "trace_type": "ApiCall",
        "time": now_ms,
        "user": dict(user),
        "service_type": "CTS",
        "resource_type": operation.resource_type,
        "resource_name": resource_name_of(operation, parsed_request, params)[:1024],
        "source_ip": source_ip or "unknown",
        "request": _body_text(request_body),
        "response": _body_text(response_body),
        "code": str(status),
        "api_version": "v3",
        "request_id": request_id,
    }
    if not ok and isinstance(response_body, Mapping) and "error_msg" in response_body:
        trace["message"] = str(response_body["error_msg"])[:1024]
    return {k: v for k, v in trace.items() if v != ""}
