"""`carebridge map export`: a person's plan, as a partner may see it, in a local format.

Everything is fetched through the target as one partner (searches in batch Bundles), so
the disclosure gate decides what comes back and audits it; the pure mappings then write
the JSON or XML document or the plain-language HTML page from exactly that.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from carebridge.mappings.import_plan import FAMILY_TYPES, found_resources
from carebridge.mappings.plan_document import normalise_nhs_number
from carebridge.mappings.plan_from_fhir import NoPlan, family_to_document
from carebridge.mappings.plan_html import render_plan_html
from carebridge.mappings.plan_xml import write_xml
from carebridge.mappings.vocabulary import NHS_NUMBER_SYSTEM
from carebridge.server.db import Database
from carebridge.server.indexing import reference_target
from carebridge.server.map_target import Target, TargetError, batch_failures

FORMATS = ("json", "xml", "html")


class NotFound(LookupError):
    pass


def _batch(target: Target, urls: list[str]) -> list[dict]:
    answer = target.batch(
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{"request": {"method": "GET", "url": u}} for u in urls],
        }
    )
    failures = batch_failures(answer)
    if failures:
        raise TargetError(400, "; ".join(failures))
    return found_resources(answer)


def fetch_family(target: Target, nhs_number: str) -> list[dict]:
    """The person with this NHS number and their plan family, as the target's partner sees them."""
    nhs = normalise_nhs_number(nhs_number)
    revs = "".join(f"&_revinclude={t}:patient" for t in FAMILY_TYPES)
    resources = _batch(target, [f"Patient?identifier={quote(NHS_NUMBER_SYSTEM, safe=':/')}%7C{nhs}{revs}"])
    if not any(r.get("resourceType") == "Patient" for r in resources):
        raise NotFound(f"no person with NHS number {nhs} that {target.identity.name} may see")
    staff = sorted({target_ref.split("/", 1)[1] for r in resources for target_ref in _practitioners(r)})
    if staff:
        ids = ",".join(staff)
        refs = ",".join(f"Practitioner/{s}" for s in staff)
        resources += _batch(
            target, [f"Practitioner?_id={ids}&_count=100", f"PractitionerRole?practitioner={refs}&_count=100"]
        )
    return resources


def _practitioners(node: object) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        target = reference_target(node) if "reference" in node else None
        if target and target.startswith("Practitioner/"):
            out.append(target)
        for v in node.values():
            out += _practitioners(v)
    elif isinstance(node, list):
        for v in node:
            out += _practitioners(v)
    return out


def export_plan(target: Target, nhs_number: str, fmt: str, *, prepared_on: str | None = None) -> bytes:
    resources = fetch_family(target, nhs_number)
    try:
        if fmt == "html":
            patient = next(r for r in resources if r["resourceType"] == "Patient")
            holder = (patient.get("managingOrganization") or {}).get(
                "reference"
            ) == target.identity.organization
            audience = None if target.identity.kind == "person" else target.identity.name
            page = render_plan_html(
                resources, audience=audience, record_holder=holder, prepared_on=prepared_on
            )
            return page.encode()
        doc = family_to_document(resources)
    except NoPlan as exc:
        raise NotFound(str(exc)) from None
    if fmt == "xml":
        return write_xml([doc])
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def custodian_of(db: Database, nhs_number: str) -> str | None:
    """The partner holding this person's record (to act as, when no --partner is given)."""
    with db.read() as c:
        t = c.one(
            "SELECT f.managing_org FROM idx_token i JOIN patient_facts f ON f.patient = i.id "
            "WHERE i.type = 'Patient' AND i.param = 'identifier' AND i.system = ? AND i.code = ?",
            (NHS_NUMBER_SYSTEM, normalise_nhs_number(nhs_number)),
        )
        if not t or not t[0]:
            return None
        pid = str(t[0]).removeprefix("Organization/")
        row = c.one("SELECT id FROM partner WHERE id = ? AND kind = 'trust'", (pid,))
    return row[0] if row else None
