"""Recall: when a consent change or a change of who holds the record means a partner may
no longer see what it was sent, carebridge sends DELETE [endpoint]/[type]/[id] for each
copy, records it in the person's access log, and pushes nothing more of it.
"""

from __future__ import annotations

from exchange_world import (
    CUSTODIAN,
    Partner,
    Person,
    change,
    outbox,
    subscribe,
    wait_for,
)

from tests.conftest import LiveServer

VOLUNTARY = "bath-mind"
SERVICE_B = "awp-banes-pcls"


def deliver_both_sections(
    exchange: LiveServer, partner: Partner, person: Person, who: str = VOLUNTARY
) -> dict:
    with exchange.client(who) as c:
        sub = subscribe(c, f"CarePlan?patient={person.id}", partner.endpoint)
    with exchange.client(CUSTODIAN) as trust:
        for code in ("about-me", "daily-activities"):
            change(trust, "CarePlan", person.section(code), description=f"{code} shared")
    wait_for(lambda: len({r.ref for r in partner.received("PUT")}) == 2, why="both sections to arrive")
    return sub


def audit_log(exchange: LiveServer, person: Person) -> list[dict]:
    with exchange.client(CUSTODIAN) as trust:
        bundle = trust.get("/AuditEvent", params={"patient": person.id, "_count": "200"}).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def recalls_in(log: list[dict]) -> list[str]:
    return sorted(
        e["entity"][1]["what"]["reference"]
        for e in log
        if any(s.get("code") == "recall" for s in e.get("subtype", []))
    )


def test_withdrawing_consent_recalls_every_copy_and_stops_further_pushes(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    deliver_both_sections(exchange, partner, person)
    held = sorted({r.ref for r in partner.received("PUT")})
    with exchange.client(CUSTODIAN) as trust:
        trust.delete(f"/Consent/{person.consent}")
        wait_for(lambda: len({r.ref for r in partner.received("DELETE")}) == 2, why="both recalls")
        change(trust, "CarePlan", person.section("about-me"), description="after withdrawal")
    assert sorted({r.ref for r in partner.received("DELETE")}) == held
    # Recalls came after the copies they recall.
    last_put = max(r.at for r in partner.received("PUT"))
    assert all(r.at >= last_put for r in partner.received("DELETE"))
    wait_for(lambda: recalls_in(audit_log(exchange, person)) == held, why="the recalls in the access log")
    # The change after withdrawal was not sent (it is withheld in the outbox, not lost).
    wait_for(
        lambda: any(
            r["state"] == "withheld" for r in outbox(exchange.db) if r["rid"] == person.section("about-me")
        ),
        why="the later change to be decided",
    )
    assert "after withdrawal" not in [r.body["description"] for r in partner.received("PUT")]


def test_narrowing_consent_recalls_only_what_is_no_longer_shared(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    deliver_both_sections(exchange, partner, person)
    with exchange.client(CUSTODIAN) as trust:
        consent = trust.get(f"/Consent/{person.consent}").json()
        sections = consent["provision"]["provision"][1]["code"]
        consent["provision"]["provision"][1]["code"] = [
            c for c in sections if c["coding"][0]["code"] != "daily-activities"
        ]
        assert trust.put(f"/Consent/{person.consent}", json=consent).status_code == 200
        [recall] = wait_for(lambda: partner.received("DELETE"), why="the recall")
        change(trust, "CarePlan", person.section("about-me"), description="still shared")
        wait_for(
            lambda: partner.received("PUT")[-1].body["description"] == "still shared",
            why="the still-shared change",
        )
    assert recall.ref == f"CarePlan/{person.section('daily-activities')}"
    assert partner.received("PUT")[-1].body["description"] == "still shared"


def test_a_deleted_record_is_deleted_at_the_partner_too(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    deliver_both_sections(exchange, partner, person)
    with exchange.client(CUSTODIAN) as trust:
        assert trust.delete(f"/CarePlan/{person.section('daily-activities')}").status_code == 200
    [gone] = wait_for(lambda: partner.received("DELETE"), why="the deletion")
    assert gone.ref == f"CarePlan/{person.section('daily-activities')}"
    kinds = [s.get("code") for e in audit_log(exchange, person) for s in e.get("subtype", [])]
    assert "deleted" in kinds


def test_when_the_record_moves_to_another_service_the_old_one_is_asked_to_delete_its_copies(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    # The team that held the record subscribed to it; the transfer completes and the
    # person's record now belongs to service B, and nothing lets the old team see it.
    deliver_both_sections(exchange, partner, person, who=CUSTODIAN)
    with exchange.client(CUSTODIAN) as trust:
        patient = trust.get(f"/Patient/{person.id}").json()
        patient["managingOrganization"] = {"reference": f"Organization/{SERVICE_B}"}
        assert trust.put(f"/Patient/{person.id}", json=patient).status_code == 200
    recalled = wait_for(
        lambda: len(partner.received("DELETE")) >= 2 and partner.received("DELETE"), why="recalls"
    )
    assert {r.ref for r in recalled} == {
        f"CarePlan/{person.section('about-me')}",
        f"CarePlan/{person.section('daily-activities')}",
    }
