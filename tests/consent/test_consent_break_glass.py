"""CONTRACTS.md section 4, rule 6: break-glass and advance decisions."""

from __future__ import annotations

import pytest
from consent_world import (
    ALLIANCE,
    AWP,
    ICR,
    KEYNSHAM_GP,
    NOW,
    awp,
    bath_mind,
    consent,
    facts,
    icr,
    keynsham_gp,
    person_app,
    prov,
    requester,
    risk_assessment,
    section,
    sirona,
)

from carebridge.consent.decide import decide

DAILY = section("daily-activities")
GP_NO = consent("gp-no", prov(children=[prov("deny", actor=KEYNSHAM_GP)]))
# "If I am in crisis, the GP practice must not see my plan": an advance decision.
GP_CRISIS_NO = consent(
    "gp-crisis-no",
    prov(children=[prov("deny", actor=KEYNSHAM_GP, purpose="ETREAT")]),
)


def emergency_gp(**kw) -> object:
    return keynsham_gp(purpose="ETREAT", break_glass_reason="unconscious at the surgery", **kw)


@pytest.mark.parametrize("make", [keynsham_gp, icr, sirona])
def test_break_glass_is_permitted_for_trust_gp_and_icr_with_no_consent(make):
    req = make(purpose="ETREAT", break_glass_reason="collapsed in A&E")
    d = decide(req, risk_assessment(), facts(), NOW)
    assert d.permit and d.basis == "break-glass" and d.break_glass
    assert d.consents == ()


def test_break_glass_overrides_an_ordinary_refusal():
    d = decide(emergency_gp(), DAILY, facts(GP_NO), NOW)
    assert d.permit and d.basis == "break-glass" and d.break_glass
    assert d.extra["overridden"] == ("Consent/gp-no",)
    assert "emergency" in d.reason and "unconscious at the surgery" in d.reason


def test_break_glass_is_blocked_by_an_advance_decision():
    d = decide(emergency_gp(), DAILY, facts(GP_CRISIS_NO), NOW)
    assert not d.permit and d.basis == "advance-decision" and not d.break_glass
    assert d.consents == ("Consent/gp-crisis-no",)
    assert d.provisions == ("Consent/gp-crisis-no#provision.provision[0]",)


def test_advance_decision_blocks_even_when_another_consent_is_silent():
    d = decide(emergency_gp(), DAILY, facts(GP_CRISIS_NO, GP_NO), NOW)
    assert d.basis == "advance-decision"


def test_advance_decision_about_someone_else_does_not_block():
    icr_crisis_no = consent("icr-no", prov(children=[prov("deny", actor=ICR, purpose="ETREAT")]))
    d = decide(emergency_gp(), DAILY, facts(icr_crisis_no), NOW)
    assert d.permit and d.basis == "break-glass"


def test_a_deny_with_etreat_but_no_actor_is_not_an_advance_decision():
    no_emergencies = consent("c", prov(children=[prov("deny", purpose="ETREAT")]))
    d = decide(emergency_gp(), DAILY, facts(no_emergencies), NOW)
    assert d.permit and d.basis == "break-glass"


def test_a_deny_with_an_actor_but_no_purpose_is_not_an_advance_decision():
    assert decide(emergency_gp(), DAILY, facts(GP_NO), NOW).permit


def test_advance_decision_only_covers_what_it_and_its_ancestors_match():
    risk_only = consent("c", prov(children=[
        prov(cls="RiskAssessment", children=[
            prov("deny", actor=KEYNSHAM_GP, purpose="ETREAT"),
        ]),
    ]))
    assert decide(emergency_gp(), risk_assessment(), facts(risk_only), NOW).basis \
        == "advance-decision"
    assert decide(emergency_gp(), DAILY, facts(risk_only), NOW).basis == "break-glass"


def test_advance_decision_whose_parent_does_not_match_does_not_block():
    c = consent("c", prov(children=[
        prov("permit", actor=ALLIANCE, children=[
            prov("deny", actor=KEYNSHAM_GP, purpose="ETREAT"),
        ]),
    ]))
    assert decide(emergency_gp(), DAILY, facts(c), NOW).basis == "break-glass"


def test_expired_advance_decision_does_not_block():
    c = consent("c", prov(children=[
        prov("deny", actor=KEYNSHAM_GP, purpose="ETREAT", period={"end": "2026-01-01"}),
    ]))
    assert decide(emergency_gp(), DAILY, facts(c), NOW).basis == "break-glass"


def test_advance_decision_in_an_inactive_consent_does_not_block():
    c = consent("c", GP_CRISIS_NO["provision"], status="inactive")
    assert decide(emergency_gp(), DAILY, facts(c), NOW).basis == "break-glass"


def test_advance_decision_blocks_even_where_a_nested_permit_answers_for_part():
    # The root refuses the GP in emergencies; a nested rule permits the crisis plan.
    c = consent("c", prov(children=[
        prov("deny", actor=KEYNSHAM_GP, purpose="ETREAT", children=[
            prov("permit", sections="crisis-plan"),
        ]),
    ]))
    crisis = section("crisis-plan")
    d = decide(emergency_gp(), crisis, facts(c), NOW)
    assert d.permit and d.basis == "consent" and d.break_glass  # rule 5 permits it
    assert decide(emergency_gp(), DAILY, facts(c), NOW).basis == "advance-decision"


def test_consent_that_permits_emergency_access_is_a_consent_permit_still_flagged():
    c = consent("c", prov(children=[prov("permit", actor=KEYNSHAM_GP, purpose="ETREAT")]))
    d = decide(emergency_gp(), DAILY, facts(c), NOW)
    assert d.permit and d.basis == "consent" and d.break_glass
    assert d.consents == ("Consent/c",)


def test_custodian_breaking_the_glass_is_still_plain_custodian_access():
    d = decide(awp(purpose="ETREAT", break_glass_reason="out of hours"), DAILY,
               facts(GP_CRISIS_NO), NOW)
    assert d.permit and d.basis == "custodian" and not d.break_glass


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_etreat_without_a_reason_is_an_ordinary_purpose(reason):
    req = keynsham_gp(purpose="ETREAT", break_glass_reason=reason)
    d = decide(req, DAILY, facts(GP_NO), NOW)
    assert not d.permit and d.basis == "denied" and not d.break_glass
    d = decide(req, DAILY, facts(), NOW)
    assert not d.permit and d.basis == "no-consent"


def test_etreat_without_a_reason_still_matches_etreat_provisions():
    c = consent("c", prov(children=[prov("permit", actor=KEYNSHAM_GP, purpose="ETREAT")]))
    d = decide(keynsham_gp(purpose="ETREAT"), DAILY, facts(c), NOW)
    assert d.permit and d.basis == "consent" and not d.break_glass


@pytest.mark.parametrize("make", [bath_mind, lambda **kw: person_app("Patient/richard", **kw)])
def test_voluntary_and_person_partners_cannot_break_the_glass(make):
    req = make(purpose="ETREAT", break_glass_reason="worried about her")
    d = decide(req, DAILY, facts(), NOW)
    assert not d.permit and not d.break_glass and d.basis == "no-consent"


def test_voluntary_etreat_is_ordinary_purpose_under_consents():
    c = consent("c", prov(children=[prov("permit", actor=ALLIANCE, purpose="ETREAT")]))
    req = bath_mind(purpose="ETREAT", break_glass_reason="crisis call")
    d = decide(req, DAILY, facts(c), NOW)
    assert d.permit and d.basis == "consent" and not d.break_glass


def test_non_custodian_trust_is_eligible_for_break_glass():
    crisis_team = requester("awp-crisis", "trust", ("Organization/awp-crisis", AWP),
                            purpose="ETREAT", break_glass_reason="section 136")
    d = decide(crisis_team, DAILY, facts(custodian=(AWP,)), NOW)
    assert d.permit and d.basis == "break-glass"


def test_break_glass_needs_the_etreat_purpose():
    req = keynsham_gp(purpose="TREAT", break_glass_reason="urgent")
    assert not decide(req, DAILY, facts(GP_NO), NOW).permit
