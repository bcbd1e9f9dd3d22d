"""carebridge passes every suite shipped in conformance/suites, on both backends.

Each TestScript is one test here, so a failure names the script; the message carries
what failed and the exact request and response.
"""

from __future__ import annotations

import pytest

from carebridge.conformance import runner, suites
from carebridge.conformance.engine import Engine
from tests.conformance.conftest import explain

SCRIPTS = [pytest.param(item, id=f"{item.suite}/{item.path.stem}") for item in runner.select()]


def test_every_suite_ships_scripts() -> None:
    assert set(suites.names()) == {"core", "careplan", "consent", "transfer", "security"}
    assert all(suites.scripts(name) for name in suites.names())


@pytest.mark.parametrize("item", SCRIPTS)
def test_carebridge_passes(item: runner.Item, carebridge_engine: Engine) -> None:
    result = carebridge_engine.run(suites.load(item.path), suite=item.suite, path=item.path)
    # carebridge declares every capability the suites ask for, so nothing is skipped.
    assert result.not_applicable is None, result.not_applicable
    assert result.result == "pass", explain(result)
    assert result.tests and all(t.result == "pass" for t in result.tests)
