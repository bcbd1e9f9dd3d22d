"""The door out: every resource that leaves carebridge passes through `Gate.disclose`.

The gate gathers the facts a decision needs (the patient's custodian chain, their
consents at their current consent version, the requester's organisation ancestry) and
asks `carebridge.consent.decide.decide`, the one enforcement function. A permitted
resource has references to what the requester may not see removed (rule 7); a denied
one does not exist for the requester (rule 8). What was disclosed is kept for audit.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

import orjson

from carebridge.consent.decide import decide
from carebridge.consent.model import Decision, PatientFacts, Requester
from carebridge.consent.redact import redact
from carebridge.server.db import Conn
from carebridge.server.indexing import reference_target
from carebridge.server.partners import Registry
from carebridge.server.store import COLUMNS, Row, row_from
from carebridge.server.subscriptions import decide_owner

# Types outside every patient compartment: not personal data, not consent-controlled.
NOT_PERSONAL = frozenset({"Organization", "Practitioner", "PractitionerRole", "Subscription"})
# Audit trails are readable by the custodian and the person only (never by consent).
CUSTODIAN_ONLY = frozenset({"AuditEvent"})
SEES_WHOLE_COMPARTMENT = frozenset({"custodian", "person"})

# One cache per Registry, i.e. per app and so per database: (patient, consent version)
# only identifies a set of Consents within one database, and a process may serve several.
_consent_caches: WeakKeyDictionary[Registry, OrderedDict[tuple[str, int], tuple[dict, ...]]] = (
    WeakKeyDictionary()
)


def _consents(registry: Registry, c: Conn, patient: str, consent_version: int) -> tuple[dict, ...]:
    _consent_cache = _consent_caches.setdefault(registry, OrderedDict())
    key = (patient, consent_version)
    hit = _consent_cache.get(key)
    if hit is not None:
        return hit
    consents = _load_consents(registry, c, {patient: consent_version})[patient]
    _consent_cache[key] = consents
    if len(_consent_cache) > 20_000:
        _consent_cache.popitem(last=False)
    return consents


def _load_consents(registry: Registry, c: Conn, wanted: dict[str, int]) -> dict[str, tuple[dict, ...]]:
    """The Consents of many (patient, consent version) at once: one query, not one each.

    What was read is not added to the cache: a bulk reader (export) meets each patient
    once, and filling the cache would only push out what interactive reads reuse."""
    cache = _consent_caches.setdefault(registry, OrderedDict())
    out: dict[str, tuple[dict, ...]] = {}
    missing: list[str] = []
    for patient, version in wanted.items():
        hit = cache.get((patient, version)) if version else ()
        if hit is None:
            missing.append(patient)
        else:
            out[patient] = hit
    found: dict[str, list[dict]] = {p: [] for p in missing}
    for start in range(0, len(missing), 500):
        part = missing[start : start + 500]
        marks = ",".join("?" * len(part))
        for patient, body in c.all(
            f"SELECT patient, body FROM resource WHERE patient IN ({marks}) AND type = 'Consent' "
            "AND deleted = 0 ORDER BY patient, id",
            part,
        ):
            found[patient].append(orjson.loads(bytes(body)))
    for patient, consents in found.items():
        out[patient] = tuple(consents)
    return out


class LazyResource(Mapping):
    """A stored body parsed only if the decision looks inside it (custodians never do)."""

    __slots__ = ("_body", "_data")

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._data: dict | None = None

    @property
    def data(self) -> dict:
        if self._data is None:
            self._data = orjson.loads(self._body)
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        data = self._data  # inlined `data`: the engine calls get several times per resource
        if data is None:
            data = self._data = orjson.loads(self._body)
        return data.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


@dataclass(slots=True)
class Disclosed:
    row: Row
    decision: Decision


@dataclass
class Gate:
    """One request's view through consent: who asks, and what they have been shown."""

    conn: Conn
    registry: Registry
    requester: Requester
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    disclosed: list[Disclosed] = field(default_factory=list)
    _facts: dict[str, PatientFacts | None] = field(default_factory=dict)
    _seen: dict[str, bool] = field(default_factory=dict)
    # (refs, holder's patient, sees whole compartment) whose every reference `_may_see`
    # has allowed: its answer for each depends on nothing else but `_seen`, so the same
    # list needs no second look until something seen turns hidden (`_saw`).
    _clear: set[tuple[str, str | None, bool]] = field(default_factory=set)

    def prime(
        self,
        patient: str,
        managing_org: str | None,
        consent_version: int,
        consents: tuple[dict, ...] | None = None,
    ) -> None:
        """Facts already fetched with the row, so deciding needs no further query."""
        if patient not in self._facts:
            if not consent_version:
                consents = ()
            elif consents is None:
                consents = _consents(self.registry, self.conn, patient, consent_version)
            self._facts[patient] = PatientFacts(
                patient=f"Patient/{patient}",
                custodian_chain=self.registry.chain(self.conn, managing_org),
                consents=consents,
                consent_version=consent_version,
            )

    def prime_many(self, facts: list[tuple[str, str | None, int]]) -> None:
        """`prime` for many (patient, managing org, consent version), their Consents
        read in one query."""
        consents = _load_consents(
            self.registry, self.conn, {p: v for p, _, v in facts if p not in self._facts}
        )
        for patient, org, version in facts:
            self.prime(patient, org, version, consents.get(patient))

    def facts(self, patient: str | None) -> PatientFacts | None:
        if patient is None:
            return None
        if patient not in self._facts:
            t = self.conn.one(
                "SELECT managing_org, consent_version FROM patient_facts WHERE patient = ?",
                (patient,),
            )
            self.prime(patient, *((t[0], int(t[1])) if t else (None, 0)))
        return self._facts[patient]

    def decide(self, row: Row, resource: Mapping) -> Decision:
        if row.type == "Subscription":  # not personal, but owned: only its creator sees it
            return decide_owner(self.requester, resource)
        if row.type in NOT_PERSONAL or row.patient is None:
            if row.type in CUSTODIAN_ONLY:
                return Decision(False, "denied", reason="audit records outside a compartment")
            return decide(self.requester, resource, None, self.now)  # type: ignore[arg-type]
        decision = decide(self.requester, resource, self.facts(row.patient), self.now)  # type: ignore[arg-type]
        if row.type in CUSTODIAN_ONLY and decision.basis not in SEES_WHOLE_COMPARTMENT:
            return Decision(False, "denied", reason="audit records are for the custodian and the person")
        return decision

    def permits(self, row: Row) -> bool:
        """Whether the requester may see this row (no audit: used for counting)."""
        if row.deleted or row.body is None:
            return False
        ok = self.decide(row, LazyResource(row.body)).permit
        self._saw(row.ref, ok)
        return ok

    def _saw(self, ref: str, ok: bool) -> None:
        # A resource seen in another version (export reads as of kick-off, the reference
        # check reads the current row) can turn from visible to hidden: then no reference
        # list is known to be clear any more.
        if not ok and self._clear and self._seen.get(ref):
            self._clear.clear()
        self._seen[ref] = ok

    def disclose(self, row: Row, *, audit: bool = True) -> bytes | None:
        """The bytes this requester may receive for `row`, or None if it does not exist for them."""
        if row.deleted or row.body is None:
            return None
        lazy = LazyResource(row.body)
        decision = self.decide(row, lazy)
        self._saw(row.ref, decision.permit)
        if not decision.permit:
            return None
        if audit and row.patient is not None:
            self.disclosed.append(Disclosed(row, decision))
        refs = row.refs
        if refs is None:
            return row.body
        clear = (refs, row.patient, decision.basis in SEES_WHOLE_COMPARTMENT)
        if clear in self._clear:
            return row.body
        if all(self._may_see(ref, row, decision) for ref in refs.split()):
            self._clear.add(clear)
            return row.body  # the stored bytes, untouched: the common case
        out = redact(lazy.data, lambda ref: self._may_see(ref, row, decision))
        return row.body if out is lazy.data else orjson.dumps(out)

    def _may_see(self, ref: str, holder: Row, decision: Decision) -> bool:
        target = reference_target(ref)
        if target is None:
            return True
        ttype, _, tid = target.partition("/")
        if ttype in NOT_PERSONAL:
            return True
        whole = decision.basis in SEES_WHOLE_COMPARTMENT
        if whole and target == f"Patient/{holder.patient}":
            return True
        if target in self._seen:
            return self._seen[target]
        t = self.conn.one(f"SELECT {COLUMNS} FROM resource WHERE type = ? AND id = ?", (ttype, tid))
        if t is None:
            # Nothing stored there, so nothing to protect: a dangling reference stays.
            self._seen[target] = True
            return True
        target_row = row_from(t)
        if target_row.deleted or (whole and target_row.patient == holder.patient):
            self._seen[target] = True
            return True
        return self.permits(target_row)


def requester_for(
    conn: Conn,
    registry: Registry,
    partner_id: str,
    *,
    practitioner: str | None,
    purpose: str,
    break_glass_reason: str | None,
    refresh: bool = True,
) -> Requester | None:
    if refresh:
        registry.refresh(conn)
    partner = registry.partner(conn, partner_id)
    if partner is None:
        return None
    return Requester(
        partner_id=partner.id,
        kind=partner.kind,
        organization=partner.organization,
        org_chain=registry.chain(conn, partner.organization),
        practitioner=practitioner,
        patient=partner.patient,
        purpose=purpose,
        break_glass_reason=break_glass_reason,
    )
