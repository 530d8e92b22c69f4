"""Lambda events in the exact shapes AWS delivers them, built from what the boto3 APIs return.

The handlers in app.py are the ones that run in Lambda, so the local driver must hand them the
same dictionaries Lambda does: field names, casing and string types included (SQS attributes are
strings, DynamoDB creation times are epoch seconds). A handler that works here then works there.
"""

from __future__ import annotations

import base64
import datetime
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's account, and the demo domain


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage message as a record of Lambda's SQS event."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _sqs_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _sqs_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    # Lambda spells message attributes in camelCase and base64-encodes binary values.
    out: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [_b64(v) for v in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = _b64(value["BinaryValue"])
    return out


def _b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {"Records": [sqs_record(m, queue_arn, region) for m in messages]}


def dynamodb_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """One GetRecords record as a record of Lambda's DynamoDB stream event.

    boto3 parses `ApproximateCreationDateTime` into a datetime; Lambda sends epoch seconds,
    which is what Chalice's DynamoDBRecord reads.
    """
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime.datetime):
        stream["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    elif created is None:
        stream["ApproximateCreationDateTime"] = float(
            int(datetime.datetime.now(datetime.UTC).timestamp())
        )
    return {
        "eventID": record.get("eventID", uuid.uuid4().hex),
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", region),
        "dynamodb": stream,
        "eventSourceARN": stream_arn,
    }


def dynamodb_event(
    records: Sequence[Mapping[str, Any]], stream_arn: str, region: str
) -> dict[str, Any]:
    return {"Records": [dynamodb_record(r, stream_arn, region) for r in records]}


def scheduled_event(
    rule_name: str, when: datetime.datetime, region: str, account_id: str = DEFAULT_ACCOUNT_ID
) -> dict[str, Any]:
    """The EventBridge event a schedule rule delivers to its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account_id}:rule/{rule_name}"],
        "detail": {},
    }


def failed_items(response: Any, valid_ids: Sequence[str]) -> list[str] | None:
    """The item identifiers of a partial batch response, in batch order.

    None means "the whole batch failed": Lambda treats a response it cannot read that way
    (an identifier that is empty or not in the batch), so a handler bug never loses messages.
    """
    if not isinstance(response, Mapping) or "batchItemFailures" not in response:
        return []
    failures = response["batchItemFailures"]
    if failures is None:
        return []
    if not isinstance(failures, list):
        return None
    wanted: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in valid_ids:
            return None
        wanted.add(identifier)
    return [i for i in valid_ids if i in wanted]
