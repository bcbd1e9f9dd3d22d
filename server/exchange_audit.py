"""AuditEvents for partner exchange, in the person's access log beside reads: what was
pushed to whom, what was exported, and what partners were asked to delete (recall).

Pushes and exports are ordinary disclosures (`audit.records_for`), marked with how the
data left; a recall or deletion notice is its own event, naming the partner, the
resource and why.
"""

from __future__ import annotations

from carebridge.consent.model import Requester
from carebridge.mappings.vocabulary import CANONICAL_BASE
from carebridge.server import store
from carebridge.server.audit import (
    AUDIT_TYPE,
    ENTITY_TYPE,
    INTERACTION_SYSTEM,
    OBJECT_ROLE,
    PARTICIPATION,
    PARTNER_ID_SYSTEM,
    Disclosures,
    events_for,
    records_for,
)
from carebridge.server.disclosure import Gate
from carebridge.server.instants import now_instant

EXCHANGE_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/exchange"
HOW = {
    "push": "sent to the partner's own system",
    "export": "included in a bulk export",
    "recall": "partner asked to delete its copy",
    "deleted": "partner told the record was deleted",
}


def disclosure_events(gates: list[Gate], interaction: str, how: str) -> list[dict]:
    """`events_for` (one AuditEvent per patient), marked as a push or an export."""
    return events_for(gates, interaction, _how(how))


def disclosure_records(gates: list[Gate], interaction: str, how: str) -> list[Disclosures | dict]:
    """The same, each AuditEvent still as its compact `Disclosures` (for the audit writer)."""
    return records_for(gates, interaction, _how(how))


def _how(how: str) -> tuple[tuple[str, str, str], ...]:
    return ((EXCHANGE_SYSTEM, how, HOW[how]),)


def recall_event(
    partner_id: str,
    requester: Requester | None,
    patient: str,
    resource_ref: str,
    why: str,
    how: str,
) -> dict:
    """A partner was sent DELETE for a copy it held (`how` is recall or deleted)."""
    who: dict = {"identifier": {"system": PARTNER_ID_SYSTEM, "value": partner_id}}
    if requester is not None and requester.organization:
        who["reference"] = requester.organization
    return {
        "resourceType": "AuditEvent",
        "id": store.new_id(),
        "type": {"system": AUDIT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [
            {"system": INTERACTION_SYSTEM, "code": "delete"},
            {"system": EXCHANGE_SYSTEM, "code": how, "display": HOW[how]},
        ],
        "action": "D",
        "recorded": now_instant(),
        "outcome": "0",
        "outcomeDesc": why,
        "agent": [
            {
                "type": {
                    "coding": [{"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}]
                },
                "who": who,
                "requestor": False,
            }
        ],
        "source": {"observer": {"display": "carebridge"}},
        "entity": [
            {
                "what": {"reference": f"Patient/{patient}"},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
                "detail": [{"type": how, "valueString": why}],
            },
            {
                "what": {"reference": resource_ref},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            },
        ],
    }
