"""People and transfers for the transfer tests, made fresh over HTTP so no test changes
what another reads.

Service A is the demo's Bath Community Mental Health Team (custodian of everyone it
creates here), service B the Primary Care Liaison Service; Sam and Pardeep are their
named workers, Keynsham Health Centre the GP practice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import httpx

from carebridge.mappings.vocabulary import (
    CONSENT_ACTION_SYSTEM,
    CONSENT_CATEGORY_PATIENT_CONSENT,
    CONSENT_SCOPE_PATIENT_PRIVACY,
    PARTICIPATION_TYPE_SYSTEM,
    RESOURCE_TYPE_SYSTEM,
    SECTION_SYSTEM,
)
from carebridge.server.partners import DEFAULT_SCOPES, Partner, add

A = "awp-bath-cmht"
B = "awp-banes-pcls"
TRUST = "awp"  # the trust both teams belong to: neither A nor B in a transfer
GP = "keynsham-gp"
VOLUNTARY = "bath-mind"
SAM = "Practitioner/sam-patel"
PARDEEP = "Practitioner/pardeep-sandhu"
SEED_OWNERS = ["A", "A", "A", "A", "A", "B", "A", "B"]  # seeds/000_..., section 3, weeks 1-8


@dataclass
class Person:
    id: str
    given: str

    @property
    def ref(self) -> str:
        return f"Patient/{self.id}"

    @property
    def plan(self) -> str:
        return f"{self.id}-plan"


def _tag(code: str) -> dict:
    return {"tag": [{"system": SECTION_SYSTEM, "code": code}]}


def _org(rid: str) -> dict:
    return {"reference": f"Organization/{rid}"}


def consent(person: Person, org: str, sections: tuple[str, ...] | None = None, *, deny: bool = False) -> dict:
    """`org` may see everything of `person` (or only the Patient and these sections)."""
    provision: dict = {
        "actor": [
            {
                "role": {"coding": [{"system": PARTICIPATION_TYPE_SYSTEM, "code": "IRCP"}]},
                "reference": _org(org),
            }
        ],
        "action": [{"coding": [{"system": CONSENT_ACTION_SYSTEM, "code": "access"}]}],
    }
    if sections is None:
        provision["type"] = "deny" if deny else "permit"
    else:
        provision["provision"] = [
            {"type": "permit", "class": [{"system": RESOURCE_TYPE_SYSTEM, "code": "Patient"}]},
            {
                "type": "permit",
                "code": [{"coding": [{"system": SECTION_SYSTEM, "code": c}]} for c in sections],
            },
        ]
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [dict(CONSENT_SCOPE_PATIENT_PRIVACY)]},
        "category": [{"coding": [dict(CONSENT_CATEGORY_PATIENT_CONSENT)]}],
        "patient": {"reference": person.ref},
        "provision": provision,
    }


def new_person(
    a: httpx.Client,
    pid: str,
    *,
    given: str = "Tess",
    b_may_see: bool = True,
    gp_may_know: bool = False,
    a_keeps: tuple[str, ...] = (),
) -> Person:
    """A person in A's care with a plan (about me, contacts, crisis plan), a care team,
    and the consents asked for, all written by A as their custodian."""
    person = Person(pid, given)
    writes = [
        {
            "resourceType": "Patient",
            "id": pid,
            "name": [{"given": [given], "family": "Lane"}],
            "gender": "female",
            "managingOrganization": _org(A),
            "generalPractitioner": [_org(GP)],
        },
        {
            "resourceType": "CareTeam",
            "id": f"{pid}-team",
            "meta": _tag("contacts"),
            "status": "active",
            "subject": {"reference": person.ref},
            "participant": [{"role": [{"text": "Care coordinator"}], "member": {"reference": SAM}}],
        },
        {
            "resourceType": "CarePlan",
            "id": person.plan,
            "meta": _tag("plan"),
            "status": "active",
            "intent": "plan",
            "title": f"{given}'s care and support plan",
            "subject": {"reference": person.ref},
            "author": {"reference": SAM},
            "careTeam": [{"reference": f"CareTeam/{pid}-team"}],
        },
    ]
    for code in ("about-me", "contacts", "crisis-plan"):
        writes.append(
            {
                "resourceType": "CarePlan",
                "id": f"{pid}-{code}",
                "meta": _tag(code),
                "status": "active",
                "intent": "plan",
                "description": f"{given}'s {code}",
                "partOf": [{"reference": f"CarePlan/{person.plan}"}],
                "subject": {"reference": person.ref},
            }
        )
    entries = [
        {"resource": body, "request": {"method": "PUT", "url": f"{body['resourceType']}/{body['id']}"}}
        for body in writes
    ]
    consents = [consent(person, B)] if b_may_see else []
    consents += [consent(person, GP, ("transfer",))] if gp_may_know else []
    consents += [consent(person, A, a_keeps)] if a_keeps else []
    entries += [  # PUT, as a transaction's POSTs go before its PUTs and these need the Patient
        {
            "resource": {**c, "id": f"{pid}-consent-{n}"},
            "request": {"method": "PUT", "url": f"Consent/{pid}-consent-{n}"},
        }
        for n, c in enumerate(consents)
    ]
    a.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}).raise_for_status()
    return person


def plan_parameters(
    start: date,
    *,
    weeks: int | None = None,
    pattern: str | None = None,
    owners: str | None = None,
    notify_gp: bool | None = None,
    gp: str | None = None,
    key_worker: str | None = PARDEEP,
    frequency: str | None = "weekly",
) -> dict:
    params: list[dict] = [
        {"name": "receiver", "valueReference": _org(B)},
        {"name": "start", "valueDate": start.isoformat()},
    ]
    if key_worker:
        params.append({"name": "keyWorker", "valueReference": {"reference": key_worker}})
    if weeks is not None:
        params.append({"name": "weeks", "valueInteger": weeks})
    if frequency is not None:
        params.append({"name": "frequency", "valueString": frequency})
    if pattern is not None:
        params.append({"name": "pattern", "valueCode": pattern})
    if owners is not None:
        params.append({"name": "owners", "valueString": owners})
    if notify_gp is not None:
        params.append({"name": "notifyGp", "valueBoolean": notify_gp})
    if gp is not None:
        params.append({"name": "gp", "valueReference": _org(gp)})
    return {"resourceType": "Parameters", "parameter": params}


def plan_transfer(a: httpx.Client, person: Person, start: date | None = None, **kw: object) -> dict:
    """Plan a transfer of `person`'s plan to B; the 201 Bundle."""
    r = a.post(f"/CarePlan/{person.plan}/$plan-transfer", json=plan_parameters(start or date.today(), **kw))
    assert r.status_code == 201, r.text
    return r.json()


def resources(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", [])]


def set_status(client: httpx.Client, task_id: str, status: str, **changes: object) -> httpx.Response:
    """PUT the Task back with a new status (as a partner's system would)."""
    task = client.get(f"/Task/{task_id}").json()
    return client.put(f"/Task/{task_id}", json={**task, "status": status, **changes})


def parameters(**values: object) -> dict:
    """{"reason": "..."} -> Parameters with valueString / valueDate parts."""
    parts = []
    for name, value in values.items():
        key = "valueDate" if isinstance(value, date) else "valueString"
        parts.append({"name": name, key: value.isoformat() if isinstance(value, date) else value})
    return {"resourceType": "Parameters", "parameter": parts}


def register_person_app(live: object, person: Person) -> httpx.Client:
    """The person's own app, bound to them, as a registered `person` partner."""
    pid = f"{person.id}-app"
    add(
        live.db,  # type: ignore[attr-defined]
        Partner(
            id=pid,
            name=f"{person.given}'s own page",
            kind="person",
            scope=DEFAULT_SCOPES["person"],
            patient=person.ref,
        ),
    )
    token = live.token(pid)  # type: ignore[attr-defined]
    return httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)  # type: ignore[attr-defined]


def weeks_ago(n: int) -> date:
    return date.today() - timedelta(days=7 * n)
