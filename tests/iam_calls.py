"""Records the AWS calls a handler makes and checks them against its IAM policy.

botocore's `provide-client-params` event gives each call's operation and parameters before they
are sent (to moto here); `CallRecorder` attributes the calls made inside `with
recorder.function(name):` to that function. `required` maps one call to the IAM actions and
resource ARNs AWS would authorize (e.g. S3 HeadBucket needs s3:ListBucket on the bucket), and
`allows` evaluates a policy document the way IAM does for the subset OpenCTS's policies use:
Allow statements, `*`/`?` wildcards in actions and resources, and the two conditions the
policies carry (aws:ResourceAccount, kms:ResourceAliases). Anything else fails loudly.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import botocore.session

REGION = "us-east-1"
ACCOUNT = "123456789012"

S3_ACTIONS = {
    "HeadBucket": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "HeadObject": "s3:GetObject",
    "GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "PutBucketNotificationConfiguration": "s3:PutBucketNotification",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "DeleteObjects": "s3:DeleteObject",
}
DYNAMODB_TRANSACT = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
# Calls that need no permission.
FREE = {("sts", "GetCallerIdentity")}


@dataclass(frozen=True)
class Call:
    function: str
    service: str  # the IAM prefix (botocore's signing name)
    operation: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Need:
    """One authorization AWS makes for a call: an action on a resource."""

    action: str
    resource: str
    key_aliases: frozenset[str] = frozenset()
    account: str = ""  # the resource owner, when its ARN does not say (S3)
    tags: frozenset[tuple[str, str]] = frozenset()  # the resource's tags (KMS keys)


@dataclass
class CallRecorder:
    calls: list[Call] = field(default_factory=list)
    current: str | None = None

    def hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.current is not None:
            service = model.service_model.signing_name
            self.calls.append(Call(self.current, service, model.name, dict(params)))

    @contextlib.contextmanager
    def function(self, name: str) -> Iterator[None]:
        self.current = name
        try:
            yield
        finally:
            self.current = None


@contextlib.contextmanager
def recording(recorder: CallRecorder) -> Iterator[None]:
    """Every botocore client created inside registers the recorder's hook."""
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        made.meta.events.register("provide-client-params.*.*", recorder.hook)
        return made

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]


# key id/alias/ARN -> (ARN, aliases, tags)
KeyLookup = Callable[[str], tuple[str, frozenset[str], frozenset[tuple[str, str]]]]


def required(call: Call, keys: KeyLookup) -> list[Need]:
    p = call.params
    svc, op = call.service, call.operation
    if (svc, op) in FREE:
        return []
    if svc == "dynamodb":
        if op in ("BatchGetItem", "BatchWriteItem"):
            return [Need(f"dynamodb:{op}", _table(t)) for t in p["RequestItems"]]
        if op in ("TransactWriteItems", "TransactGetItems"):
            needs = []
            for item in p["TransactItems"]:
                (kind, body), = item.items()
                needs.append(Need(DYNAMODB_TRANSACT[kind], _table(body["TableName"])))
            return needs
        resource = _table(p["TableName"])
        if p.get("IndexName"):
            resource += f"/index/{p['IndexName']}"
        return [Need(f"dynamodb:{op}", resource)]
    if svc == "sqs":
        name = p.get("QueueName") or urlsplit(p["QueueUrl"]).path.rstrip("/").rsplit("/", 1)[-1]
        return [Need(f"sqs:{op}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")]
    if svc == "s3":
        action = S3_ACTIONS.get(op, f"s3:{op}")
        resource = f"arn:aws:s3:::{p['Bucket']}"
        if "Key" in p or op in ("DeleteObjects",):
            resource += f"/{p.get('Key', '*')}"
        needs = [Need(action, resource)]
        if p.get("SSEKMSKeyId"):
            arn, aliases, tags = keys(p["SSEKMSKeyId"])
            needs.append(Need("kms:GenerateDataKey", arn, aliases, tags=tags))
        return needs
    if svc == "kms":
        arn, aliases, tags = keys(p["KeyId"])
        return [Need(f"kms:{op}", arn, aliases, tags=tags)]
    if svc == "sns":
        return [Need(f"sns:{op}", p.get("TopicArn") or p["TargetArn"])]
    if svc == "lambda":
        action = "lambda:InvokeFunction" if op == "Invoke" else f"lambda:{op}"
        name = p["FunctionName"]
        arn = name if name.startswith("arn:") else (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        )
        return [Need(action, arn)]
    if svc == "logs":
        group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{p['logGroupName']}"
        if p.get("logStreamName"):
            return [Need(f"logs:{op}", f"{group}:log-stream:{p['logStreamName']}")]
        return [Need(f"logs:{op}", group)]
    raise AssertionError(f"no IAM mapping for {svc}:{op}; add one to tests/iam_calls.py")


def _table(name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def _matches(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    # IAM wildcards: * any run of characters (slashes included), ? one character.
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _resource_account(need: Need) -> str:
    parts = need.resource.split(":")
    if len(parts) > 4 and parts[4]:
        return parts[4]
    return need.account or ACCOUNT  # S3 ARNs: the bucket owner (moto: one account)


def _condition_holds(condition: dict[str, Any], need: Need) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            values = expected if isinstance(expected, list) else [expected]
            values = [v.replace("${aws:PrincipalAccount}", ACCOUNT) for v in values]
            if (operator, key) == ("StringEquals", "aws:ResourceAccount"):
                if _resource_account(need) not in values:
                    return False
            elif operator == "StringEquals" and key.startswith("aws:ResourceTag/"):
                tag = key.removeprefix("aws:ResourceTag/")
                if not any((tag, v) in need.tags for v in values):
                    return False
            elif (operator, key) == ("ForAnyValue:StringEquals", "kms:ResourceAliases"):
                if not need.key_aliases & set(values):
                    return False
            else:
                raise AssertionError(f"the checker does not know condition {operator} {key}")
    return True


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def allows(policy: dict[str, Any], need: Need) -> bool:
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        if not any(_matches(a, need.action, False) for a in _as_list(statement["Action"])):
            continue
        if not any(_matches(r, need.resource) for r in _as_list(statement["Resource"])):
            continue
        if _condition_holds(statement.get("Condition", {}), need):
            return True
    return False
