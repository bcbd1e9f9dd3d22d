"""Compile a patient's Consents into a Policy the engine can apply quickly.

Compilation does everything that does not depend on the request: it applies the
static part of rule 2 (status ``active``, scope ``patient-privacy``, ``patient`` is this
patient; the root's ``period`` is time-dependent and is checked at decision time as
the root provision's ``period`` criterion, which is the same test), and turns each
provision into a :class:`Provision` whose criteria are frozensets and integer time
ranges, so :func:`carebridge.consent.decide.decide` never re-reads a Consent.

A Consent the engine cannot interpret exactly (an unknown criterion, a
``modifierExtension``, a ``type`` other than permit/deny, an unreadable date) is kept
as *unreadable*: the engine treats it as a refusal of everything it could cover
(fail closed), because guessing at a person's wishes could disclose what they refused.
:func:`carebridge.consent.validate.check_consent` stops such Consents being written.

Compiled policies are cached in-process, keyed by ``(patient, consent_version)`` in a
bounded LRU. The store bumps ``consent_version`` on every Consent write (rule 10); as a
belt-and-braces check the cached entry is reused only if its Consents are the very
same tuple or compare equal, so a caller that forgets to bump the version still gets
a correct answer (just a slower one).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import orjson

from carebridge.consent.dates import period_range
from carebridge.consent.model import PatientFacts
from carebridge.consent.refs import normalize_ref
from carebridge.mappings.vocabulary import CONSENT_SCOPE_SYSTEM

PRIVACY_SCOPE = "patient-privacy"
ETREAT = "ETREAT"

# The provision elements of FHIR R4 Consent.provision; rule 3 criteria are the
# ones other than id/extension/modifierExtension/type/provision.
PROVISION_KEYS = frozenset(
    {
        "id", "extension", "modifierExtension", "type", "period", "actor", "action",
        "securityLabel", "purpose", "class", "code", "dataPeriod", "data", "provision",
    }
)

Coding = tuple[str | None, str]  # (system, code)


@dataclass(frozen=True, slots=True)
class Provision:
    """One compiled provision. ``None`` for a criterion means the provision does not
    state it (absent, or an empty list, which FHIR does not allow anyway)."""

    path: str  # "provision.provision[0]"
    type: str | None  # "permit" | "deny" | None
    actors: frozenset[str] | None = None  # normalised "Type/id"
    actions: frozenset[str] | None = None  # codes, any system
    purposes: frozenset[str] | None = None  # codes, any system
    classes: frozenset[str] | None = None  # resource types
    codes: frozenset[Coding] | None = None  # (system, code)
    labels: frozenset[Coding] | None = None  # (system, code)
    data_period: tuple[int, int] | None = None  # (lo, hi) microseconds
    period: tuple[int, int] | None = None  # (lo, hi) microseconds
    data: frozenset[str] | None = None  # normalised "Type/id"
    children: tuple[Provision, ...] = ()

    @property
    def is_advance_decision(self) -> bool:
        """A deny that names who and is about emergencies (rule 6)."""
        return (
            self.type == "deny"
            and self.actors is not None
            and self.purposes is not None
            and ETREAT in self.purposes
        )


@dataclass(frozen=True, slots=True)
class CompiledConsent:
    ref: str  # "Consent/ID"
    date: str | None  # Consent.dateTime, for explanations
    root: Provision | None  # None: the Consent has no provision, so never answers
    problems: tuple[str, ...] = ()  # non-empty: unreadable, applied as a refusal

    @property
    def readable(self) -> bool:
        return not self.problems


@dataclass(slots=True, eq=False)
class Policy:
    """The applicable Consents of one patient, compiled."""

    patient: str
    consents: tuple[CompiledConsent, ...]
    # Consents left out by rule 2, with why: ("Consent/x", "it is not active").
    ignored: tuple[tuple[str, str], ...] = ()
    # Per-requester views built by the decision engine (see decide.py).
    views: dict[Any, Any] = field(default_factory=dict)
    last_view: tuple[Any, Any] | None = None


# --------------------------------------------------------------------------- compile


class _Unreadable(Exception):
    """A provision the engine cannot interpret exactly."""


def _list(prov: dict, key: str, path: str) -> list | None:
    value = prov.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _Unreadable(f"{path}.{key} is not a list")
    return value or None  # an empty list states nothing


def _codings(item: object) -> list[dict]:
    if isinstance(item, dict):
        codings = item.get("coding")
        if isinstance(codings, list):
            return [c for c in codings if isinstance(c, dict)]
    return []


def _coding_code(c: object) -> str | None:
    if isinstance(c, dict):
        code = c.get("code")
        if isinstance(code, str) and code:
            return code
    return None


def _coding_pair(c: object) -> Coding | None:
    code = _coding_code(c)
    if code is None:
        return None
    system = c.get("system")  # type: ignore[union-attr]
    return (system if isinstance(system, str) and system else None, code)


def _refs(items: list, path: str, key: str, inner: str) -> frozenset[str]:
    out: set[str] = set()
    for i, item in enumerate(items):
        ref = item.get(inner) if isinstance(item, dict) else None
        raw = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(raw, str):
            raise _Unreadable(f"{path}.{key}[{i}] has no {inner}.reference")
        norm = normalize_ref(raw)
        if norm is None:
            raise _Unreadable(f"{path}.{key}[{i}] reference {raw!r} is not Type/id")
        out.add(norm)
    return frozenset(out)


def _compile_period(prov: dict, key: str, path: str) -> tuple[int, int] | None:
    value = prov.get(key)
    if value is None:
        return None
    rng = period_range(value)
    if rng is None:
        raise _Unreadable(f"{path}.{key} is not a readable Period")
    return rng


def compile_provision(prov: object, path: str = "provision") -> Provision:
    """Compile one provision (and its children). Raises ``ValueError`` (with the path)
    for anything the engine cannot interpret exactly."""
    try:
        return _compile(prov, path)
    except _Unreadable as exc:
        raise ValueError(str(exc)) from None


def _compile(prov: object, path: str) -> Provision:
    if not isinstance(prov, dict):
        raise _Unreadable(f"{path} is not an object")
    # "_type" (extensions on the primitive type) is legal FHIR JSON and changes nothing.
    unknown = {
        k for k in prov
        if k not in PROVISION_KEYS and not (k[:1] == "_" and k[1:] in PROVISION_KEYS)
    }
    if unknown:
        raise _Unreadable(f"{path} has criteria the engine does not know: {sorted(unknown)}")
    if prov.get("modifierExtension"):
        raise _Unreadable(f"{path} has a modifierExtension, which changes its meaning")
    ptype = prov.get("type")
    if ptype is not None and ptype not in ("permit", "deny"):
        raise _Unreadable(f"{path}.type is {ptype!r}, not permit or deny")

    actors = actions = purposes = classes = codes = labels = data = None
    if (items := _list(prov, "actor", path)) is not None:
        actors = _refs(items, path, "actor", "reference")
    if (items := _list(prov, "action", path)) is not None:
        actions = frozenset(
            code for cc in items for c in _codings(cc) if (code := _coding_code(c))
        )
    if (items := _list(prov, "purpose", path)) is not None:
        purposes = frozenset(code for c in items if (code := _coding_code(c)))
    if (items := _list(prov, "class", path)) is not None:
        classes = frozenset(code for c in items if (code := _coding_code(c)))
    if (items := _list(prov, "code", path)) is not None:
        codes = frozenset(pair for cc in items for c in _codings(cc) if (pair := _coding_pair(c)))
    if (items := _list(prov, "securityLabel", path)) is not None:
        labels = frozenset(pair for c in items if (pair := _coding_pair(c)))
    if (items := _list(prov, "data", path)) is not None:
        data = _refs(items, path, "data", "reference")

    kids = _list(prov, "provision", path) or []
    children = tuple(_compile(k, f"{path}.provision[{i}]") for i, k in enumerate(kids))
    return Provision(
        path=path,
        type=ptype,
        actors=actors,
        actions=actions,
        purposes=purposes,
        classes=classes,
        codes=codes,
        labels=labels,
        data_period=_compile_period(prov, "dataPeriod", path),
        period=_compile_period(prov, "period", path),
        data=data,
        children=children,
    )


def is_privacy_scope(consent: dict) -> bool:
    scope = consent.get("scope")
    return any(
        c.get("system") == CONSENT_SCOPE_SYSTEM and c.get("code") == PRIVACY_SCOPE
        for c in _codings(scope)
    )


def consent_patient(consent: dict) -> str | None:
    patient = consent.get("patient")
    if isinstance(patient, dict) and isinstance(patient.get("reference"), str):
        return normalize_ref(patient["reference"])
    return None


def consent_ref(consent: dict) -> str:
    cid = consent.get("id")
    return f"Consent/{cid}" if isinstance(cid, str) and cid else "Consent/(unsaved)"


def compile_consent(consent: dict) -> CompiledConsent:
    """Compile one Consent (rule 2's static checks are the caller's business)."""
    ref = consent_ref(consent)
    date = consent.get("dateTime") if isinstance(consent.get("dateTime"), str) else None
    if consent.get("modifierExtension"):
        return CompiledConsent(ref, date, None, ("the Consent has a modifierExtension",))
    prov = consent.get("provision")
    if prov is None:
        return CompiledConsent(ref, date, None)
    try:
        root = _compile_root(prov)
    except _Unreadable as exc:
        return CompiledConsent(ref, date, None, (str(exc),))
    return CompiledConsent(ref, date, root)


# Compiled roots shared by Consents whose provisions are the same JSON: people's consents
# are mostly made from the same few forms, and a bulk export meets thousands of them.
# `_compile` reads nothing but the provision (paths are relative to it, key order is never
# consulted) and a Provision is immutable, so an equal provision gets an equal answer.
_ROOTS_SIZE = 1024
_roots: OrderedDict[bytes, tuple[object, Provision | str]] = OrderedDict()
# Anything but plain JSON types (a str subclass, a dataclass, a datetime) raises instead of
# being encoded, and so is compiled on its own.
_PLAIN = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _compile_root(prov: object) -> Provision:
    """``_compile(prov, "provision")``, from `_roots` when an equal provision was compiled."""
    try:
        key = orjson.dumps(prov, option=_PLAIN)
    except TypeError:  # orjson.JSONEncodeError: not plain JSON
        return _compile(prov, "provision")
    entry = _roots.get(key)
    if entry is None:
        plain = orjson.loads(key)
        # A tuple, an enum, a UUID or NaN encodes like JSON but never equals what its bytes
        # decode to: only true JSON is shared.
        if plain != prov:
            return _compile(prov, "provision")
        try:
            answer: Provision | str = _compile(prov, "provision")
        except _Unreadable as exc:
            answer = str(exc)
        entry = _roots[key] = (plain, answer)
        while len(_roots) > _ROOTS_SIZE:
            try:
                _roots.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break
    elif entry[0] != prov:
        return _compile(prov, "provision")
    if isinstance(entry[1], str):
        raise _Unreadable(entry[1])
    return entry[1]


def not_applicable(consent: object, patient: str) -> str | None:
    """Why rule 2 leaves this Consent out (ignoring its period), or None."""
    if not isinstance(consent, dict) or consent.get("resourceType", "Consent") != "Consent":
        return "it is not a Consent"
    if consent.get("status") != "active":
        return f"its status is {consent.get('status')!r}, not active"
    if not is_privacy_scope(consent):
        return "its scope is not patient-privacy"
    own = consent_patient(consent)
    if own is None or own != normalize_ref(patient):
        return "it is about another patient" if own else "it names no patient"
    return None


def compile_policy(patient: str, consents: Iterable[dict]) -> Policy:
    """Compile the applicable Consents (rule 2, bar the period) of one patient."""
    compiled: list[CompiledConsent] = []
    ignored: list[tuple[str, str]] = []
    for consent in consents:
        why = not_applicable(consent, patient)
        if why is not None:
            ref = consent_ref(consent) if isinstance(consent, dict) else "Consent/(unknown)"
            ignored.append((ref, why))
            continue
        compiled.append(compile_consent(consent))
    return Policy(patient=patient, consents=tuple(compiled), ignored=tuple(ignored))


# ----------------------------------------------------------------------------- cache

_CACHE_SIZE = 4096
# (patient, consent_version) -> (the consents tuple it was compiled from, Policy)
_cache: OrderedDict[tuple[str, int], tuple[tuple[dict, ...], Policy]] = OrderedDict()
# The last facts object looked up and its policy: PatientFacts is immutable, so the very
# same object always means the same policy (the server decides many resources with one).
_last: tuple[Any, Any] = (None, None)


def policy_for(facts: PatientFacts) -> Policy:
    """The compiled Policy for these facts, from the cache when it is still right.

    Lock-free: each OrderedDict operation is atomic under the GIL, and a race can at
    worst compile the same policy twice.
    """
    last = _last
    if last[0] is facts:  # the same facts object again (one request, many resources)
        return last[1]
    key = (facts.patient, facts.consent_version)
    consents = facts.consents
    entry = _cache.get(key)
    if entry is not None and (entry[0] is consents or entry[0] == consents):
        if entry[0] is not consents:
            # Equal but a new tuple (the server reloaded the same consents): remember
            # this one so the next call takes the identity fast path.
            _cache[key] = (consents, entry[1])
        with suppress(KeyError):  # evicted by another thread meanwhile
            _cache.move_to_end(key)
        _remember(facts, entry[1])
        return entry[1]
    policy = compile_policy(facts.patient, consents)
    _cache[key] = (consents, policy)
    _remember(facts, policy)
    while len(_cache) > _CACHE_SIZE:
        try:
            _cache.popitem(last=False)
        except KeyError:
            break
    return policy


def _remember(facts: PatientFacts, policy: Policy) -> None:
    global _last
    _last = (facts, policy)  # one atomic assignment: safe across threads


def clear_policy_cache() -> None:
    global _last
    _cache.clear()
    _roots.clear()
    _last = (None, None)


def policy_cache_size() -> int:
    return len(_cache)


__all__ = [
    "CompiledConsent",
    "Policy",
    "Provision",
    "clear_policy_cache",
    "compile_consent",
    "compile_policy",
    "compile_provision",
    "policy_for",
]
