"""boto3 clients, built once per container and only when first needed (never at import)."""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode retries throttling with backoff before our own batch retries see it.
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30
)


@functools.cache
def client(service: str, region: str, endpoint: str = "") -> Any:
    # moto's DynamoDB Streams and current botocore disagree on account-id endpoints.
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    return boto3.session.Session().client(
        service,
        region_name=region,
        endpoint_url=endpoint or None,
        config=_CONFIG,  # type: ignore[call-overload]
    )
