"""The CapabilityStatement, derived from the catalog the routes and indexer use."""

from __future__ import annotations

from carebridge.server.catalog import (
    CAPABILITY_URL,
    FHIR_VERSION,
    RESOURCE_TYPES,
    SERVER_NAME,
)
from carebridge.server.instants import now_instant


def capability_statement(base_url: str, operations: list[tuple[str, str, str]] | None = None) -> dict:
    ops = operations or []
    resources = []
    for rt in RESOURCE_TYPES.values():
        entry: dict = {
            "type": rt.name,
            "interaction": [{"code": code} for code in rt.interactions],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": "update" in rt.interactions,
            "conditionalCreate": "create" in rt.interactions,
            "conditionalUpdate": "update" in rt.interactions,
            "conditionalDelete": "not-supported",
            "searchInclude": [f"{rt.name}:{p.name}" for p in rt.params if p.type == "reference"],
            "searchRevInclude": [
                f"{other.name}:{p.name}"
                for other in RESOURCE_TYPES.values()
                for p in other.params
                if p.type == "reference" and (not p.targets or rt.name in p.targets)
            ],
            "searchParam": [
                {
                    "name": p.name,
                    "definition": f"{base_url}/SearchParameter/{rt.name}-{p.name.lstrip('_')}",
                    "type": p.type,
                    "documentation": p.doc or f"{p.expression(rt.name)}",
                }
                for p in rt.all_params()
            ],
        }
        if rt.doc:
            entry["documentation"] = rt.doc
        type_ops = [
            {"name": name, "definition": definition} for name, definition, scope in ops if scope == rt.name
        ]
        if type_ops:
            entry["operation"] = type_ops
        resources.append(entry)
    rest: dict = {
        "mode": "server",
        "documentation": "Every /fhir request except metadata and SMART configuration needs a "
        "Bearer token. Patient data is disclosed only as the person's consent allows.",
        "security": {
            "cors": False,
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ]
                }
            ],
            "extension": [
                {
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{"url": "token", "valueUri": f"{base_url}/token"}],
                }
            ],
        },
        "resource": resources,
        "interaction": [{"code": "transaction"}, {"code": "batch"}],
    }
    system_ops = [{"name": n, "definition": d} for n, d, scope in ops if scope == "system"]
    if system_ops:
        rest["operation"] = system_ops
    return {
        "resourceType": "CapabilityStatement",
        "url": CAPABILITY_URL,
        "name": "CarebridgeCapabilityStatement",
        "title": "carebridge FHIR server",
        "status": "active",
        "date": now_instant()[:10],
        "publisher": "carebridge",
        "kind": "instance",
        "software": {"name": SERVER_NAME, "version": "0.1.0"},
        "implementation": {"description": "carebridge FHIR R4 server", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "application/fhir+xml", "json", "xml"],
        "rest": [rest],
    }
