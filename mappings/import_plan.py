"""What an import must write: the mapped parts against what the server already holds.

Pure (new ids aside: they are minted from the clock). `lookup_bundle` asks the server
(one batch) for everything a document's parts could match; `plan_writes` compares, part
by part, and returns a transaction Bundle of conditional updates on business
identifiers for exactly the parts that changed (each with If-Match on the version it
was compared with), deletions for parts the document no longer has, and a Provenance
naming the source. Nothing changed: no entries at all, so importing the same document
twice writes nothing. A plan already there without business identifiers is updated in
place, not duplicated (plan_adoption.py).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

import orjson

from carebridge.mappings.plan_adoption import adoptable
from carebridge.mappings.plan_codes import (
    ACTIVITY_SYSTEM,
    IMPORT_SOURCE_SYSTEM,
    PROVENANCE_ACTIVITY_SYSTEM,
    PROVENANCE_AGENT_SYSTEM,
    RECORD_SYSTEM,
)
from carebridge.mappings.plan_to_fhir import PART_PREFIX, Part
from carebridge.mappings.vocabulary import NHS_NUMBER_SYSTEM

FAMILY_TYPES = ("CarePlan", "Goal", "CareTeam", "RelatedPerson", "RiskAssessment")
# Outside every patient compartment (not personal data): the coordinator's resources.
_NOT_PERSONAL = ("Practitioner", "PractitionerRole")


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record came from, for the Provenance."""

    file: str
    record: str
    kind: str  # "JSON care-plan document", "CSV caseload row", ...
    digest: str  # sha256 of the record's content


@dataclass
class WritePlan:
    entries: list[dict] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # "Type/id"
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # part key -> "Type/id"
    fields: list[str] = field(default_factory=list)  # document field of each entry, for errors
    parent_created: bool = False

    @property
    def outcome(self) -> str:
        """created (a new plan), updated (some part changed) or unchanged."""
        if not self.entries:
            return "unchanged"
        return "created" if self.parent_created else "updated"

    def bundle(self) -> dict:
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}


def _search(rtype: str, system: str, value: str, extra: str = "") -> dict:
    url = f"{rtype}?identifier={_query(system)}%7C{_query(value)}{extra}"
    return {"request": {"method": "GET", "url": url}}


def lookup_bundle(parts: list[Part]) -> dict:
    """One batch of searches: the person with their whole plan family, and their coordinator."""
    entries = []
    for part in parts:
        if part.rtype == "Patient":
            revs = "".join(f"&_revinclude={t}:patient" for t in FAMILY_TYPES)
            entries.append(_search("Patient", NHS_NUMBER_SYSTEM, part.value, f"&_count=10{revs}"))
        elif part.rtype in _NOT_PERSONAL:
            entries.append(_search(part.rtype, part.system, part.value))
    return {"resourceType": "Bundle", "type": "batch", "entry": entries}


def found_resources(batch_response: dict) -> list[dict]:
    """The resources the lookup batch returned (searchsets flattened)."""
    out: list[dict] = []
    for entry in batch_response.get("entry") or []:
        searchset = entry.get("resource") or {}
        for e in searchset.get("entry") or []:
            if isinstance(e.get("resource"), dict):
                out.append(e["resource"])
    return out


def _keys(resource: dict) -> Iterable[str]:
    for ident in resource.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
            yield f"{ident['system']}|{ident['value']}"


_PART_REF = re.compile(rb'"reference":"' + re.escape(PART_PREFIX.encode()) + rb'([^"]+)"')
_PLAIN = re.compile(r"^[A-Za-z0-9._~/:-]+$")


def _resolve(resource: dict, ids: dict[str, str]) -> dict:
    """A copy of `resource` whose references between parts name the server ids."""
    raw = _PART_REF.sub(
        lambda m: b'"reference":"' + ids[m.group(1).decode()].encode() + b'"', orjson.dumps(resource)
    )
    return orjson.loads(raw)


def _query(text: str) -> str:
    # Most identifier values are plain ("9991000011/section/about-me"): quoting them is slow.
    return text if _PLAIN.match(text) else quote(text, safe="")


def comparable(resource: dict) -> dict:
    """A resource without what the server stamps on every write."""
    out = dict(resource)
    meta = {k: v for k, v in (out.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        out["meta"] = meta
    else:
        out.pop("meta", None)
    return out


def merge_patient(existing: dict, desired: dict) -> dict:
    """The person as the server has them, with what the document says on top.

    A care-plan document is not the master record of a person: it never removes their
    details (GP, other names, addresses); it only sets the ones it states.
    """
    out = dict(existing)
    names = [dict(n) for n in existing.get("name") or []]
    want = desired["name"][0]
    at = next((i for i, n in enumerate(names) if n.get("use") == "official"), 0 if names else None)
    if at is None:
        names = [want]
    elif (
        names[at].get("family") != want["family"] or (names[at].get("given") or [None])[0] != want["given"][0]
    ):
        names[at] = {
            **names[at],
            "family": want["family"],
            "given": [want["given"][0], *names[at].get("given", [])[1:]],
        }
    out["name"] = names
    for key in ("gender", "birthDate"):
        if key in desired:
            out[key] = desired[key]
    if "telecom" in desired:
        phone = desired["telecom"][0]["value"]
        telecom = [dict(t) for t in existing.get("telecom") or []]
        at = next((i for i, t in enumerate(telecom) if t.get("system") == "phone"), None)
        if at is None:
            telecom.append(desired["telecom"][0])
        elif telecom[at].get("value") != phone:
            telecom[at]["value"] = phone
        out["telecom"] = telecom
    if "address" in desired:
        town = desired["address"][0]["city"]
        addresses = [dict(a) for a in existing.get("address") or []]
        at = next((i for i, a in enumerate(addresses) if a.get("use") == "home"), 0 if addresses else None)
        if at is None:
            addresses = [desired["address"][0]]
        elif addresses[at].get("city") != town:
            addresses[at]["city"] = town
        out["address"] = addresses
    if not existing.get("managingOrganization"):
        out["managingOrganization"] = desired["managingOrganization"]
    return out


def time_ordered_id() -> str:
    """A UUID whose leading bits are the time (the version 7 layout): new rows land at the
    end of the server's (type, id) indexes rather than on random pages."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 68) << 64 | 0b10 << 62 | (rand & (2**62 - 1))
    return str(uuid.UUID(int=value))


def _coded(activity: dict) -> bool:
    codings = ((activity.get("detail") or {}).get("code") or {}).get("coding") or []
    return any(c.get("system") == ACTIVITY_SYSTEM for c in codings)


def _staff_member(participant: dict) -> bool:
    return str((participant.get("member") or {}).get("reference", "")).startswith("Practitioner/")


def merge_partial(existing: dict, desired: dict) -> dict:
    """What a partial record (a caseload row) makes of a resource that is already there.

    It states some elements and is silent on the rest, so: what it states replaces what
    is there; what it does not state stays. Coded activities (the agreed contact, the
    review) and the coordinator in a care team are the caseload's, replaced as a whole;
    other activities and team members stay. Categories and identifiers are added to.
    """
    out = dict(existing)
    for key, value in desired.items():
        old = existing.get(key)
        if key == "activity" and old:
            out[key] = [a for a in old if not _coded(a)] + value
        elif key == "participant" and old:
            out[key] = value + [p for p in old if not _staff_member(p)]
        elif key in ("category", "identifier") and old:
            out[key] = old + [v for v in value if v not in old]
        elif key == "meta" and old:
            out[key] = {**old, **value}
        else:
            out[key] = value
    return out


def plan_writes(
    parts: list[Part],
    found: list[dict],
    *,
    source: Source,
    custodian: str,
    recorded: str,
    complete: bool = True,
    new_id: Callable[[], str] | None = None,
) -> WritePlan:
    """The transaction that makes the server hold `parts` (see the module doc).

    `complete`: the record is a whole plan, so parts it no longer has are deleted. A
    partial record (a caseload row) only updates what it states (`merge_partial`).
    """
    new_id = new_id or time_ordered_id
    current: dict[str, dict] = {}
    for resource in found:
        for key in _keys(resource):
            current.setdefault(key, resource)
    adopted = adoptable(parts, found, current)
    current.update(adopted)
    plan = WritePlan()
    rtypes = {p.key: p.rtype for p in parts}
    for p in parts:
        existing = current.get(p.key)
        rid = existing["id"] if existing and existing.get("resourceType") == p.rtype else new_id()
        plan.ids[p.key] = f"{p.rtype}/{rid}"
    written: list[tuple[str, str]] = []
    for p in parts:
        ref = plan.ids[p.key]
        rid = ref.split("/", 1)[1]
        resolved = _resolve(p.resource, plan.ids)
        desired = {
            "resourceType": p.rtype,
            "id": rid,
            **{k: v for k, v in resolved.items() if k != "resourceType"},
        }
        existing = current.get(p.key)
        if existing is not None and existing.get("resourceType") == p.rtype:
            if p.rtype == "Patient":
                desired = merge_patient(comparable(existing), desired)
            elif not complete:
                desired = merge_partial(comparable(existing), desired)
            if comparable(existing) == comparable(desired):
                plan.unchanged.append(ref)
                continue
            version = (existing.get("meta") or {}).get("versionId")
            # An adopted resource has no business identifier yet: update it by id.
            url = ref if p.key in adopted else _conditional(p)
            request: dict = {"method": "PUT", "url": url}
            if version:
                request["ifMatch"] = f'W/"{version}"'
            plan.entries.append({"resource": desired, "request": request})
            plan.updated.append(ref)
        else:
            plan.entries.append(
                {
                    "fullUrl": f"urn:uuid:{rid}",
                    "resource": desired,
                    "request": {"method": "PUT", "url": _conditional(p)},
                }
            )
            plan.created.append(ref)
            if p.rtype == "CarePlan" and p.value.endswith("/plan"):
                plan.parent_created = True
        plan.fields.append(p.field)
        written.append((p.rtype, ref))
    nhs = next(p.value for p in parts if p.rtype == "Patient")
    wanted = set(rtypes)
    for key, resource in current.items() if complete else ():
        system, _, value = key.partition("|")
        if system == RECORD_SYSTEM and value.startswith(f"{nhs}/") and key not in wanted:
            ref = f"{resource['resourceType']}/{resource['id']}"
            if ref in plan.deleted:
                continue
            request = {"method": "DELETE", "url": ref}
            version = (resource.get("meta") or {}).get("versionId")
            if version:
                request["ifMatch"] = f'W/"{version}"'
            plan.entries.append({"request": request})
            plan.deleted.append(ref)
            plan.fields.append(f"(no longer in the document) {value}")
    if plan.entries:
        patient = plan.ids[f"{NHS_NUMBER_SYSTEM}|{nhs}"]
        plan.entries.append(_provenance(new_id(), patient, written, source, custodian, recorded, plan))
        plan.fields.append("(provenance)")
    return plan


def _conditional(p: Part) -> str:
    return f"{p.rtype}?identifier={_query(p.system)}%7C{_query(p.value)}"


def _provenance(
    pid: str,
    patient: str,
    written: list[tuple[str, str]],
    source: Source,
    custodian: str,
    recorded: str,
    plan: WritePlan,
) -> dict:
    # The person's record is what an import changes, so the Patient is always the first
    # target: that keeps the Provenance in their compartment, under their consent, even
    # when only their coordinator's details changed.
    personal = [ref for rtype, ref in written if rtype not in _NOT_PERSONAL and ref != patient]
    staff = [ref for rtype, ref in written if rtype in _NOT_PERSONAL]
    targets = [patient, *personal, *staff]
    what = "CREATE" if plan.created and not plan.updated and not plan.deleted else "UPDATE"
    provenance = {
        "resourceType": "Provenance",
        "id": pid,
        "target": [{"reference": ref} for ref in targets],
        "recorded": recorded,
        "activity": {"coding": [{"system": PROVENANCE_ACTIVITY_SYSTEM, "code": what}]},
        "agent": [
            {
                "type": {
                    "coding": [
                        {"system": PROVENANCE_AGENT_SYSTEM, "code": "custodian", "display": "Custodian"}
                    ]
                },
                "who": {"reference": custodian},
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {"system": IMPORT_SOURCE_SYSTEM, "value": f"{source.file}#{source.record}"},
                    "display": f"{source.kind}, {source.record} of {source.file} ({source.digest[:16]})",
                },
            }
        ],
    }
    return {
        "fullUrl": f"urn:uuid:{pid}",
        "resource": provenance,
        "request": {"method": "PUT", "url": f"Provenance/{pid}"},
    }
