"""AWS's own `aws cloudtrail validate-logs` (awscli v1 from PyPI, in .venv-awscli: `make awscli`)
validates OpenCTS digests: ListPublicKeys from the OpenCTS API over real HTTP, the digests and
trace files from S3 on moto's server. Nothing is mocked."""

from __future__ import annotations

import gzip
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

import app as app_module
from chalicelib.aws import client
from chalicelib.clock import MS_PER_HOUR, FixedClock
from chalicelib.config import Settings
from chalicelib.digests import digest_key
from chalicelib.local.stack import PROJECT_DIR
from chalicelib.resources import ensure_all, rotate_digest_key
from chalicelib.wiring import Services, build
from tests.conftest import DOMAIN, NOW_MS, PROJECT
from tests.integration.digest_support import (
    BUCKET,
    HOUR0,
    PREFIX,
    REGION,
    TRACKER,
    build_chain,
    make_tracker,
)

AWS = Path(os.environ.get("OPENCTS_AWSCLI", PROJECT_DIR / ".venv-awscli" / "bin" / "aws"))
TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{DOMAIN}:trail/{TRACKER}"

pytestmark = pytest.mark.skipif(
    not AWS.is_file(), reason=f"awscli v1 is not installed at {AWS} (run `make awscli`)"
)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def on_moto_server(
    endpoint: str, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    """The app served over HTTP with its services on moto's server, and a chain of digests:
    ending 10:00 (the first), 11:00 (2 files), 12:00 (none), 13:00 and 14:00 (2 files each),
    with the signing key rotated before the last two."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)  # the test's own boto3 clients
    settings = Settings.from_env({
        "AWS_REGION": REGION,
        "OPENCTS_STAGE": f"awscli{uuid.uuid4().hex[:8]}",
        "OPENCTS_DOMAIN_ID": DOMAIN,
        "OPENCTS_AWS_ENDPOINT": moto_url,
    })

    def aws(service: str) -> object:
        return client(service, REGION, moto_url)

    ensure_all(settings, aws("dynamodb"), aws("sqs"), aws("s3"), aws("kms"))
    clock = FixedClock(NOW_MS)
    svc = build(settings, clock)
    svc.projects.register(PROJECT, DOMAIN)
    make_tracker(svc)
    build_chain(svc, clock, hours=2)
    rotate_digest_key(aws("kms"), settings.digest_kms_key)
    clock.current_ms = HOUR0 + 2 * MS_PER_HOUR + 30 * 60_000
    from tests.integration.digest_support import deliver  # noqa: PLC0415

    files = [deliver(svc, HOUR0 + 2 * MS_PER_HOUR + m * 60_000).key for m in (1, 2)]
    clock.current_ms = HOUR0 + 3 * MS_PER_HOUR + 120_000
    files += [deliver(svc, HOUR0 + 3 * MS_PER_HOUR + m * 60_000).key for m in (1, 2)]
    clock.current_ms = HOUR0 + 4 * MS_PER_HOUR + 120_000
    assert svc.digests is not None
    svc.digests.run()
    app_module.use_services(svc)
    yield svc
    app_module.use_services(None)
    s3 = boto3.client("s3", region_name=REGION)
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def validate_logs(api: str, moto_url: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "opencts-test",
        "AWS_SECRET_ACCESS_KEY": "opencts-test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # S3 on moto's server; CloudTrail (ListPublicKeys) is OpenCTS, through --endpoint-url.
        "AWS_ENDPOINT_URL_S3": moto_url,
    }
    return subprocess.run(
        [
            str(AWS), "cloudtrail", "validate-logs",
            "--trail-arn", TRAIL_ARN,
            "--start-time", "2026-11-20T09:00:00Z",
            "--end-time", "2026-11-20T14:00:00Z",
            "--endpoint-url", api,
            "--s3-bucket", BUCKET,
            "--s3-prefix", PREFIX,
            "--region", REGION,
            "--verbose",
        ],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_validate_logs_accepts_every_opencts_digest_and_trace_file(
    on_moto_server: Services, endpoint: str, moto_url: str, tmp_path: Path
) -> None:
    done = validate_logs(endpoint, moto_url, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for hour in range(5):
        key = digest_key(PREFIX, DOMAIN, REGION, TRACKER, HOUR0 + hour * MS_PER_HOUR)
        assert f"Digest file\ts3://{BUCKET}/{key}\tvalid" in done.stdout
    assert done.stdout.count("Log file\t") == 6
    assert "5/5 digest files valid" in done.stdout
    assert "6/6 log files valid" in done.stdout
    assert "INVALID" not in done.stdout + done.stderr


def test_validate_logs_reports_a_tampered_trace_file(
    on_moto_server: Services, endpoint: str, moto_url: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/CloudTraces/")["Contents"]
    victim = sorted(o["Key"] for o in listed)[0]
    s3.put_object(Bucket=BUCKET, Key=victim, Body=gzip.compress(b'[{"forged": true}]'))
    done = validate_logs(endpoint, moto_url, tmp_path)
    assert done.returncode == 1
    assert f"Log file\ts3://{BUCKET}/{victim}\tINVALID: hash value doesn't match" in done.stderr
    assert "5/6 log files valid, 1/6 log files INVALID" in done.stdout
