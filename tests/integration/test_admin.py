"""`opencts admin`: bootstrap and project registration against moto, as an operator would."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import boto3
import pytest

from chalicelib import admin, keys_cli
from chalicelib.resources import ensure_table, traces_table_definition
from chalicelib.wiring import build


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    parser = argparse.ArgumentParser()
    admin.add_parser(parser.add_subparsers(dest="command"))
    assert admin.run(parser.parse_args(["admin", *argv])) == 0
    return json.loads(capsys.readouterr().out)


def test_bootstrap_is_idempotent_and_prints_the_stage_environment(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    first = run(capsys, "--stage", "qa", "--domain-id", "210987654321", "bootstrap",
                "--export-bucket", "opencts-qa-exports")
    again = run(capsys, "--stage", "qa", "--domain-id", "210987654321", "bootstrap",
                "--export-bucket", "opencts-qa-exports")
    assert first == again
    env = first["environment_variables"]
    assert env["OPENCTS_TRACES_TABLE"] == "opencts-qa-traces"
    assert env["OPENCTS_DOMAIN_ID"] == "210987654321"
    assert env["OPENCTS_INGEST_DLQ_URL"].endswith("opencts-qa-ingest-dlq")
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    table = ddb.describe_table(TableName="opencts-qa-traces")["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        "by_time", "by_resource_id", "by_trace_name", "by_user", "by_service_resource",
        "by_service", "by_record_time",
    }
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_IMAGE"
    ttl = ddb.describe_time_to_live(TableName="opencts-qa-traces")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="opencts-qa-ingest")["QueueUrl"]
    redrive = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
    assert "opencts-qa-ingest-dlq" in redrive["Attributes"]["RedrivePolicy"]
    boto3.client("s3", region_name="us-east-1").head_bucket(Bucket="opencts-qa-exports")


def test_projects_add_show_and_shards(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "--stage", "qa", "bootstrap")
    added = run(capsys, "--stage", "qa", "--domain-id", "210987654321", "projects", "add", "p-1")
    assert added == {"project_id": "p-1", "domain_id": "210987654321", "shard_plan": [[0, 1]]}
    sharded = run(capsys, "--stage", "qa", "projects", "shards", "p-1", "32")
    assert sharded["shard_plan"][-1][1] == 32
    assert run(capsys, "--stage", "qa", "projects", "show", "p-1") == sharded
    with pytest.raises(Exception, match="between 1 and 64"):
        run(capsys, "--stage", "qa", "projects", "shards", "p-1", "65")


def test_bootstrap_creates_the_keys_kms_key_once(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    first = run(capsys, "--stage", "qa", "bootstrap")
    again = run(capsys, "--stage", "qa", "bootstrap")
    assert first["created"]["keys_kms_key_id"] == again["created"]["keys_kms_key_id"]
    assert first["environment_variables"]["OPENCTS_KEYS_KMS_KEY"] == "alias/opencts-qa-keys"
    kms = boto3.client("kms", region_name="us-east-1")
    meta = kms.describe_key(KeyId="alias/opencts-qa-keys")["KeyMetadata"]
    assert (meta["KeyUsage"], meta["KeySpec"]) == ("ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT")


def keys(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    parser = argparse.ArgumentParser()
    keys_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["keys", "--stage", "qa", "--domain-id", "210987654321", *argv])
    assert keys_cli.run(args, sys.stdout) == 0
    return json.loads(capsys.readouterr().out)


def test_keys_create_list_disable_enable_delete(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "--stage", "qa", "bootstrap")
    created = keys(capsys, "create", "--user-id", "u-1", "--user-name", "ops",
                   "--project", "p-1", "--project", "p-2", "--policy", "CTS ReadOnlyAccess")
    key_id = created["access_key_id"]
    assert len(created["secret_access_key"]) == 40
    assert created["project_ids"] == ["p-1", "p-2"]
    assert created["policy"] == "CTS ReadOnlyAccess"
    custom = keys(capsys, "create", "--user-id", "u-2", "--user-name", "ingest",
                  "--project", "p-1", "--actions", "cts:trace:report, cts:trace:list")
    assert custom["policy"] == ["cts:trace:list", "cts:trace:report"]

    listed = keys(capsys, "list")["keys"]
    assert {k["access_key_id"] for k in listed} == {key_id, custom["access_key_id"]}
    assert all("secret" not in json.dumps(k) for k in listed)
    # The control table holds the secret only as KMS ciphertext.
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    items = ddb.scan(TableName="opencts-qa-control")["Items"]
    assert created["secret_access_key"] not in json.dumps(items)

    # Key management is audited in the key's registered projects, by the operator's AWS identity
    run(capsys, "--stage", "qa", "--domain-id", "210987654321", "projects", "add", "p-1")
    assert keys(capsys, "disable", key_id)["status"] == "disabled"
    settings = admin.settings_for("qa", "210987654321")
    (audited,) = [t for t in _cts_traces(settings, "p-1") if t["trace_name"] == "disableAccessKey"]
    assert audited["resource_type"] == "accessKey"
    assert audited["user"]["account_id"] == "123456789012"
    assert audited["user"]["principal_urn"].startswith("arn:aws:")
    assert json.loads(audited["response"])["status"] == "disabled"
    assert keys(capsys, "enable", key_id)["status"] == "active"
    assert keys(capsys, "delete", key_id) == {"deleted": key_id}
    assert [k["access_key_id"] for k in keys(capsys, "list")["keys"]] == [custom["access_key_id"]]
    with pytest.raises(SystemExit, match=r"CTS\.0009"):
        keys(capsys, "delete", key_id)
    with pytest.raises(SystemExit, match=r"CTS\.0001"):
        keys(capsys, "create", "--user-id", "u", "--user-name", "n", "--project", "p-1",
             "--actions", "cts:nothing:here")


def _cts_traces(settings: Any, project_id: str) -> list[dict[str, Any]]:
    api = build(settings).api
    return list(api.list_traces(project_id, {"service_type": ["CTS"], "limit": ["50"]})["traces"])


def test_created_keys_are_audited_without_their_secret(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "--stage", "qa", "bootstrap")
    run(capsys, "--stage", "qa", "--domain-id", "210987654321", "projects", "add", "p-9")
    created = keys(capsys, "create", "--user-id", "u-9", "--user-name", "auditor",
                   "--project", "p-9", "--policy", "CTS FullAccess")
    (audited,) = _cts_traces(admin.settings_for("qa", "210987654321"), "p-9")
    assert audited["trace_name"] == "createAccessKey"
    assert created["secret_access_key"] not in json.dumps(audited)
    assert json.loads(audited["response"])["secret_access_key"] == "******"


def test_bootstrap_adds_the_indexes_an_older_traces_table_lacks(aws: None) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    older = traces_table_definition("opencts-old-traces")
    older["GlobalSecondaryIndexes"] = [
        i for i in older["GlobalSecondaryIndexes"] if i["IndexName"] != "by_record_time"
    ]
    older["AttributeDefinitions"] = [
        a for a in older["AttributeDefinitions"] if a["AttributeName"] not in ("r_pk", "r_sk")
    ]
    ddb.create_table(**older)
    ensure_table(ddb, traces_table_definition("opencts-old-traces"))
    table = ddb.describe_table(TableName="opencts-old-traces")["Table"]
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert indexes["by_record_time"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert len(indexes) == 7
