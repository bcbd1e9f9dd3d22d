"""`carebridge conformance config`: register on a carebridge database the partners the
suites act as, and write the TOML that lets the suites act as them.

The partners are the suites' own (ids `cf-...`), so a run never borrows, or changes,
the demo partners. Registering again replaces them (tokens stay valid: the server's
signing key does not change).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from carebridge.server import partners, store
from carebridge.server.auth import Signer
from carebridge.server.db import Database

ALLIANCE = "cf-alliance"
PERSON_PATIENT = "cf-person-patient"
GP_PRACTITIONER = "cf-gp-practitioner"


@dataclass(frozen=True)
class Seat:
    role: str
    partner: str
    name: str
    kind: str
    part_of: str | None = None
    patient: str | None = None
    practitioner: str | None = None


SEATS = (
    Seat("custodian", "cf-trust", "Conformance custodian trust", "trust"),
    Seat("other-trust", "cf-other-trust", "Conformance second trust (not the custodian)", "trust"),
    Seat("voluntary", "cf-voluntary", "Conformance voluntary organisation", "voluntary", part_of=ALLIANCE),
    Seat("gp", "cf-gp", "Conformance GP practice", "gp"),
    Seat(
        "gp-practitioner",
        "cf-gp",
        "Conformance GP practice",
        "gp",
        practitioner=f"Practitioner/{GP_PRACTITIONER}",
    ),
    Seat("icr", "cf-icr", "Conformance integrated care record", "icr"),
    Seat(
        "person", "cf-person", "Conformance person's own app", "person", patient=f"Patient/{PERSON_PATIENT}"
    ),
)


def register(db: Database) -> None:
    """The umbrella Organization and every partner (idempotent)."""
    with db.write() as c:
        store.put(
            c,
            {
                "resourceType": "Organization",
                "id": ALLIANCE,
                "active": True,
                "name": "Conformance voluntary sector alliance",
            },
            rid=ALLIANCE,
            method="PUT",
        )
    done: set[str] = set()
    for seat in SEATS:
        if seat.partner in done:
            continue
        done.add(seat.partner)
        partners.add(
            db,
            partners.Partner(
                id=seat.partner,
                name=seat.name,
                kind=seat.kind,
                scope=partners.DEFAULT_SCOPES[seat.kind],
                part_of=seat.part_of,
                patient=seat.patient,
            ),
            replace=True,
        )


def roles(db: Database, *, ttl: int = 86400) -> dict[str, dict[str, str]]:
    """Each role's token and the facts the suites use (organization, patient, ...)."""
    signer = Signer(db)
    out: dict[str, dict[str, str]] = {}
    for seat in SEATS:
        table: dict[str, str] = {
            "token": signer.issue(
                seat.partner, partners.DEFAULT_SCOPES[seat.kind], practitioner=seat.practitioner, ttl=ttl
            ),
            "partner": seat.partner,
        }
        if seat.kind != "person":
            table["organization"] = f"Organization/{seat.partner}"
        if seat.part_of:
            table["alliance"] = f"Organization/{seat.part_of}"
        if seat.patient:
            table["patient"] = seat.patient
            table["patient_id"] = seat.patient.split("/", 1)[1]
        if seat.practitioner:
            table["practitioner"] = seat.practitioner
            table["practitioner_id"] = seat.practitioner.split("/", 1)[1]
        out[seat.role] = table
    return out


def toml(base_url: str, role_tables: dict[str, dict[str, str]]) -> str:
    lines = [
        "# carebridge conformance config (carebridge conformance config --database ...)",
        f"base_url = {json.dumps(base_url)}",
        'default_role = "custodian"',
        "",
    ]
    for role, table in role_tables.items():
        lines.append(f"[roles.{role}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
        lines.append("")
    return "\n".join(lines)
