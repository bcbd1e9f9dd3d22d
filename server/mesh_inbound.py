"""`carebridge mesh poll`, inbound side: download what is in carebridge's own mailbox, store
what partners sent (through mappings/mesh_message.py), and only then acknowledge it.

Whatever cannot be parsed or is not allowed is quarantined with the reason, and
acknowledged once kept, so one bad message never blocks the rest or loops for ever.
A message whose storing failed for another reason (the database) is left unacknowledged
and is tried again at the next poll; `mesh_inbound` makes that repeat store nothing twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from carebridge.adapters.mesh import Inbound, Mesh, MeshError
from carebridge.mappings.mesh_message import Parsed, Unreadable, parse
from carebridge.server import store
from carebridge.server.db import Conn, Database
from carebridge.server.errors import FhirError
from carebridge.server.mesh_outbound import note_task
from carebridge.server.validate import validate_resource

log = logging.getLogger("carebridge.mesh")


@dataclass
class Polled:
    stored: int = 0
    acknowledgements: int = 0
    quarantined: int = 0
    left: int = 0  # not stored this time; tried again at the next poll


class Refused(Exception):
    """Parsed, but carebridge will not take it (the reason is kept in quarantine)."""


def poll(db: Database, mesh: Mesh) -> Polled:
    out = Polled()
    for message_id in mesh.inbox():
        try:
            msg = mesh.fetch(message_id)
        except MeshError as exc:
            log.warning("MESH download of %s failed: %s", message_id, exc)
            out.left += 1
            continue
        try:
            outcome = _take(db, msg)
        except Exception:  # a database hiccup: leave it in MESH, try again next poll
            log.exception("storing MESH message %s failed", message_id)
            out.left += 1
            continue
        try:
            mesh.acknowledge(message_id)  # only now: it is stored (or quarantined)
        except MeshError as exc:
            log.warning("MESH acknowledgement of %s failed: %s", message_id, exc)
        setattr(out, outcome, getattr(out, outcome) + 1)
    return out


def _take(db: Database, msg: Inbound) -> str:
    with db.write() as c:
        if c.one("SELECT 1 FROM mesh_inbound WHERE message_id = ?", (msg.message_id,)):
            return "stored"  # stored by an earlier poll whose acknowledgement was lost
        if c.one("SELECT 1 FROM mesh_quarantine WHERE message_id = ?", (msg.message_id,)):
            return "quarantined"
    try:
        parsed = parse(msg.body)
        with db.write() as c:
            outcome = _store(c, msg, parsed)
            c.run(
                "INSERT INTO mesh_inbound (message_id, sender, workflow, outcome, received) "
                "VALUES (?, ?, ?, ?, ?)",
                (msg.message_id, msg.sender, msg.workflow_id, outcome, time.time()),
            )
        return outcome
    except (Unreadable, Refused) as exc:
        with db.write() as c:
            c.run(
                "INSERT INTO mesh_quarantine (message_id, sender, workflow, reason, body, received) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (msg.message_id, msg.sender, msg.workflow_id, str(exc), msg.body, time.time()),
            )
        log.warning("MESH message %s quarantined: %s", msg.message_id, exc)
        return "quarantined"


def _store(c: Conn, msg: Inbound, parsed: Parsed) -> str:
    partner = _partner_of(c, msg.sender)
    if parsed.acknowledges is not None:
        t = c.one(
            "SELECT communication, partner, task FROM mesh_message WHERE local_id = ?", (parsed.acknowledges,)
        )
        if t is None or t[1] != partner:
            raise Refused(
                f"acknowledges {parsed.acknowledges}, which carebridge did not send to this mailbox"
            )
        comm_id, _, task_ref = t
        if parsed.ack_code == "ok":
            c.run(
                "UPDATE mesh_message SET state = 'acked', done_at = ? WHERE local_id = ?",
                (time.time(), parsed.acknowledges),
            )
            _complete(c, comm_id)
        elif task_ref:
            note_task(
                c,
                task_ref,
                f"The GP practice's system could not take the transfer notice ({parsed.ack_code}).",
            )
        return "acknowledgements"
    if partner is None:
        raise Refused(f"from mailbox {msg.sender}, which is not a registered partner")
    for n, comm in enumerate(parsed.communications):
        body = dict(comm)
        rid = f"mesh-{msg.message_id}-{n}".lower()[:64]
        body.update(id=rid, sender={"reference": f"Organization/{partner}"})
        _check(body, f"Communication {n + 1}")
        subject = (body.get("subject") or {}).get("reference", "")
        rtype, _, sid = subject.partition("/")
        held = store.current(c, rtype, sid) if rtype == "Patient" else None
        if held is None or held.deleted:
            raise Refused(f"Communication {n + 1} is about {subject}, whom carebridge does not hold")
        store.put(c, body, rid=rid, method="PUT")
    for update in parsed.task_updates:
        row = store.current(c, "Task", update["id"])
        if row is None or row.deleted:
            raise Refused(f"updates Task/{update['id']}, which does not exist")
        task = row.resource()
        org = f"Organization/{partner}"
        if org not in (
            (task.get("owner") or {}).get("reference"),
            (task.get("requester") or {}).get("reference"),
        ):
            raise Refused(f"updates Task/{update['id']}, which {partner} neither owns nor requested")
        task["status"] = update["status"]
        task["note"] = [*(task.get("note") or []), *(update.get("note") or [])]
        _check(task, f"the update of Task/{row.id}")
        store.put(c, task, rid=row.id, method="PUT")
    return "stored"


def _check(resource: dict, what: str) -> None:
    """The same FHIR validation as a write over the REST API: MESH is no side door in."""
    try:
        validate_resource(resource)
    except FhirError as exc:
        raise Refused(f"{what} is not valid FHIR R4: {exc.diagnostics}") from exc


def _partner_of(c: Conn, mailbox: str | None) -> str | None:
    if not mailbox:
        return None
    t = c.one("SELECT id FROM partner WHERE UPPER(mesh_mailbox) = ?", (mailbox.upper(),))
    return t[0] if t else None


def _complete(c: Conn, comm_id: str) -> None:
    row = store.current(c, "Communication", comm_id)
    if row is None or row.deleted:
        return
    comm = row.resource()
    comm["status"] = "completed"
    store.put(c, comm, rid=comm_id, method="PUT")
