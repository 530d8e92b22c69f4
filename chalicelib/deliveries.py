"""The delivery log: one control-table entry per trace file written to S3.

The transfer cycle records a file here once its object is in the bucket; the hourly digest reads
the files of one hour back from here (never by listing the bucket), so a digest lists exactly the
files delivered in its hour, and a file put by anyone else is never vouched for. Entries are keyed
by the hour of delivery: `pk = DELIV#<project>|<tracker>|<yyyymmddHH>`, `sk = <delivered_ms>|<key>`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from chalicelib.clock import MS_PER_HOUR
from chalicelib.control import ControlTable


@dataclass(frozen=True)
class DeliveredFile:
    project_id: str
    tracker_name: str
    bucket: str
    key: str
    sha256: str  # lower-case hex SHA-256 of the uncompressed file content
    oldest_event_ms: int  # the oldest trace `time` in the file
    newest_event_ms: int  # the newest trace `time` in the file
    delivered_ms: int  # when the put completed: decides the digest hour
    count: int  # traces in the file
    size: int  # bytes stored (compressed when gzip)


def hour_of(ms: int) -> str:
    return time.strftime("%Y%m%d%H", time.gmtime(ms // 1000))


def _pk(project_id: str, tracker_name: str, hour_start_ms: int) -> str:
    return f"DELIV#{project_id}|{tracker_name}|{hour_of(hour_start_ms)}"


class DeliveryLog:
    def __init__(self, table: ControlTable) -> None:
        self._table = table

    def record(self, delivered: DeliveredFile) -> None:
        """Idempotent: recording the same file twice keeps one entry."""
        self._table.put(
            {
                "pk": _pk(delivered.project_id, delivered.tracker_name, delivered.delivered_ms),
                "sk": f"{delivered.delivered_ms:013d}|{delivered.key}",
                **asdict(delivered),
            }
        )

    def delivered_in_hour(
        self, project_id: str, tracker_name: str, hour_start_ms: int
    ) -> list[DeliveredFile]:
        """The files delivered in the UTC hour starting at `hour_start_ms`, oldest first."""
        start = hour_start_ms - hour_start_ms % MS_PER_HOUR
        fields = DeliveredFile.__dataclass_fields__
        return [
            DeliveredFile(**{k: v for k, v in item.items() if k in fields})
            for item in self._table.query(_pk(project_id, tracker_name, start))
        ]
