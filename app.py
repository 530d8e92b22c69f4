"""OpenCTS: the Chalice composition root. Every decorator lives here; each handler parses the
request, calls one object from chalicelib, and shapes the response."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import (
    Chalice,
    CloudWatchEvent,
    ConvertToMiddleware,
    DynamoDBEvent,
    Rate,
    Request,
    Response,
    SQSEvent,
)

from chalicelib import console_assets, openapi, permissions, signing
from chalicelib.access_keys import AccessKey
from chalicelib.audit import AUDITED
from chalicelib.config import Settings
from chalicelib.digests import BadRequest, list_public_keys
from chalicelib.errors import (
    CtsError,
    body_too_large,
    internal_error,
    malformed_body,
    method_not_allowed,
    not_found,
    unsupported_media_type,
)
from chalicelib.ingest import MAX_BODY_BYTES, parse_json
from chalicelib.notification_wiring import Deliveries
from chalicelib.notifications import NotificationService
from chalicelib.observability import log_dimensional_metrics, metrics, tracer
from chalicelib.params import Params
from chalicelib.wiring import Services, build

# Powertools owns logging: Chalice would add a second handler to the same logger.
app = Chalice(app_name="opencts", configure_logs=False)
logger = Logger(service="opencts")
# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: an HTTP event carries the request's
# Authorization header (its signature) and body.
app.register_middleware(
    ConvertToMiddleware(logger.inject_lambda_context(clear_state=True, log_event=False))
)
# Every function is traced (X-Ray: a segment per invocation, boto3 calls as subsegments; not the
# response, which can be a large export) and flushes its function-wide metrics once per
# invocation (chalicelib/observability.py).
app.register_middleware(ConvertToMiddleware(tracer.capture_lambda_handler(capture_response=False)))
app.register_middleware(ConvertToMiddleware(metrics.log_metrics))
app.register_middleware(ConvertToMiddleware(log_dimensional_metrics))

# The ingest queue's name must be a literal when Chalice packages the app; set
# OPENCTS_INGEST_QUEUE in the shell that runs `chalice deploy` to change it.
INGEST_QUEUE = Settings.from_env().ingest_queue
# The same for the traces table's stream: set OPENCTS_TRACES_STREAM_ARN (the table's
# LatestStreamArn) for `chalice deploy`; the local driver resolves the table named here.
TRACES_STREAM_ARN = os.environ.get("OPENCTS_TRACES_STREAM_ARN") or (
    "arn:aws:dynamodb:{0.region}:{0.domain_id}:table/{0.traces_table}/stream/latest".format(
        Settings.from_env()
    )
)
CLOUDTRAIL_PATTERN = {
    "detail-type": [
        "AWS API Call via CloudTrail",
        "AWS Console Sign In via CloudTrail",
        "AWS Service Event via CloudTrail",
    ]
}

_services: Services | None = None


def services() -> Services:
    """Built on first use, once per container; tests replace it with use_services()."""
    global _services  # noqa: PLW0603 - the container-wide cache the Chalice samples use
    if _services is None:
        _services = build(Settings.from_env())
    return _services


def use_services(replacement: Services | None) -> None:
    global _services  # noqa: PLW0603
    _services = replacement


def _request() -> Request:
    request = app.current_request
    assert request is not None
    return request


def _params() -> Params:
    query = _request().query_params
    if not query:
        return {}
    return {name: query.getlist(name) for name in query}


def _raw_body(request: Request) -> bytes:
    """The body as bytes: Chalice gives a str when the body was sent as text."""
    body = request.raw_body
    return body.encode() if isinstance(body, str) else body


def _json_body() -> Any:
    """The JSON body, None when empty; CTS.0002 when it is not JSON, CTS.0003 past 1 MiB."""
    raw = _raw_body(_request())
    if not raw.strip():
        return None
    if len(raw) > MAX_BODY_BYTES:
        raise body_too_large(MAX_BODY_BYTES)
    return parse_json(raw)


def cts_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """CtsError becomes the CTS error body; anything else a CTS.0500 without internals."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except CtsError as e:
            return Response(e.body(), status_code=e.status)
        except Exception:
            logger.exception("unhandled error", path=_request().path)
            error = internal_error()
            return Response(error.body(), status_code=error.status)

    return wrapper


_CHALICE_ERRORS: dict[int, Callable[[], CtsError]] = {
    400: lambda: malformed_body("the request could not be read"),
    404: lambda: not_found(_request().path),
    405: lambda: method_not_allowed(_request().method),
    415: lambda: unsupported_media_type(_request().headers.get("content-type", "")),
}


@app.middleware("http")
def cts_envelope(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Every response carries X-Request-Id; errors made by Chalice itself get the CTS body."""
    request_id = (event.context or {}).get("requestId") or str(uuid.uuid4())
    event.context[REQUEST_ID_CONTEXT] = request_id
    logger.append_keys(request_id=request_id)
    response = get_response(event)
    if response.status_code >= 400 and isinstance(response.body, dict) and "Code" in response.body:
        make = _CHALICE_ERRORS.get(response.status_code, internal_error)
        error = make()
        response = Response(error.body(), status_code=error.status, headers=response.headers)
        if error.status == 405:
            route = str((event.context or {}).get("resourcePath", ""))
            response.headers["Allow"] = ", ".join(sorted(app.routes.get(route, {})))
    response.headers["X-Request-Id"] = request_id
    return response


# Where `authenticate` leaves the access key that signed the request (see caller()).
ACCESS_KEY_CONTEXT = "opencts_access_key"
REQUEST_ID_CONTEXT = "opencts_request_id"


@app.middleware("http")
def authenticate(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Every route, before any handler: a request signed by an active access key (SDK-HMAC-SHA256)
    whose policy allows the operation on the path's project or domain. Registered after
    cts_envelope, so refusals carry X-Request-Id too."""
    route = str((event.context or {}).get("resourcePath", ""))
    if permissions.is_public(event.method, route):
        return get_response(event)
    try:
        svc = services()
        signed = _signed_request(event, route)
        key_id = signing.verify(signed, svc.keys.secret_for, svc.clock.now_ms())
        key = svc.keys.active_key(key_id)
        if key is None:  # disabled between the two cached look-ups
            raise signing.NotAuthenticated(f"access key {key_id} is unknown or disabled")
        if event.method.upper() in app.routes.get(route, {}):
            scope_id = (event.uri_params or {}).get("project_id", "")
            permissions.authorize(key, event.method, route, scope_id)
        # else: a method the route does not declare, which Chalice answers with 405.
    except (signing.NotAuthenticated, permissions.Forbidden) as e:
        logger.warning(
            "request refused", status=e.status, reason=e.reason, method=event.method, route=route
        )
        return Response(e.body(), status_code=e.status)
    except Exception:
        logger.exception("authentication failed", method=event.method, route=route)
        error = internal_error()
        return Response(error.body(), status_code=error.status)
    event.context[ACCESS_KEY_CONTEXT] = key
    return get_response(event)


@app.middleware("http")
def self_audit(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """CTS audits itself (Table 8-1): each authenticated management call, refused or not, becomes
    a CTS trace of its caller. Registered after `authenticate`, so the caller is known; a failure
    to audit is logged and never fails the call."""
    route = str((event.context or {}).get("resourcePath", ""))
    operation = AUDITED.get((event.method.upper(), route))
    response = get_response(event)
    if operation is None:
        return response
    try:
        key = caller()
        services().api.record_audit(
            (event.uri_params or {}).get("project_id", ""),
            operation,
            user={
                "id": key.user.id,
                "name": key.user.name,
                "domain": {"id": key.domain_id},
                "access_key_id": key.access_key_id,
            },
            source_ip=str((event.context.get("identity") or {}).get("sourceIp", "")),
            request_body=_raw_body(event),
            response_body=response.body,
            status=response.status_code,
            params=_params(),
            request_id=str(event.context.get(REQUEST_ID_CONTEXT, "")),
        )
    except Exception:
        logger.exception("self-audit failed", route=route)
    return response


def caller() -> AccessKey:
    """The access key that signed the current request (set by `authenticate`)."""
    key: AccessKey = _request().context[ACCESS_KEY_CONTEXT]
    return key


def _signed_request(event: Request, route: str) -> signing.SignedRequest:
    """The request as its client signed it: the path rebuilt from the route and its parameters
    (API Gateway's own path carries the stage prefix), every query value, the raw body."""
    path = route
    for name, value in (event.uri_params or {}).items():
        # API Gateway names a greedy parameter `proxy`, chalice local `proxy+`.
        bare = name.removesuffix("+")
        path = path.replace("{" + bare + "+}", value).replace("{" + bare + "}", value)
    query = event.query_params
    return signing.SignedRequest(
        method=event.method,
        path=path,
        query={name: query.getlist(name) for name in query} if query else {},
        headers=dict(event.headers.items()),
        body=_raw_body(event),
    )


# -- traces ------------------------------------------------------------------------------------
@app.route("/v3/{project_id}/traces", methods=["POST"], content_types=["application/json"])
@cts_errors
def report_traces(project_id: str) -> dict[str, Any]:
    return services().api.report(project_id, _raw_body(_request()))


@app.route("/v3/{project_id}/traces", methods=["GET"])
@cts_errors
def list_traces(project_id: str) -> dict[str, Any]:
    return services().api.list_traces(project_id, _params())


@app.route("/v3/{project_id}/traces/export", methods=["GET"])
@cts_errors
def export_traces(project_id: str) -> Response:
    reply = services().api.export_traces(project_id, _params())
    return Response(reply.body, status_code=reply.status, headers=dict(reply.headers))


# API Gateway allows one variable name per path level, so the domain routes name it project_id.
@app.route("/v3/{project_id}/resources", methods=["GET"])
@cts_errors
def list_trace_resources(project_id: str) -> dict[str, Any]:
    return services().api.trace_resources(domain_id=project_id)


@app.route("/v3/{project_id}/user-resources", methods=["GET"])
@cts_errors
def list_user_resources(project_id: str) -> dict[str, Any]:
    return services().api.user_resources(project_id)


@app.route("/v3/{project_id}/operations", methods=["GET"])
@cts_errors
def list_operations(project_id: str) -> dict[str, Any]:
    return services().api.operations(project_id, _params())


# -- trackers, quotas, tags -------------------------------------------------------------------
@app.route("/v3/{project_id}/tracker", methods=["POST"], content_types=["application/json"])
@cts_errors
def create_tracker(project_id: str) -> Response:
    return Response(services().trackers.create_tracker(project_id, _json_body()), status_code=201)


@app.route("/v3/{project_id}/tracker", methods=["PUT"], content_types=["application/json"])
@cts_errors
def update_tracker(project_id: str) -> dict[str, Any]:
    return services().trackers.update_tracker(project_id, _json_body())


@app.route("/v3/{project_id}/trackers", methods=["GET"])
@cts_errors
def list_trackers(project_id: str) -> dict[str, Any]:
    return services().trackers.list_trackers(project_id, _params())


@app.route("/v3/{project_id}/trackers", methods=["DELETE"])
@cts_errors
def delete_tracker(project_id: str) -> Response:
    services().trackers.delete_tracker(project_id, _params())
    return Response("", status_code=204)


@app.route("/v3/{project_id}/quotas", methods=["GET"])
@cts_errors
def list_quotas(project_id: str) -> dict[str, Any]:
    return services().trackers.list_quotas(project_id)


@app.route(
    "/v3/{project_id}/{resource_type}/{resource_id}/tags/create",
    methods=["POST"],
    content_types=["application/json"],
)
@cts_errors
def create_resource_tags(project_id: str, resource_type: str, resource_id: str) -> Response:
    services().trackers.create_tags(project_id, resource_type, resource_id, _json_body())
    return Response("", status_code=204)


@app.route(
    "/v3/{project_id}/{resource_type}/{resource_id}/tags/delete",
    methods=["DELETE"],
    content_types=["application/json"],
)
@cts_errors
def delete_resource_tags(project_id: str, resource_type: str, resource_id: str) -> Response:
    services().trackers.delete_tags(project_id, resource_type, resource_id, _json_body())
    return Response("", status_code=204)


# -- key event notifications ---------------------------------------------------------------------
def _notifications() -> NotificationService:
    found = services().notifications
    assert found is not None
    return found


@app.route("/v3/{project_id}/notifications", methods=["POST"], content_types=["application/json"])
@cts_errors
def create_notification(project_id: str) -> Response:
    return Response(_notifications().create_notification(project_id, _json_body()), status_code=201)


@app.route("/v3/{project_id}/notifications", methods=["PUT"], content_types=["application/json"])
@cts_errors
def update_notification(project_id: str) -> dict[str, Any]:
    return _notifications().update_notification(project_id, _json_body())


@app.route("/v3/{project_id}/notifications/{notification_type}", methods=["GET"])
@cts_errors
def list_notifications(project_id: str, notification_type: str) -> dict[str, Any]:
    return _notifications().list_notifications(project_id, notification_type, _params())


@app.route("/v3/{project_id}/notifications", methods=["DELETE"])
@cts_errors
def delete_notifications(project_id: str) -> Response:
    _notifications().delete_notifications(project_id, _params())
    return Response("", status_code=204)


@app.route(
    "/v3/{project_id}/notifications/test", methods=["POST"], content_types=["application/json"]
)
@cts_errors
def test_notification(project_id: str) -> dict[str, Any]:
    return _notifications().test(project_id, _json_body())


# API Gateway allows one variable name per path level: {project_id} is the domain id here.
@app.route("/v3/{project_id}/checkbucket", methods=["POST"], content_types=["application/json"])
@cts_errors
def check_obs_buckets(project_id: str) -> dict[str, Any]:
    return services().trackers.check_buckets(project_id, _json_body())


# -- the web console (public files; the API calls it makes are signed in the browser) ------------
@app.route("/console", methods=["GET"])
def console() -> Response:
    return _console_file("index.html")


@app.route("/console/{asset}", methods=["GET"])
def console_asset(asset: str) -> Response:
    return _console_file(asset)


def _console_file(name: str) -> Response:
    found = console_assets.asset(name)
    if found is None:
        error = not_found(_request().path)
        return Response(error.body(), status_code=error.status)
    headers: dict[str, str | list[str]] = {
        "Content-Type": found.content_type,
        **console_assets.SECURITY_HEADERS,
    }
    return Response(found.body, status_code=200, headers=headers)


@app.route("/openapi.json", methods=["GET"])
def openapi_document() -> dict[str, Any]:
    return openapi.document()


# -- digest files (SPEC 9) ---------------------------------------------------------------------
# CloudTrail's JSON 1.1 protocol: every action is a POST to "/" named by X-Amz-Target; only
# ListPublicKeys is served, for `aws cloudtrail validate-logs --endpoint-url <opencts>`.
@app.route(
    "/",
    methods=["POST"],
    content_types=["application/x-amz-json-1.1", "application/json"],
)
@cts_errors
def cloudtrail_json_api() -> Response:
    request = _request()
    svc = services()
    assert svc.public_keys is not None
    headers: dict[str, str | list[str]] = {"Content-Type": "application/x-amz-json-1.1"}
    try:
        body = list_public_keys(
            svc.public_keys,
            request.headers.get("x-amz-target", ""),
            _raw_body(request),
            svc.clock.now_ms(),
        )
    except BadRequest as e:
        return Response(e.body(), status_code=400, headers=headers)
    return Response(body, headers=headers)


@app.schedule(Rate(1, unit=Rate.HOURS), name="digest_files")
def digest_files(event: CloudWatchEvent) -> None:
    svc = services()
    assert svc.digests is not None
    svc.digests.run()


# API Gateway answers unknown paths itself with a non-CTS 403; this greedy route is less specific
# than every real route, so it only catches what nothing else matches.
@app.route("/{proxy+}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
@cts_errors
def unknown_path() -> None:
    raise not_found(_request().path)


# -- event sources -----------------------------------------------------------------------------
@app.on_sqs_message(queue=INGEST_QUEUE, batch_size=10, maximum_batching_window_in_seconds=1)
def ingest_queue(event: SQSEvent) -> dict[str, Any]:
    """Partial batch response: only the failed messages are retried (ReportBatchItemFailures
    is set on the event source mapping by `make package`)."""
    svc = services()
    messages = svc.api.queue_messages([(r.to_dict()["messageId"], r.body) for r in event])
    retry = svc.api.queue(svc.dead_letter).process(messages)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in retry]}


@app.on_cw_event(CLOUDTRAIL_PATTERN, name="cloudtrail_events")
def cloudtrail_events(event: CloudWatchEvent) -> None:
    services().api.report_cloudtrail(event.to_dict())


# S3 object events come from EventBridge: `chalice package` refuses @app.on_s3_event, and one rule
# covers every bucket a data tracker watches (the tracker turns on the bucket's EventBridge events).
@app.on_cw_event(
    {"source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted"]},
    name="s3_object_events",
)
def s3_object_events(event: CloudWatchEvent) -> None:
    services().api.report_s3_object_event(event.to_dict())


# -- the traces table's stream: new traces, delivered (chalicelib/delivery.py) -----------------
# TRIM_HORIZON: a mapping created after traces were written still delivers them (late rather
# than never); no batching window, so a trace is matched within a poll of being stored.
@app.on_dynamodb_record(
    stream_arn=TRACES_STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON"
)
def notification_matcher(event: DynamoDBEvent) -> dict[str, Any]:
    """Key event notifications; partial batch response (ReportBatchItemFailures)."""
    return _deliveries().notify(event.to_dict()["Records"])


@app.on_dynamodb_record(
    stream_arn=TRACES_STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON"
)
def login_audit(event: DynamoDBEvent) -> dict[str, Any]:
    """The best practice's login audit (SMN_Topic, RegionName, IP); partial batch response."""
    return _deliveries().audit_logins(event.to_dict()["Records"])


def _deliveries() -> Deliveries:
    deliveries = services().deliveries
    assert deliveries is not None, "wiring.build() always builds the deliveries"
    return deliveries


# -- scheduled functions -----------------------------------------------------------------------
@app.schedule(Rate(5, unit=Rate.MINUTES), name="transfer_cycle")
def transfer_cycle(event: CloudWatchEvent) -> dict[str, Any]:
    """The transfer cycle: trace files to S3 and log events to CloudWatch Logs (SPEC 8)."""
    # Chalice types the Lambda context loosely; the real one tells the time left.
    remaining = getattr(event.context, "get_remaining_time_in_millis", None)
    return services().transfer.run(remaining if callable(remaining) else None).summary()
