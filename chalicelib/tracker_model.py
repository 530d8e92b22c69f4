"""Trackers (SPEC 6): the rules of the tracker, tag and CheckObsBuckets bodies, and a tracker's
stored and wire forms.

Bodies are the official SDK's models (`CreateTrackerRequestBody`, `UpdateTrackerRequestBody`,
`TrackerObsInfo`, `DataBucket`, `Tags`, `CheckBucketRequest`); responses are `TrackerResponseBody`
and `CreateTrackerResponse`. Every rule names the field it refuses (`obs_info.bucket_name`,
`tags[2].key`) so a client sees at once what to fix, and unknown fields are refused rather than
dropped: a misspelt `is_support_validate` must not silently leave digest files off.

A JSON `null` is taken as "not given": the SDK never sends one, and clients that serialise unset
fields as null mean exactly that.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.errors import CtsError, malformed_body
from chalicelib.model import SYSTEM_TRACKER, TRACKER_NAME_RE

SYSTEM = "system"
DATA = "data"
TRACKER_TYPES = (SYSTEM, DATA)
ENABLED = "enabled"
DISABLED = "disabled"
ERROR = "error"
NO_BUCKET = "noBucket"
BUCKET_POLICY_ERROR = "bucketPolicyError"

MAX_SYSTEM_TRACKERS = 1
MAX_DATA_TRACKERS = 100
MAX_TAGS = 20
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 255
MAX_CHECKED_BUCKETS = 20
# "system-trace" is the system tracker's log stream name; a data tracker may not take either.
RESERVED_DATA_TRACKER_NAMES = frozenset({SYSTEM_TRACKER, "system-trace"})
DATA_EVENTS = ("READ", "WRITE")
COMPRESS_TYPES = ("gzip", "json")
# Days a data tracker's trace files are kept (the values the CTS console and Terraform offer);
# 0 means "keep forever", which is also the default.
BUCKET_LIFECYCLE_DAYS = (0, 30, 60, 90, 180, 1095)
# The only agency CTS documents; OpenCTS writes with its own function role, so it is kept for
# the client's sake and has no effect.
AGENCY_NAME = "cts_admin_trust"
# management_event_selector.exclude_service: only KMS (its createDatakey events) can be excluded.
EXCLUDABLE_SERVICES = ("KMS",)
LOG_GROUP = "CTS"
TAG_SPECIALS = frozenset(" _.:/=+-@")
RESERVED_TAG_PREFIX = "_sys_"

CREATE_FIELDS = frozenset(
    {
        "tracker_type",
        "tracker_name",
        "agency_name",
        "is_organization_tracker",
        "management_event_selector",
        "is_lts_enabled",
        "obs_info",
        "is_support_trace_files_encryption",
        "kms_id",
        "is_support_validate",
        "data_bucket",
    }
)
UPDATE_FIELDS = CREATE_FIELDS | {"status"}
OBS_FIELDS = frozenset(
    {
        "bucket_name",
        "file_prefix_name",
        "is_obs_created",
        "bucket_lifecycle",
        "compress_type",
        "is_sort_by_service",
    }
)
DATA_BUCKET_FIELDS = frozenset({"data_bucket_name", "data_event"})
CHECK_BUCKET_FIELDS = frozenset(
    {"bucket_name", "bucket_location", "kms_id", "is_support_trace_files_encryption"}
)

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]{0,64}$")
_LOCATION_RE = re.compile(r"^[a-z0-9-]{1,64}$")
_TRACKER_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_KMS_ID_RE = re.compile(
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|mrk-[0-9a-f]{32}"
    r"|alias/[A-Za-z0-9/_-]{1,250}"
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(?:key/[A-Za-z0-9-]{1,64}|alias/[A-Za-z0-9/_-]{1,250}))$"
)
# Names S3 itself reserves; refusing them here gives a clear error instead of a failed create.
_S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


# -- error codes (docs/ARCHITECTURE.md "Error codes") -------------------------------------------
def tracker_exists(name: str) -> CtsError:
    return CtsError(409, "CTS.1101", f"Tracker '{name}' already exists")


def tracker_not_found(name: str) -> CtsError:
    return CtsError(404, "CTS.1102", f"Tracker '{name}' does not exist")


def invalid_field(name: str, why: str) -> CtsError:
    return CtsError(400, "CTS.1103", f"Invalid field '{name}': {why}")


def tracker_quota_exceeded(kind: str, limit: int) -> CtsError:
    return CtsError(
        400, "CTS.1104", f"At most {limit} {kind} tracker{'s' if limit > 1 else ''} per project"
    )


def data_bucket_fixed(current: str) -> CtsError:
    return CtsError(
        400,
        "CTS.1105",
        f"A data tracker's bucket cannot change after creation (it tracks '{current}'); "
        "create another data tracker for another bucket",
    )


def data_bucket_unavailable(bucket: str, why: str) -> CtsError:
    return CtsError(400, "CTS.1106", f"Bucket '{bucket}' cannot be tracked: {why}")


def transfer_bucket_unavailable(bucket: str, why: str) -> CtsError:
    return CtsError(409, "CTS.1107", f"Bucket '{bucket}' cannot be created: {why}")


def not_supported(name: str, why: str) -> CtsError:
    return CtsError(400, "CTS.1108", f"'{name}' is not supported: {why}")


def tag_limit_exceeded(limit: int) -> CtsError:
    return CtsError(400, "CTS.1109", f"A tracker has at most {limit} tags")


def tag_resource_not_found(resource_id: str) -> CtsError:
    return CtsError(404, "CTS.1110", f"No tracker has the id '{resource_id}'")


# Codes of CheckObsBuckets results: carried in `check_bucket_response`, never raised.
CHECK_NO_BUCKET = "CTS.1121"
CHECK_NOT_WRITABLE = "CTS.1122"
CHECK_WRONG_LOCATION = "CTS.1123"
CHECK_KMS_KEY_UNUSABLE = "CTS.1124"


# -- the tracker ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObsInfo:
    """Transfer settings; an empty bucket_name means traces are not transferred to S3."""

    bucket_name: str = ""
    file_prefix_name: str = ""
    is_obs_created: bool = False
    bucket_lifecycle: int | None = None
    compress_type: str = "gzip"
    is_sort_by_service: bool = True

    def item(self) -> dict[str, Any]:
        return {
            "bucket_name": self.bucket_name,
            "file_prefix_name": self.file_prefix_name,
            "is_obs_created": self.is_obs_created,
            "bucket_lifecycle": self.bucket_lifecycle,
            "compress_type": self.compress_type,
            "is_sort_by_service": self.is_sort_by_service,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ObsInfo:
        lifecycle = item.get("bucket_lifecycle")
        return cls(
            bucket_name=str(item.get("bucket_name", "")),
            file_prefix_name=str(item.get("file_prefix_name", "")),
            is_obs_created=bool(item.get("is_obs_created", False)),
            bucket_lifecycle=int(lifecycle) if lifecycle is not None else None,
            compress_type=str(item.get("compress_type", "gzip")),
            is_sort_by_service=bool(item.get("is_sort_by_service", True)),
        )


@dataclass(frozen=True)
class DataBucket:
    data_bucket_name: str
    data_event: tuple[str, ...]


@dataclass(frozen=True)
class Tag:
    key: str
    value: str

    def body(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True)
class Tracker:
    """One tracker as stored: the user's settings plus what the service found out.

    `enabled` is the user's switch; `bucket_error` is the state of the transfer bucket at the
    last check (`noBucket`, `bucketPolicyError`, or None when writable or not configured). The
    wire `status` is derived from both, so a disabled tracker never shows a stale error and a
    bucket that comes back clears the error without the user touching the tracker.
    """

    project_id: str
    domain_id: str
    tracker_name: str
    tracker_type: str
    id: str
    create_time: int
    enabled: bool = True
    obs_info: ObsInfo = field(default_factory=ObsInfo)
    is_lts_enabled: bool = False
    is_support_trace_files_encryption: bool = False
    kms_id: str | None = None
    is_support_validate: bool = False
    agency_name: str | None = None
    exclude_service: tuple[str, ...] = ()
    data_bucket: DataBucket | None = None
    bucket_error: str | None = None
    checked_at: int = 0
    tags: tuple[Tag, ...] = ()

    @property
    def status(self) -> str:
        if not self.enabled:
            return DISABLED
        return ERROR if self.bucket_error else ENABLED

    @property
    def transfers_to_s3(self) -> bool:
        return bool(self.obs_info.bucket_name)

    @property
    def transfer_kms_id(self) -> str | None:
        """The key trace files are written with, or None for the bucket's default encryption."""
        return self.kms_id if self.is_support_trace_files_encryption and self.kms_id else None

    @property
    def log_stream_name(self) -> str:
        return f"{self.tracker_name}-trace"

    def body(self, region: str, *, created: bool = False) -> dict[str, Any]:
        """The wire form: TrackerResponseBody (ListTrackers), or CreateTrackerResponse.

        `tags` is an OpenCTS addition to ListTrackers (the SDK's deserialiser ignores fields its
        model lacks); CreateTrackerResponse has neither tags nor the LTS ids, and a new tracker
        has no tags yet.
        """
        out: dict[str, Any] = {"id": self.id, "create_time": self.create_time}
        if self.kms_id:
            out["kms_id"] = self.kms_id
        out["is_support_validate"] = self.is_support_validate
        out["is_organization_tracker"] = False
        if self.agency_name:
            out["agency_name"] = self.agency_name
        if self.tracker_type == SYSTEM:
            out["management_event_selector"] = {"exclude_service": list(self.exclude_service)}
        lts: dict[str, Any] = {"is_lts_enabled": self.is_lts_enabled}
        if self.is_lts_enabled:
            lts["log_group_name"] = LOG_GROUP
            lts["log_topic_name"] = self.log_stream_name
        out["lts"] = lts
        out["tracker_type"] = self.tracker_type
        out["domain_id"] = self.domain_id
        out["project_id"] = self.project_id
        out["tracker_name"] = self.tracker_name
        out["status"] = self.status
        if self.status == ERROR:
            out["detail"] = self.bucket_error
        out["is_support_trace_files_encryption"] = self.is_support_trace_files_encryption
        if self.is_lts_enabled and not created:
            group = f"arn:aws:logs:{region}:{self.domain_id}:log-group:{LOG_GROUP}"
            out["group_id"] = group
            out["stream_id"] = f"{group}:log-stream:{self.log_stream_name}"
        obs: dict[str, Any] = {
            "bucket_name": self.obs_info.bucket_name,
            "file_prefix_name": self.obs_info.file_prefix_name,
            "is_obs_created": self.obs_info.is_obs_created,
            "is_authorized_bucket": self.transfers_to_s3 and self.bucket_error is None,
        }
        if self.tracker_type == DATA and self.obs_info.bucket_lifecycle:
            obs["bucket_lifecycle"] = self.obs_info.bucket_lifecycle
        obs["compress_type"] = self.obs_info.compress_type
        obs["is_sort_by_service"] = self.obs_info.is_sort_by_service
        out["obs_info"] = obs
        if self.data_bucket is not None:
            out["data_bucket"] = {
                "data_bucket_name": self.data_bucket.data_bucket_name,
                # Data traces are always queryable (ListTraces with trace_type=data).
                "search_enabled": True,
                "data_event": list(self.data_bucket.data_event),
            }
        if not created:
            out["tags"] = [t.body() for t in self.tags]
        return out

    def item(self) -> dict[str, Any]:
        pk, sk = tracker_key(self.project_id, self.tracker_name)
        return {
            "pk": pk,
            "sk": sk,
            "id": self.id,
            "domain_id": self.domain_id,
            "tracker_type": self.tracker_type,
            "create_time": self.create_time,
            "enabled": self.enabled,
            "obs_info": self.obs_info.item(),
            "is_lts_enabled": self.is_lts_enabled,
            "is_support_trace_files_encryption": self.is_support_trace_files_encryption,
            "kms_id": self.kms_id,
            "is_support_validate": self.is_support_validate,
            "agency_name": self.agency_name,
            "exclude_service": list(self.exclude_service),
            "data_bucket": (
                {
                    "data_bucket_name": self.data_bucket.data_bucket_name,
                    "data_event": list(self.data_bucket.data_event),
                }
                if self.data_bucket
                else None
            ),
            "bucket_error": self.bucket_error,
            "checked_at": self.checked_at,
            "tags": [t.body() for t in self.tags],
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Tracker:
        data = item.get("data_bucket")
        return cls(
            project_id=str(item["pk"]).removeprefix(TRACKER_PK_PREFIX),
            domain_id=str(item.get("domain_id", "")),
            tracker_name=str(item["sk"]),
            tracker_type=str(item["tracker_type"]),
            id=str(item["id"]),
            create_time=int(item.get("create_time", 0)),
            enabled=bool(item.get("enabled", True)),
            obs_info=ObsInfo.from_item(item.get("obs_info") or {}),
            is_lts_enabled=bool(item.get("is_lts_enabled", False)),
            is_support_trace_files_encryption=bool(
                item.get("is_support_trace_files_encryption", False)
            ),
            kms_id=item.get("kms_id") or None,
            is_support_validate=bool(item.get("is_support_validate", False)),
            agency_name=item.get("agency_name") or None,
            exclude_service=tuple(item.get("exclude_service") or ()),
            data_bucket=(
                DataBucket(str(data["data_bucket_name"]), tuple(data.get("data_event") or ()))
                if data
                else None
            ),
            bucket_error=item.get("bucket_error") or None,
            checked_at=int(item.get("checked_at", 0)),
            tags=tuple(Tag(str(t["key"]), str(t.get("value", ""))) for t in item.get("tags") or ()),
        )


TRACKER_PK_PREFIX = "TRACKER#"


def tracker_key(project_id: str, tracker_name: str) -> tuple[str, str]:
    return f"{TRACKER_PK_PREFIX}{project_id}", tracker_name


# -- field rules ---------------------------------------------------------------------------------
def check_bucket_name(value: Any, name: str, *, allow_empty: bool = False) -> str:
    """S3/OBS bucket naming: 3-63 of a-z 0-9 - ., letter or digit at both ends, no `..`, `.-`,
    `-.`, not an IP address, and none of the names S3 reserves."""
    if not isinstance(value, str):
        raise invalid_field(name, "must be a string")
    if value == "" and allow_empty:
        return value
    if not 3 <= len(value) <= 63:
        raise invalid_field(name, "must be 3 to 63 characters")
    if not _BUCKET_RE.match(value):
        raise invalid_field(
            name,
            "may contain only lowercase letters, digits, '-' and '.', "
            "and must start and end with a letter or digit",
        )
    if ".." in value:
        raise invalid_field(name, "must not contain two consecutive periods")
    if ".-" in value or "-." in value:
        raise invalid_field(name, "must not have a period next to a hyphen")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise invalid_field(name, "must not be an IP address")
    if value.startswith(_S3_RESERVED_PREFIXES) or value.endswith(_S3_RESERVED_SUFFIXES):
        raise invalid_field(name, "uses a prefix or suffix that S3 reserves")
    return value


def check_file_prefix(value: Any, name: str = "obs_info.file_prefix_name") -> str:
    if not isinstance(value, str) or not _PREFIX_RE.match(value):
        raise invalid_field(name, "must be 0 to 64 of letters, digits, '-', '_' and '.'")
    return value


def check_tracker_name(kind: str, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid_field("tracker_name", "must be a string")
    if kind == SYSTEM:
        if value != SYSTEM_TRACKER:
            raise invalid_field("tracker_name", "the system tracker is named 'system'")
        return value
    if not TRACKER_NAME_RE.match(value):
        raise invalid_field("tracker_name", "must be 1 to 64 of letters, digits, '_' and '-'")
    if value.lower() in RESERVED_DATA_TRACKER_NAMES:
        raise invalid_field("tracker_name", f"'{value}' is reserved for the system tracker")
    return value


def check_kms_id(value: Any, name: str = "kms_id") -> str:
    if not isinstance(value, str) or not _KMS_ID_RE.match(value):
        raise invalid_field(name, "must be a KMS key id, key ARN, alias name or alias ARN")
    return value


def _tag_text(value: Any, name: str, max_len: int, *, allow_empty: bool) -> str:
    if not isinstance(value, str):
        raise invalid_field(name, "must be a string")
    if not value and not allow_empty:
        raise invalid_field(name, "must not be empty")
    if len(value) > max_len:
        raise invalid_field(name, f"must be at most {max_len} characters")
    for char in value:
        # Letters and digits of any script, as Huawei TMS allows; nothing else but the specials.
        if not (char.isalpha() or char.isdecimal() or char in TAG_SPECIALS):
            raise invalid_field(
                name, f"must contain only letters, digits, spaces and _.:/=+-@ (found {char!r})"
            )
    if value != value.strip(" "):
        raise invalid_field(name, "must not start or end with a space")
    return value


def check_tag_key(value: Any, name: str = "key") -> str:
    key = _tag_text(value, name, MAX_TAG_KEY, allow_empty=False)
    # Case-insensitive: `_SYS_x` would read as a system tag to anyone scanning tags by eye.
    if key.lower().startswith(RESERVED_TAG_PREFIX):
        raise invalid_field(name, f"must not start with '{RESERVED_TAG_PREFIX}' (system tags)")
    return key


def check_tag_value(value: Any, name: str = "value") -> str:
    return _tag_text(value, name, MAX_TAG_VALUE, allow_empty=True)


# -- body helpers --------------------------------------------------------------------------------
def body_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise malformed_body("a JSON object is required")
    return body


def _object(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise invalid_field(name, "must be an object")
    return value


def _only(obj: Mapping[str, Any], known: frozenset[str], prefix: str = "") -> None:
    unknown = sorted(k for k in obj if k not in known)
    if unknown:
        raise invalid_field(f"{prefix}{unknown[0]}"[:200], "is not a known field")


def _bool(obj: Mapping[str, Any], key: str, prefix: str = "") -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid_field(prefix + key, "must be true or false")
    return value


def _choice(
    obj: Mapping[str, Any], key: str, allowed: Sequence[str], prefix: str = ""
) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if value not in allowed:
        raise invalid_field(prefix + key, f"must be one of {', '.join(allowed)}")
    return str(value)


def _unique_choices(
    value: Any, name: str, allowed: Sequence[str], *, non_empty: bool
) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise invalid_field(name, f"must be a list of {', '.join(allowed)}")
    if non_empty and not value:
        raise invalid_field(name, "must not be empty")
    for i, item in enumerate(value):
        if item not in allowed:
            raise invalid_field(f"{name}[{i}]", f"must be one of {', '.join(allowed)}")
    if len(set(value)) != len(value):
        raise invalid_field(name, "must not repeat a value")
    return tuple(value)


def parse_target(body: Mapping[str, Any], known: frozenset[str]) -> tuple[str, str]:
    """The (tracker_type, tracker_name) a Create/UpdateTracker body is about. The name may be
    left out for the system tracker: the SDK documents "system" as its default there."""
    _only(body, known)
    kind = body.get("tracker_type")
    if kind is None:
        raise invalid_field("tracker_type", "is required")
    if kind not in TRACKER_TYPES:
        raise invalid_field("tracker_type", "must be system or data")
    name = body.get("tracker_name")
    if name is None:
        if kind == SYSTEM:
            return SYSTEM, SYSTEM_TRACKER
        raise invalid_field("tracker_name", "is required for a data tracker")
    return str(kind), check_tracker_name(str(kind), name)


def new_tracker(
    body: Mapping[str, Any], *, project_id: str, domain_id: str, tracker_id: str, now_ms: int
) -> Tracker:
    """A tracker from a CreateTrackerRequestBody, every rule checked; no side effects."""
    kind, name = parse_target(body, CREATE_FIELDS)
    if kind == DATA and body.get("data_bucket") is None:
        raise invalid_field("data_bucket", "is required for a data tracker")
    base = Tracker(project_id, domain_id, name, kind, tracker_id, now_ms, checked_at=now_ms)
    return _apply(base, body, creating=True)


def updated_tracker(current: Tracker, body: Mapping[str, Any]) -> Tracker:
    """`current` changed by an UpdateTrackerRequestBody: fields not given keep their value."""
    parse_target(body, UPDATE_FIELDS)
    tracker = _apply(current, body, creating=False)
    status = _choice(body, "status", (ENABLED, DISABLED))
    if status is not None:
        tracker = replace(tracker, enabled=status == ENABLED)
    return tracker


def _apply(current: Tracker, body: Mapping[str, Any], *, creating: bool) -> Tracker:
    kind = current.tracker_type
    if _bool(body, "is_organization_tracker"):
        raise not_supported(
            "is_organization_tracker", "OpenCTS has no organizations; each project has its trackers"
        )
    changes: dict[str, Any] = {}
    agency = body.get("agency_name")
    if agency is not None:
        if agency not in ("", AGENCY_NAME):
            raise invalid_field("agency_name", f"must be '{AGENCY_NAME}' when given")
        changes["agency_name"] = agency or None
    selector = body.get("management_event_selector")
    if selector is not None:
        if kind != SYSTEM:
            raise invalid_field("management_event_selector", "applies to the system tracker only")
        selector = _object(selector, "management_event_selector")
        _only(selector, frozenset({"exclude_service"}), "management_event_selector.")
        excluded = selector.get("exclude_service")
        changes["exclude_service"] = (
            ()
            if excluded is None
            else _unique_choices(
                excluded,
                "management_event_selector.exclude_service",
                EXCLUDABLE_SERVICES,
                non_empty=False,
            )
        )
    lts = _bool(body, "is_lts_enabled")
    if lts is not None:
        changes["is_lts_enabled"] = lts
    encryption = _bool(body, "is_support_trace_files_encryption")
    if encryption is not None:
        changes["is_support_trace_files_encryption"] = encryption
    kms_id = body.get("kms_id")
    if kms_id is not None:
        # An empty kms_id clears the key (only allowed with encryption off; checked below).
        changes["kms_id"] = check_kms_id(kms_id) if kms_id != "" else None
    validate = _bool(body, "is_support_validate")
    if validate is not None:
        changes["is_support_validate"] = validate
    raw_obs = body.get("obs_info")
    if raw_obs is not None:
        changes["obs_info"] = _apply_obs(current.obs_info, raw_obs, kind)
    raw_data = body.get("data_bucket")
    if raw_data is not None:
        changes["data_bucket"] = _apply_data_bucket(current.data_bucket, raw_data, kind, creating)
    tracker = replace(current, **changes)

    if tracker.is_support_trace_files_encryption and not tracker.kms_id:
        raise invalid_field("kms_id", "is required when is_support_trace_files_encryption is true")
    if not tracker.transfers_to_s3:
        # Turning these on needs a bucket; a flag left on from before is kept, inert.
        if encryption:
            raise invalid_field(
                "is_support_trace_files_encryption",
                "needs obs_info.bucket_name: it encrypts the trace files written there",
            )
        if validate:
            raise invalid_field(
                "is_support_validate",
                "needs obs_info.bucket_name: digest files are written beside the trace files",
            )
        if tracker.obs_info.is_obs_created and raw_obs is not None:
            raise invalid_field("obs_info.is_obs_created", "needs obs_info.bucket_name")
    if (
        tracker.data_bucket is not None
        and tracker.obs_info.bucket_name == tracker.data_bucket.data_bucket_name
    ):
        # Each transfer would be a WRITE on the tracked bucket, recorded and transferred again.
        raise invalid_field(
            "obs_info.bucket_name",
            "must not be the tracked bucket: the tracker would record its own transfers forever",
        )
    return tracker


def _apply_obs(current: ObsInfo, raw: Any, kind: str) -> ObsInfo:
    obj = _object(raw, "obs_info")
    _only(obj, OBS_FIELDS, "obs_info.")
    bucket = obj.get("bucket_name")
    if bucket is not None:
        bucket = check_bucket_name(bucket, "obs_info.bucket_name", allow_empty=True)
    new_bucket = current.bucket_name if bucket is None else bucket
    prefix = obj.get("file_prefix_name")
    if prefix is not None:
        prefix = check_file_prefix(prefix)
    created = _bool(obj, "is_obs_created", "obs_info.")
    if created is None:
        # "CTS created this bucket" is a fact about one bucket; it does not carry to another.
        created = current.is_obs_created and new_bucket == current.bucket_name
    lifecycle: int | None = current.bucket_lifecycle
    raw_lifecycle = obj.get("bucket_lifecycle")
    if raw_lifecycle is not None:
        if kind != DATA:
            raise invalid_field(
                "obs_info.bucket_lifecycle",
                "applies to data trackers only (the system tracker keeps the bucket's own rules)",
            )
        if (
            isinstance(raw_lifecycle, bool)
            or not isinstance(raw_lifecycle, int)
            or raw_lifecycle not in BUCKET_LIFECYCLE_DAYS
        ):
            raise invalid_field(
                "obs_info.bucket_lifecycle",
                "must be one of "
                + ", ".join(map(str, BUCKET_LIFECYCLE_DAYS))
                + " (days; 0 = forever)",
            )
        lifecycle = int(raw_lifecycle) or None
    compress = _choice(obj, "compress_type", COMPRESS_TYPES, "obs_info.")
    by_service = _bool(obj, "is_sort_by_service", "obs_info.")
    return ObsInfo(
        bucket_name=new_bucket,
        file_prefix_name=current.file_prefix_name if prefix is None else prefix,
        is_obs_created=created,
        bucket_lifecycle=lifecycle,
        compress_type=current.compress_type if compress is None else compress,
        is_sort_by_service=current.is_sort_by_service if by_service is None else by_service,
    )


def _apply_data_bucket(
    current: DataBucket | None, raw: Any, kind: str, creating: bool
) -> DataBucket:
    if kind != DATA:
        raise invalid_field("data_bucket", "applies to data trackers only")
    obj = _object(raw, "data_bucket")
    _only(obj, DATA_BUCKET_FIELDS, "data_bucket.")
    name = obj.get("data_bucket_name")
    events = obj.get("data_event")
    if creating or current is None:
        if name is None:
            raise invalid_field("data_bucket.data_bucket_name", "is required")
        if events is None:
            raise invalid_field("data_bucket.data_event", "is required (READ, WRITE or both)")
        return DataBucket(
            check_bucket_name(name, "data_bucket.data_bucket_name"),
            _unique_choices(events, "data_bucket.data_event", DATA_EVENTS, non_empty=True),
        )
    # Clients resend the bucket with every update (Terraform does): the same name is fine.
    if name is not None and name != current.data_bucket_name:
        raise data_bucket_fixed(current.data_bucket_name)
    if events is None:
        return current
    return replace(
        current,
        data_event=_unique_choices(events, "data_bucket.data_event", DATA_EVENTS, non_empty=True),
    )


# -- tags ----------------------------------------------------------------------------------------
def parse_tags(body: Any, *, deleting: bool) -> list[tuple[str, str | None]]:
    """The `tags` of BatchCreate/BatchDeleteResourceTags: (key, value) pairs.

    On create an absent value is the empty value. On delete an absent (or null) value means
    "by key"; a value given, even "", means "by key and value". Repeated keys are refused on
    create (which value would win?) and harmless on delete.
    """
    obj = body_object(body)
    _only(obj, frozenset({"tags"}))
    tags = obj.get("tags")
    if not isinstance(tags, list) or not tags:
        raise invalid_field("tags", "must be a non-empty list of {key, value}")
    if len(tags) > MAX_TAGS:
        raise tag_limit_exceeded(MAX_TAGS)
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for i, raw in enumerate(tags):
        tag = _object(raw, f"tags[{i}]")
        _only(tag, frozenset({"key", "value"}), f"tags[{i}].")
        if tag.get("key") is None:
            raise invalid_field(f"tags[{i}].key", "is required")
        key = check_tag_key(tag["key"], f"tags[{i}].key")
        raw_value = tag.get("value")
        value = None if raw_value is None else check_tag_value(raw_value, f"tags[{i}].value")
        if not deleting:
            if key in seen:
                raise invalid_field(f"tags[{i}].key", f"'{key}' is given twice; keys are unique")
            value = value or ""
        seen.add(key)
        out.append((key, value))
    return out


def merge_tags(current: Sequence[Tag], new: Sequence[tuple[str, str | None]]) -> tuple[Tag, ...]:
    """TMS semantics: a key that exists gets the new value, in place; new keys are appended."""
    merged = {t.key: t.value for t in current}
    for key, value in new:
        merged[key] = value or ""
    if len(merged) > MAX_TAGS:
        raise tag_limit_exceeded(MAX_TAGS)
    return tuple(Tag(k, v) for k, v in merged.items())


def remove_tags(
    current: Sequence[Tag], doomed: Sequence[tuple[str, str | None]]
) -> tuple[Tag, ...]:
    """Tags to delete that are not there, or whose value differs, are ignored: deleting is
    idempotent, and a stale value must not fail a whole batch."""

    def goes(tag: Tag) -> bool:
        return any(key == tag.key and value in (None, tag.value) for key, value in doomed)

    return tuple(t for t in current if not goes(t))


def check_tracker_id(resource_id: str) -> str:
    if not _TRACKER_ID_RE.match(resource_id):
        raise tag_resource_not_found(resource_id[:64])
    return resource_id


# -- CheckObsBuckets -----------------------------------------------------------------------------
@dataclass(frozen=True)
class BucketToCheck:
    bucket_name: str
    bucket_location: str
    kms_id: str | None = None
    is_support_trace_files_encryption: bool | None = None

    @property
    def write_kms_id(self) -> str | None:
        return self.kms_id if self.is_support_trace_files_encryption else None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bucket_name": self.bucket_name,
            "bucket_location": self.bucket_location,
        }
        if self.kms_id is not None:
            out["kms_id"] = self.kms_id
        if self.is_support_trace_files_encryption is not None:
            out["is_support_trace_files_encryption"] = self.is_support_trace_files_encryption
        return out


def parse_check_buckets(body: Any) -> list[BucketToCheck]:
    """CheckObsBucketsRequestBody: `{"buckets": [CheckBucketRequest, ...]}`, 1 to 20 buckets
    (each is a HeadBucket and a test write)."""
    obj = body_object(body)
    _only(obj, frozenset({"buckets"}))
    buckets = obj.get("buckets")
    if not isinstance(buckets, list) or not buckets:
        raise invalid_field("buckets", "must be a non-empty list")
    if len(buckets) > MAX_CHECKED_BUCKETS:
        raise invalid_field("buckets", f"at most {MAX_CHECKED_BUCKETS} buckets per call")
    out = []
    for i, raw in enumerate(buckets):
        name = f"buckets[{i}]"
        item = _object(raw, name)
        _only(item, CHECK_BUCKET_FIELDS, f"{name}.")
        if item.get("bucket_name") is None:
            raise invalid_field(f"{name}.bucket_name", "is required")
        bucket = check_bucket_name(item["bucket_name"], f"{name}.bucket_name")
        location = item.get("bucket_location")
        if location is None:
            raise invalid_field(f"{name}.bucket_location", "is required")
        if not isinstance(location, str) or not _LOCATION_RE.match(location):
            raise invalid_field(
                f"{name}.bucket_location", "must be a region name such as us-east-1"
            )
        encryption = _bool(item, "is_support_trace_files_encryption", f"{name}.")
        kms_id = item.get("kms_id")
        if kms_id is not None:
            kms_id = check_kms_id(kms_id, f"{name}.kms_id")
        if encryption and kms_id is None:
            raise invalid_field(
                f"{name}.kms_id", "is required when is_support_trace_files_encryption is true"
            )
        out.append(BucketToCheck(bucket, location, kms_id, encryption))
    return out
