"""`opencts keys ...`: manage access keys directly in the stage's control table, with the
operator's AWS credentials (not through the API), like `opencts admin`: that is how the first key
of a stage comes to exist.

Target: `--stage S` uses the stage's default names in the account and region of the environment;
without `--stage`, the local stack described by the nearest `.opencts/local.json`.
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any, TextIO

from chalicelib.access_keys import AccessKeyStore, KeyUser, KmsEncryptor
from chalicelib.admin import settings_for
from chalicelib.audit import KEY_OPERATIONS
from chalicelib.aws import client
from chalicelib.clock import SystemClock
from chalicelib.control import DynamoControlTable
from chalicelib.errors import CtsError
from chalicelib.permissions import SYSTEM_POLICIES


def add_parser(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="manage access keys (operator, AWS credentials)")
    keys.set_defaults(run=run)
    keys.add_argument("--stage", help="deployment stage; default: the local stack")
    keys.add_argument("--domain-id", help="domain (account) id; default: the stage's")
    actions = keys.add_subparsers(dest="keys_command", required=True)

    create = actions.add_parser("create", help="create a key; its secret is printed once")
    create.add_argument("--user-id", required=True)
    create.add_argument("--user-name", required=True)
    create.add_argument(
        "--project", dest="projects", action="append", required=True,
        help="a project the key reaches (repeat for several)",
    )  # fmt: skip
    policy = create.add_mutually_exclusive_group(required=True)
    policy.add_argument("--policy", choices=tuple(SYSTEM_POLICIES), help="a system policy")
    policy.add_argument(
        "--actions", help="fine-grained actions, comma-separated: cts:trace:list,cts:tracker:*"
    )

    actions.add_parser("list", help="the domain's keys (never their secrets)")
    for name, text in (
        ("enable", "let a disabled key sign again"),
        ("disable", "stop a key (within 60 s in every running container)"),
        ("delete", "delete a key"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("access_key_id")


def store_for(args: argparse.Namespace) -> tuple[AccessKeyStore, str]:
    settings = settings_for(args.stage, args.domain_id)

    def aws(service: str) -> Any:
        return client(service, settings.region, settings.aws_endpoint)

    clock = SystemClock()
    control = DynamoControlTable(aws("dynamodb"), settings.control_table)
    store = AccessKeyStore(control, KmsEncryptor(aws("kms"), settings.keys_kms_key), clock)
    return store, settings.domain_id


def run(args: argparse.Namespace, out: TextIO) -> int:
    store, domain_id = store_for(args)
    before = store.get(args.access_key_id) if hasattr(args, "access_key_id") else None
    try:
        body = _act(args, store, domain_id)
    except CtsError as e:
        raise SystemExit(f"opencts keys: {e.code}: {e.message}") from None
    if args.keys_command in KEY_OPERATIONS:
        projects = body.get("project_ids") or (list(before.project_ids) if before else [])
        _audit(args, projects, body)
    print(json.dumps(body, indent=2, ensure_ascii=False), file=out)
    return 0


def _audit(args: argparse.Namespace, projects: list[str], body: dict[str, Any]) -> None:
    """Self-audit of key management: a CTS trace in each project the key reaches, whose caller
    is the operator's AWS identity (the secret is redacted from the recorded response)."""
    settings = settings_for(args.stage, args.domain_id)
    sts = client("sts", settings.region, settings.aws_endpoint)
    identity = sts.get_caller_identity()
    user = {
        "id": str(identity["UserId"]),
        "name": str(identity["Arn"]).rsplit("/", 1)[-1],
        "principal_urn": str(identity["Arn"]),
        "account_id": str(identity["Account"]),
        "domain": {"id": settings.domain_id},
    }
    # The whole service graph is only needed here: built lazily so every `opencts` command
    # starts without it (see the validator's start-up budget in docs/ARCHITECTURE.md).
    from chalicelib.wiring import build  # noqa: PLC0415

    api = build(settings).api
    request = {k: v for k, v in vars(args).items() if k not in ("run", "command")}
    for project_id in projects:
        api.record_audit(
            project_id,
            KEY_OPERATIONS[args.keys_command],
            user=user,
            source_ip="opencts-cli",
            request_body=json.dumps(request, default=str),
            response_body=body,
            status=200,
            params={},
            request_id=str(uuid.uuid4()),
        )


def _act(args: argparse.Namespace, store: AccessKeyStore, domain_id: str) -> Any:
    command = args.keys_command
    if command == "create":
        policy: str | list[str] = args.policy or [
            a.strip() for a in args.actions.split(",") if a.strip()
        ]
        new = store.create(
            user=KeyUser(args.user_id, args.user_name),
            domain_id=domain_id,
            project_ids=args.projects,
            policy=policy,
        )
        return {
            **new.key.to_dict(),
            "secret_access_key": new.secret,
            "note": "the secret is shown only now: store it safely",
        }
    if command == "list":
        return {"keys": [key.to_dict() for key in store.list(domain_id)]}
    if command == "enable":
        return store.enable(args.access_key_id).to_dict()
    if command == "disable":
        return store.disable(args.access_key_id).to_dict()
    store.delete(args.access_key_id)
    return {"deleted": args.access_key_id}
