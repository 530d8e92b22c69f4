"""Trace files (SPEC 8): their keys and names, their bodies, and reading them back.

Layout: `<prefix>/CloudTraces/<region>/<yyyy>/<m>/<d>/<tracker>/<SERVICE>/` (month and day not
zero-padded; no service folder when `is_sort_by_service` is false), name
`<prefix>_CloudTrace_<region>-<project>_<yyyy>-<mm>-<dd>T<HH>-<MM>-<SS>Z_<16 hex>.json.gz`.
The date and time are those of the upload (as CTS names its files), in UTC. Decisions where the
spec is silent:

- An empty `file_prefix_name` drops the prefix and its separator: `CloudTraces/...` and
  `CloudTrace_...` (never a key starting with `/` or a name starting with `_`).
- `compress_type` `json` writes the same array uncompressed, and the name ends `.json`.
- One JSON array of traces per file, oldest `time` first, UTF-8, compact separators; gzip files
  are a single gzip member (what `gzip.compress` writes), never concatenated members.
- A file holds at most `max_bytes` of uncompressed JSON (default 50 MB): a bigger batch is split
  into several files. A single trace larger than the bound gets a file of its own.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GZIP = "gzip"
JSON = "json"
MAX_FILE_BYTES = 50 * 1024 * 1024
FOLDER = "CloudTraces"
NAME_MARK = "CloudTrace"


def random_hex() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class FileLayout:
    """Where one tracker's trace files go."""

    prefix: str
    region: str
    project_id: str
    tracker_name: str
    compress_type: str = GZIP
    sort_by_service: bool = True

    @property
    def suffix(self) -> str:
        return ".json" if self.compress_type == JSON else ".json.gz"

    def folder(self, uploaded_ms: int, service_type: str | None) -> str:
        t = time.gmtime(uploaded_ms // 1000)
        parts = [FOLDER, self.region, str(t.tm_year), str(t.tm_mon), str(t.tm_mday)]
        parts.append(self.tracker_name)
        if self.sort_by_service and service_type:
            parts.append(service_type.upper())
        if self.prefix:
            parts.insert(0, self.prefix)
        return "/".join(parts) + "/"

    def name(self, uploaded_ms: int, random_part: str) -> str:
        stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime(uploaded_ms // 1000))
        head = f"{self.prefix}_{NAME_MARK}" if self.prefix else NAME_MARK
        return f"{head}_{self.region}-{self.project_id}_{stamp}_{random_part}{self.suffix}"

    def key(self, uploaded_ms: int, service_type: str | None, random_part: str) -> str:
        return self.folder(uploaded_ms, service_type) + self.name(uploaded_ms, random_part)

    def day_folders(self, from_ms: int, to_ms: int) -> list[str]:
        """The `.../<yyyy>/<m>/<d>/<tracker>/` folders of the UTC days from from_ms to to_ms."""
        folders = []
        day = from_ms - from_ms % 86_400_000
        while day <= to_ms:
            folders.append(self.folder(day, None))
            day += 86_400_000
        return folders


@dataclass(frozen=True)
class TraceFile:
    """One file's body, ready to put: `body` is what is stored (gzip or JSON)."""

    service_type: str | None
    body: bytes
    sha256: str  # of the uncompressed JSON
    count: int
    trace_ids: tuple[str, ...]
    oldest_ms: int
    newest_ms: int
    uncompressed_size: int


def encode_trace(trace: Mapping[str, Any]) -> bytes:
    return json.dumps(trace, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _chunks(
    encoded: Sequence[bytes], max_bytes: int
) -> Iterator[tuple[int, int]]:
    """(start, end) ranges whose array `[a,b,...]` stays within max_bytes."""
    start, size = 0, 2
    for i, part in enumerate(encoded):
        extra = len(part) + (1 if i > start else 0)
        if i > start and size + extra > max_bytes:
            yield start, i
            start, size = i, 2 + len(part)
        else:
            size += extra
    if start < len(encoded):
        yield start, len(encoded)


def build_files(
    traces: Iterable[Mapping[str, Any]],
    compress_type: str = GZIP,
    sort_by_service: bool = True,
    max_bytes: int = MAX_FILE_BYTES,
) -> list[TraceFile]:
    """Files for a batch of traces: one group per service (or one group), oldest first, split at
    max_bytes of uncompressed JSON."""
    groups: dict[str | None, list[Mapping[str, Any]]] = {}
    for trace in traces:
        group = str(trace.get("service_type", "")) if sort_by_service else None
        groups.setdefault(group, []).append(trace)
    files: list[TraceFile] = []
    for service, members in sorted(groups.items(), key=lambda kv: kv[0] or ""):
        members.sort(key=lambda t: (int(t["time"]), str(t["trace_id"])))
        encoded = [encode_trace(t) for t in members]
        for start, end in _chunks(encoded, max_bytes):
            raw = b"[" + b",".join(encoded[start:end]) + b"]"
            body = gzip.compress(raw, mtime=0) if compress_type == GZIP else raw
            chunk = members[start:end]
            files.append(
                TraceFile(
                    service_type=service,
                    body=body,
                    sha256=hashlib.sha256(raw).hexdigest(),
                    count=len(chunk),
                    trace_ids=tuple(str(t["trace_id"]) for t in chunk),
                    oldest_ms=int(chunk[0]["time"]),
                    newest_ms=max(int(t["time"]) for t in chunk),
                    uncompressed_size=len(raw),
                )
            )
    return files


class NotATraceFile(ValueError):
    pass


def decompress(key: str, body: bytes) -> bytes:
    """The JSON of a stored file. A gzip file must be exactly one member: trailing data (a second
    member or garbage) is refused rather than silently read or ignored."""
    if not key.endswith(".gz"):
        return body
    d = zlib.decompressobj(wbits=31)
    try:
        raw = d.decompress(body)
    except zlib.error as e:
        raise NotATraceFile(f"{key}: not gzip ({e})") from None
    if not d.eof:
        raise NotATraceFile(f"{key}: truncated gzip")
    if d.unused_data:
        raise NotATraceFile(f"{key}: {len(d.unused_data)} bytes after the gzip member")
    return raw


def read_traces(key: str, body: bytes) -> list[dict[str, Any]]:
    try:
        traces = json.loads(decompress(key, body))
    except (ValueError, UnicodeDecodeError) as e:
        if isinstance(e, NotATraceFile):
            raise
        raise NotATraceFile(f"{key}: not a JSON trace array ({e})") from None
    if not isinstance(traces, list) or not all(isinstance(t, dict) for t in traces):
        raise NotATraceFile(f"{key}: not a JSON array of traces")
    return traces


def is_trace_file(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return f"{NAME_MARK}_" in name and (name.endswith(".json.gz") or name.endswith(".json"))


RandomHex = Callable[[], str]
