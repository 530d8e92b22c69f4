"""`make package`: `chalice package --merge-template` of the real app, and of a synthetic app with
every kind of function, each linted by cfn-lint with zero findings (part of `make test`)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib import iam, packaging
from chalicelib.stage_config import sync_policies
from chalicelib.stage_names import StageNames

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("package")
    template = packaging.package(PROJECT_DIR, "dev", out, "us-east-1")
    found = packaging.lint(template)
    return {"template": json.loads(template.read_text()), "lint": found}


def test_cfn_lint_finds_nothing_in_the_packaged_app(packaged: dict[str, Any]) -> None:
    found = packaged["lint"]
    assert found.returncode == 0, found.stdout + found.stderr
    assert found.stdout == ""


def test_every_function_has_its_own_role_with_its_own_policy(packaged: dict[str, Any]) -> None:
    resources = packaged["template"]["Resources"]
    functions = packaging.describe(app_module.app)
    names = StageNames.for_stage("dev", packaging.stage_environment(PROJECT_DIR, "dev"))
    roles = set()
    for function in functions:
        props = resources[packaging.function_logical_id(function)]["Properties"]
        assert props["FunctionName"] == packaging.function_name(function, "dev")
        role = props["Role"]["Fn::GetAtt"][0]
        roles.add(role)
        policies = resources[role]["Properties"]["Policies"]
        assert len(policies) == 1
        grants = iam.grants_for(function, packaging.function_name(function, "dev"))
        assert policies[0]["PolicyDocument"] == iam.policy(grants, iam.TemplateRefs(names))
        assert "OwnLogs" in {s["Sid"] for s in policies[0]["PolicyDocument"]["Statement"]}
    assert len(roles) == len(functions)


def test_the_queue_mapping_reports_partial_failures_and_one_event_per_function(
    packaged: dict[str, Any],
) -> None:
    resources = packaged["template"]["Resources"]
    events = resources["IngestQueue"]["Properties"]["Events"]
    assert list(events) == ["IngestQueueSqsEventSource"]
    props = events["IngestQueueSqsEventSource"]["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 10
    variables = resources["IngestQueue"]["Properties"]["Environment"]["Variables"]
    assert variables["OPENCTS_INGEST_DLQ_URL"] == {"Ref": "IngestDeadLetterQueue"}
    assert variables["POWERTOOLS_SERVICE_NAME"] == "opencts"  # the stage's own values stay


def test_the_stateful_resources_and_gateway_responses_are_in(packaged: dict[str, Any]) -> None:
    resources = packaged["template"]["Resources"]
    for logical in ("TracesTable", "ControlTable", "TraceBucket", "TraceBucketPolicy",
                    "IngestMessageQueue", "IngestDeadLetterQueue", "StreamFailureQueue",
                    "NotificationsTopic", "LoginAuditTopic", "KeysKey", "DigestKey"):
        assert logical in resources
    body = resources["RestAPI"]["Properties"]["DefinitionBody"]
    assert "MISSING_AUTHENTICATION_TOKEN" in body["x-amazon-apigateway-gateway-responses"]
    assert "/v3/{project_id}/traces" in body["paths"]  # Chalice's own definition is kept


SYNTHETIC_APP = '''
    from chalice import Chalice

    app = Chalice(app_name="opencts")


    @app.route("/v3/{project_id}/traces")
    def list_traces(project_id):
        return {}


    @app.on_sqs_message(queue="opencts-dev-ingest", batch_size=10)
    def ingest_queue(event):
        return {"batchItemFailures": []}


    @app.on_dynamodb_record(
        stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/opencts-dev-traces/stream/x"
    )
    def notification_matcher(event):
        return {"batchItemFailures": []}


    @app.on_dynamodb_record(
        stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/opencts-dev-traces/stream/x"
    )
    def login_audit(event):
        return {"batchItemFailures": []}


    @app.schedule("rate(5 minutes)")
    def transfer(event):
        return None


    @app.schedule("rate(1 hour)")
    def digest(event):
        return None
'''
SYNTHETIC_GRANTS = {
    "api_handler": (iam.TRACES_READ, iam.CONTROL_READ_WRITE, iam.ACCESS_KEY_SECRETS),
    "ingest_queue": (iam.TRACES_WRITE, iam.CONTROL_RECORD, iam.INGEST_DEAD_LETTER),
    "notification_matcher": (
        iam.CONTROL_READ_WRITE, iam.ACCOUNT_TOPICS_PUBLISH, iam.ACCOUNT_FUNCTIONS_INVOKE,
    ),
    "login_audit": (iam.LOGIN_AUDIT_PUBLISH,),
    "transfer": (
        iam.TRACES_READ, iam.CONTROL_READ_WRITE, iam.ACCOUNT_BUCKETS_CHECK,
        iam.ACCOUNT_BUCKETS_WRITE, iam.ACCOUNT_BUCKETS_LIFECYCLE, iam.ACCOUNT_KEYS_ENCRYPT,
        iam.CTS_LOGS,
    ),
    "digest": (
        iam.CONTROL_READ_WRITE, iam.DIGEST_SIGN, iam.DIGEST_PUBLIC_KEYS, iam.ACCOUNT_BUCKETS_WRITE,
    ),
}


def test_an_app_with_stream_and_schedule_functions_packages_and_lints_clean(
    tmp_path: Path,
) -> None:
    """What app.py will declare once the matcher, login audit, transfer and digest are merged."""
    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    (project / "app.py").write_text(textwrap.dedent(SYNTHETIC_APP))
    (project / "requirements.txt").write_text("")
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    config["stages"] = {"dev": config["stages"]["dev"]}
    config["stages"]["dev"].pop("lambda_functions", None)
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    spec = importlib.util.spec_from_file_location("synthetic_app", project / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    functions = packaging.describe(module.app)
    assert {f.kind for f in functions} == {"api", "sqs", "dynamodb", "schedule"}
    sync_policies(project, functions, table=SYNTHETIC_GRANTS)

    template_path = packaging.package(
        project, "dev", tmp_path / "out", "us-east-1", functions, SYNTHETIC_GRANTS
    )
    found = packaging.lint(template_path)
    assert found.returncode == 0, found.stdout + found.stderr

    resources = json.loads(template_path.read_text())["Resources"]
    for name in ("NotificationMatcher", "LoginAudit"):
        events = resources[name]["Properties"]["Events"]
        assert list(events) == [f"{name}DynamodbEventSource"]  # ours merged into Chalice's
        props = events[f"{name}DynamodbEventSource"]["Properties"]
        assert props["Stream"] == {"Fn::GetAtt": ["TracesTable", "StreamArn"]}
        assert props["BisectBatchOnFunctionError"] is True
        assert props["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": ["StreamFailureQueue", "Arn"]
        }
        assert props["StartingPosition"] == "LATEST"  # Chalice's own setting stays
    assert resources["Transfer"]["Properties"]["Events"]["TransferEvent"]["Properties"] == {
        "Schedule": "rate(5 minutes)"
    }
    shutil.rmtree(project / ".chalice" / "deployments", ignore_errors=True)
