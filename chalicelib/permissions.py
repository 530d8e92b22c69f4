"""Who may do what: the CTS policies, the action of every API operation, and the one check.

An access key carries a policy: the name of a system policy (`CTS FullAccess`,
`CTS ReadOnlyAccess`, `CTS Administrator`) or a list of fine-grained actions (seeds: overview
Table 8-2 and 8-3). Every API operation is mapped to exactly one action, keyed by the HTTP method
and the route path exactly as `app.py` declares it, so the authorization check can run in one place
before any handler, from `event.method` and `event.context["resourcePath"]`.

Decisions (the seeds name some actions; the rest follow their `cts:<resource>:<verb>` pattern):

- The seeds' actions: `cts:trace:list`, `cts:trace:listResource` (ListTraceResources),
  `cts:trace:listTraceUser` (ListUserResources), `cts:quota:get`,
  `cts:tracker:create|update|delete|list`, `cts:notification:create|update|delete|list`,
  `cts:tag:create|delete`. Enabling or disabling a tracker or a notification is an update, as in
  Table 8-2.
- Ours: `cts:trace:report` (ingest, POST traces), `cts:trace:export` (CSV export: bulk extraction
  deserves its own grant, and the user guide audits it as its own operation, `getTrace`),
  `cts:trace:listOperation` (ListOperations, beside listResource and listTraceUser),
  `cts:notification:test` (which traces a notification would match), `cts:tracker:checkBucket`
  (CheckObsBuckets: part of configuring a tracker's transfer, so `cts:tracker:*` covers it) and
  `cts:publicKey:list` (the CloudTrail-compatible ListPublicKeys for digest validation).
- `CTS FullAccess` and `CTS Administrator` allow every action. In Huawei Cloud they differ only
  in what they grant on other services (IAM, OBS), which OpenCTS does not have. Both include
  `cts:trace:report`: they are "all operations on CTS", and the local stack's demo key
  (`CTS FullAccess`) reports the demo traces. A service that only reports traces should get a
  custom policy `["cts:trace:report"]`: reporting writes into the audit trail, so it is the one
  grant to keep narrow.
- `CTS ReadOnlyAccess` allows every action that changes nothing: the listings, quotas, export
  (it reveals no more than listing does), notification tests (they read traces and notifications,
  which read-only keys may read) and the public keys. It excludes `cts:trace:report` (a write into
  the audit trail) and `cts:tracker:checkBucket` (it makes the service write a probe to a bucket).
- A fine-grained action may use `*` for a whole segment: `cts:*:*`, `cts:tracker:*`,
  `cts:*:list`. A policy is checked when a key is created: unknown system policy names and
  patterns that match no action are refused, so a typo never yields a key that silently can do
  nothing.
- Fail closed: a route missing from the table is forbidden to every key (a test asserts that every
  route app.py declares is in the table). The one exception is the catch-all route that answers
  unknown paths with a CTS 404: it serves no operation, so any authenticated key reaches it (an
  unsigned request is still refused first, so only key holders learn which paths exist).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from chalicelib.errors import CtsError, invalid_parameter

FULL_ACCESS = "CTS FullAccess"
READ_ONLY_ACCESS = "CTS ReadOnlyAccess"
ADMINISTRATOR = "CTS Administrator"

# A system policy name, or fine-grained action patterns.
Policy = str | tuple[str, ...]

# Whose id the route's `{project_id}` path segment holds: a project, a domain (API Gateway allows
# one variable name per path level, so the domain routes name it project_id too), or none.
Scope = Literal["project", "domain", "service"]

MAX_ACTIONS = 100
_PATTERN_RE = re.compile(r"^(\*|[a-z]+):(\*|[a-zA-Z]+):(\*|[a-zA-Z]+)$")

FORBIDDEN_MESSAGE = "The access key is not allowed to perform this operation on this resource"


@dataclass(frozen=True)
class Operation:
    name: str
    action: str
    scope: Scope = "project"


# (HTTP method, Chalice route path) -> operation. SPEC 5 and the OpenCTS extensions.
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/v3/{project_id}/traces"): Operation("ListTraces", "cts:trace:list"),
    ("POST", "/v3/{project_id}/traces"): Operation("ReportTraces", "cts:trace:report"),
    ("GET", "/v3/{project_id}/traces/export"): Operation("ExportTraces", "cts:trace:export"),
    ("POST", "/v3/{project_id}/tracker"): Operation("CreateTracker", "cts:tracker:create"),
    ("PUT", "/v3/{project_id}/tracker"): Operation("UpdateTracker", "cts:tracker:update"),
    ("GET", "/v3/{project_id}/trackers"): Operation("ListTrackers", "cts:tracker:list"),
    ("DELETE", "/v3/{project_id}/trackers"): Operation("DeleteTracker", "cts:tracker:delete"),
    ("POST", "/v3/{project_id}/notifications"): Operation(
        "CreateNotification", "cts:notification:create"
    ),
    ("PUT", "/v3/{project_id}/notifications"): Operation(
        "UpdateNotification", "cts:notification:update"
    ),
    ("GET", "/v3/{project_id}/notifications/{notification_type}"): Operation(
        "ListNotifications", "cts:notification:list"
    ),
    ("DELETE", "/v3/{project_id}/notifications"): Operation(
        "DeleteNotification", "cts:notification:delete"
    ),
    ("POST", "/v3/{project_id}/notifications/test"): Operation(
        "TestNotification", "cts:notification:test"
    ),
    ("GET", "/v3/{project_id}/quotas"): Operation("ListQuotas", "cts:quota:get"),
    ("GET", "/v3/{project_id}/resources"): Operation(
        "ListTraceResources", "cts:trace:listResource", "domain"
    ),
    ("GET", "/v3/{project_id}/user-resources"): Operation(
        "ListUserResources", "cts:trace:listTraceUser"
    ),
    ("GET", "/v3/{project_id}/operations"): Operation("ListOperations", "cts:trace:listOperation"),
    ("POST", "/v3/{project_id}/{resource_type}/{resource_id}/tags/create"): Operation(
        "BatchCreateResourceTags", "cts:tag:create"
    ),
    ("DELETE", "/v3/{project_id}/{resource_type}/{resource_id}/tags/delete"): Operation(
        "BatchDeleteResourceTags", "cts:tag:delete"
    ),
    ("POST", "/v3/{project_id}/checkbucket"): Operation(
        "CheckObsBuckets", "cts:tracker:checkBucket", "domain"
    ),
    # CloudTrail's JSON protocol posts every action to "/" (X-Amz-Target names the action).
    ("POST", "/"): Operation("ListPublicKeys", "cts:publicKey:list", "service"),
}

ACTIONS: frozenset[str] = frozenset(op.action for op in OPERATIONS.values())

# Routes that serve no operation: the greedy route that answers unknown paths with CTS.0009.
CATCH_ALL_ROUTES = frozenset({"/{proxy+}"})
# Routes anyone may GET without a signature: the web console's own files (its API calls are
# signed in the browser like any other client's) and the API's OpenAPI document.
PUBLIC_ROUTES = frozenset({"/console", "/console/{asset}", "/openapi.json"})
# Operations served without a signature: CloudTrail's ListPublicKeys (POST / with X-Amz-Target),
# because public keys are public and `aws cloudtrail validate-logs` signs with SigV4, not SDK-HMAC.
PUBLIC_OPERATIONS = frozenset({("POST", "/")})


def is_public(method: str, route: str) -> bool:
    """Whether a request needs no signature: checked by the authenticate middleware."""
    return route in PUBLIC_ROUTES or (method.upper(), route) in PUBLIC_OPERATIONS

_READ_ONLY_ACTIONS = frozenset(
    {
        "cts:trace:list",
        "cts:trace:export",
        "cts:trace:listResource",
        "cts:trace:listTraceUser",
        "cts:trace:listOperation",
        "cts:tracker:list",
        "cts:notification:list",
        "cts:notification:test",
        "cts:quota:get",
        "cts:publicKey:list",
    }
)

SYSTEM_POLICIES: dict[str, frozenset[str]] = {
    FULL_ACCESS: ACTIONS,
    READ_ONLY_ACCESS: _READ_ONLY_ACTIONS,
    ADMINISTRATOR: ACTIONS,
}


class Grant(Protocol):
    """What authorization needs from an access key (chalicelib.access_keys.AccessKey)."""

    @property
    def domain_id(self) -> str: ...

    @property
    def project_ids(self) -> tuple[str, ...]: ...

    @property
    def policy(self) -> Policy: ...


class UnknownOperation(LookupError):
    """No action is mapped to this (method, route): a route added without a permission."""


class Forbidden(CtsError):
    """403 with one message for every cause; `reason` is for the logs, never the response."""

    def __init__(self, reason: str) -> None:
        super().__init__(403, "CTS.0403", FORBIDDEN_MESSAGE)
        self.reason = reason


def operation_for(method: str, route: str) -> Operation:
    try:
        return OPERATIONS[(method.upper(), route)]
    except KeyError:
        raise UnknownOperation(f"{method.upper()} {route}") from None


def action_for(method: str, route: str) -> str:
    """The action that the operation on (HTTP method, Chalice route path) requires."""
    return operation_for(method, route).action


def _matches(pattern: str, action: str) -> bool:
    want = pattern.split(":")
    have = action.split(":")
    return len(want) == len(have) and all(w in ("*", h) for w, h in zip(want, have, strict=True))


def allows(policy: Policy, action: str) -> bool:
    """Does the policy allow the action? Unknown system policy names allow nothing."""
    if isinstance(policy, str):
        return action in SYSTEM_POLICIES.get(policy, frozenset())
    return any(_matches(pattern, action) for pattern in policy)


def check_policy(policy: str | Sequence[str]) -> Policy:
    """The policy in stored form (a name, or a sorted tuple of unique patterns), or CTS.0001.

    Refuses what would make a key that can do less than its creator meant: an unknown system
    policy name, an empty list, a malformed action, a pattern that matches no action.
    """
    if isinstance(policy, str):
        if policy not in SYSTEM_POLICIES:
            names = ", ".join(SYSTEM_POLICIES)
            raise invalid_parameter("policy", f"unknown system policy {policy!r} (one of: {names})")
        return policy
    if not all(isinstance(pattern, str) for pattern in policy):
        raise invalid_parameter("policy", "actions must be strings")
    patterns = tuple(sorted(set(policy)))
    if not patterns:
        raise invalid_parameter("policy", "give a system policy or at least one action")
    if len(patterns) > MAX_ACTIONS:
        raise invalid_parameter("policy", f"at most {MAX_ACTIONS} actions")
    for pattern in patterns:
        if not _PATTERN_RE.match(pattern):
            raise invalid_parameter(
                "policy", f"{pattern!r} is not an action such as cts:trace:list or cts:tracker:*"
            )
        if not any(_matches(pattern, action) for action in ACTIONS):
            raise invalid_parameter("policy", f"{pattern!r} matches no CTS action")
    return patterns


def authorize(key: Grant, method: str, route: str, project_or_domain_id: str) -> None:
    """Raises Forbidden unless the key's policy allows the operation on that project or domain.

    Project routes check the key's projects; domain routes (ListTraceResources, CheckObsBuckets)
    check the key's domain. Wrong project, wrong domain, forbidden action and unmapped route all
    answer the same 403, so a caller cannot probe which projects exist or what a key may do.
    """
    if route in CATCH_ALL_ROUTES:
        return
    try:
        operation = operation_for(method, route)
    except UnknownOperation as e:
        raise Forbidden(f"no action is mapped to {e}") from None
    if operation.scope == "project" and project_or_domain_id not in key.project_ids:
        raise Forbidden(f"project {project_or_domain_id!r} is not among the key's projects")
    if operation.scope == "domain" and project_or_domain_id != key.domain_id:
        raise Forbidden(f"domain {project_or_domain_id!r} is not the key's domain")
    if not allows(key.policy, operation.action):
        raise Forbidden(f"the key's policy does not allow {operation.action}")
