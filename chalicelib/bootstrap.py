"""`opencts bootstrap --stage S`: every stateful resource of a stage, created idempotently with
boto3 in the account and region of the operator's AWS credentials, then recorded in
`.chalice/config.json` so that `chalice deploy --stage S` deploys functions that use them.

It creates (or, when present, brings up to these settings):
- the traces table (indexes, TTL on `expires_at`, stream NEW_IMAGE, point-in-time recovery) and
  the control table (TTL, point-in-time recovery);
- the trace bucket `opencts-<stage>-<account>-<region>` (exports; the archive bucket a tracker may
  name): public access blocked, a TLS-only bucket policy, default encryption, versioning, and
  with `--object-lock` S3 Object Lock, which S3 only turns on when it creates a bucket;
- the SNS topics: key-event notifications and the login audit's `SMN_Topic`;
- the ingest queue with its dead-letter queue, and the stream mappings' on-failure queue;
- the KMS keys: the symmetric key of access-key secrets and the RSA_2048 SIGN_VERIFY key that
  signs digest files (`alias/opencts-<stage>-keys`, `alias/opencts-<stage>-digest`).

EventBridge rules are not created here: `chalice deploy` (and the packaged template) creates one
rule per `@app.on_cw_event`/`@app.schedule` handler, targeting its function; a second rule with
the same pattern would deliver every event twice. The report lists the rules the deployment
will own.

Then it writes the resources' names and ARNs into the stage's `environment_variables`
(other settings are kept) and regenerates the stage's per-function IAM policy files.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from chalicelib import iam, resources
from chalicelib import stage_names as env
from chalicelib.aws import client
from chalicelib.config import Settings
from chalicelib.iam import FunctionSpec
from chalicelib.packaging import PROJECT_DIR, function_name, mapping_options, real_functions
from chalicelib.stage_config import read_config, sync_policies, update_environment
from chalicelib.stage_names import StageNames

ClientFactory = Callable[[str], Any]

DIGEST_KEY_SPEC = "RSA_2048"
DIGEST_KEY_USAGE = "SIGN_VERIFY"


class BootstrapError(Exception):
    pass


@dataclass(frozen=True)
class Options:
    stage: str
    region: str
    domain_id: str = ""
    bucket: str = ""
    object_lock: bool = False
    object_lock_days: int = 0


# -- tables ------------------------------------------------------------------------------------
def ensure_table_settings(dynamodb: Any, table: str, stream: bool) -> None:
    """TTL, point-in-time recovery and (for the traces table) the NEW_IMAGE stream on a table
    that may predate them."""
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        dynamodb.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    if stream:
        spec = dynamodb.describe_table(TableName=table)["Table"].get("StreamSpecification", {})
        if not spec.get("StreamEnabled"):
            dynamodb.update_table(
                TableName=table,
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
            )
            dynamodb.get_waiter("table_exists").wait(TableName=table)  # ACTIVE again
        elif spec.get("StreamViewType") != "NEW_IMAGE":
            raise BootstrapError(
                f"table {table} streams {spec.get('StreamViewType')}, not NEW_IMAGE: disable its "
                "stream and run bootstrap again"
            )
    backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    pitr = backups.get("PointInTimeRecoveryDescription", {})
    if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
        dynamodb.update_continuous_backups(
            TableName=table,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )


# -- the trace bucket --------------------------------------------------------------------------
def tls_only_policy(bucket: str, partition: str = "aws") -> dict[str, Any]:
    arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def ensure_trace_bucket(s3: Any, bucket: str, region: str, options: Options) -> bool:
    """Creates the bucket hardened; returns whether it has Object Lock."""
    try:
        s3.head_bucket(Bucket=bucket)
        exists = True
    except s3.exceptions.ClientError:
        exists = False
    if not exists:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if options.object_lock:
            kwargs["ObjectLockEnabledForBucket"] = True
        s3.create_bucket(**kwargs)
    locked = _object_lock_enabled(s3, bucket)
    if options.object_lock and not locked:
        raise BootstrapError(
            f"bucket {bucket} exists without Object Lock, which S3 turns on when it creates a "
            "bucket: bootstrap with another --bucket, or run without --object-lock"
        )
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(tls_only_policy(bucket)))
    if locked and options.object_lock_days:
        s3.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {
                    "DefaultRetention": {"Mode": "GOVERNANCE", "Days": options.object_lock_days}
                },
            },
        )
    return locked


def _object_lock_enabled(s3: Any, bucket: str) -> bool:
    try:
        got = s3.get_object_lock_configuration(Bucket=bucket)
    except s3.exceptions.ClientError:
        return False
    return bool(got["ObjectLockConfiguration"].get("ObjectLockEnabled") == "Enabled")


# -- keys --------------------------------------------------------------------------------------
def ensure_signing_key(kms: Any, alias: str, stage: str) -> dict[str, Any]:
    """The RSA key behind `alias` that signs digest files, created when the alias is missing,
    and tagged as one of the stage's digest keys (the functions may read the public key of every
    key so tagged, so digests signed before a rotation stay verifiable)."""
    tags = [{"TagKey": k, "TagValue": v} for k, v in iam.digest_key_tags(stage).items()]
    try:
        meta: dict[str, Any] = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except kms.exceptions.NotFoundException:
        key: dict[str, Any] = kms.create_key(
            Description="OpenCTS: signs digest files (RSASSA_PKCS1_V1_5_SHA_256)",
            KeyUsage=DIGEST_KEY_USAGE,
            KeySpec=DIGEST_KEY_SPEC,
            Tags=tags,
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
        return key
    kms.tag_resource(KeyId=meta["KeyId"], Tags=tags)
    spec = meta.get("KeySpec") or meta.get("CustomerMasterKeySpec")
    if (spec, meta.get("KeyUsage")) != (DIGEST_KEY_SPEC, DIGEST_KEY_USAGE):
        raise BootstrapError(
            f"{alias} names a {spec} {meta.get('KeyUsage')} key; digest files need an "
            f"{DIGEST_KEY_SPEC} {DIGEST_KEY_USAGE} key"
        )
    return meta


# -- everything --------------------------------------------------------------------------------
def bootstrap(
    aws: ClientFactory,
    options: Options,
    stage_env: dict[str, str],
    functions: Sequence[FunctionSpec],
) -> dict[str, Any]:
    """Creates the stage's resources; returns the report (resources, environment, rules)."""
    account = str(aws("sts").get_caller_identity()["Account"])
    names = StageNames.for_stage(options.stage, stage_env)
    bucket = options.bucket or names.bucket or names.default_bucket(account, options.region)
    dynamodb, sqs, s3, kms, sns = (aws(s) for s in ("dynamodb", "sqs", "s3", "kms", "sns"))

    object_lock = ensure_trace_bucket(s3, bucket, options.region, options)
    settings = Settings.from_env({
        "AWS_REGION": options.region,
        "OPENCTS_STAGE": options.stage,
        env.TRACES_TABLE: names.traces_table,
        env.CONTROL_TABLE: names.control_table,
        env.INGEST_QUEUE: names.ingest_queue,
        env.EXPORT_BUCKET: bucket,
        env.KEYS_KMS_KEY: names.keys_key_alias,
    })
    # Tables first: one made before this bootstrap may lack the stream ensure_all reads, or an
    # index a newer version added.
    added_indexes = []
    for definition in (
        resources.traces_table_definition(names.traces_table),
        resources.control_table_definition(names.control_table),
    ):
        added_indexes += resources.ensure_table(dynamodb, definition)
    ensure_table_settings(dynamodb, names.traces_table, stream=True)
    ensure_table_settings(dynamodb, names.control_table, stream=False)
    created = resources.ensure_all(settings, dynamodb, sqs, s3, kms)
    stream_arn = str(
        dynamodb.describe_table(TableName=names.traces_table)["Table"]["LatestStreamArn"]
    )
    failure_url = resources.ensure_queue(sqs, names.stream_failure_queue)
    notifications = str(sns.create_topic(Name=names.notifications_topic)["TopicArn"])
    login_audit = str(sns.create_topic(Name=names.login_audit_topic)["TopicArn"])
    keys_key = kms.describe_key(KeyId=names.keys_key_alias)["KeyMetadata"]
    if keys_key.get("KeyManager") != "AWS":
        kms.enable_key_rotation(KeyId=keys_key["KeyId"])  # yearly, by KMS; old data stays readable
    digest_key = ensure_signing_key(kms, names.digest_key_alias, options.stage)

    domain_id = options.domain_id or stage_env.get(env.DOMAIN_ID) or account
    values = {
        "OPENCTS_STAGE": options.stage,
        env.TRACES_TABLE: names.traces_table,
        env.CONTROL_TABLE: names.control_table,
        env.TRACES_STREAM_ARN: stream_arn,
        env.INGEST_QUEUE: names.ingest_queue,
        env.INGEST_DLQ_URL: created["ingest_dlq_url"],
        env.STREAM_FAILURE_QUEUE_URL: failure_url,
        env.STREAM_FAILURE_QUEUE_ARN: resources.queue_arn(sqs, failure_url),
        env.EXPORT_BUCKET: bucket,
        env.NOTIFICATIONS_TOPIC_ARN: notifications,
        env.LOGIN_AUDIT_TOPIC: login_audit,
        env.LOGIN_AUDIT_REGION: options.region,
        env.KEYS_KMS_KEY: names.keys_key_alias,
        env.KEYS_KMS_KEY_ARN: str(keys_key["Arn"]),
        env.DIGEST_KMS_KEY: names.digest_key_alias,
        env.DIGEST_KMS_KEY_ARN: str(digest_key["Arn"]),
        env.DOMAIN_ID: domain_id,
    }
    rules = [
        {"rule": f"{function_name(f, options.stage)}-event", "function": f.name,
         "trigger": f.source}
        for f in functions
        if f.kind in ("cloudwatch", "schedule")
    ]
    return {
        "stage": options.stage,
        "account": account,
        "region": options.region,
        "resources": {
            "traces_table": names.traces_table,
            "control_table": names.control_table,
            "traces_stream_arn": stream_arn,
            "ingest_queue_url": created["ingest_queue_url"],
            "ingest_dlq_url": created["ingest_dlq_url"],
            "stream_failure_queue_url": failure_url,
            "trace_bucket": bucket,
            "trace_bucket_object_lock": object_lock,
            "indexes_added": added_indexes,
            "notifications_topic_arn": notifications,
            "login_audit_topic_arn": login_audit,
            "keys_kms_key_arn": str(keys_key["Arn"]),
            "digest_kms_key_arn": str(digest_key["Arn"]),
        },
        "environment_variables": values,
        "event_rules_created_by_chalice_deploy": rules,
        "deploy": (
            f"{env.INGEST_QUEUE}={names.ingest_queue} {env.TRACES_STREAM_ARN}={stream_arn} "
            f"chalice deploy --stage {options.stage}"
        ),
    }


def configure_event_sources(
    aws_lambda: Any, stage: str, functions: Sequence[FunctionSpec], failure_queue_arn: str
) -> list[dict[str, Any]]:
    """After `chalice deploy` (which cannot set them): partial batch responses on the queue
    mappings; bisect-on-error, a retry limit, a record age limit and the on-failure queue on the
    stream mappings. Returns what was set."""
    done = []
    pages = aws_lambda.get_paginator("list_event_source_mappings").paginate()
    every = [m for page in pages for m in page["EventSourceMappings"]]
    for function in functions:
        options = mapping_options(function.kind, failure_queue_arn)
        if not options:
            continue
        name = function_name(function, stage)
        mappings = [m for m in every if m["FunctionArn"].rsplit(":", 1)[-1] == name]
        if not mappings:
            raise BootstrapError(
                f"function {name} has no event source mapping: run `chalice deploy --stage "
                f"{stage}` first"
            )
        for mapping in mappings:
            aws_lambda.update_event_source_mapping(UUID=mapping["UUID"], **options)
            done.append({"function": name, "mapping": mapping["UUID"], **options})
    return done


# -- the command -------------------------------------------------------------------------------
def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bootstrap",
        help="create a stage's AWS resources and record them in .chalice/config.json",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stage", required=True)
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        help="default: AWS_REGION / AWS_DEFAULT_REGION",
    )
    parser.add_argument("--domain-id", default="", help="domain id; default: the account id")
    parser.add_argument("--bucket", default="", help="trace bucket; default: the stage's or "
                        "opencts-<stage>-<account>-<region>")
    parser.add_argument(
        "--object-lock",
        action="store_true",
        help="create the trace bucket with S3 Object Lock (only when bootstrap creates it)",
    )
    parser.add_argument(
        "--object-lock-days",
        type=int,
        default=0,
        help="default GOVERNANCE retention of trace files, in days (with --object-lock)",
    )
    parser.add_argument(
        "--event-sources",
        action="store_true",
        help="after `chalice deploy`: set partial batch responses, bisect-on-error, retry "
        "limits and the on-failure queue on the deployed event source mappings",
    )
    parser.add_argument("--project-dir", default=str(PROJECT_DIR), type=Path)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    if not args.region:
        raise SystemExit("opencts bootstrap: set AWS_REGION or pass --region")
    if args.object_lock_days and not args.object_lock:
        raise SystemExit("opencts bootstrap: --object-lock-days needs --object-lock")
    if args.object_lock_days < 0:
        raise SystemExit("opencts bootstrap: --object-lock-days must not be negative")
    project_dir: Path = args.project_dir
    config = read_config(project_dir)
    stage_env = dict(
        config.get("stages", {}).get(args.stage, {}).get("environment_variables", {})
    )
    options = Options(
        stage=args.stage,
        region=args.region,
        domain_id=args.domain_id,
        bucket=args.bucket,
        object_lock=args.object_lock,
        object_lock_days=args.object_lock_days,
    )
    functions = real_functions()

    def aws(service: str) -> Any:
        return client(service, args.region)

    try:
        report = bootstrap(aws, options, stage_env, functions)
        if args.event_sources:
            report["event_source_mappings"] = configure_event_sources(
                aws("lambda"),
                args.stage,
                functions,
                report["environment_variables"][env.STREAM_FAILURE_QUEUE_ARN],
            )
    except BootstrapError as e:
        raise SystemExit(f"opencts bootstrap: {e}") from None
    update_environment(project_dir, args.stage, report["environment_variables"])
    changed = sync_policies(project_dir, functions, [args.stage])
    report["written"] = [str(p.relative_to(project_dir)) for p in changed]
    print(json.dumps(report, indent=2), file=out)
    return 0
