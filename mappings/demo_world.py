"""The demo world (CONTRACTS.md section 8): the B&NES case studies as FHIR R4 resources.

Pure: `build_demo_world(today)` returns partners to register and resources to load,
with dates relative to `today` so the transfer is always in its introduction week.

Who is who
- Service A is AWP's Bath Community Mental Health Team (`awp-bath-cmht`, partOf `awp`),
  the custodian (managingOrganization) of every demo patient.
- Service B is AWP's B&NES Primary Care Liaison Service (`awp-banes-pcls`, partOf `awp`):
  the step-down the seed workshop names ("why not start with GP or PCLS?"). We chose a
  second AWP team over an outside provider so that no real organisation is misplaced,
  and because a sibling team is *not* custodian: Pardeep only sees Millie's plan because
  she said yes in the introduction week (`millie-consent-service-b`).
- The voluntary organisations are partOf `banes-voluntary-alliance`, an umbrella that is
  not a partner, so it is a resource here (first in the list) and consents can name it.
- Ages, towns and circumstances come from seeds/002_...; the rest (surnames, family
  names, Fred's town, the words in each plan) is invented, written in the person's own
  voice, and grounded in what people said in seeds/000_... and seeds/003_....
- NHS numbers are in the 999 test range with a valid modulus-11 check digit. Phone
  numbers are Ofcom's drama ranges (01632 960xxx, 07700 900xxx).

Order: every resource comes after the resources it references; partner Organizations are
created by the server from `partners` and are not in `resources`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape

from .handover import Service, TransferResources, build_transfer_resources, prefixed_ids
from .vocabulary import (
    CONSENT_ACTION_SYSTEM,
    CONSENT_CATEGORY_PATIENT_CONSENT,
    CONSENT_POLICY_OPTIN,
    CONSENT_SCOPE_PATIENT_PRIVACY,
    CPA_CARE_PLAN,
    MENTAL_HEALTH_CARE_PLAN,
    NHS_NUMBER_SYSTEM,
    PARTICIPATION_TYPE_SYSTEM,
    PLAN_CODE,
    PURPOSE_OF_USE_SYSTEM,
    RESOURCE_TYPE_SYSTEM,
    SECTION_SYSTEM,
    SECTIONS,
)

# ----------------------------------------------------------------------------- partners

TRUST = "awp"
SERVICE_A = "awp-bath-cmht"
SERVICE_B = "awp-banes-pcls"
GP = "keynsham-gp"
ALLIANCE = "banes-voluntary-alliance"  # umbrella, not a partner
BATH_MIND = "bath-mind"
CITIZENS_ADVICE = "citizens-advice-banes"
RECOVERY_COLLEGE = "recovery-college"
ICR = "banes-icr"
MILLIE_APP = "millie-app"
# The GP practice's MESH mailbox: one of the canned mailboxes of NHS England's local MESH
# sandbox (mesh-sandbox), so the demo's GP notices can be watched arriving there.
GP_MESH_MAILBOX = "X26ABC2"

PARTNERS: tuple[dict, ...] = (
    {
        "id": TRUST,
        "name": "Avon and Wiltshire Mental Health Partnership NHS Trust",
        "kind": "trust",
        "ods": "RVN",
        "part_of": None,
        "patient": None,
        "scope": None,
    },
    {
        "id": SERVICE_A,
        "name": "Bath Community Mental Health Team",
        "kind": "trust",
        "ods": None,
        "part_of": TRUST,
        "patient": None,
        "scope": None,
    },
    {
        "id": SERVICE_B,
        "name": "B&NES Primary Care Liaison Service",
        "kind": "trust",
        "ods": None,
        "part_of": TRUST,
        "patient": None,
        "scope": None,
    },
    {
        "id": GP,
        "name": "Keynsham Health Centre",
        "kind": "gp",
        "ods": "L81052",
        "part_of": None,
        "patient": None,
        "scope": None,
        "mesh_mailbox": GP_MESH_MAILBOX,
    },
    {
        "id": BATH_MIND,
        "name": "Bath Mind",
        "kind": "voluntary",
        "ods": None,
        "part_of": ALLIANCE,
        "patient": None,
        "scope": None,
    },
    {
        "id": CITIZENS_ADVICE,
        "name": "Citizens Advice Bath & North East Somerset",
        "kind": "voluntary",
        "ods": None,
        "part_of": ALLIANCE,
        "patient": None,
        "scope": None,
    },
    {
        "id": RECOVERY_COLLEGE,
        "name": "B&NES Recovery College",
        "kind": "voluntary",
        "ods": None,
        "part_of": ALLIANCE,
        "patient": None,
        "scope": None,
    },
    {
        "id": ICR,
        "name": "B&NES Integrated Care Record",
        "kind": "icr",
        "ods": None,
        "part_of": None,
        "patient": None,
        "scope": None,
    },
    {
        "id": MILLIE_APP,
        "name": "Millie's own page",
        "kind": "person",
        "ods": None,
        "part_of": None,
        "patient": "Patient/millie",
        "scope": None,
    },
)

# Test-range NHS numbers (999...), each with a valid modulus-11 check digit. 999100002x
# is skipped: its check digit would be 10, which no valid number has.
NHS_NUMBERS: dict[str, str] = {
    "millie": "9991000011",
    "richard": "9991000038",
    "jenny": "9991000046",
    "george": "9991000054",
    "ava": "9991000062",
    "zoe": "9991000070",
    "fred": "9991000089",
}

# The transfer starts 22 days before `today`: weeks 1-3 are over and today is day 2 of
# week 4, the introduction week, the moment the seed's table turns on.
TRANSFER_STARTED_DAYS_AGO = 22


@dataclass
class DemoWorld:
    partners: list[dict]
    resources: list[dict]
    transfer: TransferResources | None = field(default=None, repr=False)

    def get(self, reference: str) -> dict:
        """The resource a "Type/id" reference names (KeyError if not in the world)."""
        kind, _, rid = reference.partition("/")
        for r in self.resources:
            if r["resourceType"] == kind and r["id"] == rid:
                return r
        raise KeyError(reference)


def build_demo_world(today: date) -> DemoWorld:
    """Everything the demo needs, dated relative to `today`."""
    transfer = _millie_transfer(today)
    resources = [
        _alliance(),
        *_practitioners(),
        *_millie(today, transfer),
        *_richard(today),
        *_jenny(today),
        *_george(today),
        *_ava(today),
        *_zoe(today),
        *_fred(today),
        *transfer.resources(),
    ]
    return DemoWorld(partners=[dict(p) for p in PARTNERS], resources=resources, transfer=transfer)


# ----------------------------------------------------------------------- small builders


def _ref(kind: str, rid: str, display: str | None = None) -> dict:
    ref = {"reference": f"{kind}/{rid}"}
    if display:
        ref["display"] = display
    return ref


def _org(rid: str) -> dict:
    return _ref("Organization", rid)


def _tag(code: str) -> dict:
    display = SECTIONS.get(code, "My care and support plan")
    return {"tag": [{"system": SECTION_SYSTEM, "code": code, "display": display}]}


def _text(*paragraphs: str) -> dict:
    """A generated narrative: the plain words a person sees for a non-text resource."""
    body = "".join(f"<p>{escape(p, quote=False)}</p>" for p in paragraphs)
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


def _born(today: date, age: int, days_since_birthday: int) -> str:
    """A birth date that makes the person exactly `age` today (29 Feb becomes 28 Feb)."""
    try:
        anniversary = today.replace(year=today.year - age)
    except ValueError:
        anniversary = today.replace(year=today.year - age, day=28)
    return (anniversary - timedelta(days=days_since_birthday)).isoformat()


def _days_ago(today: date, days: int) -> str:
    return (today - timedelta(days=days)).isoformat()


def _phone(value: str, use: str = "work") -> dict:
    return {"system": "phone", "value": value, "use": use}


# ---------------------------------------------------------------------- organisations


def _alliance() -> dict:
    return {
        "resourceType": "Organization",
        "id": ALLIANCE,
        "active": True,
        "type": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                        "code": "cg",
                        "display": "Community Group",
                    }
                ]
            }
        ],
        "name": "B&NES Voluntary and Community Sector Alliance",
        "address": [{"city": "Bath", "district": "Bath and North East Somerset", "country": "GB"}],
    }


# Practitioner id -> (prefix, given, family, organisation, role in plain words, phone)
_STAFF: dict[str, tuple[str | None, str, str, str, str, str]] = {
    "sam-patel": (None, "Sam", "Patel", SERVICE_A, "Care coordinator", "01632 960101"),
    "john-hughes": (None, "John", "Hughes", SERVICE_A, "Care coordinator", "01632 960102"),
    "pardeep-sandhu": (None, "Pardeep", "Sandhu", SERVICE_B, "Key worker", "01632 960201"),
    "helen-morgan": ("Dr", "Helen", "Morgan", GP, "General practitioner", "01632 960301"),
}


def _practitioners() -> list[dict]:
    people: list[dict] = []
    roles: list[dict] = []
    for pid, (prefix, given, family, org, role, phone) in _STAFF.items():
        name: dict = {"use": "official", "family": family, "given": [given]}
        if prefix:
            name["prefix"] = [prefix]
        people.append({"resourceType": "Practitioner", "id": pid, "active": True, "name": [name]})
        roles.append(
            {
                "resourceType": "PractitionerRole",
                "id": f"{pid}-role",
                "active": True,
                "practitioner": _ref("Practitioner", pid, f"{given} {family}"),
                "organization": _org(org),
                "code": [{"text": role}],
                "telecom": [_phone(phone)],
            }
        )
    return people + roles


def _staff(pid: str) -> dict:
    prefix, given, family, *_ = _STAFF[pid]
    return _ref("Practitioner", pid, " ".join(p for p in (prefix, given, family) if p))


# --------------------------------------------------------------------- person builders


def _patient(
    today: date,
    pid: str,
    given: str,
    family: str,
    gender: str,
    age: int,
    days_since_birthday: int,
    city: str,
    **extra: object,
) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": NHS_NUMBERS[pid]}],
        "active": True,
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": gender,
        "birthDate": _born(today, age, days_since_birthday),
        "address": [
            {
                "use": "home",
                "city": city,
                "district": "Bath and North East Somerset",
                "country": "GB",
            }
        ],
        "generalPractitioner": [_org(GP)],
        "managingOrganization": _org(SERVICE_A),
        **extra,
    }


def _related(rid: str, patient: str, code: str, display: str, given: str, family: str, phone: str) -> dict:
    return {
        "resourceType": "RelatedPerson",
        "id": rid,
        "meta": _tag("family-relationships"),
        "active": True,
        "patient": _ref("Patient", patient),
        "relationship": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                        "code": code,
                        "display": display,
                    }
                ],
                "text": display.lower(),
            }
        ],
        "name": [{"family": family, "given": [given]}],
        "telecom": [_phone(phone, "mobile")],
    }


def _care_team(patient: str, name: str, members: list[tuple[str, dict]], note: str | None = None) -> dict:
    team: dict = {
        "resourceType": "CareTeam",
        "id": f"{patient}-care-team",
        "meta": _tag("contacts"),
        "status": "active",
        "name": name,
        "subject": _ref("Patient", patient),
        "participant": [{"role": [{"text": role}], "member": member} for role, member in members],
        "managingOrganization": [_org(SERVICE_A)],
    }
    if note:
        team["note"] = [{"text": note}]
    return team


def _goal(
    patient: str,
    n: int,
    words: str,
    start: str,
    star: tuple[str, int] | None = None,
    due: str | None = None,
) -> dict:
    goal: dict = {
        "resourceType": "Goal",
        "id": f"{patient}-goal-{n}",
        "meta": _tag("recovery-goals"),
        "lifecycleStatus": "active",
        "achievementStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
                    "code": "in-progress",
                    "display": "In Progress",
                }
            ]
        },
        "description": {"text": words},
        "subject": _ref("Patient", patient),
        "startDate": start,
        "expressedBy": _ref("Patient", patient),
    }
    if star:
        # Recovery Star: the person scores each area 1-10 with their worker; this is
        # where they want to be.
        area, score = star
        target: dict = {"measure": {"text": f"Recovery Star: {area}"}, "detailInteger": score}
        if due:
            target["dueDate"] = due
        goal["target"] = [target]
    return goal


def _risk(
    patient: str,
    when: str,
    performer: str,
    outcome: str,
    level: str,
    rationale: str,
    mitigation: str,
    note: str,
) -> dict:
    return {
        "resourceType": "RiskAssessment",
        "id": f"{patient}-risk",
        "meta": _tag("risk-assessment"),
        "status": "final",
        "code": {"text": "Risks, talked about openly with the person"},
        "subject": _ref("Patient", patient),
        "occurrenceDateTime": when,
        "performer": _staff(performer),
        "prediction": [
            {
                "outcome": {"text": outcome},
                "qualitativeRisk": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/risk-probability",
                            "code": level,
                        }
                    ],
                    "text": level,
                },
                "rationale": rationale,
            }
        ],
        "mitigation": mitigation,
        "note": [{"text": note}],
    }


class _Plan:
    """One person's plan: the parent CarePlan and its section children."""

    def __init__(self, patient: str, given: str, coordinator: str, start: str, cpa: bool = True) -> None:
        self.patient = patient
        self.given = given
        self.coordinator = coordinator
        self.start = start
        self.cpa = cpa

    @property
    def parent_id(self) -> str:
        return f"{self.patient}-plan"

    def parent(self, description: str) -> dict:
        category = [{"coding": [dict(MENTAL_HEALTH_CARE_PLAN)]}]
        if self.cpa:
            category.append({"coding": [dict(CPA_CARE_PLAN)]})
        return {
            "resourceType": "CarePlan",
            "id": self.parent_id,
            "meta": _tag(PLAN_CODE),
            "status": "active",
            "intent": "plan",
            "category": category,
            "title": f"{self.given}'s care and support plan",
            "description": description,
            "subject": _ref("Patient", self.patient),
            "period": {"start": self.start},
            "created": self.start,
            "author": _staff(self.coordinator),
            "contributor": [_ref("Patient", self.patient), _staff(self.coordinator)],
            "careTeam": [_ref("CareTeam", f"{self.patient}-care-team")],
        }

    def section(
        self,
        code: str,
        description: str,
        activities: list[tuple[str, str]] | None = None,
        **extra: object,
    ) -> dict:
        """A section child plan; `activities` are (plain words, when) pairs."""
        plan: dict = {
            "resourceType": "CarePlan",
            "id": f"{self.patient}-{code}",
            "meta": _tag(code),
            "status": "active",
            "intent": "plan",
            "title": SECTIONS[code],
            "description": description,
            "partOf": [_ref("CarePlan", self.parent_id)],
            "subject": _ref("Patient", self.patient),
            "period": {"start": self.start},
            "author": _staff(self.coordinator),
            **extra,
        }
        if activities:
            plan["activity"] = [
                {"detail": {"status": "scheduled", "description": what, "scheduledString": when}}
                for what, when in activities
            ]
        return plan


# -------------------------------------------------------------------------- consents


def _actor(org: str) -> list[dict]:
    return [
        {
            "role": {"coding": [{"system": PARTICIPATION_TYPE_SYSTEM, "code": "IRCP"}]},
            "reference": _org(org),
        }
    ]


def _sections(*codes: str) -> list[dict]:
    return [{"coding": [{"system": SECTION_SYSTEM, "code": c}]} for c in codes]


_ACCESS = [{"coding": [{"system": CONSENT_ACTION_SYSTEM, "code": "access"}]}]
_PATIENT_CLASS = [{"system": RESOURCE_TYPE_SYSTEM, "code": "Patient"}]
_EMERGENCY = [{"system": PURPOSE_OF_USE_SYSTEM, "code": "ETREAT"}]


def _consent(cid: str, patient: str, when: str, provision: dict, *words: str) -> dict:
    return {
        "resourceType": "Consent",
        "id": cid,
        "text": _text(*words),
        "status": "active",
        "scope": {"coding": [dict(CONSENT_SCOPE_PATIENT_PRIVACY)]},
        "category": [{"coding": [dict(CONSENT_CATEGORY_PATIENT_CONSENT)]}],
        "patient": _ref("Patient", patient),
        "dateTime": when,
        "performer": [_ref("Patient", patient)],
        "organization": [_org(SERVICE_A)],
        "policyRule": {"coding": [dict(CONSENT_POLICY_OPTIN)]},
        "provision": provision,
    }


def _share_with(org: str, sections: tuple[str, ...]) -> dict:
    """Root provision: `org` (and anything partOf it) sees the Patient and these sections.

    The root has no type of its own, so anything not listed gets no answer from this
    consent, and stays denied by default (rule 5).
    """
    return {
        "actor": _actor(org),
        "action": _ACCESS,
        "provision": [
            {"type": "permit", "class": _PATIENT_CLASS},
            {"type": "permit", "code": _sections(PLAN_CODE, *sections)},
        ],
    }


# ------------------------------------------------------------------------------ Millie


def _millie_transfer(today: date) -> TransferResources:
    start = today - timedelta(days=TRANSFER_STARTED_DAYS_AGO)
    return build_transfer_resources(
        patient="Patient/millie",
        care_plan="CarePlan/millie-plan",
        service_a=Service(
            organization=f"Organization/{SERVICE_A}",
            name="the Bath Community Mental Health Team",
            worker="Practitioner/sam-patel",
            worker_name="Sam",
            worker_display="Sam Patel",
        ),
        service_b=Service(
            organization=f"Organization/{SERVICE_B}",
            name="the Primary Care Liaison Service",
            worker="Practitioner/pardeep-sandhu",
            worker_name="Pardeep",
            worker_display="Pardeep Sandhu",
        ),
        start=start,
        id_for=prefixed_ids("millie-transfer"),
        weeks=8,
        pattern="gradual",
        frequency="weekly",
        status="in-progress",
        today=today,
        authored_on=start - timedelta(days=3),
    )


def _millie(today: date, transfer: TransferResources) -> list[dict]:
    pid = "millie"
    start = _days_ago(today, 240)
    plan = _Plan(pid, "Millie", "sam-patel", start)
    intro_week = next(w for w in transfer.plan if w.introduction)
    voluntary_sections = tuple(c for c in SECTIONS if c not in ("risk-assessment", "crisis-plan"))
    return [
        _patient(
            today,
            pid,
            "Millie",
            "Harris",
            "female",
            18,
            120,
            "Keynsham",
            telecom=[_phone("07700 900101", "mobile")],
        ),
        _related(pid + "-mum", pid, "MTH", "Mother", "Karen", "Harris", "07700 900102"),
        _care_team(
            pid,
            "Millie's care team",
            [
                ("Me", _ref("Patient", pid)),
                ("Care coordinator", _staff("sam-patel")),
                ("New key worker (from my introduction week)", _staff("pardeep-sandhu")),
                ("GP (diabetes reviews)", _staff("helen-morgan")),
                ("My mum, with my agreement", _ref("RelatedPerson", pid + "-mum", "Karen")),
                ("Peer support group", _org(BATH_MIND)),
            ],
            "Mum is in my care team because I asked for her to be. I can change that.",
        ),
        _goal(
            pid,
            1,
            "I want my blood sugars steady enough that I can go out with my friends without"
            " worrying, and stop skipping insulin when I feel low.",
            start,
            ("Physical health and self-care", 7),
            _days_ago(today, -120),
        ),
        _goal(
            pid,
            2,
            "Drink less on nights out: two drinks, then soft drinks, and get home with a friend.",
            start,
            ("Addictive behaviour", 7),
        ),
        _goal(
            pid,
            3,
            "Start the Level 2 hairdressing course at Bath College in September.",
            start,
            ("Work", 6),
        ),
        _goal(
            pid,
            4,
            "When I feel like hurting myself, use my 'ten minutes' list first and text Mum"
            " or the crisis line.",
            start,
            ("Managing mental health", 7),
        ),
        _risk(
            pid,
            _days_ago(today, 30),
            "sam-patel",
            "Self-harm when I feel low, usually late at night after drinking",
            "moderate",
            "Millie has cut herself a few times this year, always at home and late at night."
            " Skipping insulin when low also puts her physical health at risk.",
            "Millie's plan: the 'ten minutes' list, texting Mum, the crisis line, fewer drinks"
            " on nights out, insulin reminders on her phone. Reviewed with Millie every month.",
            "Talked through with Millie, who has read this and agrees it is fair. In her"
            " words: 'I'm not a danger to anyone. I just have bad nights, and I want people"
            " to ask me about them rather than read about them.'",
        ),
        plan.parent(
            "My plan, written with Sam. It is about what matters to me, not just about"
            " risks. I decide who sees it."
        ),
        plan.section(
            "about-me",
            "I'm Millie, I'm 18 and I live in Keynsham with my mum and my little brother"
            " Josh. I've had diabetes since I was 11. Sometimes I feel really down, and"
            " that's when I stop looking after myself. I like music, doing people's hair and"
            " being outside. Please talk to me, not about me: ask me first.",
        ),
        plan.section(
            "daily-activities",
            "Having a shape to my week helps me most when I'm low. This is my usual week.",
            [
                ("Walk Bella (the dog) by the river in Memorial Park", "Every morning"),
                ("Hair and beauty taster sessions at Bath College", "Mondays and Wednesdays"),
                ("Phone call with Sam", "Tuesdays, 4pm to 5pm"),
                ("Peer support group at Bath Mind", "Thursday evenings"),
                ("Swimming with my friend Chloe at the leisure centre", "Friday mornings"),
                ("Helping at the community café", "Saturday mornings"),
                ("Tea at Nan's", "Sundays"),
            ],
        ),
        plan.section(
            "contact-plan",
            "How we keep in touch, agreed with me. Weekly phone call on Tuesdays; home visit"
            " monthly; a private place agreed in advance if I'd rather not meet at home. If"
            " Sam has to cancel, someone texts me before, not after, and tells me when we'll"
            " talk instead. Texts are fine for times; anything personal, call me.",
            [
                ("Phone call from Sam", "Every Tuesday, 4pm to 5pm"),
                ("Home visit (or the private room at Keynsham library, agreed in advance)", "Once a month"),
            ],
        ),
        plan.section(
            "contacts",
            "Who to contact. Non-emergency: Sam at the Bath Community Mental Health Team,"
            " 01632 960101, weekdays 9am to 5pm. From my introduction week, Pardeep too,"
            " 01632 960201. My mum, Karen, 07700 900102. Out of hours or in a crisis:"
            " NHS 111 and choose the mental health option; Samaritans 116 123. In an"
            " emergency: 999.",
            careTeam=[_ref("CareTeam", pid + "-care-team")],
        ),
        plan.section(
            "medication-agreement",
            "My insulin: long-acting at 9pm, quick-acting with meals, adjusted by carb"
            " counting, which I do myself. The diabetes nurse and I review it every three"
            " months. I am not taking an antidepressant now; we agreed to talk about it again"
            " if I still feel low after the summer, and any change is decided with me, not"
            " for me. Step by step, I'm collecting my prescriptions from the chemist myself:"
            " first with Sam, then with Sam waiting in the car, now on my own.",
        ),
        plan.section(
            "family-relationships",
            "Mum is my main support and can be involved when I've agreed it with her and"
            " Sam first. Josh is 12 and doesn't need to know the details. I don't want my"
            " dad contacted. My nan is where I go on Sundays.",
            supportingInfo=[_ref("RelatedPerson", pid + "-mum")],
        ),
        plan.section(
            "faith-spirituality",
            "I'm not religious. What keeps me going is music and being outdoors; I feel"
            " calmest by the river.",
        ),
        plan.section(
            "education-training",
            "I left sixth form last year. I'm doing taster sessions at Bath College and want"
            " to start the Level 2 hairdressing course in September. I'd like to do the"
            " Recovery College course on understanding emotions first.",
        ),
        plan.section(
            "strengths-community",
            "I'm good with people and with kids, I'm creative, and I'm honest when things"
            " are bad (eventually). I help at the community café on Saturdays and go to the"
            " Bath Mind peer group on Thursdays, which I like because nobody there treats me"
            " as a file.",
        ),
        plan.section(
            "recovery-goals",
            "My goals, in my own words, and where I want to be on my Recovery Star.",
            goal=[_ref("Goal", f"{pid}-goal-{n}") for n in (1, 2, 3, 4)],
        ),
        plan.section(
            "crisis-plan",
            "Signs I'm getting unwell: I stop replying to texts, skip meals and insulin, and"
            " stay up all night. What helps: my ten-minutes list (music, cold water, walk"
            " Bella), Mum sitting with me, not being lectured. Who to call: Mum, then NHS 111"
            " (mental health option), then 999 if I'm in danger. If I'm too unwell to decide:"
            " Mum and Sam know what I want. Decided in advance: the shared care record may"
            " not open my record in an emergency; I want people to talk to me or to Mum.",
        ),
        plan.section(
            "risk-assessment",
            "We talked about risks together and I've read what is written. It's fair.",
            supportingInfo=[_ref("RiskAssessment", f"{pid}-risk")],
        ),
        _consent(
            "millie-consent-voluntary",
            pid,
            _days_ago(today, 200),
            {
                "actor": _actor(ALLIANCE),
                "action": _ACCESS,
                "provision": [
                    {"type": "permit", "class": _PATIENT_CLASS},
                    {"type": "permit", "code": _sections(PLAN_CODE, *voluntary_sections)},
                    {"type": "deny", "code": _sections("risk-assessment", "crisis-plan")},
                ],
            },
            "Voluntary organisations in the B&NES alliance (such as Bath Mind, Citizens"
            " Advice and the Recovery College) may see my details and my plan, so they can"
            " help me.",
            "They may not see my risk assessment or my crisis plan.",
        ),
        _consent(
            "millie-consent-gp",
            pid,
            _days_ago(today, 200),
            {
                "type": "deny",
                "actor": _actor(GP),
                "action": _ACCESS,
                "provision": [{"type": "permit", "code": _sections("transfer")}],
            },
            "My GP practice may not read my care plan in advance.",
            "My GP may be told about my move between services.",
        ),
        _consent(
            "millie-advance-decision",
            pid,
            _days_ago(today, 200),
            {"type": "deny", "actor": _actor(ICR), "action": _ACCESS, "purpose": _EMERGENCY},
            "Decided in advance: in an emergency, the B&NES Integrated Care Record may not"
            " open my record. People should talk to me, or to my mum.",
        ),
        _consent(
            "millie-consent-service-b",
            pid,
            intro_week.start.isoformat(),
            {
                "type": "permit",
                "period": {"start": intro_week.start.isoformat()},
                "actor": _actor(SERVICE_B),
                "action": _ACCESS,
            },
            "Agreed in my introduction week: Pardeep's team, the Primary Care Liaison"
            " Service, may see my plan from now on, so I don't have to tell my story again.",
        ),
    ]


# ----------------------------------------------------------------------------- Richard


def _richard(today: date) -> list[dict]:
    pid = "richard"
    start = _days_ago(today, 150)
    plan = _Plan(pid, "Richard", "john-hughes", start)
    return [
        _patient(
            today,
            pid,
            "Richard",
            "Cole",
            "male",
            37,
            200,
            "Bath",
            telecom=[_phone("07700 900201", "mobile")],
        ),
        _care_team(
            pid,
            "Richard's care team",
            [
                ("Me", _ref("Patient", pid)),
                ("Care coordinator", _staff("john-hughes")),
                ("GP", _staff("helen-morgan")),
                ("Benefits and work advice", _org(CITIZENS_ADVICE)),
            ],
        ),
        _goal(
            pid,
            1,
            "Get back into work, something outdoors with a team, like groundworks.",
            start,
            ("Work", 7),
        ),
        _goal(
            pid,
            2,
            "Sleep through more nights than not, without the nightmares running the show.",
            start,
            ("Managing mental health", 6),
        ),
        _goal(
            pid,
            3,
            "See people again: the veterans' breakfast club once a fortnight.",
            start,
            ("Social networks", 6),
        ),
        _goal(pid, 4, "Cut down to five cigarettes a day by my birthday.", start),
        _risk(
            pid,
            _days_ago(today, 45),
            "john-hughes",
            "Becoming isolated and low after bad nights",
            "low",
            "Richard has had flashbacks and poor sleep since leaving the army; he has no"
            " history of harming himself or others.",
            "Weekly contact with John; Richard knows the veterans' mental health service and"
            " NHS 111 mental health option; he will tell John if nights get worse.",
            "Read and agreed with Richard, out loud, because he prefers talking to reading.",
        ),
        plan.parent(
            "My plan with John. I'd rather talk it through than read it, so John goes over"
            " it with me each time."
        ),
        plan.section(
            "about-me",
            "I'm Richard, 37, ex-army, living in Bath. The GP thinks it might be PTSD. I'm"
            " fit, I smoke, I'm not working at the moment and I don't see many people. I'm"
            " dyslexic, so phone me or see me; please don't send me long letters.",
        ),
        plan.section(
            "daily-activities",
            "A routine keeps me steady, especially mornings.",
            [
                ("Run along the canal towpath", "Every morning, early"),
                ("Job club", "Tuesday mornings"),
                ("Veterans' breakfast club", "Every other Saturday"),
            ],
        ),
        plan.section(
            "contact-plan",
            "John phones me every Monday morning and we meet face to face every other week,"
            " at a café or a private room at the team base, agreed beforehand. Never just"
            " turn up at the flat.",
        ),
        plan.section(
            "education-training",
            "I'd like my CSCS card and a groundworks course. Citizens Advice are helping me with the forms.",
        ),
        plan.section(
            "strengths-community",
            "I'm reliable, practical and calm when other people panic. I'm good at fixing"
            " bikes and I help a neighbour with his allotment.",
        ),
        plan.section(
            "recovery-goals",
            "My goals, in my own words.",
            goal=[_ref("Goal", f"{pid}-goal-{n}") for n in (1, 2, 3, 4)],
        ),
        plan.section(
            "crisis-plan",
            "If the nightmares take over for days, I stop eating and go quiet. Then: ring"
            " John, or out of hours NHS 111 and choose the mental health option. A long"
            " walk and not being crowded help me.",
        ),
        plan.section(
            "risk-assessment",
            "We went through the risks together. I agree with what's written.",
            supportingInfo=[_ref("RiskAssessment", f"{pid}-risk")],
        ),
        _consent(
            "richard-consent-citizens-advice",
            pid,
            _days_ago(today, 140),
            _share_with(
                CITIZENS_ADVICE,
                (
                    "about-me",
                    "daily-activities",
                    "education-training",
                    "strengths-community",
                    "recovery-goals",
                ),
            ),
            "Citizens Advice Bath & North East Somerset may see my details and the parts of"
            " my plan about me, my week, training, strengths and goals, so they can help with"
            " work and benefits. Nobody else outside my team.",
        ),
    ]


# ------------------------------------------------------------------------------- Jenny


def _jenny(today: date) -> list[dict]:
    pid = "jenny"
    start = _days_ago(today, 60)
    plan = _Plan(pid, "Jenny", "john-hughes", start)
    return [
        _patient(
            today,
            pid,
            "Jenny",
            "Marsh",
            "female",
            41,
            45,
            "Chew Magna",
            telecom=[_phone("07700 900301", "mobile")],
        ),
        _related(pid + "-sister", pid, "SIS", "Sister", "Sue", "Marsh", "07700 900302"),
        _care_team(
            pid,
            "Jenny's care team",
            [
                ("Me", _ref("Patient", pid)),
                ("Care coordinator", _staff("john-hughes")),
                ("GP", _staff("helen-morgan")),
                ("Courses", _org(RECOVERY_COLLEGE)),
            ],
        ),
        _goal(
            pid,
            1,
            "A place of my own back in Midsomer Norton, near my sister and my friends.",
            start,
            ("Responsibilities", 7),
        ),
        _goal(
            pid,
            2,
            "Do a course at the Recovery College and finish it this time.",
            start,
            ("Trust and hope", 6),
        ),
        _goal(pid, 3, "Walk more, and smoke less when I'm bored.", start),
        plan.parent(
            "My plan with John. I stopped coming to appointments years ago because nobody"
            " asked what I wanted. This time it starts with what I want."
        ),
        plan.section(
            "about-me",
            "I'm Jenny, 41. I'm in temporary accommodation in the Chew Valley, miles from"
            " everyone I know; my family and friends are in Midsomer Norton. I was unwell"
            " some years ago. My work coach helped me come back to the team.",
        ),
        plan.section(
            "daily-activities",
            "Buses are few out here, so my week is built around them.",
            [
                ("Work coach appointment", "Every other Wednesday"),
                ("Bus to Midsomer Norton to see Sue", "Saturdays"),
                ("Walk round the lake", "Whenever it's dry"),
            ],
        ),
        plan.section(
            "contact-plan",
            "John phones on Thursdays. We meet in a private room in the village hall, booked"
            " in advance, because visitors at the hostel get noticed.",
        ),
        plan.section(
            "family-relationships",
            "Sue is my sister and my rock. She can be told how I'm doing if I've said so that week.",
            supportingInfo=[_ref("RelatedPerson", pid + "-sister")],
        ),
        plan.section(
            "education-training",
            "I'd like to start the Recovery College's 'Building confidence' course, and one"
            " day train as a teaching assistant.",
        ),
        plan.section(
            "strengths-community",
            "I'm a good listener and a good cook. The village agent told me about a lunch"
            " club where I could help.",
        ),
        plan.section(
            "recovery-goals",
            "My goals, in my own words.",
            goal=[_ref("Goal", f"{pid}-goal-{n}") for n in (1, 2, 3)],
        ),
        _consent(
            "jenny-consent-recovery-college",
            pid,
            _days_ago(today, 50),
            _share_with(
                RECOVERY_COLLEGE,
                ("about-me", "education-training", "strengths-community", "recovery-goals"),
            ),
            "The B&NES Recovery College may see my details and the parts of my plan about"
            " me, learning, strengths and goals, so they can find the right course for me.",
        ),
    ]


# ------------------------------------------------------------------------------ George


def _george(today: date) -> list[dict]:
    pid = "george"
    start = _days_ago(today, 90)
    plan = _Plan(pid, "George", "john-hughes", start, cpa=False)
    return [
        _patient(today, pid, "George", "Davies", "male", 78, 300, "Radstock"),
        _related(pid + "-wife", pid, "WIFE", "Wife", "Margaret", "Davies", "07700 900402"),
        _care_team(
            pid,
            "George's care team",
            [
                ("Me", _ref("Patient", pid)),
                ("Care coordinator", _staff("john-hughes")),
                ("GP", _staff("helen-morgan")),
                ("My wife, Margaret", _ref("RelatedPerson", pid + "-wife", "Margaret")),
            ],
        ),
        plan.parent(
            "My plan with John. My chest and my mood are tangled up together, and I look after Margaret too."
        ),
        plan.section(
            "about-me",
            "I'm George, 78, from Radstock. I've a lung condition and I don't always take my"
            " inhalers like I should. I've been feeling low. I look after my wife, Margaret,"
            " and I'm worried she might be getting dementia.",
        ),
        plan.section(
            "medication-agreement",
            "Too many tablets and inhalers at too many times. We agreed: the pharmacist will"
            " put my tablets in a weekly pack, the inhalers stay by the kettle, and nobody"
            " changes a dose without going through it with me first.",
        ),
        plan.section(
            "family-relationships",
            "Margaret and I have been married 52 years. I want help for her too, and I want"
            " her to be asked, not told.",
            supportingInfo=[_ref("RelatedPerson", pid + "-wife")],
        ),
        plan.section(
            "contact-plan",
            "John visits at home every fortnight, in the morning when I've more puff. Phone"
            " the landline, I don't do texts.",
        ),
        _consent(
            "george-consent-icr",
            pid,
            _days_ago(today, 80),
            _share_with(ICR, ("medication-agreement",)),
            "The B&NES Integrated Care Record may see my details and my medication agreement,"
            " so everyone who sees me knows what I take. Nothing else.",
        ),
    ]


# --------------------------------------------------------------------------------- Ava


def _ava(today: date) -> list[dict]:
    pid = "ava"
    start = _days_ago(today, 30)
    plan = _Plan(pid, "Ava", "sam-patel", start, cpa=False)
    return [
        _patient(today, pid, "Ava", "Thompson", "female", 83, 10, "Midsomer Norton"),
        _related(pid + "-daughter", pid, "DAU", "Daughter", "Claire", "Bennett", "07700 900502"),
        _care_team(
            pid,
            "Ava's care team",
            [
                ("Me", _ref("Patient", pid)),
                ("Care coordinator", _staff("sam-patel")),
                ("GP", _staff("helen-morgan")),
                ("My daughter, Claire", _ref("RelatedPerson", pid + "-daughter", "Claire")),
            ],
        ),
        plan.parent("Written with Ava and her daughter Claire, in Ava's words where she could give them."),
        plan.section(
            "about-me",
            "I'm Ava. I've lived in Midsomer Norton all my married life. My memory isn't what"
            " it was. Some nights I see things that frighten me and I can't sleep. Claire"
            " and her family have moved in for now, which I'm glad of.",
        ),
        plan.section(
            "family-relationships",
            "Claire is my daughter. She can speak with my team about how I am and about care"
            " for later on; I'd like to be there when they talk about where I'll live.",
            supportingInfo=[_ref("RelatedPerson", pid + "-daughter")],
        ),
        plan.section(
            "daily-activities",
            "The same things at the same times help me settle.",
            [
                ("Breakfast and the radio", "Every morning"),
                ("A short walk to the shops with Claire", "Most afternoons"),
                ("Warm milk, lamp left on, curtains closed before dark", "Every evening"),
            ],
        ),
    ]


# --------------------------------------------------------------------------------- Zoe


def _zoe(today: date) -> list[dict]:
    pid = "zoe"
    start = _days_ago(today, 14)
    plan = _Plan(pid, "Zoe", "sam-patel", start)
    due = today + timedelta(weeks=18)  # 22 weeks pregnant today
    due_words = f"{due.strftime('%B')} {due.year}"
    return [
        _patient(
            today,
            pid,
            "Zoe",
            "Clarke",
            "female",
            26,
            150,
            "Bath",
            telecom=[_phone("07700 900601", "mobile")],
        ),
        _care_team(
            pid,
            "Zoe's care team",
            [
                ("Me", _ref("Patient", pid)),
                ("Care coordinator", _staff("sam-patel")),
                ("GP", _staff("helen-morgan")),
                ("Peer support for parents", _org(BATH_MIND)),
            ],
        ),
        _goal(
            pid,
            1,
            "Stay well through the pregnancy and the first months with my baby.",
            start,
            ("Managing mental health", 8),
            due.isoformat(),
        ),
        _goal(
            pid,
            2,
            "Have a plan I've agreed for the birth and the weeks after, so no-one"
            " decides for me when I'm tired.",
            start,
        ),
        _risk(
            pid,
            _days_ago(today, 14),
            "sam-patel",
            "Becoming unwell (high or low mood) in late pregnancy or after the birth",
            "moderate",
            "Zoe has a history of bipolar affective disorder and is feeling low and stressed at 22 weeks.",
            "Weekly contact, a medication review with Zoe, her midwife kept in the loop with"
            " Zoe's agreement, and a crisis plan she wrote herself.",
            "Discussed openly with Zoe; she wanted it written down so she knows what people"
            " are watching for.",
        ),
        plan.parent("My plan with Sam for the pregnancy and after."),
        plan.section(
            "about-me",
            f"I'm Zoe, 26, from Bath. I'm 22 weeks pregnant, due in {due_words}. I've had"
            " bipolar disorder since I was 19. I've been low and stressed lately and my"
            " midwife asked the team to see me.",
        ),
        plan.section(
            "contact-plan",
            "Sam phones on Wednesdays and visits every other week, at home, after my midwife appointments.",
        ),
        plan.section(
            "medication-agreement",
            "Any change to my medication while I'm pregnant or breastfeeding is talked"
            " through with me, my midwife and the psychiatrist together, with the pros and"
            " cons written down for me to take home. I decide.",
        ),
        plan.section(
            "crisis-plan",
            "Signs: not sleeping for two nights, talking fast, spending money. Then: ring Sam"
            " or NHS 111 mental health option, and tell my midwife. My partner knows this"
            " plan.",
        ),
        plan.section(
            "recovery-goals",
            "My goals, in my own words.",
            goal=[_ref("Goal", f"{pid}-goal-{n}") for n in (1, 2)],
        ),
        plan.section(
            "risk-assessment",
            "We talked about the risks together. I asked for it to be written down.",
            supportingInfo=[_ref("RiskAssessment", f"{pid}-risk")],
        ),
        _consent(
            "zoe-consent-bath-mind",
            pid,
            _days_ago(today, 10),
            _share_with(BATH_MIND, ("about-me", "recovery-goals")),
            "Bath Mind may see my details, the 'about me' part of my plan and my goals, so"
            " their parents' peer group knows a bit about me before I go.",
        ),
    ]


# -------------------------------------------------------------------------------- Fred


def _fred(today: date) -> list[dict]:
    pid = "fred"
    start = _days_ago(today, 45)
    plan = _Plan(pid, "Fred", "john-hughes", start, cpa=False)
    return [
        _patient(today, pid, "Fred", "Wilson", "male", 75, 230, "Peasedown St John"),
        _related(pid + "-wife", pid, "WIFE", "Wife", "Jean", "Wilson", "07700 900702"),
        _care_team(
            pid,
            "Fred's care team",
            [
                ("Me", _ref("Patient", pid)),
                ("Care coordinator", _staff("john-hughes")),
                ("GP", _staff("helen-morgan")),
                ("My wife and carer, Jean", _ref("RelatedPerson", pid + "-wife", "Jean")),
            ],
        ),
        plan.parent(
            "Written with Fred and Jean. Jean has been caring for Fred on her own and her own"
            " health is suffering; this plan is for both of them."
        ),
        plan.section(
            "about-me",
            "I'm Fred, 75. I was a postman for forty years. I have dementia. Afternoons and"
            " early evenings are hard: I get restless and cross, and I don't always know why.",
        ),
        plan.section(
            "daily-activities",
            "Keeping busy in the afternoon helps.",
            [
                ("Walk to the post box and the paper shop", "Every morning"),
                ("Day centre, sorting and music", "Tuesday and Thursday afternoons"),
                ("Tea, then jobs in the shed with the radio on", "Late afternoons"),
            ],
        ),
        plan.section(
            "family-relationships",
            "Jean is my wife and has looked after me on her own. She needs help now and a"
            " break; she should be asked what she needs too.",
            supportingInfo=[_ref("RelatedPerson", pid + "-wife")],
        ),
        plan.section(
            "contact-plan",
            "John visits at home on Monday mornings, when I'm at my best, and phones Jean on Thursdays.",
        ),
    ]
