"""The demo world (CONTRACTS.md section 8): the seed's people, their plans and their choices."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import nhs_number
import pytest
from fhir.resources.R4B import get_fhir_model_class

from carebridge.mappings.demo_world import NHS_NUMBERS, DemoWorld, build_demo_world
from carebridge.mappings.handover import weekly_owners
from carebridge.mappings.vocabulary import (
    NHS_NUMBER_SYSTEM,
    PARTNER_KINDS,
    PLAN_CODE,
    SECTION_SYSTEM,
    SECTIONS,
)

TODAY = date(2025, 3, 12)
WORLD = build_demo_world(TODAY)
SECTION_TYPES = {"CarePlan", "Goal", "CareTeam", "RelatedPerson", "RiskAssessment", "Task"}
# Ages and home towns from the case studies in seeds/002_... (Fred's town is ours).
SEED_PEOPLE = {
    "millie": (18, "Keynsham"),
    "richard": (37, "Bath"),
    "jenny": (41, "Chew Magna"),
    "george": (78, "Radstock"),
    "ava": (83, "Midsomer Norton"),
    "zoe": (26, "Bath"),
    "fred": (75, "Peasedown St John"),
}


def _references(node: object) -> Iterator[str]:
    """Every Reference.reference anywhere inside a resource."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _section_tags(resource: dict) -> list[str]:
    tags = resource.get("meta", {}).get("tag", [])
    return [t["code"] for t in tags if t["system"] == SECTION_SYSTEM]


def _of(kind: str, world: DemoWorld = WORLD) -> list[dict]:
    return [r for r in world.resources if r["resourceType"] == kind]


def _key(r: dict) -> str:
    return f"{r['resourceType']}/{r['id']}"


# --------------------------------------------------------------------------- validity


@pytest.mark.parametrize("resource", WORLD.resources, ids=_key)
def test_every_demo_resource_is_valid_fhir_r4(resource: dict) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_every_resource_has_a_unique_client_id() -> None:
    keys = [_key(r) for r in WORLD.resources]
    assert len(keys) == len(set(keys))


def test_every_reference_points_at_the_world_or_a_partner_organization() -> None:
    known = {_key(r) for r in WORLD.resources}
    partner_orgs = {f"Organization/{p['id']}" for p in WORLD.partners if p["kind"] != "person"}
    for resource in WORLD.resources:
        for ref in _references(resource):
            assert ref in known | partner_orgs, f"{_key(resource)} -> {ref}"


def test_referenced_resources_come_first() -> None:
    # So a loader can write them in order and never meet a dangling reference.
    partner_orgs = {f"Organization/{p['id']}" for p in WORLD.partners if p["kind"] != "person"}
    seen: set[str] = set()
    for resource in WORLD.resources:
        for ref in _references(resource):
            assert ref in seen | partner_orgs, f"{_key(resource)} refers forward to {ref}"
        seen.add(_key(resource))


def test_the_world_is_the_same_for_the_same_day_and_moves_with_today() -> None:
    assert build_demo_world(TODAY).resources == WORLD.resources
    later = build_demo_world(TODAY + timedelta(days=30))
    assert [_key(r) for r in later.resources] == [_key(r) for r in WORLD.resources]


# --------------------------------------------------------------------------- partners


def test_partners_cover_every_kind_the_contract_names() -> None:
    for p in WORLD.partners:
        assert {"id", "name", "kind", "ods", "part_of", "patient", "scope"} <= set(p)
        assert set(p) - {"id", "name", "kind", "ods", "part_of", "patient", "scope"} <= {"mesh_mailbox"}
        assert p["kind"] in PARTNER_KINDS
    assert {p["kind"] for p in WORLD.partners} == set(PARTNER_KINDS)
    by_id = {p["id"]: p for p in WORLD.partners}
    assert by_id["awp"]["ods"] == "RVN"
    # Only the GP practice takes MESH: its notices go to a mailbox of the local MESH sandbox.
    assert {p["id"]: p["mesh_mailbox"] for p in WORLD.partners if "mesh_mailbox" in p} == {
        "keynsham-gp": "X26ABC2"
    }
    assert by_id["awp-bath-cmht"]["part_of"] == "awp"
    assert by_id["keynsham-gp"]["kind"] == "gp"
    assert by_id["banes-icr"]["kind"] == "icr"


def test_partner_organizations_are_left_to_the_server_but_the_umbrella_comes_first() -> None:
    partner_ids = {p["id"] for p in WORLD.partners}
    assert not [o for o in _of("Organization") if o["id"] in partner_ids]
    assert _key(WORLD.resources[0]) == "Organization/banes-voluntary-alliance"
    voluntary = [p for p in WORLD.partners if p["kind"] == "voluntary"]
    assert {p["id"] for p in voluntary} == {
        "bath-mind",
        "citizens-advice-banes",
        "recovery-college",
    }
    assert {p["part_of"] for p in voluntary} == {"banes-voluntary-alliance"}
    for p in WORLD.partners:
        if p["part_of"]:
            assert p["part_of"] in partner_ids or f"Organization/{p['part_of']}" in {
                _key(r) for r in WORLD.resources
            }


def test_the_person_partner_is_bound_to_millie() -> None:
    (person,) = [p for p in WORLD.partners if p["kind"] == "person"]
    assert person["id"] == "millie-app" and person["patient"] == "Patient/millie"
    assert all(p["patient"] is None for p in WORLD.partners if p["kind"] != "person")


# --------------------------------------------------------------------------- patients


def _mod11_check_digit(first_nine: str) -> int | None:
    """NHS number rule: weights 10..2, 11 - (sum mod 11); 11 means 0, 10 means invalid."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    return 0 if check == 11 else None if check == 10 else check


def test_nhs_numbers_are_valid_test_numbers() -> None:
    numbers = [
        i["value"] for p in _of("Patient") for i in p["identifier"] if i["system"] == NHS_NUMBER_SYSTEM
    ]
    assert sorted(numbers) == sorted(NHS_NUMBERS.values())
    assert len(set(numbers)) == len(numbers) == 7
    for number in numbers:
        assert len(number) == 10 and number.isdigit() and number.startswith("999")
        assert _mod11_check_digit(number[:9]) == int(number[9])
        assert nhs_number.is_valid(number)  # and the library the server uses agrees


def test_a_stem_whose_check_digit_would_be_ten_has_no_valid_number() -> None:
    # Why 999100002x is missing from the list.
    assert _mod11_check_digit("999100002") is None
    assert not any(nhs_number.is_valid(f"999100002{d}") for d in range(10))


@pytest.mark.parametrize("today", [TODAY, date(2024, 2, 29), date(2025, 1, 1), date(2025, 12, 31)])
def test_patients_are_the_seed_people_at_their_seed_ages(today: date) -> None:
    world = build_demo_world(today)
    patients = {p["id"]: p for p in _of("Patient", world)}
    assert set(patients) == set(SEED_PEOPLE)
    for pid, (age, town) in SEED_PEOPLE.items():
        born = date.fromisoformat(patients[pid]["birthDate"])
        had_birthday = (today.month, today.day) >= (born.month, born.day)
        assert today.year - born.year - (0 if had_birthday else 1) == age, pid
        assert patients[pid]["address"][0]["city"] == town


def test_every_patient_has_a_custodian_team_and_a_gp_practice() -> None:
    for patient in _of("Patient"):
        assert patient["managingOrganization"] == {"reference": "Organization/awp-bath-cmht"}
        assert patient["generalPractitioner"] == [{"reference": "Organization/keynsham-gp"}]


# ------------------------------------------------------------------------- care plans


def test_every_section_resource_carries_exactly_one_section_tag() -> None:
    for resource in WORLD.resources:
        tags = _section_tags(resource)
        if resource["resourceType"] in SECTION_TYPES:
            assert len(tags) == 1, _key(resource)
            assert tags[0] in SECTIONS or tags[0] == PLAN_CODE
        else:
            assert tags == [], _key(resource)


def _plan_sections(pid: str) -> set[str]:
    children = [c for c in _of("CarePlan") if c.get("partOf") == [{"reference": f"CarePlan/{pid}-plan"}]]
    return {_section_tags(c)[0] for c in children}


def test_millies_plan_has_every_section() -> None:
    assert _plan_sections("millie") == set(SECTIONS)


@pytest.mark.parametrize(
    ("pid", "minimum"), [("richard", 6), ("jenny", 6), ("george", 3), ("ava", 3), ("zoe", 5), ("fred", 3)]
)
def test_the_others_have_a_plan_with_real_sections(pid: str, minimum: int) -> None:
    assert len(_plan_sections(pid)) >= minimum
    assert "about-me" in _plan_sections(pid)


def test_parent_plans_are_mental_health_care_plans_owned_by_a_coordinator() -> None:
    parents = [c for c in _of("CarePlan") if _section_tags(c) == [PLAN_CODE]]
    assert {p["subject"]["reference"] for p in parents} == {f"Patient/{p}" for p in SEED_PEOPLE}
    for plan in parents:
        codes = {c["code"] for cat in plan["category"] for c in cat["coding"]}
        assert "718347000" in codes
        assert plan["status"] == "active" and plan["intent"] == "plan"
        assert plan["author"]["reference"].startswith("Practitioner/")
        assert plan["careTeam"][0]["reference"].startswith("CareTeam/")


def test_section_children_belong_to_their_persons_plan() -> None:
    for child in _of("CarePlan"):
        tag = _section_tags(child)[0]
        if tag == PLAN_CODE:
            continue
        pid = child["subject"]["reference"].removeprefix("Patient/")
        assert child["partOf"] == [{"reference": f"CarePlan/{pid}-plan"}]
        assert child["description"].strip()


def test_millies_contact_plan_is_the_one_people_asked_for() -> None:
    contact = WORLD.get("CarePlan/millie-contact-plan")["description"]
    for words in (
        "phone call on Tuesdays",
        "home visit monthly",
        "private place agreed in advance",
    ):
        assert words in contact


def test_recovery_goals_are_in_the_persons_own_words_with_recovery_star_targets() -> None:
    goals = _of("Goal")
    assert {g["subject"]["reference"] for g in goals} >= {"Patient/millie", "Patient/richard"}
    for goal in goals:
        assert goal["expressedBy"] == goal["subject"]
        assert goal["description"]["text"]
    targets = [t for g in goals for t in g.get("target", [])]
    assert any(t["measure"]["text"].startswith("Recovery Star") for t in targets)


def test_family_and_carers_are_related_people() -> None:
    relations = {r["id"]: r["relationship"][0]["coding"][0]["code"] for r in _of("RelatedPerson")}
    assert relations == {
        "millie-mum": "MTH",
        "jenny-sister": "SIS",
        "george-wife": "WIFE",
        "ava-daughter": "DAU",
        "fred-wife": "WIFE",
    }


def test_risk_assessments_are_final_and_in_plain_words() -> None:
    risks = {r["id"]: r for r in _of("RiskAssessment")}
    assert {"millie-risk", "richard-risk"} <= set(risks)
    for risk in risks.values():
        assert risk["status"] == "final" and risk["occurrenceDateTime"]
        assert risk["prediction"][0]["outcome"]["text"] and risk["mitigation"]


# --------------------------------------------------------------------------- transfer


def test_the_transfer_in_progress_matches_the_seed_table() -> None:
    parent = WORLD.get("Task/millie-transfer")
    assert parent["status"] == "in-progress"
    assert parent["requester"] == {"reference": "Organization/awp-bath-cmht"}
    assert parent["owner"] == {"reference": "Organization/awp-banes-pcls"}
    weeks = [t for t in _of("Task") if t.get("partOf") == [{"reference": "Task/millie-transfer"}]]
    side = {"Organization/awp-bath-cmht": "A", "Organization/awp-banes-pcls": "B"}
    assert [side[t["owner"]["reference"]] for t in weeks] == weekly_owners(8)
    # Today falls in week 4, the introduction week; the weeks before it are done.
    current = [
        t for t in weeks if t["executionPeriod"]["start"] <= TODAY.isoformat() <= t["executionPeriod"]["end"]
    ]
    assert [t["id"] for t in current] == ["millie-transfer-week-4"]
    assert [t["status"] for t in weeks] == ["completed"] * 3 + ["requested"] * 5
    assert "introduce Pardeep" in weeks[3]["description"]


def test_the_transfer_section_is_part_of_millies_plan() -> None:
    section = WORLD.get("CarePlan/millie-transfer-section")
    assert _section_tags(section) == ["transfer"]
    assert section["partOf"] == [{"reference": "CarePlan/millie-plan"}]
    assert len(section["activity"]) == 8


# --------------------------------------------------------------------------- consents
# A reading of CONTRACTS.md section 4 (rules 2-5 and the rule-6 test for an advance
# decision), limited to the criteria the demo consents use: enough to check that the
# consents say what the people said. The real engine lives in carebridge.consent.


@dataclass(frozen=True)
class _Request:
    org_chain: tuple[str, ...]  # the requester's Organization, then its partOf ancestors
    purpose: str = "TREAT"


VOLUNTARY = _Request(("Organization/bath-mind", "Organization/banes-voluntary-alliance"))
CITIZENS_ADVICE = _Request(("Organization/citizens-advice-banes", "Organization/banes-voluntary-alliance"))
COLLEGE = _Request(("Organization/recovery-college", "Organization/banes-voluntary-alliance"))
GP = _Request(("Organization/keynsham-gp",))
ICR_EMERGENCY = _Request(("Organization/banes-icr",), "ETREAT")
SERVICE_B = _Request(("Organization/awp-banes-pcls", "Organization/awp"))


def _codings(resource: dict) -> set[tuple[str, str]]:
    found = list(resource.get("meta", {}).get("tag", []))
    for cat in resource.get("category", []):
        found += cat.get("coding", [])
    code = resource.get("code")
    found += code.get("coding", []) if isinstance(code, dict) else []
    return {(c["system"], c["code"]) for c in found}


def _matches(provision: dict, request: _Request, resource: dict, now: date) -> bool:
    known = {"type", "provision", "actor", "action", "purpose", "class", "code", "period"}
    assert set(provision) <= known, f"criteria this test does not read: {set(provision) - known}"
    if "actor" in provision and not any(
        a["reference"]["reference"] in request.org_chain for a in provision["actor"]
    ):
        return False
    if "action" in provision and not any(
        c["code"] == "access" for a in provision["action"] for c in a["coding"]
    ):
        return False
    if "purpose" in provision and request.purpose not in {p["code"] for p in provision["purpose"]}:
        return False
    classes = {c["code"] for c in provision.get("class", [])}
    if classes and resource["resourceType"] not in classes:
        return False
    if "code" in provision and not _codings(resource) & {
        (c["system"], c["code"]) for cc in provision["code"] for c in cc["coding"]
    }:
        return False
    period = provision.get("period", {})
    return period.get("start", "0000") <= now.isoformat() <= period.get("end", "9999")


def _answer(provision: dict, request: _Request, resource: dict, now: date) -> str | None:
    if not _matches(provision, request, resource, now):
        return None
    answers = [
        a
        for child in provision.get("provision", [])
        if (a := _answer(child, request, resource, now)) is not None
    ]
    if answers:
        return "deny" if "deny" in answers else "permit"
    return provision.get("type")


def _patient_of(resource: dict) -> str:
    if resource["resourceType"] == "Patient":
        return f"Patient/{resource['id']}"
    for field in ("subject", "patient", "for"):
        if field in resource:
            return resource[field]["reference"]
    raise AssertionError(f"{_key(resource)} is in no patient compartment")


def _applicable(resource: dict, now: date) -> list[dict]:
    patient = _patient_of(resource)
    return [
        c
        for c in _of("Consent")
        if c["status"] == "active"
        and c["scope"]["coding"][0]["code"] == "patient-privacy"
        and c["patient"]["reference"] == patient
        and c["provision"].get("period", {}).get("start", "0000") <= now.isoformat()
    ]


def _decide(request: _Request, reference: str, now: date = TODAY) -> str:
    resource = WORLD.get(reference)
    answers = {_answer(c["provision"], request, resource, now) for c in _applicable(resource, now)}
    return "deny" if "deny" in answers else "permit" if "permit" in answers else "deny"


def test_consents_have_what_r4_requires() -> None:
    for consent in _of("Consent"):
        assert consent["status"] == "active"
        assert consent["category"][0]["coding"][0]["code"] == "59284-0"
        assert consent["policyRule"]["coding"][0]["code"] == "OPTIN"
        assert consent["text"]["div"].startswith("<div")  # what it means, in plain words


def test_millie_says_yes_to_the_voluntary_sector() -> None:
    for ref in (
        "Patient/millie",
        "CarePlan/millie-plan",
        "CarePlan/millie-daily-activities",
        "CarePlan/millie-contact-plan",
        "Goal/millie-goal-1",
        "CareTeam/millie-care-team",
        "RelatedPerson/millie-mum",
        "CarePlan/millie-transfer-section",
    ):
        assert _decide(VOLUNTARY, ref) == "permit", ref
        assert _decide(CITIZENS_ADVICE, ref) == "permit", ref


def test_millie_keeps_her_risk_assessment_and_crisis_plan_from_the_voluntary_sector() -> None:
    for ref in (
        "CarePlan/millie-risk-assessment",
        "RiskAssessment/millie-risk",
        "CarePlan/millie-crisis-plan",
    ):
        assert _decide(VOLUNTARY, ref) == "deny", ref


def test_millie_says_no_to_her_gp_in_advance_but_yes_to_news_of_her_transfer() -> None:
    for ref in (
        "Patient/millie",
        "CarePlan/millie-plan",
        "CarePlan/millie-about-me",
        "RiskAssessment/millie-risk",
    ):
        assert _decide(GP, ref) == "deny", ref
    assert _decide(GP, "CarePlan/millie-transfer-section") == "permit"


def test_millies_advance_decision_stops_the_icr_breaking_glass() -> None:
    # Rule 6: a deny provision that matches and itself states an actor and ETREAT.
    (decision,) = [
        c
        for c in _of("Consent")
        if c["patient"]["reference"] == "Patient/millie"
        and c["provision"].get("type") == "deny"
        and any(p["code"] == "ETREAT" for p in c["provision"].get("purpose", []))
    ]
    provision = decision["provision"]
    assert provision["actor"]
    assert _matches(provision, ICR_EMERGENCY, WORLD.get("Patient/millie"), TODAY)
    assert _decide(ICR_EMERGENCY, "CarePlan/millie-crisis-plan") == "deny"


def test_service_b_sees_millies_plan_only_from_the_introduction_week() -> None:
    intro = next(w for w in WORLD.transfer.plan if w.introduction)
    assert _decide(SERVICE_B, "CarePlan/millie-crisis-plan") == "permit"
    assert _decide(SERVICE_B, "CarePlan/millie-plan", intro.start - timedelta(days=1)) == "deny"


def test_richard_shares_with_citizens_advice_only() -> None:
    assert _decide(CITIZENS_ADVICE, "Patient/richard") == "permit"
    assert _decide(CITIZENS_ADVICE, "CarePlan/richard-education-training") == "permit"
    assert _decide(CITIZENS_ADVICE, "CarePlan/richard-crisis-plan") == "deny"
    for other in (VOLUNTARY, COLLEGE, GP):
        assert _decide(other, "CarePlan/richard-plan") == "deny"


def test_jenny_shares_with_the_recovery_college() -> None:
    assert _decide(COLLEGE, "CarePlan/jenny-education-training") == "permit"
    assert _decide(COLLEGE, "Goal/jenny-goal-2") == "permit"
    assert _decide(CITIZENS_ADVICE, "CarePlan/jenny-education-training") == "deny"


@pytest.mark.parametrize("pid", ["ava", "fred"])
def test_some_people_share_with_nobody(pid: str) -> None:
    assert not [c for c in _of("Consent") if c["patient"]["reference"] == f"Patient/{pid}"]
    for request in (VOLUNTARY, GP, ICR_EMERGENCY):
        assert _decide(request, f"CarePlan/{pid}-about-me") == "deny"
