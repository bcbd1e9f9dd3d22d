"""The local care-plan document: what it may hold, and checking one.

A document is plain data (the JSON form; the XML and CSV forms are read into it). Its
headings are the care-plan section codes of CONTRACTS.md section 3 (the PRSB
Personalised Care and Support Plan / CPA headings, see docs/care-plan-formats.md).
`check_document` returns the document in canonical form (NHS number without spaces,
headings and contact methods as codes, sections in reading order) and every problem
found, each naming the field, so one bad field never hides another. The person's own
words are never changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from nhs_number import is_valid as nhs_number_is_valid

from carebridge.mappings.plan_codes import (
    CONTACT_METHODS,
    METHOD_WORDS,
    RECOVERY_STAR_AREAS,
    RISK_LEVELS,
)
from carebridge.mappings.vocabulary import SECTIONS

FORMAT = "carebridge-care-plan"
VERSION = 1
GENDERS = ("female", "male", "other", "unknown")
# The transfer section is written by $plan-transfer, never imported.
IMPORTABLE_SECTIONS = tuple(code for code in SECTIONS if code != "transfer")
_TITLES = {title.casefold(): code for code, title in SECTIONS.items()}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Fields each section may carry beyond "text" and "activities".
SECTION_EXTRAS: dict[str, tuple[str, ...]] = {
    "contact-plan": ("agreedContact",),
    "contacts": ("contacts",),
    "family-relationships": ("people",),
    "recovery-goals": ("goals",),
    "risk-assessment": ("assessed", "risks", "mitigation", "personView"),
}


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem in one record: the field it is in, and what to do about it.

    `file` and `record` are set only when the problem sits elsewhere than the record
    itself (a CSV person's row in the separate sections file).
    """

    field: str
    message: str
    file: str | None = None
    record: str | None = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def heading_code(heading: str) -> str | None:
    """The section code for a heading written as its code or its plain-English title."""
    text = heading.strip()
    if text in SECTIONS:
        return text
    return _TITLES.get(text.casefold())


def method_code(word: str) -> str | None:
    text = word.strip().casefold().replace("-", " ").replace("_", " ")
    if text.replace(" ", "-") in CONTACT_METHODS:
        return text.replace(" ", "-")
    return METHOD_WORDS.get(text)


def normalise_nhs_number(value: str) -> str:
    return "".join(value.split())


def nhs_number_problem(value: str) -> str | None:
    if not value.isdigit() or len(value) != 10:
        return f"'{value}' is not an NHS number: it must be 10 digits"
    if not nhs_number_is_valid(value):
        return f"'{value}' is not a valid NHS number: its check digit (modulus 11) is wrong"
    return None


def date_problem(value: str) -> str | None:
    if not _DATE.match(value):
        return f"'{value}' is not a date: write it as YYYY-MM-DD"
    try:
        date.fromisoformat(value)
    except ValueError:
        return f"'{value}' is not a real date (no such day in that month)"
    return None


class _Checker:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def obj(self, value: Any, field: str, allowed: tuple[str, ...]) -> dict | None:
        if not isinstance(value, dict):
            self.fail(field, "must be an object")
            return None
        for key in value:
            if key not in allowed:
                self.fail(f"{field}.{key}" if field else key, f"unknown field; allowed: {', '.join(allowed)}")
        return value

    def text(self, parent: dict, key: str, field: str, *, required: bool = False) -> str | None:
        value = parent.get(key)
        path = f"{field}.{key}" if field else key
        if value is None:
            if required:
                self.fail(path, "is missing")
            return None
        if not isinstance(value, str):
            self.fail(path, "must be text")
            return None
        if not value.strip():
            if required:
                self.fail(path, "is empty")
            else:
                self.fail(path, "is empty; leave it out instead")
            return None
        return value

    def day(self, parent: dict, key: str, field: str, *, required: bool = False) -> str | None:
        value = self.text(parent, key, field, required=required)
        if value is None:
            return None
        problem = date_problem(value.strip())
        if problem:
            self.fail(f"{field}.{key}", problem)
            return None
        return value.strip()

    def items(self, parent: dict, key: str, field: str) -> list | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.fail(f"{field}.{key}", "must be a list")
            return None
        if not value:
            self.fail(f"{field}.{key}", "is an empty list; leave it out instead")
            return None
        return value


def _put(out: dict, key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def check_document(data: Any) -> tuple[dict | None, list[FieldError]]:
    """The canonical document and the problems found ([] = it can be imported)."""
    ck = _Checker()
    doc = ck.obj(data, "", ("format", "version", "person", "plan", "sections"))
    if doc is None:
        return None, ck.errors
    if doc.get("format") != FORMAT:
        ck.fail("format", f'must be "{FORMAT}" (this is not a carebridge care-plan document)')
    if doc.get("version") != VERSION:
        ck.fail("version", f"must be {VERSION}")
    out: dict = {"format": FORMAT, "version": VERSION}
    person = _person(ck, doc.get("person"))
    plan = _plan(ck, doc.get("plan", {}))
    sections = _sections(ck, doc.get("sections", {}))
    if ck.errors:
        return None, ck.errors
    out["person"] = person
    out["plan"] = plan
    out["sections"] = sections
    return out, []


def _person(ck: _Checker, value: Any) -> dict:
    out: dict = {}
    if value is None:
        ck.fail("person", "is missing: say whose plan this is (at least nhsNumber, givenName, familyName)")
        return out
    p = ck.obj(
        value, "person", ("nhsNumber", "givenName", "familyName", "dateOfBirth", "gender", "town", "phone")
    )
    if p is None:
        return out
    nhs = ck.text(p, "nhsNumber", "person", required=True)
    if nhs is not None:
        nhs = normalise_nhs_number(nhs)
        problem = nhs_number_problem(nhs)
        if problem:
            ck.fail("person.nhsNumber", problem)
        out["nhsNumber"] = nhs
    for key in ("givenName", "familyName"):
        _put(out, key, _stripped(ck.text(p, key, "person", required=True)))
    _put(out, "dateOfBirth", ck.day(p, "dateOfBirth", "person"))
    gender = ck.text(p, "gender", "person")
    if gender is not None:
        if gender.strip().lower() not in GENDERS:
            ck.fail("person.gender", f"'{gender}' is not one of {', '.join(GENDERS)}")
        out["gender"] = gender.strip().lower()
    _put(out, "town", _stripped(ck.text(p, "town", "person")))
    _put(out, "phone", _stripped(ck.text(p, "phone", "person")))
    return out


def _stripped(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def _plan(ck: _Checker, value: Any) -> dict:
    out: dict = {}
    p = ck.obj(value, "plan", ("title", "summary", "cpa", "started", "nextReview", "team", "coordinator"))
    if p is None:
        return out
    _put(out, "title", ck.text(p, "title", "plan"))
    _put(out, "summary", ck.text(p, "summary", "plan"))
    cpa = p.get("cpa")
    if cpa is not None and not isinstance(cpa, bool):
        ck.fail("plan.cpa", "must be true or false (whether the plan is under the Care Programme Approach)")
    _put(out, "cpa", cpa)
    _put(out, "started", ck.day(p, "started", "plan"))
    _put(out, "nextReview", ck.day(p, "nextReview", "plan"))
    _put(out, "team", _stripped(ck.text(p, "team", "plan")))
    if p.get("coordinator") is not None:
        c = ck.obj(p["coordinator"], "plan.coordinator", ("name", "role", "phone", "id"))
        if c is not None:
            coordinator: dict = {}
            _put(coordinator, "name", _stripped(ck.text(c, "name", "plan.coordinator", required=True)))
            for key in ("role", "phone", "id"):
                _put(coordinator, key, _stripped(ck.text(c, key, "plan.coordinator")))
            out["coordinator"] = coordinator
    return out


def _sections(ck: _Checker, value: Any) -> dict:
    out: dict = {}
    if not isinstance(value, dict):
        ck.fail("sections", "must be an object whose keys are section headings")
        return out
    found: dict[str, tuple[str, Any]] = {}
    for heading, content in value.items():
        field = f"sections.{heading}"
        code = heading_code(heading) if isinstance(heading, str) else None
        if code is None:
            ck.fail(
                field,
                f"unknown section heading '{heading}'; the headings are: {', '.join(IMPORTABLE_SECTIONS)}",
            )
            continue
        if code == "transfer":
            ck.fail(
                field, "the transfer section is written by a planned transfer ($plan-transfer), not imported"
            )
            continue
        if code in found:
            ck.fail(field, f"the section '{code}' appears twice")
            continue
        found[code] = (field, content)
    for code in IMPORTABLE_SECTIONS:  # reading order
        if code in found:
            field, content = found[code]
            section = _section(ck, code, field, content)
            if section is not None:
                out[code] = section
    return out


def _section(ck: _Checker, code: str, field: str, value: Any) -> dict | None:
    extras = SECTION_EXTRAS.get(code, ())
    s = ck.obj(value, field, ("text", "activities", *extras))
    if s is None:
        return None
    out: dict = {}
    _put(out, "text", ck.text(s, "text", field))
    activities = ck.items(s, "activities", field)
    if activities is not None:
        out["activities"] = [
            _fields(ck, a, f"{field}.activities[{i}]", required=("what",), optional=("when",))
            for i, a in enumerate(activities)
        ]
    if code == "contact-plan":
        _agreed_contacts(ck, s, field, out)
    elif code == "contacts":
        people = ck.items(s, "contacts", field)
        if people is not None:
            out["contacts"] = [_contact(ck, c, f"{field}.contacts[{i}]") for i, c in enumerate(people)]
    elif code == "family-relationships":
        people = ck.items(s, "people", field)
        if people is not None:
            out["people"] = [
                _fields(ck, p, f"{field}.people[{i}]", required=("name", "relationship"), optional=("phone",))
                for i, p in enumerate(people)
            ]
    elif code == "recovery-goals":
        goals = ck.items(s, "goals", field)
        if goals is not None:
            out["goals"] = [_goal(ck, g, f"{field}.goals[{i}]") for i, g in enumerate(goals)]
    elif code == "risk-assessment":
        _risk(ck, s, field, out)
    if not out:
        ck.fail(field, "is empty: give the section's text (the person's words)")
        return None
    return out


def _fields(
    ck: _Checker, value: Any, field: str, *, required: tuple, optional: tuple = (), also: tuple = ()
) -> dict:
    """The text fields of one list item (`also`: further fields the caller checks)."""
    out: dict = {}
    item = ck.obj(value, field, (*required, *optional, *also))
    if item is None:
        return out
    for key in required:
        _put(out, key, ck.text(item, key, field, required=True))
    for key in optional:
        _put(out, key, ck.text(item, key, field))
    return out


def _agreed_contacts(ck: _Checker, s: dict, field: str, out: dict) -> None:
    agreed = ck.items(s, "agreedContact", field)
    if agreed is None:
        return
    rows = []
    for i, a in enumerate(agreed):
        path = f"{field}.agreedContact[{i}]"
        row = _fields(ck, a, path, required=("method",), optional=("frequency",))
        if "method" in row:
            code = method_code(row["method"])
            if code is None:
                ck.fail(
                    f"{path}.method",
                    f"'{row['method']}' is not a contact method; use one of {', '.join(CONTACT_METHODS)}",
                )
            else:
                row["method"] = code
        rows.append(row)
    out["agreedContact"] = rows


def _contact(ck: _Checker, value: Any, field: str) -> dict:
    out = _fields(ck, value, field, required=("name",), optional=("role", "phone"), also=("emergency",))
    raw = value.get("emergency") if isinstance(value, dict) else None
    if raw is not None and not isinstance(raw, bool):
        ck.fail(f"{field}.emergency", "must be true or false (whether to use this contact in an emergency)")
    out["emergency"] = raw is True
    return out


def _goal(ck: _Checker, value: Any, field: str) -> dict:
    out: dict = {}
    g = ck.obj(value, field, ("words", "start", "due", "recoveryStar"))
    if g is None:
        return out
    _put(out, "words", ck.text(g, "words", field, required=True))
    _put(out, "start", ck.day(g, "start", field))
    _put(out, "due", ck.day(g, "due", field))
    if g.get("recoveryStar") is not None:
        path = f"{field}.recoveryStar"
        star = ck.obj(g["recoveryStar"], path, ("area", "score"))
        if star is not None:
            area = ck.text(star, "area", path, required=True)
            score = star.get("score")
            if area is not None and area not in RECOVERY_STAR_AREAS:
                ck.fail(
                    f"{path}.area",
                    f"'{area}' is not a Recovery Star area; the areas are: {', '.join(RECOVERY_STAR_AREAS)}",
                )
            if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 10:
                ck.fail(f"{path}.score", "must be a whole number from 1 to 10 (where the person wants to be)")
            out["recoveryStar"] = {"area": area, "score": score}
    return out


def _risk(ck: _Checker, s: dict, field: str, out: dict) -> None:
    _put(out, "assessed", ck.day(s, "assessed", field))
    risks = ck.items(s, "risks", field)
    if risks is not None:
        rows = []
        for i, r in enumerate(risks):
            path = f"{field}.risks[{i}]"
            row = _fields(ck, r, path, required=("what", "level"), optional=("why",))
            if "level" in row:
                row["level"] = row["level"].strip().lower()
                if row["level"] not in RISK_LEVELS:
                    ck.fail(f"{path}.level", f"'{row['level']}' is not one of {', '.join(RISK_LEVELS)}")
            rows.append(row)
        out["risks"] = rows
    _put(out, "mitigation", ck.text(s, "mitigation", field))
    _put(out, "personView", ck.text(s, "personView", field))
