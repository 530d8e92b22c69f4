"""boto3 clients, built once per container and only when first needed (never at import)."""

from __future__ import annotations

import functools
import os
import platform
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


def pooled_clients(
    services: tuple[str, ...], region: str, endpoint: str, connections: int, user_agent: str = ""
) -> list[Any]:
    """Fresh clients of one session (they share its loaded models and endpoint data, so each
    after the first costs a fraction) whose connection pools hold `connections` connections:
    botocore keeps 10, and a thread past the 10th opens and drops a connection per request.
    `user_agent`: a fixed User-Agent naming the tool, instead of the one botocore assembles
    (and sanitises, component by component) for every request: about 0.3 ms of CPU each."""
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    session = boto3.session.Session()
    config = _CONFIG.merge(Config(max_pool_connections=max(10, connections)))
    if user_agent:
        tool = f"{user_agent} Boto3/{boto3.__version__} Python/{platform.python_version()}"
        config = config.merge(Config(user_agent=tool))
    return [
        session.client(s, region_name=region, endpoint_url=endpoint or None, config=config)  # type: ignore[call-overload]
        for s in services
    ]
