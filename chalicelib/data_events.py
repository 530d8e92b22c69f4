"""Data traces: S3 object operations on the buckets that data trackers watch (issue 3, item 3).

Two sources arrive from EventBridge: S3's own `Object Created` / `Object Deleted` events, and
CloudTrail data events for S3 (`GetObject`, `PutObject`, ... with `eventCategory` `Data`). Each
becomes one data trace per watching tracker whose `data_event` covers it (`READ` or `WRITE`), in
that tracker's project, with `tracker_name` set. Events for buckets no tracker watches are ignored
and counted (`DataEventsIgnored`), since an account's buckets are many and most are not audited.

Decisions:
- `trace_type`: `ObsSDK` when the user agent is an AWS SDK or CLI, `ObsAPI` for any other API
  caller, `Others` for the console and for S3's own events, which carry no user agent.
- `trace_id` is a UUID derived from the event id and the tracker, so a redelivered event is a
  duplicate while two trackers watching one bucket in one project each get their trace.
- `service_type` `S3`, `resource_type` `object`, `resource_id` the object ARN, `resource_name`
  the key: the names CloudTrail uses, as for management traces.
- Data traces are recorded whatever the tracker's status: disabling a tracker stops transfer,
  not recording (SPEC 6).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.ingest import Ingestor, TraceResult
from chalicelib.trackers import BucketWatch

READ_OPERATIONS_PREFIXES = ("Get", "Head", "List", "Select")
S3_OBJECT_EVENTS = frozenset({"Object Created", "Object Deleted"})
_SDK_AGENTS = ("aws-sdk-", "boto3/", "botocore/", "aws-cli/", "aws-internal/")
_CONSOLE_AGENTS = ("s3console", "[s3console", "aws-console", "signin.amazonaws.com")
_NAMESPACE = uuid.UUID("5a0c1e8e-4f7b-4c53-9a55-0c7d6f1d2b11")


@dataclass(frozen=True)
class ObjectOperation:
    """What both sources say about one object operation."""

    event_id: str
    bucket: str
    key: str
    operation: str
    time_ms: int
    access: str  # READ or WRITE
    source_ip: str
    user: dict[str, Any]
    user_agent: str
    request_id: str
    content_length: int | None
    request: str | None = None
    code: str = "200"
    rating: str = "normal"
    message: str | None = None


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def is_s3_data_event(envelope: Mapping[str, Any]) -> bool:
    detail = envelope.get("detail") or {}
    return (
        isinstance(detail, Mapping)
        and detail.get("eventSource") == "s3.amazonaws.com"
        and detail.get("eventCategory") == "Data"
    )


def from_s3_event(envelope: Mapping[str, Any]) -> ObjectOperation:
    detail = envelope["detail"]
    obj = detail.get("object") or {}
    created = envelope.get("detail-type") == "Object Created"
    requester = str(detail.get("requester", ""))
    return ObjectOperation(
        event_id=str(envelope["id"]),
        bucket=str(detail["bucket"]["name"]),
        key=str(obj.get("key", "")),
        operation=str(detail.get("reason") or ("PutObject" if created else "DeleteObject")),
        time_ms=_ms(str(envelope["time"])),
        access="WRITE",
        source_ip=str(detail.get("source-ip-address", "")),
        user={"id": requester, "name": requester, "account_id": requester} if requester else {},
        user_agent="",
        request_id=str(detail.get("request-id", "")),
        content_length=int(obj["size"]) if created and "size" in obj else None,
    )


def from_cloudtrail(envelope: Mapping[str, Any]) -> ObjectOperation:
    detail = envelope["detail"]
    params = detail.get("requestParameters") or {}
    identity = detail.get("userIdentity") or {}
    name = str(identity.get("userName") or str(identity.get("arn", "")).rsplit("/", 1)[-1])
    user = {
        k: v
        for k, v in {
            "id": str(identity.get("principalId", "")),
            "name": name,
            "account_id": str(identity.get("accountId", "")),
            "access_key_id": str(identity.get("accessKeyId", "")),
            "principal_urn": str(identity.get("arn", "")),
            "type": str(identity.get("type", "")),
        }.items()
        if v
    }
    extra = detail.get("additionalEventData") or {}
    transferred = extra.get("bytesTransferredIn") or extra.get("bytesTransferredOut")
    operation = str(detail["eventName"])
    error = detail.get("errorCode")
    return ObjectOperation(
        event_id=str(detail["eventID"]),
        bucket=str(params.get("bucketName", "")),
        key=str(params.get("key", "")),
        operation=operation,
        time_ms=_ms(str(detail["eventTime"])),
        access="READ"
        if detail.get("readOnly") or operation.startswith(READ_OPERATIONS_PREFIXES)
        else "WRITE",
        source_ip=str(detail.get("sourceIPAddress", "")),
        user=user,
        user_agent=str(detail.get("userAgent", "")),
        request_id=str(detail.get("requestID", "")),
        content_length=int(transferred) if transferred is not None else None,
        code=str(error) if error else "200",
        rating="warning" if error else "normal",
        message=str(detail.get("errorMessage")) if error else None,
    )


def trace_type_of(user_agent: str) -> str:
    agent = user_agent.lower()
    if not agent or agent.startswith(_CONSOLE_AGENTS):
        return "Others"
    if any(marker in agent for marker in _SDK_AGENTS):
        return "ObsSDK"
    return "ObsAPI"


def to_trace(op: ObjectOperation, tracker: str) -> dict[str, Any]:
    trace: dict[str, Any] = {
        "trace_id": str(uuid.uuid5(_NAMESPACE, f"{op.event_id}/{tracker}")),
        "trace_name": op.operation,
        "trace_rating": op.rating,
        "trace_type": trace_type_of(op.user_agent),
        "time": op.time_ms,
        "user": op.user,
        "service_type": "S3",
        "resource_type": "object",
        "resource_id": f"arn:aws:s3:::{op.bucket}/{op.key}",
        "resource_name": op.key or op.bucket,
        "source_ip": op.source_ip or "unknown",
        "code": op.code,
        "request_id": op.request_id,
        "tracker_name": tracker,
    }
    if op.user_agent:
        trace["user_agent"] = op.user_agent[:1024]
    if op.content_length is not None:
        trace["content_length"] = op.content_length
    if op.message:
        trace["message"] = op.message
    return {k: v for k, v in trace.items() if v not in (None, "")}


@dataclass
class DataEventRecorder:
    watchers: Callable[[str], Sequence[BucketWatch]]
    ingestor: Ingestor
    count: Callable[[str, int], None]

    def record(self, op: ObjectOperation) -> list[TraceResult]:
        watching = [w for w in self.watchers(op.bucket) if op.access in w.data_event]
        if not watching:
            self.count("DataEventsIgnored", 1)
            return []
        results: list[TraceResult] = []
        for watch in watching:
            trace = to_trace(op, watch.tracker_name)
            results += self.ingestor.report(watch.project_id, [trace], source="data")
        self.count("DataTracesRecorded", sum(r.status == "stored" for r in results))
        return results
