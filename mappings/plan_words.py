"""A care plan's FHIR resources as the words a person reads on "My care plan" (pure).

Only what the person wrote or agreed is shown: each section's description, its
activities, goals in their own words, the risks as discussed, who is in the care team
and the people close to them. Sections come in the reading order of SECTIONS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .vocabulary import PLAN_CODE, SECTION_SYSTEM, SECTIONS


@dataclass
class PlanPart:
    code: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)


@dataclass
class PlanWords:
    title: str | None = None
    summary: str | None = None
    parts: list[PlanPart] = field(default_factory=list)


def _section(resource: dict) -> str | None:
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if tag.get("system") == SECTION_SYSTEM:
            return tag.get("code")
    return None


def _name(resource: dict) -> str:
    for n in resource.get("name") or []:
        words = " ".join([*(n.get("given") or []), n.get("family") or ""]).strip()
        if n.get("text") or words:
            return n.get("text") or words
    return "Someone"


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


# name_of("Organization/x") -> its name, for a care-team member stored without display text
NameOf = Callable[[str], str | None]


def _add(part: PlanPart, resource: dict, name_of: NameOf) -> None:
    kind = resource.get("resourceType")
    if kind == "CarePlan":
        if text := _text(resource.get("description")):
            part.paragraphs.append(text)
        for act in resource.get("activity") or []:
            detail = act.get("detail") or {}
            what, when = _text(detail.get("description")), _text(detail.get("scheduledString"))
            if what:
                part.items.append(f"{what} ({when})" if when else what)
    elif kind == "Goal":
        if text := _text((resource.get("description") or {}).get("text")):
            part.items.append(text)
    elif kind == "RiskAssessment":
        for p in resource.get("prediction") or []:
            if text := _text((p.get("outcome") or {}).get("text")):
                part.paragraphs.append(f"What we talked about: {text}.")
        if text := _text(resource.get("mitigation")):
            part.paragraphs.append(text)
        for note in resource.get("note") or []:
            if text := _text(note.get("text")):
                part.paragraphs.append(text)
    elif kind == "CareTeam":
        for p in resource.get("participant") or []:
            role = next((r.get("text") for r in p.get("role") or [] if r.get("text")), None)
            member = p.get("member") or {}
            ref = member.get("reference")
            who = _text(member.get("display")) or (name_of(ref) if isinstance(ref, str) else None)
            if role and who:
                part.items.append(f"{role}: {who}")
            elif role:
                part.items.append(role)
    elif kind == "RelatedPerson":
        relation = next((r.get("text") for r in resource.get("relationship") or [] if r.get("text")), None)
        phone = next((t.get("value") for t in resource.get("telecom") or [] if t.get("value")), None)
        words = _name(resource) + (f" ({relation})" if relation else "") + (f", {phone}" if phone else "")
        part.items.append(words)


def plan_words(resources: Iterable[dict], name_of: NameOf = lambda ref: None) -> PlanWords:
    out = PlanWords()
    parts: dict[str, PlanPart] = {}
    for resource in resources:
        code = _section(resource)
        if code == PLAN_CODE and resource.get("resourceType") == "CarePlan":
            out.title = _text(resource.get("title"))
            out.summary = _text(resource.get("description"))
            continue
        if code not in SECTIONS or resource.get("resourceType") == "Task":
            continue
        part = parts.setdefault(code, PlanPart(code, SECTIONS[code]))
        # The section's own words come first, then what hangs off it.
        if resource.get("resourceType") == "CarePlan":
            before = PlanPart(code, part.title)
            _add(before, resource, name_of)
            part.paragraphs[:0] = before.paragraphs
            part.items[:0] = before.items
        else:
            _add(part, resource, name_of)
    out.parts = [parts[c] for c in SECTIONS if c in parts and (parts[c].paragraphs or parts[c].items)]
    return out
