"""Wire formats: content negotiation, JSON and XML in and out.

JSON is the stored form and is served as stored bytes. XML is converted through the
fhir.resources models, after a hardened lxml parse has refused DTDs, entities and
network access, so an XXE or billion-laughs body never expands.
"""

from __future__ import annotations

from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from lxml import etree
from pydantic import ValidationError

from carebridge.server.errors import FhirError

JSON = "application/fhir+json"
XML = "application/fhir+xml"

_JSON_NAMES = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
_XML_NAMES = {"xml", "text/xml", "application/xml", "application/fhir+xml", "application/xml+fhir"}


def _media(value: str) -> str:
    return value.split(";")[0].strip().lower()


def format_from_name(name: str) -> str | None:
    media = _media(name)
    if media in _JSON_NAMES:
        return "json"
    if media in _XML_NAMES:
        return "xml"
    return None


def negotiate(accept: str | None, _format: str | None) -> str:
    """'json' or 'xml' for the response; 406 when nothing acceptable is offered."""
    if _format:
        fmt = format_from_name(_format)
        if fmt is None:
            raise FhirError(406, f"_format={_format} is not supported: use json or xml", code="not-supported")
        return fmt
    if not accept:
        return "json"
    best: tuple[float, str] | None = None
    for part in accept.split(","):
        pieces = part.split(";")
        media = pieces[0].strip().lower()
        q = 1.0
        for p in pieces[1:]:
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if media in _JSON_NAMES:
            fmt = "json"
        elif media in _XML_NAMES:
            fmt = "xml"
        elif media in ("*/*", "application/*", "text/html", "text/*"):
            # Browsers ask for html first; they get JSON, which they show.
            fmt = "json"
        else:
            continue
        if q > 0 and (best is None or q > best[0]):
            best = (q, fmt)
    if best is None:
        raise FhirError(
            406,
            f"cannot answer in any of Accept: {accept}; "
            "ask for application/fhir+json or application/fhir+xml",
        )
    return best[1]


def content_format(content_type: str | None) -> str:
    if not content_type:
        # Many clients forget the header; FHIR JSON is the sensible reading.
        return "json"
    fmt = format_from_name(content_type)
    if fmt is None:
        raise FhirError(
            415,
            f"Content-Type {content_type} is not supported: "
            "send application/fhir+json or application/fhir+xml",
        )
    return fmt


_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
)


def parse_body(raw: bytes, fmt: str) -> dict:
    """A request body as a plain dict, or 400 saying what is wrong with it."""
    if not raw.strip():
        raise FhirError(400, "the request body is empty: send a FHIR resource")
    if fmt == "json":
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise FhirError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise FhirError(400, "the body must be a JSON object holding one FHIR resource")
        return data
    return parse_xml(raw)


def parse_xml(raw: bytes) -> dict:
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise FhirError(400, "XML with a DOCTYPE or ENTITY declaration is refused: FHIR XML has neither")
    try:
        root = etree.fromstring(raw, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise FhirError(400, f"the body is not well-formed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise FhirError(400, "XML with a DTD is refused: FHIR XML has none")
    if etree.QName(root).namespace != "http://hl7.org/fhir":
        raise FhirError(400, "the XML root element must be in the FHIR namespace http://hl7.org/fhir")
    name = etree.QName(root).localname
    try:
        model_class = get_fhir_model_class(name)
    except (KeyError, ValueError):
        raise FhirError(400, f"{name} is not a FHIR R4 resource type") from None
    try:
        model = model_class.model_validate_xml(etree.tostring(root))
    except ValidationError as exc:
        raise FhirError(400, f"the XML is not a valid {name}: {_first_errors(exc)}") from None
    except Exception as exc:  # the XML reader raises plain errors on odd shapes
        raise FhirError(400, f"the XML could not be read as a FHIR {name}: {exc}") from None
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    out = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        out.append(f"{loc or 'resource'}: {err.get('msg')}")
    more = len(exc.errors()) - limit
    return "; ".join(out) + (f" (and {more} more)" if more > 0 else "")


def to_xml(resource: dict) -> bytes:
    model_class = get_fhir_model_class(resource["resourceType"])
    model = model_class.model_validate(resource)
    return model.model_dump_xml()


def render(resource: Any, fmt: str) -> bytes:
    """A dict (or stored JSON bytes) in the chosen format."""
    if fmt == "json":
        return resource if isinstance(resource, bytes) else orjson.dumps(resource)
    if isinstance(resource, bytes):
        resource = orjson.loads(resource)
    return to_xml(resource)


def media_type(fmt: str) -> str:
    return (JSON if fmt == "json" else XML) + "; charset=utf-8"
