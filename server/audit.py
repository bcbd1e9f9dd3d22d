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
from collections.abc import Sequence
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


@dataclass(frozen=True, slots=True)
class Disclosures:
    """One patient's disclosures in one request: the facts of its AuditEvent, made into the
    resource (`resource()`) only when it is stored. A bulk export holds thousands of these
    until the audit thread writes them; as built dicts (some sixty objects each) they cost
    the garbage collector more than deciding the resources did."""

    requester: Requester
    patient: str
    interaction: str
    event_id: str
    stamp: str
    bases: tuple[str, ...]
    consents: tuple[str, ...]
    provisions: tuple[str, ...]
    break_glass: bool
    disclosed: tuple[str, ...]  # "Type/id/_history/version", first seen first, no repeats
    # (system, code, display) subtypes after the interaction (how exchange data left).
    subtypes: tuple[tuple[str, str, str], ...] = ()

    def resource(self) -> dict:
        requester = self.requester
        patient_entity: dict = {
            "what": {"reference": f"Patient/{self.patient}"},
            "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            "detail": [{"type": "basis", "valueString": ", ".join(self.bases)}],
        }
        if self.break_glass:
            patient_entity["detail"].append(
                {"type": "break-glass-reason", "valueString": requester.break_glass_reason or ""}
            )
        entities = [patient_entity]
        for ref in self.disclosed:
            entities.append(
                {
                    "what": {"reference": ref},
                    "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                    "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
                }
            )
        for cref in self.consents:
            entity: dict = {
                "what": {"reference": cref},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "13", "display": "Security Resource"},
            }
            paths = [p for p in self.provisions if p.startswith(cref)]
            if paths:
                entity["description"] = "decided by " + ", ".join(paths)
            entities.append(entity)
        interaction = self.interaction
        return {
            "resourceType": "AuditEvent",
            "id": self.event_id,
            "type": {"system": AUDIT_TYPE, "code": "rest", "display": "RESTful Operation"},
            "subtype": [
                {"system": INTERACTION_SYSTEM, "code": interaction},
                *(
                    {"system": system, "code": code, "display": display}
                    for system, code, display in self.subtypes
                ),
            ],
            "action": "E" if interaction in ("search-type", "history") else "R",
            "recorded": self.stamp,
            "outcome": "0",
            "purposeOfEvent": [{"coding": [{"system": PURPOSE_OF_USE_SYSTEM, "code": requester.purpose}]}],
            "agent": _agent(requester),
            "source": {"observer": {"display": "carebridge"}},
            "entity": entities,
        }


def events_for(
    gates: list[Gate], interaction: str, subtypes: tuple[tuple[str, str, str], ...] = ()
) -> list[dict]:
    """The AuditEvents (and break-glass Communications) for one request's disclosures;
    `subtypes` (system, code, display) say how the data left, after the interaction."""
    return [
        r.resource() if isinstance(r, Disclosures) else r for r in records_for(gates, interaction, subtypes)
    ]


def records_for(
    gates: list[Gate], interaction: str, subtypes: tuple[tuple[str, str, str], ...] = ()
) -> list[Disclosures | dict]:
    """`events_for` with each AuditEvent still as its `Disclosures` (break-glass notices are
    built: they are rare); the gates' disclosures are taken."""
    out: list[Disclosures | dict] = []
    for gate in gates:
        by_patient: dict[str, list] = defaultdict(list)
        for d in gate.disclosed:
            if d.row.type not in NOT_AUDITED and d.row.patient is not None:
                by_patient[d.row.patient].append(d)
        gate.disclosed = []
        requester = gate.requester
        for patient, items in by_patient.items():
            # The few distinct decisions (the engine shares them), not one per resource.
            decisions = list({id(d.decision): d.decision for d in items}.values())
            record = Disclosures(
                requester=requester,
                patient=patient,
                interaction=interaction,
                event_id=store.new_id(),
                stamp=now_instant(),
                bases=tuple(sorted({x.basis for x in decisions})),
                consents=tuple(sorted({c for x in decisions for c in x.consents})),
                provisions=tuple(sorted({p for x in decisions for p in x.provisions})),
                break_glass=any(x.break_glass for x in decisions),
                disclosed=tuple(
                    dict.fromkeys(f"{d.row.type}/{d.row.id}/_history/{d.row.version}" for d in items)
                ),
                subtypes=subtypes,
            )
            out.append(record)
            if record.break_glass:
                custodian = gate.facts(patient)
                recipient = custodian.custodian_chain[0] if custodian and custodian.custodian_chain else None
                out.append(break_glass_notice(requester, patient, recipient, record.event_id, record.stamp))
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
class AuditJob:
    """Records queued for the audit thread, and how their waiter hears they are stored."""

    resources: Sequence[Disclosures | dict]
    done: threading.Event
    error: BaseException | None = None
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future | None = None


class AuditWriter:
    """Commits audit records in groups, from one thread, and tells each waiter."""

    def __init__(self, db: Database, *, max_batch: int = 1000) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.Queue[AuditJob | None] = queue.Queue()
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
                    # Each record becomes its resource only as it is stored, and is then gone.
                    store.append(
                        c,
                        (
                            r.resource() if isinstance(r, Disclosures) else r
                            for j in jobs
                            for r in j.resources
                        ),
                    )
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
        job = AuditJob(resources, threading.Event(), loop=loop, future=loop.create_future())
        self._queue.put(job)
        assert job.future is not None
        await job.future

    def commit_now(self, resources: list[dict]) -> None:
        """The same, for callers outside the event loop."""
        self.wait([self.submit(resources)])

    def submit(self, resources: Sequence[Disclosures | dict]) -> AuditJob | None:
        """Queue these records without waiting, so a long job (export) can go on deciding
        while they are written; it must `wait` for them before it discloses anything."""
        if not resources:
            return None
        self._ensure_thread()
        job = AuditJob(resources, threading.Event())
        self._queue.put(job)
        return job

    def wait(self, jobs: list[AuditJob | None]) -> None:
        """Until every submitted job is stored (503 if any could not be)."""
        failed = False
        for job in jobs:
            if job is not None:
                job.done.wait()
                failed = failed or job.error is not None
        if failed:
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
