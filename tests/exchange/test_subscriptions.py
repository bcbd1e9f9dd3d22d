"""Subscriptions (FHIR R4 rest-hook): a partner registers criteria and an endpoint, and
is sent each committed change that matches, by PUT [endpoint]/[type]/[id], only when
its consent lets it see that resource at delivery time, redacted as a read would be.
A Subscription belongs to the partner that made it: nobody else can see or change it.
"""

from __future__ import annotations

import json

from exchange_world import CUSTODIAN, Partner, Person, change, subscribe, wait_for

from carebridge.server.subscriptions import OWNER_SYSTEM
from tests.conftest import LiveServer

VOLUNTARY = "bath-mind"
OTHER_VOLUNTARY = "citizens-advice-banes"


def owner_tags(resource: dict) -> list[str]:
    return [t["code"] for t in resource.get("meta", {}).get("tag", []) if t["system"] == OWNER_SYSTEM]


def test_a_subscription_is_made_active_and_stamped_with_its_creator(
    exchange: LiveServer, partner: Partner
) -> None:
    with exchange.client(VOLUNTARY) as bath_mind:
        sub = subscribe(bath_mind, "CarePlan?patient=nobody-yet", partner.endpoint)
        # Whatever the client claims, the server says who owns it.
        lying = bath_mind.post(
            "/Subscription",
            json={
                "resourceType": "Subscription",
                "status": "requested",
                "reason": "test",
                "criteria": "Task?owner=Organization/bath-mind",
                "meta": {"tag": [{"system": OWNER_SYSTEM, "code": OTHER_VOLUNTARY}]},
                "channel": {
                    "type": "rest-hook",
                    "endpoint": partner.endpoint,
                    "payload": "application/fhir+json",
                },
            },
        ).json()
    assert sub["status"] == "active"
    assert owner_tags(sub) == [VOLUNTARY]
    assert owner_tags(lying) == [VOLUNTARY]


def test_only_the_creating_partner_can_see_or_change_its_subscription(
    exchange: LiveServer, partner: Partner
) -> None:
    with exchange.client(VOLUNTARY) as bath_mind:
        sub = subscribe(
            bath_mind,
            "CarePlan?patient=nobody-yet",
            partner.endpoint,
            headers=["Authorization: Bearer s3cret"],
        )
        assert bath_mind.get(f"/Subscription/{sub['id']}").status_code == 200
    for other in (OTHER_VOLUNTARY, CUSTODIAN, "banes-icr"):
        with exchange.client(other) as c:
            assert c.get(f"/Subscription/{sub['id']}").status_code == 404
            found = c.get("/Subscription", params={"_id": sub["id"]}).json()
            assert found.get("entry", []) == []
            taken = {**sub, "channel": {**sub["channel"], "endpoint": "http://127.0.0.1:9/stolen"}}
            assert c.put(f"/Subscription/{sub['id']}", json=taken).status_code == 404
            assert c.delete(f"/Subscription/{sub['id']}").status_code == 404
    with exchange.client(VOLUNTARY) as bath_mind:
        assert bath_mind.get(f"/Subscription/{sub['id']}").json()["channel"]["endpoint"] == partner.endpoint


def test_subscriptions_that_cannot_be_honoured_are_refused_with_422(
    exchange: LiveServer, partner: Partner
) -> None:
    base = {"resourceType": "Subscription", "status": "requested", "reason": "test"}
    hook = {"type": "rest-hook", "endpoint": partner.endpoint, "payload": "application/fhir+json"}
    bad = [
        {**base, "criteria": "Nonsense?x=1", "channel": hook},
        {**base, "criteria": "CarePlan?no-such-param=1", "channel": hook},
        {**base, "criteria": "AuditEvent?patient=millie", "channel": hook},
        {**base, "criteria": "CarePlan?patient=millie", "channel": {**hook, "type": "email"}},
        {
            **base,
            "criteria": "CarePlan?patient=millie",
            "channel": {**hook, "endpoint": "ftp://example.org/x"},
        },
        {**base, "criteria": "CarePlan?patient=millie", "channel": {**hook, "payload": "text/csv"}},
    ]
    with exchange.client(VOLUNTARY) as bath_mind:
        for sub in bad:
            r = bath_mind.post("/Subscription", json=sub)
            assert r.status_code == 422, (sub, r.text)
            assert r.json()["resourceType"] == "OperationOutcome"


def test_a_permitted_change_is_put_to_the_endpoint_as_the_partner_would_read_it(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    with exchange.client(VOLUNTARY) as bath_mind:
        subscribe(
            bath_mind,
            f"CarePlan?patient={person.id}",
            partner.endpoint,
            headers=["Authorization: Bearer s3cret"],
        )
        with exchange.client(CUSTODIAN) as trust:
            written = change(trust, "CarePlan", person.section("about-me"), description="I like the river")
        ref = f"CarePlan/{person.section('about-me')}"
        *_, put = wait_for(lambda: partner.received("PUT", ref), why="the change to arrive")
        assert put.path == f"/fhir/{ref}"
        assert put.headers["Authorization"] == "Bearer s3cret"
        assert put.headers["Content-Type"].startswith("application/fhir+json")
        assert put.body == bath_mind.get(f"/{ref}").json()
        assert put.body["description"] == "I like the river"
        assert put.version == int(written["meta"]["versionId"])


def test_references_the_partner_may_not_follow_are_redacted_in_what_is_sent(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    with exchange.client(VOLUNTARY) as bath_mind:
        subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint)
    with exchange.client(CUSTODIAN) as trust:
        change(trust, "CarePlan", person.section("daily-activities"), description="walks by the river")
    ref = f"CarePlan/{person.section('daily-activities')}"
    *_, put = wait_for(lambda: partner.received("PUT", ref), why="the change to arrive")
    # The section points at the risk assessment, which the person does not share: the
    # reference goes, display text and all (rule 7).
    assert "RiskAssessment" not in json.dumps(put.body)
    assert "my risks" not in json.dumps(put.body)
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "REDACTED"} in [
        {"system": s["system"], "code": s["code"]} for s in put.body["meta"]["security"]
    ]


def test_what_the_persons_consent_keeps_back_is_never_sent(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    with exchange.client(VOLUNTARY) as bath_mind:
        subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint)
    with exchange.client(CUSTODIAN) as trust:
        change(trust, "CarePlan", person.section("crisis-plan"), description="call mum first")
        # A later, permitted change to the same patient shows the earlier one was passed over.
        change(trust, "CarePlan", person.section("about-me"), description="after the crisis plan")
    wait_for(
        lambda: partner.received("PUT", f"CarePlan/{person.section('about-me')}"), why="the permitted change"
    )
    assert partner.received("PUT", f"CarePlan/{person.section('crisis-plan')}") == []
    assert all("call mum first" not in str(r.body) for r in partner.attempts)


def test_changes_that_do_not_match_the_criteria_are_not_sent(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    with exchange.client(VOLUNTARY) as bath_mind:
        subscribe(
            bath_mind,
            f"CarePlan?patient={person.id}&_tag=https://carebridge.example/fhir/CodeSystem/care-plan-section|about-me",
            partner.endpoint,
        )
    with exchange.client(CUSTODIAN) as trust:
        change(trust, "CarePlan", person.section("daily-activities"), description="not watched")
        change(trust, "CarePlan", person.section("about-me"), description="watched")
    wait_for(lambda: partner.received("PUT"), why="the watched change")
    assert [r.ref for r in partner.received()] == [f"CarePlan/{person.section('about-me')}"]


def test_a_subscription_without_payload_is_told_of_changes_without_their_content(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    with exchange.client(VOLUNTARY) as bath_mind:
        subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint, payload=None)
    with exchange.client(CUSTODIAN) as trust:
        change(trust, "CarePlan", person.section("about-me"), description="content stays home")
    [notice] = wait_for(lambda: partner.received("POST"), why="the notification")
    assert notice.path == "/fhir"
    assert notice.body is None
    assert partner.received("PUT") == []


def test_an_ended_subscription_is_sent_nothing_more(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    with exchange.client(VOLUNTARY) as bath_mind:
        sub = subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint)
        with exchange.client(CUSTODIAN) as trust:
            change(trust, "CarePlan", person.section("about-me"), description="before the end")
            wait_for(lambda: partner.received("PUT"), why="the first change")
            assert (
                bath_mind.put(
                    f"/Subscription/{sub['id']}",
                    json={**bath_mind.get(f"/Subscription/{sub['id']}").json(), "status": "off"},
                ).status_code
                == 200
            )
            change(trust, "CarePlan", person.section("about-me"), description="after the end")
            # A second subscription on the same person proves the change was committed and pushed.
            other = subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint + "/second")
            change(trust, "CarePlan", person.section("about-me"), description="seen by the second")
    wait_for(
        lambda: [r for r in partner.received("PUT") if r.path.startswith("/fhir/second/")], why="the second"
    )
    first = [r for r in partner.received("PUT") if not r.path.startswith("/fhir/second/")]
    assert [r.body["description"] for r in first] == ["before the end"]
    assert other["status"] == "active"
