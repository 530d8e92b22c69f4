"""The official Huawei Cloud SDK (`huaweicloudsdkcts`) as a client of OpenCTS, unchanged.

The app runs on Chalice's local server on an ephemeral port, with moto in this process as AWS;
the SDK signs its requests with a real access key (SDK-HMAC-SHA256) and reads our responses
with its own models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcts.v3 import (
    BatchCreateResourceTagsRequest,
    BatchCreateResourceTagsRequestBody,
    BatchDeleteResourceTagsRequest,
    BatchDeleteResourceTagsRequestBody,
    CreateNotificationRequest,
    CreateNotificationRequestBody,
    CreateTrackerRequest,
    CreateTrackerRequestBody,
    CtsClient,
    DeleteNotificationRequest,
    DeleteTrackerRequest,
    Filter,
    ListNotificationsRequest,
    ListOperationsRequest,
    ListQuotasRequest,
    ListTraceResourcesRequest,
    ListTracesRequest,
    ListTrackersRequest,
    ListUserResourcesRequest,
    NotificationUsers,
    Operations,
    Tags,
    TrackerObsInfo,
    UpdateNotificationRequest,
    UpdateNotificationRequestBody,
    UpdateTrackerRequest,
    UpdateTrackerRequestBody,
)

import app as app_module
from chalicelib import cli
from chalicelib.access_keys import KeyUser, NewAccessKey
from chalicelib.config import Settings
from chalicelib.permissions import FULL_ACCESS
from chalicelib.wiring import Services, build
from tests.conftest import DOMAIN, PROJECT, trace

UNREGISTERED = "nobody"


@pytest.fixture
def services(created: dict[str, str], settings: Settings) -> Iterator[Services]:
    # The real clock: the SDK dates its requests with the system time.
    svc = build(dataclasses.replace(settings, ingest_dlq_url=created["ingest_dlq_url"]))
    svc.projects.register(PROJECT, DOMAIN)
    app_module.use_services(svc)
    yield svc
    app_module.use_services(None)


@pytest.fixture
def key(services: Services) -> NewAccessKey:
    return services.keys.create(
        user=KeyUser("u-sdk", "sdk"),
        domain_id=DOMAIN,
        project_ids=[PROJECT, UNREGISTERED],
        policy=FULL_ACCESS,
    )


def sdk(endpoint: str, ak: str, sk: str, project_id: str = PROJECT) -> Any:
    config = HttpConfig.get_default_config()
    config.retry_times = 0
    config.timeout = (5, 10)
    # No with_region(): the SDK would resolve Huawei Cloud's own endpoints.
    return (
        CtsClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(ak, sk, project_id))
        .with_endpoints([endpoint])
        .build()
    )


@pytest.fixture
def client(endpoint: str, key: NewAccessKey) -> Any:
    return sdk(endpoint, key.key.access_key_id, key.secret)


@pytest.fixture
def reported(endpoint: str, key: NewAccessKey) -> list[dict[str, Any]]:
    """25 traces reported through our API (signed by the CLI's client): 15 ECS, 10 OBS."""
    now = cli.now_ms()
    traces = [
        trace(
            trace_id=f"sdk-{i:02d}",
            time=now - 60_000 - i * 1000,
            service_type="ECS" if i < 15 else "OBS",
            resource_type="ecs" if i < 15 else "bucket",
            trace_name="createServer" if i < 15 else "createBucket",
            user={"id": "u-alice", "name": "alice", "domain": {"id": DOMAIN, "name": "acme"}},
        )
        for i in range(25)
    ]
    api = cli.Api(endpoint, cli.Credentials(key.key.access_key_id, key.secret))
    body = api.call("POST", f"/v3/{PROJECT}/traces", body={"traces": traces}).json()
    assert body["meta_data"]["stored"] == 25
    return traces


def test_list_traces_with_filters_and_paging(client: Any, reported: list[dict[str, Any]]) -> None:
    now = cli.now_ms()
    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        response = client.list_traces(
            ListTracesRequest(
                trace_type="system",
                service_type="ECS",
                limit=4,
                _from=now - 3_600_000,
                to=now,
                next=marker,
            )
        )
        pages += 1
        seen.extend(t.trace_id for t in response.traces)
        assert all(t.service_type == "ECS" for t in response.traces)
        assert response.meta_data.count == len(response.traces)
        marker = response.meta_data.marker
        if not marker:
            break
    assert pages == 4
    assert seen == [f"sdk-{i:02d}" for i in range(15)]  # newest first, none twice

    one = client.list_traces(ListTracesRequest(trace_type="system", trace_id="sdk-20"))
    assert [(t.trace_id, t.service_type, t.user.name) for t in one.traces] == [
        ("sdk-20", "OBS", "alice")
    ]


def test_catalog_operations(client: Any, reported: list[dict[str, Any]]) -> None:
    resources = client.list_trace_resources(ListTraceResourcesRequest(domain_id=DOMAIN))
    by_service = {r.service_type: r.resource for r in resources.resources}
    assert by_service == {"ECS": ["ecs"], "OBS": ["bucket"]}

    users = client.list_user_resources(ListUserResourcesRequest())
    assert [u.name for u in users.users] == ["alice"]

    operations = client.list_operations(ListOperationsRequest(service_type="OBS"))
    assert [(o.service_type, o.resource_type, o.operation_list) for o in operations.operations] == [
        ("OBS", "bucket", ["createBucket"])
    ]


def test_a_4xx_raises_client_request_exception_with_our_error_code(
    endpoint: str, client: Any, key: NewAccessKey
) -> None:
    with pytest.raises(ClientRequestException) as bad_limit:
        client.list_traces(ListTracesRequest(trace_type="system", limit=0))
    assert (bad_limit.value.status_code, bad_limit.value.error_code) == (400, "CTS.0001")

    unknown = sdk(endpoint, key.key.access_key_id, key.secret, project_id=UNREGISTERED)
    with pytest.raises(ClientRequestException) as not_known:
        unknown.list_traces(ListTracesRequest(trace_type="system"))
    assert (not_known.value.status_code, not_known.value.error_code) == (404, "CTS.0006")


def test_a_wrong_secret_fails_with_401(endpoint: str, key: NewAccessKey) -> None:
    forged = sdk(endpoint, key.key.access_key_id, "z" * 40)
    with pytest.raises(ClientRequestException) as refused:
        forged.list_traces(ListTracesRequest(trace_type="system"))
    assert (refused.value.status_code, refused.value.error_code) == (401, "CTS.0401")


def test_a_key_of_another_project_gets_403(endpoint: str, services: Services) -> None:
    other = services.keys.create(
        user=KeyUser("u-x", "x"), domain_id=DOMAIN, project_ids=["elsewhere"], policy=FULL_ACCESS
    )
    client = sdk(endpoint, other.key.access_key_id, other.secret)
    with pytest.raises(ClientRequestException) as refused:
        client.list_traces(ListTracesRequest(trace_type="system"))
    assert (refused.value.status_code, refused.value.error_code) == (403, "CTS.0403")


def test_trackers_quotas_and_tags_through_the_sdk(client: Any) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="sdk-archive")
    created = client.create_tracker(
        CreateTrackerRequest(
            body=CreateTrackerRequestBody(
                tracker_type="system",
                tracker_name="system",
                obs_info=TrackerObsInfo(bucket_name="sdk-archive", file_prefix_name="cts"),
            )
        )
    )
    assert created.tracker_name == "system"
    assert created.status == "enabled"
    client.update_tracker(
        UpdateTrackerRequest(
            body=UpdateTrackerRequestBody(
                tracker_type="system",
                tracker_name="system",
                status="disabled",
            )
        )
    )
    (listed,) = client.list_trackers(ListTrackersRequest(tracker_name="system")).trackers
    assert listed.status == "disabled"
    assert listed.obs_info.bucket_name == "sdk-archive"
    quotas = {q.type: q for q in client.list_quotas(ListQuotasRequest()).resources}
    assert (quotas["system_tracker"].used, quotas["system_tracker"].quota) == (1, 1)
    client.batch_create_resource_tags(
        BatchCreateResourceTagsRequest(
            resource_id=created.id,
            resource_type="cts-tracker",
            body=BatchCreateResourceTagsRequestBody(tags=[Tags(key="env", value="prod")]),
        )
    )
    client.batch_delete_resource_tags(
        BatchDeleteResourceTagsRequest(
            resource_id=created.id,
            resource_type="cts-tracker",
            body=BatchDeleteResourceTagsRequestBody(tags=[Tags(key="env")]),
        )
    )
    with pytest.raises(ClientRequestException) as caught:
        client.create_tracker(
            CreateTrackerRequest(
                body=CreateTrackerRequestBody(tracker_type="system", tracker_name="system")
            )
        )
    assert caught.value.status_code == 409
    assert caught.value.error_code == "CTS.1101"
    client.delete_tracker(DeleteTrackerRequest(tracker_name="system", tracker_type="system"))
    assert client.list_trackers(ListTrackersRequest()).trackers == []


def test_notifications_through_the_sdk(client: Any) -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:alerts"
    created = client.create_notification(
        CreateNotificationRequest(
            body=CreateNotificationRequestBody(
                notification_name="sdk_deletes",
                operation_type="customized",
                operations=[
                    Operations(
                        service_type="ECS", resource_type="ecs", trace_names=["deleteServer"]
                    )
                ],
                notify_user_list=[NotificationUsers(user_group="admins", user_list=["alice"])],
                topic_id=topic,
                filter=Filter(condition="OR", is_support_filter=True, rule=["code = 200"]),
            )
        )
    )
    assert (created.notification_type, created.status) == ("smn", "enabled")
    assert created.operations[0].trace_names == ["deleteServer"]
    assert created.filter.rule == ["code = 200"]

    listed = client.list_notifications(
        ListNotificationsRequest(notification_type="smn", notification_name="sdk_deletes")
    )
    assert [n.notification_id for n in listed.notifications] == [created.notification_id]
    assert listed.notifications[0].notify_user_list[0].user_list == ["alice"]

    updated = client.update_notification(
        UpdateNotificationRequest(
            body=UpdateNotificationRequestBody(
                notification_id=created.notification_id,
                notification_name="sdk_all",
                operation_type="complete",
                status="disabled",
                topic_id=topic,
            )
        )
    )
    assert (updated.notification_name, updated.status) == ("sdk_all", "disabled")

    with pytest.raises(ClientRequestException) as refused:
        client.create_notification(
            CreateNotificationRequest(
                body=CreateNotificationRequestBody(
                    notification_name="bad-name", operation_type="complete"
                )
            )
        )
    assert refused.value.status_code == 400
    assert refused.value.error_code == "CTS.1203"

    client.delete_notification(DeleteNotificationRequest(notification_id=created.notification_id))
    assert (
        client.list_notifications(ListNotificationsRequest(notification_type="smn")).notifications
        == []
    )
    quotas = {q.type: q for q in client.list_quotas(ListQuotasRequest()).resources}
    assert (quotas["smn_notification"].used, quotas["smn_notification"].quota) == (0, 100)
