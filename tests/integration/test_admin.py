"""`opencts admin`: bootstrap and project registration against moto, as an operator would."""

from __future__ import annotations

import argparse
import json
from typing import Any

import boto3
import pytest

from chalicelib import admin


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
        "by_service",
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
