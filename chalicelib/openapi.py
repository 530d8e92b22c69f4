"""The OpenAPI 3 document of the whole API, served at `/openapi.json`.

Written by hand next to the handlers, and kept true by tests: every route app.py declares is here
(and nothing else), schemathesis sends generated requests (signed) to a real server and checks each
response against this document, and the SDK-shaped bodies are the ones the handlers return. The
console's files and this document are public and not part of the API.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.model import (
    MANAGEMENT_TYPES,
    RATINGS,
    SERVICE_TYPE_RE,
    TRACKER_NAME_RE,
)
from chalicelib.query import MAX_FILTER_LEN

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error_code", "error_msg"],
        "properties": {
            "error_code": {"type": "string", "pattern": r"^CTS\.\d{4}$"},
            "error_msg": STRING,
        },
        "additionalProperties": False,
    },
    "User": {"type": "object", "properties": {"id": STRING, "name": STRING, "domain": ANY_OBJECT}},
    "Trace": _object(
        {
            "trace_id": STRING,
            "trace_name": STRING,
            "trace_rating": {"type": "string", "enum": sorted(RATINGS)},
            "trace_type": STRING,
            "time": INTEGER,
            "record_time": INTEGER,
            "service_type": STRING,
            "resource_type": STRING,
        },
        {
            "user": _ref("User"),
            "resource_id": STRING,
            "resource_name": STRING,
            "source_ip": STRING,
            "request": STRING,
            "response": STRING,
            "code": STRING,
            "api_version": STRING,
            "message": STRING,
            "request_id": STRING,
            "location_info": STRING,
            "endpoint": STRING,
            "resource_url": STRING,
            "enterprise_project_id": STRING,
            "tracker_name": STRING,
        },
    ),
    "ReportedTrace": _object(
        {
            "trace_name": STRING,
            "trace_rating": {"type": "string", "enum": sorted(RATINGS)},
            "trace_type": {"type": "string", "enum": sorted(MANAGEMENT_TYPES)},
            "time": INTEGER,
            "service_type": STRING,
            "resource_type": STRING,
        },
        {
            "trace_id": STRING,
            "user": _ref("User"),
            "resource_id": STRING,
            "resource_name": STRING,
            "source_ip": STRING,
            "code": STRING,
            "message": STRING,
        },
    ),
    # Each trace is checked on its own and answered in its own result (a bad trace is
    # `rejected` with its CTS error, the others are stored), so the body's items may be anything;
    # ReportedTrace says what a trace that is stored looks like.
    "ReportTracesRequest": _object({"traces": {"type": "array", "maxItems": 500, "items": {}}}),
    "ReportTracesResponse": _object(
        {
            "results": _array(
                _object(
                    {"status": STRING, "index": INTEGER},
                    {
                        "trace_id": {"type": "string", "nullable": True},
                        "error_code": STRING,
                        "error_msg": STRING,
                    },
                )
            ),
            "meta_data": _object(
                {"stored": INTEGER, "duplicate": INTEGER, "rejected": INTEGER, "failed": INTEGER}
            ),
        }
    ),
    "ListTracesResponse": _object(
        {
            "traces": _array(_ref("Trace")),
            "meta_data": _object(
                {"count": INTEGER}, {"marker": {"type": "string", "nullable": True}}
            ),
        }
    ),
    "ExportRedirect": _object({"export_url": STRING, "rows": INTEGER}),
    "ObsInfo": {
        "type": "object",
        "properties": {
            "bucket_name": STRING,
            "file_prefix_name": STRING,
            "is_obs_created": BOOLEAN,
            "is_authorized_bucket": BOOLEAN,
            "bucket_lifecycle": INTEGER,
            "compress_type": {"type": "string", "enum": ["gzip", "json"]},
            "is_sort_by_service": BOOLEAN,
        },
    },
    "DataBucket": {
        "type": "object",
        "properties": {
            "data_bucket_name": STRING,
            "data_event": _array({"type": "string", "enum": ["READ", "WRITE"]}),
        },
    },
    "TrackerRequest": _object(
        {
            "tracker_type": {"type": "string", "enum": ["system", "data"]},
            "tracker_name": STRING,
        },
        {
            "status": {"type": "string", "enum": ["enabled", "disabled"]},
            "obs_info": _ref("ObsInfo"),
            "is_lts_enabled": BOOLEAN,
            "is_support_trace_files_encryption": BOOLEAN,
            "kms_id": STRING,
            "is_support_validate": BOOLEAN,
            "data_bucket": _ref("DataBucket"),
            "management_event_selector": ANY_OBJECT,
            "agency_name": STRING,
            "is_organization_tracker": BOOLEAN,
        },
    ),
    "Tracker": _object(
        {
            "id": STRING,
            "tracker_name": STRING,
            "tracker_type": {"type": "string", "enum": ["system", "data"]},
            "status": {"type": "string", "enum": ["enabled", "disabled", "error"]},
        },
        {
            "create_time": INTEGER,
            "domain_id": STRING,
            "project_id": STRING,
            "detail": STRING,
            "obs_info": _ref("ObsInfo"),
            "data_bucket": _ref("DataBucket"),
            "lts": ANY_OBJECT,
            "is_support_validate": BOOLEAN,
            "is_support_trace_files_encryption": BOOLEAN,
            "kms_id": STRING,
            "tags": _array(_ref("Tag")),
            "integrity": _object(
                {"status": {"type": "string", "enum": ["current", "behind", "none"]}},
                {"last_digest_time": INTEGER, "last_digest": STRING},
            ),
        },
    ),
    "ListTrackersResponse": _object({"trackers": _array(_ref("Tracker"))}),
    "Tag": _object({"key": STRING}, {"value": STRING}),
    "TagsRequest": _object({"tags": _array(_ref("Tag"))}),
    "QuotasResponse": _object(
        {"resources": _array(_object({"type": STRING, "used": INTEGER, "quota": INTEGER}))}
    ),
    "ResourcesResponse": _object(
        {"resources": _array(_object({"service_type": STRING, "resource": _array(STRING)}))}
    ),
    "UsersResponse": _object({"users": _array(_object({"id": STRING, "name": STRING}))}),
    "OperationsResponse": _object(
        {
            "operations": _array(
                _object(
                    {
                        "service_type": STRING,
                        "resource_type": STRING,
                        "operation_list": _array(STRING),
                    }
                )
            )
        }
    ),
    "CheckBucketsRequest": _object(
        {
            "buckets": _array(
                _object(
                    {"bucket_name": STRING, "bucket_location": STRING},
                    {"kms_id": STRING, "is_support_trace_files_encryption": BOOLEAN},
                )
            )
        }
    ),
    "CheckBucketsResponse": _object({"buckets": _array(ANY_OBJECT)}),
    "CloudTrailError": _object(
        {"__type": STRING, "message": STRING, "error_code": STRING, "error_msg": STRING}
    ),
    "ListPublicKeysRequest": {
        "type": "object",
        "properties": {
            "StartTime": {"type": "number", "minimum": 0, "maximum": 32503679999},
            "EndTime": {"type": "number", "minimum": 0, "maximum": 32503679999},
            "NextToken": STRING,
        },
        "additionalProperties": False,
    },
    "ListPublicKeysResponse": _object(
        {
            "PublicKeyList": _array(
                _object(
                    {
                        "Value": STRING,
                        "ValidityStartTime": {"type": "number"},
                        "ValidityEndTime": {"type": "number"},
                        "Fingerprint": STRING,
                    }
                )
            )
        }
    ),
    "NotificationOperation": _object(
        {"service_type": STRING, "resource_type": STRING, "trace_names": _array(STRING)}
    ),
    "NotificationUsers": _object({"user_group": STRING, "user_list": _array(STRING)}),
    "NotificationFilter": _object(
        {"condition": STRING, "is_support_filter": BOOLEAN, "rule": _array(STRING)}
    ),
    "NotificationRequest": _object(
        {"notification_name": STRING},
        {
            "notification_id": STRING,
            "operation_type": {"type": "string", "enum": ["complete", "customized"]},
            "operations": _array(_ref("NotificationOperation")),
            "notify_user_list": _array(_ref("NotificationUsers")),
            "status": {"type": "string", "enum": ["enabled", "disabled"]},
            "topic_id": STRING,
            "filter": _ref("NotificationFilter"),
            "pattern": {"description": "an EventBridge event pattern (object or JSON text)"},
            "agency_name": STRING,
        },
    ),
    "Notification": _object(
        {
            "notification_id": STRING,
            "notification_name": STRING,
            "notification_type": {"type": "string", "enum": ["smn", "fun"]},
            "operation_type": {"type": "string", "enum": ["complete", "customized"]},
            "status": {"type": "string", "enum": ["enabled", "disabled"]},
            "project_id": STRING,
            "create_time": INTEGER,
        },
        {
            "operations": _array(_ref("NotificationOperation")),
            "notify_user_list": _array(_ref("NotificationUsers")),
            "topic_id": STRING,
            "filter": _ref("NotificationFilter"),
            "pattern": ANY_OBJECT,
            "agency_name": STRING,
        },
    ),
    "ListNotificationsResponse": _object({"notifications": _array(_ref("Notification"))}),
    "TestNotificationRequest": {
        "type": "object",
        "description": (
            "`notification` (a CreateNotification body) and/or `pattern`, and either `event` "
            "(one trace or, with a pattern alone, any JSON object) or `from`/`to` (ms) to replay "
            "the stored traces of the last 7 days (paged with `limit` and `next`)."
        ),
        "properties": {
            "notification": ANY_OBJECT,
            "pattern": {},
            "event": ANY_OBJECT,
            "from": INTEGER,
            "to": INTEGER,
            "limit": INTEGER,
            "next": STRING,
        },
    },
    "TestNotificationResponse": {
        "oneOf": [
            _object({"matched": BOOLEAN, "reason": STRING}),
            _object(
                {
                    "traces": _array(_ref("Trace")),
                    "meta_data": _object(
                        {"count": INTEGER},
                        {"marker": {"type": "string", "nullable": True}, "scanned": INTEGER},
                    ),
                }
            ),
        ]
    },
}


def _error_responses() -> dict[str, Any]:
    error = {"application/json": {"schema": _ref("Error")}}
    return {"4XX": {"description": "A CTS error", "content": error}}


def _json(schema_name: str, description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema_name)}},
    }


_EMPTY = {"description": "Done; no body"}


def _query(name: str, schema: Schema, description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        out["description"] = description
    return out


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}$"},
    }


PROJECT = _path("project_id", "The project id")
DOMAIN = _path("project_id", "The domain (account) id; named project_id as API Gateway requires")


def _matching(pattern: re.Pattern[str]) -> Schema:
    """A query value of that form; empty, as everywhere in the query, means "not given"."""
    return {"type": "string", "pattern": f"^(?:{pattern.pattern.strip('^$')})?$"}


# A filter value matches traces exactly; any printable value is accepted (it may match nothing).
FILTER: Schema = {
    "type": "string",
    "maxLength": MAX_FILTER_LEN,
    "pattern": "^[^\\u0000-\\u001f\\u007f\\ufffd]*$",
}

LIST_TRACES_PARAMETERS = [
    _query("trace_type", {"type": "string", "enum": ["", "system", "data"]}),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
    _query("from", INTEGER, "ms since the epoch; default an hour ago, at most 7 days back"),
    _query("to", INTEGER, "ms since the epoch; default now"),
    _query("next", STRING, "the marker of the previous page"),
    _query("tracker_name", _matching(TRACKER_NAME_RE), "data traces only"),
    _query("service_type", FILTER),
    _query("user", FILTER),
    _query("resource_id", FILTER),
    _query("resource_name", FILTER),
    _query("resource_type", FILTER),
    _query("trace_id", FILTER, "when given, the other filters are ignored"),
    _query("trace_name", FILTER),
    _query("trace_rating", {"type": "string", "enum": ["", *sorted(RATINGS)]}),
    _query("access_key_id", FILTER),
    _query("enterprise_project_id", FILTER),
]


def _operation(
    operation_id: str,
    summary: str,
    parameters: list[dict[str, Any]],
    responses: dict[str, Any],
    body: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": parameters,
        "responses": {**responses, **_error_responses()},
        "security": [{"SdkHmacSha256": []}],
    }
    if body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return out


def _paths() -> dict[str, Any]:
    project = "/v3/{project_id}"
    tag_parameters = [
        PROJECT,
        _path("resource_type", "cts-tracker"),
        _path("resource_id", "the tracker id"),
    ]
    tracker_query = [
        _query("tracker_name", _matching(TRACKER_NAME_RE)),
        _query("tracker_type", {"type": "string", "enum": ["system", "data"]}),
    ]
    csv = {"text/csv": {"schema": STRING}}
    return {
        "/": {"post": _list_public_keys()},
        f"{project}/traces": {
            "get": _operation(
                "ListTraces",
                "Traces of the last 7 days, newest first, with the CTS filters",
                [PROJECT, *LIST_TRACES_PARAMETERS],
                {"200": _json("ListTracesResponse")},
            ),
            "post": _operation(
                "ReportTraces",
                "Report up to 500 traces (1 MiB); a result per trace",
                [PROJECT],
                {"200": _json("ReportTracesResponse")},
                body="ReportTracesRequest",
            ),
        },
        f"{project}/traces/export": {
            "get": _operation(
                "ExportTraces",
                "The ListTraces filters as CSV (5,000 rows at most)",
                [
                    PROJECT,
                    *[p for p in LIST_TRACES_PARAMETERS if p["name"] not in ("limit", "next")],
                ],
                {
                    "200": {"description": "The CSV", "content": csv},
                    "303": {
                        "description": "Too large to answer inline: a presigned S3 URL",
                        "content": {"application/json": {"schema": _ref("ExportRedirect")}},
                    },
                },
            )
        },
        "/v3/{project_id}/resources": {
            "get": _operation(
                "ListTraceResources",
                "Service types and their resource types seen in the domain",
                [DOMAIN],
                {"200": _json("ResourcesResponse")},
            )
        },
        f"{project}/user-resources": {
            "get": _operation(
                "ListUserResources",
                "Operators of the last 30 days",
                [PROJECT],
                {"200": _json("UsersResponse")},
            )
        },
        f"{project}/operations": {
            "get": _operation(
                "ListOperations",
                "Operations seen, by service and resource type",
                [
                    PROJECT,
                    _query("service_type", _matching(SERVICE_TYPE_RE)),
                    _query("resource_type", STRING, "with service_type"),
                ],
                {"200": _json("OperationsResponse")},
            )
        },
        f"{project}/tracker": {
            "post": _operation(
                "CreateTracker",
                "Create the system tracker or a data tracker",
                [PROJECT],
                {"201": _json("Tracker", "Created")},
                body="TrackerRequest",
            ),
            "put": _operation(
                "UpdateTracker",
                "Change a tracker's settings or status",
                [PROJECT],
                {
                    "200": {
                        "description": "Updated",
                        "content": {"application/json": {"schema": ANY_OBJECT}},
                    }
                },
                body="TrackerRequest",
            ),
        },
        f"{project}/trackers": {
            "get": _operation(
                "ListTrackers",
                "The project's trackers",
                [PROJECT, *tracker_query],
                {"200": _json("ListTrackersResponse")},
            ),
            "delete": _operation(
                "DeleteTracker", "Delete a tracker", [PROJECT, *tracker_query], {"204": _EMPTY}
            ),
        },
        f"{project}/quotas": {
            "get": _operation(
                "ListQuotas",
                "Trackers and notifications used and allowed",
                [PROJECT],
                {"200": _json("QuotasResponse")},
            )
        },
        f"{project}/{{resource_type}}/{{resource_id}}/tags/create": {
            "post": _operation(
                "BatchCreateResourceTags",
                "Add tags to a tracker",
                tag_parameters,
                {"204": _EMPTY},
                body="TagsRequest",
            )
        },
        f"{project}/{{resource_type}}/{{resource_id}}/tags/delete": {
            "delete": _operation(
                "BatchDeleteResourceTags",
                "Remove tags from a tracker",
                tag_parameters,
                {"204": _EMPTY},
                body="TagsRequest",
            )
        },
        f"{project}/notifications": {
            "post": _operation(
                "CreateNotification",
                "Create a key event notification",
                [PROJECT],
                {"201": _json("Notification", "Created")},
                body="NotificationRequest",
            ),
            "put": _operation(
                "UpdateNotification",
                "Replace a key event notification (also enables or disables it)",
                [PROJECT],
                {"200": _json("Notification")},
                body="NotificationRequest",
            ),
            "delete": _operation(
                "DeleteNotification",
                "Delete notifications",
                [PROJECT, _query("notification_id", STRING, "one id, or several comma-separated")],
                {"204": _EMPTY},
            ),
        },
        f"{project}/notifications/{{notification_type}}": {
            "get": _operation(
                "ListNotifications",
                "The project's notifications of one type",
                [
                    PROJECT,
                    {
                        "name": "notification_type",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["smn", "fun"]},
                    },
                    _query("notification_name", STRING),
                ],
                {"200": _json("ListNotificationsResponse")},
            )
        },
        f"{project}/notifications/test": {
            "post": _operation(
                "TestNotification",
                "Does a notification or pattern match an event, or which stored traces",
                [PROJECT],
                {"200": _json("TestNotificationResponse")},
                body="TestNotificationRequest",
            )
        },
        "/v3/{project_id}/checkbucket": {
            "post": _operation(
                "CheckObsBuckets",
                "Can OpenCTS write trace files to these buckets",
                [DOMAIN],
                {"200": _json("CheckBucketsResponse")},
                body="CheckBucketsRequest",
            )
        },
    }


def _list_public_keys() -> dict[str, Any]:
    """CloudTrail's JSON 1.1 protocol: POST / named by X-Amz-Target; public, as public keys are
    (awscli signs with SigV4, which OpenCTS keys do not use), and answered in AWS's error shape
    (with the CTS fields as well)."""
    amz_json = "application/x-amz-json-1.1"
    return {
        "operationId": "ListPublicKeys",
        "summary": "The digest signing public keys valid in [StartTime, EndTime] (epoch seconds)",
        "parameters": [
            {
                "name": "X-Amz-Target",
                "in": "header",
                "required": True,
                "schema": {
                    "type": "string",
                    "enum": [
                        "CloudTrail_20131101.ListPublicKeys",
                        "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.ListPublicKeys",
                    ],
                },
            }
        ],
        "requestBody": {
            "required": False,
            "content": {amz_json: {"schema": _ref("ListPublicKeysRequest")}},
        },
        "responses": {
            "200": {
                "description": "OK",
                "content": {amz_json: {"schema": _ref("ListPublicKeysResponse")}},
            },
            "400": {
                "description": "A CloudTrail client error",
                "content": {amz_json: {"schema": _ref("CloudTrailError")}},
            },
            "4XX": {
                "description": "A CTS error",
                "content": {"application/json": {"schema": _ref("Error")}},
            },
        },
    }


def document(server_url: str = "/") -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "OpenCTS API",
            "version": "3",
            "description": (
                "Cloud Trace Service v3 wire format plus OpenCTS extensions. Every call is signed "
                "with an access key (SDK-HMAC-SHA256, as Huawei Cloud's SDKs sign); every error "
                'is {"error_code": "CTS.<4 digits>", "error_msg": "..."} with an X-Request-Id.'
            ),
        },
        "servers": [{"url": server_url}],
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "SdkHmacSha256": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=..., Signature=...",
                }
            },
        },
    }
