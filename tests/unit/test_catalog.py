"""The catalog writes each entry once per container, and refreshes operators daily."""

from __future__ import annotations

from chalicelib.catalog import Catalog
from chalicelib.clock import MS_PER_DAY, MS_PER_HOUR
from chalicelib.control import MemoryControlTable
from chalicelib.model import parse_trace
from tests.conftest import DOMAIN, NOW_MS, PROJECT, trace


class CountingTable(MemoryControlTable):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def put_many(self, items: list[dict[str, object]]) -> None:
        self.written += [f"{i['pk']} {i['sk']}" for i in items]
        super().put_many(items)


def test_entries_are_written_once_and_operators_refreshed_daily() -> None:
    table = CountingTable()
    catalog = Catalog(table)
    traces = [parse_trace(trace(), NOW_MS), parse_trace(trace(trace_name="deleteServer"), NOW_MS)]
    catalog.record(DOMAIN, PROJECT, traces, NOW_MS)
    assert sorted(table.written) == sorted(
        [
            f"RES#{DOMAIN} ECS|ecs",
            f"OPS#{PROJECT} ECS|ecs|createServer",
            f"OPS#{PROJECT} ECS|ecs|deleteServer",
            f"USER#{PROJECT} alice",
        ]
    )
    table.written.clear()
    catalog.record(DOMAIN, PROJECT, traces, NOW_MS + 23 * MS_PER_HOUR)
    assert table.written == []
    catalog.record(DOMAIN, PROJECT, traces, NOW_MS + MS_PER_DAY)
    assert table.written == [f"USER#{PROJECT} alice"]
    assert catalog.users(PROJECT, NOW_MS + MS_PER_DAY) == [{"id": "u-alice", "name": "alice"}]
