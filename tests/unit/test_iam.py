"""One least-privilege policy per function: the table covers app.py, no wildcard actions, data
resources named or confined to the account, and the committed policy files are up to date."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib import iam, packaging
from chalicelib import stage_names as env
from chalicelib.iam import FunctionSpec, Grant, LiteralNames, Res, TemplateRefs
from chalicelib.stage_names import StageNames

PROJECT_DIR = Path(__file__).resolve().parents[2]
CONFIG = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
FUNCTIONS = packaging.describe(app_module.app)
DATA_SERVICES = ("dynamodb", "s3", "sqs", "sns", "kms", "lambda")


def all_policies() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for stage, stage_config in CONFIG["stages"].items():
        names = StageNames.for_stage(stage, stage_config.get("environment_variables", {}))
        for function in FUNCTIONS:
            grants = iam.grants_for(function, packaging.function_name(function, stage))
            out.append((stage, function.name, iam.policy(grants, LiteralNames(names))))
    return out


def test_every_function_of_app_py_has_an_entry_in_the_table() -> None:
    assert {f.name for f in FUNCTIONS} >= {"api_handler", "ingest_queue", "cloudtrail_events"}
    missing = {f.name for f in FUNCTIONS} - set(iam.FUNCTION_GRANTS)
    assert missing == set(), f"add {sorted(missing)} to chalicelib/iam.py FUNCTION_GRANTS"


def test_a_function_without_an_entry_is_refused() -> None:
    with pytest.raises(KeyError, match="FUNCTION_GRANTS"):
        iam.grants_for(FunctionSpec("transfer", "schedule", "rate(5 minutes)"), "opencts-dev-t")


@pytest.mark.parametrize(("stage", "function", "policy"), all_policies(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_no_wildcard_action_and_no_unscoped_data_resource(
    stage: str, function: str, policy: dict[str, Any]
) -> None:
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            assert not set(action) & {"*", "?"}, (function, action)
        for resource in statement["Resource"]:
            if resource == "*":  # only for actions IAM cannot scope (X-Ray's writes)
                assert set(statement["Action"]) <= iam.NO_RESOURCE_ACTIONS, (function, statement)
                continue
            service = resource.split(":")[2]
            tail = resource.split(":", 5)[-1]
            if service in DATA_SERVICES and tail in ("*", "*/*", "key/*", "function:*"):
                # Any name is only allowed within the account, or for the stage's keys by alias.
                condition = statement.get("Condition", {})
                by_alias = condition.get("ForAnyValue:StringEquals", {}).get("kms:ResourceAliases")
                assert condition == iam.SAME_ACCOUNT or (
                    by_alias and all(a.startswith(f"alias/opencts-{stage}-") for a in by_alias)
                ), (function, statement["Sid"], resource)
            if service == "dynamodb":
                assert f"table/opencts-{stage}-" in resource, resource


def test_the_stage_tables_are_named_exactly() -> None:
    names = StageNames.for_stage("prod")
    policy = iam.policy(iam.grants_for(FUNCTIONS[0], "opencts-prod"), LiteralNames(names))
    resources = {r for s in policy["Statement"] for r in s["Resource"]}
    assert "arn:aws:dynamodb:*:*:table/opencts-prod-traces" in resources
    assert "arn:aws:dynamodb:*:*:table/opencts-prod-control/index/*" in resources


def test_a_key_named_by_arn_is_granted_by_arn_without_alias_condition() -> None:
    arn = "arn:aws:kms:eu-west-1:111122223333:key/0f1e2d3c"
    names = StageNames.for_stage("dev", {env.KEYS_KMS_KEY: arn})
    policy = iam.policy([iam.ACCESS_KEY_SECRETS], LiteralNames(names))
    assert policy["Statement"] == [{
        "Sid": "AccessKeySecrets", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [arn],
    }]


def test_trigger_permissions_come_from_the_trigger() -> None:
    names = StageNames.for_stage("dev")
    stream = FunctionSpec("matcher", "dynamodb", "arn:aws:dynamodb:us-east-1:1:table/t/stream/x")
    table = {"matcher": (iam.NOTIFICATIONS_PUBLISH,)}
    policy = iam.policy(iam.grants_for(stream, "opencts-dev-matcher", table), LiteralNames(names))
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["TriggerStream"]["Resource"] == [
        "arn:aws:dynamodb:*:*:table/opencts-dev-traces/stream/*"
    ]
    assert by_sid["StreamFailures"]["Resource"] == ["arn:aws:sqs:*:*:opencts-dev-stream-failures"]
    assert by_sid["OwnLogs"]["Resource"][1] == (
        "arn:aws:logs:*:*:log-group:/aws/lambda/opencts-dev-matcher:*"
    )
    queue = FunctionSpec("ingest_queue", "sqs", "opencts-dev-ingest")
    template = iam.policy(iam.grants_for(queue, "f"), TemplateRefs(names))
    trigger = next(s for s in template["Statement"] if s["Sid"] == "TriggerQueue")
    assert trigger["Resource"] == [{"Fn::GetAtt": ["IngestMessageQueue", "Arn"]}]


def test_a_grant_mixing_named_and_account_wide_resources_gets_two_statements() -> None:
    mixed = Grant("Mixed", ("s3:GetObject",), (Res(iam.TRACE_BUCKET_OBJECTS, "exports/"),
                                               Res(iam.ACCOUNT_BUCKET_OBJECTS)))
    policy = iam.policy([mixed], LiteralNames(StageNames.for_stage("dev")))
    assert [(s["Sid"], s.get("Condition")) for s in policy["Statement"]] == [
        ("Mixed", None), ("MixedInAccount", iam.SAME_ACCOUNT),
    ]


def test_committed_policy_files_are_up_to_date() -> None:
    """`make policies` regenerates them after app.py or chalicelib/iam.py changed."""
    for stage, stage_config in CONFIG["stages"].items():
        assert "iam_policy_file" not in stage_config, f"{stage}: no stage-wide policy"
        assert stage_config["autogen_policy"] is False
        files = packaging.policy_files(FUNCTIONS, stage, stage_config["environment_variables"])
        per_function = stage_config.get("lambda_functions", {})
        for function, (name, expected) in zip(FUNCTIONS, files.items(), strict=True):
            assert per_function.get(function.name, {}).get("iam_policy_file") == name, (
                f"{stage}/{function.name}: run `make policies`"
            )
            path = PROJECT_DIR / ".chalice" / name
            assert path.is_file(), f"{path}: run `make policies`"
            assert json.loads(path.read_text()) == expected, f"{path}: run `make policies`"


def test_every_digest_key_of_the_stage_is_granted_by_its_tags() -> None:
    """Rotation: old keys lose the alias but keep the tags, so old digests stay verifiable."""
    names = StageNames.for_stage("prod")
    (literal,) = iam.policy([iam.DIGEST_PUBLIC_KEYS], LiteralNames(names))["Statement"]
    condition = {"StringEquals": {
        "aws:ResourceTag/opencts-stage": "prod",
        "aws:ResourceTag/opencts-purpose": "digest-signing",
    }}
    assert literal["Resource"] == ["arn:aws:kms:*:*:key/*"]
    assert literal["Condition"] == condition
    (template,) = iam.policy([iam.DIGEST_PUBLIC_KEYS], TemplateRefs(names))["Statement"]
    assert template["Condition"] == condition
    (signing,) = iam.policy([iam.DIGEST_SIGN], TemplateRefs(names))["Statement"]
    assert signing["Resource"] == [{"Fn::GetAtt": ["DigestKey", "Arn"]}]
    assert "Condition" not in signing
