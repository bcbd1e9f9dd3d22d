"""The person's sharing page as plain data (pure, no I/O).

The page shows a grid: recipients down the side, parts of the record across, each cell
yes or no as the engine decides it. A person changes some cells; this module turns the
whole grid into the sharing-choices JSON of ``consent/choices.py`` (so the page saves
through the same code as the API), and compares two grids into the sentences a person
confirms ("Bath Mind will no longer see your crisis plan").

Columns are care-plan section codes plus two of the page's own:

* ``details``: the Patient resource (name, address, NHS number), which carries no
  section tag, so a list of sections never covers it (choices ``includeDemographics``);
* ``other``: everything else in the record that has no section tag (sharing choices,
  messages). Only the whole record (``"sections": "all"``) covers it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from carebridge.consent.dates import fhir_range
from carebridge.mappings.vocabulary import PURPOSE_OF_USE_SYSTEM, SECTION_PHRASES

DETAILS = "details"
OTHER = "other"
ETREAT = "ETREAT"
# A crisis answer: agreed in advance, refused in advance, or left to the moment.
CRISIS_ANSWERS = ("yes", "no", "unset")

# How a sentence names a column: "Bath Mind will no longer see your <phrase>".
PHRASES: dict[str, str] = {
    DETAILS: "name, address and NHS number",
    "plan": "care plan's front page",
    OTHER: "other records (such as your sharing choices)",
    **{k: v for k, v in SECTION_PHRASES.items() if k != "plan"},
}


def phrase(column: str) -> str:
    return PHRASES.get(column, column.replace("-", " "))


def day_words(value: str) -> str:
    """'3 May 2026' for a date such as 2026-05-03 (the text itself if it is not one)."""
    try:
        d = date.fromisoformat(value[:10])
    except ValueError:
        return value
    return f"{d.day} {d:%B %Y}"


def listing(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


@dataclass
class RecipientChoice:
    """One recipient's row as the person wants it."""

    recipient: str  # "Organization/ID" or "Practitioner/ID"
    see: dict[str, bool] = field(default_factory=dict)  # column -> yes
    start: str | None = None  # "from" date, YYYY-MM-DD
    end: str | None = None  # "until" date (inclusive)
    crisis: str = "unset"  # yes | no | unset


# ------------------------------------------------------------------ grid -> choices


def _dates(choice: RecipientChoice) -> dict[str, str]:
    out = {}
    if choice.start:
        out["from"] = choice.start
    if choice.end:
        out["until"] = choice.end
    return out


def shares_for(choice: RecipientChoice, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The share entries that give exactly this row's yes cells, and nothing else.

    A "no" is left unsaid (deny by default) so that a crisis "yes" can still apply;
    only when the row says yes to "other" (the whole record) are the no cells stated
    as refusals carved out of it.
    """
    yes = [c for c in columns if choice.see.get(c)]
    no = [c for c in columns if not choice.see.get(c)]
    if not yes:
        return []
    who = choice.recipient
    if not no:
        return [{"recipient": who, "allow": True, "sections": "all", **_dates(choice)}]
    sections_yes = [c for c in yes if c not in (DETAILS, OTHER)]
    sections_no = [c for c in no if c not in (DETAILS, OTHER)]
    if choice.see.get(OTHER):
        out: list[dict[str, Any]] = [{"recipient": who, "allow": True, "sections": "all", **_dates(choice)}]
        if sections_no:
            refusal: dict[str, Any] = {"recipient": who, "allow": False, "sections": sections_no}
            if DETAILS in no:
                refusal["includeDemographics"] = True
            out.append(refusal)
        elif DETAILS in no:
            out.append({"recipient": who, "allow": False, "sections": "all", "types": ["Patient"]})
        return out
    if not sections_yes:  # only their details
        return [{"recipient": who, "allow": True, "sections": "all", "types": ["Patient"], **_dates(choice)}]
    share: dict[str, Any] = {"recipient": who, "allow": True, "sections": sections_yes}
    if choice.see.get(DETAILS):
        share["includeDemographics"] = True
    share.update(_dates(choice))
    return [share]


def choices_document(
    patient: str,
    rows: Sequence[RecipientChoice],
    columns: Sequence[str],
    *,
    recorded_by: str | None = None,
    present: Sequence[str] = (),
    when: str | None = None,
) -> dict[str, Any]:
    """The whole grid as one sharing-choices document (consent/choices.py)."""
    doc: dict[str, Any] = {"patient": patient}
    if when:
        doc["dateTime"] = when
    if recorded_by:
        doc["recordedBy"] = recorded_by
    if present:
        doc["present"] = list(present)
    doc["shares"] = [s for row in rows for s in shares_for(row, columns)]
    doc["crisis"] = [
        {"recipient": row.recipient, "allow": row.crisis == "yes", "sections": "all"}
        for row in rows
        if row.crisis in ("yes", "no")
    ]
    return doc


# ------------------------------------------------------------------ reading a Consent


def provision_chain(consent: Mapping[str, Any], path: str) -> list[Mapping[str, Any]]:
    """The provisions from the root down to ``path`` ("provision.provision[1]"); [] if absent."""
    parts = path.split(".")
    if not parts or parts[0] != "provision":
        return []
    node = consent.get("provision")
    if not isinstance(node, Mapping):
        return []
    chain = [node]
    for part in parts[1:]:
        name, _, rest = part.partition("[")
        if name != "provision" or not rest.endswith("]") or not rest[:-1].isdigit():
            return []
        kids = node.get("provision")
        i = int(rest[:-1])
        if not isinstance(kids, list) or i >= len(kids) or not isinstance(kids[i], Mapping):
            return []
        node = kids[i]
        chain.append(node)
    return chain


def chain_period(chain: Sequence[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    """The narrowest (start, end) that every provision in the chain allows."""
    start: str | None = None
    end: str | None = None
    for p in chain:
        period = p.get("period")
        if not isinstance(period, Mapping):
            continue
        s, e = period.get("start"), period.get("end")
        s_range = fhir_range(s) if isinstance(s, str) else None
        e_range = fhir_range(e) if isinstance(e, str) else None
        if s_range and (start is None or s_range[0] > fhir_range(start)[0]):
            start = s
        if e_range and (end is None or e_range[1] < fhir_range(end)[1]):
            end = e
    return (start[:10] if start else None, end[:10] if end else None)


def chain_is_crisis(chain: Sequence[Mapping[str, Any]]) -> bool:
    """Whether some provision in the chain is limited to emergencies (purpose ETREAT)."""
    for p in chain:
        for c in p.get("purpose") or []:
            if (
                isinstance(c, Mapping)
                and c.get("code") == ETREAT
                and c.get("system")
                in (
                    PURPOSE_OF_USE_SYSTEM,
                    None,
                )
            ):
                return True
    return False


# ------------------------------------------------------------------ what will change


@dataclass
class Change:
    """What changes for one recipient, in the person's words."""

    recipient: str
    name: str
    gained: list[str] = field(default_factory=list)  # columns they will newly see
    lost: list[str] = field(default_factory=list)  # columns they will no longer see
    crisis_before: str = ""
    crisis_after: str = ""

    def sentences(self) -> list[str]:
        out = []
        if self.gained:
            out.append(f"{self.name} will be able to see your {listing([phrase(c) for c in self.gained])}.")
        if self.lost:
            out.append(f"{self.name} will no longer see your {listing([phrase(c) for c in self.lost])}.")
        if self.crisis_before != self.crisis_after:
            out.append(f"If you are unwell and cannot decide: {self.crisis_after}")
        return out

    @property
    def asked_to_delete(self) -> bool:
        """A partner that could see something it no longer can is asked to delete copies."""
        return bool(self.lost)


def compare(
    names: Mapping[str, str],
    columns: Sequence[str],
    before: Mapping[str, Mapping[str, str]],
    after: Mapping[str, Mapping[str, str]],
    crisis_before: Mapping[str, str],
    crisis_after: Mapping[str, str],
) -> list[Change]:
    """Per recipient, what the engine's answers will be after the change that differ now.

    Grids map recipient -> column -> "yes" | "no" | "some"; less than before is a loss
    (the partner is asked to delete copies), more is a gain.
    """
    rank = {"no": 0, "some": 1, "yes": 2}
    changes = []
    for ref, name in names.items():
        was, will = before.get(ref, {}), after.get(ref, {})
        change = Change(
            ref, name, crisis_before=crisis_before.get(ref, ""), crisis_after=crisis_after.get(ref, "")
        )
        for col in columns:
            a, b = rank.get(was.get(col, "no"), 0), rank.get(will.get(col, "no"), 0)
            if b > a:
                change.gained.append(col)
            elif b < a:
                change.lost.append(col)
        if change.sentences():
            changes.append(change)
    return changes


__all__ = [
    "CRISIS_ANSWERS",
    "DETAILS",
    "OTHER",
    "Change",
    "RecipientChoice",
    "chain_is_crisis",
    "chain_period",
    "choices_document",
    "compare",
    "day_words",
    "listing",
    "phrase",
    "provision_chain",
    "shares_for",
]
