"""`opencts notifications tail`: what the local stack's topic published (notifications and
login-audit alarms), read from the SQS queue subscribed to it (chalicelib/local/notifications.py).

Messages are consumed as they are printed (deleted from the queue), like `tail` on a pipe.
Without --follow it prints what is waiting and stops; with --follow it long-polls until
interrupted or --max messages were printed. `--output json` prints one JSON object a line:
{"timestamp", "topic", "message", "attributes"}, `message` parsed when it is JSON (a trace).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from chalicelib.aws import client
from chalicelib.local.state import STOPPED, find_state, read_state

# Long-poll seconds per receive (SQS allows 0..20).
WAIT_SECONDS = 2


class TailError(Exception):
    pass


def local_queue(state_path: Path | None) -> tuple[Any, str]:
    """The SQS client of the embedded AWS and the subscriber queue's URL, from local.json."""
    if state_path is None:
        raise TailError("no local stack found (.opencts/local.json); start it with `make run`")
    state = read_state(state_path)
    if state.get("status") == STOPPED:
        raise TailError(f"the local stack recorded in {state_path} has stopped")
    url = str((state.get("resources") or {}).get("notifications_queue_url", ""))
    if not url:
        raise TailError(f"{state_path} names no notifications queue (an older stack?)")
    # The embedded AWS takes any credentials; never look for real ones.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    return client("sqs", str(state.get("region", "us-east-1")), str(state["aws_endpoint"])), url


def messages(
    sqs: Any, url: str, follow: bool, wait_seconds: int = WAIT_SECONDS
) -> Iterator[dict[str, Any]]:
    """SNS envelopes as they arrive, each deleted once yielded."""
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        if not got and not follow:
            return
        for message in got:
            try:
                envelope = json.loads(message["Body"])
            except ValueError:
                envelope = {"Message": message["Body"]}
            yield envelope if isinstance(envelope, dict) else {"Message": envelope}
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def as_record(envelope: Mapping[str, Any]) -> dict[str, Any]:
    text = envelope.get("Message", "")
    try:
        message: Any = json.loads(text)
    except (TypeError, ValueError):
        message = text
    attributes = {
        name: value.get("Value") if isinstance(value, Mapping) else value
        for name, value in (envelope.get("MessageAttributes") or {}).items()
    }
    return {
        "timestamp": envelope.get("Timestamp", ""),
        "topic": str(envelope.get("TopicArn", "")).rsplit(":", 1)[-1],
        "message": message,
        "attributes": attributes,
    }


def readable(record: Mapping[str, Any]) -> str:
    """One line: time, topic, then the trace's gist or the alarm's text."""
    message = record["message"]
    head = f"{record['timestamp']} {record['topic']}"
    if not isinstance(message, Mapping):
        return f"{head} {message}"
    user = (
        (message.get("user") or {}).get("name", "-")
        if isinstance(message.get("user"), Mapping)
        else "-"
    )
    name = record["attributes"].get("notification_name", "-")
    return (
        f"{head} [{name}] {message.get('project_id', '-')} {message.get('service_type', '-')} "
        f"{message.get('trace_name', '-')} {message.get('trace_rating', '-')} "
        f"trace={message.get('trace_id', '-')} user={user} ip={message.get('source_ip') or '-'}"
    )


def cmd_tail(
    args: argparse.Namespace,
    out: TextIO,
    queue: Callable[[Path | None], tuple[Any, str]] = local_queue,
) -> int:
    try:
        sqs, url = queue(find_state())
    except (TailError, OSError, ValueError) as e:
        print(f"opencts: error: {e}", file=sys.stderr)
        return 2
    printed = 0
    try:
        for envelope in messages(sqs, url, args.follow, args.wait):
            record = as_record(envelope)
            line = json.dumps(record) if args.output == "json" else readable(record)
            print(line, file=out, flush=True)
            printed += 1
            if args.max is not None and printed >= args.max:
                break
    except KeyboardInterrupt:
        pass
    return 0


def add_tail(actions: Any) -> None:
    """`opencts notifications tail`, added to the `notifications` subcommands."""
    tail = actions.add_parser("tail", help="print what the local stack's topic published")
    tail.add_argument("-f", "--follow", action="store_true", help="keep waiting for messages")
    tail.add_argument("--max", type=int, help="stop after this many messages")
    tail.add_argument(
        "--wait",
        type=int,
        default=int(os.environ.get("OPENCTS_TAIL_WAIT", WAIT_SECONDS)),
        choices=range(21),
        metavar="0-20",
        help="long-poll seconds per receive (default 2)",
    )
    tail.add_argument("--output", choices=("line", "json"), default="line")
    tail.set_defaults(run=cmd_tail)
