"""Extension URLs the engine reads beyond R4 TestScript itself.

They carry what standard TestScript cannot say (which contract rule a test checks, a
body to change before sending, an async job to wait for). Other TestScript engines
ignore extensions they do not know, so the suites stay readable by them.
"""

from __future__ import annotations

from typing import Any

from carebridge.mappings.vocabulary import CANONICAL_BASE

_BASE = f"{CANONICAL_BASE}/StructureDefinition"
RULE = f"{_BASE}/conformance-rule"  # on a test: the contract rule it checks (valueString)
BODY_PATCH = f"{_BASE}/conformance-body-patch"  # on an operation: JSON Patch for the body
BODY_SIZE = f"{_BASE}/conformance-body-size"  # on an operation: pad the JSON body to N bytes
POLL = f"{_BASE}/conformance-poll"  # on an operation: repeat the GET while it answers 202
NOT_APPLICABLE = f"{_BASE}/conformance-not-applicable"  # on a TestReport: why it was not run


def value(element: dict, url: str) -> Any:
    """The value[x] of the first extension with `url` on `element`, or None."""
    for ext in element.get("extension") or []:
        if ext.get("url") == url:
            for key, v in ext.items():
                if key.startswith("value"):
                    return v
    return None
