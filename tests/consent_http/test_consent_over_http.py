"""Consent, end to end over HTTP with the demo world (CONTRACTS.md section 4).

Millie shares her plan with the voluntary sector but not her risk assessment or crisis
plan; her GP sees nothing in advance except news of a transfer; she can withdraw; a
crisis team can break glass, except where she decided in advance that it may not.
These tests change Millie's consents, so they run on a server of their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, own_server

VOLUNTARY = "bath-mind"
GP = "keynsham-gp"
ICR = "banes-icr"
CUSTODIAN = "awp-bath-cmht"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with own_server(request.param, tmp_path_factory) as srv:
        yield srv


def ids(bundle: dict) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])}


def test_a_voluntary_organisation_sees_millies_shared_sections_but_not_her_risk_assessment(world):
    with world.client(VOLUNTARY) as bath_mind:
        assert bath_mind.get("/CarePlan/millie-daily-activities").status_code == 200
        assert bath_mind.get("/CarePlan/millie-risk-assessment").status_code == 404
        assert bath_mind.get("/RiskAssessment/millie-risk").status_code == 404
        shared = bath_mind.get("/CarePlan", params={"patient": "millie", "_count": 100}).json()
    assert "CarePlan/millie-daily-activities" in ids(shared)
    assert "CarePlan/millie-risk-assessment" not in ids(shared)
    assert "CarePlan/millie-crisis-plan" not in ids(shared)


def test_a_denied_resource_answers_exactly_like_a_missing_one(world):
    with world.client(VOLUNTARY) as bath_mind:
        hidden = bath_mind.get("/CarePlan/millie-risk-assessment")
        missing = bath_mind.get("/CarePlan/no-such-plan-anywhere")
    assert hidden.status_code == missing.status_code == 404
    hidden_text = hidden.json()["issue"][0]["diagnostics"].replace("millie-risk-assessment", "X")
    missing_text = missing.json()["issue"][0]["diagnostics"].replace("no-such-plan-anywhere", "X")
    assert hidden_text == missing_text


def test_millies_gp_sees_nothing_of_her_plan_in_advance(world):
    with world.client(GP) as gp:
        found = gp.get("/CarePlan", params={"patient": "millie", "_total": "accurate"}).json()
        assert gp.get("/CarePlan/millie-plan").status_code == 404
        assert gp.get("/CarePlan/millie-crisis-plan").status_code == 404
    # Only the news of her transfer, which she agreed her GP may have.
    assert ids(found) <= {"CarePlan/millie-transfer-section"}
    assert found["total"] == len(found.get("entry", []))


@pytest.mark.parametrize(
    "path, params",
    [
        ("/CarePlan", {"patient": "millie", "_count": 2}),
        ("/CarePlan", {"patient": "millie", "_include": "CarePlan:part-of"}),
        ("/Patient", {"_id": "millie", "_revinclude": "CarePlan:patient"}),
        ("/CarePlan/_history", {"_count": 500}),
        ("/RiskAssessment", {"patient": "millie"}),
    ],
)
def test_no_search_path_ever_carries_a_denied_resource(world, path, params):
    with world.client(VOLUNTARY) as bath_mind:
        seen: set[str] = set()
        url, query = path, dict(params)
        while url:
            page = bath_mind.get(url, params=query).json()
            seen |= ids(page)
            nxt = [link["url"] for link in page.get("link", []) if link["relation"] == "next"]
            url, query = (nxt[0], None) if nxt else (None, None)
    assert "CarePlan/millie-risk-assessment" not in seen
    assert "CarePlan/millie-crisis-plan" not in seen
    assert "RiskAssessment/millie-risk" not in seen


def test_totals_count_only_what_is_disclosed(world):
    with world.client(CUSTODIAN) as team, world.client(VOLUNTARY) as bath_mind:
        everything = team.get("/CarePlan", params={"patient": "millie", "_summary": "count"}).json()["total"]
        shared = bath_mind.get("/CarePlan", params={"patient": "millie", "_summary": "count"}).json()["total"]
        listed = bath_mind.get("/CarePlan", params={"patient": "millie", "_count": 100}).json()
    assert shared == len(listed["entry"])
    # Millie keeps back her risk assessment and crisis plan sections.
    assert everything - shared == 2


def test_history_and_vread_of_a_denied_resource_do_not_exist(world):
    with world.client(VOLUNTARY) as bath_mind:
        assert bath_mind.get("/CarePlan/millie-crisis-plan/_history").status_code == 404
        assert bath_mind.get("/CarePlan/millie-crisis-plan/_history/1").status_code == 404


def test_patient_everything_and_batch_responses_carry_only_what_is_shared(world):
    with world.client(VOLUNTARY) as bath_mind:
        everything = bath_mind.get("/Patient/millie/$everything").json()
        batch = bath_mind.post(
            "",
            json={
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {"request": {"method": "GET", "url": "CarePlan/millie-crisis-plan"}},
                    {"request": {"method": "GET", "url": "CarePlan/millie-daily-activities"}},
                ],
            },
        ).json()
    assert "CarePlan/millie-daily-activities" in ids(everything)
    assert "CarePlan/millie-crisis-plan" not in ids(everything)
    assert everything["total"] == len(everything["entry"])
    statuses = [e["response"]["status"] for e in batch["entry"]]
    assert statuses[0].startswith("404") and statuses[1].startswith("200")
    assert "resource" not in batch["entry"][0]


def test_references_to_what_the_requester_may_not_see_are_removed_and_marked(world):
    # The GP may see the transfer section, but not the parent plan it is part of.
    with world.client(GP) as gp:
        section = gp.get("/CarePlan/millie-transfer-section").json()
    assert "partOf" not in section
    assert "millie-plan" not in str(section)
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "REDACTED"} in (
        section["meta"]["security"]
    )


def test_every_disclosure_is_audited_with_the_consent_that_permitted_it(world):
    with world.client(VOLUNTARY) as bath_mind:
        assert bath_mind.get("/CarePlan/millie-recovery-goals").status_code == 200
    with world.client(CUSTODIAN) as team:
        events = team.get(
            "/AuditEvent", params={"patient": "millie", "agent": "Organization/bath-mind", "_count": 200}
        ).json()
    whats = [
        (ent["what"]["reference"], ent.get("role", {}).get("code"))
        for e in events["entry"]
        for ent in e["resource"]["entity"]
    ]
    assert any(ref.startswith("CarePlan/millie-recovery-goals/_history/") for ref, _ in whats)
    assert any(ref.startswith("Consent/") and role == "13" for ref, role in whats)


def test_audit_records_are_for_the_custodian_and_the_person_only(world):
    with world.client(VOLUNTARY) as bath_mind:
        assert bath_mind.get("/CarePlan/millie-about-me").status_code == 200
        assert bath_mind.get("/AuditEvent", params={"patient": "millie"}).json().get("entry") is None
    with world.client("millie-app") as millie:
        mine = millie.get("/AuditEvent", params={"patient": "millie"}).json()
    assert mine.get("entry")


def test_evaluate_explains_in_plain_words_who_can_see_what(world):
    with world.client("millie-app") as millie:
        answer = millie.post(
            "/Consent/$evaluate",
            json={
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "requester", "valueReference": {"reference": "Organization/bath-mind"}},
                    {"name": "resource", "valueReference": {"reference": "CarePlan/millie-daily-activities"}},
                    {"name": "resource", "valueReference": {"reference": "CarePlan/millie-risk-assessment"}},
                ],
            },
        ).json()
    results = {
        next(p["valueReference"]["reference"] for p in r["part"] if p["name"] == "resource"): {
            p["name"]: p.get("valueCode") or p.get("valueString") for p in r["part"]
        }
        for r in answer["parameter"]
    }
    daily = results["CarePlan/millie-daily-activities"]
    risk = results["CarePlan/millie-risk-assessment"]
    assert daily["decision"] == "permit"
    assert daily["explanation"].startswith(
        "Bath Mind can see Millie's daily activities because of her consent"
    )
    assert risk["decision"] == "deny"
    assert "Bath Mind cannot see Millie's risk assessment because she said no" in risk["explanation"]


def test_break_glass_is_permitted_audited_and_the_custodian_is_told(world):
    with world.client(GP) as gp:
        crisis = gp.get(
            "/CarePlan/millie-crisis-plan",
            headers={
                "X-Purpose-Of-Use": "ETREAT",
                "X-Break-Glass-Reason": "found unwell at home, unresponsive",
            },
        )
        without_reason = gp.get("/CarePlan/millie-crisis-plan", headers={"X-Purpose-Of-Use": "ETREAT"})
    assert crisis.status_code == 200
    assert without_reason.status_code == 404
    with world.client(CUSTODIAN) as team:
        notices = team.get("/Communication", params={"patient": "millie", "_count": 100}).json()
        events = team.get("/AuditEvent", params={"patient": "millie", "purpose": "ETREAT"}).json()
    texts = [e["resource"]["payload"][0]["contentString"] for e in notices.get("entry", [])]
    assert any("found unwell at home, unresponsive" in t for t in texts)
    assert any(
        d.get("valueString") == "found unwell at home, unresponsive"
        for e in events["entry"]
        for ent in e["resource"]["entity"]
        for d in ent.get("detail", [])
    )


def test_her_advance_decision_blocks_the_integrated_care_record_in_a_crisis(world):
    headers = {"X-Purpose-Of-Use": "ETREAT", "X-Break-Glass-Reason": "crisis line call"}
    with world.client(ICR) as icr, world.client(GP) as gp:
        assert icr.get("/CarePlan/millie-crisis-plan", headers=headers).status_code == 404
        assert gp.get("/CarePlan/millie-crisis-plan", headers=headers).status_code == 200


def test_a_voluntary_organisation_cannot_break_glass(world):
    headers = {"X-Purpose-Of-Use": "ETREAT", "X-Break-Glass-Reason": "worried about her"}
    with world.client(VOLUNTARY) as bath_mind:
        assert bath_mind.get("/CarePlan/millie-crisis-plan", headers=headers).status_code == 404


def test_a_consent_the_engine_cannot_apply_exactly_is_refused_with_the_provision_named(world):
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/millie"},
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
        "provision": {
            "provision": [
                {
                    "type": "permit",
                    "actor": [
                        {
                            "role": {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                        "code": "IRCP",
                                    }
                                ]
                            },
                            "reference": {"reference": "Organization/nobody-we-know"},
                        }
                    ],
                }
            ]
        },
    }
    with world.client(CUSTODIAN) as team:
        refused = team.post("/Consent", json=consent)
    assert refused.status_code == 422
    text = refused.json()["issue"][0]["diagnostics"]
    assert "provision.provision[0].actor[0]" in text and "Organization/nobody-we-know" in text


def test_when_millie_withdraws_the_very_next_read_is_a_404(world):
    with world.client(VOLUNTARY) as bath_mind:
        assert bath_mind.get("/CarePlan/millie-daily-activities").status_code == 200
    with world.client(CUSTODIAN) as team:
        consent = team.get("/Consent/millie-consent-voluntary").json()
        consent["status"] = "inactive"
        assert team.put("/Consent/millie-consent-voluntary", json=consent).status_code == 200
    with world.client(VOLUNTARY) as bath_mind:
        assert bath_mind.get("/CarePlan/millie-daily-activities").status_code == 404
        again = bath_mind.get("/CarePlan", params={"patient": "millie", "_total": "accurate"}).json()
    assert again["total"] == 0
    with world.client(CUSTODIAN) as team:
        consent = team.get("/Consent/millie-consent-voluntary").json()
        consent["status"] = "active"
        assert team.put("/Consent/millie-consent-voluntary", json=consent).status_code == 200
    with world.client(VOLUNTARY) as bath_mind:
        assert bath_mind.get("/CarePlan/millie-daily-activities").status_code == 200


def test_sharing_choices_become_one_consent_and_replace_the_last(world):
    choices = {
        "shares": [
            {
                "recipient": "Organization/banes-voluntary-alliance",
                "allow": True,
                "sections": ["recovery-goals", "strengths-community"],
                "includeDemographics": True,
            },
            {"recipient": "Organization/keynsham-gp", "allow": False},
        ],
        "crisis": [{"recipient": "Organization/banes-icr", "allow": False}],
    }
    # Jenny decides with her care coordinator beside her: the custodian team records it.
    with world.client(CUSTODIAN) as who:
        first = who.post("/Patient/jenny/$sharing-choices", json=choices)
        assert first.status_code == 201, first.text
        second = who.post(
            "/Patient/jenny/$sharing-choices", json={**choices, "shares": choices["shares"][:1]}
        )
        assert second.status_code == 201
        now = who.get("/Patient/jenny/$sharing-choices").json()
        old = who.get(f"/Consent/{first.json()['id']}").json()
    assert old["status"] == "inactive"
    assert now["consent"] == f"Consent/{second.json()['id']}"
    assert [s["recipient"] for s in now["shares"]] == ["Organization/banes-voluntary-alliance"]
    with world.client("recovery-college") as college, world.client(GP) as gp:
        goals = college.get("/Goal", params={"patient": "jenny", "_total": "accurate"}).json()
        gp_goals = gp.get("/Goal", params={"patient": "jenny", "_total": "accurate"}).json()
    assert goals["total"] > 0
    assert all(
        {"system": "https://carebridge.example/fhir/CodeSystem/care-plan-section", "code": "recovery-goals"}
        in [{"system": t["system"], "code": t["code"]} for t in e["resource"]["meta"]["tag"]]
        for e in goals["entry"]
    )
    assert gp_goals["total"] == 0


def test_another_persons_app_cannot_record_choices_for_millie(world):
    with world.client(VOLUNTARY) as bath_mind:
        answer = bath_mind.post("/Patient/millie/$sharing-choices", json={"shares": []})
    assert answer.status_code in (403, 404)
