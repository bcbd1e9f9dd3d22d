""" "Not ready yet": pausing and resuming a transfer ($pause, $resume).

The person can say they are not ready and the handover waits (seeds/000_..., section 3).
Pausing puts the transfer and every week still to come on hold; resuming re-plans the
weeks not yet done from the day it starts again, keeping the weeks already done; both
services are told each time, in the person's words.
"""

from __future__ import annotations

from datetime import date, timedelta

import httpx
from transfer_world import (
    TRUST,
    A,
    B,
    new_person,
    parameters,
    plan_transfer,
    register_person_app,
    resources,
    set_status,
    weeks_ago,
)

from tests.conftest import uid


def started_three_weeks_ago(a: httpx.Client, b: httpx.Client):
    """A fresh person's transfer, accepted and running, in its fourth week; weeks 1-3 done."""
    person = new_person(a, uid("tess"))
    parent, *weeks, section = resources(plan_transfer(a, person, weeks_ago(3)))
    for status, who in (("received", b), ("accepted", b), ("in-progress", a)):
        assert set_status(who, parent["id"], status).status_code == 200
    for week in weeks[:3]:
        owner = a if week["owner"]["reference"] == f"Organization/{A}" else b
        assert set_status(owner, week["id"], "completed").status_code == 200
    return person, parent, weeks, section


def statuses(client, weeks: list[dict]) -> list[str]:
    return [client.get(f"/Task/{w['id']}").json()["status"] for w in weeks]


def notices(client, parent: dict, code: str) -> list[dict]:
    found = client.get("/Communication", params={"about": f"Task/{parent['id']}"}).json()
    return [
        e["resource"]
        for e in found.get("entry", [])
        if e["resource"]["category"][0]["coding"][0]["code"] == code
    ]


def test_not_ready_yet_puts_the_move_and_every_week_to_come_on_hold(live):
    with live.client(A) as a, live.client(B) as b:
        person, parent, weeks, section = started_three_weeks_ago(a, b)
    with live.client(A) as a, live.client(B) as b, register_person_app(live, person) as tess:
        r = tess.post(f"/Task/{parent['id']}/$pause", json=parameters(reason="Not ready yet: my nan is ill"))
        assert r.status_code == 200
        answered = resources(r.json())
        task = a.get(f"/Task/{parent['id']}").json()
        plan = tess.get(f"/CarePlan/{section['id']}").json()
        told = notices(b, parent, "transfer-paused")
    assert answered[0]["id"] == parent["id"] and answered[0]["status"] == "on-hold"
    assert task["status"] == "on-hold"
    assert task["statusReason"] == {"text": "Not ready yet: my nan is ill"}
    with live.client(A) as a:
        assert statuses(a, weeks) == ["completed"] * 3 + ["on-hold"] * 5
    assert plan["status"] == "on-hold"
    assert (
        'You said: "Not ready yet: my nan is ill". Nothing more happens until you are ready.'
        in plan["description"]
    )
    assert [x["detail"]["status"] for x in plan["activity"]] == ["completed"] * 3 + ["on-hold"] * 5
    # Both services are told, in her words, by her.
    [notice] = told
    assert {r["reference"] for r in notice["recipient"]} == {f"Organization/{A}", f"Organization/{B}"}
    assert notice["sender"] == {"reference": person.ref}
    assert "Not ready yet: my nan is ill" in notice["payload"][0]["contentString"]
    assert "Sam Patel stays Tess's named contact" in notice["payload"][0]["contentString"]


def test_resuming_re_plans_the_weeks_not_yet_done_from_the_day_it_starts_again(live):
    restart = date.today() + timedelta(days=14)
    with live.client(A) as a, live.client(B) as b:
        person, parent, weeks, section = started_three_weeks_ago(a, b)
        assert (
            a.post(f"/Task/{parent['id']}/$pause", json=parameters(reason="Not ready yet")).status_code == 200
        )
        r = a.post(f"/Task/{parent['id']}/$resume", json=parameters(**{"from": restart}))
        assert r.status_code == 200
        task = a.get(f"/Task/{parent['id']}").json()
        after = [a.get(f"/Task/{w['id']}").json() for w in weeks]
        plan = a.get(f"/CarePlan/{section['id']}").json()
        team = a.get(f"/CareTeam/{person.id}-team").json()
        told = notices(b, parent, "transfer-resumed")
    assert task["status"] == "in-progress"  # back where it was
    assert "statusReason" not in task
    # Weeks done keep their dates; the rest follow on, week by week, from the restart.
    assert [w["executionPeriod"] for w in after[:3]] == [w["executionPeriod"] for w in weeks[:3]]
    for n, week in enumerate(after[3:]):
        start = restart + timedelta(days=7 * n)
        assert week["executionPeriod"] == {
            "start": start.isoformat(),
            "end": (start + timedelta(days=6)).isoformat(),
        }
        assert week["status"] == "requested"
        assert week["owner"] == weeks[3 + n]["owner"]  # the same people, in the same order
    last_day = (restart + timedelta(days=7 * 5 - 1)).isoformat()
    assert task["restriction"]["period"] == {"start": weeks[0]["executionPeriod"]["start"], "end": last_day}
    assert plan["status"] == "active" and plan["period"]["end"] == last_day
    assert [x["detail"]["scheduledPeriod"] for x in plan["activity"]] == [w["executionPeriod"] for w in after]
    assert "it starts again on" in plan["description"]
    # Sam stays on the care team until the re-planned end.
    sam = next(
        p
        for p in team["participant"]
        if p["member"]["reference"] == "Practitioner/sam-patel" and "period" in p
    )
    assert sam["period"]["end"] == last_day
    [notice] = told
    assert {r["reference"] for r in notice["recipient"]} == {f"Organization/{A}", f"Organization/{B}"}
    assert "The remaining weeks: week 4 from" in notice["payload"][0]["contentString"]


def test_a_move_can_pause_and_start_again_more_than_once(live):
    with live.client(A) as a, live.client(B) as b:
        person, parent, weeks, _ = started_three_weeks_ago(a, b)
        for n in range(2):
            assert (
                a.post(f"/Task/{parent['id']}/$pause", json=parameters(reason=f"Pause {n}")).status_code
                == 200
            )
            assert a.post(f"/Task/{parent['id']}/$resume", json=parameters()).status_code == 200
        week4 = a.get(f"/Task/{weeks[3]['id']}").json()
        assert set_status(a, weeks[3]["id"], "completed").status_code == 200
        assert a.post(f"/Task/{parent['id']}/$pause", json=parameters(reason="Again")).status_code == 200
        assert a.post(f"/Task/{parent['id']}/$resume", json=parameters()).status_code == 200
        kept = a.get(f"/Task/{weeks[3]['id']}").json()
        steps = a.get("/Provenance", params={"target": f"Task/{parent['id']}", "_count": 50}).json()
    assert week4["executionPeriod"]["start"] == date.today().isoformat()
    assert kept["status"] == "completed" and kept["executionPeriod"] == week4["executionPeriod"]
    texts = [e["resource"]["activity"]["text"] for e in steps["entry"]]
    assert texts.count("in-progress -> on-hold") == 3 and texts.count("on-hold -> in-progress") == 3


def test_pause_and_resume_are_refused_where_they_make_no_sense(live):
    with live.client(A) as a, live.client(B) as b, live.client(TRUST) as trust:
        person, parent, weeks, _ = started_three_weeks_ago(a, b)
        assert a.post(f"/Task/{parent['id']}/$resume", json=parameters()).status_code == 409
        assert (
            b.post(f"/Task/{parent['id']}/$pause", json=parameters(reason="We are busy")).status_code == 403
        )
        assert trust.post(f"/Task/{parent['id']}/$pause", json=parameters(reason="x")).status_code == 403
        assert a.post(f"/Task/{parent['id']}/$pause", json=parameters()).status_code == 400  # no reason
        week = a.post(f"/Task/{weeks[4]['id']}/$pause", json=parameters(reason="x"))
        assert week.status_code == 422 and f"Task/{parent['id']}" in week.json()["issue"][0]["diagnostics"]
        assert a.post(f"/Task/{parent['id']}/$pause", json=parameters(reason="Not yet")).status_code == 200
        again = a.post(f"/Task/{parent['id']}/$pause", json=parameters(reason="Not yet"))
        assert again.status_code == 409 and "already on-hold" in again.json()["issue"][0]["diagnostics"]
        # A week cannot be done while the move is paused.
        assert set_status(a, weeks[4]["id"], "completed").status_code == 409
        assert a.post("/Task/no-such-task/$pause", json=parameters(reason="x")).status_code == 404


def test_overdue_weeks_are_found_by_search(live):
    with live.client(A) as a, live.client(B) as b:
        person = new_person(a, uid("tess"))
        parent, *weeks, _ = resources(plan_transfer(a, person, weeks_ago(3)))
        today = date.today().isoformat()
        search = {"status": "requested", "period": f"lt{today}", "part-of": f"Task/{parent['id']}"}
        overdue = b.get("/Task", params=search).json()
        assert sorted(e["resource"]["id"] for e in overdue["entry"]) == sorted(w["id"] for w in weeks[:3])
        assert set_status(a, weeks[0]["id"], "completed").status_code == 200
        still = b.get("/Task", params=search).json()
        assert sorted(e["resource"]["id"] for e in still["entry"]) == sorted(w["id"] for w in weeks[1:3])
        # While the person is not ready, nothing is overdue.
        assert a.post(f"/Task/{parent['id']}/$pause", json=parameters(reason="Not ready")).status_code == 200
        assert b.get("/Task", params=search).json().get("entry") is None
