"""Search index rows for a resource, derived from the catalog's parameter paths."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

from carebridge.server.catalog import COMMON_PARAMS, ResourceType
from carebridge.server.instants import date_range


def walk(node: Any, path: str) -> Iterator[Any]:
    """Values at a dotted path, flattening lists on the way (a tiny FHIRPath subset)."""
    parts = path.split(".")
    stack: list[tuple[Any, int]] = [(node, 0)]
    while stack:
        value, i = stack.pop()
        if isinstance(value, list):
            stack.extend((v, i) for v in reversed(value))
            continue
        if i == len(parts):
            if value is not None:
                yield value
            continue
        if isinstance(value, dict):
            nxt = value.get(parts[i])
            if nxt is not None:
                stack.append((nxt, i + 1))


def normalise_string(value: str) -> str:
    """FHIR string search: case- and accent-insensitive."""
    folded = unicodedata.normalize("NFKD", value).casefold()
    return "".join(ch for ch in folded if not unicodedata.combining(ch)).strip()


def token_pairs(value: Any) -> Iterator[tuple[str | None, str]]:
    """(system, code) pairs of a Coding, CodeableConcept, Identifier, code or boolean."""
    if isinstance(value, bool):
        yield None, "true" if value else "false"
    elif isinstance(value, str):
        yield None, value
    elif isinstance(value, dict):
        if "coding" in value:
            for coding in value.get("coding") or []:
                if isinstance(coding, dict) and coding.get("code") is not None:
                    yield coding.get("system"), str(coding["code"])
        elif "code" in value:
            yield value.get("system"), str(value["code"])
        elif "value" in value:  # Identifier
            yield value.get("system"), str(value["value"])


def reference_target(value: Any) -> str | None:
    """'Type/id' of a Reference, relative or absolute; None for contained or logical ones."""
    ref = value.get("reference") if isinstance(value, dict) else value
    if not isinstance(ref, str) or ref.startswith("#") or ref.startswith("urn:"):
        return None
    if "/_history/" in ref:
        ref = ref.split("/_history/")[0]
    parts = ref.rstrip("/").split("/")
    if len(parts) < 2:
        return None
    return f"{parts[-2]}/{parts[-1]}"


def date_bounds(value: Any) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        rng = date_range(value)
        if rng:
            yield rng
    elif isinstance(value, dict) and ("start" in value or "end" in value):
        start = date_range(value["start"]) if value.get("start") else None
        end = date_range(value["end"]) if value.get("end") else None
        if start or end:
            yield (start[0] if start else "0000", end[1] if end else "9999")


def index_rows(rt: ResourceType, resource: dict) -> dict[str, list[tuple]]:
    """Rows for idx_token/idx_string/idx_date/idx_ref (without type and id)."""
    rows: dict[str, list[tuple]] = {"token": [], "string": [], "date": [], "ref": []}
    for param in COMMON_PARAMS[2:] + rt.params:  # _id and _lastUpdated live on the row
        for path in param.paths:
            for value in walk(resource, path):
                if param.type == "token":
                    for system, code in token_pairs(value):
                        rows["token"].append((param.name, system, code))
                elif param.type == "string":
                    if isinstance(value, str):
                        rows["string"].append((param.name, normalise_string(value)))
                elif param.type == "uri":
                    if isinstance(value, str):  # URIs match exactly: case matters in them
                        rows["string"].append((param.name, value))
                elif param.type == "date":
                    for low, high in date_bounds(value):
                        rows["date"].append((param.name, low, high))
                elif param.type == "reference":
                    target = reference_target(value)
                    # A parameter with declared targets indexes only those (AuditEvent.patient
                    # reads entity.what, which also names CarePlans and Consents).
                    if target and (not param.targets or target.split("/", 1)[0] in param.targets):
                        rows["ref"].append((param.name, target))
    return rows
