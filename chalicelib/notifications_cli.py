"""`opencts notifications create|list|update|delete|test`: key event notifications through the
API, signed with the caller's access key like every other `opencts` command.

Bodies are the API's own (CreateNotification / UpdateNotification JSON, from a file or `-` for
standard input), so what works here works with curl or the SDK too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from chalicelib import cli

TYPES = ("smn", "fun")


def _read_json(source: str, what: str) -> Any:
    """JSON from a file, from standard input (`-`), or given inline (starting with { or [)."""
    if source.lstrip().startswith(("{", "[")):
        text, name = source, f"the {what}"
    elif source == "-":
        text, name = sys.stdin.read(), "standard input"
    else:
        try:
            text, name = Path(source).read_text(encoding="utf-8"), source
        except OSError as e:
            raise cli.UsageError(f"cannot read {source}: {e.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise cli.UsageError(f"{name} is not JSON: {e}") from None


def _rows(notifications: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            n.get("notification_name", ""),
            n.get("notification_type", ""),
            n.get("status", ""),
            n.get("operation_type", ""),
            n.get("topic_id", ""),
            n.get("notification_id", ""),
        )
        for n in notifications
    ]


HEADER = ("NAME", "TYPE", "STATUS", "OPERATIONS", "TOPIC", "ID")


def _show(args: argparse.Namespace, out: TextIO, body: Any, notifications: list[Any]) -> int:
    if args.output == "json":
        print(json.dumps(body, indent=2, ensure_ascii=False), file=out)
    elif notifications:
        print(cli.format_table(HEADER, _rows(notifications)), file=out)
    else:
        print("(no notifications)", file=out)
    return cli.EXIT_OK


def cmd_create(args: argparse.Namespace, out: TextIO) -> int:
    t = cli.target(args)
    body = _read_json(args.body, "notification")
    created = t.api.call("POST", f"/v3/{t.need_project()}/notifications", body=body).json()
    return _show(args, out, created, [created])


def cmd_update(args: argparse.Namespace, out: TextIO) -> int:
    t = cli.target(args)
    body = _read_json(args.body, "notification")
    updated = t.api.call("PUT", f"/v3/{t.need_project()}/notifications", body=body).json()
    return _show(args, out, updated, [updated])


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    t = cli.target(args)
    project = t.need_project()
    params = {"notification_name": args.name} if args.name else None
    found: list[Any] = []
    for kind in (args.type,) if args.type else TYPES:
        body = t.api.get_json(f"/v3/{project}/notifications/{kind}", params)
        found.extend(body.get("notifications", []))
    return _show(args, out, {"notifications": found}, found)


def cmd_delete(args: argparse.Namespace, out: TextIO) -> int:
    t = cli.target(args)
    ids = ",".join(args.ids)
    t.api.call("DELETE", f"/v3/{t.need_project()}/notifications", {"notification_id": ids})
    print(f"deleted {len(args.ids)} notification{'s' if len(args.ids) > 1 else ''}", file=out)
    return cli.EXIT_OK


def cmd_test(args: argparse.Namespace, out: TextIO) -> int:
    t = cli.target(args)
    body: dict[str, Any] = {}
    if args.notification:
        body["notification"] = _read_json(args.notification, "notification")
    if args.pattern:
        body["pattern"] = _read_json(args.pattern, "pattern")
    if not body:
        raise cli.UsageError("give --notification, --pattern, or both")
    now = cli.now_ms()
    if args.event:
        if args.from_time or args.to_time or args.next:
            raise cli.UsageError("give --event, or --from/--to for stored traces, not both")
        body["event"] = _read_json(args.event, "event")
    else:
        body["from"] = cli.parse_time(args.from_time or "1h", now)
        body["to"] = cli.parse_time(args.to_time, now) if args.to_time else now
        if args.limit is not None:
            body["limit"] = args.limit
        if args.next:
            body["next"] = args.next
    answer = t.api.call("POST", f"/v3/{t.need_project()}/notifications/test", body=body).json()
    if args.output == "json":
        print(json.dumps(answer, indent=2, ensure_ascii=False), file=out)
    elif "matched" in answer:
        print(f"{'matched' if answer['matched'] else 'not matched'}: {answer['reason']}", file=out)
    else:
        traces = answer.get("traces", [])
        if traces:
            print(cli.format_traces(traces), file=out)
        meta = answer.get("meta_data") or {}
        print(f"({len(traces)} matched of {meta.get('scanned', 0)} traces read)", file=out)
        if meta.get("marker"):
            print(f"next marker: {meta['marker']}", file=out)
    return cli.EXIT_OK if answer.get("matched", True) else cli.EXIT_FAILED


def add_parser(subparsers: Any, below: argparse.ArgumentParser) -> None:
    notifications = subparsers.add_parser(
        "notifications", parents=[below], help="key event notifications (SNS or Lambda)"
    )
    actions = notifications.add_subparsers(dest="notifications_command", required=True)
    source = "the JSON body: a file, - for standard input, or inline {...}"

    create = actions.add_parser("create", parents=[below], help="create (CreateNotification)")
    create.add_argument("body", metavar="BODY", help=source)
    create.set_defaults(run=cmd_create)
    update = actions.add_parser(
        "update", parents=[below], help="replace, enable or disable (UpdateNotification)"
    )
    update.add_argument("body", metavar="BODY", help=source)
    update.set_defaults(run=cmd_update)

    listing = actions.add_parser("list", parents=[below], help="list (ListNotifications)")
    listing.add_argument("--type", choices=TYPES, help="smn (SNS) or fun (Lambda); default both")
    listing.add_argument("--name", help="only the notification of this name")
    listing.set_defaults(run=cmd_list)

    delete = actions.add_parser("delete", parents=[below], help="delete by id (one or more)")
    delete.add_argument("ids", nargs="+", metavar="ID")
    delete.set_defaults(run=cmd_delete)

    test = actions.add_parser(
        "test", parents=[below], help="does a rule match an event, or which recent traces"
    )
    test.add_argument("--notification", metavar="BODY", help="a CreateNotification body")
    test.add_argument("--pattern", metavar="PATTERN", help="an EventBridge event pattern")
    test.add_argument("--event", metavar="EVENT", help="the event (a trace) to test")
    test.add_argument("--from", dest="from_time", metavar="TIME", help="default: 1h ago")
    test.add_argument("--to", dest="to_time", metavar="TIME", help="default: now")
    test.add_argument("--limit", type=int, help="matched traces per page (1-200, default 10)")
    test.add_argument("--next", metavar="MARKER", help="the next page, from a previous test")
    test.set_defaults(run=cmd_test)
    for action in (create, update, listing, test):
        action.add_argument("--output", choices=("table", "json"), default="table")
