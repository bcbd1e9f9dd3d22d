"""A MESH sandbox per module and a demo carebridge per backend; the demo GP practice
(Keynsham Health Centre) is registered with one of the sandbox's mailboxes.

`demo` runs MESH rounds only when a test calls them; `mesh_server` is configured as an
operator would (CAREBRIDGE_MESH_* in its environment), so its own background workers do
the MESH rounds and the outbox's MESH deliveries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mesh_box import GP_MAILBOX, Sandbox

from carebridge.adapters.mesh import DEFAULT_WORKFLOW, Mesh
from carebridge.mappings.demo_world import GP_MESH_MAILBOX
from tests.conftest import LiveServer, own_server
from tests.exchange.exchange_world import FAST

GP_WORKFLOW = DEFAULT_WORKFLOW  # the demo GP practice's workflow


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    s = Sandbox()
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    assert GP_MESH_MAILBOX == GP_MAILBOX  # the demo GP practice's mailbox is the sandbox's
    with own_server(request.param, tmp_path_factory) as srv:
        yield srv


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
    cfg = sandbox.config()
    settings = {
        "CAREBRIDGE_MESH_URL": cfg.url,
        "CAREBRIDGE_MESH_MAILBOX": cfg.mailbox,
        "CAREBRIDGE_MESH_PASSWORD": cfg.password,
        "CAREBRIDGE_MESH_SHARED_KEY": cfg.shared_key,
        "CAREBRIDGE_MESH_POLL": "0.2",
    }
    with own_server(request.param, tmp_path_factory, {**FAST, **settings}) as srv:
        yield srv
