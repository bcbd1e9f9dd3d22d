"""Each kind of TestScript assert, and each operator, decides pass / fail / warning as R4
describes, and says what it expected and what it found."""

from __future__ import annotations

import json

import httpx
import pytest

from carebridge.conformance.asserts import evaluate_assert
from carebridge.conformance.compare import check, contains_minimum
from carebridge.conformance.context import RunContext
from carebridge.conformance.exchange import Exchange
from carebridge.conformance.fixtures import Fixture
from carebridge.conformance.variables import Variables

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"family": "Chalmers", "given": ["Peter", "James"]}, {"family": "Windsor"}],
    "gender": "male",
}
BUNDLE = {
    "resourceType": "Bundle",
    "type": "searchset",
    "total": 3,
    "link": [
        {"relation": "self", "url": "http://x/fhir/Patient?_count=2"},
        {"relation": "next", "url": "http://x/fhir/Patient?_count=2&_cursor=a"},
    ],
    "entry": [{"resource": {"resourceType": "Patient", "id": "a"}, "search": {"mode": "match"}}] * 2,
}


def exchange(
    body: dict | bytes | None, status: int = 200, ctype: str = "application/fhir+json", **headers: str
) -> Exchange:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    return Exchange(
        "GET",
        "http://x/fhir/Patient?family=Chalmers",
        {"Accept": "application/fhir+json"},
        status=status,
        response_headers={
            "content-type": ctype,
            **{k.lower().replace("_", "-"): v for k, v in headers.items()},
        },
        response_body=raw,
    )


def ctx(last: Exchange | None = None, **fixtures: Fixture | Exchange) -> RunContext:
    c = RunContext(
        base_url="http://x/fhir",
        client=httpx.Client(),
        script={
            "profile": [
                {"id": "patient", "reference": "http://hl7.org/fhir/StructureDefinition/Patient"},
                {"id": "uk", "reference": "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"},
            ]
        },
        fixtures={k: v for k, v in fixtures.items() if isinstance(v, Fixture)},
        responses={k: v for k, v in fixtures.items() if isinstance(v, Exchange)},
        last=last,
    )
    c.variables = Variables([], {"family": "Chalmers"}, c.source)
    return c


def verdict(assertion: dict, context: RunContext) -> str:
    return evaluate_assert(assertion, context).result


def test_response_names_and_codes() -> None:
    c = ctx(exchange(PATIENT, status=201))
    assert verdict({"response": "created"}, c) == "pass"
    assert verdict({"response": "okay"}, c) == "fail"
    assert verdict({"responseCode": "201"}, c) == "pass"
    assert verdict({"responseCode": "200,204", "operator": "in"}, c) == "fail"
    assert verdict({"responseCode": "201,204", "operator": "in"}, c) == "pass"
    assert verdict({"response": "okay", "operator": "notEquals"}, c) == "pass"


def test_the_message_says_what_was_expected_and_found() -> None:
    result = evaluate_assert({"description": "Gone", "response": "gone"}, ctx(exchange(PATIENT, status=404)))
    assert (result.result, result.description) == ("fail", "Gone")
    assert result.message == "HTTP status: expected '410' (found '404')"


def test_resource_type_and_content_type() -> None:
    c = ctx(exchange(PATIENT))
    assert verdict({"resource": "Patient"}, c) == "pass"
    assert verdict({"resource": "Bundle"}, c) == "fail"
    assert verdict({"contentType": "json"}, c) == "pass"
    assert verdict({"contentType": "xml"}, c) == "fail"
    assert verdict({"contentType": "application/fhir+json"}, c) == "pass"
    xml = b'<Patient xmlns="http://hl7.org/fhir"><id value="p1"/><gender value="male"/></Patient>'
    cx = ctx(exchange(xml, ctype="application/fhir+xml; charset=utf-8"))
    assert verdict({"contentType": "xml"}, cx) == "pass"
    assert verdict({"resource": "Patient"}, cx) == "pass"
    assert verdict({"expression": "Patient.gender = 'male'"}, cx) == "pass"


def test_header_fields_of_the_response_and_of_the_request() -> None:
    c = ctx(exchange(PATIENT, ETag='W/"2"', Location="http://x/fhir/Patient/p1/_history/2"))
    assert verdict({"headerField": "ETag", "operator": "notEmpty"}, c) == "pass"
    assert verdict({"headerField": "ETag", "value": 'W/"2"'}, c) == "pass"
    assert verdict({"headerField": "Location", "operator": "contains", "value": "_history/2"}, c) == "pass"
    assert verdict({"headerField": "Last-Modified", "operator": "notEmpty"}, c) == "fail"
    assert verdict({"headerField": "Last-Modified", "operator": "empty"}, c) == "pass"
    request_side = {"direction": "request", "headerField": "Accept", "operator": "contains", "value": "json"}
    assert verdict(request_side, c) == "pass"


def test_request_url_and_method() -> None:
    c = ctx(exchange(PATIENT))
    assert verdict({"direction": "request", "requestURL": "family", "operator": "contains"}, c) == "pass"
    assert verdict({"requestURL": "http://x/fhir/Patient?family=${family}"}, c) == "pass"
    assert verdict({"requestMethod": "get"}, c) == "pass"
    assert verdict({"requestMethod": "post"}, c) == "fail"


def test_fhirpath_expressions_and_xpath_paths() -> None:
    c = ctx(exchange(PATIENT))
    assert verdict({"expression": "Patient.name.count() = 2"}, c) == "pass"
    assert verdict({"expression": "Patient.name.count() = 3"}, c) == "fail"
    assert verdict({"expression": "Patient.name.first().family", "value": "${family}"}, c) == "pass"
    assert verdict({"expression": "Patient.birthDate", "operator": "empty"}, c) == "pass"
    # HL7's examples write XPath over FHIR XML; the first match is compared, as XPath does.
    assert verdict({"path": "fhir:Patient/fhir:name/fhir:family/@value", "value": "Chalmers"}, c) == "pass"
    assert verdict({"path": "fhir:Patient/fhir:name/fhir:given/@value", "value": "James"}, c) == "fail"
    # An expression that is not true (nothing, or not a boolean) does not pass.
    assert verdict({"expression": "Patient.birthDate > @2000-01-01"}, c) == "fail"


def test_a_broken_expression_is_an_error_not_a_failure() -> None:
    result = evaluate_assert({"expression": "Patient.name.where("}, ctx(exchange(PATIENT)))
    assert result.result == "error"


def test_compare_to_a_source_fixture() -> None:
    sent = Fixture("sent", resource={**PATIENT, "id": "local"})
    other = Fixture("other", resource={**PATIENT, "name": [{"family": "Duck"}]})
    c = ctx(exchange(PATIENT), sent=sent, other=other)
    same = {"compareToSourceId": "sent", "compareToSourceExpression": "Patient.name.first().family"}
    assert verdict(same, c) == "pass"
    assert verdict({**same, "compareToSourceId": "other"}, c) == "fail"
    assert verdict({**same, "compareToSourceId": "other", "operator": "notEquals"}, c) == "pass"
    by_path = {
        "compareToSourceId": "sent",
        "compareToSourcePath": "fhir:Patient/fhir:gender/@value",
        "path": "fhir:Patient/fhir:gender/@value",
    }
    assert verdict(by_path, c) == "pass"


def test_compare_two_responses() -> None:
    first, second = (
        exchange({"resourceType": "Patient", "id": "a"}),
        exchange({"resourceType": "Patient", "id": "a"}),
    )
    c = ctx(second, first=first, second=second)
    assert (
        verdict(
            {"sourceId": "second", "compareToSourceId": "first", "compareToSourceExpression": "Patient.id"}, c
        )
        == "pass"
    )


def test_minimum_id_means_every_element_of_the_minimum_is_there() -> None:
    minimum = Fixture("min", resource={"resourceType": "Patient", "name": [{"family": "Chalmers"}]})
    too_much = Fixture("more", resource={"resourceType": "Patient", "birthDate": "1974-12-25"})
    c = ctx(exchange(PATIENT), min=minimum, more=too_much)
    assert verdict({"minimumId": "min"}, c) == "pass"
    result = evaluate_assert({"minimumId": "more"}, c)
    assert result.result == "fail" and "birthDate: missing" in result.message


def test_navigation_links() -> None:
    assert verdict({"navigationLinks": True}, ctx(exchange(BUNDLE))) == "pass"
    no_next = {**BUNDLE, "link": BUNDLE["link"][:1]}
    result = evaluate_assert({"navigationLinks": True}, ctx(exchange(no_next)))
    assert result.result == "fail" and "no next link" in result.message
    relative = {**BUNDLE, "link": [{"relation": "self", "url": "Patient?_count=2"}] + BUNDLE["link"][1:]}
    assert verdict({"navigationLinks": True}, ctx(exchange(relative))) == "fail"
    assert verdict({"navigationLinks": True}, ctx(exchange(PATIENT))) == "fail"


def test_validate_profile_id_checks_the_base_fhir_r4_profile() -> None:
    assert verdict({"validateProfileId": "patient"}, ctx(exchange(PATIENT))) == "pass"
    assert verdict({"validateProfileId": "patient"}, ctx(exchange({**PATIENT, "gender": 7}))) == "fail"
    assert verdict({"validateProfileId": "patient"}, ctx(exchange(BUNDLE))) == "fail"
    # A profile this engine cannot evaluate is an error, never a silent pass.
    assert verdict({"validateProfileId": "uk"}, ctx(exchange(PATIENT))) == "error"


def test_warning_only_turns_a_failure_into_a_warning() -> None:
    c = ctx(exchange(PATIENT))
    assert (
        verdict({"headerField": "Last-Modified", "operator": "notEmpty", "warningOnly": True}, c) == "warning"
    )
    assert verdict({"resource": "Patient", "warningOnly": True}, c) == "pass"


def test_no_response_is_a_failure_and_nothing_to_check_is_an_error() -> None:
    down = Exchange("GET", "http://x/fhir/metadata", {}, error="ConnectError: refused")
    result = evaluate_assert({"response": "okay"}, ctx(down))
    assert result.result == "fail" and "ConnectError" in result.message
    assert verdict({"response": "okay"}, ctx(None)) == "error"
    assert verdict({"expression": "Patient.id = '${nobody}'"}, ctx(exchange(PATIENT))) == "error"


@pytest.mark.parametrize(
    "operator, actual, expected, passes",
    [
        ("equals", ["a", "b"], "a", True),
        ("equals", [], "a", False),
        ("notEquals", ["a"], "b", True),
        ("in", ["204"], "200,204", True),
        ("notIn", ["404"], "200,204", True),
        ("greaterThan", [10], "9", True),
        ("greaterThan", ["2024-01-02"], "2024-01-01", True),
        ("lessThan", [3], "20", True),
        ("empty", [], None, True),
        ("empty", [""], None, True),
        ("notEmpty", ["x"], None, True),
        ("contains", ["application/fhir+json"], "json", True),
        ("contains", ["a", "bcd"], "c", True),
        ("notContains", ["a", "b"], "c", True),
        ("eval", [True], None, True),
        ("eval", [False], None, False),
        ("eval", [], None, False),
    ],
)
def test_operators(operator: str, actual: list, expected: str | None, passes: bool) -> None:
    assert check(operator, actual, expected)[0] is passes


def test_minimum_lists_match_item_by_item() -> None:
    actual = {"name": [{"family": "A", "given": ["x"]}, {"family": "B"}]}
    assert contains_minimum(actual, {"name": [{"family": "B"}, {"given": ["x"]}]}) == []
    assert contains_minimum(actual, {"name": [{"family": "C"}]}) == ["name[0]: no matching item"]
