"""Trackers, their tags and quotas, and CheckObsBuckets (SPEC 6; issue 3 items 1 and 2).

Storage: the control table, one item per tracker (`TRACKER#<project_id>` / `<tracker_name>`, tags
inside it), so every read of a project's trackers is one Query of at most 101 items, and one
item per data tracker under `DATA_BUCKET#<bucket>` / `<project_id>#<tracker_name>`, so the S3
event handler finds the trackers watching a bucket without reading anyone else's trackers.

The transfer bucket is checked through `TransferBuckets` whenever a tracker is created or
updated: HeadBucket, then a test write of an empty object (with the tracker's KMS key when trace
files are encrypted) and its deletion. A write is the only check that sees everything that can
stop a transfer (bucket policy, ACLs, Block Public Access, SCPs, a KMS key policy); reading the
bucket's ACL or policy would miss most of them. The test object is deleted best-effort: CTS needs
only PutObject on the bucket, so a left-over empty object is the price of not asking for more.
A tracker whose bucket failed the check shows `status: error` with `detail` (`noBucket`,
`bucketPolicyError`); ListTrackers checks such a tracker again (at most once a minute), and the
transfer function reports what it sees through `report_bucket_state`, so the error clears on its
own when the bucket comes back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from chalicelib import tracker_model as tm
from chalicelib.clock import Clock
from chalicelib.control import ControlTable
from chalicelib.errors import invalid_parameter
from chalicelib.model import PROJECT_ID_RE, SYSTEM_TRACKER, TRACKER_NAME_RE, check_project_id
from chalicelib.params import Params, one_param, only_params
from chalicelib.projects import ProjectRegistry
from chalicelib.tracker_model import DATA, SYSTEM, Tracker

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger("opencts.trackers")

# project_id -> number of key event notifications; the notifications module provides it.
NotificationCounter = Callable[[str], int]

RESOURCE_TYPE = "cts-tracker"
MAX_SMN_NOTIFICATIONS = 100
RECHECK_MS = 60_000
# The test object written by a bucket check, under the tracker's file prefix.
PROBE_NAME = "opencts-write-check"
WATCH_PK_PREFIX = "DATA_BUCKET#"


# -- the S3 adapter ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BucketCheck:
    """What a check of one bucket found. `accessible`: HeadBucket succeeded. `writable`: a test
    write succeeded (False when not tried). `error_code`/`error_message`: S3's, of the call that
    failed."""

    exists: bool
    accessible: bool = False
    writable: bool = False
    region: str | None = None
    error_code: str = ""
    error_message: str = ""

    @property
    def detail(self) -> str | None:
        """The tracker `detail` this check means, or None when the bucket takes trace files."""
        if not self.exists:
            return tm.NO_BUCKET
        if not (self.accessible and self.writable):
            return tm.BUCKET_POLICY_ERROR
        return None


class BucketUnavailable(Exception):
    """A bucket could not be created or configured; `code` is S3's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TransferBuckets(Protocol):
    def locate(self, bucket: str) -> BucketCheck:
        """HeadBucket only: does it exist, may we see it, and its region."""
        ...

    def probe_write(self, bucket: str, key: str, kms_id: str | None) -> BucketCheck:
        """HeadBucket, then a test write of an empty object (SSE-KMS with kms_id when given)."""
        ...

    def create(self, bucket: str) -> None:
        """Creates the bucket in the service's region; one we already own is fine.
        Raises BucketUnavailable (taken by another account, refused)."""
        ...

    def send_object_events(self, bucket: str) -> None:
        """Turns on the bucket's Amazon EventBridge notifications, keeping its other
        notification settings. Raises BucketUnavailable."""
        ...


def _client_error(e: ClientError) -> tuple[str, str, int]:
    error = e.response.get("Error", {})
    status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return str(error.get("Code", "")), str(error.get("Message", "")), status


class S3TransferBuckets:
    """TransferBuckets on boto3's S3 client (any region: boto3 follows S3's region redirects)."""

    def __init__(self, s3: S3Client, region: str) -> None:
        self._s3 = s3
        self._region = region

    def locate(self, bucket: str) -> BucketCheck:
        try:
            got = self._s3.head_bucket(Bucket=bucket)
        except ClientError as e:
            code, message, status = _client_error(e)
            if status == 404 or code in ("404", "NoSuchBucket"):
                return BucketCheck(False, error_code="NoSuchBucket", error_message=message)
            return BucketCheck(True, error_code=code or str(status), error_message=message)
        headers = got.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = got.get("BucketRegion") or headers.get("x-amz-bucket-region")
        return BucketCheck(True, accessible=True, region=region or None)

    def probe_write(self, bucket: str, key: str, kms_id: str | None) -> BucketCheck:
        found = self.locate(bucket)
        if not found.accessible:
            return found
        try:
            if kms_id:
                self._s3.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=b"",
                    ServerSideEncryption="aws:kms",
                    SSEKMSKeyId=kms_id,
                )
            else:
                self._s3.put_object(Bucket=bucket, Key=key, Body=b"")
        except ClientError as e:
            code, message, status = _client_error(e)
            return replace(found, error_code=code or str(status), error_message=message)
        try:
            self._s3.delete_object(Bucket=bucket, Key=key)
        except ClientError as e:
            logger.info("test object left in bucket", extra={"bucket": bucket, "key": key})
            logger.debug("delete refused: %s", e)
        return replace(found, writable=True)

    def create(self, bucket: str) -> None:
        try:
            if self._region == "us-east-1":
                self._s3.create_bucket(Bucket=bucket)
            else:
                self._s3.create_bucket(
                    Bucket=bucket,
                    CreateBucketConfiguration={"LocationConstraint": self._region},  # type: ignore[typeddict-item]
                )
        except ClientError as e:
            code, message, _ = _client_error(e)
            if code == "BucketAlreadyOwnedByYou":
                return
            raise BucketUnavailable(code, message) from None

    def send_object_events(self, bucket: str) -> None:
        try:
            current: dict[str, Any] = dict(
                self._s3.get_bucket_notification_configuration(Bucket=bucket)
            )
            if "EventBridgeConfiguration" in current:
                return
            current.pop("ResponseMetadata", None)
            current["EventBridgeConfiguration"] = {}
            self._s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration=current,  # type: ignore[arg-type]
            )
        except ClientError as e:
            code, message, status = _client_error(e)
            raise BucketUnavailable(code or str(status), message) from None


@dataclass
class MemoryBucket:
    region: str
    owned: bool = True
    accessible: bool = True
    writable: bool = True
    kms_ids: frozenset[str] | None = None  # keys a write may use; None: any
    event_bridge: bool = False
    objects: dict[str, bytes] = field(default_factory=dict)


class MemoryTransferBuckets:
    """The in-memory twin of S3TransferBuckets, for unit tests and the shared test class."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.buckets: dict[str, MemoryBucket] = {}
        self.writes: list[tuple[str, str, str | None]] = []

    def add(self, bucket: str, **kwargs: Any) -> MemoryBucket:
        kwargs.setdefault("region", self.region)
        self.buckets[bucket] = MemoryBucket(**kwargs)
        return self.buckets[bucket]

    def remove(self, bucket: str) -> None:
        self.buckets.pop(bucket, None)

    def locate(self, bucket: str) -> BucketCheck:
        found = self.buckets.get(bucket)
        if found is None:
            return BucketCheck(False, error_code="NoSuchBucket", error_message="Not Found")
        if not found.accessible:
            return BucketCheck(True, error_code="403", error_message="Forbidden")
        return BucketCheck(True, accessible=True, region=found.region)

    def probe_write(self, bucket: str, key: str, kms_id: str | None) -> BucketCheck:
        located = self.locate(bucket)
        if not located.accessible:
            return located
        target = self.buckets[bucket]
        if not target.writable:
            return replace(located, error_code="AccessDenied", error_message="Access Denied")
        if kms_id and target.kms_ids is not None and kms_id not in target.kms_ids:
            return replace(
                located, error_code="KMS.NotFoundException", error_message="Invalid keyId"
            )
        self.writes.append((bucket, key, kms_id))
        return replace(located, writable=True)

    def create(self, bucket: str) -> None:
        found = self.buckets.get(bucket)
        if found is None:
            self.add(bucket)
        elif not found.owned:
            raise BucketUnavailable("BucketAlreadyExists", "The bucket name is not available")

    def send_object_events(self, bucket: str) -> None:
        found = self.buckets.get(bucket)
        if found is None:
            raise BucketUnavailable("NoSuchBucket", "Not Found")
        if not found.owned:
            raise BucketUnavailable("AccessDenied", "Access Denied")
        found.event_bridge = True


# -- the service ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class BucketWatch:
    """A data tracker watching a bucket, as the S3 event handler needs it."""

    project_id: str
    tracker_name: str
    data_event: tuple[str, ...]
    enabled: bool


def _no_notifications(project_id: str) -> int:
    return 0


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class TrackerService:
    """CreateTracker, UpdateTracker, ListTrackers, DeleteTracker, ListQuotas, the tag batch
    operations and CheckObsBuckets: parsed JSON bodies and query parameters in, the SDK
    response models' dicts out, CtsError for every refusal."""

    table: ControlTable
    buckets: TransferBuckets
    projects: ProjectRegistry
    clock: Clock
    region: str
    domain_id: str
    notification_count: NotificationCounter = _no_notifications
    new_id: Callable[[], str] = _new_id
    # The integrity state of a validated tracker's digest chain (an OpenCTS addition to
    # ListTrackers, shown by the console): wired to the digest chain heads.
    integrity: Callable[[str, str], dict[str, Any]] | None = None

    # -- CreateTracker / UpdateTracker -----------------------------------------------------------
    def create_tracker(self, project_id: str, body: Any) -> dict[str, Any]:
        """POST /v3/{project_id}/tracker -> CreateTrackerResponse (answer 201).

        Creating the system tracker is "enabling CTS": an unknown project is registered to the
        service's domain. A data tracker needs a known project. Every rule of the body is checked
        before any bucket is touched, and nothing is stored until every check has passed."""
        check_project_id(project_id)
        obj = tm.body_object(body)
        kind, name = tm.parse_target(obj, tm.CREATE_FIELDS)
        project = self.projects.find(project_id)
        if kind == DATA and project is None:
            project = self.projects.require(project_id)
        existing = self._all(project_id)
        if name in existing:
            raise tm.tracker_exists(name)
        if kind == DATA and sum(t.tracker_type == DATA for t in existing.values()) >= (
            tm.MAX_DATA_TRACKERS
        ):
            raise tm.tracker_quota_exceeded(DATA, tm.MAX_DATA_TRACKERS)
        now = self.clock.now_ms()
        tracker = tm.new_tracker(
            obj,
            project_id=project_id,
            domain_id=project.domain_id if project else self.domain_id,
            tracker_id=self.new_id(),
            now_ms=now,
        )
        if tracker.data_bucket is not None:
            self._watchable(tracker.data_bucket.data_bucket_name)
        tracker = self._check_transfer(tracker, previous=None)
        if project is None:
            self.projects.register(project_id, self.domain_id)
        self._save(tracker)
        logger.info(
            "tracker created",
            extra={"project_id": project_id, "tracker_name": name, "status": tracker.status},
        )
        return tracker.body(self.region, created=True)

    def update_tracker(self, project_id: str, body: Any) -> dict[str, Any]:
        """PUT /v3/{project_id}/tracker -> UpdateTrackerResponse, which is empty (answer 200)."""
        check_project_id(project_id)
        obj = tm.body_object(body)
        kind, name = tm.parse_target(obj, tm.UPDATE_FIELDS)
        current = self._get(project_id, name)
        if current is None or current.tracker_type != kind:
            raise tm.tracker_not_found(name)
        tracker = tm.updated_tracker(current, obj)
        tracker = self._check_transfer(tracker, previous=current)
        self._save(tracker)
        logger.info(
            "tracker updated",
            extra={"project_id": project_id, "tracker_name": name, "status": tracker.status},
        )
        return {}

    # -- ListTrackers / DeleteTracker ------------------------------------------------------------
    def list_trackers(self, project_id: str, params: Params) -> dict[str, Any]:
        """GET /v3/{project_id}/trackers -> ListTrackersResponse.

        An unknown (but well-formed) project has no trackers: that is how a client sees that CTS
        is not enabled yet. The system tracker comes first, then data trackers by name."""
        check_project_id(project_id)
        only_params(params, ("tracker_name", "tracker_type"))
        name = one_param(params, "tracker_name")
        kind = one_param(params, "tracker_type")
        if kind is not None and kind not in tm.TRACKER_TYPES:
            raise invalid_parameter("tracker_type", "must be system or data")
        if name is not None and not TRACKER_NAME_RE.match(name):
            raise invalid_parameter("tracker_name", "must be 1-64 of A-Z a-z 0-9 _ -")
        if name is not None:
            one = self._get(project_id, name)
            candidates = [one] if one else []
        else:
            candidates = list(self._all(project_id).values())
        trackers = [t for t in candidates if kind is None or t.tracker_type == kind]
        trackers = [self._recheck(t) for t in trackers]
        trackers.sort(key=lambda t: (t.tracker_type != SYSTEM, t.tracker_name))
        bodies = []
        for t in trackers:
            body = t.body(self.region)
            if t.is_support_validate and self.integrity is not None:
                body["integrity"] = self.integrity(project_id, t.tracker_name)
            bodies.append(body)
        return {"trackers": bodies}

    def delete_tracker(self, project_id: str, params: Params) -> dict[str, Any]:
        """DELETE /v3/{project_id}/trackers -> DeleteTrackerResponse, empty (answer 204).

        `tracker_type` defaults to data, as the SDK documents, except that `tracker_name=system`
        alone means the system tracker. No name with type data deletes every data tracker (none
        is not an error). Deleting the system tracker keeps the project registered and its
        traces queryable: it only stops transfer; creating it again "restores" it."""
        check_project_id(project_id)
        only_params(params, ("tracker_name", "tracker_type"))
        name = one_param(params, "tracker_name")
        kind = one_param(params, "tracker_type")
        if kind is not None and kind not in tm.TRACKER_TYPES:
            raise invalid_parameter("tracker_type", "must be system or data")
        if kind is None:
            kind = SYSTEM if name == SYSTEM_TRACKER else DATA
        if kind == SYSTEM and name not in (None, SYSTEM_TRACKER):
            raise invalid_parameter("tracker_name", "the system tracker is named system")
        if name is not None and not TRACKER_NAME_RE.match(name):
            raise invalid_parameter("tracker_name", "must be 1-64 of A-Z a-z 0-9 _ -")
        if kind == DATA and name is None:
            doomed = [t for t in self._all(project_id).values() if t.tracker_type == DATA]
        else:
            wanted = name or SYSTEM_TRACKER
            found = self._get(project_id, wanted)
            if found is None or found.tracker_type != kind:
                raise tm.tracker_not_found(wanted)
            doomed = [found]
        for tracker in doomed:
            self._delete(tracker)
        logger.info(
            "trackers deleted",
            extra={"project_id": project_id, "trackers": [t.tracker_name for t in doomed]},
        )
        return {}

    # -- ListQuotas ------------------------------------------------------------------------------
    def list_quotas(self, project_id: str) -> dict[str, Any]:
        """GET /v3/{project_id}/quotas -> ListQuotasResponse (CtsQuota: type, used, quota)."""
        check_project_id(project_id)
        trackers = self._all(project_id).values()
        return {
            "resources": [
                {
                    "type": "system_tracker",
                    "used": sum(t.tracker_type == SYSTEM for t in trackers),
                    "quota": tm.MAX_SYSTEM_TRACKERS,
                },
                {
                    "type": "data_tracker",
                    "used": sum(t.tracker_type == DATA for t in trackers),
                    "quota": tm.MAX_DATA_TRACKERS,
                },
                {
                    "type": "smn_notification",
                    "used": self.notification_count(project_id),
                    "quota": MAX_SMN_NOTIFICATIONS,
                },
            ]
        }

    # -- tags ------------------------------------------------------------------------------------
    def create_tags(
        self, project_id: str, resource_type: str, resource_id: str, body: Any
    ) -> dict[str, Any]:
        """POST .../{resource_type}/{resource_id}/tags/create -> empty (answer 204).
        An existing key takes the new value (as TMS does); at most 20 tags after the merge."""
        tags = tm.parse_tags(body, deleting=False)
        tracker = self._tagged(project_id, resource_type, resource_id)
        self._save(replace(tracker, tags=tm.merge_tags(tracker.tags, tags)))
        return {}

    def delete_tags(
        self, project_id: str, resource_type: str, resource_id: str, body: Any
    ) -> dict[str, Any]:
        """DELETE .../{resource_type}/{resource_id}/tags/delete -> empty (answer 204)."""
        doomed = tm.parse_tags(body, deleting=True)
        tracker = self._tagged(project_id, resource_type, resource_id)
        remaining = tm.remove_tags(tracker.tags, doomed)
        if remaining != tracker.tags:
            self._save(replace(tracker, tags=remaining))
        return {}

    # -- CheckObsBuckets -------------------------------------------------------------------------
    def check_buckets(self, domain_id: str, body: Any) -> dict[str, Any]:
        """POST /v3/{domain_id}/checkbucket -> CheckObsBucketsResponse: per bucket, whether
        OpenCTS can write trace files there, as the tracker check would find it."""
        if not PROJECT_ID_RE.match(domain_id):
            raise invalid_parameter("domain_id", "must be 1-64 of A-Z a-z 0-9 _ -")
        results = []
        for wanted in tm.parse_check_buckets(body):
            out = wanted.body()
            out["check_bucket_response"] = self._check_one(wanted)
            results.append(out)
        return {"buckets": results}

    def _check_one(self, wanted: tm.BucketToCheck) -> dict[str, Any]:
        name = wanted.bucket_name
        found = self.buckets.locate(name)
        if not found.exists:
            return _check_failed(tm.CHECK_NO_BUCKET, f"Bucket '{name}' does not exist", 404)
        if found.accessible and found.region and found.region != wanted.bucket_location:
            return _check_failed(
                tm.CHECK_WRONG_LOCATION,
                f"Bucket '{name}' is in {found.region}, not {wanted.bucket_location}",
                400,
            )
        if found.accessible:
            found = self.buckets.probe_write(name, PROBE_NAME, wanted.write_kms_id)
        if found.writable:
            return {"response_code": 200, "success": True}
        # S3 names KMS failures KMS.*, or AccessDenied "... not authorized to perform: kms:..."
        if found.error_code.startswith("KMS.") or "kms:" in found.error_message.lower():
            key = f"key '{wanted.write_kms_id}'" if wanted.write_kms_id else "the bucket's KMS key"
            return _check_failed(
                tm.CHECK_KMS_KEY_UNUSABLE,
                f"Trace files cannot be encrypted with {key} ({found.error_code})",
                400,
            )
        return _check_failed(
            tm.CHECK_NOT_WRITABLE,
            f"OpenCTS cannot write to bucket '{name}' ({found.error_code}); allow it "
            "s3:PutObject on the bucket's objects",
            403,
        )

    # -- for the transfer function and the S3 event handler ----------------------------------------
    def trackers(self, project_id: str) -> list[Tracker]:
        """Every tracker of a project (one Query), system first."""
        found = list(self._all(project_id).values())
        found.sort(key=lambda t: (t.tracker_type != SYSTEM, t.tracker_name))
        return found

    def watchers(self, bucket: str) -> list[BucketWatch]:
        """The data trackers, of any project, that watch a bucket (one Query)."""
        return [
            BucketWatch(
                project_id=str(item["project_id"]),
                tracker_name=str(item["tracker_name"]),
                data_event=tuple(item.get("data_event") or ()),
                enabled=bool(item.get("enabled", True)),
            )
            for item in self.table.query(f"{WATCH_PK_PREFIX}{bucket}")
        ]

    def report_bucket_state(self, project_id: str, tracker_name: str, detail: str | None) -> None:
        """The transfer function's view of the bucket after a delivery: `noBucket`,
        `bucketPolicyError`, or None when the write succeeded. Written only on a change."""
        if detail not in (None, tm.NO_BUCKET, tm.BUCKET_POLICY_ERROR):
            raise ValueError(f"unknown bucket state {detail!r}")
        tracker = self._get(project_id, tracker_name)
        if tracker is None or tracker.bucket_error == detail:
            return
        self._save(replace(tracker, bucket_error=detail, checked_at=self.clock.now_ms()))

    # -- internals -------------------------------------------------------------------------------
    def _all(self, project_id: str) -> dict[str, Tracker]:
        pk, _ = tm.tracker_key(project_id, "")
        return {i["sk"]: Tracker.from_item(i) for i in self.table.query(pk)}

    def _get(self, project_id: str, name: str) -> Tracker | None:
        item = self.table.get(*tm.tracker_key(project_id, name))
        return Tracker.from_item(item) if item else None

    def _save(self, tracker: Tracker) -> None:
        self.table.put(tracker.item())
        if tracker.data_bucket is not None:
            self.table.put(
                {
                    "pk": f"{WATCH_PK_PREFIX}{tracker.data_bucket.data_bucket_name}",
                    "sk": f"{tracker.project_id}#{tracker.tracker_name}",
                    "project_id": tracker.project_id,
                    "tracker_name": tracker.tracker_name,
                    "data_event": list(tracker.data_bucket.data_event),
                    "enabled": tracker.enabled,
                }
            )

    def _delete(self, tracker: Tracker) -> None:
        if tracker.data_bucket is not None:
            self.table.delete(
                f"{WATCH_PK_PREFIX}{tracker.data_bucket.data_bucket_name}",
                f"{tracker.project_id}#{tracker.tracker_name}",
            )
        self.table.delete(*tm.tracker_key(tracker.project_id, tracker.tracker_name))

    def _tagged(self, project_id: str, resource_type: str, resource_id: str) -> Tracker:
        check_project_id(project_id)
        if resource_type != RESOURCE_TYPE:
            raise invalid_parameter("resource_type", f"must be {RESOURCE_TYPE}")
        tm.check_tracker_id(resource_id)
        for tracker in self._all(project_id).values():
            if tracker.id == resource_id:
                return tracker
        raise tm.tag_resource_not_found(resource_id)

    def _watchable(self, bucket: str) -> None:
        """A data tracker's bucket must exist and send its object events to EventBridge."""
        found = self.buckets.locate(bucket)
        if not found.exists:
            raise tm.data_bucket_unavailable(bucket, "it does not exist")
        if not found.accessible:
            raise tm.data_bucket_unavailable(
                bucket, f"OpenCTS may not read it ({found.error_code})"
            )
        try:
            self.buckets.send_object_events(bucket)
        except BucketUnavailable as e:
            raise tm.data_bucket_unavailable(
                bucket, f"its EventBridge notifications cannot be turned on ({e.code})"
            ) from None

    def _check_transfer(self, tracker: Tracker, previous: Tracker | None) -> Tracker:
        """Creates the bucket when asked to (is_obs_created, for a bucket not created before),
        then checks the bucket; the result is the tracker's bucket_error."""
        now = self.clock.now_ms()
        obs = tracker.obs_info
        if not obs.bucket_name:
            return replace(tracker, bucket_error=None, checked_at=now)
        before = previous.obs_info if previous else None
        if obs.is_obs_created and (
            before is None or not before.is_obs_created or before.bucket_name != obs.bucket_name
        ):
            try:
                self.buckets.create(obs.bucket_name)
            except BucketUnavailable as e:
                raise tm.transfer_bucket_unavailable(obs.bucket_name, e.code) from None
        return self._probe(tracker, now)

    def _probe(self, tracker: Tracker, now: int) -> Tracker:
        prefix = tracker.obs_info.file_prefix_name
        key = f"{prefix}/{PROBE_NAME}" if prefix else PROBE_NAME
        check = self.buckets.probe_write(tracker.obs_info.bucket_name, key, tracker.transfer_kms_id)
        if check.detail:
            logger.warning(
                "transfer bucket check failed",
                extra={
                    "project_id": tracker.project_id,
                    "tracker_name": tracker.tracker_name,
                    "detail": check.detail,
                    "s3_error": check.error_code,
                },
            )
        return replace(tracker, bucket_error=check.detail, checked_at=now)

    def _recheck(self, tracker: Tracker) -> Tracker:
        """An enabled tracker in error is checked again, at most once a minute."""
        now = self.clock.now_ms()
        if not (tracker.enabled and tracker.bucket_error and tracker.transfers_to_s3):
            return tracker
        if now - tracker.checked_at < RECHECK_MS:
            return tracker
        checked = self._probe(tracker, now)
        self._save(checked)
        return checked


def _check_failed(code: str, message: str, status: int) -> dict[str, Any]:
    return {"error_code": code, "error_message": message, "response_code": status, "success": False}


