"""Say a Decision in plain English, for the person, their care coordinator and audit.

People will read these with a care coordinator beside them (DOMAIN.md point 8), so
the sentences are short, name the organisation and the part of the record in
everyday words, and cite the Consent and rule in brackets only where it helps to
find it:

    Bath Mind can see Millie's daily activities because of her consent of 3 May 2026.
    Bath Mind cannot see Millie's risk assessment because she said no to that
    (Consent/x, provision.provision[1]).
    Bath Mind cannot see Millie's crisis plan because she has not agreed to share it.
"""

from __future__ import annotations

from datetime import date, datetime

from carebridge.consent.dates import fhir_range
from carebridge.consent.model import Decision

# subject, possessive, "has/have"
PRONOUNS: dict[str, tuple[str, str, str]] = {
    "she": ("she", "her", "has"),
    "he": ("he", "his", "has"),
    "they": ("they", "their", "have"),
}


def _day(value: date | datetime | str | None) -> str | None:
    """'3 May 2026' for a date, dateTime or FHIR date string; None if unreadable."""
    if value is None:
        return None
    if isinstance(value, str):
        rng = fhir_range(value)
        if rng is None:
            return None
        if len(value) >= 10:
            value = date.fromisoformat(value[:10])
        elif len(value) == 7:
            return datetime.strptime(value, "%Y-%m").strftime("%B %Y")
        else:
            return value[:4]
    if isinstance(value, datetime):
        value = value.date()
    return f"{value.day} {value:%B %Y}"


def _citation(decision: Decision) -> str:
    cites = []
    for p in decision.provisions:
        ref, _, where = p.partition("#")
        cites.append(f"{ref}, {where}" if where else ref)
    if not cites:
        cites = list(decision.consents)
    return f" ({'; '.join(cites)})" if cites else ""


def explain(
    decision: Decision,
    requester_name: str,
    patient_name: str,
    resource_label: str,
    consent_date: date | datetime | str | None = None,
    pronoun: str = "they",
) -> str:
    """One or two plain-English sentences saying what ``decision`` means.

    ``pronoun`` is "she", "he" or "they" (default) for the person; ``consent_date``
    is the date of the deciding consent, taken from the decision when not given.
    """
    she, her, has = PRONOUNS.get(pronoun.lower(), PRONOUNS["they"])
    who = requester_name
    what = f"{patient_name}'s {resource_label}"
    basis = decision.basis
    if consent_date is None:
        dates = decision.extra.get("consent_dates") if decision.extra else None
        if dates:
            known = [d for c in decision.consents if (d := dates.get(c))]
            consent_date = known[0] if len(set(known)) == 1 else None
    day = _day(consent_date)

    if basis == "not-personal":
        return f"{who} can see this {resource_label}: it is not personal information."
    if basis == "custodian":
        return f"{who} can see {what} because {who} looks after {patient_name}'s care record."
    if basis == "person":
        return f"{who} can see {what} because it is {patient_name}'s own record."
    if basis == "consent":
        sentence = f"{who} can see {what} because of {her} consent"
        sentence += f" of {day}" if day else ""
        sentence += f"{_citation(decision)}."
        if decision.break_glass:
            sentence += (
                f" This was an emergency request, so it is recorded and {patient_name}'s "
                "care team is told."
            )
        return sentence
    if basis == "break-glass":
        return (
            f"{who} can see {what} because of an emergency (break-glass). This is "
            f"recorded and {patient_name}'s care team is told."
        )
    if basis == "advance-decision":
        when = f" on {day}" if day else " in advance"
        return (
            f"{who} cannot see {what}, even in an emergency, because {she} decided{when} "
            f"that they should not{_citation(decision)}."
        )
    if basis == "denied":
        return f"{who} cannot see {what} because {she} said no to that{_citation(decision)}."
    # no-consent, and anything unforeseen: deny by default
    return f"{who} cannot see {what} because {she} {has} not agreed to share it."


__all__ = ["PRONOUNS", "explain"]
