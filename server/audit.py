"""Rule 9: every disclosure is audited, and a disclosure whose audit is not stored is
not made.

A request's disclosures become one `AuditEvent` per patient (requester, purpose, the
resources disclosed, the Consent(s) or break-glass that permitted them). Break-glass
also tells the custodian with a `Communication`. Handlers wait for their audit to
commit before answering; a writer thread commits whatever is waiting in one
transaction (group commit), so under load many reads share one write.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import defaultdict
from dataclasses import dataclass

from carebridge.consent.model import Requester
from carebridge.mappings.vocabulary import PURPOSE_OF_USE_SYSTEM
from carebridge.server import store
from carebridge.server.db import Database
from carebridge.server.disclosure import Gate
from carebridge.server.errors import FhirError
from carebridge.server.instants import now_instant

log = logging.getLogger("carebridge.audit")

AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
BREAK_GLASS_CATEGORY = "https://carebridge.example/fhir/CodeSystem/communication-category"
PARTNER_ID_SYSTEM = "https://carebridge.example/fhir/Id/partner"
# Reading the audit trail is not itself written to it: the log would grow by being read.
NOT_AUDITED = frozenset({"AuditEvent"})


def _agent(requester: Requester) -> list[dict]:
    who: dict = {"identifier": {"system": PARTNER_ID_SYSTEM, "value": requester.partner_id}}
    if requester.organization:
        who["reference"] = requester.organization
    agents = [
        {
            "type": {
                "coding": [{"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}]
            },
            "who": who,
            "requestor": True,
            "purposeOfUse": [{"coding": [{"system": PURPOSE_OF_USE_SYSTEM, "code": requester.purpose}]}],
        }
    ]
    if requester.practitioner:
        agents.append({"who": {"reference": requester.practitioner}, "requestor": True})
    return agents


def events_for(gates: list[Gate], interaction: str) -> list[dict]:
    """The AuditEvents (and break-glass Communications) for one request's disclosures."""
    out: list[dict] = []
    for gate in gates:
        by_patient: dict[str, list] = defaultdict(list)
        for d in gate.disclosed:
            if d.row.type not in NOT_AUDITED and d.row.patient is not None:
                by_patient[d.row.patient].append(d)
        gate.disclosed = []
        for patient, items in by_patient.items():
            requester = gate.requester
            stamp = now_instant()
            consents = sorted({c for d in items for c in d.decision.consents})
            provisions = sorted({p for d in items for p in d.decision.provisions})
            bases = sorted({d.decision.basis for d in items})
            break_glass = any(d.decision.break_glass for d in items)
            patient_entity: dict = {
                "what": {"reference": f"Patient/{patient}"},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
                "detail": [{"type": "basis", "valueString": ", ".join(bases)}],
            }
            if break_glass:
                patient_entity["detail"].append(
                    {"type": "break-glass-reason", "valueString": requester.break_glass_reason or ""}
                )
            entities = [patient_entity]
            seen: set[str] = set()
            for d in items:
                ref = f"{d.row.type}/{d.row.id}/_history/{d.row.version}"
                if ref in seen:
                    continue
                seen.add(ref)
                entities.append(
                    {
                        "what": {"reference": ref},
                        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                        "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
                    }
                )
            for cref in consents:
                entity: dict = {
                    "what": {"reference": cref},
                    "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                    "role": {"system": OBJECT_ROLE, "code": "13", "display": "Security Resource"},
                }
                paths = [p for p in provisions if p.startswith(cref)]
                if paths:
                    entity["description"] = "decided by " + ", ".join(paths)
                entities.append(entity)
            event_id = store.new_id()
            event = {
                "resourceType": "AuditEvent",
                "id": event_id,
                "type": {"system": AUDIT_TYPE, "code": "rest", "display": "RESTful Operation"},
                "subtype": [{"system": INTERACTION_SYSTEM, "code": interaction}],
                "action": "E" if interaction in ("search-type", "history") else "R",
                "recorded": stamp,
                "outcome": "0",
                "purposeOfEvent": [
                    {"coding": [{"system": PURPOSE_OF_USE_SYSTEM, "code": requester.purpose}]}
                ],
                "agent": _agent(requester),
                "source": {"observer": {"display": "carebridge"}},
                "entity": entities,
            }
            out.append(event)
            if break_glass:
                custodian = gate.facts(patient)
                recipient = custodian.custodian_chain[0] if custodian and custodian.custodian_chain else None
                out.append(break_glass_notice(requester, patient, recipient, event_id, stamp))
    return out


def break_glass_notice(
    requester: Requester, patient: str, recipient: str | None, event_id: str, stamp: str
) -> dict:
    who = requester.organization or requester.partner_id
    comm: dict = {
        "resourceType": "Communication",
        "id": store.new_id(),
        "status": "completed",
        "category": [{"coding": [{"system": BREAK_GLASS_CATEGORY, "code": "break-glass"}]}],
        "priority": "urgent",
        "subject": {"reference": f"Patient/{patient}"},
        "sent": stamp,
        "about": [{"reference": f"AuditEvent/{event_id}"}],
        "payload": [
            {
                "contentString": f"{who} used emergency access (break-glass) to this person's record. "
                f"Reason given: {requester.break_glass_reason}"
            }
        ],
    }
    if requester.organization:
        comm["sender"] = {"reference": requester.organization}
    if recipient:
        comm["recipient"] = [{"reference": recipient}]
    return comm


@dataclass
class _Job:
    resources: list[dict]
    done: threading.Event
    error: BaseException | None = None
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future | None = None


class AuditWriter:
    """Commits audit records in groups, from one thread, and tells each waiter."""

    def __init__(self, db: Database, *, max_batch: int = 1000) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="carebridge-audit", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            count = len(job.resources)
            while count < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                jobs.append(more)
                count += len(more.resources)
            error: BaseException | None = None
            try:
                with self.db.write() as c:
                    store.append(c, [r for j in jobs for r in j.resources])
            except BaseException as exc:  # every waiter must hear of it
                log.exception("audit batch of %d records could not be stored", count)
                error = exc
            for j in jobs:
                j.error = error
                j.done.set()
                if j.loop is not None and j.future is not None:
                    j.loop.call_soon_threadsafe(_settle, j.future, error)

    async def commit(self, resources: list[dict]) -> None:
        """Wait until these records are stored (503 if they cannot be)."""
        if not resources:
            return
        self._ensure_thread()
        loop = asyncio.get_running_loop()
        job = _Job(resources, threading.Event(), loop=loop, future=loop.create_future())
        self._queue.put(job)
        assert job.future is not None
        await job.future

    def commit_now(self, resources: list[dict]) -> None:
        """The same, for callers outside the event loop."""
        if not resources:
            return
        self._ensure_thread()
        job = _Job(resources, threading.Event())
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise unavailable()

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)


def _settle(future: asyncio.Future, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(unavailable())


def unavailable() -> FhirError:
    return FhirError(
        503,
        "the audit record of this disclosure could not be stored, so nothing was disclosed; try again",
        code="transient",
    )
