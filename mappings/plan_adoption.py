"""Taking over a plan that is already there but carries no business identifier.

Pure. A person has one care plan (CONTRACTS.md section 3: one parent CarePlan, one child
per section). When a plan was written before any import (through the API, or the demo
world), the first import must update that plan, not put a second one beside it. So the
parts of a document that no business identifier matches are matched by their place in
the model instead: the person's one active parent plan, the section child of it with
the same section tag, the one care team and risk assessment, and goals and family or
contacts in the order their section lists them. Anything ambiguous is left alone (the
import then creates its own). Once written, an adopted resource carries the identifier,
so later imports match it the ordinary way.
"""

from __future__ import annotations

from carebridge.mappings.plan_codes import RECORD_SYSTEM
from carebridge.mappings.plan_to_fhir import Part
from carebridge.mappings.vocabulary import PLAN_CODE, SECTION_SYSTEM

_LIVE = ("active", "draft", "on-hold")


def _tag(resource: dict) -> str | None:
    for t in (resource.get("meta") or {}).get("tag") or []:
        if t.get("system") == SECTION_SYSTEM:
            return t.get("code")
    return None


def _unclaimed(resource: dict) -> bool:
    return not any(i.get("system") == RECORD_SYSTEM for i in resource.get("identifier") or [])


def _target(ref: object) -> str:
    text = ref.get("reference", "") if isinstance(ref, dict) else ""
    parts = str(text).split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:])


def _one(candidates: list[dict]) -> dict | None:
    return candidates[0] if len(candidates) == 1 else None


def adoptable(parts: list[Part], found: list[dict], matched: dict[str, dict]) -> dict[str, dict]:
    """Part key -> an existing unidentified resource that is that part (see the module doc)."""
    nhs = next(p.value for p in parts if p.rtype == "Patient")
    wanted = {p.key for p in parts}
    free = [r for r in found if r.get("id") and _unclaimed(r)]
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in found if r.get("id")}
    out: dict[str, dict] = {}

    def key(suffix: str) -> str:
        return f"{RECORD_SYSTEM}|{nhs}/{suffix}"

    def of(rtype: str, code: str) -> list[dict]:
        return [r for r in free if r.get("resourceType") == rtype and _tag(r) == code]

    def take(suffix: str, resource: dict | None) -> None:
        if resource is not None and key(suffix) in wanted and key(suffix) not in matched:
            out[key(suffix)] = resource

    parent = matched.get(key("plan"))
    if parent is None:
        parent = _one([p for p in of("CarePlan", PLAN_CODE) if p.get("status") in _LIVE])
        take("plan", parent)
    if parent is None:
        return out
    parent_ref = f"CarePlan/{parent['id']}"
    sections: dict[str, dict] = {}
    for p in parts:
        value = p.value.removeprefix(f"{nhs}/section/")
        if p.rtype != "CarePlan" or value == p.value:
            continue
        section = matched.get(p.key) or _one(
            [
                s
                for s in of("CarePlan", value)
                if s.get("status") in _LIVE and any(_target(x) == parent_ref for x in s.get("partOf") or [])
            ]
        )
        take(f"section/{value}", section)
        if section is not None:
            sections[value] = section
    take("care-team", _one([t for t in of("CareTeam", "contacts") if t.get("status") in ("active", None)]))
    risk_section = sections.get("risk-assessment", {})
    linked = [by_ref.get(_target(x)) for x in risk_section.get("supportingInfo") or []]
    risks = [r for r in linked if r and r.get("resourceType") == "RiskAssessment" and _unclaimed(r)]
    take("risk-assessment", _one(risks) or _one(of("RiskAssessment", "risk-assessment")))
    for code, element, rtype, suffix in (
        ("recovery-goals", "goal", "Goal", "goal"),
        ("family-relationships", "supportingInfo", "RelatedPerson", "family"),
        ("contacts", "supportingInfo", "RelatedPerson", "contact"),
    ):
        listed = [by_ref.get(_target(x)) for x in sections.get(code, {}).get(element) or []]
        members = [r for r in listed if r and r.get("resourceType") == rtype and _unclaimed(r)]
        for n, resource in enumerate(members, start=1):
            take(f"{suffix}/{n}", resource)
    return out
