"""Decisions per second of carebridge.consent.decide() on one core.

A realistic compiled policy: Millie, 3 applicable Consents (plus one withdrawn one),
11 provisions with actors, purposes, classes, section codes, security labels, periods
and a dataPeriod; a mix of care-plan resources; five requesters (voluntary
organisations within the alliance, the GP, the ICR, a GP breaking the glass, the ICR
breaking the glass against Millie's advance decision). Each
decision is made with ``now`` left to default (the engine reads the clock), as the
server does. The requester objects are reused across resources, as in a search.

The first figure reuses the Requester and PatientFacts objects, as the server does
within one request; the second makes new (equal) ones for every decision.

Run: python bench/consent_engine.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from carebridge.consent.decide import decide
from carebridge.consent.model import PatientFacts, Requester
from carebridge.consent.policy import clear_policy_cache
from carebridge.mappings.vocabulary import CONSENT_SCOPE_SYSTEM, SECTION_SYSTEM

PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def _consent(cid: str, provision: dict, status: str = "active") -> dict:
    return {
        "resourceType": "Consent",
        "id": cid,
        "status": status,
        "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "patient": {"reference": "Patient/millie"},
        "dateTime": "2026-05-03T10:00:00Z",
        "provision": provision,
    }


def _actor(ref: str) -> list[dict]:
    return [{"reference": {"reference": ref}}]


def _sections(*codes: str) -> list[dict]:
    return [{"coding": [{"system": SECTION_SYSTEM, "code": c}]} for c in codes]


def world() -> tuple[PatientFacts, list[dict], list[Requester]]:
    choices = _consent(
        "millie-choices",
        {
            "provision": [
                {
                    "id": "share-0",
                    "type": "permit",
                    "actor": _actor("Organization/banes-voluntary-alliance"),
                    "code": _sections(
                        "about-me", "daily-activities", "recovery-goals", "strengths-community"
                    ),
                    "period": {"start": "2026-05-03", "end": "2030-05-03"},
                },
                {
                    "id": "share-0-demographics",
                    "type": "permit",
                    "actor": _actor("Organization/banes-voluntary-alliance"),
                    "class": [{"code": "Patient"}],
                },
                {
                    "type": "deny",
                    "actor": _actor("Organization/bath-mind"),
                    "class": [{"code": "RiskAssessment"}],
                },
                {
                    "type": "permit",
                    "actor": _actor("Organization/keynsham-gp"),
                    "code": _sections("transfer"),
                },
                {
                    "type": "deny",
                    "actor": _actor("Organization/banes-icr"),
                    "purpose": [{"system": PURPOSE, "code": "ETREAT"}],
                },
            ]
        },
    )
    older = _consent(
        "millie-2025",
        {
            "type": "permit",
            "actor": _actor("Organization/citizens-advice-banes"),
            "period": {"start": "2025-01-01", "end": "2030-12-31"},
            "provision": [
                {"type": "deny", "securityLabel": [{"system": CONF, "code": "R"}]},
                {"type": "deny", "class": [{"code": "RiskAssessment"}]},
            ],
        },
    )
    icr = _consent(
        "millie-icr",
        {
            "type": "deny",
            "actor": _actor("Organization/banes-icr"),
            "provision": [
                {
                    "type": "permit",
                    "purpose": [{"system": PURPOSE, "code": "TREAT"}],
                    "dataPeriod": {"start": "2026-01-01"},
                    "code": _sections("crisis-plan", "contact-plan", "medication-agreement"),
                },
                {"type": "permit", "class": [{"code": "Patient"}]},
            ],
        },
    )
    withdrawn = _consent("millie-old", {"type": "permit"}, status="inactive")
    facts = PatientFacts(
        patient="Patient/millie",
        custodian_chain=("Organization/awp-bath-cmht", "Organization/awp"),
        consents=(choices, older, icr, withdrawn),
        consent_version=7,
    )

    def section(rid: str, code: str, **more: object) -> dict:
        return {
            "resourceType": "CarePlan",
            "id": rid,
            "meta": {
                "lastUpdated": "2026-05-03T10:00:00Z",
                "tag": [{"system": SECTION_SYSTEM, "code": code}],
            },
            "status": "active",
            "intent": "plan",
            "subject": {"reference": "Patient/millie"},
            "period": {"start": "2026-05-03"},
            **more,
        }

    resources = [
        section("millie-daily", "daily-activities"),
        section("millie-goals-section", "recovery-goals"),
        section("millie-crisis", "crisis-plan"),
        section("millie-transfer", "transfer"),
        section(
            "millie-meds",
            "medication-agreement",
            meta={
                "lastUpdated": "2026-05-03T10:00:00Z",
                "tag": [{"system": SECTION_SYSTEM, "code": "medication-agreement"}],
                "security": [{"system": CONF, "code": "R"}],
            },
        ),
        {
            "resourceType": "RiskAssessment",
            "id": "millie-risk",
            "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "risk-assessment"}]},
            "occurrenceDateTime": "2026-05-02T09:30:00+01:00",
            "subject": {"reference": "Patient/millie"},
        },
        {
            "resourceType": "Goal",
            "id": "millie-goal-1",
            "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "recovery-goals"}]},
            "description": {"text": "Get back to swimming twice a week"},
            "subject": {"reference": "Patient/millie"},
        },
        {"resourceType": "Patient", "id": "millie", "meta": {"lastUpdated": "2026-05-01"}},
    ]
    requesters = [
        Requester(
            "bath-mind",
            "voluntary",
            "Organization/bath-mind",
            ("Organization/bath-mind", "Organization/banes-voluntary-alliance"),
        ),
        Requester(
            "citizens-advice",
            "voluntary",
            "Organization/citizens-advice-banes",
            ("Organization/citizens-advice-banes", "Organization/banes-voluntary-alliance"),
        ),
        Requester("keynsham-gp", "gp", "Organization/keynsham-gp", ("Organization/keynsham-gp",)),
        Requester("icr", "icr", "Organization/banes-icr", ("Organization/banes-icr",)),
        Requester(
            "keynsham-gp",
            "gp",
            "Organization/keynsham-gp",
            ("Organization/keynsham-gp",),
            purpose="ETREAT",
            break_glass_reason="unconscious in A&E",
        ),
        Requester(
            "icr",
            "icr",
            "Organization/banes-icr",
            ("Organization/banes-icr",),
            purpose="ETREAT",
            break_glass_reason="crisis team call-out",
        ),
    ]
    return facts, resources, requesters


def run(seconds: float, fresh: bool = False) -> float:
    """Decisions/s; ``fresh`` gives every decision its own new (equal) Requester and
    PatientFacts objects, made before timing, defeating the engine's identity fast
    paths (the worst case: a new request for every resource)."""
    facts, resources, requesters = world()
    clear_policy_cache()
    if fresh:
        batch = [
            (replace(r), res, replace(facts)) for _ in range(50) for r in requesters for res in resources
        ]
    else:
        batch = [(r, res, facts) for _ in range(50) for r in requesters for res in resources]
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for requester, resource, patient_facts in batch:
            decide(requester, resource, patient_facts)
        calls += len(batch)
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    facts, resources, requesters = world()
    permits = sum(decide(r, res, facts).permit for r in requesters for res in resources)
    print(f"{len(requesters)} requesters x {len(resources)} resources: {permits} disclosed")
    best = max(run(args.seconds) for _ in range(3))
    print(f"{best:,.0f} decisions/s (best of 3 runs of {args.seconds:g}s, one core)")
    worst = max(run(args.seconds, fresh=True) for _ in range(3))
    print(f"{worst:,.0f} decisions/s with new Requester/PatientFacts objects every call")


if __name__ == "__main__":
    main()
