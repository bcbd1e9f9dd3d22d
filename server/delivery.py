"""The outbox, delivery side: claim what is due, decide it through the gate, and record
how each attempt went. The HTTP in between is the worker's (adapters/push.py).

Claims are short transactions that lease rows (`claim_until`), so several workers on
several machines share one outbox: PostgreSQL skips rows another worker is claiming
(`FOR UPDATE SKIP LOCKED`); SQLite's `BEGIN IMMEDIATE` makes each claim exclusive.
Only the head of each lane (one resource at one target) is claimable, which keeps
per-resource order. A worker that dies leaves leases that lapse; the rows are then
claimed again and re-sent, which is safe because PUT and DELETE are idempotent.
"""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass, field

from carebridge.adapters.push import Outcome
from carebridge.server import exchange_audit, outbox, recall, store
from carebridge.server.auth import scope_allows
from carebridge.server.db import Conn, Database
from carebridge.server.delivery_policy import DeliveryConfig, backoff, hold_when_down, retry_after
from carebridge.server.disclosure import Gate
from carebridge.server.errors import FhirError
from carebridge.server.store import COLUMNS as STORE_COLUMNS
from carebridge.server.store import Row, row_from
from carebridge.server.subscriptions import PAYLOADS, headers_of

VERSION_COLUMNS = "h.type, h.id, h.version, h.deleted, h.last_updated, h.patient, h.refs, h.body"
COLUMNS = (
    "o.id, o.lane, o.target, o.partner, o.subscription, o.endpoint, o.transport, o.action, o.reason, "
    "o.rtype, o.rid, o.version, o.patient, o.attempts, t.health"
)


@dataclass
class Delivery:
    id: int
    lane: str
    target: str
    partner: str
    subscription: str | None
    endpoint: str | None
    transport: str
    action: str  # put | delete | recheck
    reason: str
    rtype: str
    rid: str
    version: int
    patient: str | None
    attempts: int
    health: str | None = None
    # Resolved when claimed:
    base: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    notify_only: bool = False
    facts: tuple | None = None  # (consent_version, managing_org) the decision was made on
    outcome: Outcome | None = None


def _facts(c: Conn, patients: list[str]) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for i in range(0, len(patients), 500):
        chunk = patients[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for patient, version, org in c.all(
            f"SELECT patient, consent_version, managing_org FROM patient_facts WHERE patient IN ({marks})",
            chunk,
        ):
            out[patient] = (int(version), org)
    return out


def claim(db: Database, worker: str, cfg: DeliveryConfig) -> tuple[list[Delivery], int]:
    """Lease the due lane heads and decide each: (those to send now, rows handled).

    Three short steps, so no lock is held while the gate decides: lease (and run any
    rechecks), decide on a read connection, then close what will not be sent and store
    the audit of what will (rule 9: audited before it leaves)."""
    now = time.time()
    with db.read() as c:  # idle most of the time: look before taking the write lock
        due = c.one(
            "SELECT 1 FROM outbox WHERE state = 'pending' AND next_at <= ? AND claim_until <= ? LIMIT 1",
            (now, now),
        )
    if due is None:
        return [], 0
    with db.write() as c:
        lock = " FOR UPDATE OF o SKIP LOCKED" if c.dialect == "postgresql" else ""
        rows = c.all(
            f"SELECT {COLUMNS} FROM outbox o LEFT JOIN outbox_target t ON t.target = o.target "
            "WHERE o.state = 'pending' AND o.next_at <= ? AND o.claim_until <= ? "
            "AND (t.hold_until IS NULL OR t.hold_until <= ?) "
            "AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.lane = o.lane AND e.state = 'pending' "
            f"AND e.id < o.id) ORDER BY o.id LIMIT ?{lock}",
            (now, now, now, cfg.batch),
        )
        probing: set[str] = set()
        picked: list[Delivery] = []
        for t in rows:
            d = Delivery(*t)
            if d.health == "down":  # a down partner gets one probe, not a flood
                if d.target in probing:
                    continue
                probing.add(d.target)
            picked.append(d)
        leased = [d for d in picked if d.action != outbox.RECHECK]
        for d in picked:
            if d.action == outbox.RECHECK:
                dropped, recalled = recall.recheck(c, d.rid, d.reason)
                c.run(
                    "UPDATE outbox SET state = 'done', note = ?, done_at = ? WHERE id = ?",
                    (f"{dropped} queued deliveries dropped, {recalled} recalls queued", now, d.id),
                )
        c.many(
            "UPDATE outbox SET claim_until = ?, claimed_by = ? WHERE id = ?",
            [(now + cfg.lease, worker, d.id) for d in leased],
        )
    if not leased:
        return [], len(picked)
    send: list[Delivery] = []
    closed: list[tuple] = []
    with db.read() as c:
        # The facts first: if they change while we decide, finish() notices and re-decides.
        facts = _facts(c, sorted({d.patient for d in leased if d.patient}))
        decider = _Decider(c)
        decider.prefetch(leased, facts)
        for d in leased:
            d.facts = facts.get(d.patient) if d.patient else None
            verdict = decider.resolve(d)
            if verdict is None:
                send.append(d)
            else:
                closed.append((*verdict, now, d.id, worker))
        events = exchange_audit.disclosure_events(list(decider.gates.values()), "update", "push")
    with db.write() as c:
        c.many(
            "UPDATE outbox SET state = ?, note = ?, done_at = ?, claim_until = 0 "
            "WHERE id = ? AND claimed_by = ?",
            closed,
        )
        store.append(c, events)
    return send, len(picked)


class _Decider:
    """Resolves each claimed row to where it goes and what (if anything) is sent."""

    def __init__(self, c: Conn) -> None:
        self.c = c
        self.rights = recall.Rights(c)
        self.gates: dict[str, Gate] = {}
        self.subs: dict[str, dict | None] = {}
        # (type, id, version) -> (that version, whether the resource is deleted now)
        self.versions: dict[tuple[str, str, int], tuple[Row, bool]] = {}
        self.facts: dict[str, tuple] = {}
        self.patients: dict[str, Row] = {}
        self.primed: set[tuple[str, str]] = set()

    def prefetch(self, deliveries: list[Delivery], facts: dict[str, tuple]) -> None:
        """What deciding the batch needs, a query per kind rather than per delivery: the
        versions to send, the patients' consent facts and their Patient records (which
        every resource in a compartment refers to, so the gate looks at them)."""
        self.facts = facts
        patients = sorted({d.patient for d in deliveries if d.patient and d.action == "put"})
        for chunk in _chunks(patients):
            for t in self.c.all(
                f"SELECT {STORE_COLUMNS} FROM resource WHERE type = 'Patient' "
                f"AND id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                self.patients[t[1]] = row_from(t)
        wanted: dict[str, set[tuple[str, int]]] = {}
        for d in deliveries:
            if d.action == "put":
                wanted.setdefault(d.rtype, set()).add((d.rid, d.version))
        for rtype, keys in wanted.items():
            for chunk in _chunks(sorted(keys), 250):
                values = ", ".join("(?, ?)" for _ in chunk)
                for t in self.c.all(
                    f"SELECT {VERSION_COLUMNS}, r.deleted FROM history h JOIN resource r "
                    "ON r.type = h.type AND r.id = h.id WHERE h.type = ? "
                    f"AND (h.id, h.version) IN (VALUES {values})",
                    [rtype, *(v for key in chunk for v in key)],
                ):
                    row = row_from(t[:8])
                    self.versions[(row.type, row.id, row.version)] = (row, bool(t[8]))

    def resolve(self, d: Delivery) -> tuple[str, str] | None:
        """None: send it; else the (state, note) it is closed with."""
        c = self.c
        where = self._where(d)
        if isinstance(where, str):
            return "dropped", where
        if d.action == "delete":
            return None
        partner = self.rights.registry.partner(c, d.partner)
        gate = self.rights.gate(d.partner)
        if gate is None or partner is None:
            return "dropped", "the partner is no longer registered"
        if not scope_allows(partner.scope, d.rtype, "read"):
            return "withheld", f"the partner's scopes do not allow reading {d.rtype}"
        found = self.versions.get((d.rtype, d.rid, d.version))
        if found is None:
            return "dropped", "that version is no longer stored"
        row, deleted_since = found
        if deleted_since:
            return "withheld", "deleted before it could be sent"
        self.gates[d.partner] = gate
        if d.patient and (d.partner, d.patient) not in self.primed:
            self.primed.add((d.partner, d.patient))
            if d.patient in self.facts:
                gate.prime(d.patient, self.facts[d.patient][1], self.facts[d.patient][0])
            if d.patient in self.patients and d.rtype != "Patient":
                gate.permits(self.patients[d.patient])  # remembered for the reference check
        # Consent decided now, at delivery; a retry is the same disclosure, audited once.
        body = gate.disclose(row, audit=d.attempts == 0)
        if body is None:
            return "withheld", "the person's consent does not let this partner see it now"
        d.body = None if d.notify_only else body
        return None

    def _where(self, d: Delivery) -> str | None:
        """Fill in the endpoint and headers; a string says why it cannot go anywhere."""
        if d.target.startswith(outbox.SUB):
            sid = d.subscription or ""
            if sid not in self.subs:
                sub = store.current(self.c, "Subscription", sid)
                self.subs[sid] = sub.resource() if sub is not None and not sub.deleted else None
            resource = self.subs[sid]
            if resource is None or resource.get("status") == "off":
                if d.action == "delete" and d.endpoint:
                    d.base = d.endpoint  # a recall still goes where the copy went
                    return None
                return "the Subscription was ended or deleted"
            channel = resource.get("channel") or {}
            d.base = d.endpoint or channel.get("endpoint") or ""
            d.headers = headers_of(resource)
            payload = channel.get("payload")
            d.notify_only = payload is None or payload.split(";")[0].strip() not in PAYLOADS
            if d.notify_only and d.action == "delete":
                return "nothing to recall: this Subscription was sent notices, not content"
            return None
        partner = self.rights.registry.partner(self.c, d.partner)
        if partner is None:
            return "the partner is no longer registered"
        if d.transport == "mesh":
            d.base = d.endpoint or partner.mesh_mailbox or ""  # the mailbox, for MESH
            return None if d.base else "the partner has no --mesh-mailbox to push to"
        d.base = d.endpoint or partner.fhir_base or ""
        return None if d.base else "the partner has no --fhir-base to push to"


def prune(db: Database, keep_seconds: float) -> int:
    """Forget finished deliveries older than `keep_seconds` (what partners hold is kept)."""
    with db.write() as c:
        return c.run(
            "DELETE FROM outbox WHERE state IN ('delivered', 'withheld', 'dropped', 'done') AND done_at < ?",
            (time.time() - keep_seconds,),
        )


def renew(db: Database, worker: str, ids: list[int], cfg: DeliveryConfig) -> None:
    """Keep leases on deliveries still in flight."""
    with db.write() as c:
        c.many(
            "UPDATE outbox SET claim_until = ? WHERE id = ? AND claimed_by = ? AND state = 'pending'",
            [(time.time() + cfg.lease, i, worker) for i in ids],
        )


def finish(db: Database, worker: str, deliveries: list[Delivery], cfg: DeliveryConfig) -> None:
    """Record each outcome: delivered (and what the partner now holds) or retry later."""
    now = time.time()
    with db.write() as c:
        mine = _still_mine(c, worker, [d.id for d in deliveries])
        # A delivery whose lease lapsed belongs to another worker now: it records it.
        deliveries = [d for d in deliveries if d.id in mine]
        ok = [d for d in deliveries if d.outcome and d.outcome.ok]
        sent = [d for d in ok if d.action == "put" and not d.notify_only]
        patients = sorted({d.patient for d in sent if d.patient})
        if c.dialect == "postgresql":
            # Lock in the writers' order (resource, then patient facts): a deletion or consent
            # change committing meanwhile is then seen here, or sees what we record.
            by_type: dict[str, set[str]] = {}
            for d in sent:
                by_type.setdefault(d.rtype, set()).add(d.rid)
            for rtype in sorted(by_type):
                for chunk in _chunks(sorted(by_type[rtype])):
                    c.all(
                        f"SELECT 1 FROM resource WHERE type = ? AND id IN ({','.join('?' * len(chunk))}) "
                        "ORDER BY id FOR SHARE",
                        [rtype, *chunk],
                    )
            for chunk in _chunks(patients):
                c.all(
                    f"SELECT 1 FROM patient_facts WHERE patient IN ({','.join('?' * len(chunk))}) "
                    "ORDER BY patient FOR SHARE",
                    chunk,
                )
        facts_now = _facts(c, patients)
        deleted = _deleted(c, sent)
        c.many(
            "UPDATE outbox SET state = 'delivered', done_at = ?, attempts = attempts + 1, claim_until = 0, "
            "last_error = NULL WHERE id = ?",
            [(now, d.id) for d in ok],
        )
        c.many(RECORD_DELIVERED, [_delivered_row(d, now) for d in sent])
        recalled = [d for d in ok if d.action == "delete"]
        c.many(
            "DELETE FROM outbox_delivered WHERE target = ? AND rtype = ? AND rid = ?",
            [(d.target, d.rtype, d.rid) for d in recalled],
        )
        rights: recall.Rights | None = None
        events: list[dict] = []
        for d in recalled:
            if d.patient:
                rights = rights or recall.Rights(c)
                events.append(_recall_audit(rights, d))
        follow_ups: list[tuple] = []
        for d in sent:
            gone_now = (d.rtype, d.rid) in deleted
            if not gone_now and (not d.patient or facts_now.get(d.patient) == d.facts):
                continue
            # It changed while on the wire: if the partner may no longer hold it, recall it.
            rights = rights or recall.Rights(c)
            if (gone_now or not rights.may_see(d.partner, d.rtype, d.rid)) and not recall.recall_queued(
                c, d.target, d.rtype, d.rid
            ):
                follow_ups.append(
                    outbox.row(
                        d.target,
                        d.partner,
                        d.subscription,
                        "delete",
                        "deleted" if gone_now else "recall",
                        d.rtype,
                        d.rid,
                        d.version,
                        d.patient,
                        endpoint=d.base,
                        transport=d.transport,
                        now=now,
                    )
                )
        c.many(outbox.INSERT, follow_ups)
        health: dict[str, _Health] = {}
        retries: list[tuple] = []
        for d in deliveries:
            h = health.setdefault(d.target, _Health(d.partner, d.subscription))
            o = d.outcome or Outcome(False, None, "not sent")
            if o.ok:
                h.ok += 1
                continue
            attempts = d.attempts + 1
            asked = retry_after(o.retry_after) if o.status in (429, 503) else None
            if asked is not None:
                h.hold = max(h.hold, now + asked)  # the partner asked everyone to wait
            if o.status != 429:
                h.failed += 1
            h.error = o.error or h.error
            state = "failed" if attempts >= cfg.max_attempts else "pending"
            delay = asked if asked is not None else backoff(attempts, cfg)
            retries.append((state, attempts, now + delay, o.error, now if state == "failed" else None, d.id))
        c.many(
            "UPDATE outbox SET state = ?, attempts = ?, next_at = ?, claim_until = 0, claimed_by = NULL, "
            "last_error = ?, done_at = ? WHERE id = ?",
            retries,
        )
        for target in sorted(health):  # in one order, so two workers cannot deadlock on them
            _update_health(c, target, health[target], now, cfg)
        store.append(c, events)


def _chunks(items: list, size: int = 500) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _still_mine(c: Conn, worker: str, ids: list[int]) -> set[int]:
    mine: set[int] = set()
    lock = " FOR UPDATE" if c.dialect == "postgresql" else ""  # held until we have recorded them
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        mine.update(
            int(t[0])
            for t in c.all(
                f"SELECT id FROM outbox WHERE claimed_by = ? AND state = 'pending' AND id IN ({marks}){lock}",
                [worker, *chunk],
            )
        )
    return mine


def _deleted(c: Conn, deliveries: list[Delivery]) -> set[tuple[str, str]]:
    """(type, id) of those resources that are deleted (or gone) now."""
    by_type: dict[str, list[str]] = {}
    for d in deliveries:
        by_type.setdefault(d.rtype, []).append(d.rid)
    out: set[tuple[str, str]] = set()
    for rtype, ids in by_type.items():
        for chunk in _chunks(sorted(set(ids))):
            live = {
                t[0]
                for t in c.all(
                    "SELECT id FROM resource WHERE type = ? AND deleted = 0 "
                    f"AND id IN ({','.join('?' * len(chunk))})",
                    [rtype, *chunk],
                )
            }
            out.update((rtype, rid) for rid in chunk if rid not in live)
    return out


RECORD_DELIVERED = (
    "INSERT INTO outbox_delivered (target, rtype, rid, version, patient, partner, subscription, "
    "endpoint, transport, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (target, rtype, rid) DO UPDATE SET version = excluded.version, "
    "patient = excluded.patient, endpoint = excluded.endpoint, "
    "transport = excluded.transport, delivered_at = excluded.delivered_at"
)


def _delivered_row(d: Delivery, now: float) -> tuple:
    return (
        d.target,
        d.rtype,
        d.rid,
        d.version,
        d.patient,
        d.partner,
        d.subscription,
        d.base,
        d.transport,
        now,
    )


def _recall_audit(rights: recall.Rights, d: Delivery) -> dict:
    gate = rights.gate(d.partner)
    requester = gate.requester if gate is not None else None
    if d.reason == "recall":
        why = (
            "the person's sharing choices no longer allow this partner to see it, "
            "so it was asked to delete its copy"
        )
    else:
        why = "the record was deleted, so the partner was asked to delete its copy"
    return exchange_audit.recall_event(
        d.partner,
        requester,
        d.patient or "",
        f"{d.rtype}/{d.rid}",
        why,
        "recall" if d.reason == "recall" else "deleted",
    )


@dataclass
class _Health:
    partner: str
    subscription: str | None
    ok: int = 0
    failed: int = 0
    hold: float = 0.0
    error: str | None = None


def _update_health(c: Conn, target: str, h: _Health, now: float, cfg: DeliveryConfig) -> None:
    # Workers finishing for the same target at once take turns on its row.
    c.run(
        "INSERT INTO outbox_target (target, partner, subscription) VALUES (?, ?, ?) "
        "ON CONFLICT (target) DO NOTHING",
        (target, h.partner, h.subscription),
    )
    lock = " FOR UPDATE" if c.dialect == "postgresql" else ""
    t = c.one(f"SELECT health, failures, hold_until FROM outbox_target WHERE target = ?{lock}", (target,))
    assert t is not None
    old, failures, hold = t[0], int(t[1]), float(t[2])
    if h.ok:
        # It answered: it is up, whatever happened to other deliveries in this round.
        new, failures, hold = "up", 0, max(h.hold, 0.0)
        c.run(
            "UPDATE outbox_target SET health = 'up', failures = 0, hold_until = ?, last_ok = ? "
            "WHERE target = ?",
            (hold, now, target),
        )
    else:
        failures += h.failed
        new = "down" if failures >= cfg.down_after else old
        if new == "down":
            hold = max(hold, now + hold_when_down(failures, cfg))
        hold = max(hold, h.hold)
        c.run(
            "UPDATE outbox_target SET health = ?, failures = ?, hold_until = ?, last_error = ?, "
            "last_failure = ? WHERE target = ?",
            (new, failures, hold, h.error, now, target),
        )
    if h.subscription and new != old:
        if new == "down":
            _subscription_status(c, h.subscription, "error", f"deliveries are failing: {h.error}")
        elif new == "up":
            _subscription_status(c, h.subscription, "active", None)


def _subscription_status(c: Conn, sid: str, status: str, error: str | None) -> None:
    """Show delivery health on the Subscription itself (FHIR R4 status and error)."""
    row = store.current(c, "Subscription", sid)
    if row is None or row.deleted:
        return
    sub = row.resource()
    if sub.get("status") == "off" or (sub.get("status") == status and sub.get("error") == error):
        return
    sub["status"] = status
    if error:
        sub["error"] = error[:1000]
    else:
        sub.pop("error", None)
    with suppress(FhirError):  # its owner changed it meanwhile; the next change of health tries again
        store.put(c, sub, rid=sid, method="PUT")
