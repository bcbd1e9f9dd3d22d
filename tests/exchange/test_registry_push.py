"""Push driven by the partner registry: a partner that cannot create Subscriptions (an ICR,
a GP system) but was registered with `--fhir-base` is sent every change to a person's
record that their consent lets it see, and nothing else; a record pulled from a partner
is never pushed back to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from exchange_world import CUSTODIAN, SECTION_SYSTEM, Partner, Person, change, wait_for

from carebridge.mappings.foreign_plan import PULLED_FROM_SYSTEM
from carebridge.server import partners
from tests.conftest import LiveServer, uid


@pytest.fixture
def icr(exchange: LiveServer, partner: Partner) -> Iterator[str]:
    """A shared care record registered with its FHIR base (and no Subscription of its own)."""
    pid = uid("icr")
    partners.add(
        exchange.db,
        partners.Partner(pid, "Test ICR", "icr", partners.DEFAULT_SCOPES["icr"], fhir_base=partner.endpoint),
    )
    yield pid
    partners.remove(exchange.db, pid)


def share_about_me_with(trust: object, person: Person, org: str) -> None:
    consent = {
        "resourceType": "Consent",
        "id": f"{person.id}-consent-{org}",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{person.id}"},
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
        "provision": {
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
                    "reference": {"reference": f"Organization/{org}"},
                }
            ],
            "code": [{"coding": [{"system": SECTION_SYSTEM, "code": "about-me"}]}],
        },
    }
    r = trust.put(f"/Consent/{consent['id']}", json=consent)  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text


def test_a_registered_partner_is_pushed_only_what_consent_lets_it_see(
    exchange: LiveServer, partner: Partner, person: Person, icr: str
) -> None:
    with exchange.client(CUSTODIAN) as trust:
        share_about_me_with(trust, person, icr)
        for code in ("crisis-plan", "daily-activities", "about-me"):
            change(trust, "CarePlan", person.section(code), description=f"{code} for the record")
    *_, put = wait_for(lambda: partner.received("PUT"), why="the shared section")
    assert put.path == f"/fhir/CarePlan/{person.section('about-me')}"
    assert put.body["description"] == "about-me for the record"
    # The earlier changes were decided (withheld), not left waiting: nothing else will come.
    assert {r.ref for r in partner.attempts} == {put.ref}


def test_a_record_pulled_from_a_partner_is_not_pushed_back_to_it(
    exchange: LiveServer, partner: Partner, person: Person, icr: str
) -> None:
    with exchange.client(CUSTODIAN) as trust:
        share_about_me_with(trust, person, icr)
        for rid, pulled in ((f"{person.id}-from-icr", True), (f"{person.id}-ours", False)):
            tags = [{"system": SECTION_SYSTEM, "code": "about-me"}]
            if pulled:
                tags.append({"system": PULLED_FROM_SYSTEM, "code": icr})
            r = trust.put(
                f"/CarePlan/{rid}",
                json={
                    "resourceType": "CarePlan",
                    "id": rid,
                    "meta": {"tag": tags},
                    "status": "active",
                    "intent": "plan",
                    "subject": {"reference": f"Patient/{person.id}"},
                },
            )
            assert r.status_code == 201, r.text
    *_, put = wait_for(lambda: partner.received("PUT"), why="our own record")
    assert put.ref == f"CarePlan/{person.id}-ours"
    assert {r.ref for r in partner.attempts} == {put.ref}
