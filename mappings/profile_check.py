"""Checking a resource against the published care-plan profiles.

Pure. fhir.resources checks structure and datatypes; it does not know profiles, so
this reads each StructureDefinition of published_model.py and checks what its
differential says: cardinalities, the section-tag slice (fixed system, fixed code or
required binding), bindings to the model's ValueSets, reference target types, and the
FHIRPath invariants, evaluated with fhirpathpy (compiled once, with the R4 model so
choice types such as `detail.ofType(integer)` resolve).

A resource is checked against a profile when it claims it (meta.profile), when the
caller asks for it, or when it carries a care-plan section tag (CONTRACTS.md section 3
makes such a resource part of the model).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

from carebridge.mappings.plan_codes import PROFILES
from carebridge.mappings.published_model import CORE, UK_CORE, published_model
from carebridge.mappings.vocabulary import PLAN_CODE, SECTION_SYSTEM

_PROFILE_TYPES = {
    PROFILES["plan"]: "CarePlan",
    PROFILES["section"]: "CarePlan",
    **{url: key for key, url in PROFILES.items() if key not in ("plan", "section")},
}


@dataclass(frozen=True, slots=True)
class Issue:
    severity: str  # error | warning
    code: str  # FHIR IssueType
    expression: str
    diagnostics: str

    def as_outcome_issue(self) -> dict:
        return {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
            "expression": [self.expression],
        }


@dataclass
class _Slice:
    path: str
    system: str
    min: int
    max: str
    fixed_code: str | None = None
    valueset: str | None = None


@dataclass
class _Profile:
    url: str
    rtype: str
    title: str
    cardinality: list[tuple[str, int, str]] = field(default_factory=list)
    slices: list[_Slice] = field(default_factory=list)
    bindings: list[tuple[str, str, str]] = field(default_factory=list)
    targets: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    invariants: list[tuple[str, str, str, str, Callable]] = field(default_factory=list)


def _type_of(url: str) -> str:
    if url in _PROFILE_TYPES:
        return _PROFILE_TYPES[url]
    for prefix in (UK_CORE, CORE):
        if url.startswith(prefix):
            return url[len(prefix) :]
    return url.rsplit("/", 1)[-1]


@cache
def _valuesets() -> dict[str, frozenset[tuple[str, str]]]:
    systems = {
        r["url"]: {c["code"] for c in r.get("concept", [])}
        for r in published_model()
        if r["resourceType"] == "CodeSystem"
    }
    out = {}
    for r in published_model():
        if r["resourceType"] == "ValueSet":
            members = {
                (inc["system"], code)
                for inc in r["compose"]["include"]
                for code in systems.get(inc["system"], ())
            }
            out[r["url"]] = frozenset(members)
    return out


@cache
def _profiles() -> dict[str, _Profile]:
    model = models["r4"]
    out: dict[str, _Profile] = {}
    for sd in published_model():
        if sd["resourceType"] != "StructureDefinition":
            continue
        rtype = sd["type"]
        p = _Profile(sd["url"], rtype, sd["title"])
        slices: dict[str, _Slice] = {}
        for el in sd["differential"]["element"]:
            eid, path = el["id"], el["path"]
            rel = path[len(rtype) + 1 :]
            for c in el.get("constraint", []):
                fn = fhirpathpy.compile(c["expression"], model=model)
                p.invariants.append((c["key"], c["severity"], c["human"], c["expression"], fn))
            if ":" in eid:
                base, _, rest = eid.partition(":")
                name, _, child = rest.partition(".")
                s = slices.setdefault(f"{base}:{name}", _Slice(base[len(rtype) + 1 :], "", 0, "*"))
                if not child:
                    s.min, s.max = el.get("min", 0), el.get("max", "*")
                elif child == "system":
                    s.system = el.get("fixedUri", "")
                elif child == "code":
                    s.fixed_code = el.get("fixedCode")
                    s.valueset = (el.get("binding") or {}).get("valueSet")
                continue
            if not rel:
                continue
            if "min" in el or "max" in el:
                p.cardinality.append((rel, int(el.get("min", 0)), str(el.get("max", "*"))))
            binding = el.get("binding")
            if binding and binding.get("valueSet") in _valuesets():
                p.bindings.append((rel, binding["valueSet"], binding["strength"]))
            for t in el.get("type", []):
                if t.get("code") == "Reference" and t.get("targetProfile"):
                    p.targets.append((rel, tuple(_type_of(u) for u in t["targetProfile"])))
        p.slices = list(slices.values())
        out[sd["url"]] = p
    return out


def _walk(node: Any, parts: list[str]) -> Iterator[Any]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, parts)
        return
    if not parts:
        if node is not None:
            yield node
        return
    if isinstance(node, dict) and parts[0] in node:
        yield from _walk(node[parts[0]], parts[1:])


def _count(node: Any) -> int:
    return len(node) if isinstance(node, list) else (0 if node is None else 1)


def _cardinality(resource: dict, rtype: str, rel: str, low: int, high: str) -> list[Issue]:
    parts = rel.split(".")
    parents = [resource] if len(parts) == 1 else list(_walk(resource, parts[:-1]))
    issues = []
    for parent in parents:
        n = _count(parent.get(parts[-1])) if isinstance(parent, dict) else 0
        where = f"{rtype}.{rel}"
        if n < low:
            issues.append(
                Issue(
                    "error", "required", where, f"{where} is required here (at least {low}), but is missing"
                )
            )
        if high != "*" and n > int(high):
            what = "must not be present" if high == "0" else f"may appear at most {high} time(s), found {n}"
            issues.append(Issue("error", "structure", where, f"{where} {what}"))
    return issues


def _codings(value: Any) -> list[dict]:
    if isinstance(value, dict) and "coding" in value:
        return [c for c in value.get("coding") or [] if isinstance(c, dict)]
    return [value] if isinstance(value, dict) and "code" in value else []


def _check_profile(resource: dict, p: _Profile) -> list[Issue]:
    rtype = p.rtype
    issues: list[Issue] = []
    if resource.get("resourceType") != rtype:
        return [
            Issue(
                "error",
                "structure",
                rtype,
                f"the profile '{p.title}' is for {rtype}, not {resource.get('resourceType')}",
            )
        ]
    for rel, low, high in p.cardinality:
        issues += _cardinality(resource, rtype, rel, low, high)
    for s in p.slices:
        where = f"{rtype}.{s.path}"
        members = [
            c
            for c in _walk(resource, s.path.split("."))
            if isinstance(c, dict) and c.get("system") == s.system
        ]
        if len(members) < s.min:
            issues.append(
                Issue("error", "required", where, f"{where} needs a tag from {s.system}, and has none")
            )
        if s.max != "*" and len(members) > int(s.max):
            issues.append(
                Issue("error", "structure", where, f"{where} may hold only {s.max} tag(s) from {s.system}")
            )
        for c in members:
            if s.fixed_code and c.get("code") != s.fixed_code:
                issues.append(
                    Issue("error", "value", where, f"{where} must be '{s.fixed_code}', not '{c.get('code')}'")
                )
            if s.valueset and (c.get("system"), c.get("code")) not in _valuesets()[s.valueset]:
                issues.append(
                    Issue("error", "code-invalid", where, f"'{c.get('code')}' is not a code of {s.valueset}")
                )
    for rel, valueset, strength in p.bindings:
        members = _valuesets()[valueset]
        systems = {system for system, _ in members}
        where = f"{rtype}.{rel}"
        for value in _walk(resource, rel.split(".")):
            codings = _codings(value)
            ours = [c for c in codings if c.get("system") in systems]
            if any((c.get("system"), c.get("code")) not in members for c in ours):
                bad = next(c for c in ours if (c.get("system"), c.get("code")) not in members)
                issues.append(
                    Issue("error", "code-invalid", where, f"'{bad.get('code')}' is not a code of {valueset}")
                )
            elif strength == "required" and not ours:
                issues.append(
                    Issue("error", "code-invalid", where, f"{where} must use a code from {valueset}")
                )
    for rel, types in p.targets:
        where = f"{rtype}.{rel}"
        for ref in _walk(resource, rel.split(".")):
            target = ref.get("reference") if isinstance(ref, dict) else None
            if not isinstance(target, str) or target.startswith(("#", "urn:")):
                continue
            parts = target.split("/_history/")[0].rstrip("/").split("/")
            if len(parts) < 2 or parts[-2] not in types:
                issues.append(
                    Issue(
                        "error",
                        "value",
                        where,
                        f"{where} refers to {target}, but must refer to " + " or ".join(types),
                    )
                )
    for key, severity, human, expression, fn in p.invariants:
        try:
            ok = fn(resource, {}) in ([True], [])
        except Exception as exc:  # a FHIRPath engine failure is reported, never raised
            issues.append(Issue("error", "exception", rtype, f"{key}: could not be evaluated ({exc})"))
            continue
        if not ok:
            issues.append(Issue(severity, "invariant", rtype, f"{key}: {human} ({expression})"))
    return issues


def default_profile(resource: dict) -> str | None:
    """The profile a section-tagged resource belongs to by CONTRACTS.md section 3."""
    tags = [
        t.get("code")
        for t in (resource.get("meta") or {}).get("tag") or []
        if t.get("system") == SECTION_SYSTEM
    ]
    if not tags:
        return None
    rtype = resource.get("resourceType")
    if rtype == "CarePlan":
        return PROFILES["plan"] if PLAN_CODE in tags else PROFILES["section"]
    return (
        PROFILES.get(rtype)
        if rtype in ("Goal", "CareTeam", "RelatedPerson", "RiskAssessment", "Task")
        else None
    )


def profiles_for(resource: dict, requested: tuple[str, ...] = ()) -> list[str]:
    claimed = [u for u in (resource.get("meta") or {}).get("profile") or [] if u in _profiles()]
    urls = list(dict.fromkeys([*requested, *claimed]))
    if not urls and (default := default_profile(resource)):
        urls = [default]
    return urls


def check(resource: dict, requested: tuple[str, ...] = ()) -> list[Issue]:
    """Every problem `resource` has against the profiles that apply to it ([] = conforms)."""
    issues: list[Issue] = []
    for url in profiles_for(resource, requested):
        profile = _profiles().get(url)
        if profile is None:
            issues.append(
                Issue("error", "not-supported", "profile", f"carebridge does not publish the profile {url}")
            )
            continue
        issues += _check_profile(resource, profile)
    return issues
