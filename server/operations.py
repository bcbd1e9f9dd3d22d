"""FHIR operations on consent: $evaluate (who can see what, and why), the person's
sharing choices, and Patient $everything. All decisions come from the same
`consent.decide` the gate uses; nothing here guesses separately.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from carebridge.consent.choices import choice_problems, choices_to_consent, consent_to_choices
from carebridge.consent.explain import explain
from carebridge.consent.model import Requester
from carebridge.mappings.vocabulary import (
    CANONICAL_BASE,
    PARTNER_KIND_SYSTEM,
    SECTION_PHRASES,
    SECTION_SYSTEM,
)
from carebridge.server import formats, partners, store
from carebridge.server.auth import require_scope
from carebridge.server.db import Conn
from carebridge.server.disclosure import Gate
from carebridge.server.errors import FhirError, not_found
from carebridge.server.http import Kit, read_body
from carebridge.server.indexing import reference_target
from carebridge.server.interaction import Ctx, Result
from carebridge.server.store import COLUMNS, Row, row_from
from carebridge.server.validate import check_consent_write, validate_resource

CHOICES_IDENTIFIER = f"{CANONICAL_BASE}/Id/sharing-choices"


# -- $evaluate --------------------------------------------------------------------------
def _param(params: dict, name: str) -> list[dict]:
    return [p for p in params.get("parameter") or [] if p.get("name") == name]


def _value(p: dict) -> Any:
    for k, v in p.items():
        if k.startswith("value"):
            return v
    return None


def requester_from_reference(
    c: Conn, ctx: Ctx, ref: str, purpose: str, reason: str | None
) -> tuple[Requester, str]:
    """The request carebridge would see from the organisation or practitioner named."""
    target = reference_target(ref)
    if target is None:
        raise FhirError(400, f"requester {ref} must be Organization/ID or Practitioner/ID")
    rtype, _, rid = target.partition("/")
    if rtype == "Practitioner":
        row = store.current(c, "Practitioner", rid)
        if row is None or row.deleted:
            raise FhirError(422, f"requester {target} does not exist")
        name = _name(row.resource()) or target
        return Requester(
            partner_id=target,
            kind="other",
            organization=None,
            practitioner=target,
            purpose=purpose,
            break_glass_reason=reason,
        ), name
    if rtype != "Organization":
        raise FhirError(400, f"requester {ref} must be Organization/ID or Practitioner/ID")
    row = store.current(c, "Organization", rid)
    if row is None or row.deleted:
        raise FhirError(422, f"requester {target} does not exist")
    org = row.resource()
    partner = partners.get(c, rid)
    kind = (
        partner.kind
        if partner
        else next(
            (
                cd.get("code")
                for t in org.get("type") or []
                for cd in t.get("coding") or []
                if cd.get("system") == PARTNER_KIND_SYSTEM
            ),
            "other",
        )
    )
    ctx.registry.refresh(c)
    requester = Requester(
        partner_id=partner.id if partner else target,
        kind=kind,
        organization=target,
        org_chain=ctx.registry.chain(c, target),
        purpose=purpose,
        break_glass_reason=reason,
    )
    return requester, org.get("name") or target


def _name(resource: dict) -> str | None:
    for n in resource.get("name") or []:
        if n.get("text"):
            return n["text"]
        given = " ".join(n.get("given") or [])
        if given or n.get("family"):
            return f"{given} {n.get('family', '')}".strip()
    return None


def resource_label(resource: dict) -> str:
    """'daily activities', 'risk assessment', ... in the person's words."""
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if tag.get("system") == SECTION_SYSTEM and tag.get("code") in SECTION_PHRASES:
            return SECTION_PHRASES[tag["code"]]
    words = {
        "Patient": "name, address and NHS number",
        "RiskAssessment": "risk assessment",
        "RelatedPerson": "family and contacts",
        "CareTeam": "care team",
        "Goal": "recovery goals",
        "Consent": "sharing choices",
        "Task": "transfer plan",
        "Communication": "messages",
    }
    return words.get(resource.get("resourceType", ""), resource.get("resourceType", "record").lower())


def evaluate(ctx: Ctx, params: dict) -> Result:
    if params.get("resourceType") != "Parameters":
        raise FhirError(400, "$evaluate takes a Parameters resource")
    req_param = _param(params, "requester")
    if not req_param or not isinstance(_value(req_param[0]), dict):
        raise FhirError(400, "$evaluate needs a requester parameter (valueReference to an Organization)")
    purpose_p = _param(params, "purpose")
    purpose = "TREAT"
    if purpose_p:
        v = _value(purpose_p[0])
        purpose = (v.get("code") if isinstance(v, dict) else v) or "TREAT"
        if isinstance(v, dict) and "coding" in v:
            purpose = v["coding"][0].get("code", "TREAT")
    reason_p = _param(params, "breakGlassReason")
    reason = _value(reason_p[0]) if reason_p else None
    refs = [reference_target((_value(p) or {}).get("reference")) for p in _param(params, "resource")]
    patient_p = _param(params, "patient")
    with ctx.db.read() as c:
        caller = ctx.gate(c)
        requester, requester_name = requester_from_reference(
            c, ctx, _value(req_param[0]).get("reference", ""), purpose, reason
        )
        rows: list[Row] = []
        if refs:
            for target in refs:
                if target is None:
                    raise FhirError(400, "each resource parameter must be a valueReference to Type/ID")
                rtype, _, rid = target.partition("/")
                row = store.current(c, rtype, rid)
                if row is None or row.deleted or not caller.permits(row):
                    raise not_found(rtype, rid)
                rows.append(row)
        elif patient_p:
            pid = (reference_target((_value(patient_p[0]) or {}).get("reference")) or "").partition("/")[2]
            rows = [
                row_from(t)
                for t in c.all(
                    f"SELECT {COLUMNS} FROM resource WHERE patient = ? AND deleted = 0 ORDER BY type, id",
                    (pid,),
                )
            ]
            rows = [r for r in rows if caller.permits(r)]
            if not rows:
                raise not_found("Patient", pid)
        else:
            raise FhirError(400, "$evaluate needs resource references or a patient")
        probe = Gate(c, ctx.registry, requester)
        out = []
        for row in rows:
            resource = row.resource()
            decision = probe.decide(row, resource)
            patient_name, pronoun = "this person", "they"
            if row.patient:
                prow = store.current(c, "Patient", row.patient)
                if prow and prow.body:
                    person = prow.resource()
                    patient_name = (_name(person) or "this person").split()[0]
                    pronoun = {"female": "she", "male": "he"}.get(person.get("gender", ""), "they")
            parts: list[dict] = [
                {"name": "resource", "valueReference": {"reference": row.ref}},
                {"name": "decision", "valueCode": "permit" if decision.permit else "deny"},
                {"name": "basis", "valueCode": decision.basis},
            ]
            parts += [
                {"name": "consent", "valueReference": {"reference": cref}} for cref in decision.consents
            ]
            parts += [{"name": "provision", "valueString": p} for p in decision.provisions]
            parts.append(
                {
                    "name": "explanation",
                    "valueString": explain(
                        decision, requester_name, patient_name, resource_label(resource), pronoun=pronoun
                    ),
                }
            )
            out.append({"name": "result", "part": parts})
    return Result(200, {"resourceType": "Parameters", "parameter": out})


# -- sharing choices --------------------------------------------------------------------
def _may_decide_for(ctx: Ctx, c: Conn, patient: str) -> None:
    """Only the person, or their custodian with them, records their choices."""
    row = store.current(c, "Patient", patient)
    if row is None or row.deleted:
        raise not_found("Patient", patient)
    decision = ctx.gate(c).decide(row, row.resource())
    if decision.basis not in ("custodian", "person"):
        if decision.permit:
            raise FhirError(
                403, "only the person, or the care team that holds their record, can record their choices"
            )
        raise not_found("Patient", patient)


def current_choices_consent(c: Conn, patient: str) -> Row | None:
    t = c.one(
        f"SELECT {', '.join('r.' + x.strip() for x in COLUMNS.split(','))} FROM resource r "
        "WHERE r.type = 'Consent' AND r.deleted = 0 AND r.patient = ? AND r.id IN "
        "(SELECT id FROM idx_token WHERE type = 'Consent' AND param = 'identifier' AND system = ?) "
        "AND r.id IN (SELECT id FROM idx_token WHERE type = 'Consent' AND param = 'status' "
        "AND code = 'active')",
        (patient, CHOICES_IDENTIFIER),
    )
    return row_from(t) if t else None


def read_choices(ctx: Ctx, patient: str) -> Result:
    with ctx.db.read() as c:
        _may_decide_for(ctx, c, patient)
        row = current_choices_consent(c, patient)
        if row is None:
            return Result(200, {"patient": f"Patient/{patient}", "shares": [], "crisis": []})
        return Result(200, {**consent_to_choices(row.resource()), "consent": row.ref})


def save_choices(
    ctx: Ctx,
    patient: str,
    choices: dict,
    *,
    supersede: tuple[str, ...] = (),
    consent_version: int | None = None,
) -> Result:
    """A new set of choices becomes the active Consent; the old one is made inactive.

    `supersede`: ids of the patient's other Consents these choices replace (made inactive
    in the same transaction; the person's page restates all their choices). With
    `consent_version`, 409 if the patient's consents changed since that version was read.
    """
    if not isinstance(choices, dict):
        raise FhirError(400, "the sharing choices must be a JSON object")
    choices = {**choices, "patient": f"Patient/{patient}"}
    problems = choice_problems(choices)
    if problems:
        raise FhirError(422, "these sharing choices cannot be recorded: " + "; ".join(problems))
    consent = choices_to_consent(choices, consent_id=store.new_id())
    consent["identifier"] = [{"system": CHOICES_IDENTIFIER, "value": patient}]
    validate_resource(consent)
    with ctx.db.write() as c:
        _may_decide_for(ctx, c, patient)
        check_consent_write(c, consent)
        if consent_version is not None:
            t = c.one("SELECT consent_version FROM patient_facts WHERE patient = ?", (patient,))
            if (int(t[0]) if t else 0) != consent_version:
                raise FhirError(409, "the sharing choices changed while these were being made; check again")
        old = current_choices_consent(c, patient)
        if old is not None:
            store.put(c, {**old.resource(), "status": "inactive"}, rid=old.id, method="PUT")
        for cid in supersede:
            prior = store.current(c, "Consent", cid)
            if prior and not prior.deleted and prior.patient == patient and (old is None or cid != old.id):
                store.put(c, {**prior.resource(), "status": "inactive"}, rid=cid, method="PUT")
        row, _ = store.put(c, consent, rid=consent["id"], method="POST")
        body = ctx.gate(c).disclose(row, audit=False)
    headers = {"Location": f"{ctx.base_url}/Consent/{row.id}/_history/{row.version}"}
    return Result(201, orjson.loads(body) if body else None, headers, row)


def choices_from_parameters(body: dict) -> dict:
    """The choices document, sent as itself or as Parameters.choices (valueString JSON)."""
    if body.get("resourceType") == "Parameters":
        for p in body.get("parameter") or []:
            if p.get("name") == "choices" and isinstance(p.get("valueString"), str):
                try:
                    return orjson.loads(p["valueString"])
                except orjson.JSONDecodeError as exc:
                    raise FhirError(400, f"Parameters.choices is not JSON: {exc}") from None
        raise FhirError(400, "send the choices as Parameters.choices (valueString holding the JSON)")
    return body


# -- Patient $everything ----------------------------------------------------------------
def everything(ctx: Ctx, patient: str) -> Result:
    from carebridge.server.interaction import _entry

    with ctx.db.read() as c:
        gate = ctx.gate(c)
        prow = store.current(c, "Patient", patient)
        if prow is None or prow.deleted or gate.disclose(prow, audit=False) is None:
            raise not_found("Patient", patient)
        entries = []
        for t in c.all(
            f"SELECT {COLUMNS} FROM resource WHERE patient = ? AND deleted = 0 ORDER BY type, id", (patient,)
        ):
            row = row_from(t)
            body = gate.disclose(row)
            if body is not None:
                entries.append(_entry(ctx.base_url, row, body, b',"search":{"mode":"match"}'))
    head = orjson.dumps({"resourceType": "Bundle", "type": "searchset", "total": len(entries)})
    out = head[:-1] + b',"entry":[' + b",".join(entries) + b"]}" if entries else head
    return Result(200, out)


def register(kit: Kit) -> None:
    """Routes: POST Consent/$evaluate, GET|POST Patient/{id}/$sharing-choices,
    GET Patient/{id}/$everything."""
    kit.operation("evaluate", f"{CANONICAL_BASE}/OperationDefinition/Consent-evaluate", "Consent")
    kit.operation(
        "sharing-choices", f"{CANONICAL_BASE}/OperationDefinition/Patient-sharing-choices", "Patient"
    )
    kit.operation("everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything", "Patient")

    @kit.route("/fhir/Consent/$evaluate", "POST")
    async def consent_evaluate(request: Request) -> Response:
        ctx = kit.authenticate(request)
        return kit.respond(request, evaluate(ctx, await kit.body(request)))

    @kit.route("/fhir/Patient/{rid}/$sharing-choices", "GET")
    async def choices_read(request: Request) -> Response:
        ctx = kit.authenticate(request)
        result = read_choices(ctx, request.path_params["rid"])
        return Response(orjson.dumps(result.body), media_type="application/json")

    @kit.route("/fhir/Patient/{rid}/$sharing-choices", "POST")
    async def choices_save(request: Request) -> Response:
        ctx = kit.authenticate(request)
        require_scope(ctx.scope, "Consent", "create")
        raw = await read_body(request, kit.state.max_body)
        choices = choices_from_parameters(formats.parse_body(raw, "json"))
        return kit.respond(request, save_choices(ctx, request.path_params["rid"], choices))

    @kit.route("/fhir/Patient/{rid}/$everything", "GET")
    async def patient_everything(request: Request) -> Response:
        ctx = kit.authenticate(request)
        require_scope(ctx.scope, "Patient", "read")
        return await kit.disclose(request, ctx, everything(ctx, request.path_params["rid"]), "operation")
