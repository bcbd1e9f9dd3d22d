"""The CapabilityStatement and SMART configuration (issue 3): open to anyone, and
derived from the same catalog of types and search parameters the routes use."""

from __future__ import annotations

import httpx
import pytest

from carebridge.server.catalog import COMMON_PARAMS, RESOURCE_TYPES
from tests.server.fhir_checks import outcome


@pytest.fixture(scope="module")
def capability(live) -> dict:
    r = httpx.get(f"{live.base}/metadata")  # no token
    assert r.status_code == 200
    return r.json()


def by_type(capability: dict) -> dict[str, dict]:
    return {r["type"]: r for r in capability["rest"][0]["resource"]}


def test_metadata_needs_no_token_and_speaks_fhir_4_0_1(capability):
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"
    assert capability["kind"] == "instance"
    assert capability["rest"][0]["mode"] == "server"
    assert {"application/fhir+json", "application/fhir+xml"} <= set(capability["format"])


def test_every_served_type_is_listed_and_nothing_else(capability):
    assert set(by_type(capability)) == set(RESOURCE_TYPES)


@pytest.mark.parametrize("rtype", sorted(RESOURCE_TYPES))
def test_each_type_lists_every_search_parameter_of_the_catalog(capability, rtype):
    listed = {p["name"]: p["type"] for p in by_type(capability)[rtype]["searchParam"]}
    declared = {p.name: p.type for p in COMMON_PARAMS + RESOURCE_TYPES[rtype].params}
    assert listed == declared


@pytest.mark.parametrize("rtype", sorted(RESOURCE_TYPES))
def test_each_type_lists_its_interactions_and_includes(capability, rtype):
    entry = by_type(capability)[rtype]
    assert [i["code"] for i in entry["interaction"]] == list(RESOURCE_TYPES[rtype].interactions)
    references = {p.name for p in RESOURCE_TYPES[rtype].params if p.type == "reference"}
    assert set(entry["searchInclude"]) == {f"{rtype}:{name}" for name in references}
    assert entry["versioning"] == "versioned-update"


def test_the_parameters_people_need_are_there(capability):
    types = by_type(capability)
    names = {t: {p["name"] for p in r["searchParam"]} for t, r in types.items()}
    assert {"identifier", "family", "birthdate", "_id", "_lastUpdated", "_tag", "_security"} <= names[
        "Patient"
    ]
    assert {"patient", "subject", "status", "category", "date", "part-of"} <= names["CarePlan"]
    assert {"owner", "requester", "focus", "part-of"} <= names["Task"]
    assert "actor" in names["Consent"]


def test_every_parameter_listed_is_one_search_understands(custodian, capability):
    """One source of truth: nothing is advertised that the server would call unknown.
    (Stored types only: the published model, served from code, has its own tests.)"""
    for rtype, entry in by_type(capability).items():
        if "create" not in RESOURCE_TYPES[rtype].interactions and rtype != "AuditEvent":
            continue
        for p in entry["searchParam"]:
            r = custodian.get(f"/{rtype}", params={f"{p['name']}:missing": "true", "_summary": "count"})
            assert r.status_code == 200, (rtype, p["name"], r.text)


def test_batch_and_transaction_are_advertised(capability):
    assert {"batch", "transaction"} <= {i["code"] for i in capability["rest"][0]["interaction"]}


def test_metadata_comes_as_xml_too(anonymous):
    r = anonymous.get("/metadata", headers={"Accept": "application/fhir+xml"})
    assert r.status_code == 200
    assert "<CapabilityStatement" in r.text and '<fhirVersion value="4.0.1"/>' in r.text


def test_metadata_says_where_to_get_a_token(live, capability):
    security = capability["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = security["extension"][0]["extension"]
    assert {"url": "token", "valueUri": f"{live.base}/token"} in uris


def test_smart_configuration_needs_no_token_and_names_the_token_endpoint(live, anonymous):
    r = anonymous.get("/.well-known/smart-configuration")
    assert r.status_code == 200
    config = r.json()
    assert config["token_endpoint"] == f"{live.base}/token"
    assert config["grant_types_supported"] == ["client_credentials"]
    assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert "client-confidential-asymmetric" in config["capabilities"]


def test_the_servers_own_public_key_is_published(anonymous, live):
    jwks = anonymous.get("/.well-known/jwks.json").json()
    assert jwks["keys"][0]["kty"] == "EC"
    assert "d" not in jwks["keys"][0]  # never the private part


def test_everything_else_needs_a_token(anonymous):
    for path in ("/CarePlan", "/Patient/millie", "/Organization/awp", "/CarePlan/_history"):
        outcome(anonymous.get(path), 401)


def test_a_path_outside_fhir_is_a_404_operation_outcome(live):
    r = httpx.get(live.base.removesuffix("/fhir") + "/nothing-here")
    outcome(r, 404, "/fhir")
