"""TrackerService against both adapter pairs: the in-memory control table and buckets, and
DynamoDB plus S3 on moto. One test class, two backends, as in Chalice's todo-app sample."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.catalog import Catalog
from chalicelib.clock import FixedClock
from chalicelib.control import DynamoControlTable, MemoryControlTable
from chalicelib.errors import CtsError
from chalicelib.ingest import Ingestor
from chalicelib.projects import ProjectRegistry
from chalicelib.query import TraceFinder, parse_query
from chalicelib.store import DynamoTraceTable, MemoryTraceTable, TraceStore
from chalicelib.tracker_model import new_tracker
from chalicelib.trackers import (
    PROBE_NAME,
    RECHECK_MS,
    BucketUnavailable,
    BucketWatch,
    MemoryTransferBuckets,
    S3TransferBuckets,
    TrackerService,
)
from tests.conftest import DOMAIN, NOW_MS, OTHER_PROJECT, PROJECT, trace

REGION = "us-east-1"
KMS_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SYSTEM = {"tracker_type": "system", "tracker_name": "system"}


class BucketControl(Protocol):
    """What a test does to buckets behind the service's back."""

    def make(self, name: str, region: str = REGION) -> None: ...

    def drop(self, name: str) -> None: ...

    def deny_writes(self, name: str) -> None: ...

    def allow_writes(self, name: str) -> None: ...

    def exists(self, name: str) -> bool: ...

    def keys(self, name: str) -> list[str]: ...


@dataclass
class MemoryBuckets:
    buckets: MemoryTransferBuckets

    def make(self, name: str, region: str = REGION) -> None:
        self.buckets.add(name, region=region)

    def drop(self, name: str) -> None:
        self.buckets.remove(name)

    def deny_writes(self, name: str) -> None:
        self.buckets.buckets[name].writable = False

    def allow_writes(self, name: str) -> None:
        self.buckets.buckets[name].writable = True

    def exists(self, name: str) -> bool:
        return name in self.buckets.buckets

    def keys(self, name: str) -> list[str]:
        return sorted(self.buckets.buckets[name].objects)


@dataclass
class MotoBuckets:
    s3: Any

    def make(self, name: str, region: str = REGION) -> None:
        s3: Any = boto3.client("s3", region_name=region)
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})

    def drop(self, name: str) -> None:
        for key in self.keys(name):
            self.s3.delete_object(Bucket=name, Key=key)
        self.s3.delete_bucket(Bucket=name)

    def deny_writes(self, name: str) -> None:
        statement = {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{name}/*",
        }
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        self.s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))

    def allow_writes(self, name: str) -> None:
        self.s3.delete_bucket_policy(Bucket=name)

    def exists(self, name: str) -> bool:
        return name in {b["Name"] for b in self.s3.list_buckets()["Buckets"]}

    def keys(self, name: str) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=name)
        return sorted(o["Key"] for o in listed.get("Contents", []))


@dataclass
class World:
    service: TrackerService
    projects: ProjectRegistry
    clock: FixedClock
    buckets: BucketControl
    ingestor: Ingestor
    finder: TraceFinder
    notifications: dict[str, int] = field(default_factory=dict)

    def create(self, project: str = PROJECT, **body: Any) -> dict[str, Any]:
        return self.service.create_tracker(project, body)

    def create_data(self, name: str, bucket: str = "data-bucket", **body: Any) -> dict[str, Any]:
        events = body.pop("data_event", ["READ", "WRITE"])
        return self.create(
            tracker_type="data",
            tracker_name=name,
            data_bucket={"data_bucket_name": bucket, "data_event": events},
            **body,
        )

    def update(self, project: str = PROJECT, **body: Any) -> dict[str, Any]:
        return self.service.update_tracker(project, body)

    def trackers(self, project: str = PROJECT, **params: str) -> list[dict[str, Any]]:
        query = {k: [v] for k, v in params.items()}
        return list(self.service.list_trackers(project, query)["trackers"])

    def one(self, name: str, project: str = PROJECT) -> dict[str, Any]:
        (found,) = self.trackers(project, tracker_name=name)
        return found

    def delete(self, project: str = PROJECT, **params: str) -> dict[str, Any]:
        return self.service.delete_tracker(project, {k: [v] for k, v in params.items()})

    def quotas(self, project: str = PROJECT) -> dict[str, tuple[int, int]]:
        resources = self.service.list_quotas(project)["resources"]
        return {r["type"]: (r["used"], r["quota"]) for r in resources}

    def tag(self, tracker_id: str, *tags: dict[str, Any], project: str = PROJECT) -> None:
        assert (
            self.service.create_tags(project, "cts-tracker", tracker_id, {"tags": list(tags)}) == {}
        )

    def untag(self, tracker_id: str, *tags: dict[str, Any]) -> None:
        assert (
            self.service.delete_tags(PROJECT, "cts-tracker", tracker_id, {"tags": list(tags)}) == {}
        )

    def tags(self, name: str) -> dict[str, str]:
        return {t["key"]: t["value"] for t in self.one(name)["tags"]}


@pytest.fixture(params=["memory", "dynamo"])
def world(request: pytest.FixtureRequest, clock: FixedClock) -> Iterator[World]:
    if request.param == "memory":
        memory = MemoryTransferBuckets(REGION)
        yield _world(clock, MemoryControlTable(), MemoryTraceTable(), memory, MemoryBuckets(memory))
        return
    created = request.getfixturevalue("created")
    settings = request.getfixturevalue("settings")
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    yield _world(
        clock,
        DynamoControlTable(dynamodb, created["control_table"]),
        DynamoTraceTable(dynamodb, settings.traces_table),
        S3TransferBuckets(s3, REGION),
        MotoBuckets(s3),
    )


def _world(clock: FixedClock, control: Any, traces: Any, adapter: Any, buckets: Any) -> World:
    projects = ProjectRegistry(control, clock)
    store = TraceStore(traces, sleep=lambda _: None)
    notifications: dict[str, int] = {}
    service = TrackerService(
        table=control,
        buckets=adapter,
        projects=projects,
        clock=clock,
        region=REGION,
        domain_id=DOMAIN,
        notification_count=lambda project: notifications.get(project, 0),
    )
    buckets.make("data-bucket")
    buckets.make("trace-bucket")
    return World(
        service,
        projects,
        clock,
        buckets,
        Ingestor(projects, store, Catalog(control), clock),
        TraceFinder(store),
        notifications,
    )


def data_body(name: str, bucket: str = "data-bucket") -> dict[str, Any]:
    return {
        "tracker_type": "data",
        "tracker_name": name,
        "data_bucket": {"data_bucket_name": bucket, "data_event": ["READ", "WRITE"]},
    }


def error(call: Any, *args: Any, **kwargs: Any) -> CtsError:
    with pytest.raises(CtsError) as caught:
        call(*args, **kwargs)
    return caught.value


class TestTrackers:
    def test_enabling_cts_creates_the_system_tracker_and_registers_the_project(
        self, world: World
    ) -> None:
        # Given a project OpenCTS does not know
        assert world.projects.find(PROJECT) is None
        assert world.trackers() == []
        # When the system tracker is created
        created = world.create(**SYSTEM)
        # Then the project is registered to the service's domain
        assert world.projects.require(PROJECT).domain_id == DOMAIN
        assert created["tracker_name"] == "system"
        assert created["status"] == "enabled"
        assert created["create_time"] == NOW_MS
        assert "tags" not in created
        # And it is listed
        (listed,) = world.trackers()
        assert listed["id"] == created["id"]
        assert listed["tags"] == []
        assert listed["lts"] == {"is_lts_enabled": False}
        # And a second one is refused
        e = error(world.create, **SYSTEM)
        assert (e.status, e.code) == (409, "CTS.1101")

    def test_system_and_data_trackers(self, world: World) -> None:
        world.create(**SYSTEM, obs_info={"bucket_name": "trace-bucket", "file_prefix_name": "cts"})
        data = world.create_data(
            "photos",
            data_event=["WRITE"],
            obs_info={"bucket_name": "trace-bucket", "bucket_lifecycle": 30},
            is_lts_enabled=True,
        )
        assert data["data_bucket"] == {
            "data_bucket_name": "data-bucket",
            "search_enabled": True,
            "data_event": ["WRITE"],
        }
        assert data["lts"]["log_topic_name"] == "photos-trace"
        names = [(t["tracker_type"], t["tracker_name"]) for t in world.trackers()]
        assert names == [("system", "system"), ("data", "photos")]
        assert [t["tracker_name"] for t in world.trackers(tracker_type="data")] == ["photos"]
        assert [t["tracker_name"] for t in world.trackers(tracker_type="system")] == ["system"]
        assert world.trackers(tracker_name="nope") == []
        assert world.one("photos")["obs_info"]["bucket_lifecycle"] == 30
        # The tracked bucket is known to the S3 event handler
        assert world.service.watchers("data-bucket") == [
            BucketWatch(PROJECT, "photos", ("WRITE",), True)
        ]
        assert world.service.watchers("trace-bucket") == []
        # The test writes left nothing behind
        assert world.buckets.keys("trace-bucket") == []

    def test_list_parameters(self, world: World) -> None:
        world.create(**SYSTEM)
        for params in ({"tracker_type": "all"}, {"tracker_name": "a b"}, {"name": "x"}):
            assert error(world.trackers, **params).code == "CTS.0001"
        e = error(world.service.list_trackers, PROJECT, {"tracker_type": ["data", "system"]})
        assert e.code == "CTS.0001"
        assert error(world.trackers, "bad/project").code == "CTS.0001"

    def test_data_trackers_need_a_known_project_and_an_existing_bucket(self, world: World) -> None:
        e = error(world.create_data, "photos")
        assert (e.status, e.code) == (404, "CTS.0006")
        world.projects.register(PROJECT, DOMAIN)
        e = error(world.create_data, "photos", bucket="no-such-bucket")
        assert (e.status, e.code) == (400, "CTS.1106")
        assert world.trackers() == []
        # A registered project needs no system tracker for data trackers
        assert world.create_data("photos")["status"] == "enabled"

    def test_100_data_trackers_then_the_101st_is_refused(self, world: World) -> None:
        # Given CTS enabled and 97 data trackers already stored (written in one batch: through
        # the service each creation is a Query of the whole project, which moto makes slow)
        world.create(**SYSTEM)
        stored = [
            new_tracker(
                data_body(f"stored-{i:03d}"),
                project_id=PROJECT,
                domain_id=DOMAIN,
                tracker_id=f"id-{i}",
                now_ms=NOW_MS,
            ).item()
            for i in range(97)
        ]
        world.service.table.put_many(stored)
        # When three more are created, the 100th is accepted
        for name in ("tracker-98", "tracker-99", "tracker-100"):
            world.create_data(name)
        assert world.quotas()["data_tracker"] == (100, 100)
        # Then the 101st is refused
        e = error(world.create_data, "tracker-101")
        assert (e.status, e.code) == (400, "CTS.1104")
        assert "100" in e.message
        assert len(world.trackers(tracker_type="data")) == 100
        assert len(world.service.watchers("data-bucket")) == 3
        # And deleting one makes room again
        world.delete(tracker_name="stored-000")
        world.create_data("tracker-101")
        assert world.quotas()["data_tracker"] == (100, 100)

    def test_update_and_enable_disable(self, world: World) -> None:
        world.create(**SYSTEM)
        world.create_data("photos", obs_info={"bucket_name": "trace-bucket"})
        # When settings change, the others are kept
        assert (
            world.update(**SYSTEM, is_lts_enabled=True, obs_info={"bucket_name": "trace-bucket"})
            == {}
        )
        system = world.one("system")
        assert system["lts"]["is_lts_enabled"] is True
        assert system["obs_info"]["bucket_name"] == "trace-bucket"
        assert system["obs_info"]["is_authorized_bucket"] is True
        world.update(**SYSTEM, obs_info={"file_prefix_name": "cts"})
        assert world.one("system")["obs_info"]["bucket_name"] == "trace-bucket"
        assert world.one("system")["lts"]["is_lts_enabled"] is True
        # Disable and enable
        world.update(tracker_type="data", tracker_name="photos", status="disabled")
        assert world.one("photos")["status"] == "disabled"
        assert world.service.watchers("data-bucket")[0].enabled is False
        world.update(tracker_type="data", tracker_name="photos", status="enabled")
        assert world.one("photos")["status"] == "enabled"
        assert world.service.watchers("data-bucket")[0].enabled is True
        # Data events may change
        world.update(
            tracker_type="data",
            tracker_name="photos",
            data_bucket={"data_bucket_name": "data-bucket", "data_event": ["READ"]},
        )
        assert world.one("photos")["data_bucket"]["data_event"] == ["READ"]
        assert world.service.watchers("data-bucket")[0].data_event == ("READ",)

    def test_unknown_trackers_cannot_be_updated(self, world: World) -> None:
        world.create(**SYSTEM)
        e = error(world.update, tracker_type="data", tracker_name="photos", status="disabled")
        assert (e.status, e.code) == (404, "CTS.1102")
        e = error(world.update, OTHER_PROJECT, **SYSTEM, status="disabled")
        assert (e.status, e.code) == (404, "CTS.1102")
        assert error(world.update, **SYSTEM, status="paused").code == "CTS.1103"

    def test_the_data_bucket_is_fixed(self, world: World) -> None:
        world.projects.register(PROJECT, DOMAIN)
        world.create_data("photos")
        world.buckets.make("other-bucket")
        e = error(
            world.update,
            tracker_type="data",
            tracker_name="photos",
            data_bucket={"data_bucket_name": "other-bucket", "data_event": ["READ"]},
        )
        assert (e.status, e.code) == (400, "CTS.1105")
        assert world.one("photos")["data_bucket"]["data_bucket_name"] == "data-bucket"
        assert world.service.watchers("other-bucket") == []

    def test_missing_bucket_is_an_error_until_it_appears(self, world: World) -> None:
        # Given a tracker transferring to a bucket that does not exist
        created = world.create(**SYSTEM, obs_info={"bucket_name": "later-bucket"})
        # Then it is created, in error
        assert (created["status"], created["detail"]) == ("error", "noBucket")
        assert created["obs_info"]["is_authorized_bucket"] is False
        # When the bucket appears
        world.buckets.make("later-bucket")
        # Then the next listing within a minute still shows the last check
        world.clock.advance(RECHECK_MS - 1)
        assert world.one("system")["status"] == "error"
        # And a listing after that checks again and clears the error, for good
        world.clock.advance(1)
        assert world.one("system")["status"] == "enabled"
        assert "detail" not in world.one("system")
        assert world.buckets.keys("later-bucket") == []

    def test_unwritable_bucket_is_a_bucket_policy_error(self, world: World) -> None:
        world.buckets.make("locked-bucket")
        world.buckets.deny_writes("locked-bucket")
        created = world.create(**SYSTEM, obs_info={"bucket_name": "locked-bucket"})
        assert (created["status"], created["detail"]) == ("error", "bucketPolicyError")
        # A disabled tracker shows disabled, whatever its bucket
        world.update(**SYSTEM, status="disabled")
        assert "detail" not in world.one("system")
        assert world.one("system")["status"] == "disabled"
        # Fixing the policy and updating the tracker clears the error at once
        world.buckets.allow_writes("locked-bucket")
        world.update(**SYSTEM, status="enabled")
        assert world.one("system")["status"] == "enabled"

    def test_moving_to_a_good_bucket_and_turning_transfer_off(self, world: World) -> None:
        world.create(**SYSTEM, obs_info={"bucket_name": "gone-bucket"})
        world.update(**SYSTEM, obs_info={"bucket_name": "trace-bucket"})
        assert world.one("system")["status"] == "enabled"
        world.buckets.drop("trace-bucket")
        world.update(**SYSTEM, is_lts_enabled=True)
        assert world.one("system")["detail"] == "noBucket"
        world.update(**SYSTEM, obs_info={"bucket_name": ""})
        system = world.one("system")
        assert system["status"] == "enabled"
        assert system["obs_info"]["bucket_name"] == ""
        assert system["obs_info"]["is_authorized_bucket"] is False

    def test_the_transfer_function_reports_the_bucket_state(self, world: World) -> None:
        world.create(**SYSTEM, obs_info={"bucket_name": "trace-bucket"})
        world.service.report_bucket_state(PROJECT, "system", "bucketPolicyError")
        assert world.one("system")["detail"] == "bucketPolicyError"
        world.service.report_bucket_state(PROJECT, "system", None)
        assert world.one("system")["status"] == "enabled"
        world.service.report_bucket_state(PROJECT, "nope", "noBucket")  # gone: ignored
        with pytest.raises(ValueError, match="unknown bucket state"):
            world.service.report_bucket_state(PROJECT, "system", "arrears")

    def test_is_obs_created_creates_the_bucket(self, world: World) -> None:
        created = world.create(
            **SYSTEM, obs_info={"bucket_name": "new-bucket", "is_obs_created": True}
        )
        assert world.buckets.exists("new-bucket")
        assert created["status"] == "enabled"
        assert created["obs_info"]["is_obs_created"] is True
        # An existing bucket of ours is fine too
        world.update(**SYSTEM, obs_info={"bucket_name": "trace-bucket", "is_obs_created": True})
        assert world.one("system")["status"] == "enabled"

    def test_encrypted_transfer_is_checked_with_the_key(self, world: World) -> None:
        created = world.create(
            **SYSTEM,
            obs_info={"bucket_name": "trace-bucket", "file_prefix_name": "cts"},
            is_support_trace_files_encryption=True,
            kms_id=KMS_ID,
            is_support_validate=True,
        )
        assert created["status"] == "enabled"
        assert created["kms_id"] == KMS_ID
        assert created["is_support_trace_files_encryption"] is True
        if isinstance(world.buckets, MemoryBuckets):
            writes = world.buckets.buckets.writes
            assert writes[-1] == ("trace-bucket", f"cts/{PROBE_NAME}", KMS_ID)

    def test_deleting_the_system_tracker_keeps_the_project_and_its_traces(
        self, world: World
    ) -> None:
        # Given CTS enabled and a trace recorded
        world.create(**SYSTEM)
        world.create_data("photos")
        results = world.ingestor.report(PROJECT, [trace(trace_id="kept")])
        assert results[0].status == "stored"
        # When the system tracker is deleted
        assert world.delete(tracker_name="system", tracker_type="system") == {}
        # Then only it is gone
        assert [t["tracker_name"] for t in world.trackers()] == ["photos"]
        project = world.projects.require(PROJECT)
        query = parse_query({}, NOW_MS)
        assert [t["trace_id"] for t in world.finder.find(project, query, NOW_MS).traces] == ["kept"]
        assert error(world.delete, tracker_type="system").code == "CTS.1102"
        # And enabling CTS again restores it
        world.create(**SYSTEM)
        assert world.quotas()["system_tracker"] == (1, 1)

    def test_system_tracker_by_name_alone_and_by_type_alone(self, world: World) -> None:
        world.create(**SYSTEM)
        world.delete(tracker_name="system")
        world.create(**SYSTEM)
        world.delete(tracker_type="system")
        assert world.trackers() == []
        e = error(world.delete, tracker_type="system", tracker_name="photos")
        assert e.code == "CTS.0001"

    def test_delete_without_a_name_deletes_every_data_tracker(self, world: World) -> None:
        world.create(**SYSTEM)
        world.buckets.make("other-bucket")
        world.create_data("photos")
        world.create_data("videos", bucket="other-bucket")
        world.create(OTHER_PROJECT, **SYSTEM)
        world.create_data("logs", project=OTHER_PROJECT, data_event=["READ"])
        assert world.delete() == {}
        assert [t["tracker_name"] for t in world.trackers()] == ["system"]
        assert world.service.watchers("other-bucket") == []
        assert world.service.watchers("data-bucket") == [
            BucketWatch(OTHER_PROJECT, "logs", ("READ",), True)
        ]
        # Nothing left to delete is not an error
        assert world.delete(tracker_type="data") == {}
        assert [t["tracker_name"] for t in world.trackers(OTHER_PROJECT)] == ["system", "logs"]

    def test_delete_one_data_tracker(self, world: World) -> None:
        world.create(**SYSTEM)
        world.create_data("photos")
        world.create_data("videos")
        world.delete(tracker_name="photos", tracker_type="data")
        assert [t["tracker_name"] for t in world.trackers()] == ["system", "videos"]
        assert error(world.delete, tracker_name="photos").code == "CTS.1102"
        assert error(world.delete, tracker_type="bogus").code == "CTS.0001"

    def test_quotas_count_real_usage(self, world: World) -> None:
        assert world.quotas() == {
            "system_tracker": (0, 1),
            "data_tracker": (0, 100),
            "smn_notification": (0, 100),
        }
        world.create(**SYSTEM)
        world.create_data("photos")
        world.create_data("videos")
        world.notifications[PROJECT] = 7
        assert world.quotas() == {
            "system_tracker": (1, 1),
            "data_tracker": (2, 100),
            "smn_notification": (7, 100),
        }
        assert world.quotas(OTHER_PROJECT)["data_tracker"] == (0, 100)
        resources = world.service.list_quotas(PROJECT)["resources"]
        assert all(set(r) == {"type", "used", "quota"} for r in resources)


class TestTags:
    def test_create_update_and_list(self, world: World) -> None:
        tracker_id = world.create(**SYSTEM)["id"]
        world.tag(tracker_id, {"key": "team", "value": "audit"}, {"key": "empty"})
        assert world.tags("system") == {"team": "audit", "empty": ""}
        # An existing key takes the new value
        world.tag(tracker_id, {"key": "team", "value": "security"})
        assert world.tags("system") == {"team": "security", "empty": ""}

    def test_20_tags_then_the_21st_is_refused(self, world: World) -> None:
        tracker_id = world.create(**SYSTEM)["id"]
        world.tag(tracker_id, *({"key": f"k{i:02d}", "value": str(i)} for i in range(15)))
        world.tag(tracker_id, *({"key": f"k{i:02d}", "value": "x"} for i in range(10, 20)))
        assert len(world.tags("system")) == 20
        e = error(world.tag, tracker_id, {"key": "k20", "value": ""})
        assert (e.status, e.code) == (400, "CTS.1109")
        # Updating an existing key is still fine
        world.tag(tracker_id, {"key": "k00", "value": "new"})
        assert world.tags("system")["k00"] == "new"
        assert len(world.tags("system")) == 20

    def test_rules(self, world: World) -> None:
        tracker_id = world.create(**SYSTEM)["id"]
        for bad in ({"key": "_sys_owner"}, {"key": " padded"}, {"key": "a,b"}, {"key": "k" * 129}):
            assert error(world.tag, tracker_id, bad).code == "CTS.1103"
        e = error(world.tag, tracker_id, {"key": "dup", "value": "1"}, {"key": "dup", "value": "2"})
        assert e.code == "CTS.1103"
        assert world.tags("system") == {}

    def test_delete_by_key_and_by_key_and_value(self, world: World) -> None:
        tracker_id = world.create(**SYSTEM)["id"]
        world.tag(
            tracker_id,
            {"key": "a", "value": "1"},
            {"key": "b", "value": "2"},
            {"key": "c", "value": "3"},
        )
        world.untag(tracker_id, {"key": "a"})
        assert world.tags("system") == {"b": "2", "c": "3"}
        world.untag(tracker_id, {"key": "b", "value": "2"}, {"key": "c", "value": "other"})
        assert world.tags("system") == {"c": "3"}
        world.untag(tracker_id, {"key": "missing"})
        assert world.tags("system") == {"c": "3"}

    def test_tags_belong_to_one_tracker(self, world: World) -> None:
        system_id = world.create(**SYSTEM)["id"]
        data_id = world.create_data("photos")["id"]
        world.tag(data_id, {"key": "kind", "value": "data"})
        assert world.tags("photos") == {"kind": "data"}
        assert world.tags("system") == {}
        # Updating the tracker keeps its tags; deleting it drops them
        world.update(tracker_type="data", tracker_name="photos", status="disabled")
        assert world.tags("photos") == {"kind": "data"}
        world.delete(tracker_name="photos")
        world.create_data("photos")
        assert world.tags("photos") == {}
        assert system_id != data_id

    def test_resource_type_and_id(self, world: World) -> None:
        tracker_id = world.create(**SYSTEM)["id"]
        body = {"tags": [{"key": "a", "value": "1"}]}
        e = error(world.service.create_tags, PROJECT, "cts-notification", tracker_id, body)
        assert (e.status, e.code) == (400, "CTS.0001")
        e = error(world.service.create_tags, PROJECT, "cts-tracker", "no-such-id", body)
        assert (e.status, e.code) == (404, "CTS.1110")
        e = error(world.service.delete_tags, OTHER_PROJECT, "cts-tracker", tracker_id, body)
        assert (e.status, e.code) == (404, "CTS.1110")
        assert error(world.service.create_tags, PROJECT, "cts-tracker", tracker_id, []).code == (
            "CTS.0002"
        )


class TestCheckBuckets:
    def test_each_bucket_is_reported(self, world: World) -> None:
        world.buckets.make("locked-bucket")
        world.buckets.deny_writes("locked-bucket")
        world.buckets.make("europe-bucket", region="eu-west-1")
        got = world.service.check_buckets(
            DOMAIN,
            {
                "buckets": [
                    {"bucket_name": "trace-bucket", "bucket_location": REGION},
                    {"bucket_name": "missing-bucket", "bucket_location": REGION},
                    {"bucket_name": "locked-bucket", "bucket_location": REGION},
                    {"bucket_name": "europe-bucket", "bucket_location": REGION},
                    {
                        "bucket_name": "trace-bucket",
                        "bucket_location": REGION,
                        "kms_id": KMS_ID,
                        "is_support_trace_files_encryption": True,
                    },
                ]
            },
        )
        results = [b["check_bucket_response"] for b in got["buckets"]]
        assert results[0] == {"response_code": 200, "success": True}
        assert (results[1]["error_code"], results[1]["response_code"]) == ("CTS.1121", 404)
        assert (results[2]["error_code"], results[2]["response_code"]) == ("CTS.1122", 403)
        assert (results[3]["error_code"], results[3]["response_code"]) == ("CTS.1123", 400)
        assert "eu-west-1" in results[3]["error_message"]
        assert results[4]["success"] is True
        assert all(r["success"] is False for r in results[1:4])
        assert got["buckets"][4]["kms_id"] == KMS_ID
        assert got["buckets"][0] == {
            "bucket_name": "trace-bucket",
            "bucket_location": REGION,
            "check_bucket_response": {"response_code": 200, "success": True},
        }
        assert world.buckets.keys("trace-bucket") == []

    def test_bad_requests(self, world: World) -> None:
        assert error(world.service.check_buckets, "bad/domain", {"buckets": []}).code == "CTS.0001"
        assert error(world.service.check_buckets, DOMAIN, {"buckets": []}).code == "CTS.1103"
        assert error(world.service.check_buckets, DOMAIN, None).code == "CTS.0002"


def test_unusable_kms_key_is_reported() -> None:
    buckets = MemoryTransferBuckets()
    buckets.add("trace-bucket", kms_ids=frozenset({"alias/good"}))
    service = TrackerService(
        MemoryControlTable(),
        buckets,
        ProjectRegistry(MemoryControlTable(), FixedClock(NOW_MS)),
        FixedClock(NOW_MS),
        REGION,
        DOMAIN,
    )
    body = {
        "buckets": [
            {
                "bucket_name": "trace-bucket",
                "bucket_location": REGION,
                "kms_id": "alias/bad",
                "is_support_trace_files_encryption": True,
            }
        ]
    }
    (result,) = service.check_buckets(DOMAIN, body)["buckets"]
    assert result["check_bucket_response"]["error_code"] == "CTS.1124"


def test_a_bucket_taken_by_another_account_cannot_be_created() -> None:
    buckets = MemoryTransferBuckets()
    buckets.add("taken-bucket", owned=False)
    clock = FixedClock(NOW_MS)
    control = MemoryControlTable()
    service = TrackerService(
        control, buckets, ProjectRegistry(control, clock), clock, REGION, DOMAIN
    )
    e = error(
        service.create_tracker,
        PROJECT,
        {**SYSTEM, "obs_info": {"bucket_name": "taken-bucket", "is_obs_created": True}},
    )
    assert (e.status, e.code) == (409, "CTS.1107")
    # Nothing was stored, and the project was not registered
    assert control.items == {}


def test_data_trackers_turn_on_eventbridge_for_their_bucket() -> None:
    buckets = MemoryTransferBuckets()
    buckets.add("data-bucket")
    buckets.add("foreign-bucket", owned=False)
    clock = FixedClock(NOW_MS)
    control = MemoryControlTable()
    projects = ProjectRegistry(control, clock)
    projects.register(PROJECT, DOMAIN)
    service = TrackerService(control, buckets, projects, clock, REGION, DOMAIN)

    def data(name: str, bucket: str) -> dict[str, Any]:
        return {
            "tracker_type": "data",
            "tracker_name": name,
            "data_bucket": {"data_bucket_name": bucket, "data_event": ["WRITE"]},
        }

    service.create_tracker(PROJECT, data("photos", "data-bucket"))
    assert buckets.buckets["data-bucket"].event_bridge
    e = error(service.create_tracker, PROJECT, data("foreign", "foreign-bucket"))
    assert (e.code, "AccessDenied" in e.message) == ("CTS.1106", True)


def test_s3_adapter_turns_on_eventbridge_keeping_other_notifications(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="data-bucket")
    queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="q")["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:123456789012:q"
    assert queue
    s3.put_bucket_notification_configuration(
        Bucket="data-bucket",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    S3TransferBuckets(s3, REGION).send_object_events("data-bucket")
    got = s3.get_bucket_notification_configuration(Bucket="data-bucket")
    assert got["QueueConfigurations"][0]["QueueArn"] == arn


class TestS3Adapter:
    """Error mapping of S3TransferBuckets on answers moto does not give (botocore's Stubber)."""

    @pytest.fixture
    def s3(self) -> Iterator[tuple[S3TransferBuckets, Stubber]]:
        client = boto3.client("s3", region_name="eu-west-1")
        with Stubber(client) as stub:
            yield S3TransferBuckets(client, "eu-west-1"), stub
            stub.assert_no_pending_responses()

    def test_forbidden_head_is_a_policy_error(self, s3: tuple[S3TransferBuckets, Stubber]) -> None:
        adapter, stub = s3
        stub.add_client_error("head_bucket", "403", "Forbidden", 403)
        check = adapter.probe_write("their-bucket", PROBE_NAME, None)
        assert (check.exists, check.accessible, check.detail) == (True, False, "bucketPolicyError")

    def test_missing_bucket(self, s3: tuple[S3TransferBuckets, Stubber]) -> None:
        adapter, stub = s3
        stub.add_client_error("head_bucket", "404", "Not Found", 404)
        assert adapter.locate("gone-bucket").detail == "noBucket"

    def test_refused_kms_write_and_left_over_probe(
        self, s3: tuple[S3TransferBuckets, Stubber]
    ) -> None:
        adapter, stub = s3
        head = {"BucketRegion": "eu-west-1"}
        stub.add_response("head_bucket", head, {"Bucket": "trace-bucket"})
        stub.add_client_error("put_object", "KMS.NotFoundException", "Invalid keyId", 400)
        refused = adapter.probe_write("trace-bucket", "p/x", "alias/gone")
        assert (refused.error_code, refused.detail) == (
            "KMS.NotFoundException",
            "bucketPolicyError",
        )
        # A write that works but whose clean-up is refused still counts as writable
        stub.add_response("head_bucket", head, {"Bucket": "trace-bucket"})
        stub.add_response("put_object", {}, {"Bucket": "trace-bucket", "Key": "x", "Body": b""})
        stub.add_client_error("delete_object", "AccessDenied", "Access Denied", 403)
        ok = adapter.probe_write("trace-bucket", "x", None)
        assert (ok.writable, ok.region, ok.detail) == (True, "eu-west-1", None)

    def test_create(self, s3: tuple[S3TransferBuckets, Stubber]) -> None:
        adapter, stub = s3
        expected = {
            "Bucket": "new-bucket",
            "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"},
        }
        stub.add_response("create_bucket", {}, expected)
        adapter.create("new-bucket")
        stub.add_client_error("create_bucket", "BucketAlreadyOwnedByYou", "yours", 409)
        adapter.create("new-bucket")
        stub.add_client_error("create_bucket", "BucketAlreadyExists", "taken", 409)
        with pytest.raises(BucketUnavailable) as caught:
            adapter.create("new-bucket")
        assert caught.value.code == "BucketAlreadyExists"
