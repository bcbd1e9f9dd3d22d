"""A demo server of a test's own, for tests that move the demo's transfer (Millie's) and
so must not share it with tests that read it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, own_server


@pytest.fixture(params=["sqlite", "postgresql"])
def own_demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with own_server(request.param, tmp_path_factory) as srv:
        yield srv
