"""CONTRACTS.md section 4, rules 1-5, one behaviour per test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from consent_world import (
    ALLIANCE,
    AWP,
    BATH_MIND,
    CONF,
    DR_PATEL,
    GEORGE,
    ICR,
    JENNY,
    KEYNSHAM_GP,
    MILLIE,
    NOW,
    RICHARD,
    awp,
    awp_cmht,
    bath_mind,
    citizens_advice,
    consent,
    facts,
    goal,
    icr,
    keynsham_gp,
    patient_resource,
    person_app,
    prov,
    requester,
    risk_assessment,
    section,
    sirona,
)

from carebridge.consent.decide import decide
from carebridge.consent.model import PatientFacts
from carebridge.mappings.vocabulary import SECTION_SYSTEM, SNOMED

DAILY = section("daily-activities")
SHARE_DAILY_WITH_ALLIANCE = consent(
    "millie-daily", prov("permit", actor=ALLIANCE, sections="daily-activities")
)


def permits(req, resource, *consents, now=NOW, **kw) -> bool:
    return decide(req, resource, facts(*consents, **kw), now).permit


# ------------------------------------------------------------------ rule 1


class TestRule1Custodian:
    def test_resources_outside_every_compartment_are_not_consent_controlled(self):
        org = {"resourceType": "Organization", "id": "bath-mind", "name": "Bath Mind"}
        d = decide(bath_mind(), org, None, NOW)
        assert d.permit and d.basis == "not-personal"

    def test_managing_team_sees_everything_without_any_consent(self):
        d = decide(awp_cmht(), risk_assessment(), facts(), NOW)
        assert d.permit and d.basis == "custodian"

    def test_trust_that_is_a_part_of_ancestor_of_the_managing_organisation_is_custodian(self):
        d = decide(awp(), risk_assessment(), facts(), NOW)
        assert d.permit and d.basis == "custodian"

    def test_custodian_sees_even_what_a_consent_refuses(self):
        refuse = consent("no-awp", prov("deny", actor=AWP))
        d = decide(awp(), risk_assessment(), facts(refuse), NOW)
        assert d.permit and d.basis == "custodian" and not d.break_glass

    def test_another_trust_starts_at_deny(self):
        d = decide(sirona(), DAILY, facts(), NOW)
        assert not d.permit and d.basis == "no-consent"

    def test_a_team_below_the_managing_organisation_is_not_its_custodian(self):
        # Millie is managed by AWP itself; the crisis team is partOf AWP, not above it.
        crisis_team = requester("awp-crisis", "trust", ("Organization/awp-crisis", AWP))
        d = decide(crisis_team, DAILY, facts(custodian=(AWP,)), NOW)
        assert not d.permit

    def test_only_trust_partners_can_be_custodians(self):
        gp_with_trust_org = requester("odd-gp", "gp", (AWP,))
        assert not decide(gp_with_trust_org, DAILY, facts(), NOW).permit

    def test_person_sees_all_of_their_own_record(self):
        d = decide(person_app(MILLIE), risk_assessment(), facts(), NOW)
        assert d.permit and d.basis == "person"

    def test_person_app_bound_to_someone_else_starts_at_deny(self):
        d = decide(person_app(RICHARD), risk_assessment(), facts(), NOW)
        assert not d.permit and d.basis == "no-consent"

    def test_everyone_else_starts_at_deny(self):
        for req in (bath_mind(), keynsham_gp(), icr(), citizens_advice()):
            d = decide(req, DAILY, facts(), NOW)
            assert not d.permit and d.basis == "no-consent"
            assert d.consents == () and d.provisions == ()


# ------------------------------------------------------------------ rule 2


class TestRule2ApplicableConsents:
    def test_active_patient_privacy_consent_applies(self):
        d = decide(bath_mind(), DAILY, facts(SHARE_DAILY_WITH_ALLIANCE), NOW)
        assert d.permit and d.basis == "consent"
        assert d.consents == ("Consent/millie-daily",)

    @pytest.mark.parametrize(
        "status", ["draft", "proposed", "inactive", "rejected", "entered-in-error"]
    )
    def test_consent_that_is_not_active_is_ignored(self, status):
        c = consent("c", prov("permit", actor=ALLIANCE), status=status)
        assert not permits(bath_mind(), DAILY, c)

    @pytest.mark.parametrize("scope", ["research", "treatment", "adr"])
    def test_consent_with_another_scope_is_ignored(self, scope):
        c = consent("c", prov("permit", actor=ALLIANCE), scope=scope)
        assert not permits(bath_mind(), DAILY, c)

    def test_scope_needs_the_consentscope_system(self):
        c = consent("c", prov("permit", actor=ALLIANCE))
        c["scope"]["coding"][0]["system"] = "http://example.org/other"
        assert not permits(bath_mind(), DAILY, c)

    def test_another_patients_consent_is_ignored(self):
        richards = consent("richard-shares", prov("permit", actor=ALLIANCE), patient=RICHARD)
        assert not permits(bath_mind(), DAILY, richards)

    def test_another_patients_refusal_does_not_affect_this_patient(self):
        georges_no = consent("george-no", prov("deny", actor=ALLIANCE), patient=GEORGE)
        assert permits(bath_mind(), DAILY, SHARE_DAILY_WITH_ALLIANCE, georges_no)

    def test_patient_given_as_an_absolute_url_is_the_same_patient(self):
        c = consent("c", prov("permit", actor=ALLIANCE),
                    patient="https://carebridge.example/fhir/Patient/millie")
        assert permits(bath_mind(), DAILY, c)

    def test_expired_consent_is_ignored(self):
        c = consent("c", prov("permit", actor=ALLIANCE,
                              period={"start": "2025-01-01", "end": "2026-05-31"}))
        assert not permits(bath_mind(), DAILY, c)

    def test_consent_not_yet_in_force_is_ignored(self):
        c = consent("c", prov("permit", actor=ALLIANCE, period={"start": "2026-06-02"}))
        assert not permits(bath_mind(), DAILY, c)

    def test_expired_refusal_no_longer_refuses(self):
        old_no = consent("old-no", prov("deny", actor=ALLIANCE, period={"end": "2026-01-01"}))
        assert permits(bath_mind(), DAILY, SHARE_DAILY_WITH_ALLIANCE, old_no)

    def test_consent_period_is_checked_at_decision_time_not_compile_time(self):
        f = facts(consent("c", prov("permit", actor=ALLIANCE, period={"end": "2026-06-30"})))
        assert decide(bath_mind(), DAILY, f, NOW).permit
        assert not decide(bath_mind(), DAILY, f, NOW + timedelta(days=30)).permit

    def test_consent_without_provisions_gives_no_answer(self):
        d = decide(bath_mind(), DAILY, facts(consent("empty", None)), NOW)
        assert not d.permit and d.basis == "no-consent"

    def test_no_consent_at_all_means_no(self):
        d = decide(keynsham_gp(), DAILY, facts(), NOW)
        assert (d.permit, d.basis) == (False, "no-consent")

    def test_default_now_is_the_current_time(self):
        live = consent("c", prov("permit", actor=ALLIANCE,
                                 period={"start": "2000-01-01", "end": "2999-12-31"}))
        assert decide(bath_mind(), DAILY, facts(live)).permit


# ------------------------------------------------------------------ rule 3


class TestRule3Actor:
    def test_actor_naming_the_requesting_organisation_matches(self):
        c = consent("c", prov("permit", actor=BATH_MIND))
        assert permits(bath_mind(), DAILY, c)

    def test_actor_naming_the_alliance_covers_its_member_organisations(self):
        c = consent("c", prov("permit", actor=ALLIANCE))
        assert permits(bath_mind(), DAILY, c)
        assert permits(citizens_advice(), DAILY, c)

    def test_actor_naming_a_member_does_not_cover_its_siblings(self):
        c = consent("c", prov("permit", actor=BATH_MIND))
        assert not permits(citizens_advice(), DAILY, c)

    def test_actor_naming_another_organisation_does_not_match(self):
        c = consent("c", prov("permit", actor=KEYNSHAM_GP))
        assert not permits(bath_mind(), DAILY, c)

    def test_actor_naming_a_practitioner_matches_only_when_they_act(self):
        c = consent("c", prov("permit", actor=DR_PATEL))
        assert permits(keynsham_gp(practitioner=DR_PATEL), DAILY, c)
        assert not permits(keynsham_gp(), DAILY, c)
        assert not permits(keynsham_gp(practitioner="Practitioner/dr-jones"), DAILY, c)

    def test_any_one_of_several_actors_is_enough(self):
        c = consent("c", prov("permit", actor=[ICR, KEYNSHAM_GP]))
        assert permits(keynsham_gp(), DAILY, c)
        assert permits(icr(), DAILY, c)
        assert not permits(bath_mind(), DAILY, c)

    def test_actor_given_as_absolute_or_versioned_url_matches(self):
        for ref in ("https://carebridge.example/fhir/Organization/bath-mind",
                    "Organization/bath-mind/_history/2"):
            assert permits(bath_mind(), DAILY, consent("c", prov("permit", actor=ref)))

    def test_no_actor_means_anyone(self):
        assert permits(keynsham_gp(), DAILY, consent("c", prov("permit")))


class TestRule3Action:
    def test_access_action_matches(self):
        assert permits(bath_mind(), DAILY, consent("c", prov("permit", action=["access"])))

    def test_action_without_access_does_not_match(self):
        assert not permits(bath_mind(), DAILY, consent("c", prov("permit", action=["correct"])))

    def test_access_among_several_actions_matches(self):
        c = consent("c", prov("permit", action=["correct", "access"]))
        assert permits(bath_mind(), DAILY, c)

    def test_absent_action_matches(self):
        assert permits(bath_mind(), DAILY, consent("c", prov("permit", actor=ALLIANCE)))


class TestRule3Purpose:
    def test_stated_purpose_matching_the_request_matches(self):
        c = consent("c", prov("permit", actor=ALLIANCE, purpose="TREAT"))
        assert permits(bath_mind(purpose="TREAT"), DAILY, c)

    def test_other_purpose_does_not_match(self):
        c = consent("c", prov("permit", actor=ALLIANCE, purpose="HRESCH"))
        assert not permits(bath_mind(), DAILY, c)

    def test_one_of_several_purposes_is_enough(self):
        c = consent("c", prov("permit", purpose=["HRESCH", "CAREMGT"]))
        assert permits(icr(purpose="CAREMGT"), DAILY, c)
        assert not permits(icr(purpose="TREAT"), DAILY, c)


class TestRule3Class:
    def test_class_naming_the_resource_type_matches(self):
        c = consent("c", prov("permit", actor=ALLIANCE, cls="Goal"))
        assert permits(bath_mind(), goal(), c)

    def test_class_naming_another_type_does_not_match(self):
        c = consent("c", prov("permit", actor=ALLIANCE, cls="Goal"))
        assert not permits(bath_mind(), DAILY, c)
        assert not permits(bath_mind(), risk_assessment(), c)


class TestRule3Code:
    def test_section_tag_matches(self):
        assert permits(bath_mind(), DAILY, SHARE_DAILY_WITH_ALLIANCE)

    def test_other_section_does_not_match(self):
        assert not permits(bath_mind(), section("crisis-plan"), SHARE_DAILY_WITH_ALLIANCE)

    def test_same_code_from_another_system_does_not_match(self):
        c = consent("c", prov("permit", code=[("http://example.org/sections",
                                               "daily-activities")]))
        assert not permits(bath_mind(), DAILY, c)

    def test_code_in_the_resource_category_matches(self):
        c = consent("c", prov("permit", code=[(SNOMED, "718347000")]))
        plan = section("plan", category=[{"coding": [{"system": SNOMED, "code": "718347000"}]}])
        assert permits(bath_mind(), plan, c)

    def test_single_codeable_concept_category_matches(self):
        c = consent("c", prov("permit", code=[(SNOMED, "718347000")]))
        odd = section("plan", category={"coding": [{"system": SNOMED, "code": "718347000"}]})
        assert permits(bath_mind(), odd, c)

    def test_code_in_the_resource_code_matches(self):
        c = consent("c", prov("permit", code=[(SNOMED, "225338004")]))
        risk = risk_assessment(code={"coding": [{"system": SNOMED, "code": "225338004"}]})
        assert permits(bath_mind(), risk, c)

    def test_resource_without_codes_does_not_match_a_code(self):
        assert not permits(bath_mind(), patient_resource(), SHARE_DAILY_WITH_ALLIANCE)

    def test_any_one_of_several_codes_is_enough(self):
        c = consent("c", prov("permit", sections=["crisis-plan", "daily-activities"]))
        assert permits(bath_mind(), DAILY, c)


class TestRule3SecurityLabel:
    RESTRICTED = section("medication-agreement",
                         meta={"tag": [{"system": SECTION_SYSTEM,
                                        "code": "medication-agreement"}],
                               "security": [{"system": CONF, "code": "R"}]})

    def test_matching_label_matches(self):
        c = consent("c", prov("deny", labels=[(CONF, "R")]))
        d = decide(bath_mind(), self.RESTRICTED, facts(c), NOW)
        assert d.basis == "denied"

    def test_other_label_does_not_match(self):
        c = consent("c", prov("deny", labels=[(CONF, "N")]))
        d = decide(bath_mind(), self.RESTRICTED, facts(c), NOW)
        assert d.basis == "no-consent"

    def test_same_code_in_another_system_does_not_match(self):
        c = consent("c", prov("deny", labels=[("http://example.org/conf", "R")]))
        assert decide(bath_mind(), self.RESTRICTED, facts(c), NOW).basis == "no-consent"

    def test_unlabelled_resource_does_not_match(self):
        c = consent("c", prov("deny", labels=[(CONF, "R")]))
        assert decide(bath_mind(), DAILY, facts(c), NOW).basis == "no-consent"


class TestRule3DataPeriod:
    SINCE_MAY = prov("permit", actor=ALLIANCE,
                     data_period={"start": "2026-05-01", "end": "2026-05-31"})

    def test_clinical_date_inside_matches(self):
        assert permits(bath_mind(), section("daily-activities", period={"start": "2026-05-03"}),
                       consent("c", self.SINCE_MAY))

    def test_clinical_date_before_does_not_match(self):
        assert not permits(bath_mind(),
                           section("daily-activities", period={"start": "2026-04-30"}),
                           consent("c", self.SINCE_MAY))

    def test_clinical_date_after_does_not_match(self):
        assert not permits(bath_mind(),
                           section("daily-activities", period={"start": "2026-06-01"}),
                           consent("c", self.SINCE_MAY))

    @pytest.mark.parametrize("when", ["2026-05-01", "2026-05-01T00:00:00Z",
                                      "2026-05-31", "2026-05-31T23:59:59Z",
                                      "2026-05-31T23:59:59.999Z"])
    def test_edges_are_inclusive(self, when):
        r = section("daily-activities", period={"start": when})
        assert permits(bath_mind(), r, consent("c", self.SINCE_MAY))

    def test_the_next_instant_after_the_end_day_is_outside(self):
        r = section("daily-activities", period={"start": "2026-06-01T00:00:00Z"})
        assert not permits(bath_mind(), r, consent("c", self.SINCE_MAY))

    def test_time_zones_are_compared_as_instants(self):
        # 00:30 on 1 June in BST is 23:30 on 31 May UTC: inside.
        r = section("daily-activities", period={"start": "2026-06-01T00:30:00+01:00"})
        assert permits(bath_mind(), r, consent("c", self.SINCE_MAY))
        # 23:30 on 30 April at -01:00 is 00:30 on 1 May UTC: inside.
        r = section("daily-activities", period={"start": "2026-04-30T23:30:00-01:00"})
        assert permits(bath_mind(), r, consent("c", self.SINCE_MAY))

    def test_partial_date_must_fall_wholly_inside(self):
        assert permits(bath_mind(), section("daily-activities", period={"start": "2026-05"}),
                       consent("c", self.SINCE_MAY))
        assert not permits(bath_mind(), section("daily-activities", period={"start": "2026"}),
                           consent("c", self.SINCE_MAY))

    def test_open_ended_periods(self):
        from_may = consent("c", prov("permit", data_period={"start": "2026-05-01"}))
        until_may = consent("c", prov("permit", data_period={"end": "2026-05-31"}))
        early = section("daily-activities", period={"start": "2019-01-01"})
        late = section("daily-activities", period={"start": "2031-01-01"})
        assert permits(bath_mind(), late, from_may)
        assert not permits(bath_mind(), early, from_may)
        assert permits(bath_mind(), early, until_may)
        assert not permits(bath_mind(), late, until_may)

    def test_clinical_date_sources_in_order(self):
        c = consent("c", self.SINCE_MAY)
        inside, outside = "2026-05-10T10:00:00Z", "2025-01-01T10:00:00Z"
        # period.start wins over created
        assert permits(bath_mind(), section("daily-activities", period={"start": inside},
                                            created=outside), c)
        # authoredOn
        assert permits(bath_mind(), {"resourceType": "Task", "id": "t",
                                     "authoredOn": inside}, c)
        # occurrenceDateTime
        assert permits(bath_mind(), risk_assessment(occurrenceDateTime=inside), c)
        # created, when there is no period.start
        assert not permits(bath_mind(), section("daily-activities", created=outside), c)
        # else meta.lastUpdated
        assert permits(bath_mind(), {"resourceType": "Goal", "id": "g",
                                     "meta": {"lastUpdated": inside}}, c)

    def test_resource_without_any_date_does_not_match(self):
        assert not permits(bath_mind(), {"resourceType": "Goal", "id": "g"},
                           consent("c", self.SINCE_MAY))


class TestRule3Period:
    def test_now_inside_matches(self):
        c = consent("c", prov(children=[prov("permit", period={"start": "2026-05-03",
                                                               "end": "2027-05-03"})]))
        assert permits(bath_mind(), DAILY, c)

    def test_now_before_start_does_not_match(self):
        c = consent("c", prov(children=[prov("permit", period={"start": "2026-06-02"})]))
        assert not permits(bath_mind(), DAILY, c)

    def test_now_after_end_does_not_match(self):
        c = consent("c", prov(children=[prov("permit", period={"end": "2026-05-31"})]))
        assert not permits(bath_mind(), DAILY, c)

    def test_end_date_includes_the_whole_last_day(self):
        c = consent("c", prov(children=[prov("permit", period={"end": "2026-06-01"})]))
        last_moment = datetime(2026, 6, 1, 23, 59, 59, 999999, tzinfo=UTC)
        assert permits(bath_mind(), DAILY, c, now=last_moment)
        assert not permits(bath_mind(), DAILY, c, now=last_moment + timedelta(microseconds=1))

    def test_start_instant_is_inclusive(self):
        c = consent("c", prov(children=[prov("permit",
                                             period={"start": "2026-06-01T12:00:00Z"})]))
        assert permits(bath_mind(), DAILY, c, now=NOW)
        assert not permits(bath_mind(), DAILY, c, now=NOW - timedelta(microseconds=1))

    def test_end_instant_is_inclusive_to_its_second(self):
        c = consent("c", prov(children=[prov("permit", period={"end": "2026-06-01T12:00:00Z"})]))
        assert permits(bath_mind(), DAILY, c, now=NOW)
        assert not permits(bath_mind(), DAILY, c, now=NOW + timedelta(seconds=1))

    def test_naive_now_is_taken_as_utc(self):
        c = consent("c", prov(children=[prov("permit", period={"end": "2026-06-01T12:00:00Z"})]))
        assert permits(bath_mind(), DAILY, c, now=datetime(2026, 6, 1, 12, 0))
        assert not permits(bath_mind(), DAILY, c, now=datetime(2026, 6, 1, 12, 0, 1))


class TestRule3Data:
    def test_data_naming_this_resource_matches(self):
        c = consent("c", prov("permit", data="CarePlan/millie-daily-activities"))
        assert permits(bath_mind(), DAILY, c)

    def test_data_naming_another_resource_does_not_match(self):
        c = consent("c", prov("permit", data="CarePlan/millie-crisis-plan"))
        assert not permits(bath_mind(), DAILY, c)
        assert not permits(bath_mind(), {"resourceType": "Goal", "id": "millie-daily-activities"},
                           consent("c", prov("permit", data="CarePlan/millie-daily-activities")))

    @pytest.mark.parametrize("ref", [
        "https://carebridge.example/fhir/CarePlan/millie-daily-activities",
        "CarePlan/millie-daily-activities/_history/3",
        "https://carebridge.example/fhir/CarePlan/millie-daily-activities/_history/3",
    ])
    def test_absolute_and_versioned_references_match(self, ref):
        assert permits(bath_mind(), DAILY, consent("c", prov("permit", data=ref)))

    def test_any_of_several_data_references_is_enough(self):
        c = consent("c", prov("permit", data=["Goal/other", "CarePlan/millie-daily-activities"]))
        assert permits(bath_mind(), DAILY, c)


def test_every_criterion_must_hold():
    c = consent("c", prov("permit", actor=ALLIANCE, purpose="TREAT", cls="CarePlan",
                          sections="daily-activities"))
    assert permits(bath_mind(), DAILY, c)
    assert not permits(keynsham_gp(), DAILY, c)  # actor fails
    assert not permits(bath_mind(purpose="HRESCH"), DAILY, c)  # purpose fails
    assert not permits(bath_mind(), goal(meta={"tag": DAILY["meta"]["tag"]}), c)  # class fails
    assert not permits(bath_mind(), section("crisis-plan"), c)  # code fails


# ------------------------------------------------------------------ rule 4


class TestRule4OneConsent:
    def test_root_that_does_not_match_gives_no_answer_whatever_its_children_say(self):
        c = consent("c", prov("deny", actor=KEYNSHAM_GP, children=[prov("permit")]))
        d = decide(bath_mind(), DAILY, facts(c), NOW)
        assert d.basis == "no-consent"

    def test_matching_root_with_no_answering_child_gives_its_own_type(self):
        c = consent("c", prov("permit", actor=ALLIANCE,
                              children=[prov("deny", cls="RiskAssessment")]))
        d = decide(bath_mind(), DAILY, facts(c), NOW)
        assert d.permit and d.provisions == ("Consent/c#provision",)

    def test_voluntary_org_sees_shared_sections_but_not_risk_assessment(self):
        c = consent("c", prov("permit", actor=ALLIANCE,
                              children=[prov("deny", cls="RiskAssessment")]))
        assert permits(bath_mind(), DAILY, c)
        d = decide(bath_mind(), risk_assessment(), facts(c), NOW)
        assert not d.permit and d.basis == "denied"
        assert d.provisions == ("Consent/c#provision.provision[0]",)

    def test_answering_child_permit_overrides_a_deny_root(self):
        c = consent("c", prov("deny", children=[prov("permit", actor=ALLIANCE)]))
        assert permits(bath_mind(), DAILY, c)
        assert not permits(keynsham_gp(), DAILY, c)

    def test_children_combine_deny_overrides(self):
        c = consent("c", prov(children=[
            prov("permit", actor=ALLIANCE),
            prov("deny", sections="daily-activities"),
            prov("permit", cls="CarePlan"),
        ]))
        d = decide(bath_mind(), DAILY, facts(c), NOW)
        assert not d.permit and d.provisions == ("Consent/c#provision.provision[1]",)
        assert decide(bath_mind(), goal(), facts(c), NOW).permit

    def test_root_without_type_and_no_answering_child_gives_no_answer(self):
        c = consent("c", prov(children=[prov("permit", actor=KEYNSHAM_GP)]))
        assert decide(bath_mind(), DAILY, facts(c), NOW).basis == "no-consent"

    def test_child_without_type_and_no_answering_children_gives_no_answer(self):
        c = consent("c", prov("permit", children=[
            prov(actor=ALLIANCE, children=[prov("deny", cls="RiskAssessment")]),
        ]))
        # The untyped child matches Bath Mind but nothing below it answers for a
        # section, so the root's own permit stands.
        d = decide(bath_mind(), DAILY, facts(c), NOW)
        assert d.permit and d.provisions == ("Consent/c#provision",)
        d = decide(bath_mind(), risk_assessment(), facts(c), NOW)
        assert not d.permit
        assert d.provisions == ("Consent/c#provision.provision[0].provision[0]",)

    def test_grandchildren_decide_for_their_parent(self):
        c = consent("c", prov(children=[
            prov("deny", actor=ALLIANCE, children=[
                prov("permit", sections="daily-activities", children=[
                    prov("deny", period={"end": "2026-05-31"}),
                ]),
            ]),
        ]))
        d = decide(bath_mind(), DAILY, facts(c), NOW)
        assert d.permit
        assert d.provisions == ("Consent/c#provision.provision[0].provision[0]",)
        assert decide(bath_mind(), DAILY, facts(c), datetime(2026, 5, 20, tzinfo=UTC)).basis \
            == "denied"
        assert not permits(bath_mind(), goal(), c)

    def test_a_child_that_does_not_match_hides_its_own_children(self):
        c = consent("c", prov(children=[
            prov("deny", actor=KEYNSHAM_GP, children=[prov("permit", actor=ALLIANCE)]),
        ]))
        assert not permits(bath_mind(), DAILY, c)

    def test_all_permitting_children_are_cited(self):
        c = consent("c", prov(children=[prov("permit", actor=ALLIANCE),
                                        prov("permit", sections="daily-activities")]))
        d = decide(bath_mind(), DAILY, facts(c), NOW)
        assert d.provisions == ("Consent/c#provision.provision[0]",
                                "Consent/c#provision.provision[1]")


# ------------------------------------------------------------------ rule 5


class TestRule5AllConsents:
    def test_a_refusal_in_one_consent_beats_a_permit_in_another(self):
        no_risk = consent("no-risk", prov("deny", cls="RiskAssessment"))
        everything = consent("all", prov("permit", actor=ALLIANCE))
        d = decide(bath_mind(), risk_assessment(), facts(everything, no_risk), NOW)
        assert not d.permit and d.basis == "denied" and d.consents == ("Consent/no-risk",)
        assert permits(bath_mind(), DAILY, everything, no_risk)

    def test_permit_with_other_consents_silent_is_permit(self):
        silent = consent("silent", prov("deny", actor=ICR))
        d = decide(bath_mind(), DAILY, facts(silent, SHARE_DAILY_WITH_ALLIANCE), NOW)
        assert d.permit and d.consents == ("Consent/millie-daily",)

    def test_several_permitting_consents_are_all_cited(self):
        also = consent("also", prov("permit", actor=BATH_MIND))
        d = decide(bath_mind(), DAILY, facts(SHARE_DAILY_WITH_ALLIANCE, also), NOW)
        assert d.consents == ("Consent/millie-daily", "Consent/also")

    def test_nothing_answering_means_deny(self):
        silent = consent("silent", prov("deny", actor=ICR))
        d = decide(bath_mind(), DAILY, facts(silent), NOW)
        assert (d.permit, d.basis) == (False, "no-consent")

    def test_decision_reason_is_plain_english(self):
        d = decide(bath_mind(), DAILY, facts(SHARE_DAILY_WITH_ALLIANCE), NOW)
        assert d.reason == "permitted by Consent/millie-daily (provision)"
        d = decide(bath_mind(), risk_assessment(), facts(
            consent("no", prov(children=[prov("deny", cls="RiskAssessment")]))), NOW)
        assert d.reason == "refused by Consent/no (provision.provision[0])"


# ------------------------------------------------------ robustness and caching


class TestUnreadableConsents:
    def test_consent_with_an_unknown_criterion_refuses_everything(self):
        c = consent("odd", prov("permit", actor=ALLIANCE))
        c["provision"]["when"] = "tuesdays"
        d = decide(bath_mind(), DAILY, facts(c, SHARE_DAILY_WITH_ALLIANCE), NOW)
        assert not d.permit and d.basis == "denied"
        assert "Consent/odd" in d.consents and "cannot be read exactly" in d.reason

    def test_consent_with_a_modifier_extension_refuses_everything(self):
        c = consent("odd", prov("permit", actor=ALLIANCE))
        c["provision"]["modifierExtension"] = [{"url": "http://x", "valueBoolean": True}]
        assert not permits(bath_mind(), DAILY, c)

    def test_unreadable_dates_refuse_everything(self):
        c = consent("odd", prov("permit", period={"start": "next tuesday"}))
        assert decide(bath_mind(), DAILY, facts(c), NOW).basis == "denied"

    def test_an_unreadable_consent_does_not_block_the_custodian(self):
        c = consent("odd", prov("maybe"))
        assert decide(awp(), DAILY, facts(c), NOW).permit

    def test_malformed_resource_values_do_not_crash(self):
        c = consent("c", prov("deny", sections="daily-activities", labels=[(CONF, "R")]))
        weird = {"resourceType": "CarePlan", "id": "x",
                 "meta": {"tag": [{"system": {"oops": 1}, "code": "daily-activities"}, "junk"],
                          "security": "R"},
                 "category": "plan", "code": ["nope"]}
        assert decide(bath_mind(), weird, facts(c), NOW).basis == "no-consent"


class TestPolicyCache:
    def test_a_changed_consent_takes_effect_at_once(self):
        yes = consent("millie-choices", prov("permit", actor=ALLIANCE))
        no = consent("millie-choices", prov("deny", actor=ALLIANCE))
        assert decide(bath_mind(), DAILY, facts(yes, version=41), NOW).permit
        assert not decide(bath_mind(), DAILY, facts(no, version=42), NOW).permit

    def test_changed_consents_under_an_unchanged_version_are_still_honoured(self):
        # A caller that forgets to bump consent_version still gets the right answer.
        yes = consent("c", prov("permit", actor=ALLIANCE), patient=JENNY)
        no = consent("c", prov("deny", actor=ALLIANCE), patient=JENNY)
        jenny_daily = section("daily-activities", patient=JENNY)
        assert decide(bath_mind(), jenny_daily, PatientFacts(JENNY, (), (yes,), 0), NOW).permit
        assert not decide(bath_mind(), jenny_daily, PatientFacts(JENNY, (), (no,), 0), NOW).permit

    def test_cache_is_bounded(self):
        from carebridge.consent import policy

        policy.clear_policy_cache()
        for i in range(policy._CACHE_SIZE + 50):
            decide(bath_mind(), DAILY, PatientFacts(f"Patient/p{i}", (), (), i), NOW)
        assert policy.policy_cache_size() == policy._CACHE_SIZE

    def test_same_requester_values_in_new_objects_decide_the_same(self):
        f = facts(SHARE_DAILY_WITH_ALLIANCE)
        first = decide(bath_mind(), DAILY, f, NOW)
        again = decide(bath_mind(), DAILY, f, NOW)
        assert first == again and first.permit

    def test_requesters_do_not_see_each_others_cached_views(self):
        f = facts(SHARE_DAILY_WITH_ALLIANCE)
        assert decide(bath_mind(), DAILY, f, NOW).permit
        assert not decide(keynsham_gp(), DAILY, f, NOW).permit
        assert decide(citizens_advice(), DAILY, f, NOW).permit
        assert not decide(sirona(), DAILY, f, NOW).permit


def test_consent_naming_no_patient_is_ignored():
    c = consent("c", prov("permit", actor=ALLIANCE))
    del c["patient"]
    assert not decide(bath_mind(), DAILY, facts(c), NOW).permit
    assert not decide(bath_mind(), DAILY, PatientFacts("not-a-reference", (), (c,), 3), NOW).permit
