"""GP transfer notices queued for MESH in the transaction that stores them.

Called by the outbox's write side for every Communication written: a GP transfer notice
addressed to a partner with a MESH mailbox gets its `mesh_message` row now, so the notice
and its MESH delivery commit together and no round has to look for new notices.
"""

from __future__ import annotations

import os
import time

from carebridge.adapters.mesh import DEFAULT_WORKFLOW
from carebridge.mappings.mesh_message import local_id
from carebridge.mappings.transfer_notices import is_gp_notice
from carebridge.server.db import Conn

EXPIRY_HOURS = float(os.environ.get("CAREBRIDGE_MESH_EXPIRY_HOURS", "120"))  # MESH keeps 5 days


def notice_written(c: Conn, rid: str, patient: str | None, comm: dict) -> None:
    """Queue one MESH message for this notice if its GP has a mailbox."""
    if not is_gp_notice(comm):
        return
    task = next((a["reference"] for a in comm.get("about") or [] if "reference" in a), None)
    for recipient in comm.get("recipient") or []:
        ref = (recipient or {}).get("reference", "")
        if not ref.startswith("Organization/"):
            continue
        t = c.one(
            "SELECT id, mesh_mailbox, mesh_workflow FROM partner WHERE id = ? AND mesh_mailbox IS NOT NULL",
            (ref.removeprefix("Organization/"),),
        )
        if t is None:
            continue
        partner, box, flow = t
        at = time.time()
        # A later version of the same notice (its status moving on) queues nothing new.
        c.run(
            "INSERT INTO mesh_message (local_id, partner, mailbox, workflow, communication, task, "
            "patient, next_at, expires, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (local_id) DO NOTHING",
            (
                local_id(rid),
                partner,
                box,
                flow or DEFAULT_WORKFLOW,
                rid,
                task,
                patient,
                at,
                at + EXPIRY_HOURS * 3600,
                at,
            ),
        )
        return  # one notice, one message
