"""`opencts admin ...`: operator commands that act on the stage's AWS resources directly, with the
operator's AWS credentials (not through the API): create the stateful resources, register
projects, set a hot project's write shards.

Target: `--stage S` uses the stage's default names in the account and region of the environment;
without `--stage`, the local stack described by the nearest `.opencts/local.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
from typing import Any

from chalicelib.aws import client
from chalicelib.clock import SystemClock
from chalicelib.config import Settings
from chalicelib.control import DynamoControlTable
from chalicelib.projects import ProjectRegistry
from chalicelib.resources import ensure_all


def find_local_state(start: pathlib.Path | None = None) -> dict[str, Any] | None:
    here = (start or pathlib.Path.cwd()).resolve()
    for folder in (here, *here.parents):
        path = folder / ".opencts" / "local.json"
        if path.is_file():
            state: dict[str, Any] = json.loads(path.read_text())
            return state
    return None


def settings_for(stage: str | None, domain_id: str | None) -> Settings:
    if stage:
        env = dict(os.environ, OPENCTS_STAGE=stage)
        env.pop("OPENCTS_AWS_ENDPOINT", None)
        for name in (
            "OPENCTS_TRACES_TABLE",
            "OPENCTS_CONTROL_TABLE",
            "OPENCTS_INGEST_QUEUE",
            "OPENCTS_KEYS_KMS_KEY",
        ):
            env.pop(name, None)
        env.setdefault("OPENCTS_EXPORT_BUCKET", "")
        settings = Settings.from_env(env)
    else:
        state = find_local_state()
        if state is None:
            raise SystemExit("no --stage given and no .opencts/local.json (is `make run` up?)")
        resources = state.get("resources", {})
        settings = Settings.from_env(
            {
                "AWS_REGION": state.get("region", "us-east-1"),
                "OPENCTS_STAGE": state.get("stage", "local"),
                "OPENCTS_AWS_ENDPOINT": state["aws_endpoint"],
                "OPENCTS_TRACES_TABLE": resources.get("traces_table", "opencts-local-traces"),
                "OPENCTS_CONTROL_TABLE": resources.get("control_table", "opencts-local-control"),
                "OPENCTS_DOMAIN_ID": state.get("domain_id", "123456789012"),
                "OPENCTS_KEYS_KMS_KEY": resources.get("keys_kms_key", "alias/opencts-local-keys"),
            }
        )
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    if domain_id:
        settings = dataclasses.replace(settings, domain_id=domain_id)
    return settings


def add_parser(subparsers: Any) -> None:
    admin = subparsers.add_parser("admin", help="operator commands on the stage's AWS resources")
    admin.set_defaults(run=lambda args, _out: run(args))
    admin.add_argument("--stage", help="deployment stage; default: the local stack")
    admin.add_argument("--domain-id", help="domain (account) id; default: the stage's")
    actions = admin.add_subparsers(dest="admin_command", required=True)
    bootstrap = actions.add_parser("bootstrap", help="create tables, queues and the export bucket")
    bootstrap.add_argument("--export-bucket", help="bucket for large exports (created if absent)")
    projects = actions.add_parser("projects", help="register projects and set write shards")
    project_actions = projects.add_subparsers(dest="projects_command", required=True)
    add = project_actions.add_parser("add", help="register a project (idempotent)")
    add.add_argument("project_id")
    show = project_actions.add_parser("show", help="show a project's domain and shard plan")
    show.add_argument("project_id")
    shards = project_actions.add_parser("shards", help="set a project's write-shard count")
    shards.add_argument("project_id")
    shards.add_argument("count", type=int)


def run(args: argparse.Namespace) -> int:
    settings = settings_for(args.stage, args.domain_id)

    def aws(service: str) -> Any:
        return client(service, settings.region, settings.aws_endpoint)

    if args.admin_command == "bootstrap":
        if args.export_bucket:
            settings = dataclasses.replace(settings, export_bucket=args.export_bucket)
        created = ensure_all(settings, aws("dynamodb"), aws("sqs"), aws("s3"), aws("kms"))
        env = {
            "OPENCTS_TRACES_TABLE": created["traces_table"],
            "OPENCTS_CONTROL_TABLE": created["control_table"],
            "OPENCTS_INGEST_QUEUE": settings.ingest_queue,
            "OPENCTS_INGEST_DLQ_URL": created["ingest_dlq_url"],
            "OPENCTS_EXPORT_BUCKET": created.get("export_bucket", ""),
            "OPENCTS_DOMAIN_ID": settings.domain_id,
            "OPENCTS_KEYS_KMS_KEY": created["keys_kms_key"],
        }
        print(json.dumps({"created": created, "environment_variables": env}, indent=2))
        return 0
    registry = ProjectRegistry(
        DynamoControlTable(aws("dynamodb"), settings.control_table), SystemClock()
    )
    if args.projects_command == "add":
        project = registry.register(args.project_id, settings.domain_id)
    elif args.projects_command == "shards":
        project = registry.set_shards(args.project_id, args.count)
    else:
        project = registry.require(args.project_id)
    print(
        json.dumps(
            {
                "project_id": project.project_id,
                "domain_id": project.domain_id,
                "shard_plan": [list(p) for p in project.shard_plan],
            }
        )
    )
    return 0
