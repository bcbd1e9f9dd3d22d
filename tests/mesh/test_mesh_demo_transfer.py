"""The issue's "done when", with the demo world as it loads: the demo GP practice (Keynsham
Health Centre) has a MESH mailbox, and carebridge's own mailbox comes from its environment.
Millie's transfer, planned with notifyGp and her permission, puts exactly one message in
the practice's mailbox, sent by the server's own MESH worker; once she has said no, none.
"""

from __future__ import annotations

import time
from datetime import date

import orjson
from mesh_box import GP_MAILBOX

from carebridge.adapters.mesh import DEFAULT_WORKFLOW, Inbound, Mesh
from carebridge.mappings.demo_world import GP_MESH_MAILBOX
from carebridge.mappings.mesh_message import local_id
from tests.conftest import LiveServer
from tests.exchange.exchange_world import wait_for
from tests.transfer.transfer_world import A, plan_parameters, resources, set_status

MILLIE_TRANSFER = "millie-transfer"  # the demo's transfer, in its introduction week


def replan(a, open_parent: str) -> dict:
    """A cancels Millie's open transfer and plans it again with notifyGp: the new parent Task."""
    assert set_status(a, open_parent, "cancelled").status_code == 200
    r = a.post("/CarePlan/millie-plan/$plan-transfer", json=plan_parameters(date.today(), notify_gp=True))
    assert r.status_code == 201, r.text
    return resources(r.json())[0]


def gp_messages(gp: Mesh, seen: dict[str, list[Inbound]]) -> dict[str, list[Inbound]]:
    """Everything that has reached the GP's mailbox so far, by local id (kept across calls)."""
    for mid in gp.inbox():
        m = gp.fetch(mid)
        gp.acknowledge(mid)
        seen.setdefault(m.local_id or "", []).append(m)
    return seen


def notice_of(parent: dict) -> str | None:
    for o in parent.get("output") or []:
        if o["type"]["coding"][0]["code"] == "gp-notification":
            return o["valueReference"]["reference"].split("/")[1]
    return None


def test_the_demo_transfer_tells_the_demo_gp_by_mesh_once_and_not_at_all_without_permission(
    mesh_server: LiveServer, gp_mesh: Mesh
) -> None:
    assert GP_MESH_MAILBOX == GP_MAILBOX  # the demo GP's mailbox is the sandbox's
    seen: dict[str, list[Inbound]] = {}
    with mesh_server.client(A) as a:
        parent = replan(a, MILLIE_TRANSFER)
        comm_id = notice_of(parent)
        assert comm_id is not None, parent.get("output")

        wait_for(lambda: local_id(comm_id) in gp_messages(gp_mesh, seen), why="the GP's MESH message")
        [message] = seen[local_id(comm_id)]
        assert message.workflow_id == DEFAULT_WORKFLOW
        bundle = orjson.loads(message.body)
        assert bundle["entry"][0]["resource"]["focus"] == [{"reference": f"Communication/{comm_id}"}]
        assert "millie-crisis-plan" not in message.body.decode()  # only what the GP may see
        wait_for(
            lambda: a.get(f"/Communication/{comm_id}").json()["status"] == "in-progress",
            why="the notice marked as sent",
        )

        # Millie changes her mind about her GP; the transfer is planned again.
        gp_consent = a.get("/Consent/millie-consent-gp").json()
        withdrawn = {**gp_consent, "status": "inactive"}
        assert a.put("/Consent/millie-consent-gp", json=withdrawn).status_code == 200
        again = replan(a, parent["id"])
        assert notice_of(again) is None
        decision = next(o for o in again["output"] if o["type"]["coding"][0]["code"] == "gp-decision")
        assert "was not told" in decision["valueString"]

    # Several MESH rounds later, still the one message, and nothing about the new plan.
    time.sleep(1.0)  # the server runs a MESH round every 0.2 s
    gp_messages(gp_mesh, seen)
    assert len(seen[local_id(comm_id)]) == 1
    assert not any(again["id"] in m.body.decode() for v in seen.values() for m in v)
    with mesh_server.db.read() as c:
        assert c.all("SELECT communication FROM mesh_message WHERE patient = 'millie'") == [(comm_id,)]
