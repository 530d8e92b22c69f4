"""Shared fixtures: moto as the embedded AWS, the tables created for real, an injected clock."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

import app as app_module
from chalicelib.clock import FixedClock
from chalicelib.config import Settings
from chalicelib.local.stack import PROJECT_DIR, chalice_config, make_api_server
from chalicelib.resources import ensure_all

os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "opencts")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
for _name in (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECURITY_TOKEN",
    "AWS_SESSION_TOKEN",
):
    os.environ[_name] = "testing"

# 2026-11-20T12:00:00Z: a fixed "now" for tests.
NOW_MS = 1_795_176_000_000
PROJECT = "demo-project"
OTHER_PROJECT = "other-project"
DOMAIN = "123456789012"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW_MS)


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env(
        {
            "AWS_REGION": "us-east-1",
            "OPENCTS_STAGE": "test",
            "OPENCTS_DOMAIN_ID": DOMAIN,
            "OPENCTS_EXPORT_BUCKET": "opencts-test-exports",
            "OPENCTS_CLOUDTRAIL_PROJECT_ID": PROJECT,
        }
    )


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def created(aws: None, settings: Settings) -> dict[str, str]:
    region = settings.region
    return ensure_all(
        settings,
        boto3.client("dynamodb", region_name=region),
        boto3.client("sqs", region_name=region),
        boto3.client("s3", region_name=region),
        boto3.client("kms", region_name=region),
    )


def trace(**overrides: Any) -> dict[str, Any]:
    """A valid reported trace; override any field."""
    base: dict[str, Any] = {
        "trace_name": "createServer",
        "trace_rating": "normal",
        "trace_type": "ApiCall",
        "time": NOW_MS - 60_000,
        "service_type": "ECS",
        "resource_type": "ecs",
        "resource_id": "srv-1",
        "resource_name": "web-1",
        "source_ip": "192.0.2.10",
        "user": {"id": "u-alice", "name": "alice", "domain": {"id": DOMAIN, "name": "acme"}},
    }
    base.update(overrides)
    return base


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The app on Chalice's local server (real HTTP) on a free port; each test plugs its own
    services in with app.use_services()."""
    server = make_api_server(
        app_module.app,
        chalice_config(PROJECT_DIR, app_module.app),
        "127.0.0.1",
        0,
        access_log=False,
    )
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server.server_address[:2]
    # In process, the server's EMF metric lines would land in the stdout the CLI tests read.
    before = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    yield f"http://{host}:{port}"
    if before is None:
        del os.environ["POWERTOOLS_METRICS_DISABLED"]
    else:
        os.environ["POWERTOOLS_METRICS_DISABLED"] = before
    server.server.shutdown()
    server.server.server_close()
