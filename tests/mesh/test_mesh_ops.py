"""Operating MESH: `carebridge mesh poll` from the environment, `carebridge outbox status`
showing MESH deliveries, and a notice MESH never delivered becoming a visible failure."""

from __future__ import annotations

import json
import time

from mesh_box import CAREBRIDGE_MAILBOX, PASSWORD, SHARED_KEY
from test_mesh_gp_notice import current, gp_inbox, planned_notice
from typer.testing import CliRunner

from carebridge.adapters.mesh import Mesh
from carebridge.mappings.mesh_message import local_id
from carebridge.server import mesh_outbound
from carebridge.server.cli import app
from carebridge.server.mesh_round import run_once


def test_mesh_poll_runs_a_round_from_the_environment(demo, sandbox, gp_mesh):
    _, _, comm_id = planned_notice(demo, gp_may_know=True)
    env = {
        "CAREBRIDGE_MESH_URL": sandbox.url,
        "CAREBRIDGE_MESH_MAILBOX": CAREBRIDGE_MAILBOX,
        "CAREBRIDGE_MESH_PASSWORD": PASSWORD,
        "CAREBRIDGE_MESH_SHARED_KEY": SHARED_KEY,
    }
    result = CliRunner().invoke(app, ["mesh", "poll", "--database", demo.db.url], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["outbound"]["sent"] >= 1
    assert PASSWORD not in result.output and SHARED_KEY not in result.output
    assert len(gp_inbox(gp_mesh)[local_id(comm_id)]) == 1


def test_without_a_mesh_url_mesh_is_off(demo):
    result = CliRunner().invoke(
        app, ["mesh", "poll", "--database", demo.db.url], env={"CAREBRIDGE_MESH_URL": ""}
    )
    assert result.exit_code == 2
    assert "MESH is off" in result.output


def test_outbox_status_shows_mesh_deliveries(demo, sandbox):
    planned_notice(demo, gp_may_know=True)
    run_once(demo.db, sandbox.config())
    result = CliRunner().invoke(app, ["outbox", "status", "--json", "--database", demo.db.url])
    assert result.exit_code == 0, result.output
    [mesh] = [t for t in json.loads(result.output) if t["target"].startswith("mesh/")]
    assert mesh["partner"] == "keynsham-gp"
    assert mesh["workflow"] == "CAREBRIDGE_TRANSFER_NOTIFICATION"
    assert mesh["sent"] + mesh["delivered"] + mesh["acked"] >= 1


def test_a_notice_not_delivered_before_it_expires_is_a_failure_the_task_shows(demo, sandbox):
    _, parent, comm_id = planned_notice(demo, gp_may_know=True)
    run_once(demo.db, sandbox.config())  # sent, but the GP's system never downloads it
    mesh = Mesh(sandbox.config())
    try:
        mesh_outbound.track(demo.db, mesh, now=time.time() + 30 * 86400)
    finally:
        mesh.close()
    with demo.db.read() as c:
        assert c.one("SELECT state FROM mesh_message WHERE local_id = ?", (local_id(comm_id),)) == (
            "expired",
        )
    notes = [n["text"] for n in current(demo, "Task", parent["id"]).get("note") or []]
    assert "The transfer notice was not delivered by MESH before it expired" in notes
