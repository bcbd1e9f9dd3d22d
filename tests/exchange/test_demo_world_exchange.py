"""The issue's "done when", with the demo world: Bath Mind, a voluntary organisation in
the B&NES alliance, subscribes to Millie's plan. It receives each change to the sections
she shares, never her crisis plan or risk assessment, a DELETE for what it holds when
she withdraws, and its bulk export holds exactly what her consent allows.
(This changes Millie's consent, so it runs on a server of its own.)
"""

from __future__ import annotations

import json

from exchange_world import CUSTODIAN, Partner, change, export, subscribe, wait_for

from tests.conftest import LiveServer

VOLUNTARY = "bath-mind"
MILLIE_TYPES = "Patient,CarePlan,Goal,RiskAssessment,CareTeam,RelatedPerson,Consent,Task"


def millie_readable(client: object) -> set[str]:
    out = set()
    for t in MILLIE_TYPES.split(","):
        params = {"_id": "millie"} if t == "Patient" else {"patient": "millie", "_count": "200"}
        for e in client.get(f"/{t}", params=params).json().get("entry", []):  # type: ignore[attr-defined]
            out.add(f"{t}/{e['resource']['id']}")
    return out


def millies(exported: dict[str, list[dict]]) -> set[str]:
    def hers(r: dict) -> bool:
        text = json.dumps(r)
        return (r["resourceType"] == "Patient" and r["id"] == "millie") or "Patient/millie" in text

    return {f"{t}/{r['id']}" for t, rs in exported.items() for r in rs if hers(r)}


def test_bath_mind_gets_millies_changes_a_recall_when_she_withdraws_and_an_export_of_what_she_allows(
    exchange: LiveServer, partner: Partner
) -> None:
    with exchange.client(VOLUNTARY) as bath_mind, exchange.client(CUSTODIAN) as trust:
        subscribe(bath_mind, "CarePlan?patient=millie", partner.endpoint)

        exported = export(bath_mind, _type=MILLIE_TYPES)
        allowed = millie_readable(bath_mind)
        assert millies(exported) == allowed
        assert "CarePlan/millie-daily-activities" in allowed
        assert "CarePlan/millie-crisis-plan" not in allowed
        assert "CarePlan/millie-risk-assessment" not in allowed
        assert "RiskAssessment/millie-risk" not in allowed

        change(trust, "CarePlan", "millie-daily-activities", description="Swimming moved to Saturdays")
        change(trust, "CarePlan", "millie-crisis-plan", description="Text Mum first, then 111")
        change(trust, "CarePlan", "millie-about-me", description="I'm Millie, I'm 18")
        wait_for(lambda: len({r.ref for r in partner.received("PUT")}) == 2, why="both shared changes")
        assert list(dict.fromkeys(r.ref for r in partner.received("PUT"))) == [
            "CarePlan/millie-daily-activities",
            "CarePlan/millie-about-me",
        ]
        assert list(dict.fromkeys(r.body["description"] for r in partner.received("PUT"))) == [
            "Swimming moved to Saturdays",
            "I'm Millie, I'm 18",
        ]

        # Millie, with Sam beside her, stops sharing with the voluntary sector.
        consent = trust.get("/Consent/millie-consent-voluntary").json()
        assert (
            trust.put("/Consent/millie-consent-voluntary", json={**consent, "status": "inactive"}).status_code
            == 200
        )
        wait_for(
            lambda: len({r.ref for r in partner.received("DELETE")}) == 2, why="both copies to be recalled"
        )
        assert {r.ref for r in partner.received("DELETE")} == {
            "CarePlan/millie-daily-activities",
            "CarePlan/millie-about-me",
        }
        assert millie_readable(bath_mind) == set()
        assert millies(export(bath_mind, _type=MILLIE_TYPES)) == set()
