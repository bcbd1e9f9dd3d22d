"""Who has looked at my record: AuditEvents and sharing-choice changes as plain sentences.

Pure: the caller resolves names (partners, organisations, practitioners) and labels
(what part of the plan a resource is) and passes them in, so this reads only the
AuditEvent shapes written by server/audit.py and server/exchange_audit.py:

    Bath Mind looked at your daily activities on 3 May at 14:02.
    In an emergency, Keynsham Health Centre opened your crisis plan on 3 May at 14:02.
    Bath Mind was asked to delete its copy of your daily activities on 3 May at 14:10.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from .vocabulary import CANONICAL_BASE, SECTION_PHRASES

PARTNER_ID_SYSTEM = f"{CANONICAL_BASE}/Id/partner"
EXCHANGE_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/exchange"
DOMAIN_RESOURCE_ROLE = "4"
MOST_PARTS_LISTED = 6
# Parts of the record in the order the person reads them.
READING_ORDER = ["name, address and NHS number", *SECTION_PHRASES.values()]

# name_of("Organization/x" | "Practitioner/x") -> display name or None
NameOf = Callable[[str], str | None]
# partner_of(partner id) -> (name, kind) or None
PartnerOf = Callable[[str], tuple[str, str] | None]
# label_of("CarePlan/x") -> "daily activities" or None when unknown
LabelOf = Callable[[str], str | None]


@dataclass(frozen=True)
class LogEntry:
    when: datetime
    sentence: str
    kind: str  # look | emergency | sent | export | recall | deleted | change
    you: bool = False  # the person's own look at their record
    detail: str | None = None


def when_words(moment: datetime, tz: tzinfo, today: date | None = None) -> str:
    """'3 May at 14:02' (with the year when it is not this year)."""
    local = moment.astimezone(tz)
    this_year = (today or datetime.now(tz).date()).year
    day = f"{local.day} {local:%B}" + ("" if local.year == this_year else f" {local.year}")
    return f"{day} at {local:%H:%M}"


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _things(labels: Sequence[str]) -> str:
    rank = {label: i for i, label in enumerate(READING_ORDER)}
    distinct = sorted(dict.fromkeys(labels), key=lambda label: rank.get(label, len(rank)))
    if not distinct:
        return "record"
    if len(distinct) > MOST_PARTS_LISTED:
        shown = distinct[: MOST_PARTS_LISTED - 1]
        return f"{', '.join(shown)} and {len(distinct) - len(shown)} other parts of your record"
    if len(distinct) == 1:
        return distinct[0]
    return f"{', '.join(distinct[:-1])} and {distinct[-1]}"


def _actor(event: Mapping[str, Any], partner_of: PartnerOf, name_of: NameOf) -> tuple[str, bool]:
    """(who, is it the person themselves) from the event's agents."""
    org_name: str | None = None
    practitioner: str | None = None
    for agent in event.get("agent") or []:
        who = agent.get("who") or {}
        ident = who.get("identifier") or {}
        ref = who.get("reference")
        if ident.get("system") == PARTNER_ID_SYSTEM and ident.get("value"):
            partner = partner_of(ident["value"])
            if partner is not None and partner[1] == "person":
                return "You", True
            org_name = (partner[0] if partner else None) or (name_of(ref) if ref else None) or ident["value"]
        elif isinstance(ref, str) and ref.startswith("Practitioner/"):
            practitioner = name_of(ref) or "a member of staff"
    org_name = org_name or "Someone"
    if practitioner:
        return f"{practitioner} at {org_name}", False
    return org_name, False


def _labels(event: Mapping[str, Any], label_of: LabelOf) -> list[str]:
    out = []
    for entity in event.get("entity") or []:
        role = entity.get("role") or {}
        ref = (entity.get("what") or {}).get("reference")
        if role.get("code") != DOMAIN_RESOURCE_ROLE or not isinstance(ref, str):
            continue
        base = "/".join(ref.split("/")[:2])
        out.append(label_of(base) or "record")
    return out


def _detail(event: Mapping[str, Any], kind: str) -> str | None:
    for entity in event.get("entity") or []:
        for d in entity.get("detail") or []:
            if d.get("type") == kind:
                return d.get("valueString")
    return None


def _exchange(event: Mapping[str, Any]) -> str | None:
    for s in event.get("subtype") or []:
        if s.get("system") == EXCHANGE_SYSTEM:
            return s.get("code")
    return None


def event_entry(
    event: Mapping[str, Any],
    partner_of: PartnerOf,
    name_of: NameOf,
    label_of: LabelOf,
    tz: tzinfo,
    today: date | None = None,
) -> LogEntry | None:
    """One AuditEvent in words; None for an event that is not about this record's use."""
    moment = _instant(event.get("recorded"))
    if moment is None:
        return None
    who, you = _actor(event, partner_of, name_of)
    things = _things(_labels(event, label_of))
    at = when_words(moment, tz, today)
    how = _exchange(event)
    if how == "recall":
        why = event.get("outcomeDesc") or ""
        detail = (
            "This is because you changed your sharing choices."
            if "choices" in why
            else (f"Why: {why}." if why else None)
        )
        return LogEntry(
            moment, f"{who} was asked to delete its copy of your {things} on {at}.", "recall", detail=detail
        )
    if how == "deleted":
        return LogEntry(moment, f"{who} was told that your {things} had been deleted, on {at}.", "deleted")
    if how == "push":
        return LogEntry(moment, f"{who} was sent your {things} on {at}.", "sent")
    if how == "export":
        return LogEntry(moment, f"{who} downloaded your {things} on {at}.", "export")
    reason = _detail(event, "break-glass-reason")
    if reason is not None:
        return LogEntry(
            moment,
            f"In an emergency, {who} opened your {things} on {at}.",
            "emergency",
            detail=f"The reason they gave: \u201c{reason}\u201d. Your care team was told.",
        )
    if you:
        return LogEntry(moment, f"You looked at your {things} on {at}.", "look", you=True)
    return LogEntry(moment, f"{who} looked at your {things} on {at}.", "look")


def change_entry(
    consent: Mapping[str, Any],
    patient: str,
    recorded_by: str | None,
    present: Sequence[str],
    name_of: NameOf,
    tz: tzinfo,
    today: date | None = None,
) -> LogEntry | None:
    """A saved set of sharing choices (the Consent written by save_choices) in words."""
    # When the choices were made (a later version only marks them replaced).
    moment = _instant(consent.get("dateTime")) or _instant((consent.get("meta") or {}).get("lastUpdated"))
    if moment is None:
        return None
    at = when_words(moment, tz, today)
    helpers = [name_of(p) or "someone" for p in present if p != patient]
    if helpers:
        with_whom = ", ".join(helpers[:-1]) + (" and " if len(helpers) > 1 else "") + helpers[-1]
        return LogEntry(moment, f"You changed who can see your record, with {with_whom}, on {at}.", "change")
    if recorded_by and recorded_by != patient:
        by = name_of(recorded_by) or "your care team"
        return LogEntry(moment, f"Your sharing choices were changed on {at}, recorded by {by}.", "change")
    return LogEntry(moment, f"You changed who can see your record on {at}.", "change")


__all__ = ["LogEntry", "change_entry", "event_entry", "when_words"]
