"""`opencts validate`: checks a tracker's digest chain and trace files, and finds what
`aws cloudtrail validate-logs` cannot: a deleted newest digest (checked against the chain head in
the control table), runs of deleted digests (each named, the files they covered flagged
unverified), trace files no digest lists, a wrong previous-digest hash or signature link, data
appended after a gzip member, and a Merkle root that does not match the listed files.

Every digest of the range (and one period past it, for files delivered at the boundary) and every
trace file they list are read with a bounded pool of threads. Findings name the exact object.
Outcome: 0 valid, 1 tampering found, 2 could not check (nothing to check against, no keys).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib import merkle
from chalicelib.clock import MS_PER_DAY, MS_PER_HOUR, MS_PER_SECOND
from chalicelib.digests import (
    MERKLE_FIELD,
    ChainHead,
    KeyWindow,
    StoredObject,
    digest_key,
    gunzip_single,
    iso,
    key_end_ms,
    merkle_leaves,
    parse_iso,
    string_to_sign,
    trace_folder,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

VALID, INVALID, MISSING = "valid", "invalid", "missing"
UNVERIFIED, UNLISTED = "unverified", "unlisted"
EXIT_VALID, EXIT_TAMPERED, EXIT_UNCHECKED = 0, 1, 2
DEFAULT_WORKERS = 16
REQUIRED_FIELDS = (
    "digestPublicKeyFingerprint",
    "digestS3Bucket",
    "digestS3Object",
    "previousDigestSignature",
    "digestEndTime",
    "digestStartTime",
    "logFiles",
)
# SPEC 8 trace-file names end with the delivery time and 16 random hex digits.
_TRACE_TIME_RE = re.compile(r"_(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z)_[0-9a-f]{16}\.json(\.gz)?$")


# -- where objects come from ------------------------------------------------------------------
class ObjectSource(Protocol):
    def list(self, bucket: str, prefix: str) -> list[str]: ...

    def get(self, bucket: str, key: str) -> StoredObject | None: ...


class S3Source:
    def __init__(self, s3: S3Client) -> None:
        self._s3 = s3

    def list(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            keys.extend(str(o["Key"]) for o in page.get("Contents", []))
        return keys

    def get(self, bucket: str, key: str) -> StoredObject | None:
        try:
            got = self._s3.get_object(Bucket=bucket, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return None
        return StoredObject(got["Body"].read(), dict(got.get("Metadata") or {}))


class DirectorySource:
    """A local copy of the bucket: `<dir>/<key>`, and beside each digest its S3 metadata as
    `<key>.metadata.json` (a plain `aws s3 sync` drops the signature, which lives there)."""

    METADATA_SUFFIX = ".metadata.json"

    def __init__(self, root: Path) -> None:
        self._root = root

    def list(self, bucket: str, prefix: str) -> list[str]:
        base = self._root / prefix
        folder = base if prefix.endswith("/") else base.parent
        if not folder.is_dir():
            return []
        found = []
        for path in folder.rglob("*"):
            key = path.relative_to(self._root).as_posix()
            if path.is_file() and key.startswith(prefix) and not key.endswith(self.METADATA_SUFFIX):
                found.append(key)
        return sorted(found)

    def get(self, bucket: str, key: str) -> StoredObject | None:
        path = self._root / key
        if not path.is_file():
            return None
        sidecar = path.with_name(path.name + self.METADATA_SUFFIX)
        metadata = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        return StoredObject(path.read_bytes(), metadata)


# -- the report --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    status: str  # invalid, missing, unverified, unlisted
    kind: str  # digest or trace file
    uri: str
    reason: str

    def line(self) -> str:
        return f"{self.kind}\t{self.uri}\t{self.status.upper()}: {self.reason}"


@dataclass
class PeriodReport:
    start: str | None
    end: str
    digest: str
    status: str
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class Report:
    tracker: str
    start_ms: int
    end_ms: int
    periods: list[PeriodReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.findings:
            return EXIT_TAMPERED
        return EXIT_UNCHECKED if self.unchecked else EXIT_VALID

    def to_json(self) -> dict[str, Any]:
        files = [s for p in self.periods for s in p.files.values()]
        return {
            "tracker": self.tracker,
            "start": iso(self.start_ms),
            "end": iso(self.end_ms),
            "result": {0: "valid", 1: "tampered", 2: "unchecked"}[self.exit_code],
            "digests": {
                "valid": sum(p.status == VALID for p in self.periods),
                "total": len(self.periods),
            },
            "trace_files": {"valid": files.count(VALID), "total": len(files)},
            "periods": [vars(p) for p in self.periods],
            "findings": [vars(f) for f in self.findings],
            "notes": self.notes,
            "unchecked": self.unchecked,
        }

    def text(self, verbose: bool = False) -> str:
        lines = [
            f"Validating tracker {self.tracker} from {iso(self.start_ms)} to {iso(self.end_ms)}"
        ]
        if verbose:
            for p in self.periods:
                lines.append(f"{p.start or '?'} .. {p.end}  digest {p.status}  {p.digest}")
                lines.extend(f"    trace file {s}  {k}" for k, s in p.files.items())
        lines.extend(f.line() for f in self.findings)
        lines.extend(f"note: {n}" for n in self.notes)
        lines.extend(f"could not check: {u}" for u in self.unchecked)
        files = [s for p in self.periods for s in p.files.values()]
        lines.append(
            f"{sum(p.status == VALID for p in self.periods)}/{len(self.periods)} digests valid, "
            f"{files.count(VALID)}/{len(files)} trace files valid, "
            f"{len(self.findings)} problems"
        )
        return "\n".join(lines)


# -- validation -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    bucket: str
    prefix: str
    domain_id: str
    region: str
    tracker_name: str


@dataclass
class DigestFile:
    key: str
    end_ms: int
    raw: bytes | None = None
    data: dict[str, Any] | None = None
    signature: str = ""
    problem: str | None = None  # why it is invalid
    missing: bool = False

    @property
    def valid(self) -> bool:
        return self.data is not None and self.problem is None

    @property
    def start_ms(self) -> int | None:
        return parse_iso(str(self.data["digestStartTime"])) if self.data else None


def _uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def trace_file_time(key: str) -> int | None:
    found = _TRACE_TIME_RE.search(key)
    if not found:
        return None
    return parse_iso(
        found.group(1)[:13] + ":" + found.group(1)[14:16] + ":" + found.group(1)[17:19] + "Z"
    )


class Validator:
    def __init__(
        self,
        source: ObjectSource,
        keys: Sequence[KeyWindow],
        workers: int = DEFAULT_WORKERS,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self._source = source
        self._keys = {w.fingerprint: w for w in keys}
        self._workers = max(1, workers)
        self._progress = progress
        # During validate(): one pool for every listing and read, and the trace files read ahead
        # of the digests that list them (their content hashes, never their bodies).
        self._pool: ThreadPoolExecutor | None = None
        self._listings: dict[str, Future[list[str]]] = {}
        self._reads: dict[tuple[str, str], Future[FileRead]] = {}

    def validate(
        self,
        target: Target,
        start_ms: int,
        end_ms: int,
        head: ChainHead | None,
        *,
        head_known: bool = True,
        chain_start_ms: int | None = None,
    ) -> Report:
        """`head`: the chain head from the control table (None: no digest written yet, or, with
        head_known False, not available offline). `chain_start_ms`: where the chain begins.

        Every listing (the digest folders of the range and the trace folders of its days) is
        started at once; the digests are read as soon as their folders are listed and the trace
        files of the range right behind them, so the pool never waits for the chain walk. What
        is checked does not change: the walk, the links and the file hashes use these reads."""
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            self._pool = pool
            try:
                return self._validate(
                    target,
                    start_ms,
                    end_ms,
                    head,
                    head_known=head_known,
                    chain_start_ms=chain_start_ms,
                )
            finally:
                self._pool = None
                self._listings = {}
                self._reads = {}

    def _validate(
        self,
        target: Target,
        start_ms: int,
        end_ms: int,
        head: ChainHead | None,
        *,
        head_known: bool,
        chain_start_ms: int | None,
    ) -> Report:
        report = Report(target.tracker_name, start_ms, end_ms)
        trace_folders = _trace_folders(target, start_ms, end_ms)
        digest_folders = _digest_folders(target, start_ms, end_ms)
        self._list_ahead(target.bucket, [*digest_folders, *trace_folders])
        if not self._keys:
            report.unchecked.append("no public keys: signatures cannot be checked")
        found = self._list_digests(target, start_ms, end_ms)
        if head is None and head_known:
            report.unchecked.append(
                f"no chain head recorded for tracker {target.tracker_name}: no digest written"
            )
        elif head is None:
            report.notes.append(
                "the chain head is not available offline: a deleted newest digest cannot be "
                "detected (give --head KEY)"
            )
        if head is not None and head.end_ms <= end_ms:
            top = head.end_ms
            found[top] = head.key
        else:
            after = [e for e in found if e > end_ms]
            top = min(after) if after else (head.end_ms if head else max(found, default=0))
            if head is not None and top == head.end_ms:
                found[top] = head.key
        if not top:
            if not report.unchecked:
                report.unchecked.append("no digest found in the range")
            return report
        digests = {e: DigestFile(k, e) for e, k in found.items() if e <= top}
        loading = self._submit_digests(target, digests)
        self._read_ahead(target, trace_folders, start_ms, end_ms)
        for f in loading:
            f.result()
        period = self._period(digests.values())
        floor = start_ms
        if chain_start_ms is not None:
            floor = max(floor, chain_start_ms)
        elif head is None and digests:
            floor = max(floor, min(digests) - period)
        chain = self._walk(target, digests, top, floor, period, report)
        self._check_files(target, chain, start_ms, end_ms, period, report)
        return report

    # -- digests --
    def _list_digests(self, target: Target, start_ms: int, end_ms: int) -> dict[int, str]:
        """Digest keys of the tracker whose end lies in (start, end + 2 days], by end."""
        found: dict[int, str] = {}
        for folder in _digest_folders(target, start_ms, end_ms):
            for key in self._listing(target.bucket, folder):
                try:
                    end = key_end_ms(key)
                except ValueError:
                    continue
                if start_ms < end <= end_ms + 2 * MS_PER_DAY:
                    found[end] = key
        return found

    # -- reads: one pool, listings and trace files started ahead --
    def _list_ahead(self, bucket: str, prefixes: Iterable[str]) -> None:
        if self._pool is not None:
            for prefix in prefixes:
                if prefix not in self._listings:
                    self._listings[prefix] = self._pool.submit(self._source.list, bucket, prefix)

    def _listing(self, bucket: str, prefix: str) -> list[str]:
        ahead = self._listings.get(prefix)
        return ahead.result() if ahead is not None else self._source.list(bucket, prefix)

    def _read_ahead(
        self, target: Target, folders: Iterable[str], start_ms: int, end_ms: int
    ) -> None:
        """Start reading the trace files delivered in the range (the files its digests list)."""
        for folder in folders:
            for key in self._listing(target.bucket, folder):
                at = trace_file_time(key)
                if at is not None and start_ms <= at < end_ms:
                    self._read(target.bucket, key)

    def _read(self, bucket: str, key: str) -> Future[FileRead]:
        """The read of a trace file, started once (on the pool) and shared."""
        ahead = self._reads.get((bucket, key))
        if ahead is None:
            if self._pool is not None:
                ahead = self._pool.submit(self._read_file, bucket, key)
            else:
                ahead = Future()
                ahead.set_result(self._read_file(bucket, key))
            self._reads[(bucket, key)] = ahead
        return ahead

    def _read_file(self, bucket: str, key: str) -> FileRead:
        got = self._source.get(bucket, key)
        if got is None:
            return FileRead(found=False)
        try:
            content = gunzip_single(got.body) if got.body[:2] == b"\x1f\x8b" else got.body
        except ValueError as e:
            return FileRead(found=True, error=str(e))
        return FileRead(found=True, sha256=hashlib.sha256(content).hexdigest())

    def _submit_digests(
        self, target: Target, digests: Mapping[int, DigestFile]
    ) -> list[Future[None]]:
        assert self._pool is not None
        return [self._pool.submit(self._load_digest, target, d) for d in digests.values()]

    def load_digests(self, target: Target, digests: Mapping[int, DigestFile]) -> None:
        self._run(lambda d: self._load_digest(target, d), digests.values())

    def _load_digest(self, target: Target, d: DigestFile) -> None:
        got = self._source.get(target.bucket, d.key)
        if got is None:
            d.missing = True
            return
        d.signature = str(got.metadata.get("signature", ""))
        try:
            d.raw = gunzip_single(got.body)
            data = json.loads(d.raw)
        except ValueError as e:
            d.problem = f"invalid format ({e})"
            return
        if not isinstance(data, dict) or any(f not in data for f in REQUIRED_FIELDS):
            d.problem = "invalid format (a required field is missing)"
            return
        d.data = data
        d.problem = self._digest_problem(target, d, data)

    def _digest_problem(self, target: Target, d: DigestFile, data: dict[str, Any]) -> str | None:
        if data["digestS3Bucket"] != target.bucket or data["digestS3Object"] != d.key:
            return "has been moved from its original location"
        if parse_iso(str(data["digestEndTime"])) != d.end_ms:
            return "its end time does not match its name"
        window = self._keys.get(str(data["digestPublicKeyFingerprint"]))
        if window is None:
            return f"no public key with fingerprint {data['digestPublicKeyFingerprint']}"
        if not d.signature:
            return "no signature in the object metadata"
        assert d.raw is not None
        message = string_to_sign(
            str(data["digestEndTime"]),
            target.bucket,
            d.key,
            hashlib.sha256(d.raw).hexdigest(),
            data["previousDigestSignature"],
        )
        if not _verify(window.public_key, message, d.signature):
            return "signature verification failed"
        tree = data.get(MERKLE_FIELD)
        if isinstance(tree, dict):
            root = merkle.root(merkle_leaves(data["logFiles"])).hex()
            if tree.get("rootHash") != root or tree.get("treeSize") != len(data["logFiles"]):
                return "its Merkle root does not match its log files"
        return None

    @staticmethod
    def _period(digests: Iterable[DigestFile]) -> int:
        spans = sorted(d.end_ms - (d.start_ms or 0) for d in digests if d.valid)
        return spans[len(spans) // 2] if spans else MS_PER_HOUR

    def _walk(
        self,
        target: Target,
        digests: dict[int, DigestFile],
        top: int,
        floor: int,
        period: int,
        report: Report,
    ) -> list[DigestFile]:
        """From the newest digest back to `floor`: every digest, found or not. A digest that is
        not there is named (its key follows from its end time), so a run of deleted digests is
        reported digest by digest."""
        chain: list[DigestFile] = []
        end = top
        newer: DigestFile | None = None
        while True:
            if end not in digests:
                key = digest_key(
                    target.prefix, target.domain_id, target.region, target.tracker_name, end
                )
                digests[end] = DigestFile(key, end, missing=True)
            d = digests[end]
            uri = _uri(target.bucket, d.key)
            start = d.start_ms if d.valid else None
            period_report = PeriodReport(
                iso(start) if start is not None else None, iso(end), d.key, VALID
            )
            report.periods.append(period_report)
            chain.append(d)
            if d.missing:
                period_report.status = MISSING
                why = (
                    "not found"
                    if newer is not None
                    else ("not found (the newest digest, named by the chain head)")
                )
                report.findings.append(Finding(MISSING, "digest", uri, why))
            elif not d.valid:
                period_report.status = INVALID
                report.findings.append(Finding(INVALID, "digest", uri, str(d.problem)))
            if newer is not None and newer.valid and d.valid:
                self._check_link(target, newer, d, report)
            if d.valid and d.data is not None:
                previous_key = d.data.get("previousDigestS3Object")
                if previous_key is None:
                    break  # the first digest of the chain
                previous_end = key_end_ms(str(previous_key))
                if previous_end != start:
                    period_report.status = INVALID
                    report.findings.append(
                        Finding(
                            INVALID,
                            "digest",
                            uri,
                            "its previous digest does not end where it starts",
                        )
                    )
            else:
                previous_end = end - period
            if previous_end <= floor or previous_end >= end:
                break
            newer = d
            end = previous_end
        return chain

    @staticmethod
    def _check_link(target: Target, newer: DigestFile, older: DigestFile, report: Report) -> None:
        assert newer.data is not None
        assert older.raw is not None
        uri = _uri(target.bucket, newer.key)
        if (
            newer.data.get("previousDigestS3Object") != older.key
            or newer.data.get("previousDigestS3Bucket") != target.bucket
        ):
            report.findings.append(
                Finding(INVALID, "digest", uri, "its previous digest is not the one before it")
            )
        elif newer.data.get("previousDigestHashValue") != hashlib.sha256(older.raw).hexdigest():
            report.findings.append(
                Finding(
                    INVALID,
                    "digest",
                    uri,
                    "previous-digest hash does not match " + _uri(target.bucket, older.key),
                )
            )
        elif newer.data.get("previousDigestSignature") != older.signature:
            report.findings.append(
                Finding(
                    INVALID,
                    "digest",
                    uri,
                    "previous-digest signature does not match " + _uri(target.bucket, older.key),
                )
            )

    # -- trace files --
    def _check_files(
        self,
        target: Target,
        chain: list[DigestFile],
        start_ms: int,
        end_ms: int,
        period_ms: int,
        report: Report,
    ) -> None:
        listed: dict[tuple[str, str], tuple[PeriodReport, dict[str, Any]]] = {}
        unverified: list[tuple[int, int, str]] = []  # periods whose digest is missing or bad
        by_key = {p.digest: p for p in report.periods}
        for d in chain:
            period = by_key[d.key]
            if d.valid and d.data is not None:
                for entry in d.data["logFiles"]:
                    listed[(str(entry["s3Bucket"]), str(entry["s3Object"]))] = (period, entry)
            else:
                start = d.end_ms - period_ms
                unverified.append((start, d.end_ms, d.key))

        reads = {where: self._read(*where) for where in listed}
        if self._progress is not None:
            for done, _ in enumerate(as_completed(reads.values()), 1):
                self._progress(done, len(reads))
        for (bucket, key), (period, entry) in listed.items():
            read = reads[(bucket, key)].result()
            status, reason = _file_status(read, str(entry.get("hashValue")))
            period.files[key] = status
            if status != VALID:
                report.findings.append(Finding(status, "trace file", _uri(bucket, key), reason))
        # Trace files no verified digest lists: in the tracker's folders of the covered days.
        oldest = min((d.end_ms for d in chain), default=end_ms) - period_ms
        newest = max((d.end_ms for d in chain), default=start_ms)
        low, high = max(start_ms, oldest), min(end_ms, newest)
        day = low - low % MS_PER_DAY
        while day < high:
            folder = trace_folder(target.prefix, target.region, day, target.tracker_name)
            for key in self._listing(target.bucket, folder):
                if (target.bucket, key) in listed:
                    continue
                at = trace_file_time(key)
                if at is not None and not low <= at < high:
                    continue
                cover = next((u for u in unverified if at is not None and u[0] <= at < u[1]), None)
                if cover is not None:
                    report.findings.append(
                        Finding(
                            UNVERIFIED,
                            "trace file",
                            _uri(target.bucket, key),
                            f"its digest {_uri(target.bucket, cover[2])} is missing or invalid",
                        )
                    )
                else:
                    report.findings.append(
                        Finding(
                            UNLISTED,
                            "trace file",
                            _uri(target.bucket, key),
                            "no digest lists this file",
                        )
                    )
            day += MS_PER_DAY

    def _run(self, work: Callable[[Any], None], items: Iterable[Any]) -> None:
        todo = list(items)
        done = 0
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            for _ in pool.map(work, todo):
                done += 1
                if self._progress is not None:
                    self._progress(done, len(todo))


@dataclass(frozen=True)
class FileRead:
    """What a trace file's read found: whether it is there, and the SHA-256 of its content
    (or why the content could not be read)."""

    found: bool
    sha256: str | None = None
    error: str | None = None


def _file_status(read: FileRead, expected: str) -> tuple[str, str]:
    if not read.found:
        return MISSING, "not found"
    if read.error is not None:
        return INVALID, read.error
    if read.sha256 != expected:
        return INVALID, "hash value doesn't match"
    return VALID, ""


def _digest_folders(target: Target, start_ms: int, end_ms: int) -> list[str]:
    """The prefixes of the tracker's digests in the folders of the days from the range's start
    to two days past its end (a digest is delivered after its period)."""
    name = digest_key(target.prefix, target.domain_id, target.region, target.tracker_name, 0)
    name_prefix = name.rsplit("/", 1)[1].rsplit("_", 1)[0] + "_"
    folders = []
    day = start_ms - start_ms % MS_PER_DAY
    while day <= end_ms + 2 * MS_PER_DAY:
        folder = digest_key(
            target.prefix, target.domain_id, target.region, target.tracker_name, day
        ).rsplit("/", 1)[0]
        folders.append(f"{folder}/{name_prefix}")
        day += MS_PER_DAY
    return folders


def _trace_folders(target: Target, start_ms: int, end_ms: int) -> list[str]:
    """The tracker's trace-file folders of the days of [start, end)."""
    folders = []
    day = start_ms - start_ms % MS_PER_DAY
    while day < end_ms:
        folders.append(trace_folder(target.prefix, target.region, day, target.tracker_name))
        day += MS_PER_DAY
    return folders


def _verify(pkcs1_der: bytes, message: bytes, signature_hex: str) -> bool:
    """RSA PKCS#1 v1.5 with SHA-256, as validate-logs checks it."""
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - CLI-only dependency
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import load_der_public_key  # noqa: PLC0415

    try:
        signature = bytes.fromhex(signature_hex)
        key = _load_pkcs1(pkcs1_der, load_der_public_key)
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (ValueError, InvalidSignature):
        return False
    return True


def _load_pkcs1(pkcs1_der: bytes, load: Callable[[bytes], Any]) -> Any:
    """cryptography loads SubjectPublicKeyInfo DER: wrap the PKCS#1 key in one."""
    algorithm = bytes.fromhex("300d06092a864886f70d0101010500")  # rsaEncryption, NULL
    bits = b"\x00" + pkcs1_der
    bit_string = b"\x03" + _der_length(len(bits)) + bits
    inner = algorithm + bit_string
    return load(b"\x30" + _der_length(len(inner)) + inner)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


# -- Merkle proofs -----------------------------------------------------------------------------
@dataclass(frozen=True)
class InclusionProof:
    digest: str
    trace_file: str
    leaf_index: int
    tree_size: int
    root: str
    path: list[str]
    verified: bool

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


def prove(digest_data: Mapping[str, Any], trace_bucket: str, trace_key: str) -> InclusionProof:
    """The RFC 6962 inclusion proof of a trace file in its digest's Merkle tree, verified
    against the root the (signed) digest carries."""
    files = list(digest_data["logFiles"])
    index = next(
        (
            i
            for i, f in enumerate(files)
            if f["s3Bucket"] == trace_bucket and f["s3Object"] == trace_key
        ),
        None,
    )
    if index is None:
        raise LookupError(f"{_uri(trace_bucket, trace_key)} is not listed in the digest")
    leaves = merkle_leaves(files)
    path = merkle.inclusion_proof(leaves, index)
    tree = digest_data.get(MERKLE_FIELD) or {}
    root = str(tree.get("rootHash", ""))
    computed = merkle.root_from_proof(leaves[index], index, len(leaves), path)
    return InclusionProof(
        digest=_uri(str(digest_data["digestS3Bucket"]), str(digest_data["digestS3Object"])),
        trace_file=_uri(trace_bucket, trace_key),
        leaf_index=index,
        tree_size=len(leaves),
        root=root,
        path=[p.hex() for p in path],
        verified=computed is not None and computed.hex() == root,
    )


def digest_covering(
    source: ObjectSource, target: Target, delivered_ms: int, span_ms: int = 2 * MS_PER_DAY
) -> list[str]:
    """Digest keys of the tracker from the trace file's delivery time onwards (the candidates
    that may list it), oldest first."""
    keys: list[str] = []
    day = delivered_ms - delivered_ms % MS_PER_DAY
    while day <= delivered_ms + span_ms:
        folder = digest_key(
            target.prefix, target.domain_id, target.region, target.tracker_name, day
        ).rsplit("/", 1)[0]
        keys.extend(
            k for k in source.list(target.bucket, folder + "/") if f"_{target.tracker_name}_" in k
        )
        day += MS_PER_DAY
    return sorted(k for k in keys if key_end_ms(k) > delivered_ms)


def parse_cli_time(text: str, now_ms: int) -> int:
    """`2026-11-20T12:00:00Z`, `2026-11-20`, epoch seconds, or relative `2h`, `3d` (ago)."""
    text = text.strip()
    relative = re.fullmatch(r"(\d+)([smhd])", text)
    if relative:
        unit = {"s": MS_PER_SECOND, "m": 60_000, "h": MS_PER_HOUR, "d": MS_PER_DAY}
        return now_ms - int(relative.group(1)) * unit[relative.group(2)]
    if text.isdigit():
        return int(text) * MS_PER_SECOND
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ", "%Y-%m-%d"):
        try:
            import calendar  # noqa: PLC0415

            return calendar.timegm(time.strptime(text, fmt)) * MS_PER_SECOND
        except ValueError:
            continue
    raise ValueError(f"not a time: {text!r} (use 2026-11-20T12:00:00Z, 2026-11-20, 2h or 3d)")
