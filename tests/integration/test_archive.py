"""`opencts archive` over files the transfer cycle wrote: ListTraces filter semantics, files of
any age, only the day folders of the window listed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto import mock_aws

from chalicelib import cli
from chalicelib.archive import ArchiveSearch, archive_query
from chalicelib.clock import MS_PER_DAY
from chalicelib.errors import CtsError
from chalicelib.trace_files import FileLayout
from chalicelib.transfer_adapters import MemoryTraceFileBucket
from tests.conftest import DOMAIN, NOW_MS, PROJECT
from tests.integration.test_transfer import (
    BUCKET,
    SETTLE,
    Rig,
    _memory_rig,
    _moto_rig,
    _system,
)

LAYOUT = FileLayout("audit", "us-east-1", PROJECT, "system")


class ListingBucket(MemoryTraceFileBucket):
    """Remembers which prefixes were listed."""

    def __init__(self, inner: MemoryTraceFileBucket) -> None:
        super().__init__(inner.buckets, inner.lifecycle)
        self.listed: list[str] = []

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        self.listed.append(prefix)
        return super().list_keys(bucket, prefix)


@pytest.fixture
def archived() -> tuple[Rig, dict[str, str]]:
    """A month-old transfer: traces of several services and users, delivered on day one."""
    rig = _memory_rig()
    rig.projects.register(PROJECT, DOMAIN)
    _system(rig)
    ids = {
        "ecs-alice": rig.report(1, time=NOW_MS - 60_000)[0],
        "ecs-bob": rig.report(
            1, time=NOW_MS - 50_000, user={"id": "u-bob", "name": "bob"}
        )[0],
        "iam-alice": rig.report(
            1, time=NOW_MS - 40_000, service_type="IAM", resource_type="user",
            trace_rating="warning",
        )[0],
        "old-ecs": rig.report(1, time=NOW_MS - 3 * MS_PER_DAY)[0],
    }
    rig.clock.advance(SETTLE)
    rig.run()
    rig.clock.advance(30 * MS_PER_DAY)  # long past the 7-day window
    return rig, ids


def _search(rig: Rig, start: int, end: int, **params: str) -> tuple[list[str], ArchiveSearch]:
    inner = rig.bucket.inner
    assert isinstance(inner, MemoryTraceFileBucket)
    search = ArchiveSearch(ListingBucket(inner), BUCKET, LAYOUT)
    result = search.search(archive_query(params, start, end), rig.clock.now_ms())
    assert result.unreadable == []
    return [t["trace_id"] for t in result.traces], search


def test_filters_are_those_of_list_traces(archived: tuple[Rig, dict[str, str]]) -> None:
    rig, ids = archived
    window = (NOW_MS - MS_PER_DAY, NOW_MS)
    assert _search(rig, *window)[0] == [ids["iam-alice"], ids["ecs-bob"], ids["ecs-alice"]]
    assert _search(rig, *window, service_type="ECS")[0] == [ids["ecs-bob"], ids["ecs-alice"]]
    assert _search(rig, *window, user="bob")[0] == [ids["ecs-bob"]]
    assert _search(rig, *window, service_type="ECS", user="bob", trace_rating="warning")[0] == []
    assert _search(rig, *window, trace_rating="warning")[0] == [ids["iam-alice"]]
    # A trace id ignores the other filters and the window, as ListTraces does.
    assert _search(rig, *window, trace_id=ids["old-ecs"], user="bob")[0] == [ids["old-ecs"]]
    older = _search(rig, NOW_MS - 4 * MS_PER_DAY, NOW_MS - 2 * MS_PER_DAY)[0]
    assert older == [ids["old-ecs"]]


def test_only_the_day_folders_of_the_window_are_listed(
    archived: tuple[Rig, dict[str, str]],
) -> None:
    rig, _ = archived
    _, search = _search(rig, NOW_MS - 60_000, NOW_MS - 30_000)
    listed = search.bucket.listed  # type: ignore[attr-defined]
    # The window's day (minus the 15-minute skew), then up to 7 + 1 days of delivery delay.
    assert listed[0] == "audit/CloudTraces/us-east-1/2026/11/20/system/"
    assert listed[-1] == "audit/CloudTraces/us-east-1/2026/11/28/system/"
    assert len(listed) == 9


def test_a_window_longer_than_the_retention_keeps_its_start() -> None:
    # Given a window of two weeks ending now (the security audit of docs/guides)
    start, end = NOW_MS - 14 * MS_PER_DAY, NOW_MS

    # When it becomes a query, Then its start is not clamped to the 7-day retention
    query = archive_query({}, start, end)
    assert (query.from_ms, query.to_ms) == (start, end)
    # And at the edge, a window of exactly 7 days and one of 7 days and a millisecond
    assert archive_query({}, end - 7 * MS_PER_DAY, end).from_ms == end - 7 * MS_PER_DAY
    assert archive_query({}, end - 7 * MS_PER_DAY - 1, end).from_ms == end - 7 * MS_PER_DAY - 1


def test_bad_filters_are_refused_as_list_traces_refuses_them() -> None:
    with pytest.raises(CtsError, match="trace_rating"):
        archive_query({"trace_rating": "fatal"}, 0, 1)
    with pytest.raises(CtsError, match="from"):
        archive_query({}, 2, 1)


def test_a_damaged_file_is_named(archived: tuple[Rig, dict[str, str]]) -> None:
    rig, _ = archived
    inner = rig.bucket.inner
    assert isinstance(inner, MemoryTraceFileBucket)
    key = next(iter(inner.buckets[BUCKET]))
    body, kind, kms = inner.buckets[BUCKET][key]
    inner.buckets[BUCKET][key] = (body + b"junk", kind, kms)
    result = ArchiveSearch(inner, BUCKET, LAYOUT).search(
        archive_query({}, NOW_MS - MS_PER_DAY, NOW_MS), rig.clock.now_ms()
    )
    assert len(result.unreadable) == 1
    assert key in result.unreadable[0]


def test_the_cli_searches_the_stages_tracker_files(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "now_ms", lambda: NOW_MS + 40 * MS_PER_DAY)
    with mock_aws():
        rig = _moto_rig("opencts-qa-traces", "opencts-qa-control")
        rig.projects.register(PROJECT, DOMAIN)
        _system(rig)
        iam = rig.report(2, service_type="IAM", resource_type="user")
        rig.report(1)
        rig.clock.advance(SETTLE)
        rig.run()
        code = cli.main([
            "archive", "--stage", "qa", "--project", PROJECT, "--tracker", "system",
            "--from", str(NOW_MS - MS_PER_DAY), "--to", str(NOW_MS),
            "--service-type", "IAM", "--output", "json",
        ])  # fmt: skip
        body: dict[str, Any] = json.loads(capsys.readouterr().out)
        assert code == 0
        assert sorted(t["trace_id"] for t in body["traces"]) == sorted(iam)
        assert body["files_read"] == 2

        code = cli.main([
            "archive", "--stage", "qa", "--project", PROJECT, "--tracker", "nobody",
            "--from", "1d",
        ])  # fmt: skip
        assert code == 1
        assert "'nobody' is not a tracker of demo-project: give --bucket" in (
            capsys.readouterr().err
        )
