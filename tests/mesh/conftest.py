"""A MESH sandbox per module and a demo carebridge per backend, with the demo GP practice
(Keynsham Health Centre) reachable by MESH (`carebridge partner add ... --mesh-mailbox`).

`demo` runs MESH rounds only when a test calls them; `mesh_server` is configured as an
operator would (CAREBRIDGE_MESH_* in its environment), so its own background workers do
the MESH rounds and the outbox's MESH deliveries."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from unittest import mock

import pytest
from mesh_box import GP_MAILBOX, Sandbox

from carebridge.adapters.mesh import Mesh
from carebridge.server.partners import add, get
from tests.conftest import LiveServer, _pg_available, drop_pg_schema, make_url, start_server
from tests.exchange.exchange_world import FAST
from tests.transfer.transfer_world import GP

GP_WORKFLOW = "CAREBRIDGE_TRANSFER_NOTIFICATION"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    s = Sandbox()
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if request.param == "postgresql" and (reason := _pg_available()):
        pytest.skip(reason)
    url = make_url(request.param, tmp_path_factory)
    srv, server, thread = start_server(url)
    with srv.db.read() as c:
        gp = get(c, GP)
    assert gp is not None
    add(srv.db, dataclasses.replace(gp, mesh_mailbox=GP_MAILBOX, mesh_workflow=GP_WORKFLOW), replace=True)
    yield srv
    server.should_exit = True
    thread.join(timeout=10)
    srv.db.close()
    if request.param == "postgresql":
        drop_pg_schema(url)


@pytest.fixture
def gp_mesh(sandbox: Sandbox) -> Iterator[Mesh]:
    """The GP practice's side of MESH: its own mailbox, through the same official client."""
    m = Mesh(sandbox.config(GP_MAILBOX))
    yield m
    m.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def mesh_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox
) -> Iterator[LiveServer]:
    """The demo world, as loaded, on a server whose environment points it at the sandbox."""
    if request.param == "postgresql" and (reason := _pg_available()):
        pytest.skip(reason)
    url = make_url(request.param, tmp_path_factory)
    cfg = sandbox.config()
    settings = {
        "CAREBRIDGE_MESH_URL": cfg.url,
        "CAREBRIDGE_MESH_MAILBOX": cfg.mailbox,
        "CAREBRIDGE_MESH_PASSWORD": cfg.password,
        "CAREBRIDGE_MESH_SHARED_KEY": cfg.shared_key,
        "CAREBRIDGE_MESH_POLL": "0.2",
    }
    with mock.patch.dict(os.environ, {**FAST, **settings}):
        srv, server, thread = start_server(url)
    yield srv
    server.should_exit = True
    thread.join(timeout=15)
    srv.db.close()
    if request.param == "postgresql":
        drop_pg_schema(url)
