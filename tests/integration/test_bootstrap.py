"""`opencts bootstrap --stage S`, then `chalice deploy --stage S`, as an operator runs them: real
processes against moto's server (ThreadedMotoServer), in a copy of the project.

moto cannot import Chalice's REST API definition (Swagger 2.0; moto's ImportRestApi and
PutRestApi read OpenAPI 3 only): `openapi3_rest_api` hands moto the same paths as an OpenAPI 3
document. That is the only thing mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.apigateway import models as apigateway
from moto.server import ThreadedMotoServer

from chalicelib import packaging, resources

PROJECT_DIR = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ACCOUNT = "123456789012"
STAGE = "qa"


def openapi3(doc: dict[str, Any]) -> dict[str, Any]:
    if "swagger" not in doc:
        return doc
    return {"openapi": "3.0.1", "info": {"description": "", **doc["info"]}, "paths": doc["paths"]}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    backend = apigateway.APIGatewayBackend
    import_api, put_api = backend.import_rest_api, backend.put_rest_api

    def import_rest_api(self: Any, api_doc: dict[str, Any], fail_on_warnings: bool) -> Any:
        return import_api(self, openapi3(api_doc), fail_on_warnings)

    def put_rest_api(self: Any, function_id: str, api_doc: dict[str, Any],
                     fail_on_warnings: bool, mode: str = "merge") -> Any:
        return put_api(self, function_id, openapi3(api_doc), fail_on_warnings, mode)

    backend.import_rest_api = import_rest_api  # type: ignore[method-assign]
    backend.put_rest_api = put_rest_api  # type: ignore[method-assign]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    backend.import_rest_api, backend.put_rest_api = import_api, put_api  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What an operator has: a checkout (app.py, chalicelib, .chalice/config.json)."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copy(PROJECT_DIR / "app.py", root)
    shutil.copy(PROJECT_DIR / "requirements.txt", root)
    shutil.copytree(PROJECT_DIR / "chalicelib", root / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".chalice").mkdir()
    shutil.copy(PROJECT_DIR / ".chalice" / "config.json", root / ".chalice")
    shutil.copytree(PROJECT_DIR / ".chalice" / "policies", root / ".chalice" / "policies")
    return root


def operator_env(endpoint: str, project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENCTS_"))}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        PYTHONPATH=str(project),
        **extra,
    )
    return env


def opencts(endpoint: str, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", "bootstrap", "--project-dir", str(project),
         *args],
        env=operator_env(endpoint, project), cwd=project, capture_output=True, text=True,
        timeout=300, check=False,
    )


def chalice_deploy(endpoint: str, project: Path, report: dict[str, Any]) -> str:
    """The documented deploy command, with the variables bootstrap prints for it."""
    variables = dict(v.split("=", 1) for v in report["deploy"].split(" chalice ")[0].split())
    done = subprocess.run(
        [str(Path(sys.executable).parent / "chalice"), "--project-dir", str(project),
         "deploy", "--stage", STAGE],
        env=operator_env(endpoint, project, **variables), capture_output=True, text=True,
        timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def mappings_of(lam: Any, function: str) -> list[dict[str, Any]]:
    return [m for m in lam.list_event_source_mappings()["EventSourceMappings"]
            if m["FunctionArn"].endswith(f":function:{function}")]


def aws(endpoint: str, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def runs(endpoint: str, project: Path) -> list[dict[str, Any]]:
    out = []
    for _ in range(2):
        done = opencts(endpoint, project, "--stage", STAGE, "--object-lock",
                       "--object-lock-days", "30")
        assert done.returncode == 0, done.stderr
        out.append(json.loads(done.stdout))
    return out


def test_bootstrap_twice_creates_every_resource_once(runs: list[dict[str, Any]]) -> None:
    first, second = runs
    assert first["resources"] == second["resources"]
    assert first["environment_variables"] == second["environment_variables"]
    assert second["written"] == []  # nothing left to change
    assert first["account"] == ACCOUNT


def test_tables_have_ttl_stream_and_point_in_time_recovery(
    endpoint: str, runs: list[dict[str, Any]]
) -> None:
    ddb = aws(endpoint, "dynamodb")
    for table in ("opencts-qa-traces", "opencts-qa-control"):
        ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
        backups = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    traces = ddb.describe_table(TableName="opencts-qa-traces")["Table"]
    assert traces["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert runs[0]["resources"]["traces_stream_arn"] == traces["LatestStreamArn"]
    assert len(ddb.list_tables()["TableNames"]) == 2


def test_the_trace_bucket_is_private_tls_only_encrypted_versioned_and_locked(
    endpoint: str, runs: list[dict[str, Any]]
) -> None:
    s3 = aws(endpoint, "s3")
    bucket = f"opencts-qa-{ACCOUNT}-{REGION}"
    assert runs[0]["resources"]["trace_bucket"] == bucket
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(statement["Resource"]) == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("GOVERNANCE", 30)


def test_topics_queues_and_keys(endpoint: str, runs: list[dict[str, Any]]) -> None:
    created = runs[0]["resources"]
    topics = {t["TopicArn"] for t in aws(endpoint, "sns").list_topics()["Topics"]}
    assert {created["notifications_topic_arn"], created["login_audit_topic_arn"]} <= topics
    assert created["login_audit_topic_arn"].endswith(":opencts-qa-login-audit")
    sqs = aws(endpoint, "sqs")
    redrive = sqs.get_queue_attributes(QueueUrl=created["ingest_queue_url"],
                                       AttributeNames=["RedrivePolicy"])["Attributes"]
    assert json.loads(redrive["RedrivePolicy"])["deadLetterTargetArn"].endswith(
        ":opencts-qa-ingest-dlq"
    )
    assert created["stream_failure_queue_url"].endswith("/opencts-qa-stream-failures")
    kms = aws(endpoint, "kms")
    digest = kms.describe_key(KeyId="alias/opencts-qa-digest")["KeyMetadata"]
    assert (digest["KeySpec"], digest["KeyUsage"]) == ("RSA_2048", "SIGN_VERIFY")
    assert digest["Arn"] == created["digest_kms_key_arn"]
    tags = kms.list_resource_tags(KeyId=digest["KeyId"])["Tags"]
    assert {t["TagKey"]: t["TagValue"] for t in tags} == {
        "opencts-stage": "qa", "opencts-purpose": "digest-signing",
    }
    keys = kms.describe_key(KeyId="alias/opencts-qa-keys")["KeyMetadata"]
    assert (keys["KeySpec"], keys["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert kms.get_key_rotation_status(KeyId=keys["KeyId"])["KeyRotationEnabled"] is True
    assert len(kms.list_keys()["Keys"]) == 2  # the second run made none


def test_config_json_records_the_stage_and_keeps_everything_else(
    project: Path, runs: list[dict[str, Any]]
) -> None:
    config = json.loads((project / ".chalice" / "config.json").read_text())
    original = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    assert {k: v for k, v in config["stages"].items() if k != STAGE} == original["stages"]
    qa = config["stages"][STAGE]
    assert qa["environment_variables"] == runs[0]["environment_variables"]
    env = qa["environment_variables"]
    assert env["OPENCTS_DIGEST_KMS_KEY"] == "alias/opencts-qa-digest"
    assert env["SMN_Topic"] == runs[0]["resources"]["login_audit_topic_arn"]
    assert env["OPENCTS_DOMAIN_ID"] == ACCOUNT
    assert qa["autogen_policy"] is False
    assert "iam_policy_file" not in qa
    functions = packaging.describe(__import__("app").app)
    expected = packaging.policy_files(functions, STAGE, env)
    for function in functions:
        name = qa["lambda_functions"][function.name]["iam_policy_file"]
        written = json.loads((project / ".chalice" / name).read_text())
        assert written == expected[name]
    # The bucket was not known before bootstrap: the policies now name it exactly.
    api_policy = json.loads((project / ".chalice" / "policies/qa/api_handler.json").read_text())
    exports = next(s for s in api_policy["Statement"] if s["Sid"] == "Exports")
    assert exports["Resource"] == [f"arn:aws:s3:::opencts-qa-{ACCOUNT}-{REGION}/exports/*"]


def test_chalice_deploy_then_event_source_options_then_an_upgrade(
    endpoint: str, project: Path, runs: list[dict[str, Any]]
) -> None:
    report = runs[0]
    chalice_deploy(endpoint, project, report)
    functions = packaging.describe(__import__("app").app)
    lam, iam_client = aws(endpoint, "lambda"), aws(endpoint, "iam")
    deployed = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    config = json.loads((project / ".chalice" / "config.json").read_text())["stages"][STAGE]
    for function in functions:
        name = packaging.function_name(function, STAGE)
        assert deployed[name]["Environment"]["Variables"] == report["environment_variables"]
        role = deployed[name]["Role"].rsplit("/", 1)[-1]
        assert role == f"opencts-{STAGE}-{function.name}"  # one role per function
        (policy_name,) = iam_client.list_role_policies(RoleName=role)["PolicyNames"]
        document = iam_client.get_role_policy(RoleName=role, PolicyName=policy_name)
        policy_file = config["lambda_functions"][function.name]["iam_policy_file"]
        assert document["PolicyDocument"] == json.loads(
            (project / ".chalice" / policy_file).read_text()
        )
    rules = {r["Name"] for r in aws(endpoint, "events").list_rules()["Rules"]}
    assert rules == {r["rule"] for r in report["event_rules_created_by_chalice_deploy"]}

    # chalice deploy cannot set partial batch responses: bootstrap sets them afterwards.
    (mapping,) = mappings_of(lam, "opencts-qa-ingest_queue")
    assert not mapping.get("FunctionResponseTypes")
    done = opencts(endpoint, project, "--stage", STAGE, "--event-sources")
    assert done.returncode == 0, done.stderr
    (mapping,) = mappings_of(lam, "opencts-qa-ingest_queue")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["EventSourceArn"].endswith(":opencts-qa-ingest")

    # An upgrade: bootstrap again (nothing to change), then deploy again.
    again = opencts(endpoint, project, "--stage", STAGE)
    assert json.loads(again.stdout)["written"] == []
    assert "Updating lambda function: opencts-qa" in chalice_deploy(endpoint, project, report)


def test_object_lock_is_refused_for_a_bucket_that_exists_without_it(
    endpoint: str, project: Path, runs: list[dict[str, Any]]
) -> None:
    aws(endpoint, "s3").create_bucket(
        Bucket="plain-bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    done = opencts(endpoint, project, "--stage", "lockless", "--bucket", "plain-bucket",
                   "--object-lock")
    assert done.returncode != 0
    assert "exists without Object Lock" in done.stderr
    config = json.loads((project / ".chalice" / "config.json").read_text())
    assert "lockless" not in config["stages"]  # nothing recorded for a failed bootstrap


def test_tables_made_by_an_older_bootstrap_get_point_in_time_recovery(
    endpoint: str, project: Path
) -> None:
    # A traces table made by hand, without a stream, TTL or point-in-time recovery.
    ddb = aws(endpoint, "dynamodb")
    definition = resources.traces_table_definition("opencts-old-traces")
    del definition["StreamSpecification"]
    newest = definition["GlobalSecondaryIndexes"].pop()  # an index a newer version added
    still_used = {"pk"} | {
        k["AttributeName"] for i in definition["GlobalSecondaryIndexes"] for k in i["KeySchema"]
    }
    definition["AttributeDefinitions"] = [
        a for a in definition["AttributeDefinitions"] if a["AttributeName"] in still_used
    ]
    ddb.create_table(**definition)
    done = opencts(endpoint, project, "--stage", "old")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["resources"]["indexes_added"] == [newest["IndexName"]]
    indexes = ddb.describe_table(TableName="opencts-old-traces")["Table"]["GlobalSecondaryIndexes"]
    assert newest["IndexName"] in {i["IndexName"] for i in indexes}
    backups = ddb.describe_continuous_backups(TableName="opencts-old-traces")
    assert backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
        "PointInTimeRecoveryStatus"
    ] == "ENABLED"
    stream = ddb.describe_table(TableName="opencts-old-traces")["Table"]["StreamSpecification"]
    assert stream == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    ttl = ddb.describe_time_to_live(TableName="opencts-old-traces")["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
