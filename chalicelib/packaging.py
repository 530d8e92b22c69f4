"""`make package`: the app as one SAM/CloudFormation template, with its stateful resources.

`chalice package --merge-template` deep-merges a template of ours into the one Chalice makes.
Ours is generated here from the app itself (`describe`: its routes and `event_sources`), so a
function added to app.py is covered without a change here, and from the IAM table
(chalicelib/iam.py), so every function gets its own least-privilege role. It adds:

- the stateful resources `opencts bootstrap` creates, with the same names
  (chalicelib/stage_names.py): tables (TTL, stream, point-in-time recovery), the trace bucket
  (public access blocked, TLS only, encrypted, versioned, optional Object Lock), the topics, the
  queues, the KMS keys;
- on every function: its name (as `chalice deploy` names it), its environment pointing at those
  resources (`Ref`/`Fn::GetAtt`), its role's policy;
- on the SQS mappings: partial batch responses; on every DynamoDB stream mapping: the traces
  table's stream by `Fn::GetAtt` (Chalice needs a literal ARN, which app.py takes from
  OPENCTS_TRACES_STREAM_ARN), partial batch responses, bisect-on-error, a retry limit and the
  on-failure queue;
- API Gateway's own errors (unknown method, missing route, throttling, ...) as CTS error bodies;
- optionally a regional custom domain mapped at `/` (the SDK keeps only scheme, host and port).

Chalice is imported only where the real app is described, so the generation itself is plain data
in, data out (tests/unit/test_packaging.py feeds it a synthetic app).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib import iam
from chalicelib import stage_names as env_names
from chalicelib.iam import LOGICAL_IDS, FunctionSpec, TemplateRefs
from chalicelib.resources import control_table_definition, traces_table_definition
from chalicelib.stage_names import StageNames

APP_NAME = "opencts"
PROJECT_DIR = Path(__file__).resolve().parent.parent
# Stream mappings: how often a failing batch is retried (halved each time by bisection) before
# it goes to the on-failure queue, and the age after which records are given up.
STREAM_MAX_RETRY_ATTEMPTS = 5
STREAM_MAX_RECORD_AGE_SECONDS = 6 * 3600
# As resources.ensure_queue creates them (SQS refuses to "create" a queue with other attributes).
QUEUE_VISIBILITY_SECONDS = 60
QUEUE_RETENTION_SECONDS = 1_209_600
INGEST_MAX_RECEIVES = 5

_KINDS = {
    "SQSEventConfig": "sqs",
    "DynamoDBEventConfig": "dynamodb",
    "ScheduledEventConfig": "schedule",
    "CloudWatchEventConfig": "cloudwatch",
    "SNSEventConfig": "sns",
    "KinesisEventConfig": "kinesis",
    "S3EventConfig": "s3",
}


# -- the app ---------------------------------------------------------------------------------------
def describe(app: Any) -> list[FunctionSpec]:
    """Every Lambda function a Chalice app deploys (without importing Chalice)."""
    functions: list[FunctionSpec] = []
    if getattr(app, "routes", None):
        functions.append(FunctionSpec("api_handler", "api"))
    for source in getattr(app, "event_sources", []):
        kind = _KINDS.get(type(source).__name__, type(source).__name__)
        detail: Any = None
        if kind == "sqs":
            detail = source.queue or str(source.queue_arn or "").rsplit(":", 1)[-1]
        elif kind == "dynamodb":
            detail = source.stream_arn
        elif kind == "schedule":
            expression = source.schedule_expression
            detail = expression if isinstance(expression, str) else expression.to_string()
        elif kind == "cloudwatch":
            detail = source.event_pattern
        functions.append(FunctionSpec(source.name, kind, detail))
    for function in getattr(app, "pure_lambda_functions", []):
        functions.append(FunctionSpec(function.name, "lambda"))
    return functions


def function_name(function: FunctionSpec, stage: str, app_name: str = APP_NAME) -> str:
    """The Lambda function's name, as `chalice deploy` gives it."""
    if function.kind == "api":
        return f"{app_name}-{stage}"
    return f"{app_name}-{stage}-{function.name}"


def cfn_name(name: str) -> str:
    """Chalice's CloudFormation logical id of a name (chalice.utils.to_cfn_resource_name)."""
    for separator in ("-", "_"):
        name = "".join(p[0].upper() + p[1:] for p in name.split(separator) if p)
    return re.sub(r"[^A-Za-z0-9]+", "", name)


def function_logical_id(function: FunctionSpec) -> str:
    return "APIHandler" if function.kind == "api" else cfn_name(function.name)


def role_logical_id(function: FunctionSpec) -> str:
    return cfn_name(function.name + "_role")


def event_logical_id(function: FunctionSpec) -> str:
    suffix = {"sqs": "-sqs-event-source", "dynamodb": "-dynamodb-event-source"}
    return cfn_name(function.name + suffix.get(function.kind, "-event"))


# -- policies --------------------------------------------------------------------------------------
def policy_files(
    functions: Sequence[FunctionSpec],
    stage: str,
    env: Mapping[str, str],
    table: Mapping[str, tuple[iam.Grant, ...]] = iam.FUNCTION_GRANTS,
) -> dict[str, iam.Policy]:
    """`chalice deploy`'s per-function policy files: {iam_policy_file: policy}."""
    renderer = iam.LiteralNames(StageNames.for_stage(stage, env))
    return {
        policy_file_name(stage, f.name): iam.policy(
            iam.grants_for(f, function_name(f, stage), table), renderer
        )
        for f in functions
    }


def policy_file_name(stage: str, function: str) -> str:
    """Relative to `.chalice/`, as `iam_policy_file` takes it."""
    return f"policies/{stage}/{function}.json"


# -- the merge template ----------------------------------------------------------------------------
def _table(definition: Mapping[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {
        k: definition[k]
        for k in ("TableName", "BillingMode", "KeySchema", "AttributeDefinitions")
    }
    if definition.get("GlobalSecondaryIndexes"):
        props["GlobalSecondaryIndexes"] = definition["GlobalSecondaryIndexes"]
    stream = definition.get("StreamSpecification") or {}
    if stream.get("StreamEnabled"):
        props["StreamSpecification"] = {"StreamViewType": stream["StreamViewType"]}
    props["TimeToLiveSpecification"] = {"AttributeName": "expires_at", "Enabled": True}
    props["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    props["SSESpecification"] = {"SSEEnabled": True}
    return _retained("AWS::DynamoDB::Table", props)


def _retained(kind: str, props: dict[str, Any]) -> dict[str, Any]:
    """Stateful: deleting the stack or replacing the resource keeps the data."""
    return {
        "Type": kind,
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": props,
    }


def _queue(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": name,
            "VisibilityTimeout": QUEUE_VISIBILITY_SECONDS,
            "MessageRetentionPeriod": QUEUE_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True,
            **extra,
        },
    }


def _key(
    description: str, spec: str, usage: str, alias: str, logical: str, stage: str
) -> dict[str, Any]:
    key = _retained(
        "AWS::KMS::Key",
        {
            "Description": description,
            "KeySpec": spec,
            "KeyUsage": usage,
            "EnableKeyRotation": spec == "SYMMETRIC_DEFAULT",
        },
    )
    if spec != "SYMMETRIC_DEFAULT":
        del key["Properties"]["EnableKeyRotation"]
    if usage == "SIGN_VERIFY":
        key["Properties"]["Tags"] = [
            {"Key": k, "Value": v} for k, v in iam.digest_key_tags(stage).items()
        ]
    alias_resource = {
        "Type": "AWS::KMS::Alias",
        "Properties": {"AliasName": alias, "TargetKeyId": {"Ref": logical}},
    }
    return {logical: key, logical + "Alias": alias_resource}


def stateful_resources(names: StageNames) -> dict[str, Any]:
    """The resources `opencts bootstrap` creates, as CloudFormation."""
    ids = LOGICAL_IDS
    bucket_name: Any = names.bucket or {
        "Fn::Sub": f"opencts-{names.stage}-${{AWS::AccountId}}-${{AWS::Region}}"
    }
    bucket = _retained(
        "AWS::S3::Bucket",
        {
            "BucketName": bucket_name,
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "ObjectLockEnabled": {"Fn::If": ["ObjectLock", True, {"Ref": "AWS::NoValue"}]},
            "ObjectLockConfiguration": {
                "Fn::If": [
                    "ObjectLock",
                    {
                        "ObjectLockEnabled": "Enabled",
                        "Rule": {
                            "DefaultRetention": {
                                "Mode": "GOVERNANCE",
                                "Days": {"Ref": "ObjectLockDays"},
                            }
                        },
                    },
                    {"Ref": "AWS::NoValue"},
                ]
            },
        },
    )
    bucket_arn = {"Fn::GetAtt": [ids[iam.TRACE_BUCKET], "Arn"]}
    resources: dict[str, Any] = {
        ids[iam.TRACES_TABLE]: _table(traces_table_definition(names.traces_table)),
        ids[iam.CONTROL_TABLE]: _table(control_table_definition(names.control_table)),
        ids[iam.INGEST_DLQ]: _queue(names.ingest_dlq),
        ids[iam.INGEST_QUEUE]: _queue(
            names.ingest_queue,
            RedrivePolicy={
                "deadLetterTargetArn": {"Fn::GetAtt": [ids[iam.INGEST_DLQ], "Arn"]},
                "maxReceiveCount": INGEST_MAX_RECEIVES,
            },
        ),
        ids[iam.STREAM_FAILURE_QUEUE]: _queue(names.stream_failure_queue),
        ids[iam.TRACE_BUCKET]: bucket,
        ids[iam.TRACE_BUCKET] + "Policy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": ids[iam.TRACE_BUCKET]},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [tls_only_statement(bucket_arn)],
                },
            },
        },
        ids[iam.NOTIFICATIONS_TOPIC]: {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": names.notifications_topic},
        },
        ids[iam.LOGIN_AUDIT_TOPIC]: {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": names.login_audit_topic},
        },
    }
    resources.update(
        _key(
            "OpenCTS: encrypts the secrets of access keys",
            "SYMMETRIC_DEFAULT",
            "ENCRYPT_DECRYPT",
            names.keys_key_alias,
            ids[iam.KEYS_KEY],
            names.stage,
        )
    )
    resources.update(
        _key(
            "OpenCTS: signs digest files (RSASSA_PKCS1_V1_5_SHA_256)",
            "RSA_2048",
            "SIGN_VERIFY",
            names.digest_key_alias,
            ids[iam.DIGEST_KEY],
            names.stage,
        )
    )
    return resources


def tls_only_statement(bucket_arn: Any) -> dict[str, Any]:
    """Refuses every request made without TLS (a bucket policy statement)."""
    objects: Any = (
        {"Fn::Sub": ["${Arn}/*", {"Arn": bucket_arn}]}
        if isinstance(bucket_arn, dict)
        else f"{bucket_arn}/*"
    )
    return {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, objects],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def environment(env: Mapping[str, str]) -> dict[str, Any]:
    """The functions' variables naming the template's resources."""
    ids = LOGICAL_IDS
    out: dict[str, Any] = {
        env_names.TRACES_TABLE: {"Ref": ids[iam.TRACES_TABLE]},
        env_names.CONTROL_TABLE: {"Ref": ids[iam.CONTROL_TABLE]},
        env_names.TRACES_STREAM_ARN: {"Fn::GetAtt": [ids[iam.TRACES_TABLE], "StreamArn"]},
        env_names.INGEST_QUEUE: {"Fn::GetAtt": [ids[iam.INGEST_QUEUE], "QueueName"]},
        env_names.INGEST_DLQ_URL: {"Ref": ids[iam.INGEST_DLQ]},
        env_names.STREAM_FAILURE_QUEUE_URL: {"Ref": ids[iam.STREAM_FAILURE_QUEUE]},
        env_names.STREAM_FAILURE_QUEUE_ARN: {
            "Fn::GetAtt": [ids[iam.STREAM_FAILURE_QUEUE], "Arn"]
        },
        env_names.EXPORT_BUCKET: {"Ref": ids[iam.TRACE_BUCKET]},
        env_names.NOTIFICATIONS_TOPIC_ARN: {"Ref": ids[iam.NOTIFICATIONS_TOPIC]},
        env_names.LOGIN_AUDIT_TOPIC: {"Ref": ids[iam.LOGIN_AUDIT_TOPIC]},
        env_names.LOGIN_AUDIT_REGION: {"Ref": "AWS::Region"},
        env_names.KEYS_KMS_KEY: {"Ref": ids[iam.KEYS_KEY] + "Alias"},
        env_names.KEYS_KMS_KEY_ARN: {"Fn::GetAtt": [ids[iam.KEYS_KEY], "Arn"]},
        env_names.DIGEST_KMS_KEY: {"Ref": ids[iam.DIGEST_KEY] + "Alias"},
        env_names.DIGEST_KMS_KEY_ARN: {"Fn::GetAtt": [ids[iam.DIGEST_KEY], "Arn"]},
    }
    if not env.get(env_names.DOMAIN_ID):
        out[env_names.DOMAIN_ID] = {"Ref": "AWS::AccountId"}
    return out


# API Gateway's own errors (it answers them before any function runs), as CTS bodies.
GATEWAY_ERRORS: dict[str, tuple[int | None, str, str]] = {
    # A path or method no route declares (e.g. HEAD /v3/p/traces/extra).
    "MISSING_AUTHENTICATION_TOKEN": (404, "CTS.0009", "No such resource: $context.path"),
    "RESOURCE_NOT_FOUND": (404, "CTS.0009", "No such resource: $context.path"),
    "UNAUTHORIZED": (401, "CTS.0401", "The request is not signed by a valid access key"),
    "ACCESS_DENIED": (403, "CTS.0403", "The access key may not perform this operation"),
    "REQUEST_TOO_LARGE": (413, "CTS.0003", "Request body is too large"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "CTS.0008", "Unsupported media type"),
    "BAD_REQUEST_BODY": (400, "CTS.0002", "Malformed request body"),
    "BAD_REQUEST_PARAMETERS": (400, "CTS.0001", "Invalid parameters"),
    "THROTTLED": (429, "CTS.0429", "Too many requests; retry later"),
    "QUOTA_EXCEEDED": (429, "CTS.0429", "Too many requests; retry later"),
    "INTEGRATION_TIMEOUT": (504, "CTS.0500", "The request timed out; retry later"),
    "DEFAULT_4XX": (None, "CTS.0400", "The request was refused"),
    "DEFAULT_5XX": (None, "CTS.0500", "Internal error; the request id identifies it"),
}


def gateway_responses() -> dict[str, Any]:
    """`x-amazon-apigateway-gateway-responses` for the REST API's definition."""
    out: dict[str, Any] = {}
    for response_type, (status, code, message) in GATEWAY_ERRORS.items():
        body = json.dumps(
            {"error_code": code, "error_msg": message, "request_id": "$context.requestId"}
        )
        response: dict[str, Any] = {
            "responseParameters": {
                "gatewayresponse.header.X-Request-Id": "context.requestId",
                "gatewayresponse.header.Content-Type": "'application/json'",
            },
            "responseTemplates": {"application/json": body},
        }
        if status is not None:
            response["statusCode"] = str(status)
        out[response_type] = response
    return out


def custom_domain() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Parameters, conditions and resources of an optional regional custom domain at `/`."""
    parameters = {
        "ApiDomainName": {
            "Type": "String",
            "Default": "",
            "Description": "A custom domain for the API (empty: none), e.g. cts.example.com",
        },
        "ApiCertificateArn": {
            "Type": "String",
            "Default": "",
            "Description": "An ACM certificate for ApiDomainName, in the stack's region",
        },
    }
    conditions = {"HasApiDomain": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ApiDomainName"}, ""]}]}}
    resources = {
        "ApiDomain": {
            "Type": "AWS::ApiGateway::DomainName",
            "Condition": "HasApiDomain",
            "Properties": {
                "DomainName": {"Ref": "ApiDomainName"},
                "RegionalCertificateArn": {"Ref": "ApiCertificateArn"},
                "EndpointConfiguration": {"Types": ["REGIONAL"]},
                "SecurityPolicy": "TLS_1_2",
            },
        },
        "ApiDomainMapping": {
            "Type": "AWS::ApiGateway::BasePathMapping",
            "Condition": "HasApiDomain",
            # SAM names the stage resource <Api><StageName>Stage; the mapping needs it to exist.
            "DependsOn": ["RestAPIapiStage"],
            "Properties": {
                "DomainName": {"Ref": "ApiDomain"},
                "RestApiId": {"Ref": "RestAPI"},
                "Stage": "api",
            },
        },
    }
    return parameters, conditions, resources


def merge_template(
    functions: Sequence[FunctionSpec],
    stage: str,
    env: Mapping[str, str],
    table: Mapping[str, tuple[iam.Grant, ...]] = iam.FUNCTION_GRANTS,
    app_name: str = APP_NAME,
) -> dict[str, Any]:
    """The template to merge into `chalice package`'s own."""
    names = StageNames.for_stage(stage, env)
    resources = stateful_resources(names)
    refs = TemplateRefs(names)
    variables = environment(env)
    for function in functions:
        logical = function_logical_id(function)
        name = function_name(function, stage, app_name)
        for taken in (logical, role_logical_id(function)):
            if taken in resources:
                raise ValueError(f"function {function.name!r} collides with resource {taken}")
        properties: dict[str, Any] = {
            "FunctionName": name,
            "Environment": {"Variables": variables},
        }
        events = _event_overrides(function, names)
        if events:
            properties["Events"] = events
        resources[logical] = {"Properties": properties}
        role = role_logical_id(function)
        resources[role] = {
            "Properties": {
                "Policies": [
                    {
                        "PolicyName": role + "Policy",
                        "PolicyDocument": iam.policy(iam.grants_for(function, name, table), refs),
                    }
                ]
            }
        }
        if function.kind == "api":
            resources["RestAPI"] = {
                "Properties": {
                    "DefinitionBody": {
                        "x-amazon-apigateway-gateway-responses": gateway_responses()
                    }
                }
            }
    parameters, conditions, domain_resources = custom_domain()
    if any(f.kind == "api" for f in functions):
        resources.update(domain_resources)
    else:
        parameters, conditions = {}, {}
    parameters["ObjectLockDays"] = {
        "Type": "Number",
        "Default": 0,
        "MinValue": 0,
        "Description": "Object Lock default retention (GOVERNANCE) of the trace bucket in days; "
        "0: no Object Lock. Only takes effect when the bucket is created.",
    }
    conditions["ObjectLock"] = {"Fn::Not": [{"Fn::Equals": [{"Ref": "ObjectLockDays"}, 0]}]}
    outputs = {
        "TracesTableName": {"Value": {"Ref": LOGICAL_IDS[iam.TRACES_TABLE]}},
        "TracesStreamArn": {"Value": {"Fn::GetAtt": [LOGICAL_IDS[iam.TRACES_TABLE], "StreamArn"]}},
        "ControlTableName": {"Value": {"Ref": LOGICAL_IDS[iam.CONTROL_TABLE]}},
        "TraceBucketName": {"Value": {"Ref": LOGICAL_IDS[iam.TRACE_BUCKET]}},
        "IngestQueueUrl": {"Value": {"Ref": LOGICAL_IDS[iam.INGEST_QUEUE]}},
        "IngestDeadLetterQueueUrl": {"Value": {"Ref": LOGICAL_IDS[iam.INGEST_DLQ]}},
        "StreamFailureQueueUrl": {"Value": {"Ref": LOGICAL_IDS[iam.STREAM_FAILURE_QUEUE]}},
        "NotificationsTopicArn": {"Value": {"Ref": LOGICAL_IDS[iam.NOTIFICATIONS_TOPIC]}},
        "LoginAuditTopicArn": {"Value": {"Ref": LOGICAL_IDS[iam.LOGIN_AUDIT_TOPIC]}},
        "DigestKeyArn": {"Value": {"Fn::GetAtt": [LOGICAL_IDS[iam.DIGEST_KEY], "Arn"]}},
    }
    if "HasApiDomain" in conditions:
        outputs["ApiDomainTarget"] = {
            "Condition": "HasApiDomain",
            "Description": "Point the custom domain's DNS record (CNAME/alias) here",
            "Value": {"Fn::GetAtt": ["ApiDomain", "RegionalDomainName"]},
        }
    return {
        "Parameters": parameters,
        "Conditions": conditions,
        "Resources": resources,
        "Outputs": outputs,
    }


def mapping_options(kind: str, failure_destination: Any) -> dict[str, Any]:
    """The event source mapping settings of an SQS or DynamoDB stream function (the same in the
    template and, after `chalice deploy`, set by `opencts bootstrap --event-sources`)."""
    if kind == "sqs":
        return {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
    if kind == "dynamodb":
        return {
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": STREAM_MAX_RETRY_ATTEMPTS,
            "MaximumRecordAgeInSeconds": STREAM_MAX_RECORD_AGE_SECONDS,
            "DestinationConfig": {"OnFailure": {"Destination": failure_destination}},
        }
    return {}


def _event_overrides(function: FunctionSpec, names: StageNames) -> dict[str, Any]:
    ids = LOGICAL_IDS
    if function.kind == "sqs":
        # Chalice's queue ARN (an Fn::Sub of the queue's name) stays: a merged intrinsic would
        # mix with it. The functions' environment refers to the queue, so it exists first.
        return {event_logical_id(function): {"Properties": mapping_options("sqs", None)}}
    if function.kind == "dynamodb":
        properties = mapping_options(
            "dynamodb", {"Fn::GetAtt": [ids[iam.STREAM_FAILURE_QUEUE], "Arn"]}
        )
        properties["DestinationConfig"]["OnFailure"]["Type"] = "SQS"  # SAM's own key
        # The traces table is the only table with a stream.
        properties["Stream"] = {"Fn::GetAtt": [ids[iam.TRACES_TABLE], "StreamArn"]}
        return {event_logical_id(function): {"Properties": properties}}
    return {}


# -- the command -----------------------------------------------------------------------------------
def stage_environment(project_dir: Path, stage: str) -> dict[str, str]:
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    stage_config = config.get("stages", {}).get(stage)
    if stage_config is None:
        raise SystemExit(f"no stage {stage!r} in {project_dir}/.chalice/config.json")
    env: dict[str, str] = dict(stage_config.get("environment_variables", {}))
    return env


def real_functions() -> list[FunctionSpec]:
    import app  # noqa: PLC0415 - the Chalice app, imported only when packaging it

    return describe(app.app)


def package(
    project_dir: Path,
    stage: str,
    out_dir: Path,
    region: str,
    functions: Sequence[FunctionSpec] | None = None,
    table: Mapping[str, tuple[iam.Grant, ...]] = iam.FUNCTION_GRANTS,
) -> Path:
    """Writes `<out_dir>/merge.json` and `chalice package`'s `sam.json` and `deployment.zip`
    (functions: the project's app, described; default: this project's app.py)."""
    env = stage_environment(project_dir, stage)
    out_dir.mkdir(parents=True, exist_ok=True)
    merge = out_dir / "merge.json"
    described = real_functions() if functions is None else functions
    merge.write_text(json.dumps(merge_template(described, stage, env, table), indent=2) + "\n")
    # app.py reads these literals while Chalice packages it; the stage's own values keep the
    # queue's name in the event source mapping equal to the template's queue.
    process_env = dict(os.environ, AWS_DEFAULT_REGION=region)
    for name in (env_names.INGEST_QUEUE, env_names.TRACES_STREAM_ARN):
        if env.get(name):
            process_env[name] = env[name]
    process_env.setdefault(env_names.INGEST_QUEUE, StageNames.for_stage(stage, env).ingest_queue)
    chalice = Path(sys.executable).parent / "chalice"
    subprocess.run(  # noqa: S603 - our own venv's chalice, fixed arguments
        [str(chalice), "--project-dir", str(project_dir), "package", "--stage", stage,
         "--merge-template", str(merge), str(out_dir)],
        check=True,
        env=process_env,
    )
    return out_dir / "sam.json"


def lint(template: Path) -> subprocess.CompletedProcess[str]:
    """cfn-lint's findings on the template (returncode 0: none)."""
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    return subprocess.run(  # noqa: S603 - our own venv's cfn-lint on our own template
        [str(cfn_lint), str(template)], capture_output=True, text=True, check=False
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.packaging", description=__doc__)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", default="out", help="directory for sam.json and deployment.zip")
    parser.add_argument("--project-dir", default=str(PROJECT_DIR))
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
    )
    parser.add_argument("--lint", action="store_true", help="then run cfn-lint on the template")
    args = parser.parse_args(argv)
    template = package(Path(args.project_dir), args.stage, Path(args.out), args.region)
    print(template)
    if args.lint:
        found = lint(template)
        print(found.stdout + found.stderr, end="")
        return found.returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
