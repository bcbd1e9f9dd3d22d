"""Who may move a transfer of care from one step to the next: the Task state machine.

The steps follow FHIR's Task state machine as NHS England's workflow guidance uses it:

    requested -> received -> accepted | rejected -> in-progress -> completed
    (any step before completion) -> on-hold -> (back where it was)    $pause / $resume
    (any step before completion) -> cancelled

and who takes each step comes from the people in seeds/000_... section 3: the receiving
service (B) acknowledges, accepts or rejects and says when it has taken over; the service
the person is leaving (A) or the person themselves can say "not ready yet"; only A can
call the move off. A week of the handover is done by whichever service leads that week;
otherwise the weeks follow the transfer.

Pure: the server asks `refusal(...)` and turns the answer into a 409 or a 403.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Parties, as the rules name them.
A = "A"  # the service the person is leaving (the parent Task's requester)
B = "B"  # the receiving service (the parent Task's owner)
PERSON = "person"  # the person, through their own app or page
OWNER = "owner"  # for a week: the service that leads it

PARTY_WORDS = {
    A: "the service the person is leaving (A)",
    B: "the receiving service (B)",
    PERSON: "the person",
    OWNER: "the service leading that week",
}

PARENT = "parent"  # the whole transfer
WEEK = "week"  # one week of it

UPDATE = "update"  # PUT of the Task with a new status
PAUSE = "$pause"
RESUME = "$resume"
# On-hold goes back to wherever the transfer was when it was paused.
WHERE_IT_WAS = "(where it was before the pause)"

TERMINAL = frozenset({"completed", "cancelled", "rejected", "failed", "entered-in-error"})


@dataclass(frozen=True, slots=True)
class Step:
    to: str
    parties: frozenset[str]
    via: str = UPDATE

    def words(self, paused_from: str | None = None) -> str:
        who = " or ".join(PARTY_WORDS[p] for p in sorted(self.parties))
        how = f", with {self.via}" if self.via != UPDATE else ""
        to = f"{paused_from} {WHERE_IT_WAS}" if self.to == WHERE_IT_WAS and paused_from else self.to
        return f"{to} (by {who}{how})"


def _step(to: str, *parties: str, via: str = UPDATE) -> Step:
    return Step(to, frozenset(parties), via)


_PAUSE = _step("on-hold", A, PERSON, via=PAUSE)
_CANCEL = _step("cancelled", A)

PARENT_STEPS: dict[str, tuple[Step, ...]] = {
    "requested": (_step("received", B), _PAUSE, _CANCEL),
    "received": (_step("accepted", B), _step("rejected", B), _PAUSE, _CANCEL),
    "accepted": (_step("in-progress", A, B), _PAUSE, _CANCEL),
    "in-progress": (_step("completed", B), _PAUSE, _CANCEL),
    "on-hold": (_step(WHERE_IT_WAS, A, PERSON, via=RESUME), _CANCEL),
}

WEEK_STEPS: dict[str, tuple[Step, ...]] = {
    "requested": (_step("in-progress", OWNER), _step("completed", OWNER)),
    "in-progress": (_step("completed", OWNER),),
}

# Statuses a transfer (or a week) may be created in.
START = {PARENT: frozenset({"requested"}), WEEK: frozenset({"requested"})}


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 409: not a step from here; 403: a step, but not yours to take
    message: str


def steps(kind: str, current: str) -> tuple[Step, ...]:
    table = PARENT_STEPS if kind == PARENT else WEEK_STEPS
    return table.get(current, ())


def allowed_words(kind: str, current: str, paused_from: str | None = None) -> str:
    """'received (by the receiving service (B)); ...', or why nothing is allowed."""
    found = steps(kind, current)
    if found:
        return "; ".join(s.words(paused_from) for s in found)
    if kind == WEEK and current not in TERMINAL:
        return "nothing by itself: it follows its transfer (pause, resume or cancel the transfer)"
    return f"nothing: {current} is final"


def refusal(
    kind: str,
    current: str,
    target: str,
    parties: Iterable[str],
    *,
    via: str = UPDATE,
    paused_from: str | None = None,
) -> Refusal | None:
    """None when `parties` may move a `kind` Task from `current` to `target` by `via`.

    `paused_from` is where an on-hold transfer was before it was paused: the only place
    $resume takes it back to.
    """
    mine = frozenset(parties)
    allowed = f"From {current} it can move to: {allowed_words(kind, current, paused_from)}."
    for step in steps(kind, current):
        to = paused_from if step.to == WHERE_IT_WAS else step.to
        if to != target and not (step.to == WHERE_IT_WAS and via == RESUME):
            continue
        if step.via != via:
            how = {PAUSE: "pause it with $pause", RESUME: "resume it with $resume"}.get(
                step.via, "update the Task's status"
            )
            return Refusal(409, f"{current} -> {target} is not done by {via}: {how}. {allowed}")
        if mine & step.parties:
            return None
        who = " or ".join(PARTY_WORDS[p] for p in sorted(step.parties))
        return Refusal(403, f"only {who} may move it from {current} to {target}.")
    if via == RESUME:
        return Refusal(409, f"it is {current}, not on-hold: only a paused transfer can be resumed. {allowed}")
    if via == PAUSE and current == "on-hold":
        return Refusal(409, f"it is already on-hold. {allowed}")
    if kind == WEEK:
        return Refusal(
            409,
            f"a week cannot move from {current} to {target} by itself: it follows its transfer "
            f"(pause, resume or cancel the transfer). {allowed}",
        )
    return Refusal(409, f"it cannot move from {current} to {target}. {allowed}")


def table(kind: str) -> dict[str, tuple[Step, ...]]:
    """Every legal step of `kind`, by status (for documentation and tests)."""
    return dict(PARENT_STEPS if kind == PARENT else WEEK_STEPS)
