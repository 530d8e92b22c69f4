"""Each function's IAM policy allows every AWS call its handler makes (recorded against moto).

The handlers run as the other integration tests run them (signed REST calls through
chalice.test.Client, events through `client.lambda_.invoke`); every boto3 call made while a
handler runs is attributed to that function and checked against the policy chalicelib/iam.py
renders for it. Scheduled and stream functions get a default scenario (trackers that transfer,
validate and write to CloudWatch Logs; traces, among them a console login; then the schedule's
events or the stream's records); any other function added to app.py needs an entry in SCENARIOS.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

import app as app_module
from chalicelib import export, iam, packaging
from chalicelib import stage_names as env
from chalicelib.clock import FixedClock
from chalicelib.cloudtrail import convert_event
from chalicelib.config import Settings
from chalicelib.local import events
from chalicelib.stage_names import StageNames
from chalicelib.wiring import build
from tests.conftest import DOMAIN, NOW_MS, PROJECT
from tests.iam_calls import CallRecorder, Need, allows, recording, required
from tests.integration.test_data_events import get_object_event, s3_event

JSON = {"Content-Type": "application/json"}
CLOUDTRAIL = pathlib.Path(__file__).parent.parent / "fixtures" / "cloudtrail"


@pytest.fixture(autouse=True)
def recorder(aws: None) -> Iterator[CallRecorder]:
    """Installed before the services are built, so that every client they make reports."""
    from chalicelib.aws import client  # noqa: PLC0415

    client.cache_clear()
    found = CallRecorder()
    with recording(found):
        yield found
    client.cache_clear()


def key_lookup(key_id: str) -> tuple[str, frozenset[str], frozenset[tuple[str, str]]]:
    kms = boto3.client("kms", region_name="us-east-1")
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    aliases = kms.list_aliases(KeyId=meta["KeyId"])["Aliases"]
    tags = kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"]
    return (
        meta["Arn"],
        frozenset(a["AliasName"] for a in aliases),
        frozenset((t["TagKey"], t["TagValue"]) for t in tags),
    )


def policy_for(function: str, settings: Settings, dlq_url: str) -> dict[str, Any]:
    names = StageNames.for_stage("test", {
        env.EXPORT_BUCKET: settings.export_bucket,
        env.INGEST_DLQ_URL: dlq_url,
    })
    spec = next(f for f in packaging.describe(app_module.app) if f.name == function)
    grants = iam.grants_for(spec, packaging.function_name(spec, "test"))
    return iam.policy(grants, iam.LiteralNames(names))


def post(client: Any, path: str, body: Any) -> Any:
    return client.http.post(path, headers=JSON, body=json.dumps(body).encode())


def api_scenario(client: Any, monkeypatch: pytest.MonkeyPatch, clock: FixedClock) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="audit-archive")
    s3.create_bucket(Bucket="customer-data")
    kms_key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    trace = {
        "trace_name": "createServer", "trace_rating": "normal", "trace_type": "ApiCall",
        "time": NOW_MS - 60_000, "service_type": "ECS", "resource_type": "ecs",
        "resource_id": "srv-1", "resource_name": "web-1", "source_ip": "192.0.2.10",
        "user": {"id": "u-alice", "name": "alice", "domain": {"id": DOMAIN, "name": "acme"}},
    }
    assert post(client, f"/v3/{PROJECT}/traces", {"traces": [trace]}).status_code == 200
    for query in ("", "?service_type=ECS", "?user=alice", "?resource_id=srv-1",
                  "?trace_name=createServer", "?trace_rating=normal"):
        assert client.http.get(f"/v3/{PROJECT}/traces{query}").status_code == 200
    # An export too large to answer inline goes through the trace bucket.
    monkeypatch.setattr(export, "MAX_INLINE_BYTES", 10)
    exported = client.http.get(f"/v3/{PROJECT}/traces/export")
    assert exported.status_code == 303, exported.body
    tracker = {
        "tracker_type": "system", "tracker_name": "system",
        "obs_info": {"bucket_name": "audit-archive", "file_prefix_name": "cts",
                     "is_obs_created": False},
        "is_support_trace_files_encryption": True, "kms_id": kms_key,
    }
    created = post(client, f"/v3/{PROJECT}/tracker", tracker)
    assert created.status_code == 201, created.body
    data_tracker = {
        "tracker_type": "data", "tracker_name": "writes",
        "data_bucket": {"data_bucket_name": "customer-data", "data_event": ["WRITE"]},
        "obs_info": {"bucket_name": "new-archive-bucket", "is_obs_created": True},
    }
    assert post(client, f"/v3/{PROJECT}/tracker", data_tracker).status_code == 201
    checked = post(client, f"/v3/{DOMAIN}/checkbucket", {"buckets": [
        {"bucket_name": "audit-archive", "bucket_location": "us-east-1", "kms_id": kms_key},
        {"bucket_name": "missing-bucket", "bucket_location": "us-east-1"},
    ]})
    assert checked.status_code == 200, checked.body
    tags = f"/v3/{PROJECT}/cts-tracker/{created.json_body['id']}/tags"
    assert post(client, f"{tags}/create", {"tags": [{"key": "k", "value": "v"}]}).status_code == 204
    for path in ("trackers", "quotas", "user-resources", "operations"):
        assert client.http.get(f"/v3/{PROJECT}/{path}").status_code == 200
    assert client.http.get(f"/v3/{DOMAIN}/resources").status_code == 200
    deleted = client.http.delete(f"/v3/{PROJECT}/trackers?tracker_name=writes&tracker_type=data")
    assert deleted.status_code == 204


def ingest_scenario(client: Any, monkeypatch: pytest.MonkeyPatch, clock: FixedClock) -> None:
    good = {"project_id": PROJECT, "traces": [{
        "trace_name": "deleteServer", "trace_rating": "warning", "trace_type": "ApiCall",
        "time": NOW_MS - 1000, "service_type": "ECS", "resource_type": "ecs",
        "source_ip": "192.0.2.1", "user": {"id": "u", "name": "bob"},
    }]}
    event = client.events.generate_sqs_event(
        [json.dumps(good), "not json: parked in the dead-letter queue"], "opencts-test-ingest"
    )
    client.lambda_.invoke("ingest_queue", event)


def cloudtrail_scenario(client: Any, monkeypatch: pytest.MonkeyPatch, clock: FixedClock) -> None:
    for path in sorted(CLOUDTRAIL.glob("*.json")):
        envelope = json.loads(path.read_text())
        clock.current_ms = convert_event(envelope)["time"] + 60_000
        client.lambda_.invoke("cloudtrail_events", envelope)


def s3_events_scenario(client: Any, monkeypatch: pytest.MonkeyPatch, clock: FixedClock) -> None:
    client.lambda_.invoke("s3_object_events", s3_event("customer-data", "invoices/1.pdf"))
    client.lambda_.invoke("s3_object_events", s3_event("someone-elses-bucket", "x"))
    client.lambda_.invoke("cloudtrail_events", get_object_event("customer-data", "a.csv"))


def _session_with_trackers(client: Any, monkeypatch: pytest.MonkeyPatch, clock: FixedClock) -> None:
    """What the scheduled and stream functions work on: trackers that transfer (encrypted,
    validated, to CloudWatch Logs too), a data tracker, and traces, among them a console login."""
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in ("audit-archive", "customer-data"):
        s3.create_bucket(Bucket=bucket)
    kms_key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    system = {
        "tracker_type": "system", "tracker_name": "system", "is_lts_enabled": True,
        "obs_info": {"bucket_name": "audit-archive", "file_prefix_name": "cts"},
        "is_support_trace_files_encryption": True, "kms_id": kms_key,
        "is_support_validate": True,
    }
    assert post(client, f"/v3/{PROJECT}/tracker", system).status_code in (201, 409)  # 409: again
    data = {
        "tracker_type": "data", "tracker_name": "writes",
        "data_bucket": {"data_bucket_name": "customer-data", "data_event": ["WRITE"]},
        "obs_info": {"bucket_name": "audit-archive", "file_prefix_name": "data",
                     "bucket_lifecycle": 30},
    }
    assert post(client, f"/v3/{PROJECT}/tracker", data).status_code in (201, 409)
    base = {"trace_rating": "normal", "trace_type": "ConsoleAction", "time": NOW_MS - 60_000,
            "user": {"id": "u-alice", "name": "alice", "domain": {"id": DOMAIN}}}
    traces = [
        {**base, "trace_name": "login", "service_type": "IAM", "resource_type": "user",
         "source_ip": "203.0.113.9"},
        {**base, "trace_name": "deleteVolume", "service_type": "EVS", "resource_type": "evs",
         "trace_rating": "warning", "source_ip": "192.0.2.1"},
    ]
    assert post(client, f"/v3/{PROJECT}/traces", {"traces": traces}).status_code == 200
    client.lambda_.invoke("s3_object_events", s3_event("customer-data", "invoices/1.pdf"))


def schedule_scenario(name: str) -> Scenario:
    """A scheduled function's default scenario: a transfer cycle and a digest hour later."""

    def run(client: Any, monkeypatch: pytest.MonkeyPatch, clock: FixedClock) -> None:
        _session_with_trackers(client, monkeypatch, clock)
        for later_ms in (6 * 60_000, 66 * 60_000, 126 * 60_000):
            clock.current_ms = NOW_MS + later_ms
            when = datetime.datetime.fromtimestamp(clock.current_ms / 1000, datetime.UTC)
            client.lambda_.invoke(name, events.scheduled_event(f"opencts-test-{name}", when,
                                                                "us-east-1"))

    return run


def stream_scenario(name: str) -> Scenario:
    """A stream function's default scenario: the traces table's new records, as Lambda's
    DynamoDB stream mapping delivers them (chalice.test has no stream event generator)."""

    def run(client: Any, monkeypatch: pytest.MonkeyPatch, clock: FixedClock) -> None:
        _session_with_trackers(client, monkeypatch, clock)
        table = boto3.client("dynamodb", region_name="us-east-1").describe_table(
            TableName="opencts-test-traces")["Table"]
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        arn = table["LatestStreamArn"]
        records = []
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records += streams.get_records(ShardIterator=iterator)["Records"]
        assert records
        client.lambda_.invoke(name, events.dynamodb_event(records, arn, "us-east-1"))

    return run


def scenario_for(function: iam.FunctionSpec) -> Scenario | None:
    if function.name in SCENARIOS:
        return SCENARIOS[function.name]
    if function.kind == "schedule":
        return schedule_scenario(function.name)
    if function.kind == "dynamodb":
        return stream_scenario(function.name)
    return None


def login_audit_scenario(client: Any, monkeypatch: pytest.MonkeyPatch, clock: FixedClock) -> None:
    """The stream scenario with the audit on (SMN_Topic set): the console login from outside the
    whitelist raises the alarm."""
    topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="login-alarms")
    current = app_module.services()
    audited = dataclasses.replace(
        current.settings,
        login_audit_env=(("SMN_Topic", topic["TopicArn"]), ("IP", "198.51.100.0/24")),
    )
    app_module.use_services(build(audited, clock))
    stream_scenario("login_audit")(client, monkeypatch, clock)


Scenario = Callable[[Any, pytest.MonkeyPatch, FixedClock], None]
# function -> what it does in a realistic session, through the handlers Chalice runs.
SCENARIOS: dict[str, Scenario] = {
    "api_handler": api_scenario,
    "ingest_queue": ingest_scenario,
    "cloudtrail_events": cloudtrail_scenario,
    "s3_object_events": s3_events_scenario,
    "login_audit": login_audit_scenario,
}


FUNCTIONS = {f.name: f for f in packaging.describe(app_module.app)}


def test_every_function_has_a_scenario() -> None:
    """Schedules and stream handlers get a default one; others need an entry in SCENARIOS."""
    missing = {name for name, f in FUNCTIONS.items() if scenario_for(f) is None}
    assert missing == set(), f"add a scenario to SCENARIOS for {sorted(missing)}"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_the_policy_allows_every_call_the_function_makes(
    function: str,
    recorder: CallRecorder,
    client: Any,
    created: dict[str, str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    clock: FixedClock,
) -> None:
    if function == "s3_object_events":
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="customer-data")
        body = {
            "tracker_type": "data", "tracker_name": "writes",
            "data_bucket": {"data_bucket_name": "customer-data",
                            "data_event": ["WRITE", "READ"]},
        }
        assert post(client, f"/v3/{PROJECT}/tracker", body).status_code == 201
    # Calls are attributed by the name of the handler Chalice runs for them.
    original_invoke = client.lambda_.invoke
    original_request = client.http.request

    def invoke(name: str, event: Any = None) -> Any:
        with recorder.function(name):
            return original_invoke(name, event)

    def request(*args: Any, **kwargs: Any) -> Any:
        with recorder.function("api_handler"):
            return original_request(*args, **kwargs)

    monkeypatch.setattr(client.lambda_, "invoke", invoke)
    monkeypatch.setattr(client.http, "request", request)

    scenario = scenario_for(FUNCTIONS[function])
    assert scenario is not None, f"add a scenario to SCENARIOS for {function}"
    scenario(client, monkeypatch, clock)

    calls = [c for c in recorder.calls if c.function == function]
    assert calls, f"the {function} scenario made no AWS call"
    policy = policy_for(function, settings, created["ingest_dlq_url"])
    denied: list[tuple[str, Need]] = []
    for call in calls:
        for need in required(call, key_lookup):
            if not allows(policy, need):
                denied.append((call.operation, need))
    assert denied == [], f"{function}'s policy refuses calls it makes: {denied}"


def test_the_checker_refuses_what_the_policy_does_not_grant(
    created: dict[str, str], settings: Settings
) -> None:
    """The check has teeth: calls outside a function's grants are refused."""
    policy = policy_for("ingest_queue", settings, created["ingest_dlq_url"])
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/opencts-test-traces"
    assert allows(policy, Need("dynamodb:BatchWriteItem", table))
    assert not allows(policy, Need("dynamodb:DeleteItem", table))
    assert not allows(policy, Need("dynamodb:BatchWriteItem", table + "-other"))
    assert not allows(policy, Need("s3:PutObject", "arn:aws:s3:::opencts-test-exports/exports/x"))
    api = policy_for("api_handler", settings, created["ingest_dlq_url"])
    keys_arn, keys_aliases, _ = key_lookup(settings.keys_kms_key)
    assert allows(api, Need("kms:Decrypt", keys_arn, keys_aliases))
    assert not allows(api, Need("kms:Decrypt", keys_arn, frozenset({"alias/someone-else"})))
    assert allows(api, Need("s3:PutObject", "arn:aws:s3:::their-bucket/x"))
    # A tracker's bucket in another account is refused (the aws:ResourceAccount condition).
    assert not allows(api, Need("s3:PutObject", "arn:aws:s3:::their-bucket/x", account="999"))
    assert not allows(api, Need("dynamodb:DeleteTable", table))


def test_digest_public_keys_are_readable_by_tag_only(settings: Settings) -> None:
    kms = boto3.client("kms", region_name="us-east-1")
    tags = [{"TagKey": k, "TagValue": v} for k, v in iam.digest_key_tags("test").items()]
    rotated_out = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY", Tags=tags)
    foreign = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    policy = iam.policy([iam.DIGEST_PUBLIC_KEYS],
                        iam.LiteralNames(StageNames.for_stage("test")))
    arn, aliases, found = key_lookup(rotated_out["KeyMetadata"]["KeyId"])
    assert allows(policy, Need("kms:GetPublicKey", arn, aliases, tags=found))
    arn, aliases, found = key_lookup(foreign["KeyMetadata"]["KeyId"])
    assert not allows(policy, Need("kms:GetPublicKey", arn, aliases, tags=found))


def test_the_default_scenarios_deliver_what_lambda_would(
    client: Any, monkeypatch: pytest.MonkeyPatch, clock: FixedClock
) -> None:
    """For the scheduled and stream functions other branches add: their default scenarios run
    here, with the not-yet-existing functions' invocations captured."""
    captured: list[tuple[str, Any]] = []
    real_invoke = client.lambda_.invoke

    def invoke(name: str, event: Any = None) -> Any:
        if name in FUNCTIONS:
            return real_invoke(name, event)
        captured.append((name, event))
        return None

    monkeypatch.setattr(client.lambda_, "invoke", invoke)
    stream_scenario("future_matcher")(client, monkeypatch, clock)
    schedule_scenario("future_transfer")(client, monkeypatch, clock)
    (stream_name, stream_event), *scheduled = captured
    assert stream_name == "future_matcher"
    images = [r["dynamodb"]["NewImage"] for r in stream_event["Records"]]
    assert {r["eventSource"] for r in stream_event["Records"]} == {"aws:dynamodb"}
    assert any(i.get("trace_name", {}).get("S") == "login" for i in images)
    assert [name for name, _ in scheduled] == ["future_transfer"] * 3
    assert {e["detail-type"] for _, e in scheduled} == {"Scheduled Event"}
