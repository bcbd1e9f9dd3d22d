"""FHIRPath for expressions, variables and asserts (fhirpathpy, R4 model)."""

from __future__ import annotations

import re
from typing import Any

from fhirpathpy import evaluate as _evaluate
from fhirpathpy.models import models

_R4 = models["r4"]


class ExpressionError(Exception):
    """An expression that could not be evaluated."""


def evaluate(resource: Any, expression: str) -> list:
    if resource is None:
        return []
    try:
        # %resource, %rootResource and %context all name the resource being examined.
        env = {"resource": resource, "rootResource": resource, "context": resource}
        return list(_evaluate(resource, expression, env, model=_R4))
    except Exception as exc:  # fhirpathpy raises plain errors for bad syntax and types
        raise ExpressionError(f"cannot evaluate FHIRPath {expression!r}: {exc}") from None


def from_path(path: str) -> str:
    """A TestScript `path` as FHIRPath.

    R4 says `path` is XPath or JSONPath; HL7's own examples use XPath over FHIR XML
    (`fhir:Patient/fhir:name/fhir:family/@value`, or `Patient/id`). The engine reads both
    from the same parsed resource, so those simple child paths become FHIRPath
    (`Patient.name.family`); anything already dotted is taken as FHIRPath as it is.
    """
    p = path.strip()
    if "/" not in p and "fhir:" not in p:
        return p
    p = re.sub(r"/@value$", "", p.replace("fhir:", "")).strip("/")
    return ".".join(seg for seg in p.split("/") if seg)


def first_text(values: list) -> str | None:
    return text(values[0]) if values else None


def text(v: Any) -> str:
    """A FHIRPath result as the string TestScript compares."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
