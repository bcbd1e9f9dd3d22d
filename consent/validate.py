"""Can the engine apply this Consent exactly as the person meant it?

``check_consent(consent, resolves)`` returns plain-English problems, one per finding,
each starting with where it is ("Consent.provision.provision[1].actor[0]: ..."); an
empty list means the Consent is fine. The server refuses to store a Consent with
problems (422), so the engine never has to guess (it fails closed if it meets one
anyway; see policy.py).

It checks what changes the engine's reading: unknown criteria, a ``modifierExtension``
(which by FHIR's rules changes the meaning of what it sits on, and carebridge knows
none), a ``type`` other than permit/deny, a nested rule that could never decide
anything, a privacy rule with another scope, unreadable or back-to-front periods,
codes without a system or code, references that are not "Type/id" and actors that do
not exist. General FHIR validity (cardinalities, required bindings) is the FHIR
validator's job.
"""

from __future__ import annotations

from collections.abc import Callable

from carebridge.consent.dates import fhir_range
from carebridge.consent.policy import PROVISION_KEYS, compile_consent, is_privacy_scope
from carebridge.consent.refs import normalize_ref
from carebridge.mappings.vocabulary import CONSENT_SCOPE_SYSTEM

# Only organisations and practitioners make requests (rule 3 matches the requester's
# organisation chain or acting practitioner), so only they can be a rule's actor: a
# CareTeam or RelatedPerson actor would never match, silently.
ACTOR_TYPES = ("Organization", "Practitioner")
_ACTOR_HINT = "name an Organization or Practitioner that carebridge knows"
_CRITERIA = (
    "actor, action, purpose, class, code, securityLabel, period, dataPeriod or data"
)


def check_consent(consent: dict, resolves: Callable[[str], bool]) -> list[str]:
    """Problems that stop the engine applying ``consent`` exactly ([] = none)."""
    problems: list[str] = []
    if not isinstance(consent, dict):
        return ["Consent: is not a JSON object"]
    if consent.get("resourceType", "Consent") != "Consent":
        problems.append(f"Consent: resourceType is {consent.get('resourceType')!r}, not Consent")

    _check_patient(consent, resolves, problems)
    if consent.get("modifierExtension"):
        problems.append(
            "Consent.modifierExtension: carebridge does not understand it, and it would "
            "change what the consent means; record the choice with provisions instead"
        )
    provision = consent.get("provision")
    if provision is not None and not is_privacy_scope(consent):
        problems.append(
            "Consent.scope: a consent with sharing rules must have scope patient-privacy "
            f"(system {CONSENT_SCOPE_SYSTEM}); with any other scope carebridge would "
            "ignore its rules"
        )
    if provision is not None:
        _check_provision(provision, "Consent.provision", True, resolves, problems)

    if not problems:
        # Safety net: anything the engine itself cannot read must be reported.
        problems.extend(f"Consent: {p}" for p in compile_consent(consent).problems)
    return problems


def _check_patient(consent: dict, resolves: Callable[[str], bool], problems: list[str]) -> None:
    patient = consent.get("patient")
    raw = patient.get("reference") if isinstance(patient, dict) else None
    if not isinstance(raw, str) or not raw:
        problems.append(
            "Consent.patient: missing; say whose consent this is (a reference to Patient/ID)"
        )
        return
    ref = normalize_ref(raw)
    if ref is None or not ref.startswith("Patient/"):
        problems.append(f"Consent.patient: {raw} is not a reference to a Patient (Patient/ID)")
    elif not resolves(ref):
        problems.append(f"Consent.patient: {ref} does not exist")


def _check_provision(
    prov: object, path: str, root: bool, resolves: Callable[[str], bool], problems: list[str]
) -> None:
    if not isinstance(prov, dict):
        problems.append(f"{path}: is not a JSON object")
        return
    for key in prov:
        if key in PROVISION_KEYS or (key[:1] == "_" and key[1:] in PROVISION_KEYS):
            continue
        problems.append(
            f"{path}: {key!r} is not something a consent rule can say; use {_CRITERIA}"
        )
    if prov.get("modifierExtension"):
        problems.append(
            f"{path}.modifierExtension: carebridge does not understand it, and it would "
            "change what this rule means"
        )
    ptype = prov.get("type")
    children = prov.get("provision")
    if ptype is not None and ptype not in ("permit", "deny"):
        problems.append(f"{path}.type: {ptype!r} must be permit or deny")
    if not root and ptype is None and not children:
        problems.append(
            f"{path}: has no type (permit or deny) and no nested rules, so it can never "
            "decide anything; say permit or deny"
        )

    for key in ("actor", "action", "purpose", "class", "code", "securityLabel", "data",
                "provision"):
        value = prov.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            problems.append(f"{path}.{key}: must be a list")
        elif not value:
            problems.append(f"{path}.{key}: is empty; leave it out or list something")

    for i, actor in enumerate(_items(prov, "actor")):
        where = f"{path}.actor[{i}]"
        ref = actor.get("reference") if isinstance(actor, dict) else None
        raw = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(raw, str) or not raw:
            problems.append(f"{where}: has no reference; {_ACTOR_HINT}")
            continue
        norm = normalize_ref(raw)
        if norm is None:
            problems.append(f"{where}: {raw} is not a reference to a resource; {_ACTOR_HINT}")
        elif norm.split("/", 1)[0] not in ACTOR_TYPES:
            problems.append(f"{where}: {norm} cannot receive information; {_ACTOR_HINT}")
        elif not resolves(norm):
            problems.append(f"{where}: {norm} does not exist; {_ACTOR_HINT}")

    for i, cc in enumerate(_items(prov, "action")):
        if not _codes(cc.get("coding") if isinstance(cc, dict) else None):
            problems.append(f"{path}.action[{i}]: needs a coding with a code (e.g. access)")
    for key, what in (("purpose", "a purpose of use code (e.g. TREAT)"),
                      ("class", "a resource type (e.g. CarePlan)")):
        for i, c in enumerate(_items(prov, key)):
            if not _codes([c]):
                problems.append(f"{path}.{key}[{i}]: needs a code: {what}")
    for i, cc in enumerate(_items(prov, "code")):
        codings = cc.get("coding") if isinstance(cc, dict) else None
        if not _codes(codings, need_system=True):
            problems.append(
                f"{path}.code[{i}]: needs a coding with both a system and a code "
                "(e.g. a care-plan section)"
            )
    for i, c in enumerate(_items(prov, "securityLabel")):
        if not _codes([c], need_system=True):
            problems.append(f"{path}.securityLabel[{i}]: needs both a system and a code")
    for i, d in enumerate(_items(prov, "data")):
        ref = d.get("reference") if isinstance(d, dict) else None
        raw = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(raw, str) or normalize_ref(raw) is None:
            problems.append(
                f"{path}.data[{i}]: needs reference.reference naming one resource (Type/id)"
            )

    for key in ("period", "dataPeriod"):
        if prov.get(key) is not None:
            _check_period(prov[key], f"{path}.{key}", problems)

    for i, child in enumerate(_items(prov, "provision")):
        _check_provision(child, f"{path}.provision[{i}]", False, resolves, problems)


def _items(prov: dict, key: str) -> list:
    value = prov.get(key)
    return value if isinstance(value, list) else []


def _codes(codings: object, need_system: bool = False) -> bool:
    """True when every coding given is usable and there is at least one."""
    if not isinstance(codings, list) or not codings:
        return False
    for c in codings:
        if not isinstance(c, dict) or not isinstance(c.get("code"), str) or not c["code"]:
            return False
        if need_system and (not isinstance(c.get("system"), str) or not c["system"]):
            return False
    return True


def _check_period(period: object, where: str, problems: list[str]) -> None:
    if not isinstance(period, dict):
        problems.append(f"{where}: must be a Period with start and/or end dates")
        return
    ranges = {}
    for edge in ("start", "end"):
        value = period.get(edge)
        if value is None:
            continue
        rng = fhir_range(value) if isinstance(value, str) else None
        if rng is None:
            problems.append(f"{where}.{edge}: {value!r} is not a date (YYYY-MM-DD) or dateTime")
        else:
            ranges[edge] = rng
    if "start" in ranges and "end" in ranges and ranges["start"][0] >= ranges["end"][1]:
        problems.append(f"{where}: ends before it starts")


__all__ = ["ACTOR_TYPES", "check_consent"]
