"""Reference normalisation shared by the engine, redaction and validation.

Every comparison the engine makes between references is between normalised
"Type/id" strings, so that "Organization/awp", "https://host/fhir/Organization/awp"
and "Organization/awp/_history/3" all name the same thing.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Type/id, optionally preceded by a base URL and followed by /_history/version.
# FHIR ids are [A-Za-z0-9\-\.]{1,64}; types are PascalCase names.
_REF = re.compile(r"(?:^|.*/)([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?/?")


@lru_cache(maxsize=65536)
def normalize_ref(ref: str) -> str | None:
    """"Type/id" for a literal reference, or None when it names no stored resource.

    Local ("#x"), conditional ("Patient?identifier=..."), urn ("urn:uuid:...") and
    malformed references give None: they cannot be compared with a stored resource.
    """
    if not ref or ref[0] == "#" or "?" in ref or ref.startswith("urn:"):
        return None
    m = _REF.fullmatch(ref.strip())
    if m is None:
        return None
    return f"{m.group(1)}/{m.group(2)}"


def ref_of(element: object) -> str | None:
    """The normalised target of a FHIR Reference element ({"reference": "..."})."""
    if isinstance(element, dict):
        ref = element.get("reference")
        if isinstance(ref, str):
            return normalize_ref(ref)
    return None


def resource_key(resource: dict) -> str | None:
    """"Type/id" of a resource, or None when it has no id yet."""
    rtype = resource.get("resourceType")
    rid = resource.get("id")
    if isinstance(rtype, str) and isinstance(rid, str) and rid:
        return f"{rtype}/{rid}"
    return None
