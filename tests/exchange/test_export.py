"""FHIR Bulk Data export: asynchronous kick-off (202 + Content-Location), status polling,
NDJSON files per type, `_type` and `_since`; every file holds exactly what the gate lets
the requesting partner see (redacted as a read would be), only that partner can reach
the job, and each patient's disclosures are audited once per export.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest
from exchange_world import ASYNC, CUSTODIAN, Person, change, export, finished, kick_off

from tests.conftest import LiveServer

VOLUNTARY = "bath-mind"


def of(person: Person, exported: dict[str, list[dict]]) -> set[str]:
    ids = {person.id, *person.sections.values(), person.plan, person.risk, person.consent}
    return {f"{t}/{r['id']}" for t, rs in exported.items() for r in rs if r["id"] in ids}


def test_kick_off_needs_prefer_respond_async(exchange: LiveServer) -> None:
    with exchange.client(VOLUNTARY) as c:
        r = c.get("/$export")
    assert r.status_code == 400
    assert "respond-async" in r.json()["issue"][0]["diagnostics"]


def test_unknown_types_and_parameters_are_refused(exchange: LiveServer) -> None:
    with exchange.client(VOLUNTARY) as c:
        assert c.get("/$export", params={"_type": "Nonsense"}, headers=ASYNC).status_code == 400
        assert c.get("/$export", params={"_typeFilter": "CarePlan?x=1"}, headers=ASYNC).status_code == 400
        assert c.get("/$export", params={"_since": "yesterday"}, headers=ASYNC).status_code == 400
        assert c.get("/Patient/$export", params={"_type": "Organization"}, headers=ASYNC).status_code == 400


def test_an_export_holds_exactly_what_the_partner_may_see(exchange: LiveServer, person: Person) -> None:
    types = "Patient,CarePlan,RiskAssessment,Consent"
    with exchange.client(VOLUNTARY) as bath_mind:
        exported = export(bath_mind, _type=types)
        readable = {
            f"{t}/{e['resource']['id']}"
            for t in types.split(",")
            for e in bath_mind.get(
                f"/{t}", params={"patient": person.id} if t != "Patient" else {"_id": person.id}
            )
            .json()
            .get("entry", [])
        }
        assert of(person, exported) == readable
        assert readable == {
            f"Patient/{person.id}",
            f"CarePlan/{person.plan}",
            f"CarePlan/{person.section('about-me')}",
            f"CarePlan/{person.section('daily-activities')}",
        }
        # Redacted exactly as a read would be.
        daily = next(r for r in exported["CarePlan"] if r["id"] == person.section("daily-activities"))
        assert daily == bath_mind.get(f"/CarePlan/{daily['id']}").json()
        assert "RiskAssessment" not in json.dumps(daily)
    assert set(exported) <= set(types.split(","))


def test_the_custodian_export_holds_the_whole_record(exchange: LiveServer, person: Person) -> None:
    with exchange.client(CUSTODIAN) as trust:
        exported = export(trust, _type="Patient,CarePlan,RiskAssessment,Consent")
    assert of(person, exported) == {
        f"Patient/{person.id}",
        f"Consent/{person.consent}",
        f"RiskAssessment/{person.risk}",
        f"CarePlan/{person.plan}",
        *(f"CarePlan/{s}" for s in person.sections.values()),
    }


def test_since_holds_only_what_changed_after_it(exchange: LiveServer, person: Person) -> None:
    with exchange.client(CUSTODIAN) as trust:
        before = change(trust, "CarePlan", person.section("daily-activities"), description="before the cut")
        stamp = datetime.fromisoformat(before["meta"]["lastUpdated"].replace("Z", "+00:00"))
        cut = (stamp + timedelta(milliseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        time.sleep(0.01)
        change(trust, "CarePlan", person.section("about-me"), description="after the cut")
        exported = export(trust, _type="CarePlan,Patient", _since=cut)
    assert of(person, exported) == {f"CarePlan/{person.section('about-me')}"}


def test_only_the_requesting_partner_can_poll_fetch_or_cancel(exchange: LiveServer, person: Person) -> None:
    with exchange.client(VOLUNTARY) as bath_mind:
        status = kick_off(bath_mind, "/Patient/$export", _type="CarePlan")
        manifest = finished(bath_mind, status)
        file_url = manifest["output"][0]["url"]
        with exchange.client("citizens-advice-banes") as other:
            assert other.get(status).status_code == 404
            assert other.get(file_url).status_code == 404
            assert other.delete(status).status_code == 404
        assert manifest["requiresAccessToken"] is True
        assert bath_mind.delete(status).status_code == 202
        assert bath_mind.get(status).status_code == 404
        assert bath_mind.get(file_url).status_code == 404


def test_each_patient_in_an_export_is_audited_once(exchange: LiveServer, person: Person) -> None:
    with exchange.client(VOLUNTARY) as bath_mind:
        export(bath_mind, _type="Patient,CarePlan")
    with exchange.client(CUSTODIAN) as trust:
        log = trust.get("/AuditEvent", params={"patient": person.id, "_count": "100"}).json()
    exports = [
        e["resource"]
        for e in log.get("entry", [])
        if any(s.get("code") == "export" for s in e["resource"].get("subtype", []))
    ]
    assert len(exports) == 1
    [event] = exports
    assert event["agent"][0]["who"]["reference"] == f"Organization/{VOLUNTARY}"
    listed = {e["what"]["reference"].split("/_history")[0] for e in event["entity"][1:]}
    assert f"CarePlan/{person.section('about-me')}" in listed
    assert f"CarePlan/{person.section('crisis-plan')}" not in listed


def test_break_glass_cannot_be_used_for_a_bulk_export(exchange: LiveServer) -> None:
    with exchange.client("keynsham-gp") as gp:
        r = gp.get(
            "/$export",
            headers={**ASYNC, "X-Purpose-Of-Use": "ETREAT", "X-Break-Glass-Reason": "everyone, just in case"},
        )
    assert r.status_code == 403


@pytest.mark.parametrize("partner", ["keynsham-gp", VOLUNTARY])
def test_a_system_export_includes_organisations_but_no_one_elses_private_records(
    exchange: LiveServer, person: Person, partner: str
) -> None:
    with exchange.client(partner) as c:
        exported = export(c, "/$export", _type="Organization,CarePlan")
    assert any(o["id"] == CUSTODIAN for o in exported["Organization"])
    crisis = {f"CarePlan/{person.section('crisis-plan')}"}
    assert not (of(person, exported) & crisis)
