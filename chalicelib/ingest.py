"""Ingestion: one path from a batch of reported traces to the store, used by the HTTP API, the SQS
queue handler and the CloudTrail (EventBridge) handler alike.

Guarantee: at least once in, exactly once stored. Each trace gets its own result, `stored`,
`duplicate` (its trace id was already stored: nothing is changed), `rejected` (invalid: the error
says which field and why) or `failed` (storage refused it after every retry: report it again).
Valid traces are stored even when others in the batch are rejected.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib import errors, keys
from chalicelib.catalog import Catalog
from chalicelib.clock import Clock
from chalicelib.errors import CtsError
from chalicelib.model import Trace, parse_trace
from chalicelib.projects import ProjectRegistry
from chalicelib.store import TraceStore

MAX_TRACES_PER_CALL = 500
MAX_BODY_BYTES = 1024 * 1024

logger = logging.getLogger("opencts.ingest")

# (source, count per result status, delivery latency in ms of each stored trace): app.py's wiring
# turns it into metrics (chalicelib/observability.py); tests and benchmarks leave it out.
IngestObserver = Callable[[str, Mapping[str, int], Sequence[int]], None]


def _not_observed(source: str, statuses: Mapping[str, int], latencies_ms: Sequence[int]) -> None:
    pass


@dataclass(frozen=True)
class TraceResult:
    index: int
    trace_id: str | None
    status: str  # stored | duplicate | rejected | failed
    error: CtsError | None = None
    # The stored trace (for the delivery latency metric); not part of the reply.
    trace: Trace | None = field(default=None, compare=False, repr=False)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "trace_id": self.trace_id,
            "status": self.status,
        }
        if self.error is not None:
            out.update(self.error.body())
        return out


def summary(results: Sequence[TraceResult]) -> dict[str, int]:
    counts = {"stored": 0, "duplicate": 0, "rejected": 0, "failed": 0}
    for r in results:
        counts[r.status] += 1
    return counts


def parse_report_body(raw_body: bytes | None) -> list[Any]:
    """The body of `POST /v3/{project_id}/traces`: `{"traces": [ ... ]}`, 1 MiB and 500 at most."""
    if raw_body is None or not raw_body.strip():
        raise errors.malformed_body('a JSON object {"traces": [...]} is required')
    if len(raw_body) > MAX_BODY_BYTES:
        raise errors.body_too_large(MAX_BODY_BYTES)
    body = parse_json(raw_body)
    if not isinstance(body, dict) or set(body) != {"traces"}:
        raise errors.malformed_body('expected exactly one member, "traces"')
    traces = body["traces"]
    if not isinstance(traces, list) or not traces:
        raise errors.malformed_body('"traces" must be a non-empty array')
    if len(traces) > MAX_TRACES_PER_CALL:
        raise errors.too_many_traces(MAX_TRACES_PER_CALL)
    return traces


def parse_json(raw: bytes | str) -> Any:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise errors.malformed_body("not valid UTF-8") from None
    except RecursionError:
        raise errors.malformed_body("nested too deeply") from None
    except ValueError as e:
        raise errors.malformed_body(f"not valid JSON ({str(e)[:120]})") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@dataclass
class Ingestor:
    projects: ProjectRegistry
    store: TraceStore
    catalog: Catalog
    clock: Clock
    observe: IngestObserver = _not_observed

    def report(
        self, project_id: str, raw_traces: Sequence[Any], source: str = "api"
    ) -> list[TraceResult]:
        """`source` names where the traces came from (api, audit, queue, cloudtrail, data), for
        the metrics only."""
        results = self._report(project_id, raw_traces)
        stored = [r.trace for r in results if r.trace is not None]
        self.observe(source, summary(results), [t["record_time"] - t["time"] for t in stored])
        return results

    def _report(self, project_id: str, raw_traces: Sequence[Any]) -> list[TraceResult]:
        project = self.projects.require(project_id)
        now = self.clock.now_ms()
        results: list[TraceResult | None] = [None] * len(raw_traces)
        candidates: dict[str, tuple[int, Trace]] = {}
        for i, raw in enumerate(raw_traces):
            try:
                trace = parse_trace(raw, now)
            except CtsError as e:
                trace_id = raw.get("trace_id") if isinstance(raw, Mapping) else None
                results[i] = TraceResult(
                    i, trace_id if isinstance(trace_id, str) else None, "rejected", e
                )
                continue
            pk = keys.base_key(project_id, trace["trace_id"])
            if pk in candidates:
                results[i] = TraceResult(i, trace["trace_id"], "duplicate")
            else:
                candidates[pk] = (i, trace)

        existing = self.store.existing(list(candidates))
        items = []
        for pk, (i, trace) in candidates.items():
            if pk in existing:
                results[i] = TraceResult(i, trace["trace_id"], "duplicate")
            else:
                shards = project.shards_at(trace["time"])
                record_shards = project.shards_at(trace["record_time"])
                items.append(TraceStore.to_item(project_id, trace, shards, record_shards))
        failed = self.store.put_new(items)
        stored: list[Trace] = []
        for pk, (i, trace) in candidates.items():
            if results[i] is not None:
                continue
            if pk in failed:
                results[i] = TraceResult(
                    i, trace["trace_id"], "failed", errors.storage_unavailable()
                )
            else:
                results[i] = TraceResult(i, trace["trace_id"], "stored", trace=trace)
                stored.append(trace)
        if stored:
            try:
                self.catalog.record(project.domain_id, project_id, stored, now)
            except Exception:
                # The catalog is derived data: a failure here must not fail stored traces.
                logger.exception("catalog update failed", extra={"project_id": project_id})
        return [r for r in results if r is not None]


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    body: str


@dataclass
class QueueIngestor:
    """SQS batches: each message is `{"project_id": "...", "traces": [...]}`.

    Messages whose traces are all stored, duplicates or rejected are done: rejected ones are sent,
    with their errors, to the dead-letter queue (`dead_letter`), since retrying cannot fix them.
    Messages with a trace storage refused (throttling) are reported back as failed, so SQS retries
    only those. A message that cannot even be parsed is a poison message: it goes to the dead-letter
    queue at once and never blocks the rest of the batch.
    """

    ingestor: Ingestor
    dead_letter: Callable[[dict[str, Any]], None]

    def process(self, messages: Sequence[QueueMessage]) -> list[str]:
        """Returns the ids of the messages to retry."""
        retry: list[str] = []
        for message in messages:
            try:
                project_id, traces = self._parse(message.body)
                results = self.ingestor.report(project_id, traces, source="queue")
            except CtsError as e:
                if e.status >= 500:
                    retry.append(message.message_id)
                    continue
                if not self._park(message, [{"index": None, **e.body()}]):
                    retry.append(message.message_id)
                continue
            except Exception:
                logger.exception("queue message failed", extra={"message_id": message.message_id})
                retry.append(message.message_id)
                continue
            if any(r.status == "failed" for r in results):
                retry.append(message.message_id)
                continue
            rejected = [r.body() for r in results if r.status == "rejected"]
            if rejected and not self._park(message, rejected):
                retry.append(message.message_id)
        return retry

    @staticmethod
    def _parse(body: str) -> tuple[str, list[Any]]:
        if len(body.encode()) > MAX_BODY_BYTES:
            raise errors.body_too_large(MAX_BODY_BYTES)
        data = parse_json(body)
        if not isinstance(data, dict) or not isinstance(data.get("project_id"), str):
            raise errors.malformed_body('expected {"project_id": "...", "traces": [...]}')
        traces = data.get("traces")
        if not isinstance(traces, list) or not traces:
            raise errors.malformed_body('"traces" must be a non-empty array')
        if len(traces) > MAX_TRACES_PER_CALL:
            raise errors.too_many_traces(MAX_TRACES_PER_CALL)
        return data["project_id"], traces

    def _park(self, message: QueueMessage, problems: list[dict[str, Any]]) -> bool:
        try:
            self.dead_letter(
                {"message_id": message.message_id, "body": message.body, "errors": problems}
            )
        except Exception:
            logger.exception("dead-letter send failed", extra={"message_id": message.message_id})
            return False
        return True
