"""Recall: after a consent or record-holder change commits, re-decide what partners hold.

For each copy of the patient's records a partner holds (outbox_delivered) and each
delivery still queued for them, ask the gate again with the new facts. Queued
deliveries the partner may no longer see are dropped; copies it may no longer see get
a DELETE queued behind anything already in flight for that resource, so it arrives
last. Runs in the worker's claiming transaction, on committed consent only.
"""

from __future__ import annotations

import time

from carebridge.server import outbox, store
from carebridge.server.auth import scope_allows
from carebridge.server.db import Conn
from carebridge.server.disclosure import Gate, requester_for
from carebridge.server.partners import Registry


class Rights:
    """What partners may see now, decided through the gate, remembered per recheck."""

    def __init__(self, c: Conn) -> None:
        self.c = c
        self.registry = Registry()
        self.gates: dict[str, Gate | None] = {}
        self.seen: dict[tuple[str, str, str], bool] = {}

    def gate(self, partner_id: str) -> Gate | None:
        if partner_id not in self.gates:
            requester = requester_for(
                self.c, self.registry, partner_id, practitioner=None, purpose="TREAT", break_glass_reason=None
            )
            self.gates[partner_id] = None if requester is None else Gate(self.c, self.registry, requester)
        return self.gates[partner_id]

    def may_see(self, partner_id: str, rtype: str, rid: str) -> bool:
        key = (partner_id, rtype, rid)
        if key not in self.seen:
            gate = self.gate(partner_id)
            partner = self.registry.partner(self.c, partner_id)
            current = store.current(self.c, rtype, rid)
            self.seen[key] = (
                gate is not None
                and partner is not None
                and scope_allows(partner.scope, rtype, "read")
                and current is not None
                and gate.permits(current)
            )
        return self.seen[key]


def recheck(c: Conn, patient: str, reason: str) -> tuple[int, int]:
    """(queued deliveries dropped, recalls queued) for this patient."""
    now = time.time()
    rights = Rights(c)
    why = (
        "the person's sharing choices no longer allow this partner to see it"
        if reason == "consent"
        else "this partner no longer holds or may see this person's record"
    )
    dropped = []
    for oid, partner, rtype, rid in c.all(
        "SELECT id, partner, rtype, rid FROM outbox WHERE patient = ? AND state = 'pending' "
        "AND action = 'put' AND claim_until <= ?",
        (patient, now),
    ):
        if not rights.may_see(partner, rtype, rid):
            dropped.append(("dropped", f"not sent: {why}", now, oid))
    c.many("UPDATE outbox SET state = ?, note = ?, done_at = ? WHERE id = ?", dropped)
    recalls = []
    for target, partner, sub, endpoint, transport, rtype, rid, version in c.all(
        "SELECT target, partner, subscription, endpoint, transport, rtype, rid, version "
        "FROM outbox_delivered WHERE patient = ?",
        (patient,),
    ):
        current = store.current(c, rtype, rid)
        if current is None or current.deleted:
            continue  # its deletion already queued a DELETE
        if rights.may_see(partner, rtype, rid) or recall_queued(c, target, rtype, rid):
            continue
        recalls.append(
            outbox.row(
                target,
                partner,
                sub,
                "delete",
                "recall",
                rtype,
                rid,
                version,
                patient,
                endpoint=endpoint,
                transport=transport,
                now=now,
            )
        )
    c.many(outbox.INSERT, recalls)
    return len(dropped), len(recalls)


def recall_queued(c: Conn, target: str, rtype: str, rid: str) -> bool:
    return (
        c.one(
            "SELECT 1 FROM outbox WHERE lane = ? AND state = 'pending' AND action = 'delete'",
            (outbox.lane(target, rtype, rid),),
        )
        is not None
    )
