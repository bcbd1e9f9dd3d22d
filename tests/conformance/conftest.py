"""Fixtures for the conformance tests: an engine that acts as the suites' roles on the
session's live carebridge server (each backend), and a failure explainer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from carebridge.conformance import register
from carebridge.conformance.engine import Engine, Role, Settings
from carebridge.conformance.results import ScriptResult
from tests.conftest import LiveServer


def settings_for(base: str, role_tables: dict[str, dict[str, str]], **kw: object) -> Settings:
    roles = {
        name: Role(name, f"Bearer {t['token']}", {k: v for k, v in t.items() if k != "token"})
        for name, t in role_tables.items()
    }
    return Settings(base_url=base, roles=roles, default_role="custodian", **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def role_tables(live: LiveServer) -> dict[str, dict[str, str]]:
    """The suites' partners registered on the live server, as `conformance config` does."""
    register.register(live.db)
    return register.roles(live.db, ttl=4 * 3600)


@pytest.fixture(scope="session")
def carebridge_engine(live: LiveServer, role_tables: dict[str, dict[str, str]]) -> Iterator[Engine]:
    engine = Engine(settings_for(live.base, role_tables))
    yield engine
    engine.close()


def explain(result: ScriptResult) -> str:
    """What failed, with the request and response, for an assertion message."""
    lines = [f"{result.suite}/{result.id}: {result.result}"]
    failures = [("setup", result.setup_failure)] + [(t.name, t.failure) for t in result.tests]
    for name, f in failures:
        if f is None:
            continue
        lines.append(f"  {name}: {f.description}: {f.message}")
        ex = f.exchange
        if ex is not None:
            lines.append(f"    {ex.method} {ex.url} -> {ex.status or ex.error}")
            lines.append("    " + ex.response_body[:600].decode("utf-8", "replace"))
    return "\n".join(lines)
