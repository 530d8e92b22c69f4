"""Tracker, quota, tag and bucket-check routes through chalice.test.Client on moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
from chalice.test import Client

from tests.conftest import DOMAIN, PROJECT

JSON = {"Content-Type": "application/json"}


def call(client: Client, method: str, path: str, body: Any = None) -> Any:
    data = b"" if body is None else json.dumps(body).encode()
    return getattr(client.http, method)(path, headers=JSON, body=data)


def test_tracker_lifecycle_over_http(client: Client) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="audit-archive")
    # Enable CTS: the system tracker, transferring to a bucket
    created = call(
        client,
        "post",
        f"/v3/{PROJECT}/tracker",
        {
            "tracker_type": "system",
            "tracker_name": "system",
            "obs_info": {"bucket_name": "audit-archive", "file_prefix_name": "cts"},
        },
    )
    assert created.status_code == 201, created.body
    tracker = created.json_body
    assert tracker["tracker_name"] == "system"
    assert tracker["status"] == "enabled"
    assert tracker["obs_info"]["bucket_name"] == "audit-archive"
    # A second system tracker is refused
    again = call(
        client,
        "post",
        f"/v3/{PROJECT}/tracker",
        {"tracker_type": "system", "tracker_name": "system"},
    )
    assert again.status_code == 409
    assert again.json_body["error_code"] == "CTS.1101"
    # Disable it, then list
    disabled = call(
        client,
        "put",
        f"/v3/{PROJECT}/tracker",
        {"tracker_type": "system", "tracker_name": "system", "status": "disabled"},
    )
    assert disabled.status_code == 200, disabled.body
    listed = client.http.get(f"/v3/{PROJECT}/trackers?tracker_name=system").json_body
    assert [t["status"] for t in listed["trackers"]] == ["disabled"]
    # Quotas count it
    quotas = {q["type"]: q for q in client.http.get(f"/v3/{PROJECT}/quotas").json_body["resources"]}
    assert quotas["system_tracker"]["used"] == 1
    assert quotas["data_tracker"]["quota"] == 100
    # Tags, then delete by key
    tags_path = f"/v3/{PROJECT}/cts-tracker/{tracker['id']}/tags"
    tagged = call(
        client, "post", f"{tags_path}/create", {"tags": [{"key": "env", "value": "prod"}]}
    )
    assert tagged.status_code == 204, tagged.body
    assert client.http.get(f"/v3/{PROJECT}/trackers").json_body["trackers"][0]["tags"] == [
        {"key": "env", "value": "prod"}
    ]
    bad_tag = call(
        client, "post", f"{tags_path}/create", {"tags": [{"key": "_sys_x", "value": ""}]}
    )
    assert bad_tag.status_code == 400
    untagged = call(client, "delete", f"{tags_path}/delete", {"tags": [{"key": "env"}]})
    assert untagged.status_code == 204, untagged.body
    # Delete it: the project stays known
    deleted = client.http.delete(f"/v3/{PROJECT}/trackers?tracker_name=system&tracker_type=system")
    assert deleted.status_code == 204, deleted.body
    assert client.http.get(f"/v3/{PROJECT}/trackers").json_body == {"trackers": []}
    assert client.http.get(f"/v3/{PROJECT}/traces").status_code == 200


def test_bad_tracker_bodies_get_cts_errors(client: Client) -> None:
    unknown = call(
        client, "post", f"/v3/{PROJECT}/tracker", {"tracker_type": "system", "colour": "red"}
    )
    assert unknown.status_code == 400
    assert unknown.json_body["error_code"] == "CTS.1103"
    assert "colour" in unknown.json_body["error_msg"]
    bad_json = client.http.post(f"/v3/{PROJECT}/tracker", headers=JSON, body=b"{")
    assert bad_json.json_body["error_code"] == "CTS.0002"
    bad_bucket = call(
        client,
        "post",
        f"/v3/{PROJECT}/tracker",
        {"tracker_type": "system", "obs_info": {"bucket_name": "Bad..Name"}},
    )
    assert bad_bucket.status_code == 400
    assert "bucket_name" in bad_bucket.json_body["error_msg"]


def test_check_buckets_reports_each_bucket(client: Client) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="writable-bucket")
    r = call(
        client,
        "post",
        f"/v3/{DOMAIN}/checkbucket",
        {
            "buckets": [
                {"bucket_name": "writable-bucket", "bucket_location": "us-east-1"},
                {"bucket_name": "missing-bucket", "bucket_location": "us-east-1"},
            ]
        },
    )
    assert r.status_code == 200, r.body
    results = {b["bucket_name"]: b["check_bucket_response"] for b in r.json_body["buckets"]}
    assert results["writable-bucket"]["success"] is True
    assert results["missing-bucket"]["success"] is False
