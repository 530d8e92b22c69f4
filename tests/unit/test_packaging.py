"""The merge template from an app's description: a synthetic app with every kind of function
proves the stream, queue and schedule paths before app.py has them all."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from chalice import Chalice
from chalice.utils import to_cfn_resource_name

from chalicelib import iam, packaging
from chalicelib import stage_names as env
from chalicelib.iam import FunctionSpec

STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/opencts-dev-traces/stream/2026"
TABLE = {
    "api_handler": (iam.TRACES_READ,),
    "ingest_queue": (iam.TRACES_WRITE,),
    "notification_matcher": (iam.CONTROL_READ, iam.ACCOUNT_TOPICS_PUBLISH),
    "transfer": (iam.TRACES_READ, iam.ACCOUNT_BUCKETS_WRITE, iam.CTS_LOGS),
    "cloudtrail_events": (iam.TRACES_WRITE,),
}
SYNTHETIC = [
    FunctionSpec("api_handler", "api"),
    FunctionSpec("ingest_queue", "sqs", "opencts-dev-ingest"),
    FunctionSpec("notification_matcher", "dynamodb", STREAM),
    FunctionSpec("transfer", "schedule", "rate(5 minutes)"),
    FunctionSpec("cloudtrail_events", "cloudwatch", {"source": ["aws.ec2"]}),
]


def synthetic_template() -> dict[str, Any]:
    return packaging.merge_template(SYNTHETIC, "dev", {}, TABLE)


def test_describe_reads_routes_and_every_event_source_of_a_chalice_app() -> None:
    app = Chalice(app_name="synthetic")

    @app.route("/")
    def index() -> dict[str, str]:
        return {}

    @app.on_sqs_message(queue="q1")
    def on_queue(event: Any) -> None: ...

    @app.on_dynamodb_record(stream_arn=STREAM)
    def on_stream(event: Any) -> None: ...

    @app.schedule("rate(5 minutes)")
    def every_five(event: Any) -> None: ...

    @app.on_cw_event({"source": ["aws.s3"]})
    def on_event(event: Any) -> None: ...

    @app.lambda_function()
    def direct(event: Any, context: Any) -> None: ...

    assert packaging.describe(app) == [
        FunctionSpec("api_handler", "api"),
        FunctionSpec("on_queue", "sqs", "q1"),
        FunctionSpec("on_stream", "dynamodb", STREAM),
        FunctionSpec("every_five", "schedule", "rate(5 minutes)"),
        FunctionSpec("on_event", "cloudwatch", {"source": ["aws.s3"]}),
        FunctionSpec("direct", "lambda"),
    ]


@pytest.mark.parametrize(
    "name", ["api_handler_role", "ingest_queue", "a-b_c", "x", "notification_matcher-event"]
)
def test_logical_ids_are_chalices_own(name: str) -> None:
    assert packaging.cfn_name(name) == to_cfn_resource_name(name)


def test_a_stream_handler_reads_the_tables_stream_with_every_safety_option() -> None:
    resources = synthetic_template()["Resources"]
    event = resources["NotificationMatcher"]["Properties"]["Events"][
        "NotificationMatcherDynamodbEventSource"
    ]["Properties"]
    assert event == {
        "Stream": {"Fn::GetAtt": ["TracesTable", "StreamArn"]},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": packaging.STREAM_MAX_RETRY_ATTEMPTS,
        "MaximumRecordAgeInSeconds": packaging.STREAM_MAX_RECORD_AGE_SECONDS,
        "DestinationConfig": {"OnFailure": {
            "Type": "SQS", "Destination": {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]},
        }},
    }
    policy = resources["NotificationMatcherRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    sids = {s["Sid"]: s for s in policy["Statement"]}
    assert sids["TriggerStream"]["Resource"] == [{"Fn::Sub": "${TracesTable.Arn}/stream/*"}]
    assert sids["StreamFailures"]["Resource"] == [{"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}]
    assert sids["NotificationTopics"]["Condition"] == iam.SAME_ACCOUNT


def test_the_queue_handler_reports_partial_batch_failures() -> None:
    resources = synthetic_template()["Resources"]
    events = resources["IngestQueue"]["Properties"]["Events"]
    assert events == {"IngestQueueSqsEventSource": {
        "Properties": {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
    }}


def test_every_function_is_named_has_its_role_and_the_stage_environment() -> None:
    resources = synthetic_template()["Resources"]
    for function in SYNTHETIC:
        logical = packaging.function_logical_id(function)
        props = resources[logical]["Properties"]
        assert props["FunctionName"] == packaging.function_name(function, "dev")
        variables = props["Environment"]["Variables"]
        assert variables[env.TRACES_STREAM_ARN] == {"Fn::GetAtt": ["TracesTable", "StreamArn"]}
        assert variables[env.DIGEST_KMS_KEY] == {"Ref": "DigestKeyAlias"}
        assert variables[env.LOGIN_AUDIT_TOPIC] == {"Ref": "LoginAuditTopic"}
        assert variables[env.DOMAIN_ID] == {"Ref": "AWS::AccountId"}
        role = resources[packaging.role_logical_id(function)]["Properties"]["Policies"]
        assert len(role) == 1
        actions = {a for s in role[0]["PolicyDocument"]["Statement"] for a in s["Action"]}
        assert "logs:PutLogEvents" in actions
        assert not any("*" in a for a in actions)
    transfer = resources["TransferRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert {s["Sid"] for s in transfer["Statement"]} == {
        "OwnLogs", "Tracing", "TracesRead", "TraceFiles", "CtsLogGroup",
    }


def test_a_function_without_grants_cannot_be_packaged() -> None:
    unknown = [*SYNTHETIC, FunctionSpec("digest", "schedule", "rate(1 hour)")]
    with pytest.raises(KeyError, match="digest"):
        packaging.merge_template(unknown, "dev", {}, TABLE)


def test_stateful_resources_match_bootstrap() -> None:
    resources = synthetic_template()["Resources"]
    traces = resources["TracesTable"]
    assert traces["DeletionPolicy"] == "Retain"
    props = traces["Properties"]
    assert props["TableName"] == "opencts-dev-traces"
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "StreamSpecification" not in resources["ControlTable"]["Properties"]
    bucket = resources["TraceBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    statement = resources["TraceBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert resources["DigestKey"]["Properties"]["KeySpec"] == "RSA_2048"
    assert resources["DigestKey"]["Properties"]["KeyUsage"] == "SIGN_VERIFY"
    assert resources["DigestKeyAlias"]["Properties"]["AliasName"] == "alias/opencts-dev-digest"
    assert resources["DigestKey"]["Properties"]["Tags"] == [
        {"Key": "opencts-stage", "Value": "dev"},
        {"Key": "opencts-purpose", "Value": "digest-signing"},
    ]
    assert resources["KeysKeyAlias"]["Properties"]["AliasName"] == "alias/opencts-dev-keys"
    assert resources["IngestMessageQueue"]["Properties"]["QueueName"] == "opencts-dev-ingest"
    assert resources["IngestDeadLetterQueue"]["Properties"]["QueueName"] == "opencts-dev-ingest-dlq"


def test_configured_names_win_over_the_convention() -> None:
    template = packaging.merge_template(SYNTHETIC, "dev", {
        env.TRACES_TABLE: "audit-traces", env.EXPORT_BUCKET: "my-archive",
        env.DOMAIN_ID: "123",
    }, TABLE)
    resources = template["Resources"]
    assert resources["TracesTable"]["Properties"]["TableName"] == "audit-traces"
    assert resources["TraceBucket"]["Properties"]["BucketName"] == "my-archive"
    assert env.DOMAIN_ID not in resources["APIHandler"]["Properties"]["Environment"]["Variables"]


def render(template: str) -> str:
    """What API Gateway makes of a response template (the $context variables it fills in)."""
    values = {"$context.requestId": "3f2a-req", "$context.path": "/api/v3/p/traces/extra"}
    return re.sub(r"\$context\.\w+", lambda m: values[m.group(0)], template)


def test_api_gateways_own_errors_carry_the_cts_body() -> None:
    responses = synthetic_template()["Resources"]["RestAPI"]["Properties"]["DefinitionBody"][
        "x-amazon-apigateway-gateway-responses"
    ]
    missing = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["statusCode"] == "404"
    body = json.loads(render(missing["responseTemplates"]["application/json"]))
    assert body == {
        "error_code": "CTS.0009",
        "error_msg": "No such resource: /api/v3/p/traces/extra",
        "request_id": "3f2a-req",
    }
    assert missing["responseParameters"]["gatewayresponse.header.X-Request-Id"] == (
        "context.requestId"
    )
    for name in ("DEFAULT_4XX", "DEFAULT_5XX", "ACCESS_DENIED", "THROTTLED", "REQUEST_TOO_LARGE"):
        body = json.loads(render(responses[name]["responseTemplates"]["application/json"]))
        assert set(body) == {"error_code", "error_msg", "request_id"}
        assert re.fullmatch(r"CTS\.\d{4}", body["error_code"])


def test_without_routes_there_is_no_api_domain() -> None:
    template = packaging.merge_template(SYNTHETIC[1:], "dev", {}, TABLE)
    assert "ApiDomain" not in template["Resources"]
    assert "RestAPI" not in template["Resources"]
    assert "ApiDomainName" not in template["Parameters"]
