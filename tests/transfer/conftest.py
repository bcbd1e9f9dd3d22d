"""A demo server of a test's own, for tests that move the demo's transfer (Millie's) and
so must not share it with tests that read it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, _pg_available, drop_pg_schema, make_url, start_server


@pytest.fixture(params=["sqlite", "postgresql"])
def own_demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    if request.param == "postgresql" and (reason := _pg_available()):
        pytest.skip(reason)
    url = make_url(request.param, tmp_path_factory)
    srv, server, thread = start_server(url)
    yield srv
    server.should_exit = True
    thread.join(timeout=10)
    srv.db.close()
    if request.param == "postgresql":
        drop_pg_schema(url)
