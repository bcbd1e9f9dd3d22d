"""NHS MESH (CONTRACTS.md section 9, issue 10), against the official mesh-sandbox.

A GP practice told of a transfer, with the person's permission, receives exactly one MESH
message: a FHIR message Bundle (MessageHeader first, the Communication, the parent Task
and a plain-language summary). Without permission nothing reaches its mailbox and the
Task says why. Inbound: partners' messages are stored then acknowledged; what cannot be
read is quarantined and the rest still processed; the GP's acknowledgement completes
the Communication.
"""

from __future__ import annotations

import base64
import time

import orjson
from mesh_box import CAREBRIDGE_MAILBOX, GP_MAILBOX

from carebridge.adapters.mesh import ACK_WORKFLOW, Mesh, MeshError
from carebridge.mappings.mesh_message import ack_bundle, local_id
from carebridge.server import mesh_outbound, store
from carebridge.server.audit import AuditWriter
from carebridge.server.mesh_round import run_once
from tests.conftest import uid
from tests.mesh.conftest import GP_WORKFLOW
from tests.transfer.transfer_world import GP, A, consent, new_person, plan_transfer, resources


def outputs(task: dict) -> dict:
    return {o["type"]["coding"][0]["code"]: o for o in task.get("output") or []}


def planned_notice(demo, *, gp_may_know: bool) -> tuple[object, dict, str | None]:
    """A fresh person's transfer planned with notifyGp: (person, parent Task, Communication id)."""
    with demo.client(A) as a:
        person = new_person(a, uid("tess"), gp_may_know=gp_may_know)
        parent = resources(plan_transfer(a, person, notify_gp=True))[0]
    notice = outputs(parent).get("gp-notification")
    return person, parent, notice["valueReference"]["reference"].split("/")[1] if notice else None


def gp_inbox(gp_mesh: Mesh) -> dict[str, list]:
    """Every message waiting for the GP, by local id (read, not acknowledged)."""
    out: dict[str, list] = {}
    for mid in gp_mesh.inbox():
        m = gp_mesh.fetch(mid)
        out.setdefault(m.local_id or "", []).append(m)
    return out


def current(demo, rtype: str, rid: str) -> dict:
    with demo.db.read() as c:
        row = store.current(c, rtype, rid)
    assert row is not None
    return row.resource()


def test_a_permitted_gp_gets_exactly_one_message_with_only_what_consent_allows(demo, sandbox, gp_mesh):
    person, parent, comm_id = planned_notice(demo, gp_may_know=True)
    assert comm_id is not None
    run_once(demo.db, sandbox.config())
    run_once(demo.db, sandbox.config())  # a second round sends nothing again

    [msg] = gp_inbox(gp_mesh)[local_id(comm_id)]
    assert msg.workflow_id == GP_WORKFLOW
    assert msg.sender == CAREBRIDGE_MAILBOX
    bundle = orjson.loads(msg.body)
    assert bundle["type"] == "message"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "MessageHeader"
    assert sorted(kinds[1:]) == ["Communication", "DocumentReference", "Task"]
    header = bundle["entry"][0]["resource"]
    assert header["eventCoding"]["code"] == "transfer-gp-notification"
    assert header["focus"] == [{"reference": f"Communication/{comm_id}"}]
    # Only what the GP may see: the transfer section (the notice and the transfer Task),
    # never the person's care plan sections; references to what it may not see are gone.
    text = msg.body.decode()
    for hidden in ("about-me", "crisis-plan", f"{person.id}-contacts"):
        assert hidden not in text
    by_type = {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}
    assert by_type["Task"]["id"] == parent["id"]
    summary = base64.b64decode(by_type["DocumentReference"]["content"][0]["attachment"]["data"]).decode()
    assert "care is moving from" in summary and summary.startswith("<!DOCTYPE html>")
    # Sent, audited, and awaiting the GP's acknowledgement.
    assert current(demo, "Communication", comm_id)["status"] == "in-progress"
    with demo.db.read() as c:
        audits = c.all("SELECT body FROM resource WHERE type = 'AuditEvent' AND body IS NOT NULL")
    assert any(b"sent by NHS MESH" in bytes(b[0]) and person.id.encode() in bytes(b[0]) for b in audits)


def test_a_gp_without_permission_gets_nothing(demo, sandbox, gp_mesh):
    _, parent, comm_id = planned_notice(demo, gp_may_know=False)
    assert comm_id is None  # no notice at all: the Task already says why
    assert "was not told" in outputs(parent)["gp-decision"]["valueString"]
    run_once(demo.db, sandbox.config())
    after = gp_inbox(gp_mesh)
    assert not any(parent["id"] in m.body.decode() for v in after.values() for m in v)
    with demo.db.read() as c:
        assert c.one("SELECT 1 FROM mesh_message WHERE task = ?", (f"Task/{parent['id']}",)) is None


def test_permission_withdrawn_before_sending_means_nothing_is_sent_and_the_task_says_why(
    demo, sandbox, gp_mesh
):
    person, parent, comm_id = planned_notice(demo, gp_may_know=True)
    assert comm_id is not None
    with demo.client(A) as a:  # the person changes their mind before MESH runs
        withdrawn = {
            **consent(person, GP, ("transfer",)),
            "id": f"{person.id}-consent-1",
            "status": "inactive",
        }
        a.put(f"/Consent/{person.id}-consent-1", json=withdrawn).raise_for_status()
    run_once(demo.db, sandbox.config())
    assert local_id(comm_id) not in gp_inbox(gp_mesh)
    notes = [n["text"] for n in current(demo, "Task", parent["id"]).get("note") or []]
    assert any(n.startswith("The transfer notice was not sent by MESH") for n in notes), notes
    with demo.db.read() as c:
        assert c.one("SELECT state FROM mesh_message WHERE local_id = ?", (local_id(comm_id),)) == (
            "withheld",
        )


def test_mesh_down_during_a_send_then_back_delivers_once(demo, sandbox, gp_mesh):
    _, _, comm_id = planned_notice(demo, gp_may_know=True)
    assert comm_id is not None
    sandbox.stop()
    try:
        result = run_once(demo.db, sandbox.config())
    finally:
        sandbox.start()
    assert result["outbound"]["retrying"] >= 1
    lid = local_id(comm_id)
    # Back up: the retry is due later; run the sending step as at that time.
    later = time.time() + 3600
    mesh = Mesh(sandbox.config())
    try:
        mesh_outbound.send_due(demo.db, mesh, CAREBRIDGE_MAILBOX, AuditWriter(demo.db), now=later)
        mesh_outbound.send_due(demo.db, mesh, CAREBRIDGE_MAILBOX, AuditWriter(demo.db), now=later)
    finally:
        mesh.close()
    assert len(gp_inbox(gp_mesh)[lid]) == 1


class AnswerLost(Mesh):
    """MESH takes the message, but the answer never comes back (the link drops)."""

    def send(self, *args, **kw) -> str:
        super().send(*args, **kw)
        raise MeshError("ConnectionError")


def test_an_answer_lost_after_mesh_took_the_message_is_not_sent_twice(demo, sandbox, gp_mesh):
    _, _, comm_id = planned_notice(demo, gp_may_know=True)
    assert comm_id is not None
    lossy, mesh = AnswerLost(sandbox.config()), Mesh(sandbox.config())
    try:
        mesh_outbound.send_due(demo.db, lossy, CAREBRIDGE_MAILBOX, AuditWriter(demo.db))
        mesh_outbound.send_due(
            demo.db, mesh, CAREBRIDGE_MAILBOX, AuditWriter(demo.db), now=time.time() + 3600
        )
    finally:
        lossy.close()
        mesh.close()
    assert len(gp_inbox(gp_mesh)[local_id(comm_id)]) == 1
    with demo.db.read() as c:
        assert c.one("SELECT state FROM mesh_message WHERE local_id = ?", (local_id(comm_id),)) == ("sent",)


def test_the_gps_acknowledgement_completes_the_communication(demo, sandbox, gp_mesh):
    _, _, comm_id = planned_notice(demo, gp_may_know=True)
    assert comm_id is not None
    run_once(demo.db, sandbox.config())
    [msg] = gp_inbox(gp_mesh)[local_id(comm_id)]
    gp_mesh.acknowledge(msg.message_id)  # the GP system downloaded it...
    ack = ack_bundle(message_id=uid("ack"), acked=local_id(comm_id), timestamp="2026-01-01T00:00:00Z")
    gp_mesh.send(
        CAREBRIDGE_MAILBOX, orjson.dumps(ack), workflow_id=ACK_WORKFLOW, local_id=uid(), subject="ack"
    )
    run_once(demo.db, sandbox.config())  # ...and its business acknowledgement came back
    assert current(demo, "Communication", comm_id)["status"] == "completed"
    with demo.db.read() as c:
        assert c.one("SELECT state FROM mesh_message WHERE local_id = ?", (local_id(comm_id),)) == ("acked",)


def gp_message(person_ref: str, text: str) -> bytes:
    header = {
        "resourceType": "MessageHeader",
        "id": uid("mh"),
        "eventCoding": {"code": "communication"},
        "source": {"endpoint": f"mesh://{GP_MAILBOX}"},
    }
    comm = {
        "resourceType": "Communication",
        "id": "x",
        "status": "completed",
        "subject": {"reference": person_ref},
        "payload": [{"contentString": text}],
    }
    return orjson.dumps(
        {"resourceType": "Bundle", "type": "message", "entry": [{"resource": header}, {"resource": comm}]}
    )


def test_a_malformed_message_is_quarantined_and_the_next_one_still_taken_even_chunked(demo, sandbox, gp_mesh):
    with demo.client(A) as a:
        person = new_person(a, uid("tess"))
    said = f"Seen in surgery today {uid()}. " * 40  # long enough to go in several chunks
    gp_mesh.send(
        CAREBRIDGE_MAILBOX, b"{this is not FHIR", workflow_id=GP_WORKFLOW, local_id=uid(), subject="x"
    )
    chunky = Mesh(sandbox.config(GP_MAILBOX), max_chunk_size=512)
    try:
        chunky.send(
            CAREBRIDGE_MAILBOX,
            gp_message(person.ref, said),
            workflow_id=GP_WORKFLOW,
            local_id=uid(),
            subject="note",
        )
    finally:
        chunky.close()
    result = run_once(demo.db, sandbox.config())
    assert result["inbound"]["quarantined"] == 1 and result["inbound"]["stored"] == 1
    with demo.db.read() as c:
        [(reason, body)] = c.all(
            "SELECT reason, body FROM mesh_quarantine WHERE body IS NOT NULL AND reason LIKE ?",
            ("not JSON%",),
        )
        stored = c.all("SELECT body FROM resource WHERE type = 'Communication' AND id LIKE ?", ("mesh-%",))
    assert bytes(body) == b"{this is not FHIR"
    assert any(said.strip() in bytes(b[0]).decode() for b in stored)
    # Both were acknowledged, so the next poll finds nothing and nothing loops.
    again = run_once(demo.db, sandbox.config())
    assert again["inbound"]["quarantined"] == 0 and again["inbound"]["stored"] == 0


def test_inbound_records_are_validated_like_any_write_and_refused_ones_quarantined(demo, sandbox, gp_mesh):
    with demo.client(A) as a:
        person = new_person(a, uid("tess"))
    invalid = orjson.loads(gp_message(person.ref, "status is not a FHIR code"))
    invalid["entry"][1]["resource"]["status"] = "finished-ish"
    stranger = gp_message("Patient/nobody-we-hold", "about someone carebridge does not hold")
    for body in (orjson.dumps(invalid), stranger, gp_message(person.ref, "a valid note")):
        gp_mesh.send(CAREBRIDGE_MAILBOX, body, workflow_id=GP_WORKFLOW, local_id=uid(), subject="note")
    result = run_once(demo.db, sandbox.config())
    assert (result["inbound"]["quarantined"], result["inbound"]["stored"]) == (2, 1)
    with demo.db.read() as c:
        reasons = [r[0] for r in c.all("SELECT reason FROM mesh_quarantine")]
        stored = [bytes(b[0]) for b in c.all("SELECT body FROM resource WHERE type = 'Communication'")]
    assert any(r.startswith("Communication 1 is not valid FHIR R4") and "status" in r for r in reasons), (
        reasons
    )
    assert any("Patient/nobody-we-hold, whom carebridge does not hold" in r for r in reasons), reasons
    assert any(b"a valid note" in b for b in stored)
    assert not any(b"finished-ish" in b or b"nobody-we-hold" in b for b in stored)
