"""Change my choices: read the grid as it stands, apply one change a person asks for,
preview what the engine will then do, and save it through the API's own code.

A change is one of: one recipient's row (yes/no per part, from/until), the crisis
answers, or "stop sharing everything now". Whatever it is, the page saves the whole
grid as one set of sharing choices (`operations.save_choices`), which replaces the
person's earlier privacy consents, so what the page shows is all that is in force.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from carebridge.consent.choices import choice_problems
from carebridge.consent.sharing_form import (
    CRISIS_ANSWERS,
    Change,
    RecipientChoice,
    choices_document,
    compare,
    day_words,
)
from carebridge.server.db import Conn
from carebridge.server.interaction import Ctx
from carebridge.server.operations import save_choices
from carebridge.server.partners import Registry
from carebridge.server.sharing_table import (
    Column,
    Evaluation,
    Recipient,
    Record,
    assumed_after,
    columns_for,
    current_choice,
    evaluate,
    load_record,
    recipients_for,
    superseded,
)


@dataclass
class Sharing:
    """Everything the sharing pages show, read in one go."""

    record: Record
    columns: list[Column]
    recipients: list[Recipient]
    always: list[str]
    now: Evaluation

    def recipient(self, ref: str) -> Recipient | None:
        return next((r for r in self.recipients if r.ref == ref and r.changeable), None)

    def rows_now(self) -> dict[str, RecipientChoice]:
        return {
            r.ref: current_choice(self.record, r, self.columns, self.now)
            for r in self.recipients
            if r.changeable
        }


def read_sharing(c: Conn, ctx: Ctx, pid: str) -> Sharing | None:
    record = load_record(c, pid)
    if record is None:
        return None
    columns = columns_for(record)
    recipients, always = recipients_for(c, ctx, record)
    return Sharing(record, columns, recipients, always, evaluate(c, ctx.registry, recipients, columns))


@dataclass
class Proposal:
    kind: str  # recipient | crisis | stop
    rows: dict[str, RecipientChoice]
    errors: dict[str, str] = field(default_factory=dict)  # field name -> what to fix
    fields: list[tuple[str, str]] = field(default_factory=list)  # to carry to the save
    recipient: Recipient | None = None


def _date(form: Mapping[str, str], name: str, label: str, errors: dict[str, str]) -> str | None:
    """A date from day, month and year boxes (or, carried from the confirmation, as ISO)."""
    parts = [form.get(f"{name}-{p}", "").strip() for p in ("day", "month", "year")]
    if not any(parts):
        value = form.get(name, "").strip()
        if not value:
            return None
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            errors[name] = f"The {label} date is not a real date."
            return None
    if not all(parts):
        errors[name] = f"Enter a day, a month and a year for the {label} date, or leave all three empty."
        return None
    try:
        return date(int(parts[2]), int(parts[1]), int(parts[0])).isoformat()
    except ValueError:
        errors[name] = f"The {label} date is not a real date. For example, 3 5 2026."
        return None


def propose(sh: Sharing, kind: str, form: Mapping[str, str], ref: str | None = None) -> Proposal:
    """The grid as it would be with this change, and any problem with what was sent."""
    rows = sh.rows_now()
    p = Proposal(kind, rows)
    if kind == "stop":
        for ref_, row in rows.items():
            # A crisis "no" is a refusal: stopping sharing keeps it.
            rows[ref_] = replace(
                row,
                see=dict.fromkeys(row.see, False),
                crisis="no" if row.crisis == "no" else "unset",
            )
        return p
    if kind == "crisis":
        for r in sh.recipients:
            if not r.changeable:
                continue
            name = f"crisis:{r.ref}"
            answer = form.get(name, "")
            if answer not in CRISIS_ANSWERS:
                p.errors[name] = f"Choose an answer for {r.name}."
                continue
            rows[r.ref] = replace(rows[r.ref], crisis=answer)
            p.fields.append((name, answer))
        return p
    recipient = sh.recipient(ref or "")
    if recipient is None:
        raise LookupError(ref)
    p.recipient = recipient
    see: dict[str, bool] = {}
    for col in sh.columns:
        name = f"see-{col.code}"
        answer = form.get(name, "")
        if answer not in ("yes", "no"):
            p.errors[name] = f"Choose yes or no for \u201c{col.title}\u201d."
            continue
        see[col.code] = answer == "yes"
        p.fields.append((name, answer))
    start = _date(form, "from", "\u201cfrom\u201d", p.errors)
    end = _date(form, "until", "\u201cuntil\u201d", p.errors)
    if start and end and end < start:
        p.errors["until"] = "The \u201cuntil\u201d date must be on or after the \u201cfrom\u201d date."
    if end and end < date.today().isoformat():
        p.errors["until"] = (
            "The \u201cuntil\u201d date has already passed. Choose a later date, or leave it empty."
        )
    p.fields += [("from", start or ""), ("until", end or "")]
    if not p.errors:
        rows[recipient.ref] = replace(rows[recipient.ref], see=see, start=start, end=end)
    return p


@dataclass
class Preview:
    changes: list[Change]
    dates: list[str]  # sentences about from/until
    replaces: int  # earlier consents this replaces
    document: dict
    problems: list[str]

    @property
    def deletions(self) -> list[Change]:
        return [c for c in self.changes if c.asked_to_delete]


def _period_words(name: str, row: RecipientChoice) -> str:
    if row.start and row.end:
        return f"{name} can see what you share from {day_words(row.start)} until {day_words(row.end)}."
    if row.start:
        return f"{name} can see what you share from {day_words(row.start)}, with no end date."
    if row.end:
        return f"{name} can see what you share until {day_words(row.end)}."
    return f"{name} can see what you share with no start or end date."


def preview(
    c: Conn,
    registry: Registry,
    sh: Sharing,
    p: Proposal,
    *,
    recorded_by: str,
    present: list[str],
    when: str,
) -> Preview:
    """What the engine will answer once these choices are saved, against what it answers now."""
    codes = [col.code for col in sh.columns]
    order = [r.ref for r in sh.recipients if r.changeable]
    document = choices_document(
        f"Patient/{sh.record.patient}",
        [p.rows[ref] for ref in order],
        codes,
        recorded_by=recorded_by,
        present=present,
        when=when,
    )
    problems = choice_problems(document)
    if problems:
        return Preview([], [], 0, document, problems)
    after = evaluate(c, registry, sh.recipients, sh.columns, assumed=assumed_after(sh.record, document))
    names = {r.ref: r.name for r in sh.recipients}
    crisis_before, crisis_after = sh.now.crisis_words(), after.crisis_words()
    for ref, code in after.crisis.items():
        # "Only what you share every day" just follows the change already said above.
        if code == "same" and sh.now.crisis.get(ref) in ("no", "some", "same"):
            crisis_after[ref] = crisis_before.get(ref, crisis_after[ref])
    changes = compare(names, codes, sh.now.see, after.see, crisis_before, crisis_after)
    dates = []
    if p.recipient is not None:
        was = sh.rows_now()[p.recipient.ref]
        will = p.rows[p.recipient.ref]
        if (was.start, was.end) != (will.start, will.end) and any(will.see.values()):
            dates.append(_period_words(p.recipient.name, will))
    return Preview(changes, dates, len(superseded(sh.record)), document, [])


def save(ctx: Ctx, sh: Sharing, pv: Preview) -> None:
    """Write the choices through the API's own code, retiring the consents they replace."""
    save_choices(
        ctx,
        sh.record.patient,
        pv.document,
        supersede=tuple(superseded(sh.record)),
        consent_version=sh.record.consent_version,
    )
