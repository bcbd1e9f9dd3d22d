"""What the person's consent says about a transfer: may the receiving service see what it
needs, and may the GP be told? Both answers come from the one enforcement function
(through `Gate.decide`) and are put in plain words with `consent.explain`, exactly as
`Consent/$evaluate` would say them.
"""

from __future__ import annotations

from dataclasses import dataclass

from carebridge.consent.explain import explain
from carebridge.consent.model import Decision, Requester
from carebridge.server import store
from carebridge.server.db import Conn
from carebridge.server.disclosure import Gate, requester_for
from carebridge.server.operations import resource_label
from carebridge.server.partners import Registry
from carebridge.server.store import Row

GP_PURPOSE = "TREAT"  # the purpose the GP reads the transfer with, as any other read


@dataclass(frozen=True, slots=True)
class Verdict:
    permit: bool
    words: str  # one plain sentence: who can or cannot see what, and why
    decision: Decision


def organization_requester(c: Conn, registry: Registry, org_ref: str, kind: str) -> Requester:
    """The request `org_ref` would make: its partner's if registered, else an unregistered
    organisation of `kind` (consent matches organisations, not partners)."""
    partner_id = org_ref.partition("/")[2]
    requester = requester_for(
        c, registry, partner_id, practitioner=None, purpose=GP_PURPOSE, break_glass_reason=None
    )
    if requester is not None:
        return requester
    return Requester(
        partner_id=org_ref,
        kind=kind,
        organization=org_ref,
        org_chain=registry.chain(c, org_ref),
        purpose=GP_PURPOSE,
    )


def organization_name(c: Conn, org_ref: str) -> str:
    row = store.current(c, "Organization", org_ref.partition("/")[2])
    if row is None or row.deleted:
        return org_ref
    return row.resource().get("name") or org_ref


def person_words(patient: dict) -> tuple[str, str]:
    """(first name, pronoun) for sentences about the person."""
    given = ""
    for name in patient.get("name") or []:
        given = (name.get("given") or [""])[0] or name.get("text", "")
        if given:
            break
    pronoun = {"female": "she", "male": "he"}.get(patient.get("gender", ""), "they")
    return given or "this person", pronoun


def unstored_row(resource: dict, patient_id: str) -> Row:
    """A Row for a resource about to be written, so it can be decided on before it exists."""
    return Row(resource["resourceType"], resource["id"], 0, False, "", patient_id, None, None)


def verdict(gate: Gate, who: str, patient: dict, row: Row, resource: dict) -> Verdict:
    decision = gate.decide(row, resource)
    name, pronoun = person_words(patient)
    return Verdict(
        decision.permit, explain(decision, who, name, resource_label(resource), pronoun=pronoun), decision
    )


def receiver_missing(
    c: Conn,
    registry: Registry,
    receiver: str,
    patient_row: Row,
    needed: list[tuple[Row, dict]],
) -> list[Verdict]:
    """The refusals standing between the receiving service and what it needs to take over:
    the person's details, the plan being handed over and the transfer section."""
    gate = Gate(c, registry, organization_requester(c, registry, receiver, "trust"))
    who = organization_name(c, receiver)
    patient = patient_row.resource()
    found = [verdict(gate, who, patient, patient_row, patient)]
    found += [verdict(gate, who, patient, row, resource) for row, resource in needed]
    return [v for v in found if not v.permit]


def gp_verdict(c: Conn, registry: Registry, gp: str, patient: dict, section: Row, body: dict) -> Verdict:
    """May the GP see the transfer section? Only then is the GP told (CONTRACTS.md section 6)."""
    gate = Gate(c, registry, organization_requester(c, registry, gp, "gp"))
    return verdict(gate, organization_name(c, gp), patient, section, body)
