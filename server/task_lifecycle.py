"""Transfer Tasks move only as the lifecycle allows (mappings/transfer_lifecycle.py).

When a whole transfer moves, everything that hangs off it moves with it in the same
transaction: its weeks, the `transfer` section the person reads, the care team and, on
completion, the person's custodian (Patient.managingOrganization becomes the receiving
service, so the old one keeps only what the person's consent grants). Every step leaves
a Provenance naming who took it, from which status to which, and why.

`check_task_write` is the rule `interaction` runs for every Task write (PUT, POST,
transaction entries); the `$pause`/`$resume` operations (server/transfer.py) use the
same pieces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import orjson

from carebridge.consent.model import Requester
from carebridge.mappings import transfer_lifecycle as lifecycle
from carebridge.mappings.handover import (
    ACTIVITY_STATUS,
    Service,
    WeekPlan,
    day_in_words,
    describe_section,
    handover_care_team,
    plan_from_tasks,
    section_status,
    task_inputs,
)
from carebridge.mappings.vocabulary import SECTION_SYSTEM, SECTIONS, TASK_STATUS_SYSTEM, TRANSFER_OF_CARE
from carebridge.server import store
from carebridge.server.db import Conn
from carebridge.server.errors import FhirError
from carebridge.server.indexing import reference_target
from carebridge.server.instants import now_instant
from carebridge.server.interaction import Ctx
from carebridge.server.store import COLUMNS, Row, row_from
from carebridge.server.transfer_consent import receiver_missing
from carebridge.server.validate import validate_resource

# Elements a status update may not change: the plan itself moves only by $pause/$resume.
FIXED = {
    lifecycle.PARENT: (
        "intent",
        "code",
        "for",
        "focus",
        "requester",
        "owner",
        "partOf",
        "restriction",
        "input",
    ),
    lifecycle.WEEK: (
        "intent",
        "code",
        "for",
        "focus",
        "requester",
        "owner",
        "partOf",
        "executionPeriod",
        "input",
        "performerType",
    ),
}
# Weeks still to come, which follow the transfer when it pauses or ends.
OPEN_WEEK = frozenset({"requested", "received", "accepted", "in-progress", "on-hold"})


@dataclass
class Transfer:
    """One stored transfer: the parent Task, its weeks in order, its section and team."""

    row: Row
    task: dict
    weeks: list[Row]
    section: Row | None

    @property
    def ref(self) -> str:
        return f"Task/{self.row.id}"

    @property
    def patient(self) -> str:
        return (reference_target(self.task.get("for")) or "").partition("/")[2]

    def week_bodies(self) -> list[dict]:
        return [w.resource() for w in self.weeks]


# -- recognising transfer Tasks ---------------------------------------------------------
def is_transfer_parent(task: dict) -> bool:
    codes = (task.get("code") or {}).get("coding") or []
    return not task.get("partOf") and any(
        c.get("system") == TRANSFER_OF_CARE["system"] and c.get("code") == TRANSFER_OF_CARE["code"]
        for c in codes
    )


def parent_ref_of(task: dict) -> str | None:
    for ref in task.get("partOf") or []:
        target = reference_target(ref)
        if target and target.startswith("Task/"):
            return target
    return None


def _kind(c: Conn, task: dict) -> tuple[str | None, dict | None]:
    """(PARENT | WEEK | None, the parent Task) for a Task body."""
    if is_transfer_parent(task):
        return lifecycle.PARENT, task
    target = parent_ref_of(task)
    if target is None:
        return None, None
    row = store.current(c, "Task", target.partition("/")[2])
    if row is None or row.deleted:
        return None, None
    parent = row.resource()
    return (lifecycle.WEEK, parent) if is_transfer_parent(parent) else (None, None)


def locked_task(c: Conn, rid: str) -> Row | None:
    """The current Task row, locked against concurrent steps until this transaction ends."""
    lock = " FOR UPDATE" if c.dialect == "postgresql" else ""
    t = c.one(f"SELECT {COLUMNS} FROM resource WHERE type = 'Task' AND id = ?{lock}", (rid,))
    return row_from(t) if t else None


def load(c: Conn, row: Row) -> Transfer:
    """The transfer whose parent Task is `row`: its weeks (in week order) and section."""
    ref = f"Task/{row.id}"
    weeks = [
        row_from(t)
        for t in c.all(
            f"SELECT {', '.join('r.' + x.strip() for x in COLUMNS.split(','))} FROM resource r "
            "JOIN idx_ref i ON i.type = r.type AND i.id = r.id "
            "WHERE r.type = 'Task' AND r.deleted = 0 AND i.param = 'part-of' AND i.target = ?",
            (ref,),
        )
    ]
    weeks.sort(key=lambda w: _week_number(w.resource()))
    section = None
    if row.patient:
        for t in c.all(
            f"SELECT {COLUMNS} FROM resource WHERE type = 'CarePlan' AND patient = ? AND deleted = 0",
            (row.patient,),
        ):
            candidate = row_from(t)
            body = candidate.resource()
            if any(reference_target(s) == ref for s in body.get("supportingInfo") or []):
                section = candidate
                break
    return Transfer(row, row.resource(), weeks, section)


def _week_number(task: dict) -> int:
    n = task_inputs(task).get("week")
    return n if isinstance(n, int) else 0


# -- who is asking ----------------------------------------------------------------------
def parties(requester: Requester, parent: dict, week: dict | None = None) -> set[str]:
    """The lifecycle parties the requester acts as for this transfer (or one of its weeks)."""
    chain = set(requester.org_chain) | ({requester.organization} if requester.organization else set())
    found = set()
    if reference_target(parent.get("requester")) in chain:
        found.add(lifecycle.A)
    if reference_target(parent.get("owner")) in chain:
        found.add(lifecycle.B)
    if requester.kind == "person" and requester.patient == reference_target(parent.get("for")):
        found.add(lifecycle.PERSON)
    if week is not None and reference_target(week.get("owner")) in chain:
        found.add(lifecycle.OWNER)
    return found


def refuse(task_ref: str, refusal: lifecycle.Refusal | None) -> None:
    if refusal is not None:
        raise FhirError(refusal.status, f"{task_ref}: {refusal.message}")


def paused_from(c: Conn, task_id: str) -> str | None:
    """Where an on-hold transfer was before it was paused (from its history)."""
    for (body,) in c.all(
        "SELECT body FROM history WHERE type = 'Task' AND id = ? AND deleted = 0 ORDER BY version DESC",
        (task_id,),
    ):
        status = orjson.loads(c.blob(body)).get("status")
        if status != "on-hold":
            return status
    return None


# -- the write rule -----------------------------------------------------------------------
def check_task_delete(c: Conn, rid: str) -> None:
    """A transfer's Tasks are its record (the person's log, the Provenance point at them):
    it ends by being cancelled or completed, never by having its Tasks deleted."""
    current = store.current(c, "Task", rid)
    if current is None or current.deleted:
        return
    kind, _ = _kind(c, current.resource())
    if kind is not None:
        what = "a transfer" if kind == lifecycle.PARENT else "a week of a transfer"
        raise FhirError(
            409,
            f"Task/{rid} is {what} and cannot be deleted; the service the person is leaving "
            "ends a transfer by setting the parent Task's status to cancelled",
            code="business-rule",
        )


def check_task_write(ctx: Ctx, c: Conn, task: dict) -> None:
    """Run inside every Task write, before it is stored: refuse steps the lifecycle does not
    allow, and carry out what a legal step of a transfer brings with it."""
    rid = task.get("id")
    current = store.current(c, "Task", rid) if isinstance(rid, str) else None
    old = current.resource() if current is not None and not current.deleted else None
    kind, parent = _kind(c, old if old is not None else task)
    if kind is None or parent is None:
        return
    if current is not None:
        # Steps of one transfer take turns: the parent first, then the week (the order
        # $pause and $resume lock them in), and read again under the lock.
        if kind == lifecycle.WEEK:
            locked_parent = locked_task(c, parent["id"])
            parent = locked_parent.resource() if locked_parent is not None else parent
        current = locked_task(c, str(rid))
        old = current.resource() if current is not None and not current.deleted else None
    status = task.get("status")
    ref = f"Task/{rid}" if rid else "the new Task"
    if old is None:
        if status not in lifecycle.START[kind]:
            what = "transfer" if kind == lifecycle.PARENT else "week of a transfer"
            raise FhirError(
                422,
                f"{ref}: a {what} starts as requested, not {status}; plan a transfer with "
                "POST CarePlan/{id}/$plan-transfer",
                code="business-rule",
            )
        return
    assert current is not None
    before = old.get("status")
    moving = before != status
    if moving:
        week = None if kind == lifecycle.PARENT else old
        who = parties(ctx.requester, parent, week)
        held_at = paused_from(c, rid) if kind == lifecycle.PARENT and before == "on-hold" else None
        refuse(ref, lifecycle.refusal(kind, before, status, who, paused_from=held_at))
    parent_row = current if kind == lifecycle.PARENT else store.current(c, "Task", parent["id"])
    assert parent_row is not None
    transfer = load(c, parent_row)
    if moving and kind == lifecycle.PARENT and status == "accepted":
        require_receiver_consent(ctx, c, transfer)
    for element in FIXED[kind]:
        if old.get(element) != task.get(element):
            raise FhirError(
                422,
                f"{ref}: Task.{element} cannot be changed by an update; it is part of the planned "
                "transfer (change the plan with $pause and $resume, or cancel it and plan again)",
                code="business-rule",
                expression=[f"Task.{element}"],
            )
    if not moving:
        return
    reason = (task.get("statusReason") or {}).get("text")
    step = [f"{ref}/_history/{current.version + 1}"]
    if kind == lifecycle.PARENT:
        extra = follow(c, transfer, before, status, today=date.today(), reason=reason)
        record_step(c, ctx.requester, step + extra, before, status, reason)
        return
    statuses = {_week_number(w.resource()): w.resource()["status"] for w in transfer.weeks}
    statuses[_week_number(old)] = status
    _rewrite_section(c, transfer, parent["status"], statuses, note=None)
    record_step(c, ctx.requester, step, before, status, reason)


def require_receiver_consent(ctx: Ctx, c: Conn, transfer: Transfer) -> None:
    """422 unless the person's consent lets B see what it needs to take over their care."""
    patient_row = store.current(c, "Patient", transfer.patient)
    plan_target = reference_target(transfer.task.get("focus")) or ""
    plan_row = store.current(c, "CarePlan", plan_target.partition("/")[2])
    if patient_row is None or plan_row is None:
        raise FhirError(422, f"{transfer.ref}: the person or the plan it hands over no longer exists")
    needed = [(plan_row, plan_row.resource())]
    if transfer.section is not None:
        needed.append((transfer.section, transfer.section.resource()))
    receiver = reference_target(transfer.task.get("owner")) or ""
    missing = receiver_missing(c, ctx.registry, receiver, patient_row, needed)
    if missing:
        raise FhirError(
            422, receiver_consent_message(receiver, transfer.patient, missing), code="business-rule"
        )


def receiver_consent_message(receiver: str, patient: str, missing: Sequence) -> str:
    words = " ".join(v.words for v in missing)
    return (
        f"the person's consent does not yet let {receiver} see what it needs to take over their care. "
        f"{words} Record the person's agreement as a Consent naming {receiver} for the missing parts "
        f"(check it first with POST Consent/$evaluate, requester {receiver}, patient Patient/{patient})."
    )


# -- what a step of the whole transfer brings with it -----------------------------------------
def services(c: Conn, parent: dict) -> tuple[Service, Service]:
    """Both sides of a stored transfer, named as the person hears of them."""
    inputs = task_inputs(parent)

    def side(org_ref: str | None, worker: object) -> Service:
        org = org_ref or ""
        row = store.current(c, "Organization", org.partition("/")[2])
        name = (row.resource().get("name") if row is not None and row.body else None) or org
        ref = worker.get("reference") if isinstance(worker, dict) else None
        if not ref:
            return Service(org, name)
        given = None
        prow = store.current(c, "Practitioner", ref.partition("/")[2])
        if prow is not None and prow.body:
            for n in prow.resource().get("name") or []:
                given = (n.get("given") or [None])[0]
                if given:
                    break
        display = worker.get("display") if isinstance(worker, dict) else None
        return Service(org, name, ref, given or display, display)

    return (
        side(reference_target(parent.get("requester")), inputs.get("care-coordinator")),
        side(reference_target(parent.get("owner")), inputs.get("key-worker")),
    )


def known_plan(c: Conn, transfer: Transfer) -> list[WeekPlan] | None:
    """The week plan, or None for a transfer Task carebridge did not plan (made by hand):
    its weeks and custodian still move, there is just no section to rewrite or re-plan."""
    a, b = services(c, transfer.task)
    try:
        return plan_from_tasks(transfer.task, transfer.week_bodies(), a, b)
    except ValueError:
        return None


def follow(
    c: Conn,
    transfer: Transfer,
    before: str,
    after: str,
    *,
    today: date,
    reason: str | None = None,
    plan: list[WeekPlan] | None = None,
) -> list[str]:
    """Move the weeks, section, care team and (on completion) the custodian along with the
    parent's step from `before` to `after`. `plan` is the re-planned weeks on a resume.
    Returns versioned references of anything else that changed, for the Provenance."""
    a, b = services(c, transfer.task)
    plan = plan or known_plan(c, transfer)
    dates = {w.week: w for w in plan or []}
    statuses: dict[int, str] = {}
    for row in transfer.weeks:
        week = row.resource()
        n = _week_number(week)
        status = week["status"]
        new = dict(week)
        if after == "on-hold" and status in ("requested", "in-progress"):
            new["status"] = "on-hold"
        elif before == "on-hold" and after not in lifecycle.TERMINAL and status == "on-hold":
            new["status"] = "requested"
            if n in dates:
                new["executionPeriod"] = {
                    "start": dates[n].start.isoformat(),
                    "end": dates[n].end.isoformat(),
                }
        elif after in lifecycle.TERMINAL and status in OPEN_WEEK:
            new["status"] = "cancelled"
        statuses[n] = new["status"]
        if new != week:
            write_change(c, new)
    if plan is not None:
        note = _section_note(before, after, today, reason, b)
        _rewrite_section(c, transfer, after, statuses, note=note, plan=plan, sides=(a, b))
        _move_care_team(c, transfer, plan, a, b, after, today)
    if after == "completed":
        return [_hand_over_custody(c, transfer)]
    return []


def _section_note(before: str, after: str, today: date, reason: str | None, b: Service) -> str | None:
    day = day_in_words(today)
    if after == "on-hold":
        said = f' You said: "{reason}".' if reason else ""
        return f"Paused on {day}.{said} Nothing more happens until you are ready."
    if before == "on-hold" and after not in lifecycle.TERMINAL:
        return f"The move was paused for a while; it starts again on {day}."
    if after == "completed":
        return f"The move was completed on {day}: {b.name} now looks after your care."
    if after == "cancelled":
        return f"The move was called off on {day}."
    if after == "rejected":
        return f"{b.name} could not take over your care, so the move is not going ahead."
    return None


def _rewrite_section(
    c: Conn,
    transfer: Transfer,
    parent_status: str,
    week_statuses: dict[int, str],
    *,
    note: str | None,
    plan: list[WeekPlan] | None = None,
    sides: tuple[Service, Service] | None = None,
) -> None:
    if transfer.section is None:
        return
    if plan is None:
        plan = known_plan(c, transfer)
        if plan is None:
            return
    a, b = sides or services(c, transfer.task)
    section = transfer.section.resource()
    new = describe_section(
        section,
        plan,
        a,
        b,
        _frequency(transfer),
        status=section_status(parent_status),
        week_statuses={n: ACTIVITY_STATUS.get(s, "scheduled") for n, s in week_statuses.items()},
        note=note,
    )
    if note is None and section.get("description"):
        new["description"] = section["description"]  # keep what the person last read (a pause, a restart)
    if new != section:
        write_change(c, new)


def _frequency(transfer: Transfer) -> str:
    return str(task_inputs(transfer.task).get("frequency") or "weekly")


def _move_care_team(
    c: Conn, transfer: Transfer, plan: list[WeekPlan], a: Service, b: Service, after: str, today: date
) -> None:
    if transfer.section is None:
        return
    team_ref = next((reference_target(t) for t in transfer.section.resource().get("careTeam") or []), None)
    if not team_ref:
        return
    row = store.current(c, "CareTeam", team_ref.partition("/")[2])
    if row is None or row.deleted:
        return
    start = plan[0].start
    if after in ("cancelled", "rejected"):
        team = handover_care_team(row.resource(), a, b, start, today, today)
    elif after == "completed":
        team = handover_care_team(row.resource(), a, b, start, today)
    else:
        team = handover_care_team(row.resource(), a, b, start, plan[-1].end)
    if team != row.resource():
        write_change(c, team)


def _hand_over_custody(c: Conn, transfer: Transfer) -> str:
    """The receiving service becomes the person's custodian, in the same transaction."""
    row = store.current(c, "Patient", transfer.patient)
    if row is None or row.deleted:
        raise FhirError(422, f"{transfer.ref}: Patient/{transfer.patient} no longer exists")
    patient = {
        **row.resource(),
        "managingOrganization": {"reference": reference_target(transfer.task["owner"])},
    }
    written = write_change(c, patient)
    return f"Patient/{written.id}/_history/{written.version}"


def write_change(c: Conn, resource: dict) -> Row:
    """A change carebridge makes itself, as part of a step: validated like any write."""
    body = {k: v for k, v in resource.items() if k != "meta"}
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        body["meta"] = meta
    validate_resource(body)
    row, _ = store.put(c, body, rid=body["id"], method="PUT")
    return row


# -- the audit trail ----------------------------------------------------------------------
def record_step(
    c: Conn, requester: Requester, targets: list[str], before: str | None, after: str, reason: str | None
) -> Row:
    """A Provenance for one step: which versions it made, who took it, from what to what."""
    who = requester.organization or requester.patient or f"Organization/{requester.partner_id}"
    agents: list[dict] = [
        {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                        "code": "author",
                    }
                ]
            },
            "who": {"reference": who},
        }
    ]
    if requester.practitioner:
        agents.append({"who": {"reference": requester.practitioner}, "onBehalfOf": {"reference": who}})
    text = f"{before} -> {after}" if before else f"planned ({after})"
    provenance: dict = {
        "resourceType": "Provenance",
        "id": store.new_id(),
        "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "transfer", "display": SECTIONS["transfer"]}]},
        "target": [{"reference": t} for t in targets],
        "recorded": now_instant(),
        "activity": {"coding": [{"system": TASK_STATUS_SYSTEM, "code": after}], "text": text},
        "agent": agents,
    }
    if reason:
        provenance["reason"] = [{"text": reason}]
    validate_resource(provenance)
    row, _ = store.put(c, provenance, rid=provenance["id"], method="POST")
    return row
