"""The messages a transfer of care sends, as FHIR Communications (pure builders).

Who is told what, from seeds/000_... section 3: the GP hears of a move only with the
person's permission; both services hear when the person says "not ready yet" and when
the move starts again. Each notice is tagged with the `transfer` section, so whoever the
person lets see their transfer plan may see its notices, and nobody else (the outbox
and MESH pass them through the same consent gate).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from .handover import OWNER_A, Service, WeekPlan, day_in_words
from .vocabulary import (
    COMMUNICATION_CATEGORY_SYSTEM,
    GP_TRANSFER_NOTICE,
    SECTION_SYSTEM,
    SECTIONS,
    TRANSFER_NOTICES,
)


def transfer_notice(
    *,
    notice_id: str,
    code: str,
    patient: str,
    parent_task: str,
    sender: str | None,
    recipients: Sequence[str],
    text: str,
    sent: str,
) -> dict:
    """A stored notice: `code` is one of TRANSFER_NOTICES; references are "Type/id"."""
    comm: dict = {
        "resourceType": "Communication",
        "id": notice_id,
        "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "transfer", "display": SECTIONS["transfer"]}]},
        "status": "completed",
        "category": [
            {
                "coding": [
                    {"system": COMMUNICATION_CATEGORY_SYSTEM, "code": code, "display": TRANSFER_NOTICES[code]}
                ]
            }
        ],
        "subject": {"reference": patient},
        "about": [{"reference": parent_task}],
        "sent": sent,
        "recipient": [{"reference": r} for r in recipients],
        "payload": [{"contentString": text}],
    }
    if sender:
        comm["sender"] = {"reference": sender}
    return comm


def is_gp_notice(comm: dict) -> bool:
    """Whether a stored Communication is a GP transfer notice (as `transfer_notice` builds)."""
    return any(
        isinstance(coding, dict)
        and coding.get("system") == COMMUNICATION_CATEGORY_SYSTEM
        and coding.get("code") == GP_TRANSFER_NOTICE
        for cat in comm.get("category") or []
        if isinstance(cat, dict)
        for coding in cat.get("coding") or []
    )


def gp_notice_text(person: str, plan: Sequence[WeekPlan], a: Service, b: Service) -> str:
    """What the GP practice is told: the move and who to contact, not the care plan."""
    text = (
        f"{person}'s care is moving from {a.name} to {b.name}, gradually, over {len(plan)} weeks, "
        f"from {day_in_words(plan[0].start)} to {day_in_words(plan[-1].end)}."
    )
    if b.worker_display or b.worker_name:
        text += f" The new key worker is {b.worker_display or b.worker_name} at {b.name}."
    if a.worker_display or a.worker_name:
        text += (
            f" Until the move is complete, {a.worker_display or a.worker_name} at {a.name} stays in touch."
        )
    return text + (
        f" {person} agreed that you may be told about this move. Nothing else from {person}'s care plan"
        " is shared with this message."
    )


def pause_text(person: str, by_person: bool, reason: str, on: date, a: Service, b: Service) -> str:
    who = person if by_person else a.name
    text = (
        f"{who} has paused {person}'s move from {a.name} to {b.name} from {day_in_words(on)}."
        f' In {person}\'s words: "{reason}".'
    )
    contact = a.worker_display or a.worker_name or a.name
    return text + (
        f" Nothing more in the move happens until it is started again; {contact} stays {person}'s named"
        " contact meanwhile."
    )


def resume_text(
    person: str, by_person: bool, plan: Sequence[WeekPlan], remaining: set[int], a: Service, b: Service
) -> str:
    who = person if by_person else a.name
    weeks = [w for w in plan if w.week in remaining]
    text = f"{who} has started {person}'s move from {a.name} to {b.name} again."
    if weeks:
        parts = []
        for w in weeks:
            side = a if w.owner == OWNER_A else b
            lead = side.worker_display or side.worker_name or side.name
            parts.append(f"week {w.week} from {day_in_words(w.start)}: {lead}")
        text += " The remaining weeks: " + "; ".join(parts) + "."
    return text
