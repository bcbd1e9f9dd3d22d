"""A large store for benchmarks: N CarePlans over M patients, each patient with a consent.

Written straight through `carebridge.server.store` in large transactions (the content is
generated valid, so the per-write model validation is skipped to keep set-up short).
"""

from __future__ import annotations

from carebridge.mappings.vocabulary import NHS_NUMBER_SYSTEM, SECTION_SYSTEM
from carebridge.server import partners, store
from carebridge.server.auth import Signer
from carebridge.server.db import Database

TRUST, VOLUNTARY, ALLIANCE = "bench-trust", "bench-voluntary", "bench-alliance"
SECTIONS = ("daily-activities", "contact-plan", "recovery-goals", "strengths-community")
WORDS = (
    "On Mondays I go to the allotment with my neighbour; on Wednesdays I help at the food bank. "
    "I like a phone call before a visit and I would rather meet somewhere quiet. "
)


def nhs_number(i: int) -> str:
    """A valid test-range NHS number (modulus 11), skipping check digit 10."""
    n = 900_000_000 + i * 7
    while True:
        digits = f"{n:09d}"
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
        check = 11 - total % 11
        if check == 11:
            check = 0
        if check != 10:
            return digits + str(check)
        n += 1


def care_plan(i: int, patient: str, section: str) -> dict:
    return {
        "resourceType": "CarePlan",
        "meta": {"tag": [{"system": SECTION_SYSTEM, "code": section}]},
        "status": "active",
        "intent": "plan",
        "title": f"Section {section} of plan {i}",
        "description": WORDS * 12,
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"start": "2026-01-01"},
        "author": {"reference": "Practitioner/bench-coordinator"},
    }


def consent(patient: str) -> dict:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
        "provision": {
            "type": "deny",
            "provision": [
                {
                    "type": "permit",
                    "actor": [{"reference": {"reference": f"Organization/{ALLIANCE}"}}],
                    "code": [{"coding": [{"system": SECTION_SYSTEM, "code": s}]} for s in SECTIONS],
                },
                {
                    "type": "permit",
                    "actor": [{"reference": {"reference": f"Organization/{ALLIANCE}"}}],
                    "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Patient"}],
                },
            ],
        },
    }


def populate(url: str, *, plans: int, patients: int) -> dict[str, str]:
    db = Database(url)
    with db.read() as c:
        ready = c.one("SELECT COUNT(*) FROM resource WHERE type = 'CarePlan'")[0] >= plans
    if not ready:
        with db.write() as c:
            store.put(
                c, {"resourceType": "Organization", "name": "Bench alliance"}, rid=ALLIANCE, method="PUT"
            )
        partners.add(
            db,
            partners.Partner(TRUST, "Bench trust", "trust", partners.DEFAULT_SCOPES["trust"]),
            replace=True,
        )
        partners.add(
            db,
            partners.Partner(
                VOLUNTARY,
                "Bench voluntary",
                "voluntary",
                partners.DEFAULT_SCOPES["voluntary"],
                part_of=ALLIANCE,
            ),
            replace=True,
        )
        batch = 2000
        for start in range(0, patients, batch):
            with db.write() as c:
                for i in range(start, min(start + batch, patients)):
                    pid = f"p-{i}"
                    store.put(
                        c,
                        {
                            "resourceType": "Patient",
                            "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs_number(i)}],
                            "name": [{"family": f"Person{i}", "given": ["Bench"]}],
                            "managingOrganization": {"reference": f"Organization/{TRUST}"},
                        },
                        rid=pid,
                        method="PUT",
                    )
                    store.put(c, consent(pid), rid=f"consent-{i}", method="PUT")
        for start in range(1, plans + 1, batch):
            with db.write() as c:
                for i in range(start, min(start + batch, plans + 1)):
                    patient = f"p-{i % patients}"
                    store.put(
                        c, care_plan(i, patient, SECTIONS[i % len(SECTIONS)]), rid=f"cp-{i}", method="PUT"
                    )
    signer = Signer(db)
    tokens = {
        "custodian": signer.issue(TRUST, partners.DEFAULT_SCOPES["trust"], ttl=7200),
        "voluntary": signer.issue(VOLUNTARY, partners.DEFAULT_SCOPES["voluntary"], ttl=7200),
    }
    db.close()
    return tokens


def populate_crowded_patient(url: str, patient: str, *, plans: int, shared_fraction: float) -> None:
    """One patient with many CarePlans, of which only `shared_fraction` are in sections their
    consent shares with the voluntary partner (the rest in a section it keeps back)."""
    db = Database(url)
    shared_every = round(1 / shared_fraction)
    with db.write() as c:
        store.put(
            c,
            {
                "resourceType": "Patient",
                "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs_number(10**6)}],
                "managingOrganization": {"reference": f"Organization/{TRUST}"},
            },
            rid=patient,
            method="PUT",
        )
        store.put(c, consent(patient), rid=f"consent-{patient}", method="PUT")
        for i in range(plans):
            section = SECTIONS[0] if i % shared_every == 0 else "crisis-plan"
            store.put(c, care_plan(i, patient, section), rid=f"{patient}-cp-{i}", method="PUT")
    db.close()
