"""check_consent: a Consent the engine cannot apply exactly is reported, in plain words."""

from __future__ import annotations

import pytest
from consent_world import ALLIANCE, BATH_MIND, KEYNSHAM_GP, MILLIE, consent, prov

from carebridge.consent.choices import choices_to_consent
from carebridge.consent.validate import check_consent

KNOWN = {MILLIE, ALLIANCE, BATH_MIND, KEYNSHAM_GP, "Practitioner/sam",
         "CareTeam/millie-team", "RelatedPerson/millie-mum"}


def resolves(ref: str) -> bool:
    return ref in KNOWN


def problems(c: dict) -> list[str]:
    return check_consent(c, resolves)


def test_a_well_formed_consent_has_no_problems():
    c = consent("c", prov(children=[
        prov("permit", actor=ALLIANCE, sections=["daily-activities"], purpose="TREAT",
             period={"start": "2026-05-03", "end": "2027-05-03"}),
        prov("deny", actor=[KEYNSHAM_GP, "Practitioner/sam"], cls="RiskAssessment",
             action=["access"], data_period={"start": "2026-01-01"},
             labels=[("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R")]),
        prov("deny", actor="Practitioner/sam", data="CarePlan/millie-crisis-plan"),
    ]))
    assert problems(c) == []


def test_a_consent_made_from_choices_has_no_problems():
    c = choices_to_consent({"patient": MILLIE, "shares": [
        {"recipient": ALLIANCE, "allow": True, "sections": ["about-me"],
         "includeDemographics": True, "from": "2026-05-03"}],
        "crisis": [{"recipient": KEYNSHAM_GP, "allow": False}]}, "c")
    assert problems(c) == []


def test_unknown_criterion_is_named_with_its_provision():
    c = consent("c", prov(children=[prov("permit"), prov("deny", actor=ALLIANCE)]))
    c["provision"]["provision"][1]["weekdays"] = ["tuesday"]
    assert problems(c) == [
        "Consent.provision.provision[1]: 'weekdays' is not something a consent rule can say; "
        "use actor, action, purpose, class, code, securityLabel, period, dataPeriod or data"
    ]


def test_actor_that_does_not_exist():
    c = consent("c", prov(children=[prov("permit"), prov("deny", actor="Organization/xyz")]))
    assert problems(c) == [
        "Consent.provision.provision[1].actor[0]: Organization/xyz does not exist; name an "
        "Organization or Practitioner that carebridge knows"
    ]


def test_actor_of_a_kind_that_cannot_receive_information():
    c = consent("c", prov("permit", actor=MILLIE))
    [msg] = problems(c)
    assert msg.startswith("Consent.provision.actor[0]: Patient/millie cannot receive")


def test_actor_without_a_reference():
    c = consent("c", prov("permit"))
    c["provision"]["actor"] = [{"role": {"text": "recipient"}}]
    [msg] = problems(c)
    assert msg.startswith("Consent.provision.actor[0]: has no reference")


def test_nested_provision_without_type_or_children():
    c = consent("c", prov(children=[prov(actor=ALLIANCE)]))
    [msg] = problems(c)
    assert msg.startswith("Consent.provision.provision[0]: has no type")
    assert "can never decide anything" in msg


def test_root_without_type_is_fine():
    assert problems(consent("c", prov(children=[prov("permit", actor=ALLIANCE)]))) == []


@pytest.mark.parametrize("bad", ["maybe", "PERMIT", "allow"])
def test_type_must_be_permit_or_deny(bad):
    c = consent("c", prov(children=[prov(bad)]))
    assert problems(c) == [f"Consent.provision.provision[0].type: {bad!r} must be permit or deny"]


def test_privacy_rules_need_the_patient_privacy_scope():
    c = consent("c", prov("permit", actor=ALLIANCE), scope="research")
    [msg] = problems(c)
    assert msg.startswith("Consent.scope:") and "patient-privacy" in msg


def test_other_scopes_without_rules_are_fine():
    assert problems(consent("c", None, scope="treatment")) == []


def test_missing_patient():
    c = consent("c", prov("permit", actor=ALLIANCE))
    del c["patient"]
    [msg] = problems(c)
    assert msg.startswith("Consent.patient: missing")


def test_patient_that_does_not_exist_or_is_not_a_patient():
    assert problems(consent("c", None, patient="Patient/nobody")) == [
        "Consent.patient: Patient/nobody does not exist"]
    [msg] = problems(consent("c", None, patient="Organization/awp"))
    assert "is not a reference to a Patient" in msg


def test_modifier_extensions_are_refused():
    c = consent("c", prov("permit", actor=ALLIANCE))
    c["provision"]["modifierExtension"] = [{"url": "http://x", "valueBoolean": True}]
    [msg] = problems(c)
    assert msg.startswith("Consent.provision.modifierExtension:")


def test_unreadable_and_back_to_front_periods():
    c = consent("c", prov(children=[
        prov("permit", period={"start": "3rd May"}),
        prov("permit", data_period={"start": "2027-01-01", "end": "2026-01-01"}),
    ]))
    assert problems(c) == [
        "Consent.provision.provision[0].period.start: '3rd May' is not a date (YYYY-MM-DD) "
        "or dateTime",
        "Consent.provision.provision[1].dataPeriod: ends before it starts",
    ]


def test_codes_need_a_system_and_a_code():
    c = consent("c", prov(children=[prov("permit")]))
    c["provision"]["provision"][0]["code"] = [{"coding": [{"code": "daily-activities"}]}]
    c["provision"]["provision"][0]["purpose"] = [{"system": "x"}]
    out = problems(c)
    assert any(m.startswith("Consent.provision.provision[0].code[0]: needs a coding with both")
               for m in out)
    assert any(m.startswith("Consent.provision.provision[0].purpose[0]: needs a code")
               for m in out)


def test_empty_and_non_list_criteria():
    c = consent("c", prov("permit"))
    c["provision"]["class"] = []
    c["provision"]["purpose"] = {"code": "TREAT"}
    out = problems(c)
    assert "Consent.provision.class: is empty; leave it out or list something" in out
    assert "Consent.provision.purpose: must be a list" in out


def test_data_must_name_a_resource():
    c = consent("c", prov("permit"))
    c["provision"]["data"] = [{"meaning": "instance", "reference": {"display": "my plan"}}]
    assert problems(c) == [
        "Consent.provision.data[0]: needs reference.reference naming one resource (Type/id)"]


def test_every_problem_is_reported_not_just_the_first():
    c = consent("c", prov(children=[prov("maybe", actor="Organization/xyz"), prov()]))
    assert len(problems(c)) == 3


def test_a_care_team_cannot_be_an_actor_because_it_never_makes_a_request():
    c = consent("c", prov("permit", actor="CareTeam/millie-team"))
    [msg] = problems(c)
    assert msg.startswith("Consent.provision.actor[0]: CareTeam/millie-team cannot receive")
