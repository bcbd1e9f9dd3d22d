"""Planning a transfer of care: POST CarePlan/{id}/$plan-transfer (CONTRACTS.md section 6).

The people in seeds/000_... section 3 asked for a gradual move: service A keeps in touch
while service B's key worker is introduced, then they take turns; the GP is told only
with the person's permission. Every test plans on a fresh person, over HTTP, on both
backends.
"""

from __future__ import annotations

from datetime import date, timedelta

from transfer_world import (
    GP,
    PARDEEP,
    SEED_OWNERS,
    TRUST,
    VOLUNTARY,
    A,
    B,
    consent,
    new_person,
    plan_parameters,
    plan_transfer,
    resources,
)

from carebridge.mappings.vocabulary import TRANSFER_OF_CARE
from tests.conftest import uid

OWNER = {f"Organization/{A}": "A", f"Organization/{B}": "B"}


def outputs(task: dict) -> dict:
    return {o["type"]["coding"][0]["code"]: o for o in task.get("output", [])}


def test_a_gradual_eight_week_move_follows_the_seed_table_week_by_week(live):
    start = date(2030, 6, 3)
    with live.client(A) as a:
        person = new_person(a, uid("tess"))
        r = a.post(f"/CarePlan/{person.plan}/$plan-transfer", json=plan_parameters(start))
    assert r.status_code == 201, r.text
    parent, *weeks, section = resources(r.json())
    assert r.headers["Location"].endswith(f"/Task/{parent['id']}/_history/1")

    assert parent["resourceType"] == "Task" and parent["status"] == "requested" and parent["intent"] == "plan"
    assert TRANSFER_OF_CARE in parent["code"]["coding"]
    assert parent["focus"] == {"reference": f"CarePlan/{person.plan}"}
    assert parent["for"] == {"reference": person.ref}
    assert parent["requester"] == {"reference": f"Organization/{A}"}
    assert parent["owner"] == {"reference": f"Organization/{B}"}
    assert parent["restriction"]["period"] == {"start": "2030-06-03", "end": "2030-07-28"}

    assert [OWNER[w["owner"]["reference"]] for w in weeks] == SEED_OWNERS
    for n, week in enumerate(weeks, start=1):
        assert week["partOf"] == [{"reference": f"Task/{parent['id']}"}]
        week_start = start + timedelta(days=7 * (n - 1))
        assert week["executionPeriod"] == {
            "start": week_start.isoformat(),
            "end": (week_start + timedelta(days=6)).isoformat(),
        }
        assert week["description"].startswith(f"Week {n}: ")
    assert "agree with you the plan" in weeks[3]["description"]
    assert "introduce Pardeep, your new key worker" in weeks[3]["description"]

    assert section["resourceType"] == "CarePlan"
    assert section["partOf"] == [{"reference": f"CarePlan/{person.plan}"}]
    assert [t["code"] for t in section["meta"]["tag"]] == ["transfer"]
    assert "weeks 1-5 Sam; week 6 Pardeep; week 7 Sam; week 8 Pardeep" in section["description"]
    assert [a["detail"]["description"] for a in section["activity"]] == [w["description"] for w in weeks]


def test_every_planned_resource_is_stored_and_searchable(live):
    with live.client(A) as a:
        person = new_person(a, uid("tess"))
        parent, *weeks, section = resources(plan_transfer(a, person))
        stored = a.get("/Task", params={"part-of": f"Task/{parent['id']}", "_count": 50}).json()
        assert a.get(f"/CarePlan/{section['id']}").json()["supportingInfo"] == [
            {"reference": f"Task/{parent['id']}"}
        ]
        assert a.get(f"/Task/{parent['id']}").json()["status"] == "requested"
    assert sorted(e["resource"]["id"] for e in stored["entry"]) == sorted(w["id"] for w in weeks)


def test_longer_handovers_keep_alternating_and_custom_ones_follow_the_owners_given(live):
    with live.client(A) as a:
        ten = resources(plan_transfer(a, new_person(a, uid("tess")), weeks=10))
        custom = resources(plan_transfer(a, new_person(a, uid("tess")), pattern="custom", owners="AABB"))
    assert [OWNER[w["owner"]["reference"]] for w in ten[1:-1]] == SEED_OWNERS + ["A", "B"]
    assert [OWNER[w["owner"]["reference"]] for w in custom[1:-1]] == ["A", "A", "B", "B"]


def test_a_preview_returns_the_plan_without_storing_anything(live):
    with live.client(A, Prefer="return=representation") as a:
        person = new_person(a, uid("tess"))
        r = a.post(
            f"/CarePlan/{person.plan}/$plan-transfer",
            params={"_preview": "true"},
            json=plan_parameters(date(2030, 6, 3)),
        )
        assert r.status_code == 200
        parent = resources(r.json())[0]
        assert a.get(f"/Task/{parent['id']}").status_code == 404
        assert a.get("/Task", params={"focus": f"CarePlan/{person.plan}"}).json().get("entry") is None
        # Nothing stood in the way, so the real thing still works.
        assert (
            a.post(
                f"/CarePlan/{person.plan}/$plan-transfer", json=plan_parameters(date(2030, 6, 3))
            ).status_code
            == 201
        )
    assert len(resources(r.json())) == 10


def test_both_services_and_their_named_workers_join_the_care_team_for_the_handover(live):
    with live.client(A) as a:
        person = new_person(a, uid("tess"))
        parent = resources(plan_transfer(a, person, date(2030, 6, 3)))[0]
        team = a.get(f"/CareTeam/{person.id}-team").json()
    members = {p["member"]["reference"]: p for p in team["participant"] if "period" in p}
    assert set(members) == {f"Organization/{A}", f"Organization/{B}", "Practitioner/sam-patel", PARDEEP}
    assert members["Practitioner/sam-patel"]["period"] == parent["restriction"]["period"]
    assert members[PARDEEP]["period"] == {"start": "2030-06-03"}  # B's key worker stays on
    # The people already on the team stay.
    assert any(p["role"][0]["text"] == "Care coordinator" for p in team["participant"])


def test_b_must_be_allowed_to_see_what_it_needs_before_a_move_can_be_planned(live):
    with live.client(A) as a:
        person = new_person(a, uid("tess"), b_may_see=False)
        refused = a.post(f"/CarePlan/{person.plan}/$plan-transfer", json=plan_parameters(date.today()))
        nothing = a.get("/Task", params={"focus": f"CarePlan/{person.plan}"}).json()
    assert refused.status_code == 422
    words = refused.json()["issue"][0]["diagnostics"]
    # Exactly what is missing, in the words Consent/$evaluate uses, and how to fix it.
    assert (
        "B&NES Primary Care Liaison Service cannot see Tess's care plan because she has not agreed" in words
    )
    assert "cannot see Tess's transfer plan" in words
    assert "cannot see Tess's name, address and NHS number" in words
    assert f"Consent naming Organization/{B}" in words
    assert nothing.get("entry") is None


def test_a_consent_covering_only_part_of_what_b_needs_names_just_the_missing_part(live):
    with live.client(A) as a:
        person = new_person(a, uid("tess"), b_may_see=False)
        a.post("/Consent", json=consent(person, B, ("transfer",))).raise_for_status()
        refused = a.post(f"/CarePlan/{person.plan}/$plan-transfer", json=plan_parameters(date.today()))
    words = refused.json()["issue"][0]["diagnostics"]
    assert refused.status_code == 422
    assert "cannot see Tess's care plan" in words
    assert "transfer plan" not in words and "NHS number" not in words


def test_the_gp_is_told_when_the_person_lets_the_gp_know_about_the_move(live):
    with live.client(A) as a, live.client(GP) as gp:
        person = new_person(a, uid("tess"), gp_may_know=True)
        parent = resources(plan_transfer(a, person, notify_gp=True))[0]
        said = outputs(parent)
        notices = gp.get("/Communication", params={"about": f"Task/{parent['id']}"}).json()
    assert said["gp"]["valueReference"]["reference"] == f"Organization/{GP}"
    assert said["gp-told"]["valueBoolean"] is True
    assert said["gp-decision"]["valueString"].startswith("Keynsham Health Centre was told about the move.")
    assert "because of her consent" in said["gp-decision"]["valueString"]
    [notice] = [e["resource"] for e in notices["entry"]]
    assert said["gp-notification"]["valueReference"]["reference"] == f"Communication/{notice['id']}"
    assert notice["recipient"] == [{"reference": f"Organization/{GP}"}]
    assert notice["about"] == [{"reference": f"Task/{parent['id']}"}]
    assert notice["subject"] == {"reference": person.ref}
    assert (
        "Tess Lane's care is moving from Bath Community Mental Health Team"
        in notice["payload"][0]["contentString"]
    )


def test_the_gp_is_not_told_without_the_persons_permission_and_the_task_says_why(live):
    with live.client(A) as a:
        person = new_person(a, uid("tess"))
        parent = resources(plan_transfer(a, person, notify_gp=True))[0]
        notices = a.get("/Communication", params={"about": f"Task/{parent['id']}"}).json()
    said = outputs(parent)
    assert said["gp"]["valueReference"]["reference"] == f"Organization/{GP}"
    assert said["gp-told"]["valueBoolean"] is False
    assert said["gp-decision"]["valueString"] == (
        "Keynsham Health Centre was not told about the move. Keynsham Health Centre cannot see"
        " Tess's transfer plan because she has not agreed to share it."
    )
    assert "gp-notification" not in said
    assert notices.get("entry") is None


def test_the_gp_is_not_told_when_nobody_asked_even_with_permission(live):
    with live.client(A) as a:
        person = new_person(a, uid("tess"), gp_may_know=True)
        parent = resources(plan_transfer(a, person, notify_gp=False))[0]
        notices = a.get("/Communication", params={"about": f"Task/{parent['id']}"}).json()
    assert outputs(parent)["gp-told"]["valueBoolean"] is False
    assert notices.get("entry") is None


def test_only_the_custodian_plans_a_move_and_only_one_at_a_time(live):
    with live.client(A) as a, live.client(B) as b, live.client(VOLUNTARY) as bath_mind:
        person = new_person(a, uid("tess"))
        body = plan_parameters(date.today())
        # A voluntary organisation's token cannot create Tasks at all...
        assert bath_mind.post(f"/CarePlan/{person.plan}/$plan-transfer", json=body).status_code == 403
        # ...and B, who may see the plan by consent, does not hold the record.
        by_b = b.post(f"/CarePlan/{person.plan}/$plan-transfer", json=body)
        assert by_b.status_code == 403
        assert "custodian" in by_b.json()["issue"][0]["diagnostics"]
        parent = resources(plan_transfer(a, person))[0]
        again = a.post(f"/CarePlan/{person.plan}/$plan-transfer", json=body)
    assert again.status_code == 409
    assert f"Task/{parent['id']}" in again.json()["issue"][0]["diagnostics"]


def test_a_plan_nobody_could_follow_is_refused_with_what_to_fix(live):
    with live.client(A) as a:
        person = new_person(a, uid("tess"))
        url = f"/CarePlan/{person.plan}/$plan-transfer"
        cases = {
            400: [
                {"resourceType": "Parameters", "parameter": [{"name": "start", "valueDate": "2030-06-03"}]},
                {"resourceType": "Patient"},
                {**plan_parameters(date.today()), "parameter": [{"name": "notify-gp", "valueBoolean": True}]},
                plan_parameters(date.today())
                | {
                    "parameter": [
                        {"name": "receiver", "valueReference": {"reference": f"Organization/{B}"}},
                        {"name": "start", "valueDate": "3 June"},
                    ]
                },
            ],
            422: [
                plan_parameters(date.today(), weeks=1),
                plan_parameters(date.today(), pattern="sudden"),
                plan_parameters(date.today(), pattern="custom"),
                plan_parameters(date.today(), pattern="custom", owners="AAAA"),
                plan_parameters(date.today(), key_worker="Practitioner/nobody-here"),
                plan_parameters(date.today(), notify_gp=True, gp=VOLUNTARY),
            ],
        }
        for status, bodies in cases.items():
            for body in bodies:
                r = a.post(url, json=body)
                assert r.status_code == status, (body, r.text)
                assert r.json()["resourceType"] == "OperationOutcome"
        # B must be a service that can hold records, and not one that already does.
        to_trust = plan_parameters(date.today())
        to_trust["parameter"][0]["valueReference"] = {"reference": f"Organization/{TRUST}"}
        to_gp = plan_parameters(date.today())
        to_gp["parameter"][0]["valueReference"] = {"reference": f"Organization/{GP}"}
        assert a.post(url, json=to_trust).status_code == 422
        assert a.post(url, json=to_gp).status_code == 422
        assert a.get("/Task", params={"focus": f"CarePlan/{person.plan}"}).json().get("entry") is None


def test_millies_transfer_in_the_demo_shows_her_who_to_expect_each_week(live):
    with live.client("millie-app") as millie, live.client(B) as b:
        section = millie.get("/CarePlan/millie-transfer-section").json()
        weeks = b.get("/Task", params={"part-of": "Task/millie-transfer", "_count": 20}).json()
    by_week = sorted((e["resource"] for e in weeks["entry"]), key=lambda t: t["executionPeriod"]["start"])
    assert [OWNER[t["owner"]["reference"]] for t in by_week] == SEED_OWNERS
    assert [a["detail"]["description"][:8] for a in section["activity"]] == [
        f"Week {n}: " for n in range(1, 9)
    ]
    assert (
        "Who to expect: weeks 1-5 Sam; week 6 Pardeep; week 7 Sam; week 8 Pardeep" in section["description"]
    )
