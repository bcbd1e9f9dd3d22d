"""Shared fixtures: both database backends, a live server over real sockets, demo tokens.

Every HTTP test runs against SQLite and against PostgreSQL (127.0.0.1:5432, database
`test`); PostgreSQL tests are skipped, with the reason printed, only where none answers.
Each backend gets its own PostgreSQL schema, so runs never see each other's rows.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from unittest import mock

import httpx
import pytest
import uvicorn

from carebridge.server.app import create_app
from carebridge.server.db import Database

PG_BASE = os.environ.get("CAREBRIDGE_TEST_PG", "postgresql://root@127.0.0.1:5432/test")
_pg_reason: str | None = None


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    global _pg_reason
    if _pg_reason is not None:
        return _pg_reason or None
    try:
        import psycopg

        with psycopg.connect(PG_BASE, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        _pg_reason = ""
    except Exception as exc:  # any failure to connect means: skip, and say why
        _pg_reason = f"PostgreSQL at {PG_BASE} is not reachable: {exc}"
    return _pg_reason or None


def pg_schema_url() -> str:
    """A fresh, empty schema in the test database, as a URL whose search_path selects it."""
    import psycopg

    schema = f"cb_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_BASE else "?"
    return f"{PG_BASE}{sep}options=-csearch_path%3D{schema}"


def drop_pg_schema(url: str) -> None:
    import psycopg

    schema = url.rsplit("%3D", 1)[-1]
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def pytest_report_header(config: pytest.Config) -> str:
    reason = _pg_available()
    return "PostgreSQL: " + (f"SKIPPED ({reason})" if reason else f"available at {PG_BASE}")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and (reason := _pg_available()):
        pytest.skip(reason)
    return request.param


def make_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'carebridge.db'}"
    return pg_schema_url()


@pytest.fixture
def database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """An empty database of each backend."""
    url = make_url(backend, tmp_path_factory)
    db = Database(url)
    yield db
    db.close()
    if backend == "postgresql":
        drop_pg_schema(url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    """A carebridge server on a real socket, with the demo world and its tokens."""

    base: str
    db: Database
    tokens: dict[str, str] = field(default_factory=dict)
    world: object | None = None

    def client(self, partner: str | None = None, **headers: str) -> httpx.Client:
        h = dict(headers)
        if partner is not None:
            h["Authorization"] = f"Bearer {self.tokens[partner]}"
        return httpx.Client(base_url=self.base, headers=h, timeout=30)

    def token(self, partner: str, **kw: object) -> str:
        from carebridge.server.auth import Signer
        from carebridge.server.partners import get

        with self.db.read() as c:
            p = get(c, partner)
        assert p is not None
        return Signer(self.db).issue(partner, kw.pop("scope", p.scope), **kw)  # type: ignore[arg-type]


def start_server(url: str, *, demo: bool = True) -> tuple[LiveServer, uvicorn.Server, threading.Thread]:
    from carebridge.server.demo import load_demo

    db = Database(url)
    world = load_demo(db) if demo else None
    app = create_app(db=Database(url))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    live = LiveServer(base=f"http://127.0.0.1:{port}/fhir", db=db, world=world)
    if world is not None:
        live.tokens = {p["id"]: live.token(p["id"]) for p in world.partners}
    return live, server, thread


@contextmanager
def own_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """A demo-world server of its own on `backend` (skipped, saying why, where PostgreSQL does
    not answer), stopped and its database dropped afterwards. `env`: settings the app reads
    when it starts."""
    if backend == "postgresql" and (reason := _pg_available()):
        pytest.skip(reason)
    url = make_url(backend, tmp_path_factory)
    with mock.patch.dict(os.environ, env or {}):
        srv, server, thread = start_server(url)
    try:
        yield srv
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        srv.db.close()
        if backend == "postgresql":
            drop_pg_schema(url)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One demo server per backend for the whole session (tests use fresh ids when they write)."""
    with own_server(request.param, tmp_path_factory) as srv:
        yield srv


def uid(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
