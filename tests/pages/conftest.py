"""Fixtures for the person's pages: one demo server and one headless Chromium per module.

The pages change Millie's consent, so these tests run their own server rather than the
session-wide one. Chromium (Debian `chromium`) and axe-core (npm, installed into
tests/pages/node_modules by .ci/run) are needed; without them the browser tests are
skipped with the reason printed, as the PostgreSQL tests are.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer, own_server

HERE = Path(__file__).parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = HERE.parents[1] / "test-output" / "pages"


def browser_missing() -> str | None:
    if not (shutil.which("chromium") or Path("/usr/bin/chromium").exists()):
        return "Debian chromium is not installed (apt-get install -y chromium; .ci/run does it)"
    if not AXE.exists():
        return "axe-core is not installed (npm install --prefix tests/pages; .ci/run does it)"
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with own_server("sqlite", tmp_path_factory) as live:
        yield live


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from cdp import Browser

    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def axe_source() -> str:
    return AXE.read_text()


@pytest.fixture(scope="module")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
