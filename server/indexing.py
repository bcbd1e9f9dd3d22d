"""Search index rows for a resource, derived from the catalog's parameter paths."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from carebridge.server.catalog import COMMON_PARAMS, ResourceType
from carebridge.server.instants import date_range


@lru_cache(maxsize=1024)
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _flatten(values: list, out: list) -> None:
    for v in values:
        if isinstance(v, list):
            _flatten(v, out)
        elif v is not None:
            out.append(v)


def walk(node: Any, path: str) -> Iterator[Any]:
    """Values at a dotted path, flattening lists on the way (a tiny FHIRPath subset)."""
    return iter(_walk(node, _parts(path)))


def _walk(node: Any, parts: tuple[str, ...]) -> list[Any]:
    # Level by level, in document order; every write indexes each of its search paths,
    # so this is a hot loop (a list per level beats a generator per value).
    level = [node] if not isinstance(node, list) else []
    if isinstance(node, list):
        _flatten(node, level)
    for part in parts:
        nxt: list[Any] = []
        for value in level:
            if isinstance(value, dict):
                child = value.get(part)
                if child is None:
                    continue
                if isinstance(child, list):
                    _flatten(child, nxt)
                else:
                    nxt.append(child)
        level = nxt
        if not level:
            break
    return level


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
    if not isinstance(ref, str):
        return None
    return _target(ref)


@lru_cache(maxsize=65536)
def _target(ref: str) -> str | None:
    # Pure on the string and asked about the same few references over and over
    # (every disclosure checks each reference it holds).
    if ref.startswith("#") or ref.startswith("urn:"):
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
    token: list[tuple] = []
    string: list[tuple] = []
    date: list[tuple] = []
    ref: list[tuple] = []
    for param in COMMON_PARAMS[2:] + rt.params:  # _id and _lastUpdated live on the row
        name, ptype = param.name, param.type
        for path in param.paths:
            values = _walk(resource, _parts(path))
            if not values:
                continue
            if ptype == "token":
                for value in values:
                    for system, code in token_pairs(value):
                        token.append((name, system, code))
            elif ptype == "string":
                string.extend((name, normalise_string(v)) for v in values if isinstance(v, str))
            elif ptype == "uri":  # URIs match exactly: case matters in them
                string.extend((name, v) for v in values if isinstance(v, str))
            elif ptype == "date":
                for value in values:
                    for low, high in date_bounds(value):
                        date.append((name, low, high))
            elif ptype == "reference":
                # A parameter with declared targets indexes only those (AuditEvent.patient
                # reads entity.what, which also names CarePlans and Consents).
                targets = param.targets
                for value in values:
                    target = reference_target(value)
                    if target and (not targets or target.split("/", 1)[0] in targets):
                        ref.append((name, target))
    return {"token": token, "string": string, "date": date, "ref": ref}
