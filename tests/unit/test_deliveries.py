"""The delivery log returns exactly the files of one hour, oldest first, once each."""

from __future__ import annotations

from chalicelib.clock import MS_PER_HOUR
from chalicelib.control import MemoryControlTable
from chalicelib.deliveries import DeliveredFile, DeliveryLog
from tests.conftest import NOW_MS, PROJECT

HOUR = NOW_MS - NOW_MS % MS_PER_HOUR


def _file(key: str, delivered_ms: int, tracker: str = "system") -> DeliveredFile:
    return DeliveredFile(
        project_id=PROJECT,
        tracker_name=tracker,
        bucket="b",
        key=key,
        sha256="00" * 32,
        oldest_event_ms=delivered_ms - 10,
        newest_event_ms=delivered_ms - 1,
        delivered_ms=delivered_ms,
        count=3,
        size=100,
    )


def test_files_are_listed_by_hour_of_delivery() -> None:
    log = DeliveryLog(MemoryControlTable())
    first, second = _file("a", HOUR + 5), _file("b", HOUR + MS_PER_HOUR - 1)
    log.record(second)
    log.record(first)
    log.record(first)
    log.record(_file("next-hour", HOUR + MS_PER_HOUR))
    log.record(_file("previous-hour", HOUR - 1))
    log.record(_file("other-tracker", HOUR + 7, tracker="data1"))
    assert log.delivered_in_hour(PROJECT, "system", HOUR + 1234) == [first, second]
    assert [f.key for f in log.delivered_in_hour(PROJECT, "data1", HOUR)] == ["other-tracker"]
    assert log.delivered_in_hour("other", "system", HOUR) == []
