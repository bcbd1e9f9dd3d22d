"""MESH outbound, database side: queue each GP transfer notice for its MESH mailbox, decide
it through the consent gate when it is sent, send it once, and track it to delivery.

Exactly once: a notice has one row keyed by its local id. The attempt is counted before
the network call; a later attempt first asks MESH whether a message with that local id
already arrived (the answer to the first may have been lost), and only sends if not.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson

from carebridge.adapters.mesh import Mesh, MeshError
from carebridge.mappings.mesh_message import notification_bundle
from carebridge.mappings.vocabulary import GP_TRANSFER_NOTICE, MESSAGE_EVENT_SYSTEM
from carebridge.server import store
from carebridge.server.audit import AuditWriter, events_for
from carebridge.server.db import Conn, Database
from carebridge.server.delivery_policy import DeliveryConfig, backoff
from carebridge.server.disclosure import Gate, requester_for
from carebridge.server.instants import now_instant
from carebridge.server.partners import Registry
from carebridge.server.transfer_consent import organization_name, verdict

log = logging.getLogger("carebridge.mesh")
MAX_ATTEMPTS = 12
# How the notice left, in its AuditEvent's subtype (after the interaction).
SENT_BY_MESH = ((MESSAGE_EVENT_SYSTEM, GP_TRANSFER_NOTICE, "sent by NHS MESH"),)


@dataclass
class Round:
    sent: int = 0
    withheld: int = 0
    retrying: int = 0
    delivered: int = 0
    failed: int = 0


def send_due(
    db: Database, mesh: Mesh, own_mailbox: str, audit: AuditWriter, now: float | None = None
) -> Round:
    out = Round()
    at = time.time() if now is None else now
    with db.read() as c:
        due = c.all(
            "SELECT local_id, partner, mailbox, workflow, communication, task, attempts FROM mesh_message "
            "WHERE state = 'pending' AND next_at <= ? ORDER BY created",
            (at,),
        )
    for lid, partner, box, flow, comm_id, task_ref, attempts in due:
        outcome = _send_one(
            db, mesh, own_mailbox, audit, lid, partner, box, flow, comm_id, task_ref, attempts
        )
        setattr(out, outcome, getattr(out, outcome) + 1)
    return out


def _send_one(
    db: Database,
    mesh: Mesh,
    own_mailbox: str,
    audit: AuditWriter,
    lid: str,
    partner: str,
    box: str,
    flow: str,
    comm_id: str,
    task_ref: str | None,
    attempts: int,
) -> str:
    registry = Registry()
    with db.read() as c:
        requester = requester_for(
            c, registry, partner, practitioner=None, purpose="TREAT", break_glass_reason=None
        )
        if requester is None:
            return _close(db, lid, "withheld", "the partner is no longer registered", task_ref, None)
        gate = Gate(c, registry, requester)
        comm_row = store.current(c, "Communication", comm_id)
        task_row = store.current(c, "Task", task_ref.partition("/")[2]) if task_ref else None
        # Consent decided now, at send time, by the one enforcement function.
        comm_body = gate.disclose(comm_row) if comm_row is not None else None
        if comm_body is None:
            why = _why_not(c, gate, partner, comm_row)
            return _close(db, lid, "withheld", why, task_ref, why)
        task_body = gate.disclose(task_row) if task_row is not None else None
        bundle = notification_bundle(
            message_id=lid,
            communication=orjson.loads(comm_body),
            task=orjson.loads(task_body) if task_body is not None else None,
            source_endpoint=f"mesh://{own_mailbox}",
            destination_endpoint=f"mesh://{box}",
            sender=(orjson.loads(comm_body).get("sender") or {}).get("reference"),
            receiver=f"Organization/{partner}",
            timestamp=now_instant(),
        )
        events = events_for([gate], "create", SENT_BY_MESH)
    # Counted before the call: if we die mid-send, the next attempt checks MESH first.
    with db.write() as c:
        c.run("UPDATE mesh_message SET attempts = attempts + 1 WHERE local_id = ?", (lid,))
    try:
        message_id = mesh.sent_with_local_id(lid) if attempts else None
        if message_id is None:
            message_id = mesh.send(
                box, orjson.dumps(bundle), workflow_id=flow, local_id=lid, subject="Transfer of care"
            )
    except MeshError as exc:
        state = "failed" if attempts + 1 >= MAX_ATTEMPTS else "pending"
        delay = backoff(attempts + 1, DeliveryConfig.from_env())
        with db.write() as c:
            c.run(
                "UPDATE mesh_message SET state = ?, next_at = ?, last_error = ? WHERE local_id = ?",
                (state, time.time() + delay, str(exc), lid),
            )
        log.warning("MESH send of %s failed: %s", lid, exc)
        return "failed" if state == "failed" else "retrying"
    audit.commit_now(events)  # rule 9: the disclosure is in the access log
    with db.write() as c:
        c.run(
            "UPDATE mesh_message SET state = 'sent', message_id = ?, last_error = NULL, done_at = ? "
            "WHERE local_id = ?",
            (message_id, time.time(), lid),
        )
        _comm_status(c, comm_id, "in-progress")  # completed when the GP's acknowledgement comes
    return "sent"


def _why_not(c: Conn, gate: Gate, partner: str, comm_row: store.Row | None) -> str:
    if comm_row is None or comm_row.deleted:
        return "the notice was deleted before it could be sent"
    patient_row = store.current(c, "Patient", comm_row.patient or "")
    patient = patient_row.resource() if patient_row is not None else {}
    words = verdict(
        gate, organization_name(c, f"Organization/{partner}"), patient, comm_row, comm_row.resource()
    )
    return f"The transfer notice was not sent by MESH: {words.words}"


def _close(db: Database, lid: str, state: str, note: str, task_ref: str | None, task_note: str | None) -> str:
    with db.write() as c:
        c.run(
            "UPDATE mesh_message SET state = ?, note = ?, done_at = ? WHERE local_id = ?",
            (state, note, time.time(), lid),
        )
        if task_ref and task_note:
            note_task(c, task_ref, task_note)
    return state


def note_task(c: Conn, task_ref: str, text: str) -> None:
    """Say on the transfer's parent Task what happened to its MESH notice."""
    row = store.current(c, "Task", task_ref.partition("/")[2])
    if row is None or row.deleted:
        return
    task = row.resource()
    task["note"] = [*(task.get("note") or []), {"time": now_instant(), "text": text}]
    store.put(c, task, rid=row.id, method="PUT")


def _comm_status(c: Conn, comm_id: str, status: str) -> None:
    row = store.current(c, "Communication", comm_id)
    if row is None or row.deleted:
        return
    comm = row.resource()
    if comm.get("status") != status:
        comm["status"] = status
        store.put(c, comm, rid=comm_id, method="PUT")


def track(db: Database, mesh: Mesh, now: float | None = None) -> Round:
    """Ask MESH how each sent message is doing; past its expiry, an undelivered one fails."""
    out = Round()
    at = time.time() if now is None else now
    with db.read() as c:
        rows = c.all(
            "SELECT local_id, state, message_id, task, expires FROM mesh_message "
            "WHERE state IN ('pending', 'sent')"
        )
    for lid, state, message_id, task_ref, expires in rows:
        status = ""
        if state == "sent":
            try:
                status = str(mesh.track(message_id).get("status") or "").lower()
            except MeshError as exc:
                log.warning("MESH tracking of %s failed: %s", lid, exc)
        if status == "acknowledged":
            with db.write() as c:
                c.run(
                    "UPDATE mesh_message SET state = 'delivered', done_at = ? WHERE local_id = ?", (at, lid)
                )
            out.delivered += 1
        elif status in ("undeliverable", "error"):
            why = f"MESH reports the transfer notice {status}"
            _close(db, lid, "failed", why, task_ref, why)
            out.failed += 1
        elif at > float(expires):
            why = "The transfer notice was not delivered by MESH before it expired"
            _close(db, lid, "expired", why, task_ref, why)
            out.failed += 1
    return out
