"""Transfers between services as FHIR Task workflows (CONTRACTS.md section 6, issue 6).

- `POST CarePlan/{id}/$plan-transfer` plans a gradual (or custom) handover from the
  person's current service (A, their custodian) to a receiving service (B): a parent
  Task, one Task per week, the `transfer` section the person reads, both services on the
  care team, and the GP told if, and only if, the person's consent lets the GP see the
  transfer section. All in one transaction; `_preview=true` answers without storing.
- `POST Task/{id}/$pause` ("not ready yet", in the person's words) and `$resume` (from a
  date, re-planning the weeks not yet done); both services are told.

The lifecycle rules themselves live in mappings/transfer_lifecycle.py; what a step
brings with it, in server/task_lifecycle.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import orjson
from fastapi import Request
from fastapi.responses import Response

from carebridge.consent.redact import references
from carebridge.mappings import transfer_lifecycle as lifecycle
from carebridge.mappings.handover import (
    PATTERNS,
    Service,
    TransferResources,
    build_transfer_resources,
    day_in_words,
    handover_care_team,
    overview,
    prefixed_ids,
    resume_plan,
    task_inputs,
)
from carebridge.mappings.transfer_notices import (
    gp_notice_text,
    pause_text,
    resume_text,
    transfer_notice,
)
from carebridge.mappings.vocabulary import (
    CANONICAL_BASE,
    GP_TRANSFER_NOTICE,
    SECTION_SYSTEM,
    SECTIONS,
    TRANSFER_OUTPUT_SYSTEM,
    TRANSFER_OUTPUTS,
)
from carebridge.server import store
from carebridge.server.auth import require_scope
from carebridge.server.db import Conflict, Conn
from carebridge.server.errors import FhirError, not_found
from carebridge.server.http import Kit
from carebridge.server.indexing import reference_target
from carebridge.server.instants import now_instant
from carebridge.server.interaction import Ctx, Result
from carebridge.server.interaction import create as create_resource
from carebridge.server.store import Row
from carebridge.server.task_lifecycle import (
    Transfer,
    follow,
    is_transfer_parent,
    known_plan,
    load,
    locked_task,
    parent_ref_of,
    parties,
    paused_from,
    receiver_consent_message,
    record_step,
    refuse,
    services,
    write_change,
)
from carebridge.server.transfer_consent import (
    gp_verdict,
    organization_name,
    person_words,
    receiver_missing,
    unstored_row,
)

MAX_WEEKS = 52
PLAN_PARAMETERS = (
    "receiver",
    "keyWorker",
    "start",
    "weeks",
    "frequency",
    "pattern",
    "owners",
    "notifyGp",
    "gp",
)


# -- Parameters ---------------------------------------------------------------------------
def _parameters(body: dict, allowed: tuple[str, ...], operation: str) -> dict[str, dict]:
    if body.get("resourceType") != "Parameters":
        raise FhirError(400, f"{operation} takes a Parameters resource")
    found: dict[str, dict] = {}
    for p in body.get("parameter") or []:
        name = p.get("name") if isinstance(p, dict) else None
        if name not in allowed:
            raise FhirError(
                400, f"{operation} does not take a parameter '{name}': it takes {', '.join(allowed)}"
            )
        if name in found:
            raise FhirError(400, f"{operation}: give the parameter '{name}' once")
        found[name] = p
    return found


def _value(params: dict[str, dict], name: str, kind: str, operation: str) -> object | None:
    """The parameter's value[kind], None when absent; 400 when sent as another type."""
    p = params.get(name)
    if p is None:
        return None
    key = f"value{kind}"
    if key not in p:
        raise FhirError(400, f"{operation}: the parameter '{name}' must be a {key}")
    return p[key]


def _reference(params: dict[str, dict], name: str, rtype: str, operation: str) -> str | None:
    value = _value(params, name, "Reference", operation)
    if value is None:
        return None
    target = reference_target(value) if isinstance(value, dict) else None
    if target is None or not target.startswith(f"{rtype}/"):
        raise FhirError(400, f"{operation}: '{name}' must be a reference to {rtype}/ID")
    return target


def _date(params: dict[str, dict], name: str, operation: str) -> date | None:
    value = _value(params, name, "Date", operation)
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise FhirError(400, f"{operation}: '{name}' must be a date like 2024-06-03, not {value!r}") from None


@dataclass(frozen=True, slots=True)
class PlanArgs:
    receiver: str
    key_worker: str | None
    start: date
    weeks: int
    frequency: str
    pattern: str
    owners: list[str] | None
    notify_gp: bool
    gp: str | None

    @classmethod
    def parse(cls, body: dict) -> PlanArgs:
        op = "$plan-transfer"
        params = _parameters(body, PLAN_PARAMETERS, op)
        receiver = _reference(params, "receiver", "Organization", op)
        if receiver is None:
            raise FhirError(
                400, f"{op} needs 'receiver': a valueReference to the receiving service's Organization"
            )
        start = _date(params, "start", op)
        if start is None:
            raise FhirError(400, f"{op} needs 'start': the valueDate the first week begins")
        pattern = _value(params, "pattern", "Code", op) or "gradual"
        if pattern not in PATTERNS:
            raise FhirError(422, f"{op}: pattern must be gradual or custom, not {pattern!r}")
        owners_text = _value(params, "owners", "String", op)
        owners = list(str(owners_text).strip().upper()) if owners_text is not None else None
        if pattern == "custom" and not owners:
            raise FhirError(
                422, f"{op}: pattern custom needs 'owners', one letter per week, A or B (e.g. \"AAABAB\")"
            )
        if pattern == "gradual" and owners is not None:
            raise FhirError(422, f"{op}: 'owners' is only used with pattern custom")
        weeks = _value(params, "weeks", "Integer", op)
        if weeks is None:
            weeks = len(owners) if owners else 8
        if not isinstance(weeks, int) or isinstance(weeks, bool) or not 2 <= weeks <= MAX_WEEKS:
            raise FhirError(422, f"{op}: weeks must be a whole number from 2 to {MAX_WEEKS}, not {weeks!r}")
        frequency = _value(params, "frequency", "String", op) or "weekly"
        notify = _value(params, "notifyGp", "Boolean", op)
        if notify is not None and not isinstance(notify, bool):
            raise FhirError(400, f"{op}: notifyGp must be true or false")
        return cls(
            receiver=receiver,
            key_worker=_reference(params, "keyWorker", "Practitioner", op),
            start=start,
            weeks=weeks,
            frequency=str(frequency),
            pattern=str(pattern),
            owners=owners,
            notify_gp=bool(notify),
            gp=_reference(params, "gp", "Organization", op),
        )


# -- planning -------------------------------------------------------------------------------
@dataclass
class Planned:
    built: TransferResources
    patient_id: str
    team: dict
    notice: dict | None


def _output(code: str, **value: object) -> dict:
    concept = {
        "coding": [{"system": TRANSFER_OUTPUT_SYSTEM, "code": code, "display": TRANSFER_OUTPUTS[code]}]
    }
    return {"type": concept, **value}


def _practitioner(c: Conn, ref: str | None, what: str) -> tuple[str | None, str | None]:
    """(given name, full name) of a Practitioner; 422 when it does not exist."""
    if ref is None:
        return None, None
    row = store.current(c, "Practitioner", ref.partition("/")[2])
    if row is None or row.deleted:
        raise FhirError(422, f"$plan-transfer: {what} {ref} does not exist")
    for name in row.resource().get("name") or []:
        given = (name.get("given") or [None])[0]
        full = name.get("text") or " ".join([*(name.get("given") or []), name.get("family") or ""]).strip()
        if given or full:
            return given or full, full or given
    return None, None


def _open_transfer(c: Conn, plan_ref: str) -> str | None:
    """A transfer of this plan that has not ended yet, if any."""
    for t in c.all(
        "SELECT r.id, r.body FROM resource r JOIN idx_ref i ON i.type = r.type AND i.id = r.id "
        "WHERE r.type = 'Task' AND r.deleted = 0 AND i.param = 'focus' AND i.target = ?",
        (plan_ref,),
    ):
        task = orjson.loads(c.blob(t[1]))
        if is_transfer_parent(task) and task.get("status") not in lifecycle.TERMINAL:
            return f"Task/{t[0]}"
    return None


def prepare(ctx: Ctx, c: Conn, plan_id: str, args: PlanArgs) -> Planned:
    """Everything a transfer is made of, checked against the person's consent, unstored."""
    gate = ctx.gate(c)
    if c.dialect == "postgresql":  # one planning of this plan at a time (SQLite writes take turns anyway)
        c.one("SELECT version FROM resource WHERE type = 'CarePlan' AND id = ? FOR UPDATE", (plan_id,))
    plan_row = store.current(c, "CarePlan", plan_id)
    if plan_row is None or plan_row.deleted or not gate.permits(plan_row):
        raise not_found("CarePlan", plan_id)
    plan = plan_row.resource()
    if plan.get("partOf"):
        parent = reference_target(plan["partOf"][0]) or "the person's plan"
        raise FhirError(422, f"CarePlan/{plan_id} is one section of {parent}: plan the transfer on {parent}")
    patient_ref = reference_target(plan.get("subject")) or ""
    if not patient_ref.startswith("Patient/") or plan_row.patient is None:
        raise FhirError(422, f"CarePlan/{plan_id} is not a person's plan (its subject is not a Patient)")
    patient_row = store.current(c, "Patient", plan_row.patient)
    if patient_row is None or patient_row.deleted:
        raise FhirError(422, f"CarePlan/{plan_id} belongs to {patient_ref}, which does not exist")
    patient = patient_row.resource()
    if gate.decide(patient_row, patient).basis != "custodian":
        raise FhirError(
            403, "only the service that holds the person's record (their custodian) can plan their transfer"
        )
    a_org = reference_target(patient.get("managingOrganization"))
    if not a_org:
        raise FhirError(
            422, f"{patient_ref} has no managingOrganization: carebridge cannot tell which service they leave"
        )
    if (open_task := _open_transfer(c, f"CarePlan/{plan_id}")) is not None:
        raise FhirError(409, f"CarePlan/{plan_id} already has a transfer that has not ended: {open_task}")

    receiver = ctx.registry.partner(c, args.receiver.partition("/")[2])
    if receiver is None or receiver.kind != "trust":
        raise FhirError(
            422,
            f"$plan-transfer: receiver {args.receiver} must be a registered service that holds records "
            "(a partner of kind trust)",
        )
    if args.receiver in ctx.registry.chain(c, a_org):
        raise FhirError(422, f"$plan-transfer: {args.receiver} already holds {patient_ref}'s record")

    a_worker = ctx.requester.practitioner
    if a_worker is None and (reference_target(plan.get("author")) or "").startswith("Practitioner/"):
        a_worker = reference_target(plan["author"])
    a_given, a_full = _practitioner(c, a_worker, "the care coordinator")
    b_given, b_full = _practitioner(c, args.key_worker, "keyWorker")
    service_a = Service(a_org, organization_name(c, a_org), a_worker if a_given else None, a_given, a_full)
    service_b = Service(args.receiver, organization_name(c, args.receiver), args.key_worker, b_given, b_full)

    prefix = f"transfer-{uuid.uuid4().hex[:16]}"
    try:
        built = build_transfer_resources(
            patient=patient_ref,
            care_plan=f"CarePlan/{plan_id}",
            service_a=service_a,
            service_b=service_b,
            start=args.start,
            id_for=prefixed_ids(prefix),
            weeks=args.weeks,
            pattern=args.pattern,
            custom=args.owners,
            frequency=args.frequency,
            status="requested",
            authored_on=date.today(),
        )
    except ValueError as exc:
        raise FhirError(422, f"$plan-transfer: {exc}") from None

    section_row = unstored_row(built.section, plan_row.patient)
    missing = receiver_missing(
        c, ctx.registry, args.receiver, patient_row, [(plan_row, plan), (section_row, built.section)]
    )
    if missing:
        raise FhirError(
            422, receiver_consent_message(args.receiver, plan_row.patient, missing), code="business-rule"
        )

    team = _care_team(c, plan, patient_ref, built, service_a, service_b, prefix)
    built.section["careTeam"] = [{"reference": f"CareTeam/{team['id']}"}]
    outputs, notice = _gp_outputs(c, ctx, args, patient, section_row, built, service_a, service_b)
    built.parent["output"] = outputs
    return Planned(built, plan_row.patient, team, notice)


def _care_team(
    c: Conn, plan: dict, patient_ref: str, built: TransferResources, a: Service, b: Service, prefix: str
) -> dict:
    """The person's care team with both services in it for the handover (a new team if the
    plan names none)."""
    start, end = built.plan[0].start, built.plan[-1].end
    for ref in plan.get("careTeam") or []:
        target = reference_target(ref)
        row = store.current(c, "CareTeam", (target or "").partition("/")[2]) if target else None
        if row is not None and not row.deleted:
            return handover_care_team(row.resource(), a, b, start, end)
    team = {
        "resourceType": "CareTeam",
        "id": f"{prefix}-team",
        "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "transfer", "display": SECTIONS["transfer"]}]},
        "status": "active",
        "name": "Who is involved in the move between services",
        "subject": {"reference": patient_ref},
        "participant": [],
    }
    return handover_care_team(team, a, b, start, end)


def _gp_outputs(
    c: Conn,
    ctx: Ctx,
    args: PlanArgs,
    patient: dict,
    section_row: Row,
    built: TransferResources,
    a: Service,
    b: Service,
) -> tuple[list[dict], dict | None]:
    """Which GP, whether they are told, and why; and the notice if they are."""
    gp = args.gp or next(
        (
            t
            for ref in patient.get("generalPractitioner") or []
            if (t := reference_target(ref)) and t.startswith("Organization/")
        ),
        None,
    )
    if args.gp is not None:
        partner = ctx.registry.partner(c, args.gp.partition("/")[2])
        if partner is None or partner.kind != "gp":
            raise FhirError(
                422, f"$plan-transfer: gp {args.gp} must be a registered GP practice (a partner of kind gp)"
            )
    if not args.notify_gp:
        outputs = [_output("gp-told", valueBoolean=False)]
        if gp:
            outputs.insert(
                0, _output("gp", valueReference={"reference": gp, "display": organization_name(c, gp)})
            )
        outputs.append(
            _output(
                "gp-decision", valueString="The GP was not told: telling the GP was not asked for (notifyGp)."
            )
        )
        return outputs, None
    if gp is None:
        raise FhirError(
            422,
            "$plan-transfer: notifyGp is true but the person has no GP practice (generalPractitioner "
            "Organization); name one with the gp parameter",
        )
    name = organization_name(c, gp)
    verdict = gp_verdict(c, ctx.registry, gp, patient, section_row, built.section)
    outputs = [
        _output("gp", valueReference={"reference": gp, "display": name}),
        _output("gp-told", valueBoolean=verdict.permit),
    ]
    if not verdict.permit:
        outputs.append(
            _output("gp-decision", valueString=f"{name} was not told about the move. {verdict.words}")
        )
        return outputs, None
    outputs.append(_output("gp-decision", valueString=f"{name} was told about the move. {verdict.words}"))
    given, _ = person_words(patient)
    full = _full_name(patient) or given
    notice = transfer_notice(
        notice_id=store.new_id(),
        code=GP_TRANSFER_NOTICE,
        patient=f"Patient/{patient['id']}",
        parent_task=f"Task/{built.parent['id']}",
        sender=a.organization,
        recipients=[gp],
        text=gp_notice_text(full, built.plan, a, b),
        sent=now_instant(),
    )
    outputs.append(_output("gp-notification", valueReference={"reference": f"Communication/{notice['id']}"}))
    return outputs, notice


def _full_name(patient: dict) -> str | None:
    for n in patient.get("name") or []:
        full = n.get("text") or " ".join([*(n.get("given") or []), n.get("family") or ""]).strip()
        if full:
            return full
    return None


def store_planned(ctx: Ctx, c: Conn, planned: Planned) -> list[Row]:
    """Write the transfer (as the client's creates, so validation and rules apply), the care
    team, the GP's notice and the Provenance of the plan. Returns parent, weeks, section."""
    rows = []
    for resource in planned.built.resources():
        result = create_resource(ctx, resource["resourceType"], resource, conn=c, rid=resource["id"])
        assert result.row is not None
        rows.append(result.row)
    team = write_change(c, planned.team)
    targets = [f"{r.ref}/_history/{r.version}" for r in rows] + [f"{team.ref}/_history/{team.version}"]
    if planned.notice is not None:
        notice = write_change(c, planned.notice)
        targets.append(f"{notice.ref}/_history/{notice.version}")
    record_step(c, ctx.requester, targets, None, "requested", None)
    return rows


def plan_transfer(ctx: Ctx, plan_id: str, body: dict, *, preview: bool) -> Result:
    require_scope(ctx.scope, "Task", "create")
    require_scope(ctx.scope, "CarePlan", "create")
    args = PlanArgs.parse(body)
    if preview:
        with ctx.db.read() as c:
            planned = prepare(ctx, c, plan_id, args)
            gate = ctx.gate(c)
            items = []
            for resource in planned.built.resources():
                raw = orjson.dumps(resource)
                refs = " ".join(sorted(references(resource))) or None
                row = Row(
                    resource["resourceType"], resource["id"], 0, False, "", planned.patient_id, refs, raw
                )
                items.append((row, gate.disclose(row, audit=False)))
        return Result(200, _bundle(ctx.base_url, items))
    try:
        with ctx.db.write() as c:
            planned = prepare(ctx, c, plan_id, args)
            rows = store_planned(ctx, c, planned)
            gate = ctx.gate(c)
            items = [(row, gate.disclose(row)) for row in rows]
    except Conflict:
        raise FhirError(
            409, "another change to this plan was committed at the same time; try again"
        ) from None
    parent = rows[0]
    headers = {"Location": f"{ctx.base_url}/Task/{parent.id}/_history/{parent.version}"}
    return Result(201, _bundle(ctx.base_url, items), headers)


def _bundle(base_url: str, items: list[tuple[Row, bytes | None]]) -> bytes:
    """A collection Bundle, parent Task first, of what the requester may see."""
    entries = [
        b'{"fullUrl":' + orjson.dumps(f"{base_url}/{row.type}/{row.id}") + b',"resource":' + body + b"}"
        for row, body in items
        if body is not None
    ]
    head = orjson.dumps({"resourceType": "Bundle", "type": "collection"})
    return head[:-1] + b',"entry":[' + b",".join(entries) + b"]}" if entries else head


# -- pause and resume --------------------------------------------------------------------------
def _step_scope(ctx: Ctx) -> None:
    # The person says "not ready yet" about their own move: their app reads, it does not
    # write records, so for them reading the transfer is enough; services need update.
    require_scope(ctx.scope, "Task", "read" if ctx.requester.kind == "person" else "update")


@contextmanager
def _step_transaction(ctx: Ctx) -> Iterator[Conn]:
    try:
        with ctx.db.write() as c:
            yield c
    except Conflict:
        raise FhirError(
            409, "another change to this transfer was committed at the same time; try again"
        ) from None


def _visible_transfer(ctx: Ctx, c: Conn, task_id: str, operation: str) -> Transfer:
    row = locked_task(c, task_id)
    if row is None or row.deleted or not ctx.gate(c).permits(row):
        raise not_found("Task", task_id)
    task = row.resource()
    if not is_transfer_parent(task):
        parent = parent_ref_of(task)
        if parent is not None:
            raise FhirError(
                422, f"Task/{task_id} is one week of {parent}: {operation} the whole transfer, {parent}"
            )
        raise FhirError(
            422, f"Task/{task_id} is not a transfer of care; {operation} works on a transfer's parent Task"
        )
    return load(c, row)


def _tell_both(c: Conn, ctx: Ctx, transfer: Transfer, code: str, text: str) -> Row:
    sender = ctx.requester.organization or ctx.requester.patient
    recipients = [reference_target(transfer.task.get(k)) for k in ("requester", "owner")]
    notice = transfer_notice(
        notice_id=store.new_id(),
        code=code,
        patient=f"Patient/{transfer.patient}",
        parent_task=transfer.ref,
        sender=sender,
        recipients=[r for r in recipients if r],
        text=text,
        sent=now_instant(),
    )
    return write_change(c, notice)


def _answer(ctx: Ctx, c: Conn, parent: Row) -> bytes:
    transfer = load(c, parent)
    gate = ctx.gate(c)
    rows = [transfer.row, *transfer.weeks] + ([transfer.section] if transfer.section else [])
    return _bundle(ctx.base_url, [(row, gate.disclose(row)) for row in rows])


def pause(ctx: Ctx, task_id: str, body: dict) -> Result:
    op = "$pause"
    params = _parameters(body, ("reason",), op)
    reason = _value(params, "reason", "String", op)
    if not isinstance(reason, str) or not reason.strip():
        raise FhirError(400, f"{op} needs 'reason' (valueString): why, in the person's own words")
    reason = reason.strip()
    _step_scope(ctx)
    today = date.today()
    with _step_transaction(ctx) as c:
        transfer = _visible_transfer(ctx, c, task_id, "pause")
        before = transfer.task["status"]
        refuse(
            transfer.ref,
            lifecycle.refusal(
                lifecycle.PARENT,
                before,
                "on-hold",
                parties(ctx.requester, transfer.task),
                via=lifecycle.PAUSE,
            ),
        )
        task = {
            **transfer.task,
            "status": "on-hold",
            "statusReason": {"text": reason},
            "businessStatus": {"text": f"Paused on {day_in_words(today)}"},
            "lastModified": now_instant(),
        }
        row = write_change(c, task)
        follow(c, transfer, before, "on-hold", today=today, reason=reason)
        a, b = services(c, transfer.task)
        name, _ = person_words(_patient(c, transfer))
        by_person = lifecycle.PERSON in parties(ctx.requester, transfer.task)
        notice = _tell_both(
            c, ctx, transfer, "transfer-paused", pause_text(name, by_person, reason, today, a, b)
        )
        record_step(
            c,
            ctx.requester,
            [f"{row.ref}/_history/{row.version}", f"{notice.ref}/_history/{notice.version}"],
            before,
            "on-hold",
            reason,
        )
        return Result(200, _answer(ctx, c, row))


def resume(ctx: Ctx, task_id: str, body: dict) -> Result:
    op = "$resume"
    params = _parameters(body, ("from",), op)
    on = _date(params, "from", op) or date.today()
    _step_scope(ctx)
    with _step_transaction(ctx) as c:
        transfer = _visible_transfer(ctx, c, task_id, "resume")
        before = transfer.task["status"]
        back_to = paused_from(c, task_id) or "requested"
        refuse(
            transfer.ref,
            lifecycle.refusal(
                lifecycle.PARENT,
                before,
                back_to,
                parties(ctx.requester, transfer.task),
                via=lifecycle.RESUME,
                paused_from=back_to,
            ),
        )
        a, b = services(c, transfer.task)
        plan = known_plan(c, transfer)  # None for a transfer Task made by hand: nothing to re-plan
        done = {
            n
            for w in transfer.week_bodies()
            if w.get("status") == "completed" and isinstance(n := task_inputs(w).get("week"), int)
        }
        new_plan = resume_plan(plan, done, on) if plan else []
        task = {k: v for k, v in transfer.task.items() if k != "statusReason"}
        task.update(
            status=back_to,
            businessStatus={"text": f"Starts again on {day_in_words(on)} after a pause"},
            lastModified=now_instant(),
        )
        if new_plan:
            task["description"] = overview(
                new_plan, a, b, str(task_inputs(task).get("frequency") or "weekly")
            )
            task["restriction"] = {
                **(task.get("restriction") or {}),
                "period": {"start": new_plan[0].start.isoformat(), "end": new_plan[-1].end.isoformat()},
            }
        row = write_change(c, task)
        follow(c, transfer, before, back_to, today=on, plan=new_plan or None)
        name, _ = person_words(_patient(c, transfer))
        by_person = lifecycle.PERSON in parties(ctx.requester, transfer.task)
        remaining = {w.week for w in new_plan if w.week not in done}
        notice = _tell_both(
            c, ctx, transfer, "transfer-resumed", resume_text(name, by_person, new_plan, remaining, a, b)
        )
        record_step(
            c,
            ctx.requester,
            [f"{row.ref}/_history/{row.version}", f"{notice.ref}/_history/{notice.version}"],
            before,
            back_to,
            None,
        )
        return Result(200, _answer(ctx, c, row))


def _patient(c: Conn, transfer: Transfer) -> dict:
    row = store.current(c, "Patient", transfer.patient)
    return row.resource() if row is not None and row.body else {}


# -- routes ------------------------------------------------------------------------------------
def register(kit: Kit) -> None:
    """Routes: POST CarePlan/{id}/$plan-transfer, POST Task/{id}/$pause, POST Task/{id}/$resume."""
    kit.operation("plan-transfer", f"{CANONICAL_BASE}/OperationDefinition/CarePlan-plan-transfer", "CarePlan")
    kit.operation("pause", f"{CANONICAL_BASE}/OperationDefinition/Task-pause", "Task")
    kit.operation("resume", f"{CANONICAL_BASE}/OperationDefinition/Task-resume", "Task")

    @kit.route("/fhir/CarePlan/{rid}/$plan-transfer", "POST")
    async def plan_transfer_route(request: Request) -> Response:
        ctx = kit.authenticate(request)
        preview = request.query_params.get("_preview", "false").lower() == "true"
        result = plan_transfer(ctx, request.path_params["rid"], await kit.body(request), preview=preview)
        return await kit.disclose(request, ctx, result, "operation")

    @kit.route("/fhir/Task/{rid}/$pause", "POST")
    async def pause_route(request: Request) -> Response:
        ctx = kit.authenticate(request)
        result = pause(ctx, request.path_params["rid"], await kit.body(request))
        return await kit.disclose(request, ctx, result, "operation")

    @kit.route("/fhir/Task/{rid}/$resume", "POST")
    async def resume_route(request: Request) -> Response:
        ctx = kit.authenticate(request)
        result = resume(ctx, request.path_params["rid"], await kit.body(request))
        return await kit.disclose(request, ctx, result, "operation")
