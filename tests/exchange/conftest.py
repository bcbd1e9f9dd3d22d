"""Fixtures for partner exchange: a demo server per backend whose outbox retries fast,
a partner system that records what it is sent, and a person of each test's own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from unittest import mock

import pytest
from exchange_world import CUSTODIAN, FAST, Partner, Person, seed_person
from pytest_httpserver import HTTPServer

from tests.conftest import LiveServer, own_server, uid


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def exchange(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A demo-world server of this module's own, per backend, with a fast outbox."""
    # A test module may tune the outbox further with a module-level OUTBOX dict.
    settings = {**FAST, **getattr(request.module, "OUTBOX", {})}
    # Bulk export files go under the test's own temporary directory.
    exports = str(tmp_path_factory.mktemp("exports"))
    with (
        own_server(request.param, tmp_path_factory, settings) as srv,
        mock.patch.dict(os.environ, {"CAREBRIDGE_EXPORT_DIR": exports}),
    ):
        yield srv


@pytest.fixture
def partner() -> Iterator[Partner]:
    server = HTTPServer(threaded=True)
    server.start()
    yield Partner(server)
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def person(exchange: LiveServer) -> Person:
    with exchange.client(CUSTODIAN) as trust:
        return seed_person(trust, uid("person"))
