"""Conditional writes on the control table behave the same on DynamoDB (moto) and in memory."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.config import Settings
from chalicelib.control import ControlTable, DynamoControlTable, MemoryControlTable


@pytest.fixture(params=["dynamodb", "memory"])
def table(request: pytest.FixtureRequest, settings: Settings) -> ControlTable:
    if request.param == "memory":
        return MemoryControlTable()
    request.getfixturevalue("created")
    return DynamoControlTable(
        boto3.client("dynamodb", region_name=settings.region), settings.control_table
    )


def test_put_checked_creates_only_when_absent(table: ControlTable) -> None:
    item = {"pk": "lease", "sk": "t1", "version": 1, "owner": "a"}
    assert table.put_checked(item, None) is True
    assert table.put_checked({**item, "owner": "b"}, None) is False
    assert table.get("lease", "t1") == item


def test_put_checked_replaces_only_the_expected_version(table: ControlTable) -> None:
    table.put_checked({"pk": "lease", "sk": "t1", "version": 1, "owner": "a"}, None)
    assert table.put_checked({"pk": "lease", "sk": "t1", "version": 2, "owner": "b"}, 1) is True
    # A writer that read version 1 lost the race and must not overwrite b's item.
    assert table.put_checked({"pk": "lease", "sk": "t1", "version": 2, "owner": "c"}, 1) is False
    got = table.get("lease", "t1")
    assert got == {"pk": "lease", "sk": "t1", "version": 2, "owner": "b"}
    # A version is never expected of an item that does not exist.
    assert table.put_checked({"pk": "lease", "sk": "t2", "version": 2}, 1) is False
    assert table.get("lease", "t2") is None
