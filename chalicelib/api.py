"""The operations behind the REST API and the event handlers: app.py calls one method each.

Everything here speaks plain Python: request parameters in, (status, body, headers) out, and
CtsError for every refusal, which app.py turns into the CTS error body in one place.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib import export
from chalicelib.audit import AuditedOperation, audit_trace
from chalicelib.catalog import Catalog
from chalicelib.clock import Clock
from chalicelib.cloudtrail import UnsupportedEvent, convert_event
from chalicelib.data_events import (
    DataEventRecorder,
    ObjectOperation,
    from_cloudtrail,
    from_s3_event,
    is_s3_data_event,
)
from chalicelib.errors import CtsError, invalid_parameter
from chalicelib.ingest import (
    Ingestor,
    QueueIngestor,
    QueueMessage,
    TraceResult,
    parse_report_body,
    summary,
)
from chalicelib.model import PROJECT_ID_RE, SERVICE_TYPE_RE
from chalicelib.params import Params, one_param
from chalicelib.projects import ProjectRegistry
from chalicelib.query import MAX_LIMIT, TraceFinder, TraceQuery, parse_query

logger = logging.getLogger("opencts.api")

# Writes an export too large to answer inline and returns a short-lived URL to it.
ExportSink = Callable[[str, bytes], str]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class TraceApi:
    projects: ProjectRegistry
    ingestor: Ingestor
    finder: TraceFinder
    catalog: Catalog
    clock: Clock
    export_sink: ExportSink | None = None
    cloudtrail_project_id: str = ""
    data_events: DataEventRecorder | None = None

    # -- ingestion ---------------------------------------------------------------------------
    def report(self, project_id: str, raw_body: bytes | None) -> dict[str, Any]:
        self.projects.require(project_id)
        results = self.ingestor.report(project_id, parse_report_body(raw_body))
        return {"results": [r.body() for r in results], "meta_data": summary(results)}

    def report_cloudtrail(self, envelope: Mapping[str, Any]) -> TraceResult | None:
        """An EventBridge CloudTrail event; None when it is not a supported event.
        S3 data events go to the data trackers watching their bucket."""
        if self.data_events is not None and is_s3_data_event(envelope):
            self._record_data(from_cloudtrail(envelope))
            return None
        try:
            raw = convert_event(envelope)
        except UnsupportedEvent as e:
            logger.warning("cloudtrail event skipped", extra={"reason": str(e)})
            return None
        result = self.ingestor.report(self.cloudtrail_project_id, [raw], source="cloudtrail")[0]
        if result.status == "failed":
            # Raising makes EventBridge retry the event (it retries for up to 24 hours).
            raise CtsError(503, "CTS.0503", "trace storage unavailable")
        return result

    def report_s3_object_event(self, envelope: Mapping[str, Any]) -> None:
        """S3's own `Object Created` / `Object Deleted` events, from EventBridge."""
        if self.data_events is not None:
            self._record_data(from_s3_event(envelope))

    def _record_data(self, op: ObjectOperation) -> None:
        assert self.data_events is not None
        if any(r.status == "failed" for r in self.data_events.record(op)):
            raise CtsError(503, "CTS.0503", "trace storage unavailable")

    def record_audit(
        self,
        project_id: str,
        operation: AuditedOperation,
        *,
        user: Mapping[str, Any],
        source_ip: str,
        request_body: Any,
        response_body: Any,
        status: int,
        params: Params,
        request_id: str,
    ) -> None:
        """Self-audit: the management call as a CTS trace in its project (when the project is
        known: a refused call on an unknown project has nowhere to be recorded)."""
        if self.projects.find(project_id) is None:
            return
        raw = audit_trace(
            operation,
            user=user,
            source_ip=source_ip,
            request_body=request_body,
            response_body=response_body,
            status=status,
            params=params,
            now_ms=self.clock.now_ms(),
            request_id=request_id,
        )
        (result,) = self.ingestor.report(project_id, [raw], source="audit")
        if result.status not in ("stored", "duplicate"):
            logger.error("self-audit trace not stored", extra={"status": result.status})

    def queue(self, dead_letter: Callable[[dict[str, Any]], None]) -> QueueIngestor:
        return QueueIngestor(self.ingestor, dead_letter)

    @staticmethod
    def queue_messages(records: Sequence[tuple[str, str]]) -> list[QueueMessage]:
        return [QueueMessage(message_id, body) for message_id, body in records]

    # -- queries -----------------------------------------------------------------------------
    def list_traces(self, project_id: str, params: Params) -> dict[str, Any]:
        project = self.projects.require(project_id)
        now = self.clock.now_ms()
        return self.finder.find(project, parse_query(params, now), now).body()

    def export_traces(self, project_id: str, params: Params) -> Reply:
        project = self.projects.require(project_id)
        now = self.clock.now_ms()
        base = parse_query({k: v for k, v in params.items() if k not in ("limit", "next")}, now)
        query = TraceQuery(
            base.kind, base.from_ms, base.to_ms, MAX_LIMIT, base.filters, base.trace_id
        )
        traces: list[dict[str, Any]] = []
        while len(traces) < export.MAX_ROWS:
            page = self.finder.find(project, query, now)
            traces.extend(page.traces)
            if page.marker is None or not page.traces:
                break
            last = page.traces[-1]
            query = TraceQuery(
                query.kind,
                query.from_ms,
                query.to_ms,
                query.limit,
                query.filters,
                None,
                (last["time"], last["trace_id"]),
            )
        body = export.to_csv(traces[: export.MAX_ROWS]).encode("utf-8")
        name = f"traces-{project_id}-{export.iso_ms(now).replace(':', '-')}.csv"
        if len(body) > export.MAX_INLINE_BYTES and self.export_sink is not None:
            url = self.export_sink(f"exports/{project_id}/{uuid.uuid4().hex}/{name}", body)
            return Reply(
                303,
                {"export_url": url, "rows": min(len(traces), export.MAX_ROWS)},
                {"Location": url},
            )
        return Reply(
            200,
            body.decode("utf-8"),
            {
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}"',
            },
        )

    def trace_resources(self, domain_id: str) -> dict[str, Any]:
        if not PROJECT_ID_RE.match(domain_id):
            raise invalid_parameter("domain_id", "must be 1-64 of A-Z a-z 0-9 _ -")
        return {"resources": self.catalog.resources(domain_id)}

    def user_resources(self, project_id: str) -> dict[str, Any]:
        self.projects.require(project_id)
        return {"users": self.catalog.users(project_id, self.clock.now_ms())}

    def operations(self, project_id: str, params: Params) -> dict[str, Any]:
        self.projects.require(project_id)
        for name in params:
            if name not in ("service_type", "resource_type"):
                raise invalid_parameter(name[:64], "is not a ListOperations parameter")
        service = one_param(params, "service_type")
        resource = one_param(params, "resource_type")
        if service is not None and not SERVICE_TYPE_RE.match(service):
            raise invalid_parameter("service_type", "is not a service type")
        if resource is not None and service is None:
            raise invalid_parameter("resource_type", "needs service_type")
        return {"operations": self.catalog.operations(project_id, service, resource)}

