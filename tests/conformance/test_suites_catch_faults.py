"""The suites catch real faults: a deliberately broken server fails at the named test.

The broken server is carebridge behind a wrapper that switches on one fault at a time
(faulty_server.py). With no fault it passes the same scripts; with each fault, the
first test to fail in the script is exactly the one that names that fault.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from carebridge.conformance import register, suites
from carebridge.conformance.engine import Engine
from carebridge.server.app import create_app
from carebridge.server.db import Database
from tests.conformance.conftest import explain, settings_for
from tests.conformance.faulty_server import CAUGHT_BY, FAULTS, FaultyServer
from tests.conftest import free_port


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FaultyServer, Engine]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('faulty') / 'carebridge.db'}"
    db = Database(url)
    register.register(db)
    tables = register.roles(db)
    app = FaultyServer(create_app(db=Database(url)), f"Bearer {tables['custodian']['token']}")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    engine = Engine(settings_for(f"http://127.0.0.1:{port}/fhir", tables))
    yield app, engine
    engine.close()
    server.should_exit = True
    thread.join(timeout=10)
    db.close()


def run(engine: Engine, suite: str, file: str):  # type: ignore[no-untyped-def]
    path = suites.SUITES_DIR / suite / file
    return engine.run(suites.load(path), suite=suite, path=path)


def test_every_fault_is_named_by_a_test() -> None:
    assert set(CAUGHT_BY) == set(FAULTS)
    for suite, file, test_id in CAUGHT_BY.values():
        ids = [t["id"] for t in suites.load(suites.SUITES_DIR / suite / file)["test"]]
        assert test_id in ids


@pytest.mark.parametrize(
    "script", sorted({(s, f) for s, f, _ in CAUGHT_BY.values()}), ids=lambda s: "/".join(s)
)
def test_without_faults_the_wrapped_server_passes(broken, script) -> None:  # type: ignore[no-untyped-def]
    app, engine = broken
    app.faults = set()
    result = run(engine, *script)
    assert result.result == "pass", explain(result)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_fails_the_test_that_names_it(broken, fault: str) -> None:  # type: ignore[no-untyped-def]
    app, engine = broken
    suite, file, test_id = CAUGHT_BY[fault]
    app.faults = {fault}
    try:
        result = run(engine, suite, file)
    finally:
        app.faults = set()
    assert result.result == "fail"
    assert result.setup_failure is None, explain(result)
    first_failure = next(t for t in result.tests if t.result in ("fail", "error"))
    assert first_failure.id == test_id, f"{fault} ({FAULTS[fault]}) was first caught by {first_failure.id}"
    assert first_failure.failure is not None and first_failure.failure.result == "fail"
