"""The transfer cycle (SPEC 8; issue 4 items 1-3): trace files to S3, log events to CloudWatch Logs.

Every 5 minutes `TransferCycle.run()` walks every registered project and its trackers, reading
the tracker configuration afresh (a change takes effect from the current cycle). Traces are read
by RECORD time through the keys-only `by_record_time` index, one 5-minute slot at a time
(docs/ARCHITECTURE.md, "Transfer", has the full argument). In short:

- Per tracker, a state item (`XFER#<project>|<tracker>` / `STATE`) holds a lease, the S3
  watermark `next_slot` (every trace recorded before it is delivered) and the LTS cursor.
- Each open slot (from the watermark to now) has a slot item (`SLOT#<slot start>`): `hw`, the
  record time up to which the slot was read; `count`/`xor`, the number and the XOR of 64-bit
  hashes of the trace ids delivered from it; and `files`, the keys of the files written for it.
- Each cycle re-reads each open slot up to `now - SETTLE_MS`. If the traces visible at or below
  `hw` have exactly the delivered count and hash, every trace above `hw` is new. Otherwise a
  trace became visible late (or a run failed half-way): the slot's files are read back (they list
  their trace ids) and only the traces in none of them are delivered.
- A file's key is written into the slot item (pending) BEFORE it is put, so a crash after the
  put is reconciled by the next run: an existing object counts as delivered (and is recorded in
  the delivery log), a missing one does not (its traces are delivered again).
- A slot closes once `LATE_WINDOW_MS` has passed since its end: ingest stamps `record_time`
  before it writes, and a Lambda function runs at most 15 minutes, so no trace becomes visible
  later than that; 30 minutes is twice the bound. The watermark then moves past it.
- CloudWatch Logs ("LTS") keeps its own cursor and sends only traces older than the late window,
  in record-time order, so it needs no read-back; S3 and LTS never wait for each other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib import keys
from chalicelib import tracker_model as tm
from chalicelib.clock import MS_PER_DAY, MS_PER_HOUR, Clock
from chalicelib.control import ControlTable
from chalicelib.deliveries import DeliveredFile, DeliveryLog
from chalicelib.model import RETENTION_MS
from chalicelib.projects import Project, ProjectRegistry
from chalicelib.store import Item, TraceStore
from chalicelib.trace_files import (
    GZIP,
    JSON,
    MAX_FILE_BYTES,
    FileLayout,
    NotATraceFile,
    TraceFile,
    build_files,
    decompress,
    encode_trace,
    random_hex,
    read_traces,
)
from chalicelib.tracker_model import DATA, Tracker
from chalicelib.trackers import TrackerService
from chalicelib.transfer_adapters import (
    BucketFailure,
    LogEvent,
    LogSink,
    RecordedTraces,
    TraceFileBucket,
)

logger = logging.getLogger("opencts.transfer")

CYCLE_MS = 5 * 60_000
SLOT_MS = keys.SLOT_MS
LATE_WINDOW_MS = 30 * 60_000
# How long after its record_time a trace is first looked for (Settings.transfer_settle_ms: 30 s
# on AWS, where a big ingest batch takes seconds to write; 1 s on the local stack). A trace that
# becomes visible later still gets delivered (read-back); the delay only makes that rare.
SETTLE_MS = 5_000
# A Lambda function runs at most 15 minutes: a lease outlives its holder by a minute.
LEASE_MS = 16 * 60_000
STOP_BEFORE_END_MS = 60_000
MAX_SLOTS_PER_RUN = 12 * 24  # a day of slots per tracker per run; a longer backlog continues
STATE_PK = "XFER#"
STATE_SK = "STATE"
SLOT_SK = "SLOT#"
PENDING = "pending"
DONE = "done"
# PutLogEvents limits.
LOG_MAX_EVENTS = 10_000
LOG_MAX_BYTES = 1_048_576
LOG_EVENT_OVERHEAD = 26
LOG_MAX_EVENT_BYTES = 256 * 1024 - LOG_EVENT_OVERHEAD
LOG_MAX_SPAN_MS = 24 * MS_PER_HOUR - 1
LOG_MAX_AGE_MS = 14 * MS_PER_DAY
LOG_MAX_AHEAD_MS = 2 * MS_PER_HOUR
LOG_CHUNK = 1000  # traces sent between two cursor updates
KMS_DATA_KEY_EVENT = "createDatakey"
RULE_PREFIX = "opencts-"

Count = Callable[[str, int], None]


def _no_count(name: str, value: int) -> None:
    return None


def id_hash(trace_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(trace_id.encode(), digest_size=8).digest(), "big")


def aggregate(trace_ids: Iterable[str]) -> tuple[int, int]:
    """(count, XOR of id hashes): equal sets give equal aggregates, and a one-id change always
    changes the XOR."""
    count = xor = 0
    for trace_id in trace_ids:
        count += 1
        xor ^= id_hash(trace_id)
    return count, xor


class LeaseLost(Exception):
    """Another run took the tracker over (our lease expired): stop without writing."""


@dataclass
class TrackerReport:
    project_id: str
    tracker_name: str
    files: int = 0
    traces: int = 0
    log_events: int = 0
    lag_ms: int = 0  # now - the S3 watermark after the run
    skipped: str = ""  # why the tracker was not run ("leased")
    error: str = ""


@dataclass
class CycleReport:
    trackers: list[TrackerReport] = field(default_factory=list)
    out_of_time: bool = False

    @property
    def lag_ms(self) -> int:
        """The oldest S3 watermark's age: how far behind the slowest tracker is."""
        return max((t.lag_ms for t in self.trackers), default=0)

    @property
    def files(self) -> int:
        return sum(t.files for t in self.trackers)

    @property
    def traces(self) -> int:
        return sum(t.traces for t in self.trackers)

    def summary(self) -> dict[str, Any]:
        return {
            "trackers": len(self.trackers),
            "out_of_time": self.out_of_time,
            "files": self.files,
            "traces": self.traces,
            "log_events": sum(t.log_events for t in self.trackers),
            "skipped": [f"{t.project_id}/{t.tracker_name}" for t in self.trackers if t.skipped],
            "errors": [
                f"{t.project_id}/{t.tracker_name}: {t.error}" for t in self.trackers if t.error
            ],
        }


def kind_of_tracker(tracker: Tracker) -> str:
    return f"d:{tracker.tracker_name}" if tracker.tracker_type == DATA else "s"


def layout_of(tracker: Tracker, region: str) -> FileLayout:
    obs = tracker.obs_info
    return FileLayout(
        prefix=obs.file_prefix_name,
        region=region,
        project_id=tracker.project_id,
        tracker_name=tracker.tracker_name,
        compress_type=JSON if obs.compress_type == JSON else GZIP,
        sort_by_service=obs.is_sort_by_service,
    )


def excluded(tracker: Tracker, trace: Mapping[str, Any]) -> bool:
    """`management_event_selector.exclude_service`: KMS's createDatakey traces are not
    transferred (they are still recorded and queryable)."""
    return (
        trace.get("service_type") in tracker.exclude_service
        and trace.get("trace_name") == KMS_DATA_KEY_EVENT
    )


@dataclass
class _Lease:
    owner: str
    state: Item

    @property
    def version(self) -> int:
        return int(self.state.get("version", 0))


@dataclass
class TransferCycle:
    projects: ProjectRegistry
    trackers: TrackerService
    recorded: RecordedTraces
    control: ControlTable
    bucket: TraceFileBucket
    logs: LogSink | None
    deliveries: DeliveryLog
    clock: Clock
    region: str
    count: Count = _no_count
    lag: Callable[[str, float], None] = lambda name, value: None
    # (project_id, tracker_name, seconds behind): each S3-transferring tracker's lag, every run.
    tracker_lag: Callable[[str, str, float], None] = lambda project_id, name, value: None
    settle_ms: int = SETTLE_MS
    max_file_bytes: int = MAX_FILE_BYTES
    max_slots_per_run: int = MAX_SLOTS_PER_RUN
    random_part: Callable[[], str] = random_hex
    new_owner: Callable[[], str] = lambda: str(uuid.uuid4())
    # For fault tests: called after each put succeeded, before the slot item records it.
    after_put: Callable[[str], None] = lambda key: None

    # -- the cycle ------------------------------------------------------------------------------
    def run(self, time_left_ms: Callable[[], int] | None = None) -> CycleReport:
        """One cycle over every tracker. `time_left_ms` (the Lambda context's remaining time):
        trackers not reached while a reserve is left (a quarter of the run's time, at most a
        minute) wait for the next cycle (nothing is lost, their watermark has not moved)."""
        report = CycleReport()
        reserve = (
            min(STOP_BEFORE_END_MS, time_left_ms() // 4) if time_left_ms is not None else 0
        )
        for project_id in self.projects.project_ids():
            project = self.projects.find(project_id)
            if project is None:
                continue
            for tracker in self.trackers.trackers(project_id):
                if time_left_ms is not None and time_left_ms() < reserve:
                    logger.warning("transfer cycle out of time", extra={"next": project_id})
                    report.out_of_time = True
                    break
                report.trackers.append(self.run_tracker(project, tracker))
        if report.files:
            self.count("TraceFilesWritten", report.files)
            self.count("TracesTransferred", report.traces)
        if report.lag_ms:
            self.lag("TransferLag", report.lag_ms / 1000)
        for tracker_report in report.trackers:
            if tracker_report.lag_ms:
                self.tracker_lag(
                    tracker_report.project_id,
                    tracker_report.tracker_name,
                    tracker_report.lag_ms / 1000,
                )
        return report

    def run_tracker(self, project: Project, tracker: Tracker) -> TrackerReport:
        report = TrackerReport(project.project_id, tracker.tracker_name)
        wants_s3 = tracker.enabled and tracker.transfers_to_s3
        wants_lts = tracker.enabled and tracker.is_lts_enabled and self.logs is not None
        pk = self._pk(tracker)
        current = self.control.get(pk, STATE_SK)
        started = bool(current and (current.get("s3") or current.get("lts")))
        if not (wants_s3 or wants_lts or started):
            return report
        lease = self._acquire(pk, current)
        if lease is None:
            report.skipped = "leased"
            return report
        # S3 and LTS fail independently: an error in one never stops the other.
        for wanted, channel in ((wants_s3, "s3"), (wants_lts, "lts")):
            try:
                if wanted:
                    run = self._run_s3 if channel == "s3" else self._run_lts
                    run(project, tracker, lease, report)
                elif lease.state.get(channel):
                    self._drop(tracker, lease, channel)
            except LeaseLost:
                report.error = "lease lost"
                return report
            except Exception as e:
                logger.exception(
                    "transfer failed",
                    extra={
                        "project_id": project.project_id,
                        "tracker_name": tracker.tracker_name,
                        "channel": channel,
                    },
                )
                report.error = f"{channel}: {type(e).__name__}"
                self.count("TransferFailures", 1)
        self._release(lease)
        return report

    # -- lease ------------------------------------------------------------------------------------
    @staticmethod
    def _pk(tracker: Tracker) -> str:
        return f"{STATE_PK}{tracker.project_id}|{tracker.tracker_name}"

    def _acquire(self, pk: str, current: Item | None) -> _Lease | None:
        now = self.clock.now_ms()
        if current and int(current.get("lease_until", 0)) > now:
            return None
        owner = self.new_owner()
        state: Item = dict(current) if current else {"pk": pk, "sk": STATE_SK, "version": 0}
        version = int(state["version"])
        expected = version if current else None
        state.update(lease_owner=owner, lease_until=now + LEASE_MS, version=version + 1)
        if not self.control.put_checked(state, expected):
            return None
        return _Lease(owner, state)

    def _save(self, lease: _Lease) -> None:
        expected = lease.version
        lease.state["version"] = expected + 1
        if not self.control.put_checked(lease.state, expected):
            raise LeaseLost()

    def _release(self, lease: _Lease) -> None:
        lease.state["lease_until"] = 0
        try:
            self._save(lease)
        except LeaseLost:
            logger.warning("lease lost before release", extra={"pk": lease.state["pk"]})

    # -- S3 ---------------------------------------------------------------------------------------
    def _drop(self, tracker: Tracker, lease: _Lease, channel: str) -> None:
        """Transfer stopped (disabled, no bucket, LTS off): forget its progress. Enabling it
        again starts from the current cycle: traces recorded meanwhile are not backfilled."""
        if channel == "s3":
            for item in self.control.query(self._pk(tracker), SLOT_SK):
                self.control.delete(item["pk"], item["sk"])
        lease.state.pop(channel, None)
        self._save(lease)

    def _run_s3(
        self, project: Project, tracker: Tracker, lease: _Lease, report: TrackerReport
    ) -> None:
        now = self.clock.now_ms()
        s3: dict[str, Any] = dict(lease.state.get("s3") or {})
        if "next_slot" not in s3:
            # The current cycle: everything recorded since the slot of the previous run.
            s3["next_slot"] = keys.slot_start(now - CYCLE_MS)
        floor = keys.slot_start(now - RETENTION_MS)
        if int(s3["next_slot"]) < floor:
            s3["next_slot"] = floor  # older traces have left the 7-day window
        lease.state["s3"] = s3
        self._save(lease)
        observed: str | None = tracker.bucket_error
        try:
            self._ensure_lifecycle(tracker, lease, s3)
            first = int(s3["next_slot"])
            last = keys.slot_start(now)
            slots = range(first, last + 1, SLOT_MS)[: self.max_slots_per_run]
            closing = True
            for slot in slots:
                files, traces = self._deliver_slot(project, tracker, slot, now)
                report.files += files
                report.traces += traces
                if files:
                    observed = None
                if closing and slot + SLOT_MS + LATE_WINDOW_MS <= now:
                    s3["next_slot"] = slot + SLOT_MS
                    self._save(lease)
                    self.control.delete(self._pk(tracker), _slot_sk(slot))
                else:
                    closing = False
            report.lag_ms = now - int(s3["next_slot"])
        except BucketFailure as e:
            report.lag_ms = now - int(s3["next_slot"])
            observed = _bucket_detail(e.code) or tracker.bucket_error
            logger.warning(
                "transfer bucket refused a write",
                extra={
                    "project_id": project.project_id,
                    "tracker_name": tracker.tracker_name,
                    "s3_error": e.code,
                },
            )
            report.error = f"S3 {e.code}"
            self.count("TransferFailures", 1)
        finally:
            if observed != tracker.bucket_error:
                self.trackers.report_bucket_state(
                    project.project_id, tracker.tracker_name, observed
                )

    def _ensure_lifecycle(self, tracker: Tracker, lease: _Lease, s3: dict[str, Any]) -> None:
        """A data tracker's `bucket_lifecycle` as a lifecycle rule on its file prefix, set when
        the setting is first seen or changes (idempotent)."""
        if tracker.tracker_type != DATA:
            return
        obs = tracker.obs_info
        prefix = f"{obs.file_prefix_name}/" if obs.file_prefix_name else ""
        wanted = f"{obs.bucket_name}|{prefix}|{obs.bucket_lifecycle or 0}"
        if s3.get("lifecycle") == wanted:
            return
        rule_id = f"{RULE_PREFIX}{tracker.project_id}-{tracker.tracker_name}"
        self.bucket.ensure_lifecycle(
            obs.bucket_name, rule_id, f"{prefix}CloudTraces/", obs.bucket_lifecycle or None
        )
        s3["lifecycle"] = wanted
        self._save(lease)

    def _visible(self, project: Project, tracker: Tracker, slot: int, upper: int) -> dict[str, int]:
        """trace_id -> record_time of every trace visible in the slot up to `upper`."""
        kind = kind_of_tracker(tracker)
        lo = keys.record_sort_key(slot, "")
        hi = keys.sort_key_upper(upper)
        out: dict[str, int] = {}
        for shard in range(project.shards_between(slot, slot + SLOT_MS)):
            pk = keys.record_partition_key(project.project_id, kind, slot, shard)
            for sk in self.recorded.sort_keys(pk, lo, hi):
                record_time, trace_id = keys.parse_record_sort_key(sk)
                out[trace_id] = record_time
        return out

    def _deliver_slot(
        self, project: Project, tracker: Tracker, slot: int, now: int
    ) -> tuple[int, int]:
        """Delivers what is new in one slot; returns (files, traces) written."""
        upper = min(slot + SLOT_MS - 1, now - self.settle_ms)
        if upper < slot:
            return 0, 0
        pk, sk = self._pk(tracker), _slot_sk(slot)
        item = self.control.get(pk, sk) or {
            "pk": pk, "sk": sk, "hw": slot - 1, "count": 0, "xor": "0", "files": [],
        }
        self._reconcile(project, tracker, item)
        visible = self._visible(project, tracker, slot, upper)
        hw = int(item["hw"])
        old = [t for t, r in visible.items() if r <= hw]
        if not item.get("reread") and aggregate(old) == (
            int(item["count"]), int(str(item["xor"]), 16)
        ):
            todo = [t for t, r in visible.items() if r > hw]
        else:
            delivered = self._read_back(item)
            todo = [t for t in visible if t not in delivered]
        found = {
            str(i["trace_id"]): i
            for i in self.recorded.fetch([keys.base_key(project.project_id, t) for t in todo])
            if int(i.get("expires_at", 0)) > now // 1000
        }
        missing = {t for t in todo if t not in found}
        wanted = [_trace_of(i) for i in found.values() if not excluded(tracker, i)]
        obs = tracker.obs_info
        built = build_files(
            wanted,
            compress_type=JSON if obs.compress_type == JSON else GZIP,
            sort_by_service=obs.is_sort_by_service,
            max_bytes=self.max_file_bytes,
        )
        layout = layout_of(tracker, self.region)
        traces = 0
        for trace_file in built:
            self._put_file(project, tracker, item, layout, trace_file)
            traces += trace_file.count
        count, xor = aggregate(t for t in visible if t not in missing)
        before = dict(item)
        item.update(hw=upper, count=count, xor=f"{xor:x}", reread=False)
        if built or (item != before and visible):
            self.control.put(item)  # an idle slot costs no write
        return len(built), traces

    def _put_file(
        self,
        project: Project,
        tracker: Tracker,
        item: Item,
        layout: FileLayout,
        trace_file: TraceFile,
    ) -> None:
        planned = self.clock.now_ms()
        bucket = tracker.obs_info.bucket_name
        key = layout.key(planned, trace_file.service_type, self.random_part())
        entry = {"bucket": bucket, "key": key, "n": trace_file.count, "state": PENDING,
                 "planned_ms": planned}
        item["files"] = [*item["files"], entry]
        self.control.put(item)  # the intent, before the put
        content_type = "application/json" if layout.compress_type == JSON else "application/gzip"
        self.bucket.put(bucket, key, trace_file.body, content_type, tracker.transfer_kms_id)
        delivered = self.clock.now_ms()
        self.after_put(key)
        self.deliveries.record(
            DeliveredFile(
                project_id=project.project_id,
                tracker_name=tracker.tracker_name,
                bucket=bucket,
                key=key,
                sha256=trace_file.sha256,
                oldest_event_ms=trace_file.oldest_ms,
                newest_event_ms=trace_file.newest_ms,
                delivered_ms=delivered,
                count=trace_file.count,
                size=len(trace_file.body),
            )
        )
        entry["state"] = DONE
        count, xor = aggregate(trace_file.trace_ids)
        item["count"] = int(item["count"]) + count
        item["xor"] = f"{int(str(item['xor']), 16) ^ xor:x}"
        self.control.put(item)

    def _reconcile(self, project: Project, tracker: Tracker, item: Item) -> None:
        """Files whose put may or may not have happened (a run ended between the intent and the
        record): an object that exists is delivered, one that does not is forgotten."""
        pending = [f for f in item["files"] if f["state"] == PENDING]
        if not pending:
            return
        for entry in pending:
            body = self.bucket.get(entry["bucket"], entry["key"])
            if body is None:
                item["files"] = [f for f in item["files"] if f is not entry]
                continue
            raw = decompress(entry["key"], body)
            traces = read_traces(entry["key"], body)
            if not self._logged(project, tracker, entry):
                times = [int(t["time"]) for t in traces] or [0]
                self.deliveries.record(
                    DeliveredFile(
                        project_id=project.project_id,
                        tracker_name=tracker.tracker_name,
                        bucket=entry["bucket"],
                        key=entry["key"],
                        sha256=hashlib.sha256(raw).hexdigest(),
                        oldest_event_ms=min(times),
                        newest_event_ms=max(times),
                        # Now, not when the put happened: the digest of that hour may be written.
                        delivered_ms=self.clock.now_ms(),
                        count=len(traces),
                        size=len(body),
                    )
                )
            entry["state"] = DONE
            entry["n"] = len(traces)
        # The reconciled traces are not in count/xor: this pass reads the files back.
        item["reread"] = True
        self.control.put(item)

    def _logged(self, project: Project, tracker: Tracker, entry: Mapping[str, Any]) -> bool:
        planned = int(entry["planned_ms"])
        for hour in (planned, planned + MS_PER_HOUR):
            hour_start = hour - hour % MS_PER_HOUR
            for f in self.deliveries.delivered_in_hour(
                project.project_id, tracker.tracker_name, hour_start
            ):
                if f.key == entry["key"] and f.bucket == entry["bucket"]:
                    return True
        return False

    def _read_back(self, item: Item) -> set[str]:
        """The trace ids in the slot's delivered files. A file that is gone (deleted by someone,
        or its bucket removed) delivered nothing: its traces are delivered again."""
        delivered: set[str] = set()
        for entry in item["files"]:
            if entry["state"] != DONE:
                continue
            body = self.bucket.get(entry["bucket"], entry["key"])
            if body is None:
                continue
            try:
                delivered.update(str(t.get("trace_id")) for t in read_traces(entry["key"], body))
            except NotATraceFile:
                logger.warning("unreadable trace file", extra={"key": entry["key"]})
        return delivered

    # -- CloudWatch Logs --------------------------------------------------------------------------
    def _run_lts(
        self, project: Project, tracker: Tracker, lease: _Lease, report: TrackerReport
    ) -> None:
        assert self.logs is not None
        now = self.clock.now_ms()
        lts: dict[str, Any] = dict(lease.state.get("lts") or {})
        if "cursor" not in lts:
            lts["cursor"] = f"{keys.slot_start(now - CYCLE_MS):013d}"
        floor = f"{now - RETENTION_MS:013d}"
        lts["cursor"] = max(lts["cursor"], floor)
        lease.state["lts"] = lts
        self._save(lease)
        final = now - LATE_WINDOW_MS
        cursor_time = int(lts["cursor"][:13])
        if cursor_time > final:
            return
        self.logs.ensure_stream(tm.LOG_GROUP, tracker.log_stream_name)
        first = keys.slot_start(cursor_time)
        for slot in range(first, keys.slot_start(final) + 1, SLOT_MS)[: self.max_slots_per_run]:
            upper = min(slot + SLOT_MS - 1, final)
            sorted_keys = self._log_keys(project, tracker, slot, upper, lts["cursor"])
            for start in range(0, len(sorted_keys), LOG_CHUNK):
                chunk = sorted_keys[start : start + LOG_CHUNK]
                ids = [keys.parse_record_sort_key(sk)[1] for sk in chunk]
                items = self.recorded.fetch([keys.base_key(project.project_id, t) for t in ids])
                traces = [
                    _trace_of(i)
                    for i in items
                    if int(i.get("expires_at", 0)) > now // 1000
                ]
                report.log_events += self._send_events(tracker, traces, now)
                lts["cursor"] = chunk[-1]
                self._save(lease)
            lts["cursor"] = keys.sort_key_upper(upper)
            self._save(lease)

    def _log_keys(
        self, project: Project, tracker: Tracker, slot: int, upper: int, cursor: str
    ) -> list[str]:
        kind = kind_of_tracker(tracker)
        lo = max(keys.record_sort_key(slot, ""), cursor)
        hi = keys.sort_key_upper(upper)
        found: list[str] = []
        for shard in range(project.shards_between(slot, slot + SLOT_MS)):
            pk = keys.record_partition_key(project.project_id, kind, slot, shard)
            found.extend(sk for sk in self.recorded.sort_keys(pk, lo, hi) if sk > cursor)
        return sorted(found)

    def _send_events(self, tracker: Tracker, traces: Sequence[Mapping[str, Any]], now: int) -> int:
        assert self.logs is not None
        events: list[LogEvent] = []
        for trace in traces:
            stamp = int(trace["time"])
            if not now - LOG_MAX_AGE_MS < stamp <= now + LOG_MAX_AHEAD_MS:
                logger.warning(
                    "trace outside CloudWatch Logs' time range, not sent",
                    extra={"trace_id": trace.get("trace_id"), "time": stamp},
                )
                self.count("LogEventsSkipped", 1)
                continue
            events.append((stamp, log_message(trace)))
        sent = 0
        for batch in log_batches(events):
            rejected = self.logs.put_events(tm.LOG_GROUP, tracker.log_stream_name, batch)
            if rejected:
                logger.warning("CloudWatch Logs rejected events", extra={"rejected": rejected})
                self.count("LogEventsSkipped", rejected)
            sent += len(batch) - rejected
        return sent


def log_message(trace: Mapping[str, Any]) -> str:
    """The trace as JSON; one too large for an event loses its largest fields, named."""
    message = encode_trace(trace)
    if len(message) <= LOG_MAX_EVENT_BYTES:
        return message.decode("utf-8")
    slim = dict(trace)
    for name in sorted(("request", "response", "message"), key=lambda n: -len(str(slim.get(n)))):
        if name in slim:
            slim[name] = f"(omitted from the log event: {len(str(slim[name]))} characters)"
            message = encode_trace(slim)
            if len(message) <= LOG_MAX_EVENT_BYTES:
                return message.decode("utf-8")
    slim = {k: slim[k] for k in ("trace_id", "trace_name", "time", "service_type") if k in slim}
    slim["omitted"] = "the trace is larger than a log event; it is in the trace files"
    return json.dumps(slim)


def log_batches(events: Sequence[LogEvent]) -> list[list[LogEvent]]:
    """PutLogEvents batches in time order: at most 10,000 events and 1,048,576 bytes (message
    bytes + 26 per event) each, spanning less than 24 hours."""
    batches: list[list[LogEvent]] = []
    batch: list[LogEvent] = []
    size = 0
    for event in sorted(events, key=lambda e: e[0]):
        event_size = len(event[1].encode("utf-8")) + LOG_EVENT_OVERHEAD
        if batch and (
            len(batch) >= LOG_MAX_EVENTS
            or size + event_size > LOG_MAX_BYTES
            or event[0] - batch[0][0] > LOG_MAX_SPAN_MS
        ):
            batches.append(batch)
            batch, size = [], 0
        batch.append(event)
        size += event_size
    if batch:
        batches.append(batch)
    return batches


def _slot_sk(slot: int) -> str:
    return f"{SLOT_SK}{slot:013d}"


def _trace_of(item: Mapping[str, Any]) -> dict[str, Any]:
    return TraceStore.to_trace(item)


def _bucket_detail(code: str) -> str | None:
    """The tracker `detail` an S3 error means; None for a transient error (retried next run)."""
    if code in ("NoSuchBucket", "404"):
        return tm.NO_BUCKET
    if code in ("AccessDenied", "403", "AllAccessDisabled") or code.startswith("KMS."):
        return tm.BUCKET_POLICY_ERROR
    return None

