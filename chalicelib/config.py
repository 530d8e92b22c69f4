"""Settings from the environment (set per stage in .chalice/config.json), read on first use."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    region: str
    traces_table: str
    control_table: str
    domain_id: str
    ingest_queue: str
    ingest_dlq_url: str
    export_bucket: str
    cloudtrail_project_id: str
    keys_kms_key: str  # the KMS key (id, ARN or alias) that encrypts access-key secrets
    aws_endpoint: str  # empty on AWS; the embedded AWS (moto) endpoint on the local stack
    # Delivery of notifications and login-audit alarms (chalicelib/delivery.py).
    notify_dlq: str = ""  # the dead-letter queue's name
    notify_max_attempts: int = 3
    notify_max_age_seconds: int = 6 * 3600
    # The login audit's own variables, named as in the CTS best practice.
    login_audit_env: tuple[tuple[str, str], ...] = ()
    # The asymmetric KMS key (alias, id or ARN) that signs digest files; rotate by moving the alias.
    digest_kms_key: str = "alias/opencts-dev-digest"
    # One digest per period: an hour, as CloudTrail; the local stack's FAST mode shortens it.
    digest_period_s: int = 3600
    # How long after its record_time a trace is first looked for by the transfer cycle.
    transfer_settle_ms: int = 30_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        stage = e.get("OPENCTS_STAGE", "dev")
        return cls(
            region=e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION") or "us-east-1",
            traces_table=e.get("OPENCTS_TRACES_TABLE", f"opencts-{stage}-traces"),
            control_table=e.get("OPENCTS_CONTROL_TABLE", f"opencts-{stage}-control"),
            domain_id=e.get("OPENCTS_DOMAIN_ID", "000000000000"),
            ingest_queue=e.get("OPENCTS_INGEST_QUEUE", f"opencts-{stage}-ingest"),
            ingest_dlq_url=e.get("OPENCTS_INGEST_DLQ_URL", ""),
            export_bucket=e.get("OPENCTS_EXPORT_BUCKET", ""),
            cloudtrail_project_id=e.get("OPENCTS_CLOUDTRAIL_PROJECT_ID", ""),
            keys_kms_key=e.get("OPENCTS_KEYS_KMS_KEY") or f"alias/opencts-{stage}-keys",
            aws_endpoint=e.get("OPENCTS_AWS_ENDPOINT", ""),
            # The stream mappings' on-failure queue (bootstrap writes its URL) is also where
            # delivery parks a trace it gave up on: one queue to watch for stream failures.
            notify_dlq=e.get("OPENCTS_NOTIFY_DLQ")
            or e.get("OPENCTS_STREAM_FAILURE_QUEUE_URL", "").rsplit("/", 1)[-1]
            or f"opencts-{stage}-stream-failures",
            notify_max_attempts=int(e.get("OPENCTS_NOTIFY_MAX_ATTEMPTS", "3")),
            notify_max_age_seconds=int(e.get("OPENCTS_NOTIFY_MAX_AGE_SECONDS", str(6 * 3600))),
            login_audit_env=tuple(
                (name, e[name]) for name in ("SMN_Topic", "RegionName", "IP") if name in e
            ),
            digest_kms_key=e.get("OPENCTS_DIGEST_KMS_KEY") or f"alias/opencts-{stage}-digest",
            digest_period_s=_digest_period(e.get("OPENCTS_DIGEST_PERIOD_S", "")),
            transfer_settle_ms=int(e.get("OPENCTS_TRANSFER_SETTLE_MS") or 30_000),
        )


def _digest_period(text: str) -> int:
    """OPENCTS_DIGEST_PERIOD_S: whole seconds from 1 to 3600 (an hour, the default)."""
    if not text.strip():
        return 3600
    value = int(text)
    if not 1 <= value <= 3600:
        raise ValueError(f"OPENCTS_DIGEST_PERIOD_S must be 1-3600 seconds, not {value}")
    return value
