"""Helpers of the delivery tests: the traces table's stream read as Lambda would hand it over,
SNS observed through an SQS queue subscribed to the topic, and faults moto cannot make."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from chalicelib.local import events

REGION = "us-east-1"


class StreamReader:
    """Every shard of a stream from its start: `new_records()` returns what was written since
    the last call, as the records of Lambda's DynamoDB event."""

    def __init__(self, stream_arn: str, region: str = REGION) -> None:
        self.arn = stream_arn
        self.region = region
        self.streams = boto3.client("dynamodbstreams", region_name=region)
        self._iterators: dict[str, str | None] = {}

    def new_records(self) -> list[dict[str, Any]]:
        shards = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        out: list[dict[str, Any]] = []
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self._iterators[shard_id]
            while iterator:
                got = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                out.extend(got["Records"])
                iterator = got.get("NextShardIterator")
                if not got["Records"]:
                    break
            self._iterators[shard_id] = iterator
        return [events.dynamodb_record(r, self.arn, self.region) for r in out]

    @staticmethod
    def event(records: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Records": records}


def subscribed_queue(topic_arn: str, name: str, region: str = REGION) -> str:
    """An SQS queue subscribed to the topic: what SNS published arrives there."""
    sqs = boto3.client("sqs", region_name=region)
    sns = boto3.client("sns", region_name=region)
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def received(queue_url: str, region: str = REGION) -> list[dict[str, Any]]:
    """Every SNS notification waiting in the queue (the SNS envelope, parsed), removed."""
    sqs = boto3.client("sqs", region_name=region)
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        for message in got:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def queue_bodies(queue_url: str, region: str = REGION) -> list[Any]:
    """Plain SQS messages (the dead-letter queue), parsed and removed: the same read."""
    return received(queue_url, region)


@contextmanager
def failing(
    client: Any,
    operation: str,
    code: str,
    when: Callable[[Mapping[str, Any]], bool],
    status: int = 500,
) -> Iterator[list[Mapping[str, Any]]]:
    """Makes `operation` of this boto3 client fail with `code` for the calls `when` selects.

    moto cannot fail a call on demand, so the failure is answered before the request leaves
    botocore (a `before-call` handler's response, as botocore's own Stubber does); every other
    call still goes to moto. `when` sees botocore's request dict (`body` holds the form
    parameters of a query-protocol call such as SNS Publish; `url_path` names a Lambda function).
    Yields the requests that were failed.
    """
    failed: list[Mapping[str, Any]] = []
    event = f"before-call.{client.meta.service_model.endpoint_prefix}.{operation}"

    def fail(params: Mapping[str, Any], **_: Any) -> Any:
        if not when(params):
            return None
        failed.append(params)
        response = AWSResponse("https://fault.invalid", status, {}, None)
        return response, {"Error": {"Code": code, "Message": f"injected {code}"}}

    client.meta.events.register(event, fail, unique_id=f"fault-{operation}")
    try:
        yield failed
    finally:
        client.meta.events.unregister(event, unique_id=f"fault-{operation}")
