"""Validation on write: once, before storing; reads never re-parse.

Structure and datatypes are checked by the fhir.resources R4B models (which accept R4
4.0.1 content); UK rules and reference targets, which the models do not know, here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from lxml import etree
from nhs_number import is_valid as nhs_number_is_valid
from pydantic import BaseModel, ValidationError

from carebridge.consent.validate import check_consent
from carebridge.mappings.vocabulary import NHS_NUMBER_SYSTEM
from carebridge.server import store
from carebridge.server.catalog import RESOURCE_TYPES
from carebridge.server.db import Conn
from carebridge.server.errors import FhirError
from carebridge.server.indexing import reference_target, walk


@lru_cache(maxsize=64)
def _model(name: str) -> Any:
    return get_fhir_model_class(name)


def check_structure(resource: dict) -> BaseModel:
    """400 when the content is not a structurally valid FHIR R4 resource; else its model."""
    name = resource.get("resourceType")
    try:
        return _model(name).model_validate(resource)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
            msg = err.get("msg", "invalid")
            problems.append(f"{name}.{loc}: {msg}" if loc else f"{name}: {msg}")
        more = len(exc.errors()) - len(problems)
        text = "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")
        raise FhirError(400, f"not a valid FHIR R4 {name}: {text}") from None
    except (TypeError, ValueError) as exc:
        raise FhirError(400, f"not a valid FHIR R4 {name}: {exc}") from None


def nhs_number_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value.isdigit() or len(value) != 10:
        return f"'{value}' is not an NHS number: it must be exactly 10 digits with no spaces"
    if not nhs_number_is_valid(value):
        return f"'{value}' is not a valid NHS number: its check digit (modulus 11) is wrong"
    return None


def check_nhs_numbers(resource: dict) -> None:
    """422 naming the field for any NHS number identifier that fails modulus 11."""
    name = resource["resourceType"]
    for i, ident in enumerate(resource.get("identifier") or []):
        if isinstance(ident, dict) and ident.get("system") == NHS_NUMBER_SYSTEM:
            problem = nhs_number_problem(ident.get("value"))
            if problem:
                raise FhirError(
                    422,
                    f"{name}.identifier[{i}].value: {problem}",
                    code="value",
                    expression=[f"{name}.identifier[{i}].value"],
                )


def check_reference_targets(resource: dict) -> None:
    """422 when a reference element points at a type the element does not allow."""
    name = resource["resourceType"]
    rt = RESOURCE_TYPES[name]
    for path, allowed in rt.reference_targets.items():
        for ref in walk(resource, path):
            target = ref.get("reference") if isinstance(ref, dict) else None
            if not isinstance(target, str) or target.startswith("#") or target.startswith("urn:"):
                continue
            parts = target.split("/_history/")[0].rstrip("/").split("/")
            ref_type = parts[-2] if len(parts) >= 2 else ""
            if ref_type not in allowed:
                raise FhirError(
                    422,
                    f"{name}.{path} refers to {target}, but it must refer to " + " or ".join(allowed),
                    code="value",
                    expression=[f"{name}.{path}"],
                )


def check_required_codes(model: BaseModel, path: str) -> None:
    """422 for a code outside the value set its element is bound to with strength
    `required` (the models list those codes as enum_values but do not check them; a
    list ending in "+" is only the start of the value set, so it is not checked)."""
    for name, info in type(model).model_fields.items():
        value = getattr(model, name, None)
        if value is None:
            continue
        extra = info.json_schema_extra
        allowed = extra.get("enum_values") if isinstance(extra, dict) else None
        if allowed and "+" in allowed:
            allowed = None
        many = isinstance(value, list)
        for i, item in enumerate(value if many else [value]):
            where = f"{path}.{info.alias or name}" + (f"[{i}]" if many else "")
            if allowed and isinstance(item, str) and item not in allowed:
                raise FhirError(
                    422,
                    f"{where}: '{item}' is not an allowed code; use one of: {', '.join(allowed)}",
                    code="code-invalid",
                    expression=[where],
                )
            if isinstance(item, BaseModel):
                check_required_codes(item, where)


_XHTML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def check_narrative(resource: dict) -> None:
    """400 unless text.div is one XHTML <div> (a broken one could never be sent as XML)."""
    div = (resource.get("text") or {}).get("div") if isinstance(resource.get("text"), dict) else None
    if not isinstance(div, str):
        return
    where = f"{resource['resourceType']}.text.div"
    try:
        root = etree.fromstring(div.encode("utf-8"), _XHTML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise FhirError(400, f"{where} is not well-formed XHTML: {exc}", expression=[where]) from None
    if root.tag != "{http://www.w3.org/1999/xhtml}div":
        raise FhirError(
            400,
            f'{where} must be one <div xmlns="http://www.w3.org/1999/xhtml"> element',
            expression=[where],
        )


def validate_resource(resource: dict) -> None:
    model = check_structure(resource)
    check_narrative(resource)
    check_nhs_numbers(resource)
    check_reference_targets(resource)
    check_required_codes(model, resource["resourceType"])


def check_consent_write(c: Conn, consent: dict) -> None:
    """422 for a Consent the engine cannot apply exactly, naming the provision and why."""

    def resolves(ref: str) -> bool:
        target = reference_target(ref)
        if target is None:
            return False
        rtype, _, rid = target.partition("/")
        row = store.current(c, rtype, rid)
        return row is not None and not row.deleted

    problems = check_consent(consent, resolves)
    if problems:
        raise FhirError(
            422,
            "carebridge cannot apply this Consent exactly as written: " + "; ".join(problems),
            code="business-rule",
        )
