"""Variables are read when used (header, FHIRPath, path, default, overrides, built-ins),
and fixtures are found as contained resources, files, or Type/id among fixture files."""

from __future__ import annotations

import base64
import json

import pytest
from nhs_number import is_valid

from carebridge.conformance.exchange import Exchange
from carebridge.conformance.fhirpath import from_path
from carebridge.conformance.fixtures import FixtureError, load_fixtures
from carebridge.conformance.variables import UnresolvedVariable, Variables, builtins, sample_nhs_number

CREATED = Exchange(
    "POST",
    "http://x/fhir/Patient",
    {},
    status=201,
    response_headers={
        "location": "http://x/fhir/Patient/p9/_history/1",
        "content-type": "application/fhir+json",
    },
    response_body=json.dumps({"resourceType": "Patient", "id": "p9", "name": [{"family": "Duck"}]}).encode(),
)
DEFINITIONS = [
    {"name": "where", "headerField": "Location", "sourceId": "created"},
    {"name": "pid", "expression": "Patient.id", "sourceId": "created"},
    {"name": "family", "path": "fhir:Patient/fhir:name/fhir:family/@value", "sourceId": "created"},
    {"name": "lastFamily", "expression": "Patient.name.family"},
    {"name": "fallback", "expression": "Patient.birthDate", "sourceId": "created", "defaultValue": "unknown"},
    {"name": "given", "defaultValue": "Peter"},
    {"name": "nothing", "expression": "Patient.birthDate", "sourceId": "created"},
]


def variables(fixed: dict[str, str] | None = None, last: Exchange | None = CREATED) -> Variables:
    return Variables(DEFINITIONS, fixed or {}, lambda sid: {"created": CREATED}.get(sid) if sid else last)


def test_a_variable_reads_a_header_an_expression_or_a_path() -> None:
    v = variables()
    assert v.get("where") == "http://x/fhir/Patient/p9/_history/1"
    assert v.get("pid") == "p9"
    assert v.get("family") == "Duck"
    assert v.get("lastFamily") == "Duck"  # no sourceId: the last response


def test_default_values_and_overrides() -> None:
    assert variables().get("fallback") == "unknown"
    assert variables().get("given") == "Peter"
    assert variables({"given": "Jim"}).get("given") == "Jim"  # config and --var win


def test_substitution_fills_strings_and_json_and_refuses_unknown_names() -> None:
    v = variables()
    assert v.substitute("/Patient/${pid}?given=${given}") == "/Patient/p9?given=Peter"
    assert v.substitute_json({"a": ["${pid}", 3, {"b": "x-${given}"}]}) == {"a": ["p9", 3, {"b": "x-Peter"}]}
    with pytest.raises(UnresolvedVariable):
        v.substitute("${nothing}")
    with pytest.raises(UnresolvedVariable):
        v.substitute("${notDefined}")


def test_a_variable_is_read_when_used() -> None:
    later = Exchange(
        "GET",
        "http://x",
        {},
        status=200,
        response_headers={"content-type": "application/fhir+json"},
        response_body=b'{"resourceType": "Patient", "name": [{"family": "Later"}]}',
    )
    assert variables(last=later).get("lastFamily") == "Later"


def test_builtins_give_each_run_fresh_ids_and_a_valid_nhs_number() -> None:
    one, two = builtins(), builtins()
    assert one["runId"] != two["runId"]
    assert is_valid(one["nhsNumber"]) and one["nhsNumber"].startswith("999")
    assert one["none"] == ""
    assert all(is_valid(sample_nhs_number()) for _ in range(50))


@pytest.mark.parametrize(
    "path, fhirpath",
    [
        ("fhir:Patient/fhir:name/fhir:family/@value", "Patient.name.family"),
        ("fhir:Bundle/fhir:type/@value", "Bundle.type"),
        ("Patient/id", "Patient.id"),
        ("Patient.name.given", "Patient.name.given"),
    ],
)
def test_paths_become_fhirpath(path: str, fhirpath: str) -> None:
    assert from_path(path) == fhirpath


def test_fixtures_contained_binary_beside_the_script_and_by_type_and_id(tmp_path) -> None:
    beside = tmp_path / "scripts"
    beside.mkdir()
    (beside / "duck.json").write_text(json.dumps({"resourceType": "Patient", "id": "pat1"}))
    (beside / "xxe.xml").write_bytes(b"<!DOCTYPE x>")
    library = tmp_path / "library"
    library.mkdir()
    (library / "patient-example.json").write_text(json.dumps({"resourceType": "Patient", "id": "example"}))
    script = {
        "contained": [
            {"resourceType": "Patient", "id": "local"},
            {
                "resourceType": "Binary",
                "id": "raw",
                "contentType": "application/fhir+xml",
                "data": base64.b64encode(b"<x/>").decode(),
            },
        ],
        "fixture": [
            {"id": "c", "resource": {"reference": "#local"}},
            {"id": "b", "resource": {"reference": "#raw"}},
            {"id": "f", "resource": {"reference": "duck.json"}, "autocreate": True},
            {"id": "x", "resource": {"reference": "xxe.xml"}},
            {"id": "t", "resource": {"reference": "Patient/example"}},
        ],
    }
    fixtures = load_fixtures(script, beside, [library])
    assert fixtures["c"].contained and fixtures["c"].resource == {"resourceType": "Patient", "id": "local"}
    assert fixtures["b"].raw == b"<x/>" and fixtures["b"].media == "application/fhir+xml"
    assert fixtures["f"].resource["id"] == "pat1" and fixtures["f"].autocreate
    assert fixtures["x"].raw == b"<!DOCTYPE x>" and fixtures["x"].resource is None
    assert fixtures["t"].resource["id"] == "example"


def test_a_fixture_that_cannot_be_found_is_reported(tmp_path) -> None:
    with pytest.raises(FixtureError, match="Patient/nobody"):
        load_fixtures({"fixture": [{"id": "x", "resource": {"reference": "Patient/nobody"}}]}, tmp_path, [])
