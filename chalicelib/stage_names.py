"""The names of a stage's stateful resources, and the environment variables that carry them.

One naming convention serves `opencts bootstrap` (boto3, then `chalice deploy`), the packaged
CloudFormation template (`make package`) and the per-function IAM policies, so the three always
agree: `opencts-<stage>-<what>`, the trace bucket `opencts-<stage>-<account>-<region>` (bucket
names are global). A name set in the stage's environment (`.chalice/config.json`) wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Environment variables of the functions (the stage's `environment_variables`).
TRACES_TABLE = "OPENCTS_TRACES_TABLE"
CONTROL_TABLE = "OPENCTS_CONTROL_TABLE"
TRACES_STREAM_ARN = "OPENCTS_TRACES_STREAM_ARN"
INGEST_QUEUE = "OPENCTS_INGEST_QUEUE"
INGEST_DLQ_URL = "OPENCTS_INGEST_DLQ_URL"
STREAM_FAILURE_QUEUE_URL = "OPENCTS_STREAM_FAILURE_QUEUE_URL"
STREAM_FAILURE_QUEUE_ARN = "OPENCTS_STREAM_FAILURE_QUEUE_ARN"
EXPORT_BUCKET = "OPENCTS_EXPORT_BUCKET"
NOTIFICATIONS_TOPIC_ARN = "OPENCTS_NOTIFICATIONS_TOPIC_ARN"
LOGIN_AUDIT_TOPIC = "SMN_Topic"  # the seeds' login-audit function reads these two names
LOGIN_AUDIT_REGION = "RegionName"
KEYS_KMS_KEY = "OPENCTS_KEYS_KMS_KEY"
KEYS_KMS_KEY_ARN = "OPENCTS_KEYS_KMS_KEY_ARN"
DIGEST_KMS_KEY = "OPENCTS_DIGEST_KMS_KEY"
DIGEST_KMS_KEY_ARN = "OPENCTS_DIGEST_KMS_KEY_ARN"
DOMAIN_ID = "OPENCTS_DOMAIN_ID"


@dataclass(frozen=True)
class StageNames:
    stage: str
    traces_table: str
    control_table: str
    ingest_queue: str
    ingest_dlq: str
    stream_failure_queue: str
    # Empty when not yet known (no bootstrap ran): policies then allow the stage's name pattern.
    bucket: str
    notifications_topic: str
    login_audit_topic: str
    keys_key_alias: str
    digest_key_alias: str

    @classmethod
    def for_stage(cls, stage: str, env: Mapping[str, str] | None = None) -> StageNames:
        e = env or {}
        prefix = f"opencts-{stage}"
        ingest = e.get(INGEST_QUEUE) or f"{prefix}-ingest"
        return cls(
            stage=stage,
            traces_table=e.get(TRACES_TABLE) or f"{prefix}-traces",
            control_table=e.get(CONTROL_TABLE) or f"{prefix}-control",
            ingest_queue=ingest,
            ingest_dlq=_name_of(e.get(INGEST_DLQ_URL, "")) or f"{ingest}-dlq",
            stream_failure_queue=_name_of(e.get(STREAM_FAILURE_QUEUE_URL, ""))
            or f"{prefix}-stream-failures",
            bucket=e.get(EXPORT_BUCKET, ""),
            notifications_topic=_name_of(e.get(NOTIFICATIONS_TOPIC_ARN, ""))
            or f"{prefix}-notifications",
            login_audit_topic=_name_of(e.get(LOGIN_AUDIT_TOPIC, "")) or f"{prefix}-login-audit",
            keys_key_alias=e.get(KEYS_KMS_KEY) or f"alias/{prefix}-keys",
            digest_key_alias=e.get(DIGEST_KMS_KEY) or f"alias/{prefix}-digest",
        )

    def default_bucket(self, account_id: str, region: str) -> str:
        return f"opencts-{self.stage}-{account_id}-{region}"

    @property
    def bucket_pattern(self) -> str:
        """The bucket, or every name the convention could give it."""
        return self.bucket or f"opencts-{self.stage}-*"


def _name_of(url_or_arn: str) -> str:
    """The last part of a queue URL (`https://.../<account>/<name>`) or an SNS/SQS ARN."""
    if not url_or_arn:
        return ""
    return url_or_arn.rstrip("/").replace(":", "/").rsplit("/", 1)[-1]
