"""Fixtures for partner exchange: a demo server per backend whose outbox retries fast,
a partner system that records what it is sent, and a person of each test's own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from exchange_world import CUSTODIAN, FAST, Partner, Person, seed_person
from pytest_httpserver import HTTPServer

from tests.conftest import LiveServer, _pg_available, drop_pg_schema, make_url, start_server, uid


@contextmanager
def environment(**settings: str) -> Iterator[None]:
    """These environment variables while inside, as they were afterwards."""
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def fast_outbox(**more: str) -> AbstractContextManager[None]:
    """The fast delivery settings (read when an app starts), plus any given."""
    return environment(**{**FAST, **more})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def exchange(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A demo-world server of this module's own, per backend, with a fast outbox."""
    if request.param == "postgresql" and (reason := _pg_available()):
        pytest.skip(reason)
    url = make_url(request.param, tmp_path_factory)
    # A test module may tune the outbox further with a module-level OUTBOX dict.
    with fast_outbox(**getattr(request.module, "OUTBOX", {})):
        srv, server, thread = start_server(url)
    # Bulk export files go under the test's own temporary directory.
    with environment(CAREBRIDGE_EXPORT_DIR=str(tmp_path_factory.mktemp("exports"))):
        yield srv
    server.should_exit = True
    thread.join(timeout=15)
    srv.db.close()
    if request.param == "postgresql":
        drop_pg_schema(url)


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
