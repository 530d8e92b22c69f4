"""The local stack as a user runs it: `python -m chalicelib.local` in its own process, driven by
the `opencts` CLI and by boto3 against the embedded AWS, then stopped with SIGTERM.

Headless and bounded: no standard input, CI=true, every wait has a deadline, and the whole module
stays well under a minute.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib import signing

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 30
STOP_SECONDS = 15


def environment() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENCTS_", "AWS_", "POWERTOOLS"))
    }
    env.update(CI="true", PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    return env


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    workdir: Path
    state: dict[str, Any]

    def cli(self, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        # Run from the work directory, so the CLI finds the stack through .opencts/local.json.
        return subprocess.run(
            [sys.executable, "-m", "chalicelib.cli", *argv],
            cwd=self.workdir,
            env=environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def get(self, path: str) -> Any:
        with fetch(self.state, path) as response:
            return json.load(response)


def fetch(state: dict[str, Any], path_and_query: str) -> Any:
    """A GET signed with the stack's demo access key (from local.json), as a client sends it."""
    endpoint = state["api_endpoint"]
    assert endpoint.startswith("http://")
    parts = urllib.parse.urlsplit(path_and_query)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    headers = signing.sign(
        access_key_id=state["access_key"]["id"],
        secret=state["access_key"]["secret"],
        method="GET",
        host=urllib.parse.urlsplit(endpoint).netloc,
        path=parts.path,
        now_ms=time.time_ns() // 1_000_000,
        query=query,
    )
    url = endpoint + parts.path + ("?" + signing.query_string(query) if query else "")
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - http, checked above
    return urllib.request.urlopen(request, timeout=5)  # noqa: S310


def start_stack(workdir: Path, *extra: str) -> subprocess.Popen[bytes]:
    log = (workdir / "stack.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chalicelib.local",
            "--fast",
            "--state-dir",
            str(workdir / ".opencts"),
            *extra,
        ],
        cwd=REPO,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the test can see every process it made
    )


def wait_until_ready(process: subprocess.Popen[bytes], state_file: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "the stack exited during start-up"
        if state_file.is_file():
            state: dict[str, Any] = json.loads(state_file.read_text())
            if state.get("status") == "running":
                try:
                    with fetch(state, f"/v3/{state['project_id']}/traces") as response:
                        if response.status == 200:
                            return state
                except OSError:
                    pass
        time.sleep(0.1)
    raise AssertionError(f"the stack was not ready within {START_SECONDS} s")


def port_is_free(endpoint: str) -> bool:
    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError:
            return False
    return True


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    process = start_stack(workdir, "--api-port", "0", "--aws-port", "0")
    try:
        state = wait_until_ready(process, workdir / ".opencts" / "local.json")
        yield Stack(process, workdir, state)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # only if the test below did not stop it
            process.wait(5)
        log = workdir / "stack.log"
        sys.stderr.write(log.read_text(errors="replace")[-4000:] if log.exists() else "")


def test_demo_then_query_by_service_and_user(stack: Stack) -> None:
    # Given the demo reported through the CLI
    demo = stack.cli("demo")
    assert demo.returncode == 0, demo.stderr
    advertised = re.search(r"--service-type ECS --user alice\s+# (\d+) traces", demo.stdout)
    assert advertised, demo.stdout
    expected = int(advertised.group(1))
    assert expected > 0

    # When the traces of ECS by alice are listed
    listed = stack.cli(
        "traces", "--service-type", "ECS", "--user", "alice", "--limit", "200", "--output", "json"
    )

    # Then exactly those come back, as many as the demo said
    assert listed.returncode == 0, listed.stderr
    traces = json.loads(listed.stdout)["traces"]
    assert len(traces) == expected
    assert {t["service_type"] for t in traces} == {"ECS"}
    assert {t["user"]["name"] for t in traces} == {"alice"}


def test_the_api_refuses_unsigned_requests_and_the_banner_shows_the_demo_key(
    stack: Stack,
) -> None:
    # Given the demo key the stack wrote to local.json
    key = stack.state["access_key"]
    assert (len(key["id"]), len(key["secret"])) == (20, 40)

    # When the API is called without a signature, Then it answers 401 with the CTS body
    url = f"{stack.state['api_endpoint']}/v3/{stack.state['project_id']}/traces"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=5)  # noqa: S310 - the stack's http endpoint
    assert refused.value.code == 401
    assert json.load(refused.value)["error_code"] == "CTS.0401"
    assert refused.value.headers["X-Request-Id"]

    # And the banner told the user the key
    log = (stack.workdir / "stack.log").read_text(errors="replace")
    assert f"demo access key {key['id']}" in log


def test_a_trace_sent_to_the_ingest_queue_is_queryable_within_seconds(stack: Stack) -> None:
    # Given a trace sent to the ingest queue of the embedded AWS
    state = stack.state
    sqs = boto3.client(
        "sqs",
        region_name=state["region"],
        endpoint_url=state["aws_endpoint"],
        aws_access_key_id="e2e",
        aws_secret_access_key="e2e",
    )
    trace_id = f"e2e-{uuid.uuid4()}"
    trace = {
        "trace_id": trace_id,
        "trace_name": "sendMessage",
        "trace_rating": "normal",
        "trace_type": "ApiCall",
        "time": int(time.time() * 1000) - 1000,
        "service_type": "SMN",
        "resource_type": "topic",
        "user": {"id": "u-e2e", "name": "e2e"},
        "source_ip": "192.0.2.99",
    }
    body = json.dumps({"project_id": state["project_id"], "traces": [trace]})
    sqs.send_message(QueueUrl=state["resources"]["ingest_queue_url"], MessageBody=body)

    # When the API is asked for it, Then it is there within seconds
    deadline = time.monotonic() + 10
    while True:
        found = stack.get(f"/v3/{state['project_id']}/traces?trace_id={trace_id}")["traces"]
        if found:
            break
        assert time.monotonic() < deadline, "the queued trace was not stored within 10 s"
        time.sleep(0.2)
    assert found[0]["service_type"] == "SMN"


def test_a_sign_in_from_outside_the_whitelist_shows_in_notifications_tail(stack: Stack) -> None:
    # Given the stack's subscriber topic and queue, recorded in local.json, and drained
    resources = stack.state["resources"]
    assert resources["notifications_topic_arn"].endswith(":opencts-local-notifications")
    assert stack.cli("notifications", "tail", "--wait", "0").returncode == 0

    # When a sign-in from the whitelisted office and one from elsewhere are reported
    now = int(time.time() * 1000) - 1000
    logins = [
        {
            "trace_id": f"e2e-login-{uuid.uuid4()}",
            "trace_name": "login",
            "trace_rating": "normal",
            "trace_type": "ConsoleAction",
            "time": now,
            "service_type": "IAM",
            "resource_type": "user",
            "user": {"id": "u-e2e", "name": "e2e"},
            "source_ip": ip,
        }
        for ip in ("203.0.113.9", "192.0.2.201")
    ]
    reported = subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", "report", "-"],
        cwd=stack.workdir,
        env=environment(),
        input=json.dumps(logins),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert reported.returncode == 0, reported.stderr

    # Then tail shows the alarm for the outside address only, within seconds
    tail = stack.cli(
        "notifications", "tail", "--follow", "--max", "1", "--output", "json", timeout=20
    )
    assert tail.returncode == 0, tail.stderr
    (line,) = tail.stdout.splitlines()
    record = json.loads(line)
    assert record["message"] == "Illegal operation[IP:192.0.2.201, Action:login]"
    assert record["topic"] == "opencts-local-notifications"


def test_a_reported_trace_appears_in_a_trace_file_within_a_fast_cycle(stack: Stack) -> None:
    # Given the demo tracker's transfer bucket, recorded in local.json
    state = stack.state
    transfer = state["transfer"]
    s3 = boto3.client(
        "s3",
        region_name=state["region"],
        endpoint_url=state["aws_endpoint"],
        aws_access_key_id="e2e",
        aws_secret_access_key="e2e",
    )
    trace_id = f"e2e-file-{uuid.uuid4()}"
    trace = {
        "trace_id": trace_id, "trace_name": "createKey", "trace_rating": "normal",
        "trace_type": "ApiCall", "time": int(time.time() * 1000) - 1000,
        "service_type": "KMS", "resource_type": "key", "user": {"id": "u-e2e", "name": "e2e"},
        "source_ip": "192.0.2.99",
    }  # fmt: skip
    # When it is reported with the CLI
    reported = subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", "report", "-"],
        cwd=stack.workdir, env=environment(), input=json.dumps(trace),
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert reported.returncode == 0, reported.stderr

    # Then a KMS trace file under the recorded prefix holds it within a few fast cycles
    prefix = f"{transfer['prefix']}/CloudTraces/{state['region']}/"
    deadline = time.monotonic() + 20
    while True:
        listed = s3.list_objects_v2(Bucket=transfer["bucket"], Prefix=prefix)
        keys = [o["Key"] for o in listed.get("Contents", []) if "/system/KMS/" in o["Key"]]
        bodies = [
            gzip.decompress(s3.get_object(Bucket=transfer["bucket"], Key=k)["Body"].read())
            for k in keys
        ]
        if any(trace_id.encode() in body for body in bodies):
            break
        assert time.monotonic() < deadline, "no trace file held the trace within 20 s"
        time.sleep(0.5)
    assert re.search(r"/opencts_CloudTrace_us-east-1-opencts-demo_.*\.json\.gz$", keys[0])


def test_a_notification_created_through_the_api_fires_on_a_matching_trace_only(
    stack: Stack,
) -> None:
    # Given a notification on EVS deleteVolume to the stack's subscriber topic, and a drained tail
    topic = stack.state["resources"]["notifications_topic_arn"]
    body = {
        "notification_name": "e2e_volume_deletes",
        "operation_type": "customized",
        "operations": [
            {"service_type": "EVS", "resource_type": "evs", "trace_names": ["deleteVolume"]}
        ],
        "topic_id": topic,
    }
    created = stack.cli("notifications", "create", json.dumps(body), "--output", "json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["status"] == "enabled"
    assert stack.cli("notifications", "tail", "--wait", "0").returncode == 0

    # When a matching and a non-matching trace are reported
    now = int(time.time() * 1000) - 1000
    wanted, other = f"e2e-del-{uuid.uuid4()}", f"e2e-new-{uuid.uuid4()}"
    traces = [
        {"trace_id": trace_id, "trace_name": name, "trace_rating": "warning",
         "trace_type": "ApiCall", "time": now, "service_type": "EVS", "resource_type": "evs",
         "resource_id": "vol-1", "user": {"id": "u-e2e", "name": "e2e"},
         "source_ip": "203.0.113.5"}
        for trace_id, name in ((other, "createVolume"), (wanted, "deleteVolume"))
    ]  # fmt: skip
    reported = subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", "report", "-"],
        cwd=stack.workdir, env=environment(), input=json.dumps(traces),
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert reported.returncode == 0, reported.stderr

    # Then the topic carries the matching trace, with its attributes, within seconds; nothing else
    tail = stack.cli(
        "notifications", "tail", "--follow", "--max", "1", "--output", "json", timeout=20
    )
    assert tail.returncode == 0, tail.stderr
    record = json.loads(tail.stdout.splitlines()[0])
    assert record["message"]["trace_id"] == wanted
    assert record["attributes"]["notification_name"] == "e2e_volume_deletes"
    assert record["attributes"]["service_type"] == "EVS"
    rest = stack.cli("notifications", "tail", "--wait", "2", "--output", "json")
    assert rest.returncode == 0, rest.stderr
    assert other not in rest.stdout
    assert wanted not in rest.stdout


def test_validate_accepts_the_chain_then_names_a_tampered_trace_file(stack: Stack) -> None:
    # Given the demo tracker's files and digests (fast mode: a digest period of seconds)
    state = stack.state
    bucket, prefix = state["transfer"]["bucket"], state["transfer"]["prefix"]
    s3 = boto3.client(
        "s3", region_name=state["region"], endpoint_url=state["aws_endpoint"],
        aws_access_key_id="e2e", aws_secret_access_key="e2e",
    )  # fmt: skip
    deadline = time.monotonic() + 40
    while True:
        checked = stack.cli("validate", "--tracker", "system", "--start", "10m", timeout=30)
        files = re.search(r"(\d+)/(\d+) trace files valid", checked.stdout)
        if checked.returncode == 0 and files and int(files.group(2)) > 0:
            break
        assert time.monotonic() < deadline, (checked.returncode, checked.stdout, checked.stderr)
        time.sleep(2)
    assert "0 problems" in checked.stdout

    # When a trace file that a digest lists gets one byte more
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/CloudTraces/")["Contents"]
    key = sorted(o["Key"] for o in listed)[0]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=body + b"x")

    # Then validate names that object and exits 1
    tampered = stack.cli("validate", "--tracker", "system", "--start", "10m", timeout=30)
    assert tampered.returncode == 1, (tampered.stdout, tampered.stderr)
    assert f"s3://{bucket}/{key}" in tampered.stdout
    assert "INVALID" in tampered.stdout


def test_sigterm_stops_everything(stack: Stack) -> None:
    # Given the running stack (its own process group)
    pgid = os.getpgid(stack.process.pid)
    endpoints = [stack.state["api_endpoint"], stack.state["aws_endpoint"]]

    # When it is sent SIGTERM
    stack.process.send_signal(signal.SIGTERM)

    # Then it exits cleanly, leaves no process behind, frees its ports and says it stopped
    assert stack.process.wait(STOP_SECONDS) == 0
    deadline = time.monotonic() + 5
    while group_alive(pgid):
        assert time.monotonic() < deadline, "processes of the stack outlived it"
        time.sleep(0.1)
    assert all(port_is_free(e) for e in endpoints)
    state = json.loads((stack.workdir / ".opencts" / "local.json").read_text())
    assert state["status"] == "stopped"
    assert stack.cli("traces").returncode == 3


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    # Given a port already in use
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        # When the stack is asked to serve the API on it
        process = start_stack(tmp_path, "--api-port", str(port), "--aws-port", "0")
        code = process.wait(START_SECONDS)

    # Then it exits non-zero, says why, and leaves no state file behind
    assert code != 0
    log = (tmp_path / "stack.log").read_text()
    assert f"port {port} on 127.0.0.1 is already in use" in log
    assert "--api-port" in log
    assert not (tmp_path / ".opencts" / "local.json").exists()
