"""Observability: every function's metrics, as Powertools writes them (CloudWatch embedded metric
format on stdout), for realistic invocations through chalice.test.Client on moto; and no secret,
signature or Authorization header in any log line, with the Powertools logger at DEBUG."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import pathlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

import app as app_module
from chalicelib import signing
from chalicelib.access_keys import KeyUser
from chalicelib.clock import FixedClock
from chalicelib.cloudtrail import convert_event
from chalicelib.config import Settings
from chalicelib.observability import tracer
from chalicelib.permissions import FULL_ACCESS
from chalicelib.wiring import Services, build
from tests.conftest import DOMAIN, NOW_MS, PROJECT, trace
from tests.delivery_support import StreamReader
from tests.integration.conftest import HOST
from tests.integration.test_data_events import EVENT_MS, s3_event
from tests.integration.test_transfer_function import scheduled_event

JSON = {"Content-Type": "application/json"}
FIXTURES = pathlib.Path(__file__).parent.parent / "fixtures" / "cloudtrail"
AUDIT_REGION = "eu-west-1"


@pytest.fixture
def services(created: dict[str, str], settings: Settings, clock: FixedClock) -> Iterator[Services]:
    """The app's services with the login audit on (an SMN_Topic; no whitelist: every sign-in
    raises the alarm)."""
    topic = boto3.client("sns", region_name=AUDIT_REGION).create_topic(Name="cts_alarm")
    env = (("SMN_Topic", topic["TopicArn"]), ("RegionName", AUDIT_REGION))
    settings = dataclasses.replace(
        settings, ingest_dlq_url=created["ingest_dlq_url"], login_audit_env=env
    )
    svc = build(settings, clock)
    svc.projects.register(PROJECT, DOMAIN)
    app_module.use_services(svc)
    yield svc
    app_module.use_services(None)


def emf_documents(out: str) -> list[dict[str, Any]]:
    docs = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def values(docs: list[dict[str, Any]], metric: str, **dimensions: str) -> list[float]:
    """Every value of `metric` in documents whose dimensions include `dimensions`."""
    found: list[float] = []
    for doc in docs:
        names = {m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
        if metric in names and all(doc.get(k) == v for k, v in dimensions.items()):
            value = doc[metric]
            found += value if isinstance(value, list) else [value]
    return found


def test_the_api_counts_each_outcome_and_the_delivery_latency(
    client: Any, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch: two new traces (5 s and 1 s old), one invalid, one repeated
    first = trace(trace_id="t-1", time=NOW_MS - 5_000)
    batch = [first, trace(trace_id="t-2", time=NOW_MS - 1_000), trace(trace_rating="odd"), first]
    capsys.readouterr()

    # When it is reported through the API
    reply = client.http.post(
        f"/v3/{PROJECT}/traces", headers=JSON, body=json.dumps({"traces": batch}).encode()
    )

    # Then one EMF document with Source=api counts each outcome and the latency of the stored
    assert reply.status_code == 200, reply.body
    docs = emf_documents(capsys.readouterr().out)
    assert values(docs, "TracesStored", Source="api") == [2]
    assert values(docs, "TracesDuplicate", Source="api") == [1]
    assert values(docs, "TracesRejected", Source="api") == [1]
    assert values(docs, "TracesFailed", Source="api") == [0]
    assert values(docs, "DeliveryLatencyMax", Source="api") == [5_000]
    assert values(docs, "DeliveryLatencyAvg", Source="api") == [3_000]
    unit = {
        m["Name"]: m["Unit"]
        for d in docs
        for c in d["_aws"]["CloudWatchMetrics"]
        for m in c["Metrics"]
    }
    assert unit["DeliveryLatencyMax"] == "Milliseconds"
    assert unit["TracesStored"] == "Count"
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "OpenCTS" for d in docs)


def test_a_management_call_counts_its_audit_trace(
    client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="obs-files")
    capsys.readouterr()
    reply = client.http.post(
        f"/v3/{PROJECT}/tracker",
        headers=JSON,
        body=json.dumps(
            {"tracker_type": "system", "obs_info": {"bucket_name": "obs-files"}}
        ).encode(),
    )
    assert reply.status_code == 201, reply.body
    docs = emf_documents(capsys.readouterr().out)
    assert values(docs, "TracesStored", Source="audit") == [1]


def test_the_queue_cloudtrail_and_s3_functions_count_by_source(
    client: Any, services: Services, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a data tracker watching a bucket's writes
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="watched")
    services.trackers.create_tracker(
        PROJECT,
        {
            "tracker_type": "data",
            "tracker_name": "writes",
            "data_bucket": {"data_bucket_name": "watched", "data_event": ["WRITE"]},
        },
    )
    envelope = json.loads((FIXTURES / "signin_console_login_success_mfa.json").read_text())
    clock.current_ms = convert_event(envelope)["time"] + 2_000
    message = json.dumps({"project_id": PROJECT, "traces": [trace(time=clock.current_ms - 10)]})
    capsys.readouterr()

    # When each event source's function runs
    client.lambda_.invoke("ingest_queue", client.events.generate_sqs_event([message], "q"))
    client.lambda_.invoke("cloudtrail_events", envelope)
    clock.current_ms = EVENT_MS + 3_000
    client.lambda_.invoke("s3_object_events", s3_event("watched", "invoices/1.pdf"))

    # Then each counts its stored trace under its own Source
    docs = emf_documents(capsys.readouterr().out)
    assert values(docs, "TracesStored", Source="queue") == [1]
    assert values(docs, "DeliveryLatencyMax", Source="queue") == [10]
    assert values(docs, "TracesStored", Source="cloudtrail") == [1]
    assert values(docs, "DeliveryLatencyMax", Source="cloudtrail") == [2_000]
    assert values(docs, "TracesStored", Source="data") == [1]
    assert values(docs, "DeliveryLatencyMax", Source="data") == [3_000]
    assert values(docs, "DataTracesRecorded") == [1]


def test_the_transfer_and_digest_functions_report_lag_per_tracker_and_digests(
    client: Any, services: Services, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="audit-files")
    services.trackers.create_tracker(
        PROJECT,
        {
            "tracker_type": "system",
            "tracker_name": "system",
            "obs_info": {"bucket_name": "audit-files"},
        },
    )
    services.api.report(PROJECT, json.dumps({"traces": [trace()]}).encode())
    clock.advance(60_000)
    capsys.readouterr()

    out = client.lambda_.invoke("transfer_cycle", scheduled_event()).payload
    client.lambda_.invoke("digest_files", scheduled_event())

    docs = emf_documents(capsys.readouterr().out)
    assert out["files"] == 1
    assert values(docs, "TraceFilesWritten") == [1]
    assert values(docs, "TracesTransferred") == [1]
    (lag,) = values(docs, "TransferLag", ProjectId=PROJECT, TrackerName="system")
    assert lag > 0
    # The digest hour has not ended yet: the run writes none, and says so.
    assert values(docs, "DigestsWritten") == [0]


def test_the_stream_functions_count_notifications_and_login_alarms(
    client: Any, created: dict[str, str], clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = StreamReader(created["traces_stream_arn"])
    envelope = json.loads((FIXTURES / "signin_console_login_success_mfa.json").read_text())
    clock.current_ms = convert_event(envelope)["time"] + 1_000
    client.lambda_.invoke("cloudtrail_events", envelope)
    event = StreamReader.event(stream.new_records())
    capsys.readouterr()

    client.lambda_.invoke("login_audit", event)
    client.lambda_.invoke("notification_matcher", event)

    docs = emf_documents(capsys.readouterr().out)
    assert values(docs, "LoginAlarmsSent") == [1]
    assert values(docs, "LoginAlarmsFailed") == [0]
    # No notification rule: nothing is sent, and nothing fails.
    assert values(docs, "NotificationsSent") == [0]
    assert values(docs, "NotificationsFailed") == [0]


def test_the_tracer_is_off_locally_and_every_function_still_runs() -> None:
    # No LAMBDA_TASK_ROOT outside Lambda: Powertools disables it, so no X-Ray daemon is needed
    # (the invocations above all ran through its capture_lambda_handler middleware).
    assert tracer.disabled


# -- nothing secret in the logs ------------------------------------------------------------------
@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Everything logged, at DEBUG: the Powertools handler's JSON lines and every other logger
    (botocore included) through caplog."""
    buffer = io.StringIO()
    powertools = logging.getLogger("opencts")
    level = powertools.level
    streams = [
        (h, h.setStream(buffer))
        for h in powertools.handlers
        if isinstance(h, logging.StreamHandler)
    ]
    powertools.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    yield buffer
    powertools.setLevel(level)
    for handler, old in streams:
        handler.setStream(old)  # type: ignore[arg-type]


def test_no_secret_signature_or_authorization_is_ever_logged(
    client: Any,
    services: Services,
    clock: FixedClock,
    debug_logs: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a new access key (created while everything logs at DEBUG)
    new = services.keys.create(
        user=KeyUser("u-obs", "obs"), domain_id=DOMAIN, project_ids=[PROJECT], policy=FULL_ACCESS
    )
    key_id, secret = new.key.access_key_id, new.secret
    body = json.dumps({"traces": [trace()]}).encode()
    tracker = json.dumps({"tracker_type": "system", "obs_info": {"bucket_name": "nowhere"}})
    sent: list[dict[str, str]] = []

    def call(method: str, path: str, payload: bytes, secret_used: str = secret) -> int:
        headers = signing.sign(
            access_key_id=key_id,
            secret=secret_used,
            method=method,
            host=HOST,
            path=path,
            now_ms=clock.now_ms(),
            query=[],
            headers={"Content-Type": "application/json"},
            body=payload,
        )
        sent.append(headers)
        response = client.unsigned.http.request(method, path, headers=headers, body=payload)
        return int(response.status_code)

    # When it signs a report, a query, an audited management call (self-audit), a request
    # signed with the wrong secret and one whose body hash does not match
    assert call("POST", f"/v3/{PROJECT}/traces", body) == 200
    assert call("GET", f"/v3/{PROJECT}/traces", b"") == 200
    assert call("POST", f"/v3/{PROJECT}/tracker", tracker.encode()) == 201
    assert call("POST", f"/v3/{PROJECT}/traces", body, secret_used="x" * 40) == 401
    tampered = dict(sent[0], **{"X-Sdk-Content-Sha256": "ab" * 32})
    sent.append(tampered)
    refused = client.unsigned.http.request(
        "POST", f"/v3/{PROJECT}/traces", headers=tampered, body=body
    )
    assert refused.status_code == 401

    # Then no log line, at any level, carries the secret, a signature or an Authorization value
    logged = debug_logs.getvalue() + caplog.text + "".join(capsys.readouterr())
    assert "request refused" in logged  # the refusals were logged, just not their secrets
    forbidden = {secret, base64.b64encode(secret.encode()).decode()}
    for headers in sent:
        authorization = headers["Authorization"]
        forbidden |= {authorization, authorization.rsplit("Signature=", 1)[1]}
        forbidden.add(headers.get("X-Sdk-Content-Sha256") or "ab" * 32)
    leaked = [value for value in forbidden if value in logged]
    assert leaked == []
