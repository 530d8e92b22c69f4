"""CTS audits itself: management calls through the API show up as CTS traces of their caller."""

from __future__ import annotations

import json
from typing import Any

import boto3
from chalice.test import Client

from tests.conftest import PROJECT

JSON = {"Content-Type": "application/json"}


def cts_traces(client: Client, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(
        f"{k}={v}" for k, v in {"service_type": "CTS", "limit": "50", **filters}.items()
    )
    return list(client.http.get(f"/v3/{PROJECT}/traces?{query}").json_body["traces"])


def test_tracker_management_is_recorded_with_its_caller(client: Client) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="audit-bucket")
    created = client.http.post(
        f"/v3/{PROJECT}/tracker",
        headers=JSON,
        body=json.dumps(
            {"tracker_type": "system", "obs_info": {"bucket_name": "audit-bucket"}}
        ).encode(),
    )
    assert created.status_code == 201, created.body
    refused = client.http.post(
        f"/v3/{PROJECT}/tracker",
        headers=JSON,
        body=json.dumps({"tracker_type": "system", "bad": 1}).encode(),
    )
    assert refused.status_code == 400
    updated = client.http.put(
        f"/v3/{PROJECT}/tracker",
        headers=JSON,
        body=json.dumps(
            {"tracker_type": "system", "tracker_name": "system", "status": "disabled"}
        ).encode(),
    )
    assert updated.status_code == 200, updated.body

    traces = cts_traces(client)
    names = sorted((t["trace_name"], t["trace_rating"], t["code"]) for t in traces)
    assert names == [
        ("createTracker", "normal", "201"),
        ("createTracker", "warning", "400"),
        ("updateTracker", "normal", "200"),
    ]
    for t in traces:
        assert t["resource_type"] == "tracker"
        assert t["user"]["name"] == "tester"
        assert t["user"]["access_key_id"]
        assert t["source_ip"]
        assert t["resource_name"] == "system"
    warning = next(t for t in traces if t["trace_rating"] == "warning")
    assert "bad" in warning["message"]
    assert json.loads(warning["request"]) == {"tracker_type": "system", "bad": 1}


def test_exports_are_recorded_as_get_trace(client: Client) -> None:
    client.http.post(
        f"/v3/{PROJECT}/tracker", headers=JSON, body=json.dumps({"tracker_type": "system"}).encode()
    )
    assert client.http.get(f"/v3/{PROJECT}/traces/export?service_type=ECS").status_code == 200
    (export,) = cts_traces(client, trace_name="getTrace")
    assert export["resource_type"] == "trace"
    assert json.loads(export["request"]) == {"service_type": "ECS"}
    assert "response" not in export


def test_listing_is_not_audited(client: Client) -> None:
    client.http.get(f"/v3/{PROJECT}/trackers")
    client.http.get(f"/v3/{PROJECT}/traces")
    assert cts_traces(client) == []
