"""End-to-end notification latency on the local stack: from `POST /v3/{project}/traces` to the
message SNS published, observed on the queue subscribed to the stack's topic.

The stack runs in this process (moto server, Chalice's local HTTP server, the local driver polling
the traces table's stream every `--poll` seconds, as `make run` does). Two paths are measured on
the same stack, alternating: a key event notification (a notification on the stack's topic,
created through the API and matched by the product's NotificationMatcher, as deployed) and the
login audit (a sign-in from outside its whitelist). Each sample is
wall time from just before the POST to the SQS receive that returned the message. Prints one
JSON line with the medians and the ratio of the overall median to the 2 s target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from bench.common import emit, progress  # noqa: E402
from chalicelib.aws import client  # noqa: E402
from chalicelib.cli import Api, Credentials  # noqa: E402
from chalicelib.local.notifications import TOPIC_NAME  # noqa: E402
from chalicelib.local.stack import (  # noqa: E402
    DEMO_DOMAIN,
    DEMO_PROJECT,
    REGION,
    LocalStack,
    StackOptions,
)

TARGET_MEDIAN_S = 2.0
TRACE_NAME = "benchLatency"


def create_notification(api: Api, project_id: str, topic_arn: str) -> None:
    """The notification the samples fire, created through the API as a user would."""
    body = {
        "notification_name": "bench_latency",
        "operation_type": "customized",
        "operations": [
            {"service_type": "ECS", "resource_type": "ecs", "trace_names": [TRACE_NAME]}
        ],
        "topic_id": topic_arn,
    }
    reply = api.call("POST", f"/v3/{project_id}/notifications", body=body)
    assert reply.status == 201, reply.body[:500]


def _trace(kind: str) -> dict[str, Any]:
    base: dict[str, Any] = {
        "trace_id": f"lat-{uuid.uuid4()}",
        "trace_rating": "normal",
        "time": int(time.time() * 1000) - 500,
        "user": {"id": "u-bench", "name": "bench"},
    }
    if kind == "notification":
        base.update(
            trace_name=TRACE_NAME, trace_type="ApiCall", service_type="ECS",
            resource_type="ecs", source_ip="203.0.113.5",
        )  # fmt: skip
    else:
        base.update(
            trace_name="login", trace_type="ConsoleAction", service_type="IAM",
            resource_type="user", source_ip=f"192.0.2.{len(base['trace_id']) % 200 + 1}",
        )  # fmt: skip
    return base


def run(samples: int, poll_s: float) -> dict[str, Any]:
    topic_arn = f"arn:aws:sns:{REGION}:{DEMO_DOMAIN}:{TOPIC_NAME}"
    with tempfile.TemporaryDirectory() as state_dir:
        stack = LocalStack(StackOptions(api_port=0, aws_port=0, state_dir=Path(state_dir)))
        try:
            state = stack.start()
            assert stack.resources["notifications_topic_arn"] == topic_arn
            assert stack.driver is not None
            stack.driver.stream_interval_seconds = poll_s
            api = Api(
                state["api_endpoint"],
                Credentials(state["access_key"]["id"], state["access_key"]["secret"]),
            )
            create_notification(api, DEMO_PROJECT, topic_arn)
            sqs = client("sqs", REGION, state["aws_endpoint"])
            queue = state["resources"]["notifications_queue_url"]
            latencies: dict[str, list[float]] = {"notification": [], "login_audit": []}
            for n in range(samples):
                kind = "notification" if n % 2 == 0 else "login_audit"
                latencies[kind].append(_one(api, sqs, queue, DEMO_PROJECT, kind))
        finally:
            stack.stop()
    every = latencies["notification"] + latencies["login_audit"]
    median = statistics.median(every)
    return {
        "bench": "notify_latency",
        "samples": len(every),
        "stream_poll_s": poll_s,
        "median_s": round(median, 3),
        "p90_s": round(sorted(every)[int(0.9 * (len(every) - 1))], 3),
        "median_notification_s": round(statistics.median(latencies["notification"]), 3),
        "median_login_audit_s": round(statistics.median(latencies["login_audit"]), 3),
        "target_median_s": TARGET_MEDIAN_S,
        "ratio": round(median / TARGET_MEDIAN_S, 3),
        "meets_target": median < TARGET_MEDIAN_S,
    }


def _one(api: Api, sqs: Any, queue: str, project: str, kind: str, timeout_s: float = 15) -> float:
    trace = _trace(kind)
    expected = trace["trace_id"] if kind == "notification" else f"IP:{trace['source_ip']},"
    start = time.monotonic()
    reply = api.call("POST", f"/v3/{project}/traces", body={"traces": [trace]}).json()
    assert reply["meta_data"]["stored"] == 1, reply
    while time.monotonic() - start < timeout_s:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            if expected in json.loads(message["Body"])["Message"]:
                return time.monotonic() - start
    raise AssertionError(f"no {kind} message within {timeout_s} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="report -> SNS latency on the local stack")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.5, help="stream poll interval, s")
    args = parser.parse_args(argv)
    # The stack's functions log at INFO on stdout, which is this benchmark's one JSON line.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    # ... and write their metrics there too (EMF lines).
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    result = run(args.samples, args.poll)
    progress(f"notify latency: median {result['median_s']} s")
    emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
