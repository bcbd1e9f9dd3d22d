"""JSON Patch (RFC 6902: add, replace, remove) on a fixture body before it is sent.

TestScript sends fixtures as they are; a lifecycle step needs "the resource as the
server gave it, with one field changed", which the body-patch extension expresses.
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(Exception):
    """A patch that does not fit the body."""


def apply(doc: Any, ops: list[dict]) -> Any:
    out = copy.deepcopy(doc)
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        if not parts:
            raise PatchError(f"patch path {path!r} names no member")
        parent = out
        for p in parts[:-1]:
            parent = _child(parent, p, path)
        last = parts[-1]
        if kind in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(index, op.get("value"))
                else:
                    parent[index] = op.get("value")
            else:
                parent[last] = op.get("value")
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                parent.pop(last, None)
        else:
            raise PatchError(f"patch op {kind!r} is not supported (add, replace, remove)")
    return out


def _child(node: Any, key: str, path: str) -> Any:
    try:
        return node[int(key)] if isinstance(node, list) else node[key]
    except (KeyError, IndexError, ValueError, TypeError):
        raise PatchError(f"patch path {path!r} does not exist in the body") from None
