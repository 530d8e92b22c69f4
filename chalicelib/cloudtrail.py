"""AWS CloudTrail events (as Amazon EventBridge delivers them) turned into CTS traces.

The converter is pure: one EventBridge envelope or one bare CloudTrail record in, one raw trace dict
out, ready for the same validation as a trace reported through the API. Events that are not
CloudTrail operations raise `UnsupportedEvent`, so the handler can drop them instead of storing
guesses. The mapping choices below are the ones where CloudTrail and CTS do not line up one to one.

Identity of a trace
    `eventID` is the trace_id. EventBridge delivers at least once, and CloudTrail gives a replayed
    event the same eventID, so using it makes the trace_id idempotency key drop the duplicates.

Operation type
    `eventType` decides trace_type: AwsApiCall is ApiCall, AwsConsoleSignIn and AwsConsoleAction
    are ConsoleAction, AwsServiceEvent is SystemAction. An AwsApiCall stays ApiCall even when
    `sessionCredentialFromConsole` is "true": CloudTrail still recorded an API request (made by the
    console with the user's console session), and the flag only says where the credentials came
    from. Reclassifying it would make trace_type disagree with the eventType a CloudTrail user
    filters on. Old records without eventType take the type from the EventBridge detail-type (an
    API call for a bare record); records of any other eventType (Insights, network activity) are
    refused, because they are not operations and no CTS trace_type fits them.

Sign-in events
    CTS records console logins as IAM `login`/`logout` traces on a `user` resource, and the login
    audit function watches exactly those names. ConsoleLogin and SwitchRole both open a console
    session for a principal from an address, so both become `login`; ConsoleLogout and ExitRole
    become `logout`. The other sign-in steps (CheckMfa, PasswordUpdated, GetSigninToken, ...) keep
    their own names: they happen inside a sign-in that is already recorded once, and calling them
    `login` would raise the audit alarm twice for one sign-in. A sign-in's outcome is the value of
    `responseElements[eventName]`; "Failure" makes the trace a warning whose code is the errorCode
    when CloudTrail gave one and otherwise "Failure" itself. CloudTrail records no HTTP status for
    sign-ins, and inventing "401" would claim a status nobody returned. A sign-in record has no
    sessionContext, so `additionalEventData.MFAUsed` supplies the user's mfa_authenticated.

Outcome and code
    CloudTrail marks a failed call only by `errorCode`, so errorCode present means trace_rating
    `warning`, code = errorCode and message = errorMessage (or "<eventName> failed" when CloudTrail
    gave no message, so a warning always says what failed). `incident` is never produced: a record
    of one request says that it failed, not that it caused an outage. A successful API call or
    console action gets code "200", the value CTS services report for success. A successful
    service event gets no code, because no request was answered (the CTS samples leave it out for
    SystemAction too); its `serviceEventDetails` (the instance evicted, the key rotated) becomes
    the message, since request and response are null for such events.

User
    `userIdentity` becomes the CTS user. name is what a person would call the principal: the IAM
    user name, the session name (last ARN segment) of an assumed role or federated user, "root"
    for the root user, the invoking service for AWS services (including the "AWS Internal" of
    identities without a type). id and principal_id are CloudTrail's principalId. user_name is
    CloudTrail's userName, or for a role session the name of the role that issued it, so traces
    can be found by the IAM identity behind a session. domain.id is the account id; the root
    user's userName is the account alias, which is what CTS calls the domain name, so it goes to
    domain.name and not to user_name. Empty strings (CloudTrail writes `"accessKeyId": ""` for
    console sign-ins) count as absent: a key is omitted, never None.

Resource
    The first entry of `resources` is the resource: its ARN is resource_id, the last segment of the
    ARN resource_name, the last `::` part of its type (lower case) resource_type, so EC2's
    `AWS::EC2::Instance` becomes `instance`. Many events carry no resources; then a parameter that
    names the resource (bucketName, instanceId, functionName, roleName, ...) is taken from the
    request, the response (RunInstances names its new instance only there) or the service event
    details, in that order. Failing that, resource_type is the noun of the eventName (verb prefix
    and trailing prepositional phrase removed, plural made singular: DescribeInstances ->
    `instance`, AssumeRoleWithSAML -> `role`), written like the `resources` types so one filter
    finds both; the lower-case service type is the last resort, so resource_type is never empty.
    resource_account_id is the resource's account, else the recipient account, else the account
    of the EventBridge envelope.

Things left out
    `awsRegion` is not stored: EventBridge delivers a CloudTrail event only on the bus of the region
    where it was recorded (global services in us-east-1), so it is always the handler's own
    region, which the project already stands for. location_info (fault-locating data) and endpoint
    (a console host) have no CloudTrail counterpart and stay unset. `additionalEventData` (but
    for a sign-in's MFAUsed), `sharedEventID`, `eventCategory`, `tlsDetails` and `vpcEndpointId`
    are dropped as transport detail. request/response are compact, key-sorted JSON, so the same
    event always gives the same trace. sourceIPAddress is kept as CloudTrail wrote it, even when
    it is a service host name such as `ec2.amazonaws.com` or "AWS Internal": that is what
    CloudTrail knows about the caller. Every string is cut to the trace model's limit and
    stripped of control characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from chalicelib.model import TRACE_FIELDS

__all__ = ["SUPPORTED_DETAIL_TYPES", "UnsupportedEvent", "convert_event", "convert_record"]


class UnsupportedEvent(ValueError):
    """The event is not a CloudTrail operation this converter turns into a trace."""


API_CALL_DETAIL_TYPE: Final = "AWS API Call via CloudTrail"
SIGN_IN_DETAIL_TYPE: Final = "AWS Console Sign In via CloudTrail"
CONSOLE_ACTION_DETAIL_TYPE: Final = "AWS Console Action via CloudTrail"
SERVICE_EVENT_DETAIL_TYPE: Final = "AWS Service Event via CloudTrail"

SUPPORTED_DETAIL_TYPES: Final[frozenset[str]] = frozenset(
    {
        API_CALL_DETAIL_TYPE,
        SIGN_IN_DETAIL_TYPE,
        CONSOLE_ACTION_DETAIL_TYPE,
        SERVICE_EVENT_DETAIL_TYPE,
    }
)

_SIGN_IN_EVENT_TYPE: Final = "AwsConsoleSignIn"
_SYSTEM_ACTION: Final = "SystemAction"

_TRACE_TYPES: Final[Mapping[str, str]] = {
    "AwsApiCall": "ApiCall",
    "AwsConsoleSignIn": "ConsoleAction",
    "AwsConsoleAction": "ConsoleAction",
    "AwsServiceEvent": _SYSTEM_ACTION,
}
_DETAIL_TRACE_TYPES: Final[Mapping[str, str]] = {
    API_CALL_DETAIL_TYPE: "ApiCall",
    SIGN_IN_DETAIL_TYPE: "ConsoleAction",
    CONSOLE_ACTION_DETAIL_TYPE: "ConsoleAction",
    SERVICE_EVENT_DETAIL_TYPE: _SYSTEM_ACTION,
}

# Services whose CTS name is not their endpoint label upper-cased.
_SERVICE_TYPES: Final[Mapping[str, str]] = {
    "monitoring": "CLOUDWATCH",
    "signin": "IAM",
    "elasticloadbalancing": "ELB",
    "states": "STEPFUNCTIONS",
}

# Identities of a temporary session, whose ARN ends with the session name.
_SESSION_TYPES: Final = frozenset({"AssumedRole", "FederatedUser"})

_SIGN_IN_TRACE_NAMES: Final[Mapping[str, str]] = {
    "ConsoleLogin": "login",
    "SwitchRole": "login",
    "ConsoleLogout": "logout",
    "ExitRole": "logout",
}

# Parameters that name the resource of an event without `resources`, most specific first.
_NAMING_PARAMETERS: Final[tuple[tuple[str, str], ...]] = (
    ("bucketName", "bucket"),
    ("functionName", "function"),
    ("instanceId", "instance"),
    ("instancesSet", "instance"),
    ("instanceIdSet", "instance"),
    ("roleName", "role"),
    ("roleArn", "role"),
    ("groupName", "group"),
    ("userName", "user"),
    ("keyId", "key"),
    ("alarmName", "alarm"),
    ("topicArn", "topic"),
)

_VERBS: Final = frozenset(
    {
        "Accept",
        "Add",
        "Allocate",
        "Apply",
        "Assign",
        "Associate",
        "Assume",
        "Attach",
        "Authorize",
        "Batch",
        "Cancel",
        "Change",
        "Copy",
        "Create",
        "Decrypt",
        "Delete",
        "Deregister",
        "Describe",
        "Detach",
        "Disable",
        "Disassociate",
        "Download",
        "Enable",
        "Encrypt",
        "Export",
        "Generate",
        "Get",
        "Import",
        "Invoke",
        "List",
        "Lookup",
        "Modify",
        "Publish",
        "Put",
        "Reboot",
        "Receive",
        "Register",
        "Reject",
        "Release",
        "Remove",
        "Replace",
        "Request",
        "Reset",
        "Restore",
        "Revoke",
        "Rotate",
        "Run",
        "Schedule",
        "Search",
        "Send",
        "Set",
        "Start",
        "Stop",
        "Subscribe",
        "Tag",
        "Terminate",
        "Unsubscribe",
        "Untag",
        "Update",
        "Upload",
    }
)
# Status, Alias, Analysis, Access, Kudos: a final "s" that is not a plural.
_NOT_PLURAL_ENDINGS: Final = ("ss", "us", "is", "as", "os")
_PREPOSITIONS: Final = frozenset({"As", "By", "For", "From", "In", "Of", "On", "To", "With"})
_CAMEL_WORD: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z][a-z]*|[a-z]+|\d+")
# Lambda puts its API version in operation names: CreateFunction20150331, ...Code20150331v2.
_API_DATE_SUFFIX: Final = re.compile(r"\d{8}(?:v\d+)?$")

_TRACE_NAME_DISALLOWED: Final = re.compile(r"[^0-9A-Za-z._-]")
_TRACE_ID_DISALLOWED: Final = re.compile(r"[^A-Za-z0-9._:-]")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")

# Limits of the trace model (chalicelib/model.py), so that a converted trace always validates.
_NAME_LEN: Final = 64
_TRACE_ID_LEN: Final = 128
_RESOURCE_TYPE_LEN: Final = 128
_SOURCE_IP_LEN: Final = 128
_RESOURCE_ID_LEN: Final = 2048
_TEXT_LEN: Final = 1024
_SHORT_LEN: Final = 64
_REQUEST_ID_LEN: Final = 256
_DOMAIN_LEN: Final = 256
_INVOKED_BY_LEN: Final = 256

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)

_REQUIRED_FIELDS: Final = ("eventID", "eventName", "eventTime", "eventSource")


def convert_event(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """EventBridge envelope ({"detail-type":..., "source":..., "detail": {CloudTrail record}})
    -> raw CTS trace dict."""
    if not isinstance(envelope, Mapping):
        raise UnsupportedEvent("an EventBridge event must be a JSON object")
    detail_type = envelope.get("detail-type")
    if detail_type not in SUPPORTED_DETAIL_TYPES:
        raise UnsupportedEvent(f"unsupported detail-type: {str(detail_type)[:100]!r}")
    detail = envelope.get("detail")
    if not isinstance(detail, Mapping):
        raise UnsupportedEvent("the EventBridge event has no CloudTrail record in 'detail'")
    account = _text(envelope.get("account"))
    return _convert(detail, detail_type=str(detail_type), envelope_account=account)


def convert_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A bare CloudTrail record (as found in CloudTrail log files' "Records")
    -> raw CTS trace dict."""
    if not isinstance(record, Mapping):
        raise UnsupportedEvent("a CloudTrail record must be a JSON object")
    return _convert(record, detail_type=None, envelope_account=None)


def _convert(
    record: Mapping[str, Any], *, detail_type: str | None, envelope_account: str | None
) -> dict[str, Any]:
    for field in _REQUIRED_FIELDS:
        if _text(record.get(field)) is None:
            raise UnsupportedEvent(f"the CloudTrail record has no {field}")
    event_name: str = record["eventName"]
    trace_type = _trace_type(record.get("eventType"), detail_type)
    sign_in = record.get("eventType") == _SIGN_IN_EVENT_TYPE or detail_type == SIGN_IN_DETAIL_TYPE
    identity = _mapping(record.get("userIdentity"))
    user = _user(identity, _mapping(record.get("additionalEventData")) if sign_in else {})
    if sign_in:
        trace_name = _SIGN_IN_TRACE_NAMES.get(event_name, event_name)
        service_type = "IAM"
        resource = _Resource("user", _text(identity.get("arn")), user.get("name"))
    else:
        trace_name = event_name
        service_type = _name(_service_type(record["eventSource"]), prefix="S")
        resource = _resource(record)

    trace: dict[str, Any] = {
        "trace_id": _trace_id(record["eventID"]),
        "trace_name": _name(trace_name, prefix="e"),
        "trace_type": trace_type,
        "time": _epoch_ms(record["eventTime"]),
        "user": user,
        "service_type": service_type,
        "resource_type": _clip(resource.type or "", _RESOURCE_TYPE_LEN) or service_type.lower(),
        "source_ip": _clip(_text(record.get("sourceIPAddress")) or "", _SOURCE_IP_LEN),
        **_outcome(record, trace_type=trace_type, sign_in=sign_in),
    }
    for field, source in (("request", "requestParameters"), ("response", "responseElements")):
        if record.get(source) is not None:
            trace[field] = _json(record[source])
    _put(trace, "resource_id", resource.id, _RESOURCE_ID_LEN)
    _put(trace, "resource_name", resource.name, _TEXT_LEN)
    _put(trace, "api_version", record.get("eventVersion"), _SHORT_LEN)
    _put(trace, "request_id", record.get("requestID"), _REQUEST_ID_LEN)
    account = resource.account_id or _text(record.get("recipientAccountId")) or envelope_account
    _put(trace, "resource_account_id", account, _SHORT_LEN)
    read_only = _bool(record.get("readOnly"))
    if read_only is not None:
        trace["read_only"] = read_only
    _put(trace, "user_agent", record.get("userAgent"), _TEXT_LEN)
    # The CTS v3 Traces model's order, so converted traces read like the ones CTS documents.
    return {field: trace[field] for field in TRACE_FIELDS if field in trace}


def _outcome(record: Mapping[str, Any], *, trace_type: str, sign_in: bool) -> dict[str, str]:
    """trace_rating, code and message: how the operation ended."""
    event_name: str = record["eventName"]
    error_code = _text(record.get("errorCode"))
    sign_in_result = _mapping(record.get("responseElements")).get(event_name) if sign_in else None
    failed = error_code is not None or sign_in_result == "Failure"
    if failed:
        code: str | None = error_code or "Failure"
    else:
        code = None if trace_type == _SYSTEM_ACTION else "200"
    message = _text(record.get("errorMessage"))
    if message is None and failed:
        message = f"{event_name} failed"
    details = record.get("serviceEventDetails")
    if message is None and trace_type == _SYSTEM_ACTION and details is not None:
        message = _json(details)

    outcome = {"trace_rating": "warning" if failed else "normal"}
    _put(outcome, "code", code, _SHORT_LEN)
    if message is not None:
        outcome["message"] = _CONTROL.sub("", message)
    return outcome


def _trace_type(event_type: object, detail_type: str | None) -> str:
    if event_type is None:
        return _DETAIL_TRACE_TYPES.get(detail_type or API_CALL_DETAIL_TYPE, "ApiCall")
    if isinstance(event_type, str) and event_type in _TRACE_TYPES:
        return _TRACE_TYPES[event_type]
    raise UnsupportedEvent(f"unsupported CloudTrail eventType: {str(event_type)[:100]!r}")


def _service_type(event_source: str) -> str:
    label = event_source.split(".", 1)[0].lower()
    return _SERVICE_TYPES.get(label, label.upper())


@dataclass(frozen=True)
class _Resource:
    type: str | None
    id: str | None = None
    name: str | None = None
    account_id: str | None = None


def _resource(record: Mapping[str, Any]) -> _Resource:
    resources = record.get("resources")
    if isinstance(resources, Sequence) and not isinstance(resources, str):
        for entry in resources:
            if isinstance(entry, Mapping) and (arn := _text(entry.get("ARN"))) is not None:
                type_ = _type_from_cloudformation(entry.get("type"))
                return _Resource(
                    type_ or _type_from_event_name(record["eventName"]),
                    arn,
                    _last_segment(arn),
                    _text(entry.get("accountId")),
                )
    for source in ("requestParameters", "responseElements", "serviceEventDetails"):
        named = _named_in(_mapping(record.get(source)))
        if named is not None:
            return named
    return _Resource(_type_from_event_name(record["eventName"]))


def _named_in(parameters: Mapping[str, Any]) -> _Resource | None:
    for key, type_ in _NAMING_PARAMETERS:
        value = _identifier(parameters.get(key))
        if value is not None:
            return _Resource(type_, value, _last_segment(value))
    return None


def _identifier(value: object) -> str | None:
    """A resource identifier from a parameter: a string, a list of them, or EC2's item sets."""
    if isinstance(value, Mapping):
        value = value.get("items")
    if isinstance(value, Sequence) and not isinstance(value, str):
        for item in value:
            candidate = item.get("instanceId") if isinstance(item, Mapping) else item
            if (text := _text(candidate)) is not None:
                return text
        return None
    return _text(value)


def _type_from_cloudformation(value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return _text(text.rsplit("::", 1)[-1].lower())


def _type_from_event_name(event_name: str) -> str | None:
    words = _CAMEL_WORD.findall(_API_DATE_SUFFIX.sub("", event_name))
    stripped = False
    while len(words) > 1 and words[0] in _VERBS:
        words = words[1:]
        stripped = True
    if not stripped:
        return None
    for index, word in enumerate(words):
        if index > 0 and word in _PREPOSITIONS:
            words = words[:index]
            break
    words[-1] = _singular(words[-1])
    return "".join(words).lower() or None


def _singular(word: str) -> str:
    lower = word.lower()
    if len(lower) > 4 and lower.endswith("ies"):
        return word[:-3] + "y"
    if lower.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(lower) > 3 and lower.endswith("s") and not lower.endswith(_NOT_PLURAL_ENDINGS):
        return word[:-1]
    return word


def _last_segment(identifier: str) -> str:
    """The name at the end of an ARN (`...:role/path/Name` -> `Name`); other ids are names."""
    if not identifier.startswith("arn:"):
        return identifier
    resource_part = identifier.split(":", 5)[-1]
    segments = [part for part in re.split(r"[/:]", resource_part) if part]
    return segments[-1] if segments else identifier


def _user(identity: Mapping[str, Any], sign_in_data: Mapping[str, Any]) -> dict[str, Any]:
    if not identity:
        return {}
    kind = _text(identity.get("type"))
    account_id = _text(identity.get("accountId"))
    invoked_by = _text(identity.get("invokedBy"))
    user: dict[str, Any] = {}
    _put(user, "id", identity.get("principalId"), _TEXT_LEN)
    _put(user, "name", _principal_name(identity), _TEXT_LEN)
    _put(user, "user_name", _user_name(identity), _TEXT_LEN)
    if account_id is not None:
        domain = {"id": _clip(account_id, _DOMAIN_LEN)}
        # The root user's userName is the account alias: the account's (domain's) name.
        if kind == "Root":
            _put(domain, "name", identity.get("userName"), _DOMAIN_LEN)
        user["domain"] = domain
    _put(user, "account_id", account_id, _TEXT_LEN)
    _put(user, "access_key_id", identity.get("accessKeyId"), _TEXT_LEN)
    _put(user, "principal_urn", identity.get("arn"), _TEXT_LEN)
    _put(user, "principal_id", identity.get("principalId"), _TEXT_LEN)
    user["principal_is_root_user"] = "true" if kind == "Root" else "false"
    _put(user, "type", kind, _TEXT_LEN)
    if invoked_by is not None:
        user["invoked_by"] = [_clip(invoked_by, _INVOKED_BY_LEN)]
    attributes = _session_attributes(identity, sign_in_data)
    if attributes:
        user["session_context"] = {"attributes": attributes}
    return user


def _principal_name(identity: Mapping[str, Any]) -> str | None:
    kind = identity.get("type")
    arn = _text(identity.get("arn"))
    user_name = _text(identity.get("userName"))
    invoked_by = _text(identity.get("invokedBy"))
    if kind == "Root":
        return "root"
    if kind in _SESSION_TYPES and arn is not None:
        return _last_segment(arn)
    if kind == "AWSService" and invoked_by is not None:
        return invoked_by
    return (
        user_name
        or (_last_segment(arn) if arn else None)
        or invoked_by
        or _text(identity.get("principalId"))
        or _text(identity.get("accountId"))
    )


def _user_name(identity: Mapping[str, Any]) -> str | None:
    kind = identity.get("type")
    if kind == "Root":
        return None
    if kind in _SESSION_TYPES:
        issuer = _mapping(_mapping(identity.get("sessionContext")).get("sessionIssuer"))
        issuer_name = _text(issuer.get("userName"))
        arn = _text(identity.get("arn")) or ""
        # Sign-in records carry no sessionIssuer; the ARN still reads assumed-role/<role>/<session>.
        if issuer_name is None and ":assumed-role/" in arn:
            issuer_name = _text(arn.split(":assumed-role/", 1)[1].split("/", 1)[0])
        return _text(identity.get("userName")) or issuer_name
    return _text(identity.get("userName"))


def _session_attributes(
    identity: Mapping[str, Any], sign_in_data: Mapping[str, Any]
) -> dict[str, str]:
    attributes = _mapping(_mapping(identity.get("sessionContext")).get("attributes"))
    session: dict[str, str] = {}
    _put(session, "created_at", attributes.get("creationDate"), _SHORT_LEN)
    mfa = _flag(attributes.get("mfaAuthenticated"))
    if mfa is None and (used := _text(sign_in_data.get("MFAUsed"))) is not None:
        mfa = "true" if used.lower() == "yes" else "false"
    _put(session, "mfa_authenticated", mfa, _SHORT_LEN)
    return session


def _epoch_ms(value: str) -> int:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise UnsupportedEvent(f"eventTime is not an ISO 8601 time: {value[:100]!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_MS


def _name(value: str, *, prefix: str) -> str:
    """A trace_name/service_type: letter first, then letters, digits, '.', '_', '-'; 64 at most."""
    name = _TRACE_NAME_DISALLOWED.sub("_", value)
    if not name[:1].isalpha():  # after the substitution above, only ASCII letters are alphabetic
        name = prefix + name
    return name[:_NAME_LEN]


def _trace_id(value: str) -> str:
    return _TRACE_ID_DISALLOWED.sub("_", value)[:_TRACE_ID_LEN]


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _text(value: object) -> str | None:
    """A non-empty string, or None: CloudTrail writes "" where it has nothing to say."""
    return value if isinstance(value, str) and value else None


def _clip(value: str, limit: int) -> str:
    return _CONTROL.sub("", value)[:limit]


def _put(target: dict[str, Any], key: str, value: object, limit: int) -> None:
    text = _text(value)
    if text is not None and (clipped := _clip(text, limit)):
        target[key] = clipped


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _flag(value: object) -> str | None:
    """CloudTrail's "true"/"false" (occasionally a JSON boolean) as CTS's "true"/"false"."""
    flag = _bool(value)
    return None if flag is None else str(flag).lower()


def _bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None
