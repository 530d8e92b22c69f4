"""Least-privilege IAM: one policy per function of app.py, generated from one table.

`FUNCTION_GRANTS` maps each function to the grants its *code* needs. A function is named as
Chalice names it: the handler's name in app.py (`ingest_queue`, `cloudtrail_events`, ...), and
`api_handler` for the one function that serves every REST route. What follows from how a
function is triggered is added from the app itself (see `trigger_grants`): reading its SQS queue,
reading the traces stream and sending a failed stream batch to the on-failure queue; and every
function writes its own log group. So a new function needs one line here, e.g.

    "transfer": (TRACES_READ, CONTROL_READ_WRITE, ACCOUNT_BUCKETS_CHECK, ACCOUNT_BUCKETS_WRITE,
                 ACCOUNT_BUCKETS_LIFECYCLE, ACCOUNT_KEYS_ENCRYPT, CTS_LOGS),
    "digest": (CONTROL_READ_WRITE, DIGEST_SIGN, ACCOUNT_BUCKETS_WRITE),
    "notification_matcher": (CONTROL_READ_WRITE, ACCOUNT_TOPICS_PUBLISH, ACCOUNT_FUNCTIONS_INVOKE),
    "login_audit": (LOGIN_AUDIT_PUBLISH,),

then `make policies` (regenerates `.chalice/policies/<stage>/<function>.json` and points
config.json at them). Define a new `Grant` next to the others when none fits; a new kind of
resource needs a `Res` kind rendered by both renderers below. Tests keep the table honest:
tests/unit/test_iam.py fails for a function of app.py without an entry, for a `*` in any action,
for a data resource without a name or an account condition and for stale policy files;
tests/integration/test_iam_calls.py records the AWS calls each handler makes against moto (a
default scenario for scheduled and stream functions; others need one in its SCENARIOS) and fails
for a call the function's policy does not allow, naming the call.

Resources are named abstractly (`Res`) and rendered twice from the same grants:
- `LiteralNames`: the policy files of `chalice deploy` (`.chalice/policies/<stage>/<fn>.json`),
  from the stage's names (`stage_names.StageNames`); region and account are `*`, names exact.
  The stage's KMS keys are matched by their alias (`kms:ResourceAliases`), so re-pointing an
  alias at a new key (rotation) needs no policy change; `DIGEST_PUBLIC_KEYS` matches every digest
  key of the stage by its tags, rotated-out ones included.
- `TemplateRefs`: the packaged template's roles, with `Fn::GetAtt`/`Ref` to its own resources.

Buckets, topics, functions and keys that users name in trackers and notifications are not known
in advance. They are granted on any name but only in the function's own account
(`aws:ResourceAccount` = `${aws:PrincipalAccount}`): a tracker can write trace files to any
bucket of the account, never to another account's bucket (docs/OPERATIONS.md, "IAM").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.stage_names import StageNames

Policy = dict[str, Any]

# Kinds of resources (`Res.kind`).
TRACES_TABLE = "traces_table"
TRACES_INDEXES = "traces_indexes"
TRACES_STREAM = "traces_stream"
CONTROL_TABLE = "control_table"
CONTROL_INDEXES = "control_indexes"
INGEST_QUEUE = "ingest_queue"
INGEST_DLQ = "ingest_dlq"
STREAM_FAILURE_QUEUE = "stream_failure_queue"
TRACE_BUCKET = "trace_bucket"
TRACE_BUCKET_OBJECTS = "trace_bucket_objects"  # arg: a key prefix, e.g. "exports/"
NOTIFICATIONS_TOPIC = "notifications_topic"
LOGIN_AUDIT_TOPIC = "login_audit_topic"
KEYS_KEY = "keys_key"
DIGEST_KEY = "digest_key"
DIGEST_KEYS = "digest_keys"  # every digest key of the stage, past ones too (by tag)
CTS_LOG_GROUP = "cts_log_group"  # CloudWatch Logs group `CTS` (LTS transfer)
FUNCTION_LOGS = "function_logs"  # arg: the Lambda function name
QUEUE = "queue"  # arg: a queue name an event source names
ACCOUNT_BUCKETS = "account_buckets"
ACCOUNT_BUCKET_OBJECTS = "account_bucket_objects"
ACCOUNT_TOPICS = "account_topics"
ACCOUNT_FUNCTIONS = "account_functions"
ACCOUNT_KEYS = "account_keys"
# X-Ray's write actions have no resource type: IAM only accepts "*" for them (the one resource
# that is "*" in any policy; tests/unit/test_iam.py allows it for these actions only).
XRAY = "xray"
NO_RESOURCE_ACTIONS = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})

# Kinds granted on any name within the account (see the module docstring).
ACCOUNT_WIDE = frozenset(
    {ACCOUNT_BUCKETS, ACCOUNT_BUCKET_OBJECTS, ACCOUNT_TOPICS, ACCOUNT_FUNCTIONS, ACCOUNT_KEYS}
)
SAME_ACCOUNT = {"StringEquals": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}}
# Tags on every digest-signing key (bootstrap, the template, and a rotation's new key): the
# public keys of rotated-out keys stay readable to verify old digests, without naming each key.
STAGE_TAG = "opencts-stage"
PURPOSE_TAG = "opencts-purpose"
DIGEST_PURPOSE = "digest-signing"


def digest_key_tags(stage: str) -> dict[str, str]:
    return {STAGE_TAG: stage, PURPOSE_TAG: DIGEST_PURPOSE}


@dataclass(frozen=True)
class Res:
    kind: str
    arg: str = ""


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[Res, ...]


def grant(sid: str, actions: Sequence[str], *resources: Res) -> Grant:
    return Grant(sid, tuple(actions), tuple(resources))


_TRACES = (Res(TRACES_TABLE), Res(TRACES_INDEXES))
_CONTROL = (Res(CONTROL_TABLE), Res(CONTROL_INDEXES))

TRACES_READ = grant(
    "TracesRead", ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"], *_TRACES
)
# Storing traces: the duplicate check reads them back by trace id, then one batch writes.
TRACES_WRITE = grant(
    "TracesWrite",
    ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"],
    Res(TRACES_TABLE),
)
CONTROL_READ = grant(
    "ControlRead", ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"], *_CONTROL
)
# What recording a trace touches in the control table: the project, the catalog of services,
# users and operations seen, the data trackers watching a bucket.
CONTROL_RECORD = grant(
    "ControlRecord",
    [
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:BatchWriteItem",
    ],
    *_CONTROL,
)
CONTROL_READ_WRITE = grant(
    "ControlReadWrite",
    [
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
    ],
    *_CONTROL,
)
ACCESS_KEY_SECRETS = grant("AccessKeySecrets", ["kms:Decrypt"], Res(KEYS_KEY))
INGEST_DEAD_LETTER = grant("IngestDeadLetter", ["sqs:SendMessage"], Res(INGEST_DLQ))
EXPORTS = grant(
    "Exports", ["s3:PutObject", "s3:GetObject"], Res(TRACE_BUCKET_OBJECTS, "exports/")
)
# Checking and preparing a tracker's bucket (checkbucket, create/update tracker).
TRACKER_BUCKETS = grant(
    "TrackerBuckets",
    [
        "s3:ListBucket",
        "s3:CreateBucket",
        "s3:GetBucketNotification",
        "s3:PutBucketNotification",
    ],
    Res(ACCOUNT_BUCKETS),
)
TRACKER_BUCKET_PROBE = grant(
    "TrackerBucketProbe", ["s3:PutObject", "s3:DeleteObject"], Res(ACCOUNT_BUCKET_OBJECTS)
)
# A probe or trace file written with SSE-KMS under a tracker's key.
ACCOUNT_KEYS_ENCRYPT = grant(
    "TrackerKeys", ["kms:GenerateDataKey", "kms:DescribeKey"], Res(ACCOUNT_KEYS)
)
# For the functions being added (transfer, digest, matcher, login audit): see the docstring.
ACCOUNT_BUCKETS_CHECK = grant(
    "TraceFileBuckets", ["s3:ListBucket", "s3:GetBucketLocation"], Res(ACCOUNT_BUCKETS)
)
ACCOUNT_BUCKETS_WRITE = grant(
    "TraceFiles", ["s3:PutObject", "s3:GetObject"], Res(ACCOUNT_BUCKET_OBJECTS)
)
ACCOUNT_BUCKETS_LIFECYCLE = grant(
    "TraceFileLifecycle",
    ["s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration"],
    Res(ACCOUNT_BUCKETS),
)
CTS_LOGS = grant(
    "CtsLogGroup",
    ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
    Res(CTS_LOG_GROUP),
)
DIGEST_SIGN = grant("DigestSigning", ["kms:Sign", "kms:GetPublicKey"], Res(DIGEST_KEY))
DIGEST_PUBLIC_KEYS = grant(
    "DigestPublicKeys", ["kms:GetPublicKey", "kms:DescribeKey"], Res(DIGEST_KEYS)
)
ACCOUNT_TOPICS_PUBLISH = grant("NotificationTopics", ["sns:Publish"], Res(ACCOUNT_TOPICS))
ACCOUNT_FUNCTIONS_INVOKE = grant(
    "NotificationFunctions", ["lambda:InvokeFunction"], Res(ACCOUNT_FUNCTIONS)
)
NOTIFICATIONS_PUBLISH = grant("NotificationsTopic", ["sns:Publish"], Res(NOTIFICATIONS_TOPIC))
LOGIN_AUDIT_PUBLISH = grant("LoginAuditTopic", ["sns:Publish"], Res(LOGIN_AUDIT_TOPIC))
STREAM_FAILURES_SEND = grant("StreamFailures", ["sqs:SendMessage"], Res(STREAM_FAILURE_QUEUE))

FUNCTION_GRANTS: dict[str, tuple[Grant, ...]] = {
    "api_handler": (
        TRACES_READ,
        TRACES_WRITE,
        CONTROL_READ_WRITE,
        ACCESS_KEY_SECRETS,
        EXPORTS,
        TRACKER_BUCKETS,
        TRACKER_BUCKET_PROBE,
        ACCOUNT_KEYS_ENCRYPT,
    ),
    "ingest_queue": (TRACES_WRITE, CONTROL_RECORD, INGEST_DEAD_LETTER),
    "cloudtrail_events": (TRACES_WRITE, CONTROL_RECORD),
    "s3_object_events": (TRACES_WRITE, CONTROL_RECORD),
    "transfer_cycle": (
        TRACES_READ,
        CONTROL_READ_WRITE,
        ACCOUNT_BUCKETS_CHECK,
        ACCOUNT_BUCKETS_WRITE,
        ACCOUNT_BUCKETS_LIFECYCLE,
        ACCOUNT_KEYS_ENCRYPT,
        CTS_LOGS,
    ),
    "digest_files": (CONTROL_READ_WRITE, DIGEST_SIGN, ACCOUNT_BUCKETS_WRITE),
    "notification_matcher": (
        CONTROL_READ_WRITE,
        ACCOUNT_TOPICS_PUBLISH,
        ACCOUNT_FUNCTIONS_INVOKE,
        STREAM_FAILURES_SEND,
    ),
    "login_audit": (CONTROL_READ_WRITE, ACCOUNT_TOPICS_PUBLISH, STREAM_FAILURES_SEND),
}


# -- what a function's trigger needs ----------------------------------------------------------
@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function of the app, as far as IAM and packaging care.

    kind: "api" (the REST API), "sqs", "dynamodb", "schedule", "cloudwatch" (an EventBridge
    pattern) or "lambda" (invoked directly); source: the queue name, stream ARN, schedule
    expression or event pattern of its trigger.
    """

    name: str
    kind: str
    source: Any = None


SQS_CONSUMER = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
STREAM_READER = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)


def trigger_grants(function: FunctionSpec, function_name: str) -> tuple[Grant, ...]:
    """Lambda acts with the function's role to read its trigger and to write its logs."""
    own_logs = grant(
        "OwnLogs",
        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        Res(FUNCTION_LOGS, function_name),
    )
    # Active tracing ("xray": true in config.json): the Lambda service and the Powertools
    # Tracer send the function's segments with its role.
    always = (own_logs, grant("Tracing", sorted(NO_RESOURCE_ACTIONS), Res(XRAY)))
    if function.kind == "sqs":
        return (*always, grant("TriggerQueue", SQS_CONSUMER, Res(QUEUE, str(function.source))))
    if function.kind == "dynamodb":
        # The stream mapping's on-failure destination is sent to with the function's role.
        return (*always, grant("TriggerStream", STREAM_READER, Res(TRACES_STREAM)),
                STREAM_FAILURES_SEND)
    return always


def grants_for(
    function: FunctionSpec,
    function_name: str,
    table: Mapping[str, tuple[Grant, ...]] = FUNCTION_GRANTS,
) -> tuple[Grant, ...]:
    """The function's grants; KeyError for a function the table does not list."""
    if function.name not in table:
        raise KeyError(
            f"function {function.name!r} has no entry in chalicelib/iam.py FUNCTION_GRANTS"
        )
    return trigger_grants(function, function_name) + table[function.name]


# -- rendering -------------------------------------------------------------------------------------
class Renderer(Protocol):
    def arns(self, res: Res) -> list[Any]: ...

    def key_condition(self, group: Sequence[Res]) -> dict[str, Any] | None: ...


def policy(grants: Iterable[Grant], renderer: Renderer) -> Policy:
    """An IAM policy document: one statement per grant (two when it mixes account-wide and
    named resources, which need different conditions); repeated grants appear once."""
    statements: list[dict[str, Any]] = []
    seen: set[str] = set()
    for g in grants:
        named = [r for r in g.resources if r.kind not in ACCOUNT_WIDE]
        wide = [r for r in g.resources if r.kind in ACCOUNT_WIDE]
        for suffix, group, condition in (("", named, None), ("InAccount", wide, SAME_ACCOUNT)):
            if not group:
                continue
            sid = g.sid + (suffix if named and wide else "")
            statement: dict[str, Any] = {
                "Sid": sid,
                "Effect": "Allow",
                "Action": sorted(set(g.actions)),
                "Resource": [arn for r in group for arn in renderer.arns(r)],
            }
            keys = renderer.key_condition(group)
            if condition or keys:
                statement["Condition"] = condition or keys
            fingerprint = json.dumps(statement, sort_keys=True)
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            if sid in {s["Sid"] for s in statements}:
                statement["Sid"] = f"{sid}{len(statements)}"
            statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


@dataclass(frozen=True)
class LiteralNames:
    """ARNs as literal strings, for the policy files of `chalice deploy`."""

    names: StageNames
    region: str = "*"
    account: str = "*"
    partition: str = "aws"

    def _arn(self, service: str, resource: str, region: str | None = None,
             account: str | None = None) -> str:
        region = self.region if region is None else region
        account = self.account if account is None else account
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def arns(self, res: Res) -> list[Any]:
        n = self.names
        table = {TRACES_TABLE: n.traces_table, CONTROL_TABLE: n.control_table}
        match res.kind:
            case "traces_table" | "control_table":
                return [self._arn("dynamodb", f"table/{table[res.kind]}")]
            case "traces_indexes":
                return [self._arn("dynamodb", f"table/{n.traces_table}/index/*")]
            case "control_indexes":
                return [self._arn("dynamodb", f"table/{n.control_table}/index/*")]
            case "traces_stream":
                return [self._arn("dynamodb", f"table/{n.traces_table}/stream/*")]
            case "ingest_queue":
                return [self._arn("sqs", n.ingest_queue)]
            case "ingest_dlq":
                return [self._arn("sqs", n.ingest_dlq)]
            case "stream_failure_queue":
                return [self._arn("sqs", n.stream_failure_queue)]
            case "queue":
                return [self._arn("sqs", res.arg)]
            case "trace_bucket":
                return [f"arn:{self.partition}:s3:::{n.bucket_pattern}"]
            case "trace_bucket_objects":
                return [f"arn:{self.partition}:s3:::{n.bucket_pattern}/{res.arg}*"]
            case "notifications_topic":
                return [self._arn("sns", n.notifications_topic)]
            case "login_audit_topic":
                return [self._arn("sns", n.login_audit_topic)]
            case "keys_key" | "digest_key":
                key = self._key(res.kind)
                if key.startswith("arn:"):
                    return [key]
                if not key.startswith("alias/"):  # a key id
                    return [self._arn("kms", f"key/{key}")]
                return [self._arn("kms", "key/*")]
            case "digest_keys":
                return [self._arn("kms", "key/*")]
            case "cts_log_group":
                return [self._arn("logs", "log-group:CTS"), self._arn("logs", "log-group:CTS:*")]
            case "function_logs":
                group = f"log-group:/aws/lambda/{res.arg}"
                return [self._arn("logs", group), self._arn("logs", group + ":*")]
            case "account_buckets":
                return [f"arn:{self.partition}:s3:::*"]
            case "account_bucket_objects":
                return [f"arn:{self.partition}:s3:::*/*"]
            case "account_topics":
                return [self._arn("sns", "*")]
            case "account_functions":
                return [self._arn("lambda", "function:*")]
            case "account_keys":
                return [self._arn("kms", "key/*")]
            case "xray":
                return ["*"]
        raise ValueError(f"unknown resource kind {res.kind!r}")

    def _key(self, kind: str) -> str:
        """The stage's key as its environment names it: an alias, a key id or an ARN."""
        return self.names.keys_key_alias if kind == KEYS_KEY else self.names.digest_key_alias

    def key_condition(self, group: Sequence[Res]) -> dict[str, Any] | None:
        """The stage's keys by alias: `key/*` alone would be every key of the account."""
        return key_condition(group, self._key, self.names.stage)


def key_condition(
    group: Sequence[Res], key_of: Callable[[str], str] | None, stage: str
) -> dict[str, Any] | None:
    """What confines `key/*` to the stage's keys: their tags (every digest key, past and
    present), or their aliases (`key_of` gives the alias; None: the template names keys by ARN)."""
    if any(r.kind == DIGEST_KEYS for r in group):
        if len(group) != 1:
            raise ValueError("a grant on the digest keys cannot name other resources too")
        tags = digest_key_tags(stage)
        return {"StringEquals": {f"aws:ResourceTag/{k}": v for k, v in tags.items()}}
    if key_of is None:
        return None
    keys = [key_of(r.kind) for r in group if r.kind in (KEYS_KEY, DIGEST_KEY)]
    aliases = [k for k in keys if k.startswith("alias/")]
    if not aliases:
        return None
    if len(aliases) != len(group):
        raise ValueError("a grant on a stage key cannot name other resources too")
    return {"ForAnyValue:StringEquals": {"kms:ResourceAliases": sorted(aliases)}}


# Logical ids of the packaged template's stateful resources (chalicelib/packaging.py).
LOGICAL_IDS = {
    TRACES_TABLE: "TracesTable",
    CONTROL_TABLE: "ControlTable",
    INGEST_QUEUE: "IngestMessageQueue",
    INGEST_DLQ: "IngestDeadLetterQueue",
    STREAM_FAILURE_QUEUE: "StreamFailureQueue",
    TRACE_BUCKET: "TraceBucket",
    NOTIFICATIONS_TOPIC: "NotificationsTopic",
    LOGIN_AUDIT_TOPIC: "LoginAuditTopic",
    KEYS_KEY: "KeysKey",
    DIGEST_KEY: "DigestKey",
}


def _sub_arn(logical_id: str, suffix: str) -> dict[str, str]:
    return {"Fn::Sub": "${" + logical_id + ".Arn}" + suffix}


@dataclass(frozen=True)
class TemplateRefs:
    """ARNs as CloudFormation intrinsics on the template's own resources."""

    names: StageNames

    def arns(self, res: Res) -> list[Any]:
        ids = LOGICAL_IDS
        sub = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"
        match res.kind:
            case "traces_table" | "control_table" | "ingest_queue" | "ingest_dlq" | (
                "stream_failure_queue" | "trace_bucket" | "keys_key" | "digest_key"
            ):
                return [{"Fn::GetAtt": [ids[res.kind], "Arn"]}]
            case "traces_indexes":
                return [_sub_arn(ids[TRACES_TABLE], "/index/*")]
            case "control_indexes":
                return [_sub_arn(ids[CONTROL_TABLE], "/index/*")]
            case "traces_stream":
                return [_sub_arn(ids[TRACES_TABLE], "/stream/*")]
            case "queue":
                queue = self._queue_id(res.arg)
                if queue:
                    return [{"Fn::GetAtt": [queue, "Arn"]}]
                return [{"Fn::Sub": sub % ("sqs", res.arg)}]
            case "trace_bucket_objects":
                return [_sub_arn(ids[TRACE_BUCKET], f"/{res.arg}*")]
            case "notifications_topic" | "login_audit_topic":
                return [{"Ref": ids[res.kind]}]
            case "cts_log_group":
                return [{"Fn::Sub": sub % ("logs", "log-group:CTS")},
                        {"Fn::Sub": sub % ("logs", "log-group:CTS:*")}]
            case "function_logs":
                group = f"log-group:/aws/lambda/{res.arg}"
                return [{"Fn::Sub": sub % ("logs", group)},
                        {"Fn::Sub": sub % ("logs", group + ":*")}]
            case "account_buckets":
                return [{"Fn::Sub": "arn:${AWS::Partition}:s3:::*"}]
            case "account_bucket_objects":
                return [{"Fn::Sub": "arn:${AWS::Partition}:s3:::*/*"}]
            case "account_topics":
                return [{"Fn::Sub": sub % ("sns", "*")}]
            case "account_functions":
                return [{"Fn::Sub": sub % ("lambda", "function:*")}]
            case "account_keys" | "digest_keys":
                return [{"Fn::Sub": sub % ("kms", "key/*")}]
            case "xray":
                return ["*"]
        raise ValueError(f"unknown resource kind {res.kind!r}")

    def key_condition(self, group: Sequence[Res]) -> dict[str, Any] | None:
        return key_condition(group, None, self.names.stage)

    def _queue_id(self, name: str) -> str:
        n = self.names
        return {
            n.ingest_queue: LOGICAL_IDS[INGEST_QUEUE],
            n.ingest_dlq: LOGICAL_IDS[INGEST_DLQ],
            n.stream_failure_queue: LOGICAL_IDS[STREAM_FAILURE_QUEUE],
        }.get(name, "")
