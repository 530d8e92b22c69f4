"""The REST API and event handlers through chalice.test.Client, on DynamoDB/S3/SQS in moto."""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import export
from chalicelib.access_keys import KeyUser
from chalicelib.api import TraceApi
from chalicelib.catalog import Catalog
from chalicelib.clock import FixedClock
from chalicelib.config import Settings
from chalicelib.control import MemoryControlTable
from chalicelib.ingest import MAX_BODY_BYTES, Ingestor
from chalicelib.permissions import READ_ONLY_ACCESS
from chalicelib.projects import ProjectRegistry
from chalicelib.query import TraceFinder
from chalicelib.store import MemoryTraceTable, TraceStore
from chalicelib.wiring import Services
from tests.conftest import DOMAIN, NOW_MS, OTHER_PROJECT, PROJECT, trace

JSON = {"Content-Type": "application/json"}


def post(client: Client, body: Any, project: str = PROJECT, raw: bytes | None = None) -> Any:
    data = raw if raw is not None else json.dumps(body).encode()
    return client.http.post(f"/v3/{project}/traces", headers=JSON, body=data)


def assert_error(response: Any, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.body
    body = response.json_body
    assert set(body) == {"error_code", "error_msg"}
    assert body["error_code"] == code
    assert "Traceback" not in body["error_msg"]
    assert response.headers["X-Request-Id"]
    return dict(body)


class TestReport:
    def test_per_trace_results_and_request_id(self, client: Client) -> None:
        r = post(
            client,
            {"traces": [trace(trace_id="a"), trace(trace_id="b", time="x"), trace(trace_id="a")]},
        )
        assert r.status_code == 200
        assert r.headers["X-Request-Id"]
        assert r.json_body["meta_data"] == {"stored": 1, "duplicate": 1, "rejected": 1, "failed": 0}
        assert [x["status"] for x in r.json_body["results"]] == ["stored", "rejected", "duplicate"]
        assert r.json_body["results"][1]["error_code"] == "CTS.0005"
        assert "'time'" in r.json_body["results"][1]["error_msg"]

    def test_500_traces_is_the_most_per_call(self, client: Client) -> None:
        at_limit = post(client, {"traces": [trace() for _ in range(500)]})
        assert at_limit.json_body["meta_data"]["stored"] == 500
        assert_error(post(client, {"traces": [trace() for _ in range(501)]}), 400, "CTS.0004")

    def test_one_mebibyte_is_the_largest_body(self, client: Client) -> None:
        def body_of(size: int) -> bytes:
            traces = [trace(trace_id=f"big{i}", request="x" * 200_000) for i in range(5)]
            text = json.dumps({"traces": traces})
            return (text[:-2] + " " * (size - len(text)) + text[-2:]).encode()

        ok = post(client, None, raw=body_of(MAX_BODY_BYTES))
        assert ok.status_code == 200
        assert ok.json_body["meta_data"]["stored"] == 5
        assert_error(post(client, None, raw=body_of(MAX_BODY_BYTES + 1)), 413, "CTS.0003")

    @pytest.mark.parametrize(
        "raw",
        [
            b"",
            b"{",
            b"[]",
            b'{"traces": {}}',
            b'{"traces": []}',
            b'{"traces": [], "x": 1}',
            b'{"traces": [NaN]}',
            b'{"traces": "\xff\xfe"}',
            b"[" * 100_000 + b"]" * 100_000,
            b"\x00",
        ],
    )
    def test_malformed_bodies_get_400_and_store_nothing(self, client: Client, raw: bytes) -> None:
        post(client, {"traces": [trace(trace_id="kept")]})
        assert_error(post(client, None, raw=raw), 400, "CTS.0002")
        listed = client.http.get(f"/v3/{PROJECT}/traces").json_body
        assert [t["trace_id"] for t in listed["traces"]] == ["kept"]

    def test_wrong_content_type_is_415(self, client: Client) -> None:
        r = client.http.post(
            f"/v3/{PROJECT}/traces", headers={"Content-Type": "text/csv"}, body=b"a,b"
        )
        assert_error(r, 415, "CTS.0008")

    def test_unknown_and_invalid_projects(self, client: Client) -> None:
        assert_error(post(client, {"traces": [trace()]}, project="nobody"), 404, "CTS.0006")
        assert_error(client.http.get("/v3/nobody/traces"), 404, "CTS.0006")
        assert_error(client.http.get("/v3/nobody/traces/export"), 404, "CTS.0006")
        assert_error(client.http.get("/v3/nobody/user-resources"), 404, "CTS.0006")
        assert_error(client.http.get("/v3/nobody/operations"), 404, "CTS.0006")
        # Project ids no key can hold are refused by authorization, before any handler.
        assert_error(client.http.get("/v3/bad.project/traces"), 403, "CTS.0403")
        assert_error(client.http.get(f"/v3/{'p' * 65}/traces"), 403, "CTS.0403")

    def test_unknown_paths_get_the_cts_body(self, client: Client) -> None:
        assert_error(client.http.get("/nope"), 404, "CTS.0009")
        assert_error(client.http.post("/v3", headers=JSON, body=b"{}"), 404, "CTS.0009")

    def test_method_not_allowed_gets_the_cts_body(self, client: Client) -> None:
        assert_error(client.http.delete(f"/v3/{PROJECT}/traces"), 405, "CTS.0010")


class TestList:
    def test_sdk_shaped_response(self, client: Client) -> None:
        post(client, {"traces": [trace(trace_id="t1", request={"a": 1}, code=201)]})
        body = client.http.get(f"/v3/{PROJECT}/traces").json_body
        assert set(body) == {"traces", "meta_data"}
        assert body["meta_data"] == {"count": 1, "marker": None}
        (t,) = body["traces"]
        assert t["request"] == '{"a":1}'
        assert t["code"] == "201"
        assert t["time"] == NOW_MS - 60_000
        assert t["record_time"] == NOW_MS
        assert "pk" not in t
        assert "expires_at" not in t

    def test_paging_over_http(self, client: Client) -> None:
        post(client, {"traces": [trace(trace_id=f"h{i:02d}", time=NOW_MS - i) for i in range(25)]})
        seen: list[str] = []
        marker = None
        while True:
            query = f"limit=10&next={marker}" if marker else "limit=10"
            body = client.http.get(f"/v3/{PROJECT}/traces?{query}").json_body
            seen += [t["trace_id"] for t in body["traces"]]
            marker = body["meta_data"]["marker"]
            if marker is None:
                break
        assert seen == [f"h{i:02d}" for i in range(25)]

    @pytest.mark.parametrize(
        ("query", "code"),
        [
            ("limit=0", "CTS.0001"),
            ("limit=201", "CTS.0001"),
            ("limit=abc", "CTS.0001"),
            ("from=-5", "CTS.0001"),
            ("from=99999999999999999999", "CTS.0001"),
            ("user=a&user=b", "CTS.0001"),
            ("colour=red", "CTS.0001"),
            ("trace_type=data", "CTS.0001"),
            ("trace_rating=bad", "CTS.0001"),
            ("next=garbage", "CTS.0007"),
        ],
    )
    def test_bad_parameters_get_400(self, client: Client, query: str, code: str) -> None:
        assert_error(client.http.get(f"/v3/{PROJECT}/traces?{query}"), 400, code)

    def test_projects_are_isolated_over_http(self, client: Client) -> None:
        post(client, {"traces": [trace(trace_id="mine")]})
        post(client, {"traces": [trace(trace_id="theirs")]}, project=OTHER_PROJECT)
        ids = [t["trace_id"] for t in client.http.get(f"/v3/{PROJECT}/traces").json_body["traces"]]
        assert ids == ["mine"]
        other = client.http.get(f"/v3/{PROJECT}/traces?trace_id=theirs").json_body
        assert other["traces"] == []


class TestExport:
    def test_csv_has_header_filters_and_no_formulas(self, client: Client) -> None:
        post(
            client,
            {
                "traces": [
                    trace(trace_id="f1", resource_name='=HYPERLINK("http://evil")'),
                    trace(trace_id="f2", resource_name="+1+1", user={"name": "@admin"}),
                    trace(trace_id="f3", resource_name="-2", message="\tcmd", service_type="VPC"),
                    trace(trace_id="f4", request="\r=cmd", response="safe"),
                ]
            },
        )
        r = client.http.get(f"/v3/{PROJECT}/traces/export?service_type=ECS")
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in r.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(r.body.decode())))
        assert list(rows[0]) == list(export.COLUMNS)
        by_id = {row["trace_id"]: row for row in rows}
        assert set(by_id) == {"f1", "f2", "f4"}
        assert by_id["f1"]["resource_name"] == '\'=HYPERLINK("http://evil")'
        assert by_id["f2"]["resource_name"] == "'+1+1"
        assert by_id["f2"]["user"] == "'@admin"
        assert by_id["f4"]["request"] == "'\r=cmd"
        assert by_id["f4"]["response"] == "safe"
        vpc = client.http.get(f"/v3/{PROJECT}/traces/export?service_type=VPC").body.decode()
        row = next(csv.DictReader(io.StringIO(vpc)))
        assert row["resource_name"] == "'-2"
        assert row["message"] == "'\tcmd"
        assert row["time"] == "2026-11-20T11:59:00.000Z"

    def test_export_stops_at_5000_rows(self, clock: FixedClock) -> None:
        # The in-memory adapters keep this at full size: moto reads every item for each query.
        control = MemoryControlTable()
        projects = ProjectRegistry(control, clock)
        projects.register(PROJECT, DOMAIN)
        store = TraceStore(MemoryTraceTable())
        api = TraceApi(
            projects,
            Ingestor(projects, store, Catalog(control), clock),
            TraceFinder(store),
            Catalog(control),
            clock,
        )
        for start in range(0, 5003, 500):
            batch = [
                trace(trace_id=f"x{i:05d}", time=NOW_MS - i)
                for i in range(start, min(start + 500, 5003))
            ]
            api.report(PROJECT, json.dumps({"traces": batch}).encode())
        reply = api.export_traces(PROJECT, {})
        rows = list(csv.reader(io.StringIO(reply.body)))
        assert len(rows) == 1 + 5000
        ids = [row[list(export.COLUMNS).index("trace_id")] for row in rows[1:]]
        assert ids == [f"x{i:05d}" for i in range(5000)]

    def test_an_export_too_large_to_answer_goes_to_s3(
        self, client: Client, monkeypatch: pytest.MonkeyPatch, settings: Settings
    ) -> None:
        post(client, {"traces": [trace(trace_id=f"s{i}") for i in range(20)]})
        monkeypatch.setattr(export, "MAX_INLINE_BYTES", 1000)
        r = client.http.get(f"/v3/{PROJECT}/traces/export")
        assert r.status_code == 303
        url = r.headers["Location"]
        assert r.json_body["export_url"] == url
        parts = urllib.parse.urlsplit(url)
        key = urllib.parse.unquote(
            parts.path.lstrip("/").removeprefix(f"{settings.export_bucket}/")
        )
        assert key.startswith(f"exports/{PROJECT}/")
        s3 = boto3.client("s3", region_name="us-east-1")
        body = s3.get_object(Bucket=settings.export_bucket, Key=key)["Body"].read().decode()
        assert len(list(csv.reader(io.StringIO(body)))) == 21
        assert "X-Amz-Expires=300" in url or "Expires=" in url


class TestCatalog:
    def test_resources_users_and_operations(self, client: Client, clock: FixedClock) -> None:
        post(
            client,
            {
                "traces": [
                    trace(trace_name="createServer"),
                    trace(trace_name="deleteServer", user={"id": "u-bob", "name": "bob"}),
                    trace(service_type="EVS", resource_type="evs", trace_name="createVolume"),
                    trace(
                        service_type="EVS", resource_type="snapshot", trace_name="createSnapshot"
                    ),
                ]
            },
        )
        resources = client.http.get(f"/v3/{DOMAIN}/resources").json_body
        assert resources == {
            "resources": [
                {"service_type": "ECS", "resource": ["ecs"]},
                {"service_type": "EVS", "resource": ["evs", "snapshot"]},
            ]
        }
        users = client.http.get(f"/v3/{PROJECT}/user-resources").json_body["users"]
        assert sorted(u["name"] for u in users) == ["alice", "bob"]
        ops = client.http.get(f"/v3/{PROJECT}/operations?service_type=EVS").json_body
        assert ops == {
            "operations": [
                {"service_type": "EVS", "resource_type": "evs", "operation_list": ["createVolume"]},
                {
                    "service_type": "EVS",
                    "resource_type": "snapshot",
                    "operation_list": ["createSnapshot"],
                },
            ]
        }
        ecs = client.http.get(f"/v3/{PROJECT}/operations?service_type=ECS&resource_type=ecs")
        assert ecs.json_body["operations"][0]["operation_list"] == ["createServer", "deleteServer"]
        assert len(client.http.get(f"/v3/{PROJECT}/operations").json_body["operations"]) == 3
        assert_error(
            client.http.get(f"/v3/{PROJECT}/operations?resource_type=ecs"), 400, "CTS.0001"
        )
        # Operators are listed for 30 days, then drop out
        clock.advance(31 * 24 * 3600 * 1000)
        assert client.http.get(f"/v3/{PROJECT}/user-resources").json_body == {"users": []}

    def test_resources_of_another_domain_are_empty(
        self, client: Any, services: Services, clock: FixedClock
    ) -> None:
        post(client, {"traces": [trace()]})
        # A key reaches only its own domain ...
        assert_error(client.http.get("/v3/999999999999/resources"), 403, "CTS.0403")
        # ... and another domain's key sees nothing of this one.
        other = services.keys.create(
            user=KeyUser("u-other", "other"),
            domain_id="999999999999",
            project_ids=["elsewhere"],
            policy=READ_ONLY_ACCESS,
        )
        http = client.signed_by(other.key.access_key_id, other.secret, clock)
        assert http.get("/v3/999999999999/resources").json_body == {"resources": []}


def test_unexpected_failure_is_a_cts_500_without_internals(
    client: Client, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: Any) -> Any:
        raise KeyError("secret internal detail")

    monkeypatch.setattr(services.api, "list_traces", boom)
    r = client.http.get(f"/v3/{PROJECT}/traces")
    body = assert_error(r, 500, "CTS.0500")
    assert "secret" not in body["error_msg"]


class TestQueueHandler:
    def test_partial_batch_response_lists_only_retryable_messages(
        self, client: Client, created: dict[str, str]
    ) -> None:
        event = client.events.generate_sqs_event(
            queue_name="opencts-test-ingest",
            message_bodies=[
                json.dumps({"project_id": PROJECT, "traces": [trace(trace_id="sqs1")]}),
                "poison",
            ],
        )
        out = client.lambda_.invoke("ingest_queue", event).payload
        assert out == {"batchItemFailures": []}
        sqs = boto3.client("sqs", region_name="us-east-1")
        parked = sqs.receive_message(QueueUrl=created["ingest_dlq_url"], MaxNumberOfMessages=10)
        (message,) = parked["Messages"]
        assert json.loads(message["Body"])["body"] == "poison"
        ids = [t["trace_id"] for t in client.http.get(f"/v3/{PROJECT}/traces").json_body["traces"]]
        assert ids == ["sqs1"]
