"""Who may move a transfer from one step to the next (the FHIR Task state machine).

requested -> received -> accepted | rejected -> in-progress -> completed, plus on-hold
and cancelled: the receiving service (B) acknowledges, accepts or rejects and says when
it has taken over; the service the person is leaving (A) or the person pauses ("not
ready yet"); only A calls the move off. A wrong step is a 409 naming the steps there
are; the right step by the wrong party is a 403. Checked first as a table, then every
step by every party over HTTP on both backends.
"""

from __future__ import annotations

from datetime import date
from itertools import product

import httpx
import pytest
from transfer_world import (
    GP,
    TRUST,
    A,
    B,
    Person,
    consent,
    new_person,
    parameters,
    plan_transfer,
    register_person_app,
    resources,
)

from carebridge.mappings import transfer_lifecycle as lifecycle
from carebridge.mappings.handover import TASK_STATUSES
from tests.conftest import LiveServer, uid

# The specification, written out: (from, to) -> who may take the step by updating the Task.
UPDATES = {
    ("requested", "received"): {lifecycle.B},
    ("received", "accepted"): {lifecycle.B},
    ("received", "rejected"): {lifecycle.B},
    ("accepted", "in-progress"): {lifecycle.A, lifecycle.B},
    ("in-progress", "completed"): {lifecycle.B},
    ("requested", "cancelled"): {lifecycle.A},
    ("received", "cancelled"): {lifecycle.A},
    ("accepted", "cancelled"): {lifecycle.A},
    ("in-progress", "cancelled"): {lifecycle.A},
    ("on-hold", "cancelled"): {lifecycle.A},
}
PAUSABLE = ("requested", "received", "accepted", "in-progress")
PAUSERS = {lifecycle.A, lifecycle.PERSON}
PARTIES = (lifecycle.A, lifecycle.B, lifecycle.PERSON)


def expected_update(current: str, target: str, party: str, paused_from: str | None = None) -> int:
    if (current, target) in UPDATES:
        return 200 if party in UPDATES[(current, target)] else 403
    return 409  # including pausing or resuming by update: that is what $pause and $resume are for


def expected_pause(current: str, party: str) -> int:
    if current not in PAUSABLE:
        return 409
    return 200 if party in PAUSERS else 403


def expected_resume(current: str, party: str) -> int:
    if current != "on-hold":
        return 409
    return 200 if party in PAUSERS else 403


def answer(refusal: lifecycle.Refusal | None) -> int:
    return 200 if refusal is None else refusal.status


# -------------------------------------------------------------------------- the table


def test_the_lifecycle_table_allows_exactly_the_steps_the_people_asked_for() -> None:
    for current, target, party in product(TASK_STATUSES, TASK_STATUSES, PARTIES):
        if current == target:
            continue
        got = answer(lifecycle.refusal(lifecycle.PARENT, current, target, {party}, paused_from="accepted"))
        assert got == expected_update(current, target, party), (current, target, party)
    for current, party in product(TASK_STATUSES, PARTIES):
        paused = answer(lifecycle.refusal(lifecycle.PARENT, current, "on-hold", {party}, via=lifecycle.PAUSE))
        resumed = answer(
            lifecycle.refusal(
                lifecycle.PARENT, current, "accepted", {party}, via=lifecycle.RESUME, paused_from="accepted"
            )
        )
        assert paused == expected_pause(current, party), (current, party)
        assert resumed == expected_resume(current, party), (current, party)


def test_a_wrong_step_names_the_steps_there_are() -> None:
    refusal = lifecycle.refusal(lifecycle.PARENT, "requested", "completed", {lifecycle.B})
    assert refusal is not None and refusal.status == 409
    assert refusal.message == (
        "it cannot move from requested to completed. From requested it can move to: received (by the"
        " receiving service (B)); on-hold (by the service the person is leaving (A) or the person, with"
        " $pause); cancelled (by the service the person is leaving (A))."
    )
    paused = lifecycle.refusal(
        lifecycle.PARENT, "on-hold", "in-progress", {lifecycle.A}, paused_from="in-progress"
    )
    assert paused is not None and paused.status == 409 and "resume it with $resume" in paused.message


def test_weeks_are_done_by_the_service_leading_them_and_otherwise_follow_the_transfer() -> None:
    owner, other = {lifecycle.OWNER, lifecycle.B}, {lifecycle.A}
    assert lifecycle.refusal(lifecycle.WEEK, "requested", "completed", owner) is None
    assert lifecycle.refusal(lifecycle.WEEK, "requested", "in-progress", owner) is None
    assert lifecycle.refusal(lifecycle.WEEK, "in-progress", "completed", owner) is None
    assert answer(lifecycle.refusal(lifecycle.WEEK, "requested", "completed", other)) == 403
    for current, target in product(("on-hold", "completed", "cancelled"), TASK_STATUSES):
        if current != target:
            assert answer(lifecycle.refusal(lifecycle.WEEK, current, target, owner)) == 409
    assert answer(lifecycle.refusal(lifecycle.WEEK, "requested", "on-hold", owner)) == 409


# -------------------------------------------------------------------------- over HTTP

# How a fresh transfer reaches each status: (client name, how) steps after planning.
ROUTES: dict[str, list[tuple[str, str]]] = {
    "requested": [],
    "received": [("B", "received")],
    "accepted": [("B", "received"), ("B", "accepted")],
    "in-progress": [("B", "received"), ("B", "accepted"), ("A", "in-progress")],
    "on-hold": [("B", "received"), ("B", "accepted"), ("A", "in-progress"), ("A", "$pause")],
    "completed": [("B", "received"), ("B", "accepted"), ("A", "in-progress"), ("B", "completed")],
    "rejected": [("B", "received"), ("B", "rejected")],
    "cancelled": [("A", "cancelled")],
}
LIFECYCLE_STATUSES = (
    "requested",
    "received",
    "accepted",
    "rejected",
    "in-progress",
    "on-hold",
    "completed",
    "cancelled",
)


class Parties:
    """The clients acting in one person's transfer."""

    def __init__(self, live: LiveServer, person: Person) -> None:
        self.clients = {
            "A": live.client(A),
            "B": live.client(B),
            "person": register_person_app(live, person),
            "neither": live.client(TRUST),  # the trust both teams belong to: custodian, but not a party
        }

    def __getitem__(self, name: str) -> httpx.Client:
        return self.clients[name]

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


def put_status(
    writer: httpx.Client, reader: httpx.Client, task_id: str, status: str, **changes: object
) -> httpx.Response:
    """`writer` PUTs the Task as `reader` sees it, with a new status."""
    task = reader.get(f"/Task/{task_id}").json()
    return writer.put(f"/Task/{task_id}", json={**task, "status": status, **changes})


def transfer_in(live: LiveServer, status: str) -> tuple[str, Parties]:
    """A fresh person's transfer, brought to `status` by the parties whose step it is."""
    with live.client(A) as a:
        person = new_person(a, uid("tess"))
        task_id = resources(plan_transfer(a, person))[0]["id"]
    parties = Parties(live, person)
    for who, step in ROUTES[status]:
        if step == "$pause":
            r = parties[who].post(f"/Task/{task_id}/$pause", json=parameters(reason="Not ready yet"))
        else:
            r = put_status(parties[who], parties["B"], task_id, step)
        assert r.status_code == 200, r.text
    return task_id, parties


PARTY_OF = {"A": lifecycle.A, "B": lifecycle.B, "person": lifecycle.PERSON, "neither": "nobody"}


@pytest.mark.parametrize("current", list(ROUTES))
def test_every_step_from_each_status_by_every_party(live: LiveServer, current: str) -> None:
    task_id, parties = transfer_in(live, current)
    legal: list[tuple[str, str]] = []
    try:
        for target, who in product(LIFECYCLE_STATUSES, ("A", "B", "neither")):
            if target == current:
                continue
            expected = expected_update(current, target, PARTY_OF[who], paused_from="in-progress")
            if expected == 200:
                legal.append((who, target))
                continue
            if current == "completed" and who == "A":
                expected = 404  # B holds the record now, and this person gave A no consent
            r = put_status(parties[who], parties["B"], task_id, target)
            assert r.status_code == expected, (current, target, who, r.text)
            assert r.json()["resourceType"] == "OperationOutcome"
            if expected == 409:
                assert f"From {current} it can move to" in r.json()["issue"][0]["diagnostics"]
        for who in ("A", "B", "person", "neither"):
            for op, expect in (("$pause", expected_pause), ("$resume", expected_resume)):
                expected = expect(current, PARTY_OF[who])
                if expected == 200:
                    legal.append((who, op))
                    continue
                if current == "completed" and who == "A":
                    expected = 404
                body = (
                    parameters(reason="Not ready yet")
                    if op == "$pause"
                    else parameters(**{"from": date.today()})
                )
                r = parties[who].post(f"/Task/{task_id}/{op}", json=body)
                assert r.status_code == expected, (current, op, who, r.text)
        # Nothing refused changed anything.
        assert parties["B"].get(f"/Task/{task_id}").json()["status"] == current
    finally:
        parties.close()
    # Each legal step, on a transfer of its own.
    for who, step in legal:
        fresh_id, fresh = transfer_in(live, current)
        try:
            if step.startswith("$"):
                body = (
                    parameters(reason="Not ready yet")
                    if step == "$pause"
                    else parameters(**{"from": date.today()})
                )
                r = fresh[who].post(f"/Task/{fresh_id}/{step}", json=body)
                want = "on-hold" if step == "$pause" else "in-progress"
            else:
                r = put_status(fresh[who], fresh["B"], fresh_id, step)
                want = step
            assert r.status_code == 200, (current, who, step, r.text)
            assert fresh["B"].get(f"/Task/{fresh_id}").json()["status"] == want
        finally:
            fresh.close()


def test_the_person_moves_their_transfer_only_by_saying_not_ready_yet(live: LiveServer) -> None:
    task_id, parties = transfer_in(live, "received")
    try:
        # Their app reads; it does not write records, so a status update is refused by scope.
        assert put_status(parties["person"], parties["person"], task_id, "cancelled").status_code == 403
        r = parties["person"].post(f"/Task/{task_id}/$pause", json=parameters(reason="My nan is ill"))
        assert r.status_code == 200
        assert resources(r.json())[0]["statusReason"] == {"text": "My nan is ill"}
    finally:
        parties.close()


def test_a_week_is_done_by_the_service_leading_it_with_a_short_note(live: LiveServer) -> None:
    with live.client(A) as a, live.client(B) as b, live.client(TRUST) as trust:
        person = new_person(a, uid("tess"))
        parent, *weeks, section = resources(plan_transfer(a, person))
        week1, week6 = weeks[0]["id"], weeks[5]["id"]  # A leads week 1, B week 6
        note = [{"text": "Phoned Tess; she is looking forward to meeting Pardeep."}]
        assert put_status(b, a, week1, "completed").status_code == 403
        assert put_status(trust, a, week1, "completed").status_code == 403
        done = a.put(
            f"/Task/{week1}", json={**a.get(f"/Task/{week1}").json(), "status": "completed", "note": note}
        )
        assert done.status_code == 200 and done.json()["note"] == note
        assert put_status(b, b, week6, "in-progress").status_code == 200
        # A week does not pause or end by itself: it follows the transfer.
        held = put_status(b, b, week6, "on-hold")
        assert held.status_code == 409 and "follows its transfer" in held.json()["issue"][0]["diagnostics"]
        activity = [x["detail"]["status"] for x in a.get(f"/CarePlan/{section['id']}").json()["activity"]]
        provenance = a.get("/Provenance", params={"target": f"Task/{week1}"}).json()
    assert activity == [
        "completed",
        "scheduled",
        "scheduled",
        "scheduled",
        "scheduled",
        "in-progress",
        "scheduled",
        "scheduled",
    ]
    assert {e["resource"]["activity"]["text"] for e in provenance["entry"]} == {
        "planned (requested)",
        "requested -> completed",
    }


def test_the_plan_of_a_transfer_does_not_change_by_updating_its_tasks(live: LiveServer) -> None:
    with live.client(A) as a, live.client(B) as b:
        person = new_person(a, uid("tess"))
        parent, *weeks, _ = resources(plan_transfer(a, person))
        task = b.get(f"/Task/{parent['id']}").json()
        moved = b.put(f"/Task/{parent['id']}", json={**task, "owner": {"reference": f"Organization/{TRUST}"}})
        week = a.get(f"/Task/{weeks[0]['id']}").json()
        later = a.put(f"/Task/{weeks[0]['id']}", json={**week, "executionPeriod": {"start": "2031-01-01"}})
        noted = b.put(
            f"/Task/{parent['id']}", json={**task, "note": [{"text": "Pardeep has read the plan."}]}
        )
    assert (
        moved.status_code == 422 and "Task.owner cannot be changed" in moved.json()["issue"][0]["diagnostics"]
    )
    assert later.status_code == 422
    assert noted.status_code == 200  # notes and the like are fine


def test_a_transaction_cannot_step_around_the_lifecycle(live: LiveServer) -> None:
    with live.client(A) as a:
        person = new_person(a, uid("tess"))
        parent = resources(plan_transfer(a, person))[0]
        task = {**a.get(f"/Task/{parent['id']}").json(), "status": "completed"}
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": task, "request": {"method": "PUT", "url": f"Task/{parent['id']}"}}],
        }
        r = a.post("", json=bundle)
        assert r.status_code == 409
        assert a.get(f"/Task/{parent['id']}").json()["status"] == "requested"


def test_b_cannot_accept_without_the_consent_it_needs(live: LiveServer) -> None:
    with live.client(A) as a, live.client(B) as b:
        person = new_person(a, uid("tess"))
        parent = resources(plan_transfer(a, person))[0]
        assert put_status(b, b, parent["id"], "received").status_code == 200
        # Tess changes her mind: B may now see the transfer plan, but not her care plan.
        found = a.get("/Consent", params={"patient": person.ref, "actor": f"Organization/{B}"}).json()
        old = found["entry"][0]["resource"]
        a.put(f"/Consent/{old['id']}", json={**old, "status": "inactive"}).raise_for_status()
        a.post("/Consent", json=consent(person, B, ("transfer",))).raise_for_status()
        refused = put_status(b, b, parent["id"], "accepted")
        assert refused.status_code == 422
        words = refused.json()["issue"][0]["diagnostics"]
        assert "cannot see Tess's care plan because she has not agreed to share it" in words
        assert b.get(f"/Task/{parent['id']}").json()["status"] == "received"
        # With her agreement again, B accepts.
        a.post("/Consent", json=consent(person, B)).raise_for_status()
        assert put_status(b, b, parent["id"], "accepted").status_code == 200


def test_calling_the_move_off_ends_the_weeks_the_section_and_the_handover_roles(live: LiveServer) -> None:
    with live.client(A) as a, live.client(GP) as gp:
        person = new_person(a, uid("tess"))
        parent, *weeks, section = resources(plan_transfer(a, person))
        done = a.get(f"/Task/{weeks[0]['id']}").json()
        a.put(f"/Task/{weeks[0]['id']}", json={**done, "status": "completed"}).raise_for_status()
        r = put_status(a, a, parent["id"], "cancelled", statusReason={"text": "Tess is staying with us"})
        assert r.status_code == 200
        statuses = [a.get(f"/Task/{w['id']}").json()["status"] for w in weeks]
        plan = a.get(f"/CarePlan/{section['id']}").json()
        team = a.get(f"/CareTeam/{person.id}-team").json()
        provenance = a.get("/Provenance", params={"target": f"Task/{parent['id']}"}).json()
        assert gp.get(f"/Task/{parent['id']}").status_code == 404  # and nothing more was shared
    assert statuses == ["completed"] + ["cancelled"] * 7
    assert plan["status"] == "revoked" and "called off" in plan["description"]
    today = date.today().isoformat()
    ends = {p["member"]["reference"]: p["period"].get("end") for p in team["participant"] if "period" in p}
    assert set(ends.values()) == {today}
    steps = {e["resource"]["activity"]["text"]: e["resource"] for e in provenance["entry"]}
    assert set(steps) == {"planned (requested)", "requested -> cancelled"}
    assert steps["requested -> cancelled"]["reason"] == [{"text": "Tess is staying with us"}]
    assert steps["requested -> cancelled"]["agent"][0]["who"] == {"reference": f"Organization/{A}"}


def test_a_transfers_tasks_are_not_deleted_it_is_cancelled(live: LiveServer) -> None:
    with live.client(A) as a:
        person = new_person(a, uid("tess"))
        parent, *weeks, section = resources(plan_transfer(a, person))
        for task in (parent, weeks[0]):
            r = a.delete(f"/Task/{task['id']}")
            assert r.status_code == 409, r.text
            assert "cancelled" in r.json()["issue"][0]["diagnostics"]
            assert a.get(f"/Task/{task['id']}").status_code == 200
        assert put_status(a, a, parent["id"], "cancelled").status_code == 200
        assert a.delete(f"/Task/{parent['id']}").status_code == 409  # its record stays
