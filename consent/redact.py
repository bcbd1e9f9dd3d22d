"""Rule 7: disclose a permitted resource without what it points at that the requester
may not see.

``redact(resource, may_see)`` removes every Reference element whose target
``may_see`` rejects - the whole element, so its ``display`` text goes with it - and
marks the copy ``meta.security`` ``v3-ObservationValue|REDACTED`` (once). When
nothing needs removing, the very same object comes back (no copy: the common case is
free). ``references(resource)`` lists the targets, so the server can decide them all
in one go before calling ``redact``.

What counts as a Reference: any object with a string ``"reference"`` key, wherever it
is (nested lists, ``contained`` resources, extension values). ``may_see`` receives the
normalised ``"Type/id"`` (absolute and versioned URLs reduced to it); a ``urn:`` or
otherwise unresolvable reference is passed as written; local ``"#id"`` references
point inside the resource itself and are never removed.

Removing an element can leave its parent empty: a list that becomes empty is dropped,
and so is an object left with nothing but ``id``/``url`` (an extension whose
``valueReference`` went, a participant whose ``member`` went). When anything is
removed the narrative ``text`` is dropped too (the resource's and any contained
resource's), because generated narrative repeats reference display text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from carebridge.consent.refs import normalize_ref
from carebridge.mappings.vocabulary import REDACTED

_REMOVE = object()  # sentinel: drop this element from its parent
_HOLLOW = frozenset({"id", "url"})  # an object left with only these says nothing


def _target(ref: str) -> str | None:
    """What may_see is asked about; None for a local reference (always kept)."""
    if ref.startswith("#"):
        return None
    return normalize_ref(ref) or ref


def _walk_refs(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            out.append(ref)
        for value in node.values():
            if isinstance(value, (dict, list)):
                _walk_refs(value, out)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                _walk_refs(item, out)


def references(resource: dict) -> set[str]:
    """Every "Type/id" the resource references (normalised; local and urn refs left out)."""
    raw: list[str] = []
    _walk_refs(resource, raw)
    return {n for r in raw if (n := normalize_ref(r)) is not None}


def redact(resource: dict, may_see: Callable[[str], bool]) -> dict:
    """``resource`` itself if every reference in it may be seen, else a redacted copy."""
    raw: list[str] = []
    _walk_refs(resource, raw)
    hidden: set[str] = set()  # raw reference strings to remove
    asked: dict[str, bool] = {}
    for ref in raw:
        target = _target(ref)
        if target is None:
            continue
        ok = asked.get(target)
        if ok is None:
            ok = asked[target] = bool(may_see(target))
        if not ok:
            hidden.add(ref)
    if not hidden:
        return resource

    out = _copy_without(resource, hidden)
    if out is _REMOVE:  # only if the resource itself were a hidden Reference
        out = {"resourceType": resource.get("resourceType")}
    out.pop("text", None)
    for contained in out.get("contained", ()):
        if isinstance(contained, dict):
            contained.pop("text", None)
    meta = out.get("meta")
    if not isinstance(meta, dict):
        meta = out["meta"] = {}
    security = meta.get("security")
    if not isinstance(security, list):
        security = meta["security"] = []
    if not any(
        isinstance(s, dict)
        and s.get("system") == REDACTED["system"]
        and s.get("code") == REDACTED["code"]
        for s in security
    ):
        security.append(dict(REDACTED))
    return out


def _copy_without(node: Any, hidden: set[str]) -> Any:
    """A deep copy of JSON ``node`` without hidden References (``_REMOVE`` if it is one
    or is left empty by their removal)."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in hidden:
            return _REMOVE
        out: dict[str, Any] = {}
        removed = False
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                value = _copy_without(value, hidden)
                if value is _REMOVE:
                    removed = True
                    continue
            out[key] = value
        if removed and out.keys() <= _HOLLOW:
            return _REMOVE
        return out
    if isinstance(node, list):
        items = []
        for item in node:
            if isinstance(item, (dict, list)):
                item = _copy_without(item, hidden)
                if item is _REMOVE:
                    continue
            items.append(item)
        if node and not items:
            return _REMOVE
        return items
    return node


__all__ = ["redact", "references"]
