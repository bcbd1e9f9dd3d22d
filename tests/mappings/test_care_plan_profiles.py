"""The published care-plan model: its profiles (claiming UK Core where it has one), the
section CodeSystem and ValueSet; every resource the mappings produce conforms; and the
FHIRPath invariants, bindings and reference targets catch what fhir.resources does not."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from fhir.resources.R4B import get_fhir_model_class
from plan_world import SEED_PEOPLE, fhir_family, golden

from carebridge.mappings.demo_world import build_demo_world
from carebridge.mappings.plan_codes import PROFILES, SECTION_VALUESET
from carebridge.mappings.profile_check import check, profiles_for
from carebridge.mappings.published_model import published_model
from carebridge.mappings.vocabulary import PLAN_CODE, SECTION_SYSTEM, SECTIONS
from carebridge.server.validate import validate_resource

UK_CORE = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-"


def errors(resource: dict, *requested: str) -> list[str]:
    return [i.diagnostics for i in check(resource, requested) if i.severity == "error"]


def of_type(resources: list[dict], rtype: str) -> list[dict]:
    return [r for r in resources if r["resourceType"] == rtype]


@pytest.mark.parametrize("resource", published_model(), ids=lambda r: f"{r['resourceType']}/{r['id']}")
def test_the_published_model_is_valid_fhir_r4(resource: dict) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_profiles_claim_uk_core_where_it_has_a_profile_and_base_fhir_where_not() -> None:
    profiles = of_type(list(published_model()), "StructureDefinition")
    bases = {sd["type"]: sd["baseDefinition"] for sd in profiles}
    for rtype in ("CarePlan", "CareTeam", "Consent", "Task", "RelatedPerson"):
        assert bases[rtype] == f"{UK_CORE}{rtype}"
    # UK Core has no Goal or RiskAssessment profile.
    assert bases["Goal"] == "http://hl7.org/fhir/StructureDefinition/Goal"
    assert bases["RiskAssessment"] == "http://hl7.org/fhir/StructureDefinition/RiskAssessment"


def test_the_section_codesystem_and_valueset_hold_the_contracts_codes() -> None:
    by_url = {r["url"]: r for r in published_model() if r["resourceType"] != "StructureDefinition"}
    codes, valueset = by_url[SECTION_SYSTEM], by_url[SECTION_VALUESET]
    assert [c["code"] for c in codes["concept"]] == [PLAN_CODE, *SECTIONS]
    assert codes["content"] == "complete" and codes["valueSet"] == SECTION_VALUESET
    assert valueset["compose"]["include"] == [{"system": SECTION_SYSTEM}]


@pytest.mark.parametrize("name", SEED_PEOPLE)
def test_every_produced_resource_is_valid_and_conforms_to_the_published_profiles(name: str) -> None:
    for resource in fhir_family(golden(name)):
        validate_resource(resource)
        assert errors(resource) == [], resource["resourceType"]
        claimed = resource.get("meta", {}).get("profile", [])
        assert set(claimed) <= set(PROFILES.values())


def test_the_demo_worlds_plans_consents_and_transfer_conform_too() -> None:
    world = build_demo_world(date(2025, 3, 12))
    for resource in world.resources:
        assert errors(resource) == [], f"{resource['resourceType']}/{resource['id']}"
    for consent in of_type(world.resources, "Consent"):
        assert errors(consent, PROFILES["Consent"]) == []


def test_a_section_tagged_resource_is_checked_without_claiming_a_profile() -> None:
    section = copy.deepcopy(of_type(fhir_family(golden("jenny")), "CarePlan")[1])
    section["meta"].pop("profile")
    assert profiles_for(section) == [PROFILES["section"]]
    assert profiles_for({"resourceType": "CarePlan"}) == []


def test_a_section_code_outside_the_valueset_is_caught() -> None:
    section = copy.deepcopy(of_type(fhir_family(golden("jenny")), "CarePlan")[1])
    section["meta"]["tag"][0]["code"] = "hobbies"
    assert any("'hobbies' is not a code of" in e for e in errors(section))


def test_a_section_must_be_part_of_one_parent_plan_about_a_patient() -> None:
    section = copy.deepcopy(of_type(fhir_family(golden("jenny")), "CarePlan")[1])
    section.pop("partOf")
    section["subject"] = {"reference": "Group/ward-4"}
    found = errors(section)
    assert "CarePlan.partOf is required here (at least 1), but is missing" in found
    assert "CarePlan.subject refers to Group/ward-4, but must refer to Patient" in found


def test_a_parent_plan_must_be_a_mental_health_care_plan() -> None:
    parent = copy.deepcopy(of_type(fhir_family(golden("jenny")), "CarePlan")[0])
    parent["category"] = [{"text": "something else"}]
    assert any(e.startswith("cb-plan-1:") for e in errors(parent))


def test_a_recovery_star_score_above_ten_breaks_an_invariant() -> None:
    goal = copy.deepcopy(of_type(fhir_family(golden("richard")), "Goal")[0])
    goal["target"][0]["detailInteger"] = 12
    assert any(e.startswith("cb-goal-1:") for e in errors(goal))


def test_a_coded_activity_must_use_the_published_activity_codes() -> None:
    contact_plan = next(r for r in fhir_family(golden("zoe")) if r.get("title") == SECTIONS["contact-plan"])
    broken = copy.deepcopy(contact_plan)
    broken["activity"][0]["detail"]["code"]["coding"][0]["code"] = "carrier-pigeon"
    assert any("'carrier-pigeon' is not a code of" in e for e in errors(broken))


def test_a_consent_naming_a_care_team_as_actor_or_an_unknown_section_is_caught() -> None:
    consent = copy.deepcopy(of_type(build_demo_world(date(2025, 3, 12)).resources, "Consent")[0])
    consent["provision"]["actor"][0]["reference"] = {"reference": "CareTeam/millie-care-team"}
    diary = {"coding": [{"system": SECTION_SYSTEM, "code": "diary"}]}
    consent["provision"]["provision"][1]["code"].append(diary)
    found = errors(consent, PROFILES["Consent"])
    assert any(e.startswith("cb-consent-3:") for e in found)
    assert any(e.startswith("cb-consent-2:") for e in found)


def test_asking_for_a_profile_carebridge_does_not_publish_is_an_error() -> None:
    assert errors({"resourceType": "Goal"}, "https://example.org/StructureDefinition/nope") == [
        "carebridge does not publish the profile https://example.org/StructureDefinition/nope"
    ]
