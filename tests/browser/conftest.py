"""A real headless Chromium (Debian's `chromium` package) driving the console, served by the app on
a real local HTTP server over moto. Playwright drives the browser; it never downloads one."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

import app as app_module
from chalicelib.access_keys import KeyUser, NewAccessKey
from chalicelib.clock import SystemClock
from chalicelib.config import Settings
from chalicelib.permissions import FULL_ACCESS
from chalicelib.wiring import Services, build
from tests.conftest import DOMAIN, PROJECT

# Chromium refuses to start as root without --no-sandbox; the other flags keep it off the network
# (this machine's is closed) and quick to start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"


def chromium_path() -> str:
    """Debian's Chromium: found on the PATH, or installed with apt-get when we may (CI runs as
    root with Debian's registry reachable). Never a browser downloaded by the test tool."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "chromium"],
        ):
            subprocess.run(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=900,
                check=False,
            )
        found = shutil.which("chromium")
        if found:
            return found
    pytest.fail("Chromium is needed for the console tests: apt-get install chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@dataclasses.dataclass
class Console:
    url: str
    services: Services
    key: NewAccessKey
    page: Page

    def sign_in(self, project: str = PROJECT) -> None:
        self.page.goto(self.url)
        form = self.page.locator("#signin-form")
        form.locator("input[name=project_id]").fill(project)
        form.locator("input[name=access_key_id]").fill(self.key.key.access_key_id)
        form.locator("input[name=secret]").fill(self.key.secret)
        form.locator("button[type=submit]").click()
        self.page.locator("#page-traces").wait_for(state="visible")

    def report(self, traces: list[dict[str, Any]]) -> None:
        body = json.dumps({"traces": traces}).encode()
        reply = self.services.api.report(PROJECT, body)
        assert reply["meta_data"]["stored"] == len(traces), reply

    def screenshot(self, name: str) -> None:
        """Pictures for docs/console/, refreshed with OPENCTS_SCREENSHOTS=1 make test."""
        if os.environ.get("OPENCTS_SCREENSHOTS"):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def console(
    created: dict[str, str], settings: Settings, endpoint: str, browser: Browser
) -> Iterator[Console]:
    # The browser signs with the real time, so the server checks it against the real time too.
    svc = build(
        dataclasses.replace(settings, ingest_dlq_url=created["ingest_dlq_url"]), SystemClock()
    )
    svc.projects.register(PROJECT, DOMAIN)
    key = svc.keys.create(
        user=KeyUser("u-console", "console-user"),
        domain_id=DOMAIN,
        project_ids=[PROJECT],
        policy=FULL_ACCESS,
    )
    app_module.use_services(svc)
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield Console(f"{endpoint}/console", svc, key, page)
    finally:
        context.close()
        app_module.use_services(None)
    assert errors == [], f"JavaScript errors in the console: {errors}"
