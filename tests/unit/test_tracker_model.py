"""The tracker, tag and CheckObsBuckets rules (chalicelib.tracker_model), each at and past its edge,
and the wire form against the official SDK's models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.errors import CtsError
from chalicelib.tracker_model import (
    DataBucket,
    ObsInfo,
    Tag,
    Tracker,
    check_bucket_name,
    check_file_prefix,
    check_kms_id,
    check_tag_key,
    check_tag_value,
    check_tracker_id,
    merge_tags,
    new_tracker,
    parse_check_buckets,
    parse_tags,
    remove_tags,
    updated_tracker,
)
from tests.conftest import DOMAIN, NOW_MS, PROJECT

KMS_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@contextmanager
def refused(code: str, field: str | None = None) -> Iterator[None]:
    """The block raises a 4xx CtsError with this code, whose message names the field."""
    with pytest.raises(CtsError) as caught:
        yield
    assert caught.value.code == code, caught.value.message
    assert 400 <= caught.value.status < 500
    if field is not None:
        assert f"'{field}'" in caught.value.message, caught.value.message


def error_of(call: Any, *args: Any, **kwargs: Any) -> CtsError:
    with pytest.raises(CtsError) as caught:
        call(*args, **kwargs)
    return caught.value


def create(**body: Any) -> Tracker:
    return new_tracker(body, project_id=PROJECT, domain_id=DOMAIN, tracker_id="t-1", now_ms=NOW_MS)


def data(**body: Any) -> Tracker:
    base: dict[str, Any] = {
        "tracker_type": "data",
        "tracker_name": "photos",
        "data_bucket": {"data_bucket_name": "photo-bucket", "data_event": ["WRITE"]},
    }
    base.update(body)
    return create(**base)


def system(**body: Any) -> Tracker:
    return create(tracker_type="system", tracker_name="system", **body)


class TestBucketName:
    @pytest.mark.parametrize(
        "name",
        ["abc", "a" * 63, "my-bucket.logs", "1.2.3", "0-0", "a.b-c.d", "bucket9"],
    )
    def test_valid(self, name: str) -> None:
        assert check_bucket_name(name, "b") == name

    @pytest.mark.parametrize(
        ("name", "why"),
        [
            ("ab", "3 to 63"),
            ("a" * 64, "3 to 63"),
            ("", "3 to 63"),
            ("My-bucket", "lowercase"),
            ("my_bucket", "lowercase"),
            ("my bucket", "lowercase"),
            ("-bucket", "start and end"),
            ("bucket-", "start and end"),
            (".bucket", "start and end"),
            ("bucket.", "start and end"),
            ("my..bucket", "two consecutive periods"),
            ("my-.bucket", "period next to a hyphen"),
            ("my.-bucket", "period next to a hyphen"),
            ("192.168.1.1", "IP address"),
            ("xn--bucket", "reserves"),
            ("bucket-s3alias", "reserves"),
            ("bucket--ol-s3", "reserves"),
        ],
    )
    def test_invalid(self, name: str, why: str) -> None:
        e = error_of(check_bucket_name, name, "obs_info.bucket_name")
        assert e.status == 400
        assert e.code == "CTS.1103"
        assert "'obs_info.bucket_name'" in e.message
        assert why in e.message

    def test_empty_allowed_only_where_it_means_no_transfer(self) -> None:
        assert check_bucket_name("", "b", allow_empty=True) == ""
        with refused("CTS.1103"):
            check_bucket_name(3, "b", allow_empty=True)


class TestFilePrefix:
    @pytest.mark.parametrize("prefix", ["", "a", "A" * 64, "my-prefix_1.x", "-._"])
    def test_valid(self, prefix: str) -> None:
        assert check_file_prefix(prefix) == prefix

    @pytest.mark.parametrize("prefix", ["A" * 65, "a/b", "a b", "ü", "a*", 7, None])
    def test_invalid(self, prefix: Any) -> None:
        with refused("CTS.1103", "obs_info.file_prefix_name"):
            check_file_prefix(prefix)


class TestTrackerName:
    def test_system_tracker_is_named_system(self) -> None:
        assert system().tracker_name == "system"
        with refused("CTS.1103", "tracker_name"):
            create(tracker_type="system", tracker_name="main")

    @pytest.mark.parametrize("name", ["a", "A" * 64, "my_tracker-1", "System2"])
    def test_valid_data_names(self, name: str) -> None:
        assert data(tracker_name=name).tracker_name == name

    @pytest.mark.parametrize(
        "name", ["", "A" * 65, "my.tracker", "my tracker", "system", "system-trace", "SYSTEM", 5]
    )
    def test_invalid_data_names(self, name: Any) -> None:
        with refused("CTS.1103", "tracker_name"):
            data(tracker_name=name)

    def test_type_is_required_and_the_name_too_for_data_trackers(self) -> None:
        with refused("CTS.1103", "tracker_type"):
            create(tracker_name="system")
        with refused("CTS.1103", "tracker_type"):
            create(tracker_type="management", tracker_name="system")
        with refused("CTS.1103", "tracker_name"):
            create(
                tracker_type="data",
                data_bucket={"data_bucket_name": "photo-bucket", "data_event": ["READ"]},
            )
        # The SDK documents "system" as the system tracker's default name
        assert create(tracker_type="system").tracker_name == "system"


class TestKmsId:
    @pytest.mark.parametrize(
        "kms_id",
        [
            KMS_ID,
            "mrk-" + "0" * 32,
            "alias/opencts",
            "arn:aws:kms:us-east-1:123456789012:key/" + KMS_ID,
            "arn:aws:kms:us-east-1:123456789012:alias/opencts",
        ],
    )
    def test_valid(self, kms_id: str) -> None:
        assert check_kms_id(kms_id) == kms_id

    @pytest.mark.parametrize("kms_id", ["", "not a key", "arn:aws:s3:::bucket", 42])
    def test_invalid(self, kms_id: Any) -> None:
        with refused("CTS.1103", "kms_id"):
            check_kms_id(kms_id)


class TestCreateTracker:
    def test_system_defaults(self) -> None:
        t = system()
        assert (t.tracker_type, t.enabled, t.status) == ("system", True, "enabled")
        assert t.obs_info == ObsInfo()
        assert t.obs_info.compress_type == "gzip"
        assert t.obs_info.is_sort_by_service is True
        assert not t.is_lts_enabled
        assert t.create_time == NOW_MS

    def test_every_setting(self) -> None:
        t = system(
            is_lts_enabled=True,
            obs_info={
                "bucket_name": "trace-bucket",
                "file_prefix_name": "cts",
                "is_obs_created": True,
                "compress_type": "json",
                "is_sort_by_service": False,
            },
            is_support_trace_files_encryption=True,
            kms_id=KMS_ID,
            is_support_validate=True,
            agency_name="cts_admin_trust",
            is_organization_tracker=False,
            management_event_selector={"exclude_service": ["KMS"]},
        )
        assert t.obs_info == ObsInfo("trace-bucket", "cts", True, None, "json", False)
        assert t.transfer_kms_id == KMS_ID
        assert (t.is_support_validate, t.agency_name, t.exclude_service) == (
            True,
            "cts_admin_trust",
            ("KMS",),
        )

    def test_null_is_not_given(self) -> None:
        t = system(obs_info=None, kms_id=None, is_lts_enabled=None)
        assert t.obs_info == ObsInfo()

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"colour": "red"}, "colour"),
            ({"obs_info": {"bucket": "x"}}, "obs_info.bucket"),
            ({"management_event_selector": {"include": []}}, "management_event_selector.include"),
            ({"status": "enabled"}, "status"),
        ],
    )
    def test_unknown_fields_are_refused_by_name(self, body: dict[str, Any], field: str) -> None:
        e = error_of(system, **body)
        assert e.code == "CTS.1103"
        assert f"'{field}'" in e.message
        assert "not a known field" in e.message

    @pytest.mark.parametrize(
        "field",
        ["is_lts_enabled", "is_support_validate", "is_support_trace_files_encryption"],
    )
    def test_flags_must_be_booleans(self, field: str) -> None:
        with refused("CTS.1103", field):
            system(**{field: "true"})

    def test_organization_trackers_are_not_supported(self) -> None:
        e = error_of(system, is_organization_tracker=True)
        assert (e.status, e.code) == (400, "CTS.1108")
        assert "is_organization_tracker" in e.message

    def test_agency_name_is_the_documented_one(self) -> None:
        assert system(agency_name="").agency_name is None
        with refused("CTS.1103", "agency_name"):
            system(agency_name="my_agency")

    def test_event_selector_is_for_the_system_tracker_and_kms(self) -> None:
        assert system(management_event_selector={}).exclude_service == ()
        with refused("CTS.1103", "management_event_selector.exclude_service[0]"):
            system(management_event_selector={"exclude_service": ["OBS"]})
        with refused("CTS.1103", "management_event_selector.exclude_service"):
            system(management_event_selector={"exclude_service": ["KMS", "KMS"]})
        with refused("CTS.1103", "management_event_selector"):
            data(management_event_selector={"exclude_service": ["KMS"]})

    def test_encryption_needs_a_kms_key_and_a_bucket(self) -> None:
        bucket = {"bucket_name": "trace-bucket"}
        with refused("CTS.1103", "kms_id"):
            system(obs_info=bucket, is_support_trace_files_encryption=True)
        with refused("CTS.1103", "kms_id"):
            system(obs_info=bucket, is_support_trace_files_encryption=True, kms_id="")
        with refused("CTS.1103", "is_support_trace_files_encryption"):
            system(is_support_trace_files_encryption=True, kms_id=KMS_ID)
        # A key without encryption is kept but not used
        t = system(obs_info=bucket, kms_id=KMS_ID)
        assert (t.kms_id, t.transfer_kms_id) == (KMS_ID, None)

    def test_validation_needs_a_bucket(self) -> None:
        with refused("CTS.1103", "is_support_validate"):
            system(is_support_validate=True)
        assert system(obs_info={"bucket_name": "b-1"}, is_support_validate=True).is_support_validate

    def test_is_obs_created_needs_a_bucket(self) -> None:
        with refused("CTS.1103", "obs_info.is_obs_created"):
            system(obs_info={"is_obs_created": True})

    @pytest.mark.parametrize("days", [30, 60, 90, 180, 1095])
    def test_lifecycle_values(self, days: int) -> None:
        t = data(obs_info={"bucket_name": "trace-bucket", "bucket_lifecycle": days})
        assert t.obs_info.bucket_lifecycle == days

    def test_lifecycle_zero_means_forever(self) -> None:
        t = data(obs_info={"bucket_name": "trace-bucket", "bucket_lifecycle": 0})
        assert t.obs_info.bucket_lifecycle is None

    @pytest.mark.parametrize("days", [1, 29, 31, 365, 1096, -30, "30", True, 30.5, 30.0])
    def test_other_lifecycles_are_refused(self, days: Any) -> None:
        with refused("CTS.1103", "obs_info.bucket_lifecycle"):
            data(obs_info={"bucket_name": "trace-bucket", "bucket_lifecycle": days})

    def test_lifecycle_is_for_data_trackers(self) -> None:
        with refused("CTS.1103", "obs_info.bucket_lifecycle"):
            system(obs_info={"bucket_name": "trace-bucket", "bucket_lifecycle": 30})

    def test_compress_type_and_sorting(self) -> None:
        assert system(obs_info={"compress_type": "gzip"}).obs_info.compress_type == "gzip"
        with refused("CTS.1103", "obs_info.compress_type"):
            system(obs_info={"compress_type": "zip"})
        with refused("CTS.1103", "obs_info.is_sort_by_service"):
            system(obs_info={"is_sort_by_service": 1})
        with refused("CTS.1103", "obs_info"):
            system(obs_info=["bucket"])


class TestDataBucket:
    def test_required_for_data_trackers(self) -> None:
        with refused("CTS.1103", "data_bucket"):
            create(tracker_type="data", tracker_name="photos")
        with refused("CTS.1103", "data_bucket.data_bucket_name"):
            data(data_bucket={"data_event": ["READ"]})
        with refused("CTS.1103", "data_bucket.data_event"):
            data(data_bucket={"data_bucket_name": "photo-bucket"})

    @pytest.mark.parametrize("events", [["READ"], ["WRITE"], ["READ", "WRITE"], ["WRITE", "READ"]])
    def test_events(self, events: list[str]) -> None:
        t = data(data_bucket={"data_bucket_name": "photo-bucket", "data_event": events})
        assert t.data_bucket == DataBucket("photo-bucket", tuple(events))

    @pytest.mark.parametrize(
        ("events", "field"),
        [
            ([], "data_bucket.data_event"),
            (["READ", "READ"], "data_bucket.data_event"),
            (["read"], "data_bucket.data_event[0]"),
            (["WRITE", "DELETE"], "data_bucket.data_event[1]"),
            ("READ", "data_bucket.data_event"),
        ],
    )
    def test_bad_events(self, events: Any, field: str) -> None:
        with refused("CTS.1103", field):
            data(data_bucket={"data_bucket_name": "photo-bucket", "data_event": events})

    def test_bucket_name_rules_apply(self) -> None:
        with refused("CTS.1103", "data_bucket.data_bucket_name"):
            data(data_bucket={"data_bucket_name": "Photos", "data_event": ["READ"]})
        with refused("CTS.1103", "data_bucket.colour"):
            data(data_bucket={"data_bucket_name": "photo-bucket", "data_event": [], "colour": 1})

    def test_not_for_the_system_tracker(self) -> None:
        with refused("CTS.1103", "data_bucket"):
            system(data_bucket={"data_bucket_name": "photo-bucket", "data_event": ["READ"]})

    def test_a_tracker_may_not_transfer_into_its_own_bucket(self) -> None:
        with refused("CTS.1103", "obs_info.bucket_name"):
            data(obs_info={"bucket_name": "photo-bucket"})

    def test_encryption_is_allowed_for_data_trackers_too(self) -> None:
        t = data(
            obs_info={"bucket_name": "trace-bucket"},
            is_support_trace_files_encryption=True,
            kms_id=KMS_ID,
        )
        assert t.transfer_kms_id == KMS_ID


class TestUpdateTracker:
    def test_fields_not_given_keep_their_value(self) -> None:
        before = system(obs_info={"bucket_name": "trace-bucket", "file_prefix_name": "p"})
        after = updated_tracker(
            before, {"tracker_type": "system", "tracker_name": "system", "is_lts_enabled": True}
        )
        assert after.obs_info == before.obs_info
        assert after.is_lts_enabled
        after = updated_tracker(
            after,
            {
                "tracker_type": "system",
                "tracker_name": "system",
                "obs_info": {"compress_type": "json"},
            },
        )
        assert after.obs_info == replace(before.obs_info, compress_type="json")

    def test_status(self) -> None:
        t = system()
        body = {"tracker_type": "system", "tracker_name": "system"}
        off = updated_tracker(t, {**body, "status": "disabled"})
        assert (off.enabled, off.status) == (False, "disabled")
        assert updated_tracker(off, {**body, "status": "enabled"}).status == "enabled"
        for bad in ("error", "ENABLED", True):
            with refused("CTS.1103", "status"):
                updated_tracker(t, {**body, "status": bad})

    def test_status_shows_the_bucket_error_only_when_enabled(self) -> None:
        t = replace(system(), bucket_error="noBucket")
        assert t.status == "error"
        assert replace(t, enabled=False).status == "disabled"

    def test_data_bucket_is_fixed_but_events_may_change(self) -> None:
        t = data()
        body = {"tracker_type": "data", "tracker_name": "photos"}
        same = updated_tracker(
            t,
            {**body, "data_bucket": {"data_bucket_name": "photo-bucket", "data_event": ["READ"]}},
        )
        assert same.data_bucket == DataBucket("photo-bucket", ("READ",))
        e = error_of(
            updated_tracker,
            t,
            {**body, "data_bucket": {"data_bucket_name": "other-bucket", "data_event": ["READ"]}},
        )
        assert (e.status, e.code) == (400, "CTS.1105")
        assert "photo-bucket" in e.message
        assert updated_tracker(t, {**body, "data_bucket": {}}).data_bucket == t.data_bucket

    def test_a_new_bucket_is_not_one_cts_created(self) -> None:
        t = system(obs_info={"bucket_name": "made-by-cts", "is_obs_created": True})
        body = {"tracker_type": "system", "tracker_name": "system"}
        kept = updated_tracker(t, {**body, "obs_info": {"file_prefix_name": "x"}})
        assert kept.obs_info.is_obs_created
        moved = updated_tracker(t, {**body, "obs_info": {"bucket_name": "users-own"}})
        assert not moved.obs_info.is_obs_created

    def test_turning_transfer_off_keeps_other_flags_inert(self) -> None:
        t = system(obs_info={"bucket_name": "trace-bucket"}, is_support_validate=True)
        body = {"tracker_type": "system", "tracker_name": "system"}
        off = updated_tracker(t, {**body, "obs_info": {"bucket_name": ""}})
        assert not off.transfers_to_s3
        assert off.is_support_validate
        with refused("CTS.1103", "is_support_validate"):
            updated_tracker(off, {**body, "is_support_validate": True})

    def test_lifecycle_can_go_back_to_forever(self) -> None:
        t = data(obs_info={"bucket_name": "trace-bucket", "bucket_lifecycle": 30})
        body = {"tracker_type": "data", "tracker_name": "photos"}
        kept = updated_tracker(t, {**body, "obs_info": {"file_prefix_name": "x"}})
        assert kept.obs_info.bucket_lifecycle == 30
        forever = updated_tracker(t, {**body, "obs_info": {"bucket_lifecycle": 0}})
        assert forever.obs_info.bucket_lifecycle is None

    def test_unknown_field(self) -> None:
        with refused("CTS.1103", "tracker_id"):
            updated_tracker(
                system(), {"tracker_type": "system", "tracker_name": "system", "tracker_id": "x"}
            )


class TestTags:
    @pytest.mark.parametrize(
        "key",
        ["k", "K" * 128, "Key_0001", "a b", "_.:/=+-@", "标签", "Ключ", "x_sys_", "sys_x", "_sys"],
    )
    def test_valid_keys(self, key: str) -> None:
        assert check_tag_key(key) == key

    @pytest.mark.parametrize(
        ("key", "why"),
        [
            ("", "empty"),
            ("K" * 129, "at most 128"),
            (" key", "start or end with a space"),
            ("key ", "start or end with a space"),
            ("_sys_key", "_sys_"),
            ("_SYS_key", "_sys_"),
            ("_sys_", "_sys_"),
            ("a,b", "only letters"),
            ("a*b", "only letters"),
            ("a#b", "only letters"),
            ("a\tb", "only letters"),
            ("smile\U0001f600", "only letters"),
            (12, "string"),
        ],
    )
    def test_invalid_keys(self, key: Any, why: str) -> None:
        e = error_of(check_tag_key, key, "tags[0].key")
        assert (e.code, e.status) == ("CTS.1103", 400)
        assert "'tags[0].key'" in e.message
        assert why in e.message

    @pytest.mark.parametrize("value", ["", "v", "V" * 255, "Value_0001", "a b", "_sys_ok", "值"])
    def test_valid_values(self, value: str) -> None:
        assert check_tag_value(value) == value

    @pytest.mark.parametrize("value", ["V" * 256, " v", "v ", "a|b", None])
    def test_invalid_values(self, value: Any) -> None:
        with refused("CTS.1103", "value"):
            check_tag_value(value)

    def test_create_body(self) -> None:
        tags = parse_tags({"tags": [{"key": "a", "value": "1"}, {"key": "b"}]}, deleting=False)
        assert tags == [("a", "1"), ("b", "")]

    def test_at_most_20_in_a_request(self) -> None:
        twenty = [{"key": f"k{i}", "value": "v"} for i in range(20)]
        assert len(parse_tags({"tags": twenty}, deleting=False)) == 20
        e = error_of(parse_tags, {"tags": [*twenty, {"key": "k20"}]}, deleting=False)
        assert e.code == "CTS.1109"

    def test_duplicate_keys_refused_on_create_only(self) -> None:
        body = {"tags": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}
        with refused("CTS.1103", "tags[1].key"):
            parse_tags(body, deleting=False)
        assert parse_tags(body, deleting=True) == [("a", "1"), ("a", "2")]
        # Keys are case-sensitive, as in TMS
        assert len(parse_tags({"tags": [{"key": "a"}, {"key": "A"}]}, deleting=False)) == 2

    def test_delete_by_key_or_by_key_and_value(self) -> None:
        body = {"tags": [{"key": "a"}, {"key": "b", "value": None}, {"key": "c", "value": ""}]}
        assert parse_tags(body, deleting=True) == [("a", None), ("b", None), ("c", "")]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"tags": []}, "tags"),
            ({"tags": {"key": "a"}}, "tags"),
            ({}, "tags"),
            ({"tags": [{"key": "a"}], "extra": 1}, "extra"),
            ({"tags": ["a"]}, "tags[0]"),
            ({"tags": [{"value": "v"}]}, "tags[0].key"),
            ({"tags": [{"key": "a", "val": "v"}]}, "tags[0].val"),
            ({"tags": [{"key": "a"}, {"key": "_sys_b"}]}, "tags[1].key"),
            ({"tags": [{"key": "a", "value": " v"}]}, "tags[0].value"),
        ],
    )
    def test_bad_bodies(self, body: dict[str, Any], field: str) -> None:
        with refused("CTS.1103", field):
            parse_tags(body, deleting=False)

    def test_body_must_be_an_object(self) -> None:
        e = error_of(parse_tags, ["tags"], deleting=True)
        assert e.code == "CTS.0002"

    def test_merge_updates_in_place_and_appends(self) -> None:
        current = (Tag("a", "1"), Tag("b", "2"))
        merged = merge_tags(current, [("b", "two"), ("c", "")])
        assert merged == (Tag("a", "1"), Tag("b", "two"), Tag("c", ""))

    def test_merge_keeps_at_most_20(self) -> None:
        current = tuple(Tag(f"k{i}", "") for i in range(19))
        assert len(merge_tags(current, [("k19", "")])) == 20
        assert len(merge_tags((*current, Tag("k19", "")), [("k0", "new")])) == 20
        e = error_of(merge_tags, (*current, Tag("k19", "")), [("k20", "")])
        assert (e.code, e.status) == ("CTS.1109", 400)

    def test_remove(self) -> None:
        current = (Tag("a", "1"), Tag("b", "2"), Tag("c", ""))
        assert remove_tags(current, [("a", None)]) == (Tag("b", "2"), Tag("c", ""))
        assert remove_tags(current, [("b", "2")]) == (Tag("a", "1"), Tag("c", ""))
        # A value that does not match, or a key that is not there, is ignored
        assert remove_tags(current, [("b", "3"), ("z", None)]) == current
        assert remove_tags(current, [("c", "")]) == (Tag("a", "1"), Tag("b", "2"))

    def test_tracker_ids(self) -> None:
        assert check_tracker_id("0a1b-2c") == "0a1b-2c"
        for bad in ("", "a/b", "x" * 65):
            assert error_of(check_tracker_id, bad).code == "CTS.1110"


class TestCheckBuckets:
    def test_body(self) -> None:
        got = parse_check_buckets(
            {
                "buckets": [
                    {"bucket_name": "bucket-a", "bucket_location": "us-east-1"},
                    {
                        "bucket_name": "bucket-b",
                        "bucket_location": "eu-west-1",
                        "kms_id": KMS_ID,
                        "is_support_trace_files_encryption": True,
                    },
                ]
            }
        )
        assert [b.bucket_name for b in got] == ["bucket-a", "bucket-b"]
        assert got[0].write_kms_id is None
        assert got[1].write_kms_id == KMS_ID
        assert got[1].body() == {
            "bucket_name": "bucket-b",
            "bucket_location": "eu-west-1",
            "kms_id": KMS_ID,
            "is_support_trace_files_encryption": True,
        }

    def test_at_most_20(self) -> None:
        one = {"bucket_name": "bucket-a", "bucket_location": "us-east-1"}
        assert len(parse_check_buckets({"buckets": [one] * 20})) == 20
        with refused("CTS.1103", "buckets"):
            parse_check_buckets({"buckets": [one] * 21})

    @pytest.mark.parametrize(
        ("bucket", "field"),
        [
            ({"bucket_location": "us-east-1"}, "buckets[0].bucket_name"),
            ({"bucket_name": "B", "bucket_location": "us-east-1"}, "buckets[0].bucket_name"),
            ({"bucket_name": "bucket-a"}, "buckets[0].bucket_location"),
            (
                {"bucket_name": "bucket-a", "bucket_location": "US East"},
                "buckets[0].bucket_location",
            ),
            (
                {
                    "bucket_name": "bucket-a",
                    "bucket_location": "us-east-1",
                    "is_support_trace_files_encryption": True,
                },
                "buckets[0].kms_id",
            ),
            (
                {"bucket_name": "bucket-a", "bucket_location": "us-east-1", "region": "x"},
                "buckets[0].region",
            ),
        ],
    )
    def test_bad_buckets(self, bucket: dict[str, Any], field: str) -> None:
        with refused("CTS.1103", field):
            parse_check_buckets({"buckets": [bucket]})

    def test_empty(self) -> None:
        with refused("CTS.1103", "buckets"):
            parse_check_buckets({"buckets": []})


class TestWireForm:
    def test_system_tracker_body(self) -> None:
        t = replace(
            system(
                is_lts_enabled=True,
                obs_info={"bucket_name": "trace-bucket", "file_prefix_name": "cts"},
            ),
            tags=(Tag("team", "audit"),),
        )
        body = t.body("us-east-1")
        assert body == {
            "id": "t-1",
            "create_time": NOW_MS,
            "is_support_validate": False,
            "is_organization_tracker": False,
            "management_event_selector": {"exclude_service": []},
            "lts": {
                "is_lts_enabled": True,
                "log_group_name": "CTS",
                "log_topic_name": "system-trace",
            },
            "tracker_type": "system",
            "domain_id": DOMAIN,
            "project_id": PROJECT,
            "tracker_name": "system",
            "status": "enabled",
            "is_support_trace_files_encryption": False,
            "group_id": f"arn:aws:logs:us-east-1:{DOMAIN}:log-group:CTS",
            "stream_id": f"arn:aws:logs:us-east-1:{DOMAIN}:log-group:CTS:log-stream:system-trace",
            "obs_info": {
                "bucket_name": "trace-bucket",
                "file_prefix_name": "cts",
                "is_obs_created": False,
                "is_authorized_bucket": True,
                "compress_type": "gzip",
                "is_sort_by_service": True,
            },
            "tags": [{"key": "team", "value": "audit"}],
        }

    def test_data_tracker_body_in_error(self) -> None:
        t = replace(
            data(obs_info={"bucket_name": "trace-bucket", "bucket_lifecycle": 90}),
            bucket_error="bucketPolicyError",
        )
        body = t.body("us-east-1", created=True)
        assert body["status"] == "error"
        assert body["detail"] == "bucketPolicyError"
        assert body["obs_info"]["is_authorized_bucket"] is False
        assert body["obs_info"]["bucket_lifecycle"] == 90
        assert body["data_bucket"] == {
            "data_bucket_name": "photo-bucket",
            "search_enabled": True,
            "data_event": ["WRITE"],
        }
        assert "management_event_selector" not in body
        assert "tags" not in body
        assert "detail" not in replace(t, bucket_error=None).body("us-east-1")

    def test_item_round_trip(self) -> None:
        t = replace(
            data(
                obs_info={"bucket_name": "trace-bucket", "bucket_lifecycle": 30},
                is_support_trace_files_encryption=True,
                kms_id=KMS_ID,
                agency_name="cts_admin_trust",
            ),
            tags=(Tag("a", ""), Tag("b", "2")),
            bucket_error="noBucket",
            enabled=False,
        )
        assert Tracker.from_item(t.item()) == t
        s = system(management_event_selector={"exclude_service": ["KMS"]})
        assert Tracker.from_item(s.item()) == s

    @pytest.mark.parametrize(
        ("model", "created"),
        [("TrackerResponseBody", False), ("CreateTrackerResponse", True)],
    )
    def test_fields_are_the_sdk_models(self, model: str, created: bool) -> None:
        sdk = pytest.importorskip("huaweicloudsdkcts.v3")
        t = replace(
            data(is_lts_enabled=True, obs_info={"bucket_name": "trace-bucket"}),
            bucket_error="noBucket",
            tags=(Tag("a", "b"),),
        )
        body = t.body("us-east-1", created=created)
        extensions = {"tags"}
        _assert_model(sdk, getattr(sdk, model), body, extensions)
        _assert_model(
            sdk, getattr(sdk, model), system().body("us-east-1", created=created), extensions
        )


def _assert_model(sdk: Any, model: Any, value: dict[str, Any], extensions: set[str]) -> None:
    """Every field is one the SDK model has, with the model's type, recursively."""
    wire = {v: k for k, v in model.attribute_map.items()}
    for name, item in value.items():
        if name in extensions:
            continue
        assert name in wire, f"{model.__name__} has no field {name}"
        kind = model.openapi_types[wire[name]]
        _assert_type(sdk, kind, item, f"{model.__name__}.{name}")


def _assert_type(sdk: Any, kind: str, item: Any, where: str) -> None:
    simple = {"str": str, "int": int, "bool": bool}
    if kind in simple:
        assert isinstance(item, simple[kind]), where
        if kind == "int":
            assert not isinstance(item, bool), where
    elif kind.startswith("list["):
        assert isinstance(item, list), where
        for element in item:
            _assert_type(sdk, kind[5:-1], element, where)
    else:
        assert isinstance(item, dict), where
        _assert_model(sdk, getattr(sdk, kind), item, set())


def test_sdk_request_bodies_are_accepted() -> None:
    """What the SDK serialises for CreateTracker is what new_tracker reads."""
    sdk = pytest.importorskip("huaweicloudsdkcts.v3")
    utils = pytest.importorskip("huaweicloudsdkcore.utils.http_utils")
    request = sdk.CreateTrackerRequestBody(
        tracker_type="data",
        tracker_name="photos",
        is_lts_enabled=True,
        obs_info=sdk.TrackerObsInfo(
            bucket_name="trace-bucket",
            file_prefix_name="cts",
            is_obs_created=False,
            bucket_lifecycle=30,
            compress_type="json",
            is_sort_by_service=False,
        ),
        is_support_validate=True,
        data_bucket=sdk.DataBucket(data_bucket_name="photo-bucket", data_event=["READ", "WRITE"]),
    )
    t = create(**utils.sanitize_for_serialization(request))
    assert t.obs_info == ObsInfo("trace-bucket", "cts", False, 30, "json", False)
    assert t.data_bucket == DataBucket("photo-bucket", ("READ", "WRITE"))
    tags = sdk.BatchCreateResourceTagsRequestBody(tags=[sdk.Tags(key="k", value="v")])
    assert parse_tags(utils.sanitize_for_serialization(tags), deleting=False) == [("k", "v")]
