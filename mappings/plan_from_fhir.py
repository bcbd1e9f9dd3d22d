"""The FHIR CarePlan family -> the local care-plan document (the JSON form).

Pure. It takes resources the caller has already been allowed to see (the server's
disclosure gate decided that) and never decides anything about consent itself: a
section that was not disclosed is simply absent. It reads what plan_to_fhir.py writes,
and also plans written by other systems that follow CONTRACTS.md section 3 (the demo
world's, for instance), so it finds parts by reference first and by section tag second.
"""

from __future__ import annotations

from carebridge.mappings.plan_codes import (
    ACTIVITY_SYSTEM,
    CONTACT_METHODS,
    CONTACT_ROLE_SYSTEM,
    RECORD_SYSTEM,
    RECOVERY_STAR_PREFIX,
    REVIEW,
    STAFF_SYSTEM,
)
from carebridge.mappings.plan_document import FORMAT, IMPORTABLE_SECTIONS, VERSION
from carebridge.mappings.plan_to_fhir import staff_slug
from carebridge.mappings.vocabulary import CPA_CARE_PLAN, NHS_NUMBER_SYSTEM, PLAN_CODE, SECTION_SYSTEM


class NoPlan(ValueError):
    """The resources hold no person (or no plan) to write a document about."""


def section_code(resource: dict) -> str | None:
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if tag.get("system") == SECTION_SYSTEM:
            return tag.get("code")
    return None


def ref_of(resource: dict) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def record_index(resource: dict) -> int:
    """The position a document gave this part ("<nhs>/goal/3" -> 3); 0 if none."""
    for ident in resource.get("identifier") or []:
        if ident.get("system") == RECORD_SYSTEM:
            tail = str(ident.get("value", "")).rsplit("/", 1)[-1]
            if tail.isdigit():
                return int(tail)
    return 0


def name_text(resource: dict) -> str | None:
    for n in resource.get("name") or []:
        if n.get("text"):
            return n["text"]
        words = [*(n.get("prefix") or []), *(n.get("given") or []), n.get("family") or ""]
        text = " ".join(w for w in words if w)
        if text:
            return text
    return None


def phone_of(resource: dict) -> str | None:
    return next((t.get("value") for t in resource.get("telecom") or [] if t.get("system") == "phone"), None)


class Family:
    """A person's disclosed resources, indexed for reading."""

    def __init__(self, resources: list[dict]) -> None:
        self.by_ref = {ref_of(r): r for r in resources if r.get("id") and r.get("resourceType")}
        patients = [r for r in resources if r.get("resourceType") == "Patient"]
        if not patients:
            raise NoPlan("there is no person here: their details were not found or not disclosed")
        self.patient = patients[0]
        self.nhs = next(
            (
                i.get("value")
                for i in self.patient.get("identifier") or []
                if i.get("system") == NHS_NUMBER_SYSTEM
            ),
            None,
        )
        self.plans = [r for r in resources if r.get("resourceType") == "CarePlan"]
        self.parent = self._parent()
        parent_ref = ref_of(self.parent) if self.parent else None
        self.sections: dict[str, dict] = {}
        for plan in self.plans:
            code = section_code(plan)
            parts = [(p.get("reference") or "").split("/_history/")[0] for p in plan.get("partOf") or []]
            if code and code != PLAN_CODE and parent_ref and any(p.endswith(parent_ref) for p in parts):
                self.sections.setdefault(code, plan)

    def _parent(self) -> dict | None:
        parents = [p for p in self.plans if section_code(p) == PLAN_CODE and p.get("status") != "revoked"]
        if self.nhs:
            ours = [p for p in parents if record_index_value(p) == f"{self.nhs}/plan"]
            if ours:
                return ours[0]
        return parents[0] if parents else None

    def get(self, reference: dict | str | None) -> dict | None:
        ref = reference.get("reference") if isinstance(reference, dict) else reference
        if not isinstance(ref, str):
            return None
        ref = ref.split("/_history/")[0]
        parts = ref.rstrip("/").split("/")
        return self.by_ref.get("/".join(parts[-2:])) if len(parts) >= 2 else None

    def linked(self, refs: list[dict] | None, rtype: str, code: str) -> list[dict]:
        """Resources a section refers to, else those carrying its tag (in document order)."""
        found = [r for r in (self.get(x) for x in refs or []) if r and r["resourceType"] == rtype]
        if found:
            return found
        tagged = [r for r in self.by_ref.values() if r["resourceType"] == rtype and section_code(r) == code]
        return sorted(tagged, key=record_index)


def record_index_value(resource: dict) -> str | None:
    return next(
        (i.get("value") for i in resource.get("identifier") or [] if i.get("system") == RECORD_SYSTEM), None
    )


def _put(out: dict, key: str, value: object) -> None:
    if value is not None:
        out[key] = value


def _person(f: Family) -> dict:
    p = f.patient
    out: dict = {}
    _put(out, "nhsNumber", f.nhs)
    names = p.get("name") or []
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    _put(out, "givenName", (name.get("given") or [None])[0])
    _put(out, "familyName", name.get("family"))
    _put(out, "dateOfBirth", p.get("birthDate"))
    _put(out, "gender", p.get("gender"))
    addresses = p.get("address") or []
    home = next((a for a in addresses if a.get("use") == "home"), addresses[0] if addresses else {})
    _put(out, "town", home.get("city"))
    _put(out, "phone", phone_of(p))
    return out


def _coordinator(f: Family, plan: dict) -> dict | None:
    author = plan.get("author")
    practitioner = f.get(author)
    if practitioner is None or practitioner["resourceType"] != "Practitioner":
        return {"name": author["display"]} if isinstance(author, dict) and author.get("display") else None
    out: dict = {}
    _put(out, "name", name_text(practitioner) or (author or {}).get("display"))
    if "name" not in out:
        return None
    role = next(
        (
            r
            for r in f.by_ref.values()
            if r["resourceType"] == "PractitionerRole" and f.get(r.get("practitioner")) is practitioner
        ),
        None,
    )
    if role is not None:
        _put(out, "role", next((c.get("text") for c in role.get("code") or [] if c.get("text")), None))
        _put(out, "phone", phone_of(role))
    staff = next(
        (i.get("value") for i in practitioner.get("identifier") or [] if i.get("system") == STAFF_SYSTEM),
        None,
    )
    if staff and "/" in staff:
        local = staff.split("/", 1)[1]
        if local != staff_slug(out["name"]):
            out["id"] = local
    return out


def _plan(f: Family) -> dict:
    plan = f.parent or {}
    out: dict = {}
    _put(out, "title", plan.get("title"))
    _put(out, "summary", plan.get("description"))
    cpa = any(
        c.get("system") == CPA_CARE_PLAN["system"] and c.get("code") == CPA_CARE_PLAN["code"]
        for cat in plan.get("category") or []
        for c in cat.get("coding") or []
    )
    out["cpa"] = cpa
    _put(out, "started", (plan.get("period") or {}).get("start"))
    for a in plan.get("activity") or []:
        detail = a.get("detail") or {}
        if _activity_code(detail) == REVIEW:
            _put(out, "nextReview", (detail.get("scheduledPeriod") or {}).get("start"))
    teams = f.linked(plan.get("careTeam"), "CareTeam", "contacts")
    if teams:
        _put(out, "team", teams[0].get("name"))
    coordinator = _coordinator(f, plan) if plan else None
    _put(out, "coordinator", coordinator)
    return out


def _activity_code(detail: dict) -> str | None:
    for coding in (detail.get("code") or {}).get("coding") or []:
        if coding.get("system") == ACTIVITY_SYSTEM:
            return coding.get("code")
    return None


def _section(f: Family, code: str, plan: dict) -> dict:
    out: dict = {}
    _put(out, "text", plan.get("description"))
    activities, agreed = [], []
    for a in plan.get("activity") or []:
        detail = a.get("detail") or {}
        kind = _activity_code(detail)
        if kind in CONTACT_METHODS:
            row = {"method": kind}
            _put(row, "frequency", detail.get("scheduledString"))
            agreed.append(row)
        elif kind is None and detail.get("description"):
            row = {"what": detail["description"]}
            _put(row, "when", detail.get("scheduledString"))
            activities.append(row)
    if activities:
        out["activities"] = activities
    if agreed:
        out["agreedContact"] = agreed
    if code == "contacts":
        people = [_contact(r) for r in f.linked(plan.get("supportingInfo"), "RelatedPerson", code)]
        if people:
            out["contacts"] = people
    elif code == "family-relationships":
        people = [_relative(r) for r in f.linked(plan.get("supportingInfo"), "RelatedPerson", code)]
        if people:
            out["people"] = people
    elif code == "recovery-goals":
        goals = [_goal(g) for g in f.linked(plan.get("goal"), "Goal", code)]
        if goals:
            out["goals"] = goals
    elif code == "risk-assessment":
        risks = f.linked(plan.get("supportingInfo"), "RiskAssessment", code)
        if risks:
            _risk(risks[0], out)
    return out


def _contact(r: dict) -> dict:
    out: dict = {"name": name_text(r) or ""}
    relationship = (r.get("relationship") or [{}])[0]
    _put(out, "role", relationship.get("text"))
    _put(out, "phone", phone_of(r))
    out["emergency"] = any(
        c.get("system") == CONTACT_ROLE_SYSTEM and c.get("code") in ("C", "EP")
        for c in relationship.get("coding") or []
    )
    return out


def _relative(r: dict) -> dict:
    relationship = (r.get("relationship") or [{}])[0]
    word = relationship.get("text") or next(
        (c.get("display") or c.get("code") for c in relationship.get("coding") or []), "relative"
    )
    out: dict = {"name": name_text(r) or "", "relationship": word}
    _put(out, "phone", phone_of(r))
    return out


def _goal(g: dict) -> dict:
    out: dict = {"words": (g.get("description") or {}).get("text") or ""}
    _put(out, "start", g.get("startDate"))
    for target in g.get("target") or []:
        _put(out, "due", target.get("dueDate"))
        measure = (target.get("measure") or {}).get("text") or ""
        if measure.startswith(RECOVERY_STAR_PREFIX) and isinstance(target.get("detailInteger"), int):
            out["recoveryStar"] = {
                "area": measure[len(RECOVERY_STAR_PREFIX) :],
                "score": target["detailInteger"],
            }
    return out


def _risk(r: dict, out: dict) -> None:
    _put(out, "assessed", r.get("occurrenceDateTime"))
    rows = []
    for p in r.get("prediction") or []:
        q = p.get("qualitativeRisk") or {}
        level = next((c.get("code") for c in q.get("coding") or []), None) or q.get("text") or "unknown"
        row = {"what": (p.get("outcome") or {}).get("text") or "", "level": level}
        _put(row, "why", p.get("rationale"))
        rows.append(row)
    if rows:
        out["risks"] = rows
    _put(out, "mitigation", r.get("mitigation"))
    notes = [n.get("text") for n in r.get("note") or [] if n.get("text")]
    if notes:
        out["personView"] = "\n\n".join(notes)


def family_to_document(resources: list[dict]) -> dict:
    """The document for the person (and plan) in `resources`; NoPlan if there is none."""
    f = Family(resources)
    doc: dict = {"format": FORMAT, "version": VERSION, "person": _person(f), "plan": _plan(f)}
    sections: dict = {}
    for code in IMPORTABLE_SECTIONS:
        plan = f.sections.get(code)
        if plan is not None:
            section = _section(f, code, plan)
            if section:
                sections[code] = section
    doc["sections"] = sections
    return doc
