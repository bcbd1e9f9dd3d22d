"""explain(): decisions in words a person and their care coordinator can read together."""

from __future__ import annotations

from datetime import date

from consent_world import (
    ALLIANCE,
    KEYNSHAM_GP,
    NOW,
    awp,
    bath_mind,
    consent,
    facts,
    keynsham_gp,
    prov,
    risk_assessment,
    section,
)

from carebridge.consent.decide import decide
from carebridge.consent.explain import explain

MILLIE_SHARES = consent("x", prov(children=[
    prov("permit", actor=ALLIANCE, sections="daily-activities"),
    prov("deny", actor=ALLIANCE, cls="RiskAssessment"),
]))


def test_permitted_by_consent_names_the_date_of_the_consent():
    d = decide(bath_mind(), section("daily-activities"), facts(MILLIE_SHARES), NOW)
    text = explain(d, "Bath Mind", "Millie", "daily activities", pronoun="she")
    assert text.startswith(
        "Bath Mind can see Millie's daily activities because of her consent of 3 May 2026")


def test_refused_names_the_consent_and_the_rule():
    d = decide(bath_mind(), risk_assessment(), facts(MILLIE_SHARES), NOW)
    assert explain(d, "Bath Mind", "Millie", "risk assessment", pronoun="she") == (
        "Bath Mind cannot see Millie's risk assessment because she said no to that "
        "(Consent/x, provision.provision[1]).")


def test_nothing_agreed():
    d = decide(bath_mind(), section("crisis-plan"), facts(MILLIE_SHARES), NOW)
    assert explain(d, "Bath Mind", "Millie", "crisis plan", pronoun="she") == (
        "Bath Mind cannot see Millie's crisis plan because she has not agreed to share it.")


def test_they_is_the_default_pronoun():
    d = decide(keynsham_gp(), section("crisis-plan"), facts(), NOW)
    assert explain(d, "Keynsham GP", "Richard", "crisis plan") == (
        "Keynsham GP cannot see Richard's crisis plan because they have not agreed to share it.")


def test_an_explicit_consent_date_is_used():
    d = decide(bath_mind(), section("daily-activities"), facts(MILLIE_SHARES), NOW)
    text = explain(d, "Bath Mind", "Millie", "daily activities", date(2026, 5, 4), "she")
    assert "her consent of 4 May 2026" in text


def test_custodian_and_break_glass_and_advance_decision():
    d = decide(awp(), risk_assessment(), facts(), NOW)
    assert explain(d, "AWP", "Millie", "risk assessment") == (
        "AWP can see Millie's risk assessment because AWP looks after Millie's care record.")
    emergency = keynsham_gp(purpose="ETREAT", break_glass_reason="collapsed")
    d = decide(emergency, risk_assessment(), facts(), NOW)
    text = explain(d, "Keynsham GP", "Millie", "risk assessment", pronoun="she")
    assert "because of an emergency (break-glass)" in text and "care team is told" in text
    advance = consent("ad", prov(children=[prov("deny", actor=KEYNSHAM_GP, purpose="ETREAT")]))
    d = decide(emergency, risk_assessment(), facts(advance), NOW)
    assert explain(d, "Keynsham GP", "Millie", "risk assessment", pronoun="she") == (
        "Keynsham GP cannot see Millie's risk assessment, even in an emergency, because she "
        "decided on 3 May 2026 that they should not (Consent/ad, provision.provision[0]).")
