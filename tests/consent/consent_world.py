"""The people and organisations of the B&NES case studies, as consent-engine fixtures.

Organisations (ids as the demo world names them):

* ``Organization/awp`` - the mental-health trust that holds the records (custodian);
  ``Organization/awp-bath-cmht`` is its Bath community team, ``partOf`` awp, and the
  people's ``managingOrganization``.
* ``Organization/sirona`` - another trust-kind provider: not a custodian.
* ``Organization/banes-voluntary-alliance`` - the alliance the voluntary organisations
  are ``partOf``: ``Organization/bath-mind``, ``Organization/citizens-advice-banes``.
* ``Organization/keynsham-gp`` - Millie's GP practice; ``Organization/banes-icr`` - the
  integrated care record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from carebridge.consent.model import PatientFacts, Requester
from carebridge.mappings.vocabulary import (
    CONSENT_SCOPE_SYSTEM,
    PURPOSE_OF_USE_SYSTEM,
    SECTION_SYSTEM,
)

AWP = "Organization/awp"
AWP_CMHT = "Organization/awp-bath-cmht"
SIRONA = "Organization/sirona"
ALLIANCE = "Organization/banes-voluntary-alliance"
BATH_MIND = "Organization/bath-mind"
CITIZENS_ADVICE = "Organization/citizens-advice-banes"
KEYNSHAM_GP = "Organization/keynsham-gp"
ICR = "Organization/banes-icr"
DR_PATEL = "Practitioner/dr-patel"  # a GP at Keynsham
SAM = "Practitioner/sam"  # Millie's care coordinator at AWP

MILLIE = "Patient/millie"
RICHARD = "Patient/richard"
JENNY = "Patient/jenny"
GEORGE = "Patient/george"
AVA = "Patient/ava"
ZOE = "Patient/zoe"
FRED = "Patient/fred"

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CUSTODIAN_CHAIN = (AWP_CMHT, AWP)


# ------------------------------------------------------------------------ requesters


def requester(
    partner: str, kind: str, chain: tuple[str, ...], **kw: Any
) -> Requester:
    return Requester(partner, kind, chain[0], chain, **kw)


def bath_mind(**kw: Any) -> Requester:
    return requester("bath-mind", "voluntary", (BATH_MIND, ALLIANCE), **kw)


def citizens_advice(**kw: Any) -> Requester:
    return requester("citizens-advice", "voluntary", (CITIZENS_ADVICE, ALLIANCE), **kw)


def keynsham_gp(**kw: Any) -> Requester:
    return requester("keynsham-gp", "gp", (KEYNSHAM_GP,), **kw)


def icr(**kw: Any) -> Requester:
    return requester("banes-icr", "icr", (ICR,), **kw)


def awp(**kw: Any) -> Requester:
    return requester("awp", "trust", (AWP,), **kw)


def awp_cmht(**kw: Any) -> Requester:
    return requester("awp-bath-cmht", "trust", (AWP_CMHT, AWP), **kw)


def sirona(**kw: Any) -> Requester:
    return requester("sirona", "trust", (SIRONA,), **kw)


def person_app(patient: str, **kw: Any) -> Requester:
    return Requester("my-plan-app", "person", None, (), patient=patient, **kw)


def emergency(make: Any, reason: str = "found unconscious, A&E", **kw: Any) -> Requester:
    """A break-glass request by the given kind of partner."""
    return make(purpose="ETREAT", break_glass_reason=reason, **kw)


# ----------------------------------------------------------------------- consents


def consent(
    cid: str,
    provision: dict | None,
    *,
    patient: str = MILLIE,
    status: str = "active",
    scope: str = "patient-privacy",
    date: str = "2026-05-03T10:00:00Z",
) -> dict:
    c: dict[str, Any] = {
        "resourceType": "Consent",
        "id": cid,
        "status": status,
        "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": scope}]},
        "patient": {"reference": patient},
        "dateTime": date,
    }
    if provision is not None:
        c["provision"] = provision
    return c


def prov(
    type: str | None = None,  # noqa: A002 - the FHIR element is called type
    *,
    actor: list[str] | str | None = None,
    action: list[str] | None = None,
    purpose: list[str] | str | None = None,
    cls: list[str] | str | None = None,
    code: list[tuple[str, str]] | None = None,
    sections: list[str] | str | None = None,
    labels: list[tuple[str, str]] | None = None,
    data_period: dict | None = None,
    period: dict | None = None,
    data: list[str] | str | None = None,
    children: list[dict] | None = None,
) -> dict:
    """A Consent.provision from short keyword arguments."""
    p: dict[str, Any] = {}
    if type is not None:
        p["type"] = type
    if period is not None:
        p["period"] = period
    if actor is not None:
        p["actor"] = [{"reference": {"reference": a}} for a in _as_list(actor)]
    if action is not None:
        p["action"] = [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                         "code": a}]}
            for a in action
        ]
    if purpose is not None:
        p["purpose"] = [{"system": PURPOSE_OF_USE_SYSTEM, "code": x} for x in _as_list(purpose)]
    if cls is not None:
        p["class"] = [{"system": "http://hl7.org/fhir/resource-types", "code": c}
                      for c in _as_list(cls)]
    codes = list(code or []) + [(SECTION_SYSTEM, s) for s in _as_list(sections or [])]
    if codes:
        p["code"] = [{"coding": [{"system": s, "code": c}]} for s, c in codes]
    if labels is not None:
        p["securityLabel"] = [{"system": s, "code": c} for s, c in labels]
    if data_period is not None:
        p["dataPeriod"] = data_period
    if data is not None:
        p["data"] = [{"meaning": "instance", "reference": {"reference": d}}
                     for d in _as_list(data)]
    if children is not None:
        p["provision"] = children
    return p


def _as_list(value: Any) -> list:
    return [value] if isinstance(value, str) else list(value)


def facts(*consents: dict, patient: str = MILLIE, version: int = 1,
          custodian: tuple[str, ...] = CUSTODIAN_CHAIN) -> PatientFacts:
    return PatientFacts(patient, custodian, tuple(consents), version)


# ---------------------------------------------------------------------- resources


def section(code: str, rid: str | None = None, *, patient: str = MILLIE, **more: Any) -> dict:
    """A care-plan section CarePlan, tagged with its section code."""
    r: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": rid or f"{patient.split('/')[1]}-{code}",
        "meta": {"lastUpdated": "2026-05-03T10:00:00Z",
                 "tag": [{"system": SECTION_SYSTEM, "code": code}]},
        "status": "active",
        "intent": "plan",
        "subject": {"reference": patient},
    }
    r.update(more)
    return r


def risk_assessment(rid: str = "millie-risk", *, patient: str = MILLIE, **more: Any) -> dict:
    r: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": rid,
        "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "risk-assessment"}]},
        "status": "final",
        "subject": {"reference": patient},
        "occurrenceDateTime": "2026-05-02T09:30:00+01:00",
    }
    r.update(more)
    return r


def goal(rid: str = "millie-goal-swim", *, patient: str = MILLIE, **more: Any) -> dict:
    r: dict[str, Any] = {
        "resourceType": "Goal",
        "id": rid,
        "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "recovery-goals"}]},
        "lifecycleStatus": "active",
        "description": {"text": "Get back to swimming twice a week"},
        "subject": {"reference": patient},
    }
    r.update(more)
    return r


def patient_resource(pid: str = "millie", **more: Any) -> dict:
    r: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"lastUpdated": "2026-05-01T09:00:00Z"},
        "name": [{"given": [pid.capitalize()]}],
        "managingOrganization": {"reference": AWP_CMHT},
    }
    r.update(more)
    return r
