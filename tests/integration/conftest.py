"""Fixtures for the app driven through chalice.test.Client on moto."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.clock import FixedClock
from chalicelib.config import Settings
from chalicelib.wiring import Services, build
from tests.conftest import DOMAIN, OTHER_PROJECT, PROJECT


@pytest.fixture
def services(created: dict[str, str], settings: Settings, clock: FixedClock) -> Iterator[Services]:
    settings = dataclasses.replace(settings, ingest_dlq_url=created["ingest_dlq_url"])
    svc = build(settings, clock)
    svc.projects.register(PROJECT, DOMAIN)
    svc.projects.register(OTHER_PROJECT, DOMAIN)
    app_module.use_services(svc)
    yield svc
    app_module.use_services(None)


@pytest.fixture
def client(services: Services) -> Iterator[Client]:
    with Client(app_module.app) as c:
        yield c
