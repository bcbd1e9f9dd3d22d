"""THE enforcement function: CONTRACTS.md section 4, rules 1-6.

``decide(requester, resource, facts, now)`` answers whether ``requester`` may see
``resource`` and why. Everything else in carebridge that discloses data asks it.

How it stays fast (bench/consent_engine.py): a patient's Consents are compiled once
per consent version (policy.py); then, once per (policy, requester), every provision
whose requester-only criteria (actor, action, purpose) fail is pruned away - a
provision that does not match cannot answer, and neither can anything under it - so a
decision only walks the few provisions that concern this requester, testing resource
criteria against frozensets and integer time ranges. Decisions are immutable and
shared: identical outcomes return the same cached Decision object.

Choices made where the contract is silent (see also the module docs of policy.py and
dates.py):

* ``Decision.break_glass`` is True whenever the requester invoked break-glass
  (``ETREAT`` + a non-blank reason + a trust/gp/icr partner) and the resource is
  disclosed other than by rule 1, *including* when a consent already permits it
  under ETREAT (basis ``consent``): the server must audit it and tell the custodian
  either way. Custodian and person access are never flagged.
* A break-glass request refused by an advance decision has basis
  ``advance-decision`` and names the advance-decision provisions.
* A Consent the engine cannot read exactly answers ``deny`` to everything (fail
  closed); break-glass can still override it, since it is not an advance decision.
"""

from __future__ import annotations

from datetime import datetime
from time import time_ns
from types import MappingProxyType
from typing import Any

from carebridge.consent.dates import fhir_range, to_us
from carebridge.consent.model import Decision, PatientFacts, Requester
from carebridge.consent.policy import ETREAT, Policy, Provision, policy_for
from carebridge.consent.refs import normalize_ref

BREAK_GLASS_KINDS = frozenset({"trust", "gp", "icr"})
_EMPTY: frozenset = frozenset()
_NO_EXTRA: Any = MappingProxyType({})

NOT_PERSONAL = Decision(
    True, "not-personal", reason="not personal data: it is in no patient's record",
    extra=_NO_EXTRA,
)
CUSTODIAN = Decision(
    True, "custodian", reason="the requester holds this person's record (custodian)",
    extra=_NO_EXTRA,
)
PERSON = Decision(True, "person", reason="the person's own record", extra=_NO_EXTRA)
NO_CONSENT = Decision(
    False, "no-consent", reason="no consent of the person permits it (deny by default)",
    extra=_NO_EXTRA,
)

# A pruned provision, as a tuple because unpacking one is the fastest way to read it:
# (own_answer, classes, codes, labels, data_period, period, data, children, advance, path)
# own_answer is (is_deny, (path,)) or None for a provision without a type.
_Node = tuple


class _View:
    """A Policy as seen by one requester: only the provisions that can concern them."""

    __slots__ = (
        "requester", "consents", "need_codes", "need_labels", "need_date", "need_now",
        "need_key", "break_glass", "has_advance", "unreadable", "dates", "decisions",
    )

    def __init__(self, policy: Policy, requester: Requester) -> None:
        self.requester = requester
        self.need_codes = self.need_labels = self.need_date = False
        self.need_now = self.need_key = self.has_advance = False
        reason = requester.break_glass_reason
        self.break_glass = (
            requester.purpose == ETREAT
            and requester.kind in BREAK_GLASS_KINDS
            and isinstance(reason, str)
            and bool(reason.strip())
        )
        principals = {
            n
            for r in (*requester.org_chain, requester.organization, requester.practitioner)
            if r and (n := normalize_ref(r))
        }
        self.unreadable: set[str] = set()
        self.dates: dict[str, str | None] = {}
        consents: list[tuple[str, _Node | None]] = []
        for c in policy.consents:
            self.dates[c.ref] = c.date
            if not c.readable:
                self.unreadable.add(c.ref)
                consents.append((c.ref, None))  # None root + unreadable: answers deny
                continue
            if c.root is None:
                continue
            root = self._prune(c.root, c.ref, principals, requester)
            if root is not None:
                consents.append((c.ref, root))
        self.consents = tuple(consents)
        self.decisions: dict[tuple, Decision] = {}

    def _prune(
        self, p: Provision, cref: str, principals: set[str], requester: Requester
    ) -> _Node | None:
        # Requester-only criteria: settled once for this requester.
        if p.actors is not None and p.actors.isdisjoint(principals):
            return None
        if p.actions is not None and requester.action not in p.actions:
            return None
        if p.purposes is not None and requester.purpose not in p.purposes:
            return None
        kids = tuple(
            k for c in p.children if (k := self._prune(c, cref, principals, requester))
        )
        if p.type is None and not kids:
            return None  # can never answer
        path = f"{cref}#{p.path}"
        advance = p.is_advance_decision
        self.has_advance = self.has_advance or advance
        self.need_codes = self.need_codes or p.codes is not None
        self.need_labels = self.need_labels or p.labels is not None
        self.need_date = self.need_date or p.data_period is not None
        self.need_now = self.need_now or p.period is not None
        self.need_key = self.need_key or p.data is not None
        own = None if p.type is None else (p.type == "deny", (path,))
        return (
            own, p.classes, p.codes, p.labels, p.data_period, p.period, p.data, kids,
            advance, path,
        )

    # ------------------------------------------------------------------ decisions

    def decision(self, key: tuple) -> Decision:
        """The shared Decision for an outcome, built the first time it is seen."""
        d = self.decisions.get(key)
        if d is None:
            d = self._build(key)
            if len(self.decisions) < 1024:
                self.decisions[key] = d
        return d

    def _dates(self, consents: tuple[str, ...]) -> dict[str, Any]:
        return {"consent_dates": MappingProxyType({c: self.dates.get(c) for c in consents})}

    def _build(self, key: tuple) -> Decision:
        basis, paths, *rest = key
        consents = tuple(dict.fromkeys(p.split("#", 1)[0] for p in paths))
        cited = "; ".join(_cite(p) for p in paths)
        if basis == "consent":
            extra = self._dates(consents)
            return Decision(
                True, "consent", consents, paths, break_glass=self.break_glass,
                reason=f"permitted by {cited}", extra=MappingProxyType(extra),
            )
        if basis == "denied":
            unread = [c for c in consents if c in self.unreadable]
            why = f"refused by {cited}"
            if unread:
                why += (
                    f" ({', '.join(unread)} cannot be read exactly, so it is applied as a"
                    " refusal)"
                )
            extra = self._dates(consents)
            return Decision(
                False, "denied", consents, paths, reason=why, extra=MappingProxyType(extra)
            )
        if basis == "advance-decision":
            extra = self._dates(consents)
            return Decision(
                False, "advance-decision", consents, paths,
                reason=f"emergency access refused by the person's advance decision: {cited}",
                extra=MappingProxyType(extra),
            )
        # break-glass: paths are the refusals it overrode (empty: none answered)
        why = "emergency access (break-glass)"
        if paths:
            why += f", overriding {cited}"
        why += f"; reason given: {self.requester.break_glass_reason.strip()}"
        return Decision(
            True, "break-glass", (), (), break_glass=True, reason=why,
            extra=MappingProxyType({"overridden": consents, "overridden_provisions": paths}),
        )


def _cite(path: str) -> str:
    ref, _, where = path.partition("#")
    return f"{ref} ({where})" if where else ref


def _answer(
    node: _Node, rtype: str, rcodes: frozenset | set, rlabels: frozenset | set,
    rdate: tuple[int, int] | None, now_us: int, rkey: str | None,
) -> tuple[bool, tuple[str, ...]] | None:
    """Rule 4 for one (pruned) provision: None (no answer) or (is_deny, deciding paths)."""
    own, classes, codes, labels, dper, per, data, kids, _adv, _path = node
    # Resource and time criteria (rule 3); requester criteria were pruned already.
    if classes is not None and rtype not in classes:
        return None
    if codes is not None and codes.isdisjoint(rcodes):
        return None
    if labels is not None and labels.isdisjoint(rlabels):
        return None
    if dper is not None and (rdate is None or rdate[0] < dper[0] or rdate[1] > dper[1]):
        return None
    if per is not None and not (per[0] <= now_us < per[1]):
        return None
    if data is not None and rkey not in data:
        return None
    if kids:
        denies: tuple[str, ...] = ()
        permits: tuple[str, ...] = ()
        for k in kids:
            a = _answer(k, rtype, rcodes, rlabels, rdate, now_us, rkey)
            if a is not None:
                if a[0]:
                    denies += a[1]
                else:
                    permits += a[1]
        # Children that answer decide, deny-overrides.
        if denies:
            return True, denies
        if permits:
            return False, permits
    return own


def _advance_decisions(
    node: _Node, rtype: str, rcodes: frozenset | set, rlabels: frozenset | set,
    rdate: tuple[int, int] | None, now_us: int, rkey: str | None, out: list[str],
) -> None:
    """Collect advance-decision provisions that match, with every ancestor (rule 6)."""
    _own, classes, codes, labels, dper, per, data, kids, adv, path = node
    if (
        (classes is not None and rtype not in classes)
        or (codes is not None and codes.isdisjoint(rcodes))
        or (labels is not None and labels.isdisjoint(rlabels))
        or (dper is not None and (rdate is None or rdate[0] < dper[0] or rdate[1] > dper[1]))
        or (per is not None and not (per[0] <= now_us < per[1]))
        or (data is not None and rkey not in data)
    ):
        return
    if adv:
        out.append(path)
    for k in kids:
        _advance_decisions(k, rtype, rcodes, rlabels, rdate, now_us, rkey, out)


# ------------------------------------------------------------------ resource facts


def resource_codings(resource: dict) -> set[tuple[str | None, str]]:
    """(system, code) of every coding in meta.tag, category and code (rule 3 code)."""
    out: set[tuple[str | None, str]] = set()
    meta = resource.get("meta")
    if isinstance(meta, dict) and (tags := meta.get("tag")):
        _add_codings(tags, out)
    cat = resource.get("category")
    if cat:
        if isinstance(cat, list):
            for cc in cat:
                if isinstance(cc, dict):
                    _add_codings(cc.get("coding"), out)
        elif isinstance(cat, dict):
            _add_codings(cat.get("coding"), out)
    code = resource.get("code")
    if isinstance(code, dict):
        _add_codings(code.get("coding"), out)
    return out


def _add_codings(codings: object, out: set) -> None:
    # Malformed input (not a list of objects, non-string codes) is skipped, not fatal.
    if isinstance(codings, list):
        for c in codings:
            if isinstance(c, dict):
                code = c.get("code")
                if code and isinstance(code, str):
                    system = c.get("system")
                    out.add((system if system and isinstance(system, str) else None, code))


def resource_labels(resource: dict) -> set[tuple[str | None, str]]:
    out: set[tuple[str | None, str]] = set()
    meta = resource.get("meta")
    if isinstance(meta, dict):
        _add_codings(meta.get("security"), out)
    return out


def clinical_date(resource: dict) -> str | None:
    """The resource's clinical date, in the contract's order of preference."""
    period = resource.get("period")
    if isinstance(period, dict) and isinstance(period.get("start"), str):
        return period["start"]
    for key in ("authoredOn", "occurrenceDateTime", "created"):
        value = resource.get(key)
        if isinstance(value, str):
            return value
    meta = resource.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("lastUpdated"), str):
        return meta["lastUpdated"]
    return None


def _is_custodian(requester: Requester, facts: PatientFacts) -> bool:
    org = requester.organization or (requester.org_chain[0] if requester.org_chain else None)
    if not org:
        return False
    chain = facts.custodian_chain
    if org in chain:
        return True
    norm = normalize_ref(org)
    return norm is not None and any(normalize_ref(c) == norm for c in chain)


# ------------------------------------------------------------------------ decide


def view_for(policy: Policy, requester: Requester) -> _View:
    """The per-requester pruned view of a policy (cached on the policy)."""
    last = policy.last_view
    if last is not None and last[0] is requester:
        return last[1]
    view = policy.views.get(requester)
    if view is None:
        view = _View(policy, requester)
        if len(policy.views) >= 256:
            policy.views.clear()
        policy.views[requester] = view
    policy.last_view = (requester, view)
    return view


def decide(
    requester: Requester,
    resource: dict,
    facts: PatientFacts | None,
    now: datetime | None = None,
) -> Decision:
    """May ``requester`` see ``resource`` (in ``facts.patient``'s compartment) ``now``?

    ``facts`` None: the resource is in no patient compartment (rule: not personal).
    ``now`` defaults to the current time; a naive datetime is taken to be UTC.
    """
    if facts is None:
        return NOT_PERSONAL
    # Rule 1.
    kind = requester.kind
    if kind == "trust":
        if _is_custodian(requester, facts):
            return CUSTODIAN
    elif (
        kind == "person"
        and requester.patient
        and (
            requester.patient == facts.patient
            or normalize_ref(requester.patient) == normalize_ref(facts.patient)
        )
    ):
        return PERSON

    view = view_for(policy_for(facts), requester)
    consents = view.consents
    if not consents:
        return view.decision(("break-glass", ())) if view.break_glass else NO_CONSENT

    # Only the resource facts some remaining provision looks at.
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        rtype = ""
    rcodes = resource_codings(resource) if view.need_codes else _EMPTY
    rlabels = resource_labels(resource) if view.need_labels else _EMPTY
    if view.need_date:
        value = clinical_date(resource)
        rdate = fhir_range(value) if value is not None else None
    else:
        rdate = None
    # The clock is read only when some provision has a period.
    if not view.need_now:
        now_us = 0
    elif now is None:
        now_us = time_ns() // 1000  # exact microseconds since the epoch, cheaply
    else:
        now_us = to_us(now)
    rkey = None
    if view.need_key:
        rid = resource.get("id")
        rkey = f"{rtype}/{rid}" if rid else None

    # Rules 4 and 5.
    denies: tuple[str, ...] = ()
    permits: tuple[str, ...] = ()
    for cref, root in consents:
        if root is None:  # unreadable: fail closed
            denies += (f"{cref}#provision",)
            continue
        a = _answer(root, rtype, rcodes, rlabels, rdate, now_us, rkey)
        if a is not None:
            if a[0]:
                denies += a[1]
            else:
                permits += a[1]
    if not denies:
        if permits:
            return view.decision(("consent", permits))
        if not view.break_glass:
            return NO_CONSENT
        return view.decision(("break-glass", ()))
    if not view.break_glass:
        return view.decision(("denied", denies))

    # Rule 6: break-glass overrides a refusal unless an advance decision matches.
    if view.has_advance:
        found: list[str] = []
        for _cref, root in consents:
            if root is not None:
                _advance_decisions(root, rtype, rcodes, rlabels, rdate, now_us, rkey, found)
        if found:
            return view.decision(("advance-decision", tuple(found)))
    return view.decision(("break-glass", denies))


__all__ = [
    "BREAK_GLASS_KINDS",
    "CUSTODIAN",
    "NOT_PERSONAL",
    "NO_CONSENT",
    "PERSON",
    "clinical_date",
    "decide",
    "resource_codings",
    "resource_labels",
    "view_for",
]
