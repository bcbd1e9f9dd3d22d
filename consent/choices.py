"""A person's sharing choices as small JSON, and the one Consent that records them.

People make and change these choices with their care coordinator beside them, so the
form is the way they would say it: who, which parts of the plan, yes or no, from when
until when. ``choices_to_consent`` turns it into ONE FHIR R4 ``Consent`` (scope
patient-privacy) with nested provisions that the engine applies; ``consent_to_choices``
turns such a Consent back into the same JSON (round trip).

The shape
---------
::

    {
      "patient": "Patient/millie",                 # required
      "dateTime": "2026-05-03T10:00:00Z",          # optional: when the choices were made
      "recordedBy": "Practitioner/sam",            # optional: who wrote them down
      "present": ["Practitioner/sam"],             # optional: who was with the person
      "shares": [                                  # ordinary sharing choices
        {
          "recipient": "Organization/bath-mind",   # Organization or Practitioner ("Type/id")
          "allow": true,                           # required: yes (true) or no (false)
          "sections": ["daily-activities", "recovery-goals"],   # or "all" (the default)
          "types": ["Goal", "CarePlan"],           # optional: only these resource types
          "includeDemographics": true,             # optional: also the Patient resource
          "from": "2026-05-03",                    # optional
          "until": "2027-05-03"                    # optional, inclusive
        }
      ],
      "crisis": [                                  # decisions for an emergency (ETREAT)
        {"recipient": "Organization/awp-crisis", "allow": false, "sections": "all"}
      ]
    }

What each part means
--------------------
* The Consent's root provision has **no type and no criteria**. Anything no choice
  covers is refused anyway (rule 5 denies by default); a root ``type: deny`` would
  say the same within this Consent but would also override every other active
  Consent of the person (deny-overrides across consents), which nobody asked for.
* Each share becomes one child provision: ``actor`` = the recipient (role IRCP,
  information recipient), ``type`` = permit/deny, ``period`` = from/until.
  A recipient may be a group: an Organization such as a voluntary-sector alliance
  covers every organisation that is ``partOf`` it (rule 3, actor).
* ``"sections": "all"`` states no code at all: the choice covers the person's whole
  record (every section, the plan, the Patient resource, everything else in their
  compartment). A list of sections becomes a ``code`` criterion with the
  care-plan-section codes (system ``SECTION_SYSTEM``). The parent plan (tagged
  ``plan``) is a section like any other: sharing some sections does *not* share the
  parent plan unless ``"plan"`` is listed too, because the parent can show what the
  plan holds; a shared section still shows (its ``partOf`` link is redacted).
* ``types`` becomes a ``class`` criterion, applied together with ``sections``.
* The Patient resource (name, address, NHS number) is in the person's compartment
  but carries no section tag, so a list of sections does not cover it.
  ``"includeDemographics": true`` adds a sibling provision (id ``<share id>-demographics``)
  with the same recipient, answer and dates and ``class`` Patient.
* ``crisis`` entries are the same, plus ``purpose`` ETREAT. ``"allow": false`` is an
  **advance decision** (rule 6): even break-glass cannot override it. ``"allow": true``
  agrees to emergency access beforehand. Ordinary ``shares`` state no purpose, so they
  hold for every purpose, emergencies included; and an ordinary "no" can be overridden
  by break-glass, only a crisis "no" cannot.
* Provision ids are ``share-N`` / ``crisis-N`` (and ``-demographics``), so the Consent
  reads back into exactly these choices and decisions can cite a choice.

The seed phrase "voluntary sector yes, clinicians in advance no"::

    {"patient": "Patient/millie",
     "shares": [
       {"recipient": "Organization/banes-voluntary-alliance", "allow": true,
        "sections": "all"},
       {"recipient": "Organization/keynsham-gp", "allow": false, "sections": "all"},
       {"recipient": "Organization/banes-icr", "allow": false, "sections": "all"}]}

Bath Mind and Citizens Advice (each ``partOf`` the alliance) see the record; the GP
and the ICR ("clinicians in advance") do not - unless, in an emergency, they break
the glass; a ``crisis`` "no" for them would stop even that.
"""

from __future__ import annotations

import re
from typing import Any

from carebridge.consent.dates import fhir_range
from carebridge.mappings.vocabulary import (
    CANONICAL_BASE,
    CONSENT_CATEGORY_SYSTEM,
    CONSENT_SCOPE_SYSTEM,
    PLAN_CODE,
    PURPOSE_OF_USE_SYSTEM,
    SECTION_SYSTEM,
    SECTIONS,
)

RECORDED_BY_URL = f"{CANONICAL_BASE}/StructureDefinition/consent-recorded-by"
PRESENT_URL = f"{CANONICAL_BASE}/StructureDefinition/consent-present"
PARTICIPATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RECIPIENT_TYPES = ("Organization", "Practitioner")  # who can make a request (rule 3)
SECTION_CODES = (*SECTIONS, PLAN_CODE)
DEMOGRAPHICS = "-demographics"

_TOP_KEYS = {"patient", "dateTime", "recordedBy", "present", "shares", "crisis"}
_SHARE_KEYS = {"recipient", "allow", "sections", "types", "includeDemographics", "from", "until"}
_REF = re.compile(r"([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}")
_TYPE = re.compile(r"[A-Z][A-Za-z]+")


# ------------------------------------------------------------------------ validate


def choice_problems(choices: object) -> list[str]:
    """Every problem with a choices document, in plain words ([] = fine)."""
    if not isinstance(choices, dict):
        return ["the choices must be a JSON object"]
    problems = [
        f"{k!r} is not part of sharing choices (expected {', '.join(sorted(_TOP_KEYS))})"
        for k in choices
        if k not in _TOP_KEYS
    ]
    patient = choices.get("patient")
    if not isinstance(patient, str) or not _is_ref(patient, ("Patient",)):
        problems.append("patient: say whose choices these are, as Patient/ID")
    if "dateTime" in choices and (
        not isinstance(choices["dateTime"], str) or fhir_range(choices["dateTime"]) is None
    ):
        problems.append("dateTime: must be a date or date and time, e.g. 2026-05-03T10:00:00Z")
    if "recordedBy" in choices and not (
        isinstance(choices["recordedBy"], str) and _is_ref(choices["recordedBy"])
    ):
        problems.append("recordedBy: must be a reference such as Practitioner/ID")
    present = choices.get("present", [])
    if not isinstance(present, list) or not all(
        isinstance(p, str) and _is_ref(p) for p in present
    ):
        problems.append("present: must be a list of references such as Practitioner/ID")
    for group in ("shares", "crisis"):
        entries = choices.get(group, [])
        if not isinstance(entries, list):
            problems.append(f"{group}: must be a list")
            continue
        for i, entry in enumerate(entries):
            problems.extend(_share_problems(entry, f"{group}[{i}]"))
    return problems


def validate_choices(choices: object) -> None:
    """Raise ``ValueError`` listing every problem, if there are any."""
    problems = choice_problems(choices)
    if problems:
        raise ValueError("These sharing choices cannot be recorded: " + "; ".join(problems))


def _is_ref(value: str, types: tuple[str, ...] | None = None) -> bool:
    m = _REF.fullmatch(value)
    return m is not None and (types is None or m.group(1) in types)


def _share_problems(entry: object, where: str) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{where}: must be an object with recipient and allow"]
    problems = [
        f"{where}: {k!r} is not part of a choice (expected {', '.join(sorted(_SHARE_KEYS))})"
        for k in entry
        if k not in _SHARE_KEYS
    ]
    recipient = entry.get("recipient")
    if not isinstance(recipient, str) or not _is_ref(recipient, RECIPIENT_TYPES):
        problems.append(
            f"{where}.recipient: name who it is about as Organization/ID or Practitioner/ID"
        )
    if not isinstance(entry.get("allow"), bool):
        problems.append(f"{where}.allow: say true (yes, share) or false (no)")
    sections = entry.get("sections", "all")
    if sections != "all":
        if not isinstance(sections, list) or not sections:
            problems.append(f'{where}.sections: "all" or a non-empty list of sections')
        else:
            for s in sections:
                if s not in SECTION_CODES:
                    problems.append(
                        f"{where}.sections: {s!r} is not a care-plan section; choose from "
                        f"{', '.join(SECTION_CODES)}"
                    )
            if len(set(map(str, sections))) != len(sections):
                problems.append(f"{where}.sections: lists a section twice")
    types = entry.get("types")
    if types is not None and (
        not isinstance(types, list)
        or not types
        or not all(isinstance(t, str) and _TYPE.fullmatch(t) for t in types)
    ):
        problems.append(f"{where}.types: a non-empty list of resource types, e.g. [\"Goal\"]")
    if "includeDemographics" in entry and not isinstance(entry["includeDemographics"], bool):
        problems.append(f"{where}.includeDemographics: true or false")
    ranges = {}
    for edge in ("from", "until"):
        if edge in entry:
            value = entry[edge]
            rng = fhir_range(value) if isinstance(value, str) else None
            if rng is None:
                problems.append(f"{where}.{edge}: a date such as 2026-05-03")
            else:
                ranges[edge] = rng
    if len(ranges) == 2 and ranges["from"][0] >= ranges["until"][1]:
        problems.append(f"{where}: 'until' is before 'from'")
    return problems


# ------------------------------------------------------------------ to a Consent


def _reference(ref: str) -> dict[str, str]:
    return {"reference": ref}


def _provision(entry: dict, pid: str, crisis: bool) -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "id": pid,
        "type": "permit" if entry["allow"] else "deny",
    }
    period = {}
    if "from" in entry:
        period["start"] = entry["from"]
    if "until" in entry:
        period["end"] = entry["until"]
    if period:
        base["period"] = period
    base["actor"] = [
        {
            "role": {"coding": [{"system": PARTICIPATION_SYSTEM, "code": "IRCP",
                                 "display": "information recipient"}]},
            "reference": _reference(entry["recipient"]),
        }
    ]
    if crisis:
        base["purpose"] = [
            {"system": PURPOSE_OF_USE_SYSTEM, "code": "ETREAT", "display": "Emergency Treatment"}
        ]
    main = dict(base)
    if entry.get("types"):
        main["class"] = [{"code": t} for t in entry["types"]]
    sections = entry.get("sections", "all")
    if sections != "all":
        main["code"] = [
            {"coding": [{"system": SECTION_SYSTEM, "code": s,
                         "display": SECTIONS.get(s, "My care plan")}]}
            for s in sections
        ]
    out = [main]
    if entry.get("includeDemographics"):
        demo = dict(base)
        demo["id"] = pid + DEMOGRAPHICS
        demo["class"] = [{"code": "Patient"}]
        out.append(demo)
    return out


def choices_to_consent(choices: dict, consent_id: str | None = None) -> dict:
    """The one patient-privacy Consent that records ``choices`` (validated first)."""
    validate_choices(choices)
    children: list[dict] = []
    for i, entry in enumerate(choices.get("shares", [])):
        children.extend(_provision(entry, f"share-{i}", crisis=False))
    for i, entry in enumerate(choices.get("crisis", [])):
        children.extend(_provision(entry, f"crisis-{i}", crisis=True))

    consent: dict[str, Any] = {"resourceType": "Consent"}
    if consent_id:
        consent["id"] = consent_id
    extensions = []
    if choices.get("recordedBy"):
        extensions.append(
            {"url": RECORDED_BY_URL, "valueReference": _reference(choices["recordedBy"])}
        )
    for ref in choices.get("present", []):
        extensions.append({"url": PRESENT_URL, "valueReference": _reference(ref)})
    if extensions:
        consent["extension"] = extensions
    consent.update(
        {
            "status": "active",
            "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy",
                                  "display": "Privacy Consent"}]},
            "category": [{"coding": [{"system": CONSENT_CATEGORY_SYSTEM, "code": "59284-0",
                                      "display": "Patient Consent"}]}],
            "patient": _reference(choices["patient"]),
        }
    )
    if choices.get("dateTime"):
        consent["dateTime"] = choices["dateTime"]
    consent["performer"] = [_reference(choices["patient"])]
    # Opt-in: nothing is shared unless a provision says so.
    consent["policyRule"] = {"coding": [{"system": ACT_CODE_SYSTEM, "code": "OPTIN"}]}
    if children:  # no choices at all: no provision, so the Consent never answers
        consent["provision"] = {"provision": children}
    return consent


# ------------------------------------------------------------------ from a Consent


def _not_choices(why: str) -> ValueError:
    return ValueError(f"This consent cannot be shown as simple sharing choices: {why}")


def _entry(prov: dict, where: str) -> tuple[dict[str, Any], bool]:
    """A provision read back as (choice, is_crisis)."""
    allowed = {"id", "type", "actor", "period", "purpose", "class", "code"}
    extra = set(prov) - allowed
    if extra:
        raise _not_choices(f"{where} says {', '.join(sorted(extra))}")
    if prov.get("type") not in ("permit", "deny"):
        raise _not_choices(f"{where} is neither permit nor deny")
    actors = prov.get("actor") or []
    if len(actors) != 1:
        raise _not_choices(f"{where} does not name exactly one recipient")
    recipient = (actors[0].get("reference") or {}).get("reference")
    entry: dict[str, Any] = {"recipient": recipient, "allow": prov["type"] == "permit"}
    codes = prov.get("code")
    if codes:
        sections = []
        for cc in codes:
            for c in cc.get("coding", []):
                if c.get("system") != SECTION_SYSTEM:
                    raise _not_choices(f"{where} names a code that is not a care-plan section")
                sections.append(c.get("code"))
        entry["sections"] = sections
    else:
        entry["sections"] = "all"
    if prov.get("class"):
        entry["types"] = [c.get("code") for c in prov["class"]]
    period = prov.get("period") or {}
    if "start" in period:
        entry["from"] = period["start"]
    if "end" in period:
        entry["until"] = period["end"]
    purposes = [c.get("code") for c in prov.get("purpose") or []]
    if purposes not in ([], ["ETREAT"]):
        raise _not_choices(f"{where} is limited to purposes {purposes}")
    return entry, purposes == ["ETREAT"]


def consent_to_choices(consent: dict) -> dict:
    """Read a Consent made by :func:`choices_to_consent` back into choices.

    Raises ``ValueError`` for a Consent that says more than choices can (nested rules,
    other criteria, a typed root), rather than showing the person something partial.
    """
    if consent.get("resourceType", "Consent") != "Consent":
        raise _not_choices("it is not a Consent")
    root = consent.get("provision") or {}
    if set(root) - {"id", "provision"}:
        raise _not_choices("its top-level rule says more than 'no unless chosen'")
    choices: dict[str, Any] = {
        "patient": (consent.get("patient") or {}).get("reference"),
    }
    if consent.get("dateTime"):
        choices["dateTime"] = consent["dateTime"]
    present = []
    for ext in consent.get("extension", []):
        ref = (ext.get("valueReference") or {}).get("reference")
        if ext.get("url") == RECORDED_BY_URL:
            choices["recordedBy"] = ref
        elif ext.get("url") == PRESENT_URL:
            present.append(ref)
    if present:
        choices["present"] = present
    shares: list[dict] = []
    crisis: list[dict] = []
    by_id: dict[str, dict] = {}
    for i, prov in enumerate(root.get("provision", [])):
        where = f"provision.provision[{i}]"
        if not isinstance(prov, dict):
            raise _not_choices(f"{where} is not a rule")
        pid = prov.get("id") or ""
        if pid.endswith(DEMOGRAPHICS) and pid[: -len(DEMOGRAPHICS)] in by_id:
            owner = by_id[pid[: -len(DEMOGRAPHICS)]]
            demo, _ = _entry(prov, where)
            same = {k: owner.get(k) for k in ("recipient", "allow", "from", "until")}
            if demo.get("types") != ["Patient"] or demo["sections"] != "all" or same != {
                k: demo.get(k) for k in same
            }:
                raise _not_choices(f"{where} does not match the choice it belongs to")
            owner["includeDemographics"] = True
            continue
        entry, is_crisis = _entry(prov, where)
        (crisis if is_crisis else shares).append(entry)
        if pid:
            by_id[pid] = entry
    choices["shares"] = shares
    choices["crisis"] = crisis
    validate_choices(choices)
    return choices


__all__ = [
    "SECTION_CODES",
    "choice_problems",
    "choices_to_consent",
    "consent_to_choices",
    "validate_choices",
]
