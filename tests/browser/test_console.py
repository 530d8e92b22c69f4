"""The web console in a real headless Chromium against the app on a real HTTP server: sign in with
an access key (requests signed in the browser), query traces with filters, expand, view, export,
page; create and manage trackers."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
from playwright.sync_api import expect

from tests.browser.conftest import Console
from tests.conftest import trace


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_the_console_page_is_public_and_locked_down(console: Console) -> None:
    response = console.page.goto(console.url)
    assert response is not None
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(console.page.locator("#page-signin")).to_be_visible()
    missing = console.page.request.get(console.url + "/../console/nothing.js")
    assert missing.status == 404
    assert missing.json()["error_code"] == "CTS.0009"


def test_a_wrong_secret_is_refused_and_nothing_is_shown(console: Console) -> None:
    console.page.goto(console.url)
    form = console.page.locator("#signin-form")
    form.locator("input[name=project_id]").fill("demo-project")
    form.locator("input[name=access_key_id]").fill(console.key.key.access_key_id)
    form.locator("input[name=secret]").fill("not-the-secret")
    form.locator("button[type=submit]").click()
    expect(console.page.locator("#message")).to_contain_text("CTS.0401")
    expect(console.page.locator("#page-traces")).to_be_hidden()


def test_query_filter_expand_view_and_page_through_traces(console: Console) -> None:
    now = _now_ms()
    console.report(
        [
            trace(trace_name=f"createServer{i}", time=now - 1000 * i, resource_id=f"srv-{i}")
            for i in range(23)
        ]
        + [
            trace(
                service_type="IAM",
                resource_type="user",
                trace_name="login",
                resource_id="alice",
                trace_rating="warning",
                time=now - 30_000,
                user={"id": "u-bob", "name": "bob", "domain": {"id": "123456789012"}},
            )
        ]
    )
    console.sign_in()
    rows = console.page.locator("#trace-table tbody tr:not(.details)")
    expect(rows).to_have_count(20)
    expect(console.page.locator("#trace-next")).to_be_enabled()
    console.screenshot("trace-list")

    console.page.locator("#trace-next").click()
    expect(console.page.locator("#trace-page")).to_have_text("Page 2")
    expect(rows).to_have_count(4)
    console.page.locator("#trace-prev").click()
    expect(rows).to_have_count(20)

    filters = console.page.locator("#trace-filters")
    filters.locator("select[name=service_type]").select_option("IAM")
    expect(filters.locator("select[name=resource_type] option")).to_have_count(2)
    filters.locator("select[name=user]").select_option("bob")
    filters.locator("#trace-query").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("login")
    expect(rows.first).to_contain_text("warning")

    filters.locator("select[name=service_type]").select_option("")
    filters.locator("select[name=user]").select_option("")
    filters.locator("input[name=search_value]").fill("srv-7")
    filters.locator("#trace-query").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("createServer7")

    rows.first.locator("button.expand").click()
    details = console.page.locator("#trace-table tr.details").first
    expect(details).to_be_visible()
    expect(details).to_contain_text("192.0.2.10")
    rows.first.locator("button.view").click()
    expect(console.page.locator("#trace-json")).to_contain_text('"resource_id": "srv-7"')
    console.screenshot("trace-view")
    console.page.locator("#trace-dialog button").click()


def test_refresh_shows_new_traces_and_export_downloads_the_csv(
    console: Console, tmp_path: Path
) -> None:
    now = _now_ms()
    console.report([trace(time=now - 5000)])
    console.sign_in()
    rows = console.page.locator("#trace-table tbody tr:not(.details)")
    expect(rows).to_have_count(1)
    console.report([trace(trace_name="deleteServer", time=now - 1000)])
    console.page.locator("#trace-refresh").click()
    expect(rows).to_have_count(2)

    with console.page.expect_download() as download:
        console.page.locator("#trace-export").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert saved.suffix == ".csv"
    assert len(lines) == 3
    assert "deleteServer" in lines[1]
    assert "createServer" in lines[2]


def test_create_configure_disable_tag_and_delete_a_tracker(console: Console) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in ("watched-bucket", "trace-archive"):
        s3.create_bucket(Bucket=bucket)
    console.sign_in()
    console.page.locator("nav a[data-page=trackers]").click()
    console.page.locator("#tracker-create").click()
    form = console.page.locator("#tracker-form")
    form.locator("select[name=tracker_type]").select_option("data")
    form.locator("input[name=tracker_name]").fill("uploads")
    form.locator("input[name=data_bucket_name]").fill("watched-bucket")
    form.locator("input[name=transfer]").check()
    form.locator("input[name=bucket_name]").fill("trace-archive")
    form.locator("input[name=file_prefix_name]").fill("audit")
    form.locator("input[name=is_support_validate]").check()
    form.locator("button[type=submit]").click()

    row = console.page.locator("#tracker-table tr[data-tracker=uploads]")
    expect(row).to_contain_text("enabled")
    expect(row.locator("td.integrity")).to_have_text("No digest yet")
    expect(row).to_contain_text("s3://trace-archive/audit")
    console.screenshot("tracker-list")

    row.locator("button.configure").click()
    form.locator("input[name=file_prefix_name]").fill("audit2")
    form.locator("button[type=submit]").click()
    expect(row).to_contain_text("s3://trace-archive/audit2")

    row.locator("button.toggle").click()
    expect(row.locator("td.status")).to_have_text("disabled")
    row.locator("button.toggle").click()
    expect(row.locator("td.status")).to_have_text("enabled")

    row.locator("button.tag").click()
    tags = console.page.locator("#tag-form")
    tags.locator("input[name=key]").fill("team")
    tags.locator("input[name=value]").fill("payments")
    tags.locator("button[type=submit]").click()
    expect(row.locator("td.tags")).to_have_text("team=payments")

    console.page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button.delete").click()
    expect(row).to_have_count(0)
    listed = console.services.trackers.list_trackers("demo-project", {})["trackers"]
    assert [t["tracker_name"] for t in listed] == []


def test_a_refused_tracker_shows_the_cts_error(console: Console) -> None:
    console.sign_in()
    console.page.locator("nav a[data-page=trackers]").click()
    console.page.locator("#tracker-create").click()
    form = console.page.locator("#tracker-form")
    form.locator("input[name=tracker_name]").fill("bad")
    form.locator("input[name=data_bucket_name]").fill("no-such-bucket")
    form.locator("button[type=submit]").click()
    expect(console.page.locator("#message")).to_have_class("error")
    expect(console.page.locator("#message")).to_contain_text("CTS.")


def test_dependent_fields_show_only_when_they_apply(console: Console) -> None:
    console.sign_in()
    filters = console.page.locator("#trace-filters")
    tracker = filters.locator("select[name=tracker_name]")
    since = filters.locator("input[name=from]")
    expect(tracker).to_be_hidden()
    expect(since).to_be_hidden()
    filters.locator("select[name=trace_type]").select_option("data")
    expect(tracker).to_be_visible()
    filters.locator("select[name=range]").select_option("custom")
    expect(since).to_be_visible()


def test_create_test_disable_and_delete_a_key_event_notification(console: Console) -> None:
    topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="alerts")["TopicArn"]
    now = _now_ms()
    console.report([trace(time=now - 2000, trace_rating="warning")])
    console.sign_in()
    console.page.locator("nav a[data-page=notifications]").click()
    console.page.locator("#notification-create").click()
    form = console.page.locator("#notification-form")
    form.locator("input[name=notification_name]").fill("server_changes")
    form.locator("textarea[name=operations]").fill("ECS ecs createServer,deleteServer")
    form.locator("input[name=users]").fill("alice")
    form.locator("input[name=topic_id]").fill(topic)
    form.locator("textarea[name=rules]").fill("trace_rating = warning")
    form.locator("button[type=submit]").click()

    row = console.page.locator("#notification-table tr[data-notification=server_changes]")
    expect(row).to_contain_text("ECS/ecs: createServer, deleteServer")
    expect(row.locator("td.status")).to_have_text("enabled")
    console.screenshot("notifications")

    # Test it against the trace on the Trace List (prefilled) and against one that differs.
    row.locator("button.test").click()
    tester = console.page.locator("#notification-test")
    tester.locator("button[type=submit]").click()
    expect(console.page.locator("#test-result")).to_have_text("Matched: every condition matched")
    event = tester.locator("textarea[name=event]")
    event.fill(event.input_value().replace('"warning"', '"normal"'))
    tester.locator("button[type=submit]").click()
    expect(console.page.locator("#test-result")).to_contain_text("Not matched: filter")
    console.screenshot("notification-test")

    row.locator("button.toggle").click()
    expect(row.locator("td.status")).to_have_text("disabled")
    stored = console.services.notifications
    assert stored is not None
    listed = stored.list_notifications("demo-project", "smn", {})["notifications"]
    assert [(n["notification_name"], n["status"]) for n in listed] == [
        ("server_changes", "disabled")
    ]

    row.locator("button.modify").click()
    form.locator("input[name=enabled]").check()
    form.locator("textarea[name=rules]").fill("trace_rating = incident")
    form.locator("button[type=submit]").click()
    expect(row.locator("td.status")).to_have_text("enabled")
    listed = stored.list_notifications("demo-project", "smn", {})["notifications"]
    assert listed[0]["filter"]["rule"] == ["trace_rating = incident"]

    console.page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button.delete").click()
    expect(row).to_have_count(0)
    assert stored.list_notifications("demo-project", "smn", {})["notifications"] == []
