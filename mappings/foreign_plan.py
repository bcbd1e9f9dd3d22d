"""Foreign care records -> carebridge's care-plan model (pure: dicts in, dicts out).

A partner's CarePlan, CareTeam or Task is taken into the model so that consent can work
on it like any other: it gets a stable local id derived from where it came from, its
subject becomes the local Patient, references to other pulled records are rewritten to
their local ids (others keep only their display text: they name things carebridge does
not hold), and a CarePlan is given its section tag:
  * a CarePlan already tagged with a carebridge section keeps it;
  * otherwise its category or title is matched against the section names and codes;
  * a CarePlan with no section and no `partOf` is a parent plan (tag `plan`);
  * one with `partOf` but no recognisable section is left untagged, so no consent that
    shares named sections shares it.
Every pulled resource carries a `pulled-from` tag naming the partner, so it is never
pushed back to where it came from, and meta.source says exactly where that was.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from carebridge.mappings.vocabulary import CANONICAL_BASE, PLAN_CODE, SECTION_SYSTEM, SECTIONS

PULLED_FROM_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/pulled-from"
SOURCE_ID_SYSTEM = f"{CANONICAL_BASE}/Id/pulled-from"
_ID_OK = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# Section codes and titles, normalised, as a foreign plan might name them.
_WORDS = {code: code for code in SECTIONS} | {
    re.sub(r"[^a-z]+", " ", title.lower()).strip(): code for code, title in SECTIONS.items()
}


def local_id(partner: str, rtype: str, foreign_id: str) -> str:
    """A stable carebridge id for a partner's resource: readable when it fits, else hashed."""
    candidate = f"{partner}-{foreign_id}"
    if _ID_OK.match(candidate):
        return candidate
    digest = hashlib.sha256(f"{partner}|{rtype}|{foreign_id}".encode()).hexdigest()[:40]
    return f"pulled-{digest}"


def _normal(text: str) -> str:
    return re.sub(r"[^a-z]+", " ", text.lower()).strip()


def section_of(plan: dict) -> str | None:
    """The carebridge section a foreign CarePlan stands for, if one can be told."""
    for tag in (plan.get("meta") or {}).get("tag") or []:
        if tag.get("system") == SECTION_SYSTEM and (
            tag.get("code") in SECTIONS or tag.get("code") == PLAN_CODE
        ):
            return tag["code"]
    words = []
    for concept in plan.get("category") or []:
        words += [c.get("code") or "" for c in concept.get("coding") or []]
        words += [c.get("display") or "" for c in concept.get("coding") or []]
        words.append(concept.get("text") or "")
    words.append(plan.get("title") or "")
    for word in words:
        if not word:
            continue
        hit = _WORDS.get(word) or _WORDS.get(_normal(word)) or _WORDS.get(_normal(word).replace(" ", "-"))
        if hit:
            return hit
    return None


def _localise(node: Any, refs: dict[str, str]) -> Any:
    """Rewrite every Reference: known ones to local ids, unknown ones to display only."""
    if isinstance(node, list):
        return [_localise(v, refs) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "reference" and isinstance(value, str) and not value.startswith("#"):
            target = _type_id(value)
            if target in refs:
                out[key] = refs[target]
            continue  # dropped below if nothing else is left
        out[key] = _localise(value, refs)
    if "reference" in node and "reference" not in out and not _has_value(out):
        out["display"] = "a record held by the partner system"
    return out


def _has_value(reference: dict) -> bool:
    return any(k in reference for k in ("display", "identifier", "reference"))


def _type_id(reference: str) -> str:
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


def to_local(resource: dict, *, partner: str, source_url: str, refs: dict[str, str]) -> dict:
    """The carebridge form of one pulled CarePlan, CareTeam or Task.

    `refs` maps the partner's "Type/id" (its patient included) to local "Type/id".
    """
    rtype = resource["resourceType"]
    foreign = f"{rtype}/{resource.get('id')}"
    local = refs[foreign]
    section = section_of(resource) if rtype == "CarePlan" else None
    out = _localise({k: v for k, v in resource.items() if k not in ("meta", "id", "text", "contained")}, refs)
    out["id"] = local.split("/", 1)[1]
    if rtype == "CarePlan" and section is None and not out.get("partOf"):
        section = PLAN_CODE
    old_meta = resource.get("meta") or {}
    tags = [
        t
        for t in old_meta.get("tag") or []
        if isinstance(t, dict) and t.get("system") not in (SECTION_SYSTEM, PULLED_FROM_SYSTEM)
    ]
    if section:
        tags.append({"system": SECTION_SYSTEM, "code": section})
    tags.append({"system": PULLED_FROM_SYSTEM, "code": partner})
    meta: dict = {"tag": tags, "source": source_url}
    if old_meta.get("security"):
        meta["security"] = old_meta["security"]
    out["meta"] = meta
    identifiers = [i for i in out.get("identifier") or [] if i.get("system") != SOURCE_ID_SYSTEM]
    identifiers.append({"system": SOURCE_ID_SYSTEM, "value": source_url})
    out["identifier"] = identifiers
    if resource.get("text", {}).get("div"):
        out["text"] = resource["text"]
    return out


def provenance(
    target: str, *, partner: str, source_url: str, recorded: str, source_updated: str | None
) -> dict:
    """Where a pulled version came from: the partner's Organization and the record's URL."""
    entity: dict = {
        "role": "source",
        "what": {"identifier": {"system": SOURCE_ID_SYSTEM, "value": source_url}},
    }
    if source_updated:
        entity["what"]["display"] = f"{source_url} as last updated {source_updated}"
    return {
        "resourceType": "Provenance",
        "meta": {"tag": [{"system": PULLED_FROM_SYSTEM, "code": partner}]},
        "target": [{"reference": target}],
        "recorded": recorded,
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "UPDATE",
                    "display": "revise",
                }
            ],
            "text": "copied from a partner's system by carebridge pull",
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "custodian",
                        }
                    ]
                },
                "who": {"reference": f"Organization/{partner}"},
            }
        ],
        "entity": [entity],
    }
