"""ListTraces against both trace-table adapters (in memory and DynamoDB on moto): one test class,
two backends, as in Chalice's todo-app sample."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from chalicelib.catalog import Catalog
from chalicelib.clock import MS_PER_DAY, MS_PER_HOUR, FixedClock
from chalicelib.control import DynamoControlTable, MemoryControlTable
from chalicelib.errors import CtsError
from chalicelib.ingest import Ingestor
from chalicelib.model import RETENTION_MS
from chalicelib.projects import ProjectRegistry
from chalicelib.query import TraceFinder, TracePage, parse_query
from chalicelib.store import DynamoTraceTable, MemoryTraceTable, TraceStore
from tests.conftest import DOMAIN, NOW_MS, OTHER_PROJECT, PROJECT, trace


@dataclass
class World:
    clock: FixedClock
    projects: ProjectRegistry
    ingestor: Ingestor
    finder: TraceFinder

    def report(self, *traces: dict[str, Any], project: str = PROJECT) -> list[str]:
        results = self.ingestor.report(project, list(traces))
        assert all(r.status == "stored" for r in results), [r.body() for r in results]
        return [str(r.trace_id) for r in results]

    def find(self, project: str = PROJECT, **params: Any) -> TracePage:
        now = self.clock.now_ms()
        query = parse_query({k: [str(v)] for k, v in params.items()}, now)
        return self.finder.find(self.projects.require(project), query, now)

    def ids(self, project: str = PROJECT, **params: Any) -> list[str]:
        return [t["trace_id"] for t in self.find(project, **params).traces]

    def all_pages(self, project: str = PROJECT, **params: Any) -> list[list[str]]:
        pages, marker = [], None
        while True:
            extra = {"next": marker} if marker else {}
            page = self.find(project, **params, **extra)
            pages.append([t["trace_id"] for t in page.traces])
            marker = page.marker
            if marker is None:
                return pages


@pytest.fixture(params=["memory", "dynamo"])
def world(request: pytest.FixtureRequest, clock: FixedClock) -> Iterator[World]:
    if request.param == "memory":
        control: Any = MemoryControlTable()
        table: Any = MemoryTraceTable()
        yield _world(clock, control, table)
        return
    created = request.getfixturevalue("created")
    settings = request.getfixturevalue("settings")
    client = boto3.client("dynamodb", region_name="us-east-1")
    yield _world(
        clock,
        DynamoControlTable(client, created["control_table"]),
        DynamoTraceTable(client, settings.traces_table),
    )


def _world(clock: FixedClock, control: Any, table: Any) -> World:
    projects = ProjectRegistry(control, clock)
    projects.register(PROJECT, DOMAIN)
    projects.register(OTHER_PROJECT, DOMAIN)
    store = TraceStore(table, sleep=lambda _: None)
    return World(
        clock, projects, Ingestor(projects, store, Catalog(control), clock), TraceFinder(store)
    )


class TestListTraces:
    def test_newest_first_within_the_default_last_hour(self, world: World) -> None:
        # Given traces 10, 30 and 90 minutes old
        old, newer, newest = (
            trace(trace_id=n, time=NOW_MS - m * 60_000)
            for n, m in (("t90", 90), ("t30", 30), ("t10", 10))
        )
        world.report(old, newer, newest)
        # When listing with no window
        # Then only the last hour shows, newest first
        assert world.ids() == ["t10", "t30"]
        assert world.ids(**{"from": NOW_MS - 2 * MS_PER_HOUR}) == ["t10", "t30", "t90"]
        assert world.ids(**{"from": NOW_MS - 2 * MS_PER_HOUR, "to": NOW_MS - 20 * 60_000}) == [
            "t30",
            "t90",
        ]

    def test_limit_defaults_to_10_and_caps_at_200(self, world: World) -> None:
        world.report(*(trace(trace_id=f"t{i:03d}", time=NOW_MS - i * 1000) for i in range(250)))
        assert len(world.ids()) == 10
        assert len(world.ids(limit=200)) == 200
        assert len(world.ids(limit=1)) == 1
        for bad in (0, 201, -1, "ten"):
            with pytest.raises(CtsError, match="limit"):
                world.find(limit=bad)

    @pytest.mark.parametrize("shards", [1, 4])
    def test_paging_never_repeats_or_skips(self, world: World, shards: int) -> None:
        # Given a project sharded for the whole week
        world.clock.current_ms = NOW_MS - RETENTION_MS
        world.projects.set_shards(PROJECT, shards)
        world.clock.current_ms = NOW_MS
        # And 57 traces, some sharing the same millisecond, over the last 6 days
        times = [NOW_MS - (i // 3) * (2 * MS_PER_HOUR + 7) for i in range(57)]
        ids = world.report(*(trace(trace_id=f"p{i:02d}", time=t) for i, t in enumerate(times)))
        window = {"from": NOW_MS - 6 * MS_PER_DAY, "limit": 10}
        # When paging through
        pages = world.all_pages(**window)
        # Then every trace shows exactly once, newest first, and the marker ends
        seen = [i for page in pages for i in page]
        assert sorted(seen) == sorted(ids)
        assert len(seen) == len(set(seen))
        expected = [
            t["trace_id"]
            for t in sorted(
                ({"trace_id": i, "time": t} for i, t in zip(ids, times, strict=True)),
                key=lambda t: (t["time"], t["trace_id"]),
                reverse=True,
            )
        ]
        assert seen == expected
        assert all(len(p) == 10 for p in pages[:-2])

    def test_traces_arriving_between_pages_do_not_disturb_paging(self, world: World) -> None:
        world.report(*(trace(trace_id=f"a{i:02d}", time=NOW_MS - 1000 * i) for i in range(30)))
        first = world.find(limit=10)
        # A new trace, newer than all, and one in the middle of the rest, arrive now
        world.report(
            trace(trace_id="late-new", time=NOW_MS),
            trace(trace_id="late-mid", time=NOW_MS - 15_500),
        )
        second = world.find(limit=10, next=first.marker)
        assert [t["trace_id"] for t in second.traces][:6] == [f"a{i:02d}" for i in range(10, 16)]
        assert "late-new" not in [t["trace_id"] for t in second.traces]
        assert "late-mid" in [t["trace_id"] for t in second.traces]

    def test_default_window_of_the_first_page_holds_for_later_pages(self, world: World) -> None:
        # Given traces spread over the last hour, the oldest right at its edge
        ids = world.report(*(trace(time=NOW_MS - 3_600_000 + i * 60_000) for i in range(12)))
        first = world.find(limit=5)
        # When the next pages are asked for ten minutes later, with no window given
        world.clock.advance(10 * 60_000)
        pages = [first.traces]
        marker = first.marker
        while marker:
            page = world.find(limit=5, next=marker)
            pages.append(page.traces)
            marker = page.marker
        # Then no trace of the first page's window is skipped
        assert sorted(t["trace_id"] for p in pages for t in p) == sorted(ids)

    def test_shard_count_change_hides_nothing(self, world: World) -> None:
        # Given traces written with one shard, then eight, then two
        before = world.report(*(trace(time=NOW_MS - 50 * 60_000 + i) for i in range(12)))
        world.projects.set_shards(PROJECT, 8)
        # A trace reported right after the change still uses the old count
        assert world.projects.require(PROJECT).shards_at(NOW_MS + 60_000) == 1
        world.clock.advance(20 * 60_000)
        assert world.projects.require(PROJECT).shards_at(world.clock.now_ms()) == 8
        after = world.report(*(trace(time=world.clock.now_ms() - i) for i in range(12)))
        world.projects.set_shards(PROJECT, 2)
        world.clock.advance(20 * 60_000)
        lower = world.report(*(trace(time=world.clock.now_ms() - i) for i in range(5)))
        # Then a listing over the three periods shows every trace once
        found = world.ids(limit=200, **{"from": NOW_MS - 2 * MS_PER_HOUR})
        assert sorted(found) == sorted(before + after + lower)

    def test_each_filter_selects_exactly_and_filters_are_anded(self, world: World) -> None:
        t = NOW_MS - 60_000
        world.report(
            trace(trace_id="ecs1", time=t, resource_id="srv-1", trace_name="createServer"),
            trace(
                trace_id="ecs2",
                time=t + 1,
                resource_id="srv-2",
                trace_name="deleteServer",
                trace_rating="warning",
                resource_name="db-1",
            ),
            trace(
                trace_id="evs1",
                time=t + 2,
                service_type="EVS",
                resource_type="evs",
                resource_id="vol-1",
                trace_name="createVolume",
                user={"name": "bob", "access_key_id": "AKBOB"},
                enterprise_project_id="ep-1",
            ),
            trace(
                trace_id="evs2",
                time=t + 3,
                service_type="EVS",
                resource_type="snapshot",
                resource_id="snap-1",
                trace_name="createSnapshot",
                trace_rating="incident",
            ),
        )
        cases: list[tuple[dict[str, Any], list[str]]] = [
            ({"resource_id": "srv-2"}, ["ecs2"]),
            ({"trace_name": "createVolume"}, ["evs1"]),
            ({"user": "bob"}, ["evs1"]),
            ({"user": "alice"}, ["evs2", "ecs2", "ecs1"]),
            ({"service_type": "EVS", "resource_type": "evs"}, ["evs1"]),
            ({"service_type": "EVS"}, ["evs2", "evs1"]),
            ({"resource_type": "ecs"}, ["ecs2", "ecs1"]),
            ({"resource_name": "db-1"}, ["ecs2"]),
            ({"trace_rating": "warning"}, ["ecs2"]),
            ({"trace_rating": "incident"}, ["evs2"]),
            ({"access_key_id": "AKBOB"}, ["evs1"]),
            ({"enterprise_project_id": "ep-1"}, ["evs1"]),
            ({"service_type": "ECS", "trace_rating": "normal"}, ["ecs1"]),
            ({"user": "alice", "service_type": "EVS"}, ["evs2"]),
            ({"resource_id": "srv-1", "trace_name": "deleteServer"}, []),
            ({"trace_name": "nothing"}, []),
        ]
        for params, expected in cases:
            assert world.ids(**params) == expected, params

    def test_trace_id_overrides_every_other_filter(self, world: World) -> None:
        (tid,) = world.report(trace(time=NOW_MS - 5 * MS_PER_DAY))
        assert world.ids(trace_id=tid, service_type="NOPE", user="nobody") == [tid]
        assert world.ids(trace_id="missing") == []

    def test_expired_traces_are_never_returned(self, world: World) -> None:
        # Given a trace recorded now, and a clock 7 days and 1 ms later (moto never deletes it)
        (tid,) = world.report(trace(time=NOW_MS - 1000, resource_id="r-exp"))
        world.clock.advance(RETENTION_MS + 1000)
        # Then no read path returns it
        assert world.ids(trace_id=tid) == []
        assert world.ids(resource_id="r-exp", **{"from": 0}) == []
        assert world.ids(**{"from": 0, "limit": 200}) == []

    def test_window_is_clamped_to_seven_days(self, world: World) -> None:
        world.report(trace(trace_id="edge", time=NOW_MS - RETENTION_MS + 60_000))
        world.clock.advance(2 * 60_000)
        query = parse_query({"from": ["0"]}, world.clock.now_ms())
        assert query.from_ms == world.clock.now_ms() - RETENTION_MS
        assert world.ids(**{"from": 0}) == []
        with pytest.raises(CtsError, match="'from'"):
            world.find(**{"from": NOW_MS, "to": NOW_MS - 1})

    def test_a_project_never_sees_another_projects_traces(self, world: World) -> None:
        world.report(trace(trace_id="shared-id", resource_id="r1"))
        world.report(
            trace(trace_id="shared-id", resource_id="r1", service_type="VPC"),
            trace(trace_id="other-only", resource_id="r1"),
            project=OTHER_PROJECT,
        )
        assert world.ids(resource_id="r1") == ["shared-id"]
        assert world.find(trace_id="shared-id").traces[0]["service_type"] == "ECS"
        assert sorted(world.ids(OTHER_PROJECT, resource_id="r1")) == ["other-only", "shared-id"]

    def test_data_traces_are_listed_per_tracker_only(self, world: World) -> None:
        world.report(
            trace(trace_id="mgmt"),
            trace(
                trace_id="d1",
                trace_type="ObsSDK",
                tracker_name="audit-a",
                service_type="OBS",
                resource_type="object",
            ),
            trace(
                trace_id="d2",
                trace_type="Others",
                tracker_name="audit-b",
                service_type="OBS",
                resource_type="object",
            ),
        )
        assert world.ids() == ["mgmt"]
        assert world.ids(trace_type="system", tracker_name="system") == ["mgmt"]
        assert world.ids(trace_type="data", tracker_name="audit-a") == ["d1"]
        assert world.ids(trace_type="data", tracker_name="audit-b", service_type="OBS") == ["d2"]
        with pytest.raises(CtsError, match="tracker_name"):
            world.find(trace_type="data")
        with pytest.raises(CtsError, match="trace_type"):
            world.find(trace_type="all")

    def test_marker_is_bound_to_its_filters(self, world: World) -> None:
        world.report(*(trace(time=NOW_MS - 1000 * i) for i in range(5)))
        marker = world.find(limit=2).marker
        assert marker
        with pytest.raises(CtsError) as caught:
            world.find(limit=2, next=marker, service_type="EVS")
        assert caught.value.code == "CTS.0007"
        for garbage in ("not-a-marker", "eyJ0IjoxfQ", "%%%"):
            with pytest.raises(CtsError) as caught:
                world.find(next=garbage)
            assert caught.value.code == "CTS.0007"


def test_parse_query_refuses_unknown_and_repeated_parameters() -> None:
    with pytest.raises(CtsError, match="'colour'"):
        parse_query({"colour": ["red"]}, NOW_MS)
    with pytest.raises(CtsError, match="more than once"):
        parse_query({"user": ["a", "b"]}, NOW_MS)
    with pytest.raises(CtsError, match="trace_rating"):
        parse_query({"trace_rating": ["bad"]}, NOW_MS)
    with pytest.raises(CtsError, match="printable"):
        parse_query({"user": ["x\x00y"]}, NOW_MS)
