"""The durable outbox, write side: every committed change leaves its deliveries behind.

`changed` is called by the store inside the writing transaction, so a change and the
outbox rows it causes commit together or not at all. It decides only *who might want*
the change (Subscriptions whose criteria match it, partners registered with a
`--fhir-base`); whether each may see it is decided at delivery time, by the gate.
A Consent or Patient change leaves a `recheck` row: the worker then works out, after
commit, which deliveries to drop and which copies to recall.
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from typing import Any

from carebridge.mappings.foreign_plan import PULLED_FROM_SYSTEM
from carebridge.server.db import Conn
from carebridge.server.errors import FhirError
from carebridge.server.instants import instant_key, now_instant
from carebridge.server.mesh_queue import notice_written

SUB = "sub/"
PARTNER = "partner/"
RECHECK = "recheck"
# Audit trails are never pushed; Subscriptions are configuration, not shared records.
NEVER_PUSHED = frozenset({"AuditEvent", "Subscription"})
# Changes to these may take away what a partner already holds (consent, custodian).
RECHECK_TYPES = frozenset({"Consent", "Patient"})

# Set when this process queued something, so its worker looks at once (others poll).
WAKE = threading.Event()

INSERT = (
    "INSERT INTO outbox (lane, target, partner, subscription, endpoint, transport, action, reason, "
    "rtype, rid, version, patient, next_at, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def lane(target: str, rtype: str, rid: str) -> str:
    return f"{target}|{rtype}/{rid}"


def row(
    target: str,
    partner: str,
    subscription: str | None,
    action: str,
    reason: str,
    rtype: str,
    rid: str,
    version: int,
    patient: str | None,
    *,
    endpoint: str | None = None,
    transport: str = "http",
    now: float | None = None,
) -> tuple:
    at = time.time() if now is None else now
    return (
        lane(target, rtype, rid),
        target,
        partner,
        subscription,
        endpoint,
        transport,
        action,
        reason,
        rtype,
        rid,
        version,
        patient,
        at,
        at,
    )


def changed(c: Conn, rtype: str, rid: str, version: int, patient: str | None, resource: dict | None) -> None:
    """Queue the deliveries a change causes (resource None: it was deleted)."""
    if rtype == "Subscription":
        _index_subscription(c, rid, resource)
        return
    if rtype in NEVER_PUSHED:
        return
    rows: list[tuple] = []
    if resource is None:
        # Whoever holds a copy is asked to delete it.
        for target, partner, sub, endpoint, transport in c.all(
            "SELECT target, partner, subscription, endpoint, transport FROM outbox_delivered "
            "WHERE rtype = ? AND rid = ?",
            (rtype, rid),
        ):
            rows.append(
                row(
                    target,
                    partner,
                    sub,
                    "delete",
                    "deleted",
                    rtype,
                    rid,
                    version,
                    patient,
                    endpoint=endpoint,
                    transport=transport,
                )
            )
    else:
        today = instant_key(now_instant())
        origin = _origin(resource)
        for kind, ident, partner, criteria, ends, transport in c.all(
            "SELECT 'sub', id, partner, criteria, ends, 'http' FROM outbox_subscription WHERE rtype = ? "
            "UNION ALL SELECT 'partner', id, id, NULL, NULL, CASE WHEN push_by = 'mesh' THEN 'mesh' "
            "ELSE 'http' END FROM partner WHERE push_by = 'mesh' OR fhir_base IS NOT NULL",
            (rtype,),
        ):
            if partner == origin:
                continue  # never echo a record back to the partner it was pulled from
            if kind == "partner":
                if patient is not None:  # the registry push carries personal records only
                    rows.append(
                        row(
                            PARTNER + ident,
                            partner,
                            None,
                            "put",
                            "change",
                            rtype,
                            rid,
                            version,
                            patient,
                            transport=transport,
                        )
                    )
            elif (not ends or ends > today) and _matches(c, criteria, rid):
                rows.append(row(SUB + ident, partner, ident, "put", "change", rtype, rid, version, patient))
        if rtype == "Communication":
            notice_written(c, rid, patient, resource)  # a GP notice by MESH, if its GP has a mailbox
    if patient is not None and rtype in RECHECK_TYPES:
        _recheck(c, patient, "consent" if rtype == "Consent" else "record holder")
    if rows:
        c.many(INSERT, rows)
        WAKE.set()


def _origin(resource: dict) -> str | None:
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if isinstance(tag, dict) and tag.get("system") == PULLED_FROM_SYSTEM:
            return tag.get("code")
    return None


def _recheck(c: Conn, patient: str, reason: str) -> None:
    """Ask the worker to re-decide what partners hold of this patient (after commit)."""
    held = c.one(
        "SELECT 1 FROM outbox_delivered WHERE patient = ? UNION ALL "
        "SELECT 1 FROM outbox WHERE patient = ? AND state = 'pending' AND action = 'put'",
        (patient, patient),
    )
    if held is None:
        return
    waiting = c.one(
        "SELECT 1 FROM outbox WHERE lane = ? AND state = 'pending' AND claim_until = 0",
        (lane(RECHECK, "Patient", patient),),
    )
    if waiting is None:
        c.run(INSERT, row(RECHECK, "*", None, RECHECK, reason, "Patient", patient, 0, patient))
        WAKE.set()


@lru_cache(maxsize=1024)
def _criteria_sql(criteria: str, dialect: str) -> tuple[str, tuple[Any, ...]] | None:
    from carebridge.server import search
    from carebridge.server.subscriptions import parse_criteria

    try:
        rtype, params = parse_criteria(criteria)
        where, args, _ = search.matches_sql(search.parse(rtype, list(params)))
    except FhirError:
        return None
    if dialect == "sqlite":
        # Asked about one resource, each index lookup should be by (type, id); SQLite would
        # otherwise scan every index row matching the value (PostgreSQL derives it itself).
        for table in ("idx_token", "idx_string", "idx_date", "idx_ref"):
            for op, to in (("NOT IN", "NOT EXISTS"), ("IN", "EXISTS")):
                where = where.replace(
                    f"r.id {op} (SELECT id FROM {table} WHERE ",
                    f"{to} (SELECT 1 FROM {table} INDEXED BY {table}_r WHERE id = r.id AND ",
                )
    return f"SELECT 1 FROM resource r WHERE {where} AND r.id = ?", tuple(args)


def _matches(c: Conn, criteria: str, rid: str) -> bool:
    """Whether the changed resource matches: the criteria search restricted to its id.
    The index rows of this change are already written in this transaction."""
    compiled = _criteria_sql(criteria, c.dialect)
    if compiled is None:
        return False
    sql, args = compiled
    return c.one(sql, (*args, rid)) is not None


def _index_subscription(c: Conn, rid: str, resource: dict | None) -> None:
    from carebridge.server.subscriptions import owner_of, parse_criteria

    c.run("DELETE FROM outbox_subscription WHERE id = ?", (rid,))
    owner = owner_of(resource) if resource else None
    live = resource is not None and owner is not None and resource.get("status") != "off"
    if live:
        try:
            rtype, _ = parse_criteria(resource.get("criteria") or "")  # type: ignore[union-attr]
        except FhirError:
            live = False
    if not live:
        # Nothing more is sent for it; recalls of copies it was sent still go.
        c.run(
            "UPDATE outbox SET state = 'dropped', note = ?, done_at = ? "
            "WHERE target = ? AND state = 'pending' AND action = 'put' AND claim_until = 0",
            ("the Subscription was ended or deleted", time.time(), SUB + rid),
        )
        return
    c.run(
        "INSERT INTO outbox_subscription (id, partner, rtype, criteria, ends) VALUES (?, ?, ?, ?, ?)",
        (rid, owner, rtype, resource["criteria"], instant_key(end) if (end := resource.get("end")) else None),
    )
