"""Digest files (SPEC 9): every digest period (an hour), per tracker with `is_support_validate`,
one signed file in AWS CloudTrail's digest format that lists the trace files delivered in that
period, chained to the previous digest, so that `aws cloudtrail validate-logs` validates it.

How a run stays correct when runs overlap, crash or start late:
- The chain head of each tracker (the last digest: key, hash, signature, end) lives in the
  control table and only moves with a conditional write (`put_checked`), so two runs never fork
  the chain: the loser re-reads the head and goes on from there.
- The digest object of a period has a fixed key (its end time) and is put with `If-None-Match`:
  the object, once written, is the truth. A run that finds the object already there (another run
  or a run that crashed before moving the head) adopts it when it chains from the same head.
  Digest bodies are deterministic (gzip mtime 0, PKCS#1 v1.5 signatures), so racing runs write
  identical objects anyway.
- A run that starts late writes every missing period, oldest first (at most MAX_CATCH_UP per
  tracker and run; the next run goes on). A period is digested only SETTLE_MS after its end, so
  a delivery that completed just before the end is in the delivery log by then.
- A tracker's first digest covers the last completed period: digests start when validation does.

The signing key never leaves KMS (RSA_2048, RSASSA_PKCS1_V1_5_SHA_256, MessageType RAW). Keys
rotate by pointing the alias in OPENCTS_DIGEST_KMS_KEY at a new key: each run resolves the alias,
and a key seen for the first time opens a validity window (closing the previous one) in the
control table, where ListPublicKeys reads them all; old digests stay verifiable with old keys.
"""

from __future__ import annotations

import base64
import calendar
import gzip
import hashlib
import json
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger

from chalicelib import merkle
from chalicelib.clock import MS_PER_HOUR, MS_PER_SECOND, Clock
from chalicelib.control import ControlTable
from chalicelib.deliveries import DeliveredFile, DeliveryLog
from chalicelib.tracker_model import Tracker

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

logger = Logger(service="opencts")

SIGNATURE_ALGORITHM = "SHA256withRSA"
HASH_ALGORITHM = "SHA-256"
KMS_SIGNING_ALGORITHM = "RSASSA_PKCS1_V1_5_SHA_256"
MERKLE_FIELD = "openctsMerkleTree"
DIGEST_FOLDER = "CloudTrail-Digest"
MAX_CATCH_UP = 240  # periods per tracker and run: ten days of hours
MAX_SETTLE_MS = 60_000
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
KEY_TIME_FORMAT = "%Y%m%dT%H%M%SZ"

HEAD_PK_PREFIX = "DIGESTHEAD#"
KEYS_PK = "DIGESTKEYS"
CURRENT_KEY_PK = "DIGESTKEY#CURRENT"


# -- names and formats ------------------------------------------------------------------------
def iso(ms: int) -> str:
    return time.strftime(ISO_FORMAT, time.gmtime(ms // MS_PER_SECOND))


def parse_iso(text: str) -> int:
    return calendar.timegm(time.strptime(text, ISO_FORMAT)) * MS_PER_SECOND


def _join(prefix: str, rest: str) -> str:
    return f"{prefix}/{rest}" if prefix else rest


def digest_folder(prefix: str, domain_id: str, region: str) -> str:
    """Where every digest of the domain and region lies (what validate-logs lists)."""
    return _join(prefix, f"AWSLogs/{domain_id}/{DIGEST_FOLDER}/{region}/")


def digest_key(prefix: str, domain_id: str, region: str, tracker: str, end_ms: int) -> str:
    """SPEC 9: the key of the digest whose period ends at `end_ms`."""
    day = time.strftime("%Y/%m/%d", time.gmtime(end_ms // MS_PER_SECOND))
    stamp = time.strftime(KEY_TIME_FORMAT, time.gmtime(end_ms // MS_PER_SECOND))
    name = f"{domain_id}_{DIGEST_FOLDER}_{region}_{tracker}_{region}_{stamp}.json.gz"
    return f"{digest_folder(prefix, domain_id, region)}{day}/{name}"


def key_end_ms(key: str) -> int:
    """The period end written in a digest key (the timestamp before `.json.gz`)."""
    stamp = key.removesuffix(".json.gz").rsplit("_", 1)[-1]
    return calendar.timegm(time.strptime(stamp, KEY_TIME_FORMAT)) * MS_PER_SECOND


def trace_folder(prefix: str, region: str, day_ms: int, tracker: str) -> str:
    """SPEC 8: the folder of a tracker's trace files of one UTC day (month, day unpadded)."""
    t = time.gmtime(day_ms // MS_PER_SECOND)
    return _join(prefix, f"CloudTraces/{region}/{t.tm_year}/{t.tm_mon}/{t.tm_mday}/{tracker}/")


def string_to_sign(
    end_time: str, bucket: str, key: str, digest_sha256: str, previous_signature: str | None
) -> bytes:
    """SPEC 9; CloudTrail writes the literal `null` for the first digest of a chain."""
    previous = "null" if previous_signature is None else previous_signature
    return f"{end_time}\n{bucket}/{key}\n{digest_sha256}\n{previous}".encode()


def _der_element(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at `at`."""
    tag, length = data[at], data[at + 1]
    start = at + 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(data[start : start + size], "big")
        start += size
    return tag, start, start + length


def pkcs1_from_spki(spki_der: bytes) -> bytes:
    """The PKCS#1 RSAPublicKey inside a SubjectPublicKeyInfo (what KMS GetPublicKey returns):
    SEQUENCE { SEQUENCE algorithm, BIT STRING { 0 unused bits, RSAPublicKey } }."""
    tag, start, _ = _der_element(spki_der, 0)
    if tag != 0x30:
        raise ValueError("not a SubjectPublicKeyInfo")
    _, _, algorithm_end = _der_element(spki_der, start)
    tag, bits_start, bits_end = _der_element(spki_der, algorithm_end)
    if tag != 0x03 or spki_der[bits_start] != 0:
        raise ValueError("SubjectPublicKeyInfo without a public key bit string")
    return spki_der[bits_start + 1 : bits_end]


def fingerprint(pkcs1_der: bytes) -> str:
    """digestPublicKeyFingerprint: hex MD5 of the PKCS#1 DER public key (an identifier, as
    CloudTrail defines it, not a security measure)."""
    return hashlib.md5(pkcs1_der, usedforsecurity=False).hexdigest()


def gunzip_single(body: bytes) -> bytes:
    """The content of a single-member gzip; ValueError for anything after the member (data
    appended to a signed file) or a damaged stream."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        content = inflater.decompress(body) + inflater.flush()
    except zlib.error as e:
        raise ValueError(f"not gzip: {e}") from None
    if not inflater.eof:
        raise ValueError("truncated gzip stream")
    if inflater.unused_data:
        raise ValueError("unexpected data after the end of the compressed stream")
    return content


# -- signing ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SigningKey:
    key_id: str
    public_key: bytes  # PKCS#1 RSAPublicKey DER

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


class DigestSigner(Protocol):
    def current_key(self) -> SigningKey: ...

    def sign(self, key_id: str, message: bytes) -> bytes: ...


class KmsDigestSigner:
    """The asymmetric KMS key behind `key_name` (an alias, id or ARN). Signs with the resolved
    key id, never the alias, so a rotation between two calls cannot mismatch the fingerprint."""

    def __init__(self, kms: KMSClient, key_name: str) -> None:
        self._kms = kms
        self._name = key_name

    def current_key(self) -> SigningKey:
        got = self._kms.get_public_key(KeyId=self._name)
        return SigningKey(str(got["KeyId"]), pkcs1_from_spki(got["PublicKey"]))

    def sign(self, key_id: str, message: bytes) -> bytes:
        # MessageType RAW: KMS hashes the message itself (moto's DIGEST mode signs wrongly).
        got = self._kms.sign(
            KeyId=key_id,
            Message=message,
            MessageType="RAW",
            SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
        )
        return bytes(got["Signature"])


# -- public keys and their validity windows ---------------------------------------------------
@dataclass(frozen=True)
class KeyWindow:
    key_id: str
    public_key: bytes  # PKCS#1 DER
    valid_from_ms: int
    valid_to_ms: int | None  # None: the current key

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def overlaps(self, start_ms: int, end_ms: int) -> bool:
        return self.valid_from_ms <= end_ms and (
            self.valid_to_ms is None or self.valid_to_ms >= start_ms
        )

    def wire(self) -> dict[str, Any]:
        """One PublicKey of CloudTrail's ListPublicKeys (times in epoch seconds)."""
        out: dict[str, Any] = {
            "Value": base64.b64encode(self.public_key).decode(),
            "ValidityStartTime": self.valid_from_ms / MS_PER_SECOND,
            "Fingerprint": self.fingerprint,
        }
        if self.valid_to_ms is not None:
            out["ValidityEndTime"] = self.valid_to_ms / MS_PER_SECOND
        return out


class PublicKeyRegistry:
    """Every digest signing key OpenCTS has used, with its validity window."""

    def __init__(self, table: ControlTable) -> None:
        self._table = table

    def windows(self) -> list[KeyWindow]:
        found = [
            KeyWindow(
                key_id=str(i["key_id"]),
                public_key=base64.b64decode(str(i["public_key"])),
                valid_from_ms=int(i["valid_from_ms"]),
                valid_to_ms=int(i["valid_to_ms"]) if i.get("valid_to_ms") is not None else None,
            )
            for i in self._table.query(KEYS_PK)
        ]
        return sorted(found, key=lambda w: w.valid_from_ms)

    def in_range(self, start_ms: int, end_ms: int) -> list[KeyWindow]:
        return [w for w in self.windows() if w.overlaps(start_ms, end_ms)]

    def observe(self, key: SigningKey, now_ms: int) -> None:
        """Records `key` as the current signing key; a new key opens its window now and closes
        its predecessor's. Idempotent, and safe when two runs see the same rotation."""
        for _ in range(5):
            current = self._table.get(CURRENT_KEY_PK, "CURRENT")
            if current is not None and current["key_id"] == key.key_id:
                return
            self._table.put(
                {
                    "pk": KEYS_PK,
                    "sk": key.key_id,
                    "key_id": key.key_id,
                    "public_key": base64.b64encode(key.public_key).decode(),
                    "fingerprint": key.fingerprint,
                    "valid_from_ms": now_ms,
                    "valid_to_ms": None,
                }
            )
            if current is not None:
                old = self._table.get(KEYS_PK, str(current["key_id"]))
                if old is not None and old.get("valid_to_ms") is None:
                    self._table.put({**old, "valid_to_ms": now_ms})
            version = int(current["version"]) if current else None
            item = {
                "pk": CURRENT_KEY_PK,
                "sk": "CURRENT",
                "key_id": key.key_id,
                "version": (version or 0) + 1,
            }
            if self._table.put_checked(item, version):
                logger.info("digest signing key recorded", key_id=key.key_id)
                return
        raise RuntimeError("the current digest key kept changing under this run")


class BadRequest(ValueError):
    """A CloudTrail JSON 1.1 client error: `code` is the AWS error type."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        # botocore reads __type and message; the CTS fields keep OpenCTS's error shape.
        return {
            "__type": self.code,
            "message": self.message,
            "error_code": "CTS.0400",
            "error_msg": self.message,
        }


# Older SDKs send the short target, current botocore the one qualified by the Smithy namespace.
LIST_PUBLIC_KEYS_TARGETS = frozenset(
    {
        "CloudTrail_20131101.ListPublicKeys",
        "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.ListPublicKeys",
    }
)


def _epoch_ms(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest("ValidationException", f"{name} must be a timestamp in epoch seconds")
    if not 0 <= value < 32_503_680_000:  # before year 3000
        raise BadRequest("ValidationException", f"{name} is out of range")
    return int(value * MS_PER_SECOND)


def list_public_keys(
    registry: PublicKeyRegistry, target: str, raw_body: bytes, now_ms: int
) -> dict[str, Any]:
    """CloudTrail's ListPublicKeys (JSON 1.1): the keys whose validity window overlaps
    [StartTime, EndTime] (both default to now; epoch seconds)."""
    if target not in LIST_PUBLIC_KEYS_TARGETS:
        raise BadRequest("UnknownOperationException", f"unsupported operation {target!r}")
    try:
        body = json.loads(raw_body or b"{}")
    except ValueError:
        raise BadRequest("SerializationException", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("SerializationException", "the body must be a JSON object")
    unknown = set(body) - {"StartTime", "EndTime", "NextToken"}
    if unknown:
        raise BadRequest("ValidationException", f"unknown fields: {', '.join(sorted(unknown))}")
    if not isinstance(body.get("NextToken", ""), str):
        raise BadRequest("ValidationException", "NextToken must be a string")
    start = _epoch_ms(body["StartTime"], "StartTime") if "StartTime" in body else now_ms
    end = _epoch_ms(body["EndTime"], "EndTime") if "EndTime" in body else now_ms
    if start > end:
        raise BadRequest("InvalidTimeRangeException", "StartTime is after EndTime")
    return {"PublicKeyList": [w.wire() for w in registry.in_range(start, end)]}


# -- objects in the bucket -------------------------------------------------------------------
@dataclass(frozen=True)
class StoredObject:
    body: bytes
    metadata: Mapping[str, str]


class DigestObjects(Protocol):
    def put_new(self, bucket: str, key: str, body: bytes, metadata: Mapping[str, str]) -> bool:
        """Writes unless the key exists; False when it does."""
        ...

    def put(self, bucket: str, key: str, body: bytes, metadata: Mapping[str, str]) -> None: ...

    def get(self, bucket: str, key: str) -> StoredObject | None: ...


class S3DigestObjects:
    def __init__(self, s3: S3Client) -> None:
        self._s3 = s3

    def put_new(self, bucket: str, key: str, body: bytes, metadata: Mapping[str, str]) -> bool:
        try:
            self._s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                Metadata=dict(metadata),
                ContentType="application/json",
                ContentEncoding="gzip",
                IfNoneMatch="*",
            )
        except self._s3.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                return False
            raise
        return True

    def put(self, bucket: str, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        self._s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            Metadata=dict(metadata),
            ContentType="application/json",
            ContentEncoding="gzip",
        )

    def get(self, bucket: str, key: str) -> StoredObject | None:
        try:
            got = self._s3.get_object(Bucket=bucket, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return None
        return StoredObject(got["Body"].read(), dict(got.get("Metadata") or {}))


# -- the chain head ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainHead:
    """The newest digest of a tracker's chain, as recorded when it was written."""

    project_id: str
    tracker_name: str
    bucket: str
    key: str
    sha256: str  # of the uncompressed digest
    signature: str  # lower-case hex
    start_ms: int
    end_ms: int
    version: int
    chain_start_ms: int = 0  # the start of the chain's first digest

    def item(self) -> dict[str, Any]:
        return {
            "pk": f"{HEAD_PK_PREFIX}{self.project_id}",
            "sk": self.tracker_name,
            "bucket": self.bucket,
            "key": self.key,
            "sha256": self.sha256,
            "signature": self.signature,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "version": self.version,
            "chain_start_ms": self.chain_start_ms,
        }


class ChainHeads:
    def __init__(self, table: ControlTable) -> None:
        self._table = table

    def get(self, project_id: str, tracker_name: str) -> ChainHead | None:
        item = self._table.get(f"{HEAD_PK_PREFIX}{project_id}", tracker_name)
        if item is None:
            return None
        return ChainHead(
            project_id=project_id,
            tracker_name=tracker_name,
            bucket=str(item["bucket"]),
            key=str(item["key"]),
            sha256=str(item["sha256"]),
            signature=str(item["signature"]),
            start_ms=int(item["start_ms"]),
            end_ms=int(item["end_ms"]),
            version=int(item["version"]),
            chain_start_ms=int(item.get("chain_start_ms", 0)),
        )

    def advance(self, head: ChainHead, previous: ChainHead | None) -> bool:
        """False when another run moved the head first."""
        return self._table.put_checked(head.item(), previous.version if previous else None)


def integrity_state(
    heads: ChainHeads, clock: Clock, period_ms: int
) -> Callable[[str, str], dict[str, Any]]:
    """What ListTrackers shows of a validated tracker's chain: its newest digest and whether
    digests are up to date (`current`: the newest covers a period that ended at most two periods
    ago), `behind` (the digest function has not run, or fails), or `none` (no digest yet)."""

    def state(project_id: str, tracker_name: str) -> dict[str, Any]:
        head = heads.get(project_id, tracker_name)
        if head is None:
            return {"status": "none"}
        current = head.end_ms >= clock.now_ms() - 2 * period_ms
        return {
            "status": "current" if current else "behind",
            "last_digest_time": head.end_ms,
            "last_digest": f"s3://{head.bucket}/{head.key}",
        }

    return state


# -- writing digests ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WrittenDigest:
    project_id: str
    tracker_name: str
    bucket: str
    key: str
    files: int
    adopted: bool  # found already written by another (or an interrupted) run


def log_file_entry(f: DeliveredFile) -> dict[str, Any]:
    return {
        "s3Bucket": f.bucket,
        "s3Object": f.key,
        "hashValue": f.sha256,
        "hashAlgorithm": HASH_ALGORITHM,
        "newestEventTime": iso(f.newest_event_ms),
        "oldestEventTime": iso(f.oldest_event_ms),
    }


def merkle_leaves(log_files: Iterable[Mapping[str, Any]]) -> list[bytes]:
    return [
        merkle.leaf_data(str(f["hashValue"]), str(f["s3Bucket"]), str(f["s3Object"]))
        for f in log_files
    ]


def merkle_field(log_files: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "algorithm": merkle.ALGORITHM,
        "leaf": "sha256(uncompressed file) || '<s3Bucket>/<s3Object>', in logFiles order",
        "treeSize": len(log_files),
        "rootHash": merkle.root(merkle_leaves(log_files)).hex(),
    }


@dataclass
class DigestWriter:
    trackers: Callable[[], Iterable[Tracker]]
    deliveries: DeliveryLog
    heads: ChainHeads
    keys: PublicKeyRegistry
    objects: DigestObjects
    signer: DigestSigner
    clock: Clock
    region: str
    domain_id: str
    period_ms: int = MS_PER_HOUR
    # (metric name, value): DigestsWritten and DigestFailures per run (chalicelib/observability).
    count: Callable[[str, int], None] = lambda name, value: None

    @property
    def settle_ms(self) -> int:
        return min(MAX_SETTLE_MS, self.period_ms // 4)

    def run(self) -> list[WrittenDigest]:
        """One scheduled run: every tracker's missing digests. A failing tracker is logged and
        retried next run; it never stops the others."""
        key = self.signer.current_key()
        self.keys.observe(key, self.clock.now_ms())
        written: list[WrittenDigest] = []
        for tracker in self.trackers():
            if not (tracker.is_support_validate and tracker.transfers_to_s3):
                continue
            try:
                written.extend(self.run_tracker(tracker, key))
            except Exception:
                logger.exception(
                    "digest run failed",
                    project_id=tracker.project_id,
                    tracker_name=tracker.tracker_name,
                )
                self.count("DigestFailures", 1)
        self.count("DigestsWritten", len(written))
        return written

    def latest_end_ms(self) -> int:
        """The end of the newest period that may be digested now."""
        ready = self.clock.now_ms() - self.settle_ms
        return ready - ready % self.period_ms

    def run_tracker(self, tracker: Tracker, key: SigningKey) -> list[WrittenDigest]:
        latest = self.latest_end_ms()
        head = self.heads.get(tracker.project_id, tracker.tracker_name)
        written: list[WrittenDigest] = []
        for _ in range(MAX_CATCH_UP):
            start = head.end_ms if head else latest - self.period_ms
            end = (start // self.period_ms + 1) * self.period_ms
            if end > latest:
                break
            outcome, head = self._write(tracker, head, start, end, key)
            if outcome is not None:
                written.append(outcome)
        return written

    def _write(
        self, tracker: Tracker, head: ChainHead | None, start: int, end: int, key: SigningKey
    ) -> tuple[WrittenDigest | None, ChainHead | None]:
        bucket = tracker.obs_info.bucket_name
        domain = tracker.domain_id or self.domain_id
        object_key = digest_key(
            tracker.obs_info.file_prefix_name, domain, self.region, tracker.tracker_name, end
        )
        files = self.files(tracker, start, end)
        log_files = [log_file_entry(f) for f in files]
        body: dict[str, Any] = {
            "awsAccountId": domain,
            "digestStartTime": iso(start),
            "digestEndTime": iso(end),
            "digestS3Bucket": bucket,
            "digestS3Object": object_key,
            "digestPublicKeyFingerprint": key.fingerprint,
            "digestSignatureAlgorithm": SIGNATURE_ALGORITHM,
            "newestEventTime": iso(max(f.newest_event_ms for f in files)) if files else None,
            "oldestEventTime": iso(min(f.oldest_event_ms for f in files)) if files else None,
            "previousDigestS3Bucket": head.bucket if head else None,
            "previousDigestS3Object": head.key if head else None,
            "previousDigestHashValue": head.sha256 if head else None,
            "previousDigestHashAlgorithm": HASH_ALGORITHM if head else None,
            "previousDigestSignature": head.signature if head else None,
            "logFiles": log_files,
            MERKLE_FIELD: merkle_field(log_files),
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        sha = hashlib.sha256(raw).hexdigest()
        previous_signature = head.signature if head else None
        message = string_to_sign(iso(end), bucket, object_key, sha, previous_signature)
        signature = self.signer.sign(key.key_id, message).hex()
        metadata = {"signature": signature, "signature-algorithm": SIGNATURE_ALGORITHM}
        compressed = gzip.compress(raw, mtime=0)
        adopted = False
        count = len(files)
        if not self.objects.put_new(bucket, object_key, compressed, metadata):
            found = self._adoptable(bucket, object_key, previous_signature)
            if found is None:
                logger.warning(
                    "replacing an object that does not chain from the head", key=object_key
                )
                self.objects.put(bucket, object_key, compressed, metadata)
            else:
                sha, signature, count = found
                adopted = True
        new_head = ChainHead(
            project_id=tracker.project_id,
            tracker_name=tracker.tracker_name,
            bucket=bucket,
            key=object_key,
            sha256=sha,
            signature=signature,
            start_ms=start,
            end_ms=end,
            version=(head.version if head else 0) + 1,
            chain_start_ms=head.chain_start_ms if head else start,
        )
        if not self.heads.advance(new_head, head):
            # Another run wrote this period first (and, since the object is put only when
            # absent, the same object): go on from the head it recorded.
            return None, self.heads.get(tracker.project_id, tracker.tracker_name)
        outcome = WrittenDigest(
            tracker.project_id, tracker.tracker_name, bucket, object_key, count, adopted
        )
        logger.info("digest written", key=object_key, files=count, adopted=adopted)
        return outcome, new_head

    def _adoptable(
        self, bucket: str, key: str, previous_signature: str | None
    ) -> tuple[str, str, int] | None:
        """(sha256, signature, file count) of the digest already at `key` when it chains from
        the head."""
        found = self.objects.get(bucket, key)
        if found is None or "signature" not in found.metadata:
            return None
        try:
            raw = gunzip_single(found.body)
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("digestS3Object") != key:
            return None
        if data.get("previousDigestSignature") != previous_signature:
            return None
        count = len(data.get("logFiles") or [])
        return hashlib.sha256(raw).hexdigest(), str(found.metadata["signature"]), count

    def files(self, tracker: Tracker, start: int, end: int) -> list[DeliveredFile]:
        """The trace files delivered in [start, end), oldest delivery first, never a digest."""
        seen: dict[tuple[str, str], DeliveredFile] = {}
        hour = start - start % MS_PER_HOUR
        while hour < end:
            for f in self.deliveries.delivered_in_hour(
                tracker.project_id, tracker.tracker_name, hour
            ):
                if start <= f.delivered_ms < end and f"/{DIGEST_FOLDER}/" not in f"/{f.key}":
                    seen.setdefault((f.bucket, f.key), f)
            hour += MS_PER_HOUR
        return sorted(seen.values(), key=lambda f: (f.delivered_ms, f.key))
