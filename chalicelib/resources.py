"""The stateful resources OpenCTS needs, created idempotently with boto3.

Used by the local stack on the embedded AWS and by the tests; `docs/OPERATIONS.md` lists the same
resources for an AWS account.
"""

from __future__ import annotations

from typing import Any

from chalicelib import keys
from chalicelib.config import Settings


def traces_table_definition(name: str) -> dict[str, Any]:
    attributes = [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": keys.SORT_KEY, "AttributeType": "S"},
    ]
    indexes = []
    for index in keys.INDEXES:
        attributes.append({"AttributeName": index.attribute, "AttributeType": "S"})
        indexes.append(
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.attribute, "KeyType": "HASH"},
                    {"AttributeName": keys.SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        )
    # The transfer cycle's index (docs/ARCHITECTURE.md, "Transfer"): keys only, so that
    # re-reading the open slots every cycle costs little; full traces come by BatchGetItem.
    attributes.append({"AttributeName": keys.RECORD.attribute, "AttributeType": "S"})
    attributes.append({"AttributeName": keys.RECORD_SORT_KEY, "AttributeType": "S"})
    indexes.append(
        {
            "IndexName": keys.RECORD.name,
            "KeySchema": [
                {"AttributeName": keys.RECORD.attribute, "KeyType": "HASH"},
                {"AttributeName": keys.RECORD_SORT_KEY, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    )
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": attributes,
        "GlobalSecondaryIndexes": indexes,
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    }


def control_table_definition(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    }


def ensure_table(dynamodb: Any, definition: dict[str, Any]) -> list[str]:
    """Creates the table, or gives an existing one the indexes it lacks; returns those added."""
    name = definition["TableName"]
    try:
        table = dynamodb.describe_table(TableName=name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        table = None
    if table is not None:
        return add_missing_indexes(dynamodb, definition, table)
    dynamodb.create_table(**definition)
    dynamodb.get_waiter("table_exists").wait(TableName=name)
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    return []


def add_missing_indexes(
    dynamodb: Any, definition: dict[str, Any], table: dict[str, Any]
) -> list[str]:
    """An existing table gets the indexes a newer definition adds (e.g. `by_record_time`),
    one per UpdateTable call as DynamoDB requires; DynamoDB backfills them from the items."""
    present = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}
    attributes = {a["AttributeName"]: a for a in definition["AttributeDefinitions"]}
    added: list[str] = []
    for index in definition.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] in present:
            continue
        used = [attributes[k["AttributeName"]] for k in index["KeySchema"]]
        dynamodb.update_table(
            TableName=definition["TableName"],
            AttributeDefinitions=used,
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
        dynamodb.get_waiter("table_exists").wait(TableName=definition["TableName"])
        added.append(index["IndexName"])
    return added


def ensure_queue(sqs: Any, name: str, dead_letter_arn: str | None = None) -> str:
    attributes = {"VisibilityTimeout": "60", "MessageRetentionPeriod": "1209600"}
    if dead_letter_arn:
        attributes["RedrivePolicy"] = (
            f'{{"deadLetterTargetArn":"{dead_letter_arn}","maxReceiveCount":"5"}}'
        )
    url: str = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url


def queue_arn(sqs: Any, url: str) -> str:
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    arn: str = got["Attributes"]["QueueArn"]
    return arn


def ensure_bucket(s3: Any, name: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=name)
        return
    except s3.exceptions.ClientError:
        pass
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})


def ensure_kms_key(kms: Any, alias: str) -> str:
    """The id of the symmetric key behind `alias`, created with the alias when it is missing.

    `alias` is what OPENCTS_KEYS_KMS_KEY holds; a key id or ARN given there instead names a key
    that the operator manages, which is only looked up.
    """
    try:
        return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"])
    except kms.exceptions.NotFoundException:
        if not alias.startswith("alias/"):
            raise
    key_id: str = kms.create_key(
        Description="OpenCTS: encrypts the secrets of access keys",
        KeyUsage="ENCRYPT_DECRYPT",
        KeySpec="SYMMETRIC_DEFAULT",
    )["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def ensure_digest_key(kms: Any, alias: str) -> str:
    """The id of the asymmetric signing key behind `alias` (RSA_2048, SIGN_VERIFY), created with
    the alias when missing; a key id or ARN instead of an alias is only looked up."""
    try:
        return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"])
    except kms.exceptions.NotFoundException:
        if not alias.startswith("alias/"):
            raise
    key_id = _new_digest_key(kms)
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def rotate_digest_key(kms: Any, alias: str) -> str:
    """A new signing key behind `alias`; the old key stays (old digests are verified with it).
    The next digest run records the new key's validity window."""
    key_id = _new_digest_key(kms)
    kms.update_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def _new_digest_key(kms: Any) -> str:
    key_id: str = kms.create_key(
        Description="OpenCTS: signs digest files",
        KeyUsage="SIGN_VERIFY",
        KeySpec="RSA_2048",
    )["KeyMetadata"]["KeyId"]
    return key_id


def ensure_all(settings: Settings, dynamodb: Any, sqs: Any, s3: Any, kms: Any) -> dict[str, str]:
    """Creates every table, queue, bucket and key of the settings; returns their names, URLs
    and the id of the access keys' KMS key."""
    ensure_table(dynamodb, traces_table_definition(settings.traces_table))
    ensure_table(dynamodb, control_table_definition(settings.control_table))
    dlq_url = ensure_queue(sqs, settings.ingest_queue + "-dlq")
    queue_url = ensure_queue(sqs, settings.ingest_queue, queue_arn(sqs, dlq_url))
    notify_dlq_url = ensure_queue(sqs, settings.notify_dlq) if settings.notify_dlq else ""
    out = {
        "traces_table": settings.traces_table,
        "control_table": settings.control_table,
        "ingest_queue_url": queue_url,
        "ingest_dlq_url": dlq_url,
        "notify_dlq_url": notify_dlq_url,
        "traces_stream_arn": dynamodb.describe_table(TableName=settings.traces_table)["Table"][
            "LatestStreamArn"
        ],
        "keys_kms_key": settings.keys_kms_key,
        "keys_kms_key_id": ensure_kms_key(kms, settings.keys_kms_key),
    }
    out["digest_kms_key"] = settings.digest_kms_key
    out["digest_kms_key_id"] = ensure_digest_key(kms, settings.digest_kms_key)
    if settings.export_bucket:
        ensure_bucket(s3, settings.export_bucket, settings.region)
        out["export_bucket"] = settings.export_bucket
    return out
