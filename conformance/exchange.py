"""One HTTP request and its response, as the engine sends it and the reports show it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

import httpx

JSON = "application/fhir+json"
XML = "application/fhir+xml"
NDJSON = "application/fhir+ndjson"


@dataclass
class Exchange:
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes | None = None
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    response_body: bytes = b""
    error: str | None = None  # why no response came back

    def header(self, name: str, *, request: bool = False) -> str | None:
        if request:
            for k, v in self.request_headers.items():
                if k.lower() == name.lower():
                    return v
            return None
        return self.response_headers.get(name.lower())

    @property
    def media_type(self) -> str:
        return (self.response_headers.get("content-type") or "").split(";")[0].strip().lower()

    @cached_property
    def resource(self) -> dict | None:
        """The response body as a FHIR resource (JSON, XML or NDJSON), or None."""
        return parse_body(self.response_body, self.media_type)


def parse_body(body: bytes, media_type: str) -> dict | None:
    if not body.strip():
        return None
    try:
        if "ndjson" in media_type:
            # A bulk-data file, shown to expressions as a Bundle so FHIRPath can read it.
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in lines]}
        if "xml" in media_type:
            return xml_to_dict(body)
        data = json.loads(body)
        return data if isinstance(data, dict) else None
    except (ValueError, TypeError):
        return None


def xml_to_dict(body: bytes) -> dict | None:
    """FHIR XML as its JSON form, through the fhir.resources models (no entities, no DTD)."""
    from fhir.resources.R4B import get_fhir_model_class
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(body, parser)
        model = get_fhir_model_class(etree.QName(root).localname)
        return model.model_validate_xml(etree.tostring(root)).model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    except Exception:  # not FHIR XML: nothing for expressions to read
        return None


def dict_to_xml(resource: dict) -> bytes:
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource["resourceType"]).model_validate(resource).model_dump_xml()


def send(
    client: httpx.Client, method: str, url: str, headers: dict[str, str], body: bytes | None
) -> Exchange:
    ex = Exchange(method, url, headers, body)
    try:
        r = client.request(method, url, headers=headers, content=body)
    except httpx.HTTPError as exc:
        ex.error = f"{type(exc).__name__}: {exc}"
        return ex
    ex.status = r.status_code
    ex.response_headers = {k.lower(): v for k, v in r.headers.items()}
    ex.response_body = r.content
    return ex
