"""Data traces: S3 object events and CloudTrail S3 data events become traces of the data trackers
watching the bucket, filtered by their data_event, once per event and tracker."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib.clock import FixedClock
from chalicelib.wiring import Services
from tests.conftest import NOW_MS, PROJECT

JSON = {"Content-Type": "application/json"}
EVENT_TIME = "2026-11-20T11:58:00Z"
EVENT_MS = NOW_MS - 120_000


def s3_event(bucket: str, key: str, event_id: str = "6d5a-object-created") -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": EVENT_TIME,
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5120, "etag": "b1946ac9", "sequencer": "00617F08"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "203.0.113.15",
            "reason": "PutObject",
        },
    }


def get_object_event(bucket: str, key: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e1",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
        "account": "123456789012",
        "time": EVENT_TIME,
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "eventCategory": "Data",
            "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject",
            "eventTime": EVENT_TIME,
            "eventType": "AwsApiCall",
            "eventID": "3a9e-get-object",
            "readOnly": True,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "[Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux]",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLE",
                "arn": "arn:aws:iam::123456789012:user/carol",
                "accountId": "123456789012",
                "accessKeyId": "AKIAEXAMPLE",
                "userName": "carol",
            },
            "requestParameters": {"bucketName": bucket, "key": key, "Host": f"{bucket}.s3"},
            "responseElements": None,
            "additionalEventData": {"bytesTransferredIn": 0, "bytesTransferredOut": 2048},
            "requestID": "R1",
        },
    }


@pytest.fixture
def watched(client: Client, clock: FixedClock) -> dict[str, str]:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="customer-data")
    for name, events in (("writes", ["WRITE"]), ("reads", ["READ"])):
        r = client.http.post(
            f"/v3/{PROJECT}/tracker",
            headers=JSON,
            body=json.dumps(
                {
                    "tracker_type": "data",
                    "tracker_name": name,
                    "data_bucket": {"data_bucket_name": "customer-data", "data_event": events},
                }
            ).encode(),
        )
        assert r.status_code == 201, r.body
    return {"bucket": "customer-data"}


def data_traces(client: Client, tracker: str) -> list[dict[str, Any]]:
    body = client.http.get(
        f"/v3/{PROJECT}/traces?trace_type=data&tracker_name={tracker}&from={EVENT_MS - 1}"
    ).json_body
    return list(body["traces"])


def test_object_created_becomes_one_write_trace(client: Client, watched: dict[str, str]) -> None:
    for _ in range(2):  # EventBridge delivers at least once
        client.lambda_.invoke("s3_object_events", s3_event("customer-data", "invoices/1.pdf"))
    (stored,) = data_traces(client, "writes")
    assert stored["trace_name"] == "PutObject"
    assert stored["trace_type"] == "Others"
    assert stored["tracker_name"] == "writes"
    assert stored["resource_id"] == "arn:aws:s3:::customer-data/invoices/1.pdf"
    assert stored["content_length"] == 5120
    assert stored["source_ip"] == "203.0.113.15"
    assert data_traces(client, "reads") == []
    management = client.http.get(f"/v3/{PROJECT}/traces?from={EVENT_MS - 1}").json_body
    # The management listing holds only the self-audit of the two tracker creations
    assert {t["service_type"] for t in management["traces"]} == {"CTS"}


def test_cloudtrail_get_object_goes_to_read_trackers(
    client: Client, watched: dict[str, str]
) -> None:
    client.lambda_.invoke("cloudtrail_events", get_object_event("customer-data", "a.csv"))
    (stored,) = data_traces(client, "reads")
    assert stored["trace_name"] == "GetObject"
    assert stored["trace_type"] == "ObsSDK"
    assert stored["user"]["name"] == "carol"
    assert stored["content_length"] == 2048
    assert stored["user_agent"].startswith("[Boto3")
    assert data_traces(client, "writes") == []


def test_events_for_unwatched_buckets_are_ignored_and_counted(
    client: Client, services: Services, watched: dict[str, str]
) -> None:
    counted: list[tuple[str, int]] = []
    assert services.api.data_events is not None
    services.api.data_events.count = lambda name, n: counted.append((name, n))
    client.lambda_.invoke("s3_object_events", s3_event("someone-elses-bucket", "x"))
    client.lambda_.invoke("cloudtrail_events", get_object_event("someone-elses-bucket", "x"))
    assert counted == [("DataEventsIgnored", 1), ("DataEventsIgnored", 1)]
    assert data_traces(client, "writes") == data_traces(client, "reads") == []
