"""A care plan as a plain-language HTML page, for the person and for partners.

Pure. It takes resources the caller has already been allowed to see (the server's
disclosure gate decided which) and shows exactly those: it never decides consent, and
never says what is missing (a hidden section does not exist for the reader, rule 8).
The person's words are shown as they wrote them, escaped, never rewritten.
"""

from __future__ import annotations

from datetime import date

from jinja2 import Environment, PackageLoader, select_autoescape

from carebridge.mappings.plan_codes import ACTIVITY_CODES
from carebridge.mappings.plan_from_fhir import Family, family_to_document
from carebridge.mappings.vocabulary import SECTIONS

_ENV = Environment(
    loader=PackageLoader("carebridge.mappings", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
LIKELIHOOD = {
    "negligible": "Very unlikely",
    "low": "Low",
    "moderate": "Moderate",
    "high": "High",
    "certain": "Almost certain",
}
GENDER_WORDS = {"female": ("she", "her"), "male": ("he", "his")}


def long_date(value: str | None) -> str | None:
    """'2025-06-02' -> '2 June 2025' (other shapes are shown as given)."""
    if not value:
        return None
    try:
        d = date.fromisoformat(value[:10])
    except ValueError:
        return value
    return f"{d.day} {d:%B %Y}"


def paragraphs(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split("\n") if p.strip()]


def _section_view(code: str, section: dict, coordinator: str | None) -> dict:
    view: dict = {"code": code, "title": SECTIONS[code], "words": paragraphs(section.get("text"))}
    view["activities"] = section.get("activities", [])
    view["agreed"] = [
        {"how": ACTIVITY_CODES[a["method"]], "when": a.get("frequency"), "who": coordinator}
        for a in section.get("agreedContact", [])
    ]
    view["contacts"] = section.get("contacts", [])
    view["people"] = section.get("people", [])
    view["goals"] = [
        {
            "words": paragraphs(g["words"]),
            "star": g.get("recoveryStar"),
            "due": long_date(g.get("due")),
            "since": long_date(g.get("start")),
        }
        for g in section.get("goals", [])
    ]
    if code == "risk-assessment":
        view["assessed"] = long_date(section.get("assessed"))
        view["risks"] = [
            {"what": r["what"], "likelihood": LIKELIHOOD.get(r["level"], r["level"]), "why": r.get("why")}
            for r in section.get("risks", [])
        ]
        view["helps"] = paragraphs(section.get("mitigation"))
        view["view"] = paragraphs(section.get("personView"))
    return view


def _transfer_view(plan: dict) -> dict:
    weeks = []
    for a in plan.get("activity") or []:
        detail = a.get("detail") or {}
        if detail.get("description"):
            period = detail.get("scheduledPeriod") or {}
            weeks.append(
                {
                    "what": detail["description"],
                    "when": " to ".join(
                        d for d in (long_date(period.get("start")), long_date(period.get("end"))) if d
                    ),
                    "done": detail.get("status") == "completed",
                }
            )
    return {
        "code": "transfer",
        "title": SECTIONS["transfer"],
        "words": paragraphs(plan.get("description")),
        "weeks": weeks,
    }


def render_plan_html(
    resources: list[dict],
    *,
    audience: str | None = None,
    record_holder: bool = False,
    prepared_on: str | None = None,
) -> str:
    """The page. `audience` names the partner it is for (None: the person's own copy);
    `record_holder` says that partner is the team holding the person's record."""
    doc = family_to_document(resources)
    family = Family(resources)
    person, plan = doc["person"], doc["plan"]
    given = person.get("givenName") or "This person"
    coordinator = plan.get("coordinator", {})
    sections = [_section_view(code, s, coordinator.get("name")) for code, s in doc["sections"].items()]
    if "transfer" in family.sections:
        sections.append(_transfer_view(family.sections["transfer"]))
    pronoun, possessive = GENDER_WORDS.get(person.get("gender", ""), ("they", "their"))
    return _ENV.get_template("care_plan.html").render(
        person=person,
        name=" ".join(n for n in (person.get("givenName"), person.get("familyName")) if n),
        given=given,
        pronoun=pronoun,
        possessive=possessive,
        born=long_date(person.get("dateOfBirth")),
        title=plan.get("title") or f"{given}'s care and support plan",
        summary=paragraphs(plan.get("summary")),
        cpa=plan.get("cpa"),
        started=long_date(plan.get("started")),
        review=long_date(plan.get("nextReview")),
        team=plan.get("team"),
        coordinator=coordinator,
        sections=sections,
        audience=audience,
        record_holder=record_holder,
        prepared_on=long_date(prepared_on),
    )
