"""Who can see what: the person's sharing grid, decided by the gate, never guessed.

Every cell is `Gate.decide` (so `consent.decide`, the one enforcement function) for a
real requester built as `$evaluate` builds it, against the real resources of that part
of the plan. A preview of a change is the same computation with the Consents the
change would leave active, so the confirmation screen says what the engine will do.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from carebridge.consent.choices import choices_to_consent
from carebridge.consent.model import Decision, PatientFacts, Requester
from carebridge.consent.policy import is_privacy_scope
from carebridge.consent.sharing_form import (
    DETAILS,
    OTHER,
    RecipientChoice,
    chain_is_crisis,
    chain_period,
    provision_chain,
)
from carebridge.mappings.vocabulary import SECTION_SYSTEM, SECTIONS
from carebridge.server import partners, store
from carebridge.server.db import Conn
from carebridge.server.disclosure import Gate
from carebridge.server.interaction import Ctx
from carebridge.server.operations import CHOICES_IDENTIFIER, requester_from_reference
from carebridge.server.partners import Registry
from carebridge.server.store import COLUMNS, Row, row_from

# Why the page asks: the person (or their coordinator with them) asked to see it.
PAGE_PURPOSE = "PATRQT"
EMERGENCY_REASON = "checking what would happen in an emergency"

GROUPS: dict[str, str] = {
    "voluntary": "Voluntary and community groups",
    "gp": "My GP",
    "clinicians": "Other clinicians and services",
    "family": "My family and carers",
    "shared": "The shared care record",
}

SHORT_TITLES: dict[str, str] = {
    DETAILS: "My details",
    "plan": "Plan summary",
    "about-me": "About me",
    "daily-activities": "Daily activities",
    "contact-plan": "Keeping in touch",
    "contacts": "Contacts",
    "medication-agreement": "Medication",
    "family-relationships": "Family",
    "faith-spirituality": "Faith",
    "education-training": "Education",
    "strengths-community": "Strengths",
    "recovery-goals": "Goals",
    "crisis-plan": "Crisis plan",
    "risk-assessment": "Risks",
    "transfer": "Moving services",
    OTHER: "Other records",
}
TITLES: dict[str, str] = {
    DETAILS: "My name, address and NHS number",
    "plan": "The front page of my plan",
    **SECTIONS,
    OTHER: "Other records, such as my sharing choices",
}
CRISIS_WORDS: dict[str, str] = {
    "yes-told": "Yes, in an emergency. Your care team is told.",
    "yes": "Yes.",
    "no-advance": "No. You decided this in advance.",
    "no": "No.",
    "some": "Some parts only.",
    "same": "Only what you share with them every day.",
}


@dataclass
class Column:
    code: str
    rows: list[Row]

    @property
    def short(self) -> str:
        return SHORT_TITLES.get(self.code, self.code)

    @property
    def title(self) -> str:
        return TITLES.get(self.code, self.code)


@dataclass
class Recipient:
    ref: str  # "Organization/ID", "Practitioner/ID" or "RelatedPerson/ID"
    name: str
    group: str
    kind: str
    requester: Requester
    emergency: Requester
    changeable: bool = True


@dataclass
class Record:
    """The person's compartment, as stored now."""

    patient: str  # id
    patient_row: Row
    rows: list[Row]
    consents: list[dict]
    consent_version: int

    @property
    def resource(self) -> dict:
        return self.patient_row.resource()


@dataclass
class Evaluation:
    see: dict[str, dict[str, str]]  # recipient -> column -> yes | no | some
    crisis: dict[str, str]  # recipient -> CRISIS_WORDS key
    treat: dict[str, dict[str, list[Decision]]] = field(default_factory=dict)
    emergency: dict[str, dict[str, list[Decision]]] = field(default_factory=dict)

    def crisis_words(self) -> dict[str, str]:
        return {ref: CRISIS_WORDS[code] for ref, code in self.crisis.items()}


@dataclass
class PreviewGate(Gate):
    """The gate's decisions as if the patient's Consents were `assumed` (None: as they
    are). It only decides: it never discloses."""

    assumed: tuple[dict, ...] | None = None
    _assumed_facts: dict[str, PatientFacts] = field(default_factory=dict)

    def facts(self, patient: str | None) -> PatientFacts | None:
        real = super().facts(patient)
        if real is None or patient is None or self.assumed is None:
            return real
        if patient not in self._assumed_facts:
            # Version -1 is never a stored one, so the compiled-policy cache keeps it apart.
            self._assumed_facts[patient] = replace(real, consents=self.assumed, consent_version=-1)
        return self._assumed_facts[patient]

    def disclose(self, row: Row, *, audit: bool = True) -> bytes | None:
        raise RuntimeError("a preview gate decides; it never discloses")


# -- the record ------------------------------------------------------------------------
def load_record(c: Conn, pid: str) -> Record | None:
    prow = store.current(c, "Patient", pid)
    if prow is None or prow.deleted:
        return None
    rows = [
        row_from(t)
        for t in c.all(
            f"SELECT {COLUMNS} FROM resource WHERE patient = ? AND deleted = 0 AND type <> 'AuditEvent' "
            "ORDER BY type, id",
            (pid,),
        )
    ]
    consents = [r.resource() for r in rows if r.type == "Consent"]
    t = c.one("SELECT consent_version FROM patient_facts WHERE patient = ?", (pid,))
    return Record(pid, prow, rows, consents, int(t[0]) if t else 0)


def section_of(resource: dict) -> str | None:
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if tag.get("system") == SECTION_SYSTEM and tag.get("code"):
            return tag["code"]
    return None


def columns_for(record: Record) -> list[Column]:
    """My details, the plan, each section the plan has (in reading order), then the rest."""
    by_code: dict[str, list[Row]] = {}
    for row in record.rows:
        code = DETAILS if row.type == "Patient" else section_of(row.resource()) or OTHER
        by_code.setdefault(code, []).append(row)
    order = [DETAILS, "plan", *SECTIONS, OTHER]
    extra = sorted(k for k in by_code if k not in order)
    return [Column(code, by_code[code]) for code in [*order, *extra] if code in by_code]


# -- recipients ------------------------------------------------------------------------
def _name(resource: dict) -> str | None:
    for n in resource.get("name") or []:
        if isinstance(n, dict):
            if n.get("text"):
                return n["text"]
            parts = [*(n.get("prefix") or []), *(n.get("given") or []), n.get("family") or ""]
            words = " ".join(p for p in parts if p).strip()
            if words:
                return words
    return None


def display_name(c: Conn, ref: str) -> str | None:
    """The name of an Organization, Practitioner, RelatedPerson or Patient."""
    rtype, _, rid = ref.partition("/")
    row = store.current(c, rtype, rid)
    if row is None or row.deleted:
        return None
    res = row.resource()
    return res.get("name") if isinstance(res.get("name"), str) else _name(res)


def _actors(node: Any, out: set[str]) -> None:
    if not isinstance(node, dict):
        return
    for actor in node.get("actor") or []:
        ref = ((actor or {}).get("reference") or {}).get("reference")
        if isinstance(ref, str):
            out.add(ref)
    for kid in node.get("provision") or []:
        _actors(kid, out)


def _emergency(requester: Requester) -> Requester:
    return replace(requester, purpose="ETREAT", break_glass_reason=EMERGENCY_REASON)


def recipients_for(c: Conn, ctx: Ctx, record: Record) -> tuple[list[Recipient], list[str]]:
    """(rows of the grid, names of those who always see everything: the custodians)."""
    ctx.registry.refresh(c)
    patient = record.resource
    gps = {
        (g.get("reference") or "").removeprefix("Organization/")
        for g in patient.get("generalPractitioner") or []
        if isinstance(g, dict)
    }
    probe_row = record.patient_row
    out: list[Recipient] = []
    always: list[str] = []
    for p in sorted(partners.all_partners(ctx.db), key=lambda p: p.name.lower()):
        if p.kind == "person":
            continue
        requester, name = requester_from_reference(c, ctx, f"Organization/{p.id}", PAGE_PURPOSE, None)
        if Gate(c, ctx.registry, requester).decide(probe_row, patient).basis == "custodian":
            always.append(name)
            continue
        group = {
            "voluntary": "voluntary",
            "icr": "shared",
            "gp": "gp" if p.id in gps else "clinicians",
        }.get(p.kind, "clinicians")
        out.append(Recipient(f"Organization/{p.id}", name, group, p.kind, requester, _emergency(requester)))
    named: set[str] = set()
    for consent in record.consents:
        _actors(consent.get("provision"), named)
    for ref in sorted(r for r in named if r.startswith("Practitioner/")):
        if display_name(c, ref) is None:
            continue
        requester, name = requester_from_reference(c, ctx, ref, PAGE_PURPOSE, None)
        out.append(Recipient(ref, name, "clinicians", "practitioner", requester, _emergency(requester)))
    for row in record.rows:
        if row.type != "RelatedPerson":
            continue
        res = row.resource()
        relation = next((r.get("text") for r in res.get("relationship") or [] if r.get("text")), None)
        name = _name(res) or "A family member"
        # Family and carers never ask carebridge themselves: the engine answers for a
        # requester with no organisation, which is what their row shows.
        nobody = Requester(partner_id=row.ref, kind="other", organization=None, purpose=PAGE_PURPOSE)
        out.append(
            Recipient(
                row.ref,
                f"{name} ({relation})" if relation else name,
                "family",
                "family",
                nobody,
                _emergency(nobody),
                changeable=False,
            )
        )
    order = list(GROUPS)
    out.sort(key=lambda r: order.index(r.group))
    return out, always


# -- deciding --------------------------------------------------------------------------
def _cell(decisions: list[Decision]) -> str:
    allowed = [d.permit for d in decisions]
    if all(allowed):
        return "yes"
    return "some" if any(allowed) else "no"


def _crisis(decisions: list[Decision]) -> str:
    allowed = [d.permit for d in decisions]
    if all(allowed):
        return "yes-told" if any(d.break_glass for d in decisions) else "yes"
    if any(allowed):
        return "some"
    return "no-advance" if any(d.basis == "advance-decision" for d in decisions) else "no"


def evaluate(
    c: Conn,
    registry: Registry,
    recipients: list[Recipient],
    columns: list[Column],
    assumed: tuple[dict, ...] | None = None,
) -> Evaluation:
    """Every cell, decided by the gate (with `assumed` Consents for a preview)."""
    result = Evaluation({}, {})
    for r in recipients:
        treat = PreviewGate(c, registry, r.requester, assumed=assumed)
        emergency = PreviewGate(c, registry, r.emergency, assumed=assumed)
        result.treat[r.ref] = {
            col.code: [treat.decide(row, row.resource()) for row in col.rows] for col in columns
        }
        result.emergency[r.ref] = {
            col.code: [emergency.decide(row, row.resource()) for row in col.rows] for col in columns
        }
        result.see[r.ref] = {code: _cell(ds) for code, ds in result.treat[r.ref].items()}
        emergency_answers = [d for ds in result.emergency[r.ref].values() for d in ds]
        crisis = _crisis(emergency_answers)
        everyday = [d.permit for ds in result.treat[r.ref].values() for d in ds]
        if crisis == "some" and [d.permit for d in emergency_answers] == everyday:
            crisis = "same"
        result.crisis[r.ref] = crisis
    return result


# -- the choices as they stand, and after a change ---------------------------------------
def _chains(consents: dict[str, dict], paths: tuple[str, ...]) -> list[tuple[str, list]]:
    """(type of the provision, its chain from the root) for each decision path."""
    out = []
    for path in paths:
        cref, _, where = path.partition("#")
        consent = consents.get(cref)
        if consent is None:
            continue
        chain = provision_chain(consent, where)
        if chain:
            out.append((chain[-1].get("type", ""), chain))
    return out


def current_choice(
    record: Record, recipient: Recipient, columns: list[Column], ev: Evaluation
) -> RecipientChoice:
    """What this recipient's row says now, as the engine answers it.

    "Some" is read as no (a choice never widens sharing by itself); dates are the
    narrowest period of the provisions that permit now; a crisis answer is read from
    provisions limited to emergencies.
    """
    consents = {f"Consent/{c.get('id')}": c for c in record.consents}
    see = {col.code: ev.see[recipient.ref][col.code] == "yes" for col in columns}
    starts: list[str] = []
    ends: list[str] = []
    for col in columns:
        if not see[col.code]:
            continue
        for d in ev.treat[recipient.ref][col.code]:
            for _type, chain in _chains(consents, d.provisions):
                start, end = chain_period(chain)
                if start:
                    starts.append(start)
                if end:
                    ends.append(end)
    crisis_yes = True
    crisis_no = False
    for ds in ev.emergency[recipient.ref].values():
        for d in ds:
            paths = d.provisions or tuple(d.extra.get("overridden_provisions") or ())
            kinds = [t for t, chain in _chains(consents, paths) if chain_is_crisis(chain)]
            crisis_no = crisis_no or "deny" in kinds
            crisis_yes = crisis_yes and d.permit and "permit" in kinds
    has_rows = any(ev.emergency[recipient.ref].values())
    crisis = "no" if crisis_no else ("yes" if crisis_yes and has_rows else "unset")
    return RecipientChoice(
        recipient.ref,
        see,
        start=max(starts) if starts else None,
        end=min(ends) if ends else None,
        crisis=crisis,
    )


def choices_consent_id(record: Record) -> str | None:
    for consent in record.consents:
        if consent.get("status") == "active" and any(
            i.get("system") == CHOICES_IDENTIFIER for i in consent.get("identifier") or []
        ):
            return consent.get("id")
    return None


def superseded(record: Record) -> list[str]:
    """Earlier privacy Consents that the page's complete choices replace.

    The page restates every recipient's answers, so the person's earlier consents are
    made inactive with it (kept in history); otherwise an old "no" would silently beat
    a new "yes". The current choices Consent is retired by save_choices itself.
    """
    current = choices_consent_id(record)
    return [
        c["id"]
        for c in record.consents
        if c.get("status") == "active" and is_privacy_scope(c) and c.get("id") != current
    ]


def assumed_after(record: Record, document: dict) -> tuple[dict, ...]:
    """The Consents that would be in force once `document` is saved."""
    gone = {*superseded(record), choices_consent_id(record)}
    new = choices_to_consent(document, consent_id="preview")
    new["identifier"] = [{"system": CHOICES_IDENTIFIER, "value": record.patient}]
    return (new, *(c for c in record.consents if c.get("id") not in gone))
