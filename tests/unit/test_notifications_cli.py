"""`opencts notifications ...` against the app served over real HTTP (moto as AWS), signed with
an access key from the environment, as a user runs it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib import cli
from chalicelib.access_keys import KeyUser
from chalicelib.config import Settings
from chalicelib.permissions import FULL_ACCESS
from chalicelib.wiring import Services, build
from tests.conftest import DOMAIN, PROJECT, trace

TOPIC = "arn:aws:sns:us-east-1:123456789012:alerts"
BODY = {
    "notification_name": "cli_deletes",
    "operation_type": "customized",
    "operations": [
        {"service_type": "ECS", "resource_type": "ecs", "trace_names": ["deleteServer"]}
    ],
    "topic_id": TOPIC,
}


@pytest.fixture
def services(
    created: dict[str, str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Services]:
    for name in ("OPENCTS_ENDPOINT", "OPENCTS_PROJECT", "OPENCTS_DOMAIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    svc = build(dataclasses.replace(settings, ingest_dlq_url=created["ingest_dlq_url"]))
    svc.projects.register(PROJECT, DOMAIN)
    key = svc.keys.create(
        user=KeyUser("u-cli", "cli"), domain_id=DOMAIN, project_ids=[PROJECT], policy=FULL_ACCESS
    )
    monkeypatch.setenv("OPENCTS_ACCESS_KEY_ID", key.key.access_key_id)
    monkeypatch.setenv("OPENCTS_SECRET_ACCESS_KEY", key.secret)
    app_module.use_services(svc)
    yield svc
    app_module.use_services(None)


@pytest.fixture
def run(endpoint: str, services: Services, capsys: pytest.CaptureFixture[str]) -> Any:
    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main(["--endpoint", endpoint, "--project", PROJECT, *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def test_create_list_update_delete(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "n.json"
    path.write_text(json.dumps(BODY))
    code, out, _ = run("notifications", "create", str(path), "--output", "json")
    assert code == 0
    created = json.loads(out)
    assert created["status"] == "enabled"

    code, out, _ = run("notifications", "list")
    assert code == 0
    assert "cli_deletes" in out
    assert created["notification_id"] in out

    update = {**BODY, "notification_id": created["notification_id"], "status": "disabled"}
    code, out, _ = run("notifications", "update", json.dumps(update))
    assert code == 0
    assert "disabled" in out

    code, out, _ = run("notifications", "list", "--type", "fun")
    assert (code, out.strip()) == (0, "(no notifications)")

    code, out, _ = run("notifications", "delete", created["notification_id"])
    assert (code, out.strip()) == (0, "deleted 1 notification")
    code, out, _ = run("notifications", "list", "--output", "json")
    assert json.loads(out) == {"notifications": []}


def test_errors_reach_the_user(run: Any) -> None:
    code, _, err = run("notifications", "create", json.dumps({**BODY, "topic_id": "nope"}))
    assert code == cli.EXIT_FAILED
    assert "CTS.1203" in err
    assert "topic_id" in err
    code, _, err = run("notifications", "test", "--event", "{}")
    assert code == cli.EXIT_USAGE
    assert "--notification, --pattern" in err


def test_test_an_event_and_recent_traces(run: Any, endpoint: str) -> None:
    event = trace(service_type="ECS", resource_type="ecs", trace_name="deleteServer")
    code, out, _ = run(
        "notifications", "test", "--notification", json.dumps(BODY), "--event", json.dumps(event)
    )
    assert (code, out.strip()) == (0, "matched: every condition matched")
    code, out, _ = run(
        "notifications",
        "test",
        "--pattern",
        '{"user": {"name": ["bob"]}}',
        "--event",
        json.dumps(event),
    )
    assert code == cli.EXIT_FAILED
    assert out.startswith("not matched: pattern: field 'user.name'")

    now = cli.now_ms()
    reported = [
        {**event, "trace_id": f"c{i}", "time": now - 60_000 + i, "trace_name": name}
        for i, name in enumerate(["deleteServer", "createServer", "deleteServer"])
    ]
    assert (
        cli.main(["--endpoint", endpoint, "--project", PROJECT, "report", json_file(reported)]) == 0
    )
    code, out, _ = run(
        "notifications",
        "test",
        "--notification",
        json.dumps(BODY),
        "--from",
        "10m",
        "--output",
        "json",
    )
    assert code == 0
    answer = json.loads(out[out.index("{") :])
    assert [t["trace_id"] for t in answer["traces"]] == ["c2", "c0"]


def json_file(data: Any) -> str:
    path = Path.cwd() / "traces.json"
    path.write_text(json.dumps(data))
    return str(path)
