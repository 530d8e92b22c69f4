"""Permissions: every API operation x every system policy, written out; custom action lists and
wildcards; project and domain scope; one 403 for every refusal."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from chalicelib.errors import CtsError
from chalicelib.permissions import (
    ACTIONS,
    ADMINISTRATOR,
    CATCH_ALL_ROUTES,
    FORBIDDEN_MESSAGE,
    FULL_ACCESS,
    OPERATIONS,
    PUBLIC_ROUTES,
    READ_ONLY_ACCESS,
    SYSTEM_POLICIES,
    Forbidden,
    Policy,
    UnknownOperation,
    action_for,
    allows,
    authorize,
    check_policy,
)

PROJECT = "demo-project"
OTHER_PROJECT = "other-project"
DOMAIN = "123456789012"
OTHER_DOMAIN = "210987654321"

Y, N = True, False

# method, route as app.py declares it,                         operation,          action,
#                                                               FullAccess, ReadOnly, Administrator
MATRIX: list[tuple[str, str, str, str, bool, bool, bool]] = [
    ("GET", "/v3/{project_id}/traces", "ListTraces", "cts:trace:list", Y, Y, Y),
    ("POST", "/v3/{project_id}/traces", "ReportTraces", "cts:trace:report", Y, N, Y),
    ("GET", "/v3/{project_id}/traces/export", "ExportTraces", "cts:trace:export", Y, Y, Y),
    ("POST", "/v3/{project_id}/tracker", "CreateTracker", "cts:tracker:create", Y, N, Y),
    ("PUT", "/v3/{project_id}/tracker", "UpdateTracker", "cts:tracker:update", Y, N, Y),
    ("GET", "/v3/{project_id}/trackers", "ListTrackers", "cts:tracker:list", Y, Y, Y),
    ("DELETE", "/v3/{project_id}/trackers", "DeleteTracker", "cts:tracker:delete", Y, N, Y),
    ("POST", "/v3/{project_id}/notifications", "CreateNotification",
     "cts:notification:create", Y, N, Y),
    ("PUT", "/v3/{project_id}/notifications", "UpdateNotification",
     "cts:notification:update", Y, N, Y),
    ("GET", "/v3/{project_id}/notifications/{notification_type}", "ListNotifications",
     "cts:notification:list", Y, Y, Y),
    ("DELETE", "/v3/{project_id}/notifications", "DeleteNotification",
     "cts:notification:delete", Y, N, Y),
    ("POST", "/v3/{project_id}/notifications/test", "TestNotification",
     "cts:notification:test", Y, Y, Y),
    ("GET", "/v3/{project_id}/quotas", "ListQuotas", "cts:quota:get", Y, Y, Y),
    ("GET", "/v3/{project_id}/resources", "ListTraceResources", "cts:trace:listResource", Y, Y, Y),
    ("GET", "/v3/{project_id}/user-resources", "ListUserResources",
     "cts:trace:listTraceUser", Y, Y, Y),
    ("GET", "/v3/{project_id}/operations", "ListOperations", "cts:trace:listOperation", Y, Y, Y),
    ("POST", "/v3/{project_id}/{resource_type}/{resource_id}/tags/create",
     "BatchCreateResourceTags", "cts:tag:create", Y, N, Y),
    ("DELETE", "/v3/{project_id}/{resource_type}/{resource_id}/tags/delete",
     "BatchDeleteResourceTags", "cts:tag:delete", Y, N, Y),
    ("POST", "/v3/{project_id}/checkbucket", "CheckObsBuckets", "cts:tracker:checkBucket",
     Y, N, Y),
    ("POST", "/", "ListPublicKeys", "cts:publicKey:list", Y, Y, Y),
]
POLICY_COLUMNS = (FULL_ACCESS, READ_ONLY_ACCESS, ADMINISTRATOR)
DOMAIN_OPERATIONS = {"ListTraceResources", "CheckObsBuckets"}
SERVICE_OPERATIONS = {"ListPublicKeys"}


@dataclass(frozen=True)
class Key:
    domain_id: str
    project_ids: tuple[str, ...]
    policy: Policy


def key(policy: Policy, *projects: str) -> Key:
    return Key(DOMAIN, projects or (PROJECT,), policy)


def scope_id(operation: str) -> str:
    return DOMAIN if operation in DOMAIN_OPERATIONS else PROJECT


def refused(grant: Key, method: str, route: str, scope: str) -> Forbidden:
    with pytest.raises(Forbidden) as caught:
        authorize(grant, method, route, scope)
    error = caught.value
    assert isinstance(error, CtsError)
    assert error.status == 403
    assert error.body() == {"error_code": "CTS.0403", "error_msg": FORBIDDEN_MESSAGE}
    return error


# -- the matrix ------------------------------------------------------------------------------------
def test_the_matrix_lists_every_operation_exactly_once() -> None:
    assert sorted((m, r) for m, r, *_ in MATRIX) == sorted(OPERATIONS)
    assert {row[2] for row in MATRIX} == {op.name for op in OPERATIONS.values()}
    assert len({row[2] for row in MATRIX}) == len(MATRIX)


@pytest.mark.parametrize("row", MATRIX, ids=[row[2] for row in MATRIX])
def test_every_operation_maps_to_its_action(
    row: tuple[str, str, str, str, bool, bool, bool],
) -> None:
    method, route, name, action, *_ = row
    assert action_for(method, route) == action
    assert action_for(method.lower(), route) == action
    assert OPERATIONS[(method, route)].name == name


@pytest.mark.parametrize("policy", POLICY_COLUMNS)
@pytest.mark.parametrize("row", MATRIX, ids=[row[2] for row in MATRIX])
def test_every_operation_under_every_system_policy(
    row: tuple[str, str, str, str, bool, bool, bool], policy: str
) -> None:
    method, route, name, action, *expected = row
    allowed = dict(zip(POLICY_COLUMNS, expected, strict=True))[policy]
    grant = key(policy)

    assert allows(policy, action) is allowed
    if allowed:
        authorize(grant, method, route, scope_id(name))
    else:
        assert "does not allow" in refused(grant, method, route, scope_id(name)).reason


def test_full_access_and_administrator_allow_every_action() -> None:
    assert SYSTEM_POLICIES[FULL_ACCESS] == SYSTEM_POLICIES[ADMINISTRATOR] == ACTIONS


# -- project and domain scope ----------------------------------------------------------------------
@pytest.mark.parametrize("row", MATRIX, ids=[row[2] for row in MATRIX])
def test_a_key_reaches_only_its_projects_or_its_domain(
    row: tuple[str, str, str, str, bool, bool, bool],
) -> None:
    method, route, name, *_ = row
    grant = key(FULL_ACCESS, PROJECT)
    if name in SERVICE_OPERATIONS:
        authorize(grant, method, route, "")
        return
    if name in DOMAIN_OPERATIONS:
        authorize(grant, method, route, DOMAIN)
        refused(grant, method, route, OTHER_DOMAIN)
        refused(grant, method, route, PROJECT)  # a project id is not a domain id
    else:
        authorize(grant, method, route, PROJECT)
        refused(grant, method, route, OTHER_PROJECT)
        refused(grant, method, route, DOMAIN)  # a domain id is not one of its projects


def test_a_key_with_several_projects_reaches_each() -> None:
    grant = key(READ_ONLY_ACCESS, PROJECT, OTHER_PROJECT)
    for project in (PROJECT, OTHER_PROJECT):
        authorize(grant, "GET", "/v3/{project_id}/traces", project)
    refused(grant, "GET", "/v3/{project_id}/traces", "third-project")


def test_wrong_project_and_forbidden_action_answer_the_same() -> None:
    wrong_project = refused(key(FULL_ACCESS), "GET", "/v3/{project_id}/traces", OTHER_PROJECT)
    forbidden = refused(key(READ_ONLY_ACCESS), "POST", "/v3/{project_id}/tracker", PROJECT)
    unmapped = refused(key(FULL_ACCESS), "PATCH", "/v3/{project_id}/tracker", PROJECT)
    assert wrong_project.body() == forbidden.body() == unmapped.body()
    assert len({wrong_project.reason, forbidden.reason, unmapped.reason}) == 3


def test_an_unmapped_route_is_an_error_to_code_and_forbidden_to_callers() -> None:
    with pytest.raises(UnknownOperation):
        action_for("GET", "/v3/{project_id}/secrets")
    refused(key(("cts:*:*",)), "GET", "/v3/{project_id}/secrets", PROJECT)


# -- custom action lists ---------------------------------------------------------------------------
CUSTOM: list[tuple[tuple[str, ...], set[str]]] = [
    (("cts:trace:list",), {"ListTraces"}),
    (("cts:trace:report",), {"ReportTraces"}),
    (("cts:trace:list", "cts:trace:export"), {"ListTraces", "ExportTraces"}),
    (
        ("cts:tracker:*",),
        {"CreateTracker", "UpdateTracker", "ListTrackers", "DeleteTracker", "CheckObsBuckets"},
    ),
    (
        ("cts:*:list",),
        {"ListTraces", "ListTrackers", "ListNotifications", "ListPublicKeys"},
    ),
    (
        ("cts:notification:*", "cts:quota:get"),
        {
            "CreateNotification",
            "UpdateNotification",
            "ListNotifications",
            "DeleteNotification",
            "TestNotification",
            "ListQuotas",
        },
    ),
    (("cts:tag:create", "cts:tag:delete"), {"BatchCreateResourceTags", "BatchDeleteResourceTags"}),
    (("cts:*:*",), {row[2] for row in MATRIX}),
    (("*:*:*",), {row[2] for row in MATRIX}),
    (("*:trace:*",), {"ListTraces", "ReportTraces", "ExportTraces", "ListTraceResources",
                      "ListUserResources", "ListOperations"}),
]


@pytest.mark.parametrize(("actions", "allowed"), CUSTOM, ids=[",".join(c[0]) for c in CUSTOM])
def test_custom_action_lists_allow_exactly_their_operations(
    actions: tuple[str, ...], allowed: set[str]
) -> None:
    policy = check_policy(list(actions))
    grant = key(policy)
    for method, route, name, *_ in MATRIX:
        if name in allowed:
            authorize(grant, method, route, scope_id(name))
        else:
            refused(grant, method, route, scope_id(name))


def test_check_policy_keeps_system_names_and_sorts_unique_actions() -> None:
    assert check_policy(FULL_ACCESS) == FULL_ACCESS
    assert check_policy(["cts:trace:list", "cts:quota:get", "cts:trace:list"]) == (
        "cts:quota:get",
        "cts:trace:list",
    )


@pytest.mark.parametrize(
    "policy",
    [
        "CTS FullAcess",
        "cts:trace:list",
        "",
        [],
        ["cts:trace"],
        ["cts:trace:list:extra"],
        ["CTS:TRACE:LIST"],
        ["cts:trace:listAll"],
        ["cts:bucket:*"],
        ["obs:*:*"],
        ["cts:trace:li*"],
        ["cts:trace:list", 7],
        [f"cts:trace:{'x' * i}" for i in range(1, 102)],
    ],
)
def test_check_policy_refuses_what_would_make_a_useless_key(policy: object) -> None:
    with pytest.raises(CtsError) as caught:
        check_policy(policy)  # type: ignore[arg-type]
    assert caught.value.code == "CTS.0001"


def test_unknown_system_policy_names_allow_nothing() -> None:
    assert not any(allows("CTS Everything", action) for action in ACTIONS)
    assert not any(allows((), action) for action in ACTIONS)


# -- the table covers the app ----------------------------------------------------------------------
def test_every_route_app_py_declares_has_an_action() -> None:
    import app as app_module  # noqa: PLC0415 - the app is imported only for its route table

    declared = {
        (method, path)
        for path, methods in app_module.app.routes.items()
        for method in methods
    }
    assert declared
    unmapped = {
        (method, route)
        for method, route in declared
        if route not in CATCH_ALL_ROUTES | PUBLIC_ROUTES
    }
    assert unmapped - set(OPERATIONS) == set()


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
def test_the_not_found_catch_all_is_open_to_every_authenticated_key(method: str) -> None:
    for policy in (READ_ONLY_ACCESS, ("cts:quota:get",)):
        authorize(key(policy), method, "/{proxy+}", "")
    with pytest.raises(UnknownOperation):
        action_for(method, "/{proxy+}")
