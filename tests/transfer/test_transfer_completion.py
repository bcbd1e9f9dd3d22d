"""Completing a transfer: the receiving service takes over the person's record.

On completion the person's custodian (Patient.managingOrganization) becomes service B in
the same transaction, so B sees what a custodian sees and A keeps only what the person's
consent grants it. Every step of a transfer is audited with a Provenance. Ends with the
demo's own story: Millie's move, run through the API from the introduction week to done.
"""

from __future__ import annotations

from datetime import date, timedelta

import httpx
from transfer_world import (
    GP,
    A,
    B,
    Person,
    consent,
    new_person,
    parameters,
    plan_parameters,
    plan_transfer,
    resources,
    set_status,
)

from tests.conftest import LiveServer, uid


def run_to_completion(a: httpx.Client, b: httpx.Client, parent: dict) -> httpx.Response:
    for status, who in (("received", b), ("accepted", b), ("in-progress", a)):
        assert set_status(who, parent["id"], status).status_code == 200
    return set_status(b, parent["id"], "completed")


def test_on_completion_b_holds_the_record_and_a_keeps_only_what_consent_grants(live):
    with live.client(A) as a, live.client(B) as b:
        person = new_person(a, uid("tess"), a_keeps=("contacts",))
        parent, *weeks, section = resources(plan_transfer(a, person))
        assert set_status(a, weeks[0]["id"], "completed").status_code == 200
        done = run_to_completion(a, b, parent)
        assert done.status_code == 200 and done.json()["status"] == "completed"

        patient = b.get(f"/Patient/{person.id}").json()
        assert patient["managingOrganization"] == {"reference": f"Organization/{B}"}
        assert b.get(f"/CarePlan/{person.id}-crisis-plan").status_code == 200  # B is the custodian now
        # A sees what Tess's consent grants it (her contacts and her details)...
        assert a.get(f"/CarePlan/{person.id}-contacts").status_code == 200
        assert a.get(f"/Patient/{person.id}").status_code == 200
        # ...and nothing else any more.
        for path in (
            f"/CarePlan/{person.id}-crisis-plan",
            f"/CarePlan/{person.plan}",
            f"/Task/{parent['id']}",
        ):
            assert a.get(path).status_code == 404, path

        weeks_now = [b.get(f"/Task/{w['id']}").json()["status"] for w in weeks]
        plan = b.get(f"/CarePlan/{section['id']}").json()
        steps = b.get("/Provenance", params={"target": f"Task/{parent['id']}", "_count": 50}).json()
    assert weeks_now == ["completed"] + ["cancelled"] * 7  # the move is done; no more handover weeks
    assert plan["status"] == "completed"
    assert "B&NES Primary Care Liaison Service now looks after your care" in plan["description"]
    by_step = {e["resource"]["activity"]["text"]: e["resource"] for e in steps["entry"]}
    assert set(by_step) == {
        "planned (requested)",
        "requested -> received",
        "received -> accepted",
        "accepted -> in-progress",
        "in-progress -> completed",
    }
    completion = by_step["in-progress -> completed"]
    assert completion["agent"][0]["who"] == {"reference": f"Organization/{B}"}
    # The custodian change is part of the same audited step.
    assert f"Patient/{person.id}/_history/{patient['meta']['versionId']}" in [
        t["reference"] for t in completion["target"]
    ]


def test_without_any_consent_a_keeps_nothing_after_the_move(live):
    with live.client(A) as a, live.client(B) as b:
        person = new_person(a, uid("tess"))
        parent = resources(plan_transfer(a, person))[0]
        assert run_to_completion(a, b, parent).status_code == 200
        assert a.get(f"/Patient/{person.id}").status_code == 404
        assert a.get("/CarePlan", params={"patient": person.id}).json().get("entry") is None


def test_every_transition_and_disclosure_is_audited(live):
    with live.client(A) as a, live.client(B) as b:
        person = new_person(a, uid("tess"))
        parent = resources(plan_transfer(a, person))[0]
        assert a.post(f"/Task/{parent['id']}/$pause", json=parameters(reason="Not yet")).status_code == 200
        assert a.post(f"/Task/{parent['id']}/$resume", json=parameters()).status_code == 200
        assert set_status(b, parent["id"], "received").status_code == 200
        steps = a.get("/Provenance", params={"target": f"Task/{parent['id']}", "_count": 50}).json()
        audit = a.get("/AuditEvent", params={"patient": person.ref, "_count": 200}).json()
    texts = sorted(e["resource"]["activity"]["text"] for e in steps["entry"])
    assert texts == [
        "on-hold -> requested",
        "planned (requested)",
        "requested -> on-hold",
        "requested -> received",
    ]
    # What the operations answered with was audited as disclosures.
    disclosed = {
        ent["what"]["reference"].split("/_history")[0]
        for e in audit["entry"]
        if e["resource"]["subtype"][0]["code"] == "operation"
        for ent in e["resource"]["entity"]
    }
    assert f"Task/{parent['id']}" in disclosed


def test_millies_move_runs_through_the_api_from_her_introduction_week_to_done(own_demo: LiveServer):
    """The demo's transfer, in its introduction week: she pauses it, Sam restarts it next
    week, each service does its weeks, Pardeep's team takes over. Her GP, whom she lets know
    about the move and nothing else, can follow it; Sam's team loses her record."""
    live = own_demo
    restart = date.today() + timedelta(days=7)
    with (
        live.client(A) as sam,
        live.client(B) as pardeep,
        live.client("millie-app") as millie,
        live.client(GP) as gp,
    ):
        paused = millie.post("/Task/millie-transfer/$pause", json=parameters(reason="Not ready yet, exams"))
        assert paused.status_code == 200
        assert (
            sam.post("/Task/millie-transfer/$resume", json=parameters(**{"from": restart})).status_code == 200
        )
        weeks = sorted(
            (
                e["resource"]
                for e in sam.get("/Task", params={"part-of": "Task/millie-transfer"}).json()["entry"]
            ),
            key=lambda t: t["id"],
        )
        assert weeks[3]["executionPeriod"]["start"] == restart.isoformat()  # week 4, the introduction
        for week in weeks[3:]:
            lead = sam if week["owner"]["reference"] == f"Organization/{A}" else pardeep
            assert set_status(lead, week["id"], "completed").status_code == 200
        assert set_status(pardeep, "millie-transfer", "completed").status_code == 200

        section = millie.get("/CarePlan/millie-transfer-section").json()
        assert section["status"] == "completed"
        assert [x["detail"]["status"] for x in section["activity"]] == ["completed"] * 8
        assert (
            pardeep.get("/Patient/millie").json()["managingOrganization"]["reference"] == f"Organization/{B}"
        )
        assert sam.get("/CarePlan/millie-crisis-plan").status_code == 404
        # Her GP may know about the move (her consent), so sees the transfer and its news...
        assert gp.get("/Task/millie-transfer").json()["status"] == "completed"
        news = gp.get("/Communication", params={"about": "Task/millie-transfer"}).json()
        assert {e["resource"]["category"][0]["coding"][0]["code"] for e in news["entry"]} == {
            "transfer-paused",
            "transfer-resumed",
        }
        # ...but still nothing of her care plan.
        assert gp.get("/CarePlan/millie-plan").status_code == 404

        # Planning with the demo data: Jenny agrees that Pardeep's team may see her plan.
        refused = sam.post("/CarePlan/jenny-plan/$plan-transfer", json=plan_parameters(date.today()))
        assert refused.status_code == 422
        assert sam.post("/Consent", json=consent(Person("jenny", "Jenny"), B)).status_code == 201
        planned = sam.post(
            "/CarePlan/jenny-plan/$plan-transfer", json=plan_parameters(date.today(), notify_gp=True)
        )
        assert planned.status_code == 201
        told = {o["type"]["coding"][0]["code"]: o for o in resources(planned.json())[0]["output"]}
        assert told["gp-told"]["valueBoolean"] is False  # Jenny has not said her GP may know
