"""A checked care-plan document -> the FHIR CarePlan family (CONTRACTS.md section 3).

Pure. `document_parts` returns one `Part` per resource, each with the business
identifier that finds it again on the next import. Parts refer to each other by
business identifier (`part:<system>|<value>`), so this mapping knows nothing of server
ids; import_plan.py resolves them. Output is deterministic: the same document always
maps to the same resources, which is what lets a re-import see that nothing changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from carebridge.mappings.plan_codes import (
    ACTIVITY_CODES,
    ACTIVITY_SYSTEM,
    CONTACT_PERSON,
    EMERGENCY_CONTACT,
    FAMILY_WORDS,
    PROFILES,
    RECORD_SYSTEM,
    RECOVERY_STAR_PREFIX,
    REVIEW,
    RISK_ASSESSMENT_CODE,
    RISK_PROBABILITY_SYSTEM,
    ROLE_CODE_SYSTEM,
    STAFF_SYSTEM,
)
from carebridge.mappings.vocabulary import (
    CPA_CARE_PLAN,
    MENTAL_HEALTH_CARE_PLAN,
    NHS_NUMBER_SYSTEM,
    PLAN_CODE,
    SECTION_SYSTEM,
    SECTIONS,
)

PART_PREFIX = "part:"
PLAN_DISPLAY = "My care and support plan"


@dataclass(frozen=True, slots=True)
class Part:
    """One resource of a person's plan, and how to find it again."""

    rtype: str
    system: str
    value: str
    resource: dict
    field: str  # the document field it comes from, for error messages

    @property
    def key(self) -> str:
        return f"{self.system}|{self.value}"


def part_ref(system: str, value: str, display: str | None = None) -> dict:
    ref = {"reference": f"{PART_PREFIX}{system}|{value}"}
    if display:
        ref["display"] = display
    return ref


def _meta(profile: str, code: str) -> dict:
    display = SECTIONS.get(code, PLAN_DISPLAY)
    return {"profile": [profile], "tag": [{"system": SECTION_SYSTEM, "code": code, "display": display}]}


def _ident(value: str) -> list[dict]:
    return [{"system": RECORD_SYSTEM, "value": value}]


def _phone(value: str, use: str) -> list[dict]:
    return [{"system": "phone", "value": value, "use": use}]


def staff_slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "staff"


class _Family:
    """The parts of one person's plan, built section by section."""

    def __init__(self, doc: dict, custodian: str) -> None:
        self.doc = doc
        self.custodian = custodian
        self.nhs = doc["person"]["nhsNumber"]
        self.plan = doc["plan"]
        self.sections = doc["sections"]
        self.parts: list[Part] = []
        self.patient = part_ref(NHS_NUMBER_SYSTEM, self.nhs)
        self.coordinator: dict | None = None
        self.care_team: dict | None = None

    def add(self, rtype: str, value: str, resource: dict, field: str, system: str = RECORD_SYSTEM) -> dict:
        self.parts.append(Part(rtype, system, value, resource, field))
        return part_ref(system, value)

    def key(self, suffix: str) -> str:
        return f"{self.nhs}/{suffix}"

    def started(self) -> dict:
        return {"period": {"start": self.plan["started"]}} if "started" in self.plan else {}

    def author(self) -> dict:
        return {"author": self.coordinator} if self.coordinator else {}

    # -- people -------------------------------------------------------------------------
    def person(self) -> None:
        p = self.doc["person"]
        patient: dict = {
            "resourceType": "Patient",
            "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": self.nhs}],
            "active": True,
            "name": [{"use": "official", "family": p["familyName"], "given": [p["givenName"]]}],
        }
        if "phone" in p:
            patient["telecom"] = _phone(p["phone"], "mobile")
        if "gender" in p:
            patient["gender"] = p["gender"]
        if "dateOfBirth" in p:
            patient["birthDate"] = p["dateOfBirth"]
        if "town" in p:
            patient["address"] = [{"use": "home", "city": p["town"]}]
        patient["managingOrganization"] = {"reference": self.custodian}
        self.add("Patient", self.nhs, patient, "person", NHS_NUMBER_SYSTEM)

    def staff(self) -> None:
        c = self.plan.get("coordinator")
        if not c:
            return
        org_id = self.custodian.split("/", 1)[1]
        value = f"{org_id}/{c.get('id') or staff_slug(c['name'])}"
        words = c["name"].split()
        name: dict = {"text": c["name"], "family": words[-1]}
        if len(words) > 1:
            name["given"] = words[:-1]
        practitioner = {
            "resourceType": "Practitioner",
            "identifier": [{"system": STAFF_SYSTEM, "value": value}],
            "active": True,
            "name": [name],
        }
        ref = self.add("Practitioner", value, practitioner, "plan.coordinator", STAFF_SYSTEM)
        self.coordinator = {**ref, "display": c["name"]}
        role: dict = {
            "resourceType": "PractitionerRole",
            "identifier": [{"system": STAFF_SYSTEM, "value": f"{value}/role"}],
            "active": True,
            "practitioner": self.coordinator,
            "organization": {"reference": self.custodian},
        }
        if "role" in c:
            role["code"] = [{"text": c["role"]}]
        if "phone" in c:
            role["telecom"] = _phone(c["phone"], "work")
        self.add("PractitionerRole", f"{value}/role", role, "plan.coordinator", STAFF_SYSTEM)

    def related(self, kind: str, n: int, code: str, item: dict, relationship: dict, field: str) -> dict:
        person: dict = {
            "resourceType": "RelatedPerson",
            "meta": _meta(PROFILES["RelatedPerson"], code),
            "identifier": _ident(self.key(f"{kind}/{n}")),
            "active": True,
            "patient": self.patient,
            "relationship": [relationship],
            "name": [{"text": item["name"]}],
        }
        if "phone" in item:
            person["telecom"] = _phone(item["phone"], "mobile")
        return {**self.add("RelatedPerson", self.key(f"{kind}/{n}"), person, field), "display": item["name"]}

    # -- the plan -----------------------------------------------------------------------
    def contacts(self) -> list[dict]:
        out = []
        for n, c in enumerate(self.sections.get("contacts", {}).get("contacts", []), start=1):
            relationship: dict = {"coding": [dict(EMERGENCY_CONTACT if c["emergency"] else CONTACT_PERSON)]}
            if "role" in c:
                relationship["text"] = c["role"]
            out.append(
                self.related(
                    "contact", n, "contacts", c, relationship, f"sections.contacts.contacts[{n - 1}]"
                )
            )
        return out

    def team(self, contacts: list[dict]) -> None:
        if not self.coordinator and not contacts:
            return
        participants = []
        if self.coordinator:
            role = self.plan["coordinator"].get("role") or "Care coordinator"
            participants.append({"role": [{"text": role}], "member": self.coordinator})
        contact_roles = [c.get("role") for c in self.sections.get("contacts", {}).get("contacts", [])]
        for ref, role in zip(contacts, contact_roles, strict=True):
            participants.append({"role": [{"text": role or "Contact"}], "member": ref})
        team: dict = {
            "resourceType": "CareTeam",
            "meta": _meta(PROFILES["CareTeam"], "contacts"),
            "identifier": _ident(self.key("care-team")),
            "status": "active",
        }
        if "team" in self.plan:
            team["name"] = self.plan["team"]
        team.update(
            {
                "subject": self.patient,
                "participant": participants,
                "managingOrganization": [{"reference": self.custodian}],
            }
        )
        self.care_team = self.add("CareTeam", self.key("care-team"), team, "plan.team")

    def goals(self) -> list[dict]:
        refs = []
        for n, g in enumerate(self.sections.get("recovery-goals", {}).get("goals", []), start=1):
            goal: dict = {
                "resourceType": "Goal",
                "meta": _meta(PROFILES["Goal"], "recovery-goals"),
                "identifier": _ident(self.key(f"goal/{n}")),
                "lifecycleStatus": "active",
                "description": {"text": g["words"]},
                "subject": self.patient,
            }
            if "start" in g:
                goal["startDate"] = g["start"]
            target: dict = {}
            if "recoveryStar" in g:
                star = g["recoveryStar"]
                target = {
                    "measure": {"text": RECOVERY_STAR_PREFIX + star["area"]},
                    "detailInteger": star["score"],
                }
            if "due" in g:
                target["dueDate"] = g["due"]
            if target:
                goal["target"] = [target]
            goal["expressedBy"] = self.patient
            refs.append(
                self.add("Goal", self.key(f"goal/{n}"), goal, f"sections.recovery-goals.goals[{n - 1}]")
            )
        return refs

    def risk(self) -> dict | None:
        s = self.sections.get("risk-assessment", {})
        if not any(k in s for k in ("assessed", "risks", "mitigation", "personView")):
            return None
        risk: dict = {
            "resourceType": "RiskAssessment",
            "meta": _meta(PROFILES["RiskAssessment"], "risk-assessment"),
            "identifier": _ident(self.key("risk-assessment")),
            "status": "final",
            "code": {
                "coding": [dict(RISK_ASSESSMENT_CODE)],
                "text": "Risks, talked about openly with the person",
            },
            "subject": self.patient,
        }
        if "assessed" in s:
            risk["occurrenceDateTime"] = s["assessed"]
        if self.coordinator:
            risk["performer"] = self.coordinator
        if "risks" in s:
            risk["prediction"] = [_prediction(r) for r in s["risks"]]
        if "mitigation" in s:
            risk["mitigation"] = s["mitigation"]
        if "personView" in s:
            risk["note"] = [{"text": s["personView"]}]
        return self.add("RiskAssessment", self.key("risk-assessment"), risk, "sections.risk-assessment")

    def parent(self) -> dict:
        category = [{"coding": [dict(MENTAL_HEALTH_CARE_PLAN)]}]
        if self.plan.get("cpa"):
            category.append({"coding": [dict(CPA_CARE_PLAN)]})
        plan: dict = {
            "resourceType": "CarePlan",
            "meta": _meta(PROFILES["plan"], PLAN_CODE),
            "identifier": _ident(self.key("plan")),
            "status": "active",
            "intent": "plan",
            "category": category,
        }
        if "title" in self.plan:
            plan["title"] = self.plan["title"]
        if "summary" in self.plan:
            plan["description"] = self.plan["summary"]
        plan.update({"subject": self.patient, **self.started(), **self.author()})
        if self.care_team:
            plan["careTeam"] = [self.care_team]
        if "nextReview" in self.plan:
            review = ACTIVITY_CODES[REVIEW]
            plan["activity"] = [
                {
                    "detail": {
                        "code": {"coding": [{"system": ACTIVITY_SYSTEM, "code": REVIEW, "display": review}]},
                        "status": "scheduled",
                        "scheduledPeriod": {"start": self.plan["nextReview"]},
                        "description": review,
                    }
                }
            ]
        return self.add("CarePlan", self.key("plan"), plan, "plan")

    def section(self, code: str, parent: dict, links: dict) -> None:
        s = self.sections[code]
        plan: dict = {
            "resourceType": "CarePlan",
            "meta": _meta(PROFILES["section"], code),
            "identifier": _ident(self.key(f"section/{code}")),
            "status": "active",
            "intent": "plan",
            "title": SECTIONS[code],
        }
        if "text" in s:
            plan["description"] = s["text"]
        plan.update({"partOf": [parent], "subject": self.patient, **self.started(), **self.author()})
        activities = [_activity(a) for a in s.get("activities", [])]
        activities += [self._agreed(a) for a in s.get("agreedContact", [])]
        if code == "contacts" and self.care_team:
            plan["careTeam"] = [self.care_team]
        if activities:
            plan["activity"] = activities
        plan.update(links.get(code, {}))
        self.add("CarePlan", self.key(f"section/{code}"), plan, f"sections.{code}")

    def _agreed(self, a: dict) -> dict:
        display = ACTIVITY_CODES[a["method"]]
        detail: dict = {
            "code": {"coding": [{"system": ACTIVITY_SYSTEM, "code": a["method"], "display": display}]},
            "status": "scheduled",
        }
        if "frequency" in a:
            detail["scheduledString"] = a["frequency"]
        if self.coordinator:
            detail["performer"] = [self.coordinator]
        detail["description"] = display
        return {"detail": detail}


def _activity(a: dict) -> dict:
    detail: dict = {"status": "scheduled", "description": a["what"]}
    if "when" in a:
        detail["scheduledString"] = a["when"]
    return {"detail": detail}


def _prediction(r: dict) -> dict:
    out: dict = {
        "outcome": {"text": r["what"]},
        "qualitativeRisk": {
            "coding": [{"system": RISK_PROBABILITY_SYSTEM, "code": r["level"]}],
            "text": r["level"],
        },
    }
    if "why" in r:
        out["rationale"] = r["why"]
    return out


def family_relationship(word: str) -> dict:
    """The person's word, with its HL7 v3 RoleCode where one is known."""
    key = word.strip().casefold()
    key = key[3:] if key.startswith("my ") else key
    coded = FAMILY_WORDS.get(key)
    relationship: dict = {"text": word}
    if coded:
        relationship = {
            "coding": [{"system": ROLE_CODE_SYSTEM, "code": coded[0], "display": coded[1]}],
            "text": word,
        }
    return relationship


def document_parts(doc: dict, custodian: str) -> list[Part]:
    """Every resource of the plan in `doc` (already checked), for custodian `Organization/ID`."""
    family = _Family(doc, custodian)
    family.person()
    family.staff()
    people = [
        family.related(
            "family",
            n,
            "family-relationships",
            p,
            family_relationship(p["relationship"]),
            f"sections.family-relationships.people[{n - 1}]",
        )
        for n, p in enumerate(doc["sections"].get("family-relationships", {}).get("people", []), start=1)
    ]
    contacts = family.contacts()
    family.team(contacts)
    goals = family.goals()
    risk = family.risk()
    parent = family.parent()
    links: dict[str, dict] = {}
    if people:
        links["family-relationships"] = {"supportingInfo": people}
    if contacts:
        links["contacts"] = {"supportingInfo": contacts}
    if goals:
        links["recovery-goals"] = {"goal": goals}
    if risk:
        links["risk-assessment"] = {"supportingInfo": [risk]}
    for code in doc["sections"]:
        family.section(code, parent, links)
    return family.parts
