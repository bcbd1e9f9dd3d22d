"""A person's sharing choices <-> one patient-privacy Consent, and what they then allow."""

from __future__ import annotations

import copy

import pytest
from consent_world import (
    ALLIANCE,
    ICR,
    KEYNSHAM_GP,
    MILLIE,
    NOW,
    bath_mind,
    citizens_advice,
    facts,
    goal,
    icr,
    keynsham_gp,
    patient_resource,
    risk_assessment,
    section,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from carebridge.consent.choices import (
    SECTION_CODES,
    choice_problems,
    choices_to_consent,
    consent_to_choices,
    validate_choices,
)
from carebridge.consent.decide import decide
from carebridge.consent.validate import check_consent

# "Sharing care records online with the voluntary sector is a YES" and "sharing ...
# in advance with clinicians is a NO" (seeds/000, sections 2 and 4).
VOLUNTARY_YES_CLINICIANS_NO = {
    "patient": MILLIE,
    "dateTime": "2026-05-03T10:00:00Z",
    "recordedBy": "Practitioner/sam",
    "present": ["Practitioner/sam"],
    "shares": [
        {"recipient": ALLIANCE, "allow": True, "sections": "all"},
        {"recipient": KEYNSHAM_GP, "allow": False, "sections": "all"},
        {"recipient": ICR, "allow": False, "sections": "all"},
    ],
    "crisis": [],
}


def millie(choices: dict):
    return facts(choices_to_consent(choices, "millie-choices"))


class TestSeedPhrase:
    def test_voluntary_sector_yes(self):
        f = millie(VOLUNTARY_YES_CLINICIANS_NO)
        for req in (bath_mind(), citizens_advice()):
            for resource in (section("daily-activities"), goal(), patient_resource()):
                d = decide(req, resource, f, NOW)
                assert d.permit and d.consents == ("Consent/millie-choices",)
                assert d.provisions == ("Consent/millie-choices#provision.provision[0]",)

    def test_clinicians_in_advance_no(self):
        f = millie(VOLUNTARY_YES_CLINICIANS_NO)
        for req in (keynsham_gp(), icr()):
            d = decide(req, section("daily-activities"), f, NOW)
            assert not d.permit and d.basis == "denied"

    def test_an_ordinary_no_can_still_be_overridden_in_an_emergency(self):
        f = millie(VOLUNTARY_YES_CLINICIANS_NO)
        req = keynsham_gp(purpose="ETREAT", break_glass_reason="collapsed at the surgery")
        d = decide(req, section("crisis-plan"), f, NOW)
        assert d.permit and d.basis == "break-glass"

    def test_a_crisis_no_is_an_advance_decision(self):
        choices = copy.deepcopy(VOLUNTARY_YES_CLINICIANS_NO)
        choices["crisis"] = [{"recipient": KEYNSHAM_GP, "allow": False, "sections": "all"}]
        req = keynsham_gp(purpose="ETREAT", break_glass_reason="collapsed at the surgery")
        d = decide(req, section("crisis-plan"), millie(choices), NOW)
        assert not d.permit and d.basis == "advance-decision"
        assert d.provisions == ("Consent/millie-choices#provision.provision[3]",)


class TestMapping:
    def test_consent_shape(self):
        c = choices_to_consent({
            "patient": MILLIE,
            "shares": [{"recipient": "Organization/bath-mind", "allow": True,
                        "sections": ["daily-activities", "recovery-goals"],
                        "from": "2026-05-03", "until": "2027-05-03"}],
        }, "c1")
        assert c["resourceType"] == "Consent" and c["id"] == "c1"
        assert c["status"] == "active"
        assert c["scope"]["coding"][0]["code"] == "patient-privacy"
        assert c["patient"] == {"reference": MILLIE}
        root = c["provision"]
        assert "type" not in root  # default deny comes from rule 5, see choices.py
        [child] = root["provision"]
        assert child["type"] == "permit"
        assert child["actor"][0]["reference"] == {"reference": "Organization/bath-mind"}
        assert [cc["coding"][0]["code"] for cc in child["code"]] == [
            "daily-activities", "recovery-goals"]
        assert child["period"] == {"start": "2026-05-03", "end": "2027-05-03"}
        assert check_consent(c, lambda ref: True) == []

    def test_sharing_some_sections_shares_only_those(self):
        f = millie({"patient": MILLIE, "shares": [
            {"recipient": ALLIANCE, "allow": True,
             "sections": ["daily-activities", "recovery-goals"]}]})
        assert decide(bath_mind(), section("daily-activities"), f, NOW).permit
        assert decide(bath_mind(), goal(), f, NOW).permit
        assert not decide(bath_mind(), risk_assessment(), f, NOW).permit
        assert not decide(bath_mind(), section("plan"), f, NOW).permit  # parent plan: no
        assert not decide(bath_mind(), patient_resource(), f, NOW).permit

    def test_the_parent_plan_is_shared_only_when_asked_for(self):
        f = millie({"patient": MILLIE, "shares": [
            {"recipient": ALLIANCE, "allow": True, "sections": ["plan", "daily-activities"]}]})
        assert decide(bath_mind(), section("plan"), f, NOW).permit

    def test_include_demographics_shares_the_patient_resource(self):
        f = millie({"patient": MILLIE, "shares": [
            {"recipient": ALLIANCE, "allow": True, "sections": ["about-me"],
             "includeDemographics": True}]})
        d = decide(bath_mind(), patient_resource(), f, NOW)
        assert d.permit
        assert d.provisions == ("Consent/millie-choices#provision.provision[1]",)

    def test_types_narrow_a_share(self):
        f = millie({"patient": MILLIE, "shares": [
            {"recipient": ALLIANCE, "allow": True, "types": ["Goal"]}]})
        assert decide(bath_mind(), goal(), f, NOW).permit
        assert not decide(bath_mind(), section("recovery-goals"), f, NOW).permit

    def test_a_no_for_some_sections_beats_a_yes_for_all(self):
        f = millie({"patient": MILLIE, "shares": [
            {"recipient": ALLIANCE, "allow": True, "sections": "all"},
            {"recipient": "Organization/bath-mind", "allow": False,
             "sections": ["risk-assessment"]}]})
        assert not decide(bath_mind(), risk_assessment(), f, NOW).permit
        assert decide(citizens_advice(), risk_assessment(), f, NOW).permit

    def test_dates_limit_a_share(self):
        f = millie({"patient": MILLIE, "shares": [
            {"recipient": ALLIANCE, "allow": True, "from": "2026-05-03", "until": "2026-05-31"}]})
        assert not decide(bath_mind(), goal(), f, NOW).permit

    def test_no_choices_makes_a_consent_that_never_answers(self):
        c = choices_to_consent({"patient": MILLIE})
        assert "provision" not in c
        assert consent_to_choices(c) == {"patient": MILLIE, "shares": [], "crisis": []}


class TestRoundTrip:
    def test_seed_phrase_round_trips(self):
        c = choices_to_consent(VOLUNTARY_YES_CLINICIANS_NO, "millie-choices")
        assert consent_to_choices(c) == VOLUNTARY_YES_CLINICIANS_NO

    def test_full_example_round_trips(self):
        choices = {
            "patient": MILLIE,
            "dateTime": "2026-05-03T10:00:00Z",
            "recordedBy": "Practitioner/sam",
            "present": ["Practitioner/sam", "RelatedPerson/millie-mum"],
            "shares": [
                {"recipient": "Organization/bath-mind", "allow": True,
                 "sections": ["daily-activities", "recovery-goals"], "types": ["CarePlan"],
                 "includeDemographics": True, "from": "2026-05-03", "until": "2027-05-03"},
            ],
            "crisis": [{"recipient": "Organization/awp-crisis", "allow": False,
                        "sections": "all", "includeDemographics": True}],
        }
        assert consent_to_choices(choices_to_consent(choices)) == choices

    def test_a_consent_that_says_more_than_choices_is_refused(self):
        c = choices_to_consent(VOLUNTARY_YES_CLINICIANS_NO)
        c["provision"]["provision"][0]["provision"] = [{"type": "deny"}]
        with pytest.raises(ValueError, match="cannot be shown as simple sharing choices"):
            consent_to_choices(c)
        c = choices_to_consent(VOLUNTARY_YES_CLINICIANS_NO)
        c["provision"]["type"] = "permit"
        with pytest.raises(ValueError, match="top-level rule"):
            consent_to_choices(c)

    @settings(max_examples=150, deadline=None)
    @given(st.data())
    def test_any_valid_choices_round_trip(self, data):
        def entry() -> st.SearchStrategy:
            return st.fixed_dictionaries(
                {"recipient": st.sampled_from([ALLIANCE, KEYNSHAM_GP, "Practitioner/sam"]),
                 "allow": st.booleans(),
                 "sections": st.one_of(st.just("all"), st.lists(
                     st.sampled_from(SECTION_CODES), min_size=1, max_size=4, unique=True))},
                optional={"types": st.lists(st.sampled_from(["Goal", "CarePlan", "Patient"]),
                                            min_size=1, max_size=2, unique=True),
                          "includeDemographics": st.just(True),
                          "from": st.just("2026-05-03"), "until": st.just("2027-05-03")})

        choices = {"patient": MILLIE,
                   "shares": data.draw(st.lists(entry(), max_size=4)),
                   "crisis": data.draw(st.lists(entry(), max_size=2))}
        assert consent_to_choices(choices_to_consent(choices)) == choices


class TestValidation:
    def test_good_choices_pass(self):
        validate_choices(VOLUNTARY_YES_CLINICIANS_NO)

    @pytest.mark.parametrize("bad, message", [
        ({"shares": []}, "patient: say whose choices these are"),
        ({"patient": "millie"}, "patient: say whose choices these are"),
        ({"patient": MILLIE, "shares": [{"recipient": ALLIANCE}]},
         "shares[0].allow: say true (yes, share) or false (no)"),
        ({"patient": MILLIE, "shares": [{"recipient": MILLIE, "allow": True}]},
         "shares[0].recipient: name who it is about"),
        ({"patient": MILLIE, "shares": [{"recipient": ALLIANCE, "allow": True,
                                         "sections": ["risks"]}]},
         "shares[0].sections: 'risks' is not a care-plan section"),
        ({"patient": MILLIE, "crisis": [{"recipient": ALLIANCE, "allow": False,
                                         "until": "next year"}]},
         "crisis[0].until: a date such as 2026-05-03"),
        ({"patient": MILLIE, "shares": [{"recipient": ALLIANCE, "allow": True,
                                         "from": "2027-01-01", "until": "2026-01-01"}]},
         "shares[0]: 'until' is before 'from'"),
        ({"patient": MILLIE, "shares": [{"recipient": ALLIANCE, "allow": True,
                                         "untill": "2027-01-01"}]},
         "shares[0]: 'untill' is not part of a choice"),
        ({"patient": MILLIE, "sharing": []}, "'sharing' is not part of sharing choices"),
    ])
    def test_bad_choices_are_explained(self, bad, message):
        with pytest.raises(ValueError) as err:
            validate_choices(bad)
        assert message in str(err.value)
        with pytest.raises(ValueError):
            choices_to_consent(bad)

    def test_all_problems_are_listed(self):
        bad = {"patient": "x", "shares": [{"recipient": "x", "allow": "yes"}]}
        assert len(choice_problems(bad)) == 3
