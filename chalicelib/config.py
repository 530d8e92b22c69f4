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
            transfer_settle_ms=int(e.get("OPENCTS_TRANSFER_SETTLE_MS") or 30_000),
        )
