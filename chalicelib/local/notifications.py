"""The local stack's subscriber: what notifications and login-audit alarms publish, made visible.

The stack creates one SNS topic on the embedded AWS (`opencts-local-notifications`) with an SQS
queue subscribed to it; `opencts notifications tail` reads that queue. The login audit's
`SMN_Topic` points at the same topic, with a whitelist (`IP`) holding the demo office's network
and the loopback addresses, so the demo's sign-in from another address raises the alarm in tail.
A notification created through the API can use the topic's ARN (in local.json) as its topic_id.
"""

from __future__ import annotations

from typing import Any

TOPIC_NAME = "opencts-local-notifications"
QUEUE_NAME = "opencts-local-notifications-tail"
# The demo's office (chalicelib/local/demo.py) and the machine itself; bob's home is outside.
LOGIN_AUDIT_WHITELIST = "203.0.113.0/24, 127.0.0.1, ::1"


def ensure_local_subscriber(sns: Any, sqs: Any) -> dict[str, str]:
    """The topic and its subscribed queue (idempotent); their ARN and URL for local.json."""
    topic_arn: str = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    queue_url: str = sqs.create_queue(
        QueueName=QUEUE_NAME, Attributes={"MessageRetentionPeriod": "86400"}
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    subscribed = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    if not any(s["Endpoint"] == queue_arn for s in subscribed):
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return {"notifications_topic_arn": topic_arn, "notifications_queue_url": queue_url}


def login_audit_environment(topic_arn: str, region: str) -> dict[str, str]:
    return {"SMN_Topic": topic_arn, "RegionName": region, "IP": LOGIN_AUDIT_WHITELIST}
