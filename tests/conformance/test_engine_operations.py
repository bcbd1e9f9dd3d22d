"""The engine turns each kind of TestScript operation into the right HTTP request.

A recording HTTP server (pytest-httpserver) stands in for the FHIR server, so each test
says exactly which method, URL, headers and body an operation sends.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from carebridge.conformance import extensions
from carebridge.conformance.engine import Engine, Role, Settings
from tests.conformance.scripts import case, check, operation, script_of

FHIR_JSON = "application/fhir+json"
PATIENT = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Chalmers"}]}


@pytest.fixture
def engine(httpserver: HTTPServer) -> Iterator[Engine]:
    settings = Settings(
        base_url=httpserver.url_for("/fhir"),
        roles={
            "custodian": Role("custodian", "Bearer custodian-token"),
            "voluntary": Role("voluntary", "Bearer voluntary-token", {"organization": "Organization/v"}),
        },
        default_role="custodian",
    )
    e = Engine(settings)
    yield e
    e.close()


def answer(httpserver: HTTPServer, body: dict | None = None, status: int = 200, **headers: str) -> None:
    """Every request gets this answer; the log keeps what was sent."""
    text = json.dumps(body) if body is not None else ""
    httpserver.expect_request(re.compile(r"/.*")).respond_with_response(
        Response(text, status=status, headers=headers, content_type=FHIR_JSON)
    )


def sent(httpserver: HTTPServer) -> list[Request]:
    return [request for request, _ in httpserver.log]


def run_one(engine: Engine, *actions: dict, **fields: object):  # type: ignore[no-untyped-def]
    return engine.run(script_of(case("t", *actions), **fields))


def test_read_by_params_sends_get_with_json_accept_and_default_token(engine, httpserver) -> None:
    answer(httpserver, PATIENT)
    result = run_one(engine, operation("read", resource="Patient", params="/p1"), check(response="okay"))
    (request,) = sent(httpserver)
    assert (request.method, request.path) == ("GET", "/fhir/Patient/p1")
    assert request.headers["Accept"] == FHIR_JSON
    assert request.headers["Authorization"] == "Bearer custodian-token"
    assert result.result == "pass"


def test_read_by_target_uses_the_fixture_id(engine, httpserver, tmp_path) -> None:
    # As HL7's examples do: fixture Patient/example is found by type and id among fixture files.
    answer(httpserver, PATIENT)
    (tmp_path / "anything.json").write_text(json.dumps({"resourceType": "Patient", "id": "p1"}))
    engine.settings.fixture_dirs = [tmp_path]
    run_one(
        engine,
        operation("read", resource="Patient", targetId="pat"),
        fixture=[{"id": "pat", "resource": {"reference": "Patient/p1"}}],
    )
    assert sent(httpserver)[0].path == "/fhir/Patient/p1"


def test_vread_of_a_response_uses_its_id_and_version(engine, httpserver) -> None:
    answer(httpserver, {**PATIENT, "meta": {"versionId": "3"}})
    run_one(
        engine,
        operation("read", resource="Patient", params="/p1", responseId="r"),
        operation("vread", resource="Patient", targetId="r"),
        operation("history", resource="Patient", targetId="r"),
    )
    assert [r.path for r in sent(httpserver)] == [
        "/fhir/Patient/p1",
        "/fhir/Patient/p1/_history/3",
        "/fhir/Patient/p1/_history",
    ]


def test_create_posts_a_contained_fixture_without_its_local_id(engine, httpserver) -> None:
    answer(httpserver, PATIENT, status=201)
    run_one(
        engine,
        operation("create", resource="Patient", sourceId="pat"),
        check(response="created"),
        contained=[{"resourceType": "Patient", "id": "local", "gender": "female"}],
        fixture=[{"id": "pat", "resource": {"reference": "#local"}}],
    )
    (request,) = sent(httpserver)
    assert (request.method, request.path) == ("POST", "/fhir/Patient")
    assert request.headers["Content-Type"] == FHIR_JSON
    assert json.loads(request.data) == {"resourceType": "Patient", "gender": "female"}


def test_update_sends_the_id_it_updates(engine, httpserver, tmp_path) -> None:
    # HL7's history example PUTs the pat1 fixture to Patient/example: engines set the id.
    answer(httpserver, PATIENT)
    fixture = tmp_path / "pat1.json"
    fixture.write_text(json.dumps({"resourceType": "Patient", "id": "pat1"}))
    engine.run(
        script_of(
            case("t", operation("update", resource="Patient", params="/example", sourceId="f")),
            fixture=[{"id": "f", "resource": {"reference": "pat1.json"}}],
        ),
        path=tmp_path / "script.json",
    )
    (request,) = sent(httpserver)
    assert (request.method, request.path) == ("PUT", "/fhir/Patient/example")
    assert json.loads(request.data)["id"] == "example"


def test_xml_content_type_sends_fhir_xml(engine, httpserver) -> None:
    answer(httpserver, PATIENT, status=201)
    run_one(
        engine,
        operation("create", resource="Patient", sourceId="pat", contentType="xml", accept="xml"),
        contained=[{"resourceType": "Patient", "id": "x", "gender": "male"}],
        fixture=[{"id": "pat", "resource": {"reference": "#x"}}],
    )
    (request,) = sent(httpserver)
    assert request.headers["Content-Type"] == "application/fhir+xml"
    assert request.headers["Accept"] == "application/fhir+xml"
    assert b'<Patient xmlns="http://hl7.org/fhir"' in request.data
    assert b'<gender value="male"/>' in request.data


def test_delete_search_capabilities_transaction_and_named_operations(engine, httpserver) -> None:
    answer(httpserver, {"resourceType": "Bundle", "type": "searchset"})
    run_one(
        engine,
        operation("delete", resource="Patient", params="/p1"),
        operation("search", resource="Patient", params="?family=Chalmers"),
        operation("historyType", resource="Patient"),
        operation("capabilities"),
        operation("transaction", sourceId="tx"),
        operation("validate", resource="CarePlan", sourceId="tx"),
        contained=[{"resourceType": "Bundle", "id": "b", "type": "transaction"}],
        fixture=[{"id": "tx", "resource": {"reference": "#b"}}],
    )
    got = [(r.method, r.full_path.rstrip("?")) for r in sent(httpserver)]
    assert got == [
        ("DELETE", "/fhir/Patient/p1"),
        ("GET", "/fhir/Patient?family=Chalmers"),
        ("GET", "/fhir/Patient/_history"),
        ("GET", "/fhir/metadata"),
        ("POST", "/fhir"),
        ("POST", "/fhir/CarePlan/$validate"),
    ]


def test_search_by_post_sends_a_form_to_underscore_search(engine, httpserver) -> None:
    answer(httpserver, {"resourceType": "Bundle", "type": "searchset"})
    run_one(engine, operation("search", resource="Patient", params="?family=Chalmers", method="post"))
    (request,) = sent(httpserver)
    assert (request.method, request.path) == ("POST", "/fhir/Patient/_search")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.get_data() == b"family=Chalmers"


def test_request_headers_roles_and_no_authorization(engine, httpserver) -> None:
    answer(httpserver, PATIENT)
    run_one(
        engine,
        operation(
            "read",
            resource="Patient",
            params="/p1",
            requestHeader=[
                {"field": "Authorization", "value": "${auth.voluntary}"},
                {"field": "X-Purpose-Of-Use", "value": "ETREAT"},
            ],
        ),
        operation(
            "read",
            resource="Patient",
            params="/p1",
            requestHeader=[{"field": "Authorization", "value": "${none}"}],
        ),
    )
    as_voluntary, anonymous = sent(httpserver)
    assert as_voluntary.headers["Authorization"] == "Bearer voluntary-token"
    assert as_voluntary.headers["X-Purpose-Of-Use"] == "ETREAT"
    assert "Authorization" not in anonymous.headers


def test_url_from_a_response_header_and_absolute_urls(engine, httpserver) -> None:
    location = httpserver.url_for("/fhir/Patient/p1/_history/1")
    answer(httpserver, PATIENT, status=201, Location=location)
    run_one(
        engine,
        operation("create", resource="Patient", sourceId="pat", responseId="made"),
        operation("read", url="${where}"),
        contained=[{"resourceType": "Patient", "id": "x"}],
        fixture=[{"id": "pat", "resource": {"reference": "#x"}}],
        variable=[{"name": "where", "headerField": "Location", "sourceId": "made"}],
    )
    assert sent(httpserver)[1].path == "/fhir/Patient/p1/_history/1"


def test_body_patch_changes_the_body_before_sending(engine, httpserver) -> None:
    answer(httpserver, {**PATIENT, "active": True})
    patch = json.dumps([{"op": "replace", "path": "/active", "value": False}])
    run_one(
        engine,
        operation("read", resource="Patient", params="/p1", responseId="now"),
        operation(
            "update",
            resource="Patient",
            params="/p1",
            sourceId="now",
            extension=[{"url": extensions.BODY_PATCH, "valueString": patch}],
        ),
    )
    assert json.loads(sent(httpserver)[1].data)["active"] is False


def test_body_size_pads_with_whitespace(engine, httpserver) -> None:
    answer(httpserver, status=413)
    run_one(
        engine,
        operation(
            "create",
            resource="Patient",
            sourceId="pat",
            extension=[{"url": extensions.BODY_SIZE, "valueString": "5000"}],
        ),
        contained=[{"resourceType": "Patient", "id": "x"}],
        fixture=[{"id": "pat", "resource": {"reference": "#x"}}],
    )
    body = sent(httpserver)[0].get_data()
    assert len(body) == 5000 and json.loads(body) == {"resourceType": "Patient"}


def test_poll_repeats_while_the_server_answers_202(engine, httpserver) -> None:
    status = httpserver.url_for("/fhir/$export-status/1")
    httpserver.expect_ordered_request("/fhir/$export-status/1").respond_with_response(
        Response(status=202, headers={"Retry-After": "0"})
    )
    httpserver.expect_ordered_request("/fhir/$export-status/1").respond_with_json({"output": []})
    result = run_one(
        engine,
        operation("read", url=status, extension=[{"url": extensions.POLL, "valueBoolean": True}]),
        check(response="okay"),
    )
    assert len(sent(httpserver)) == 2
    assert result.result == "pass"


def test_a_binary_fixture_is_sent_exactly_as_written(engine, httpserver) -> None:
    answer(httpserver, status=400)
    hostile = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "${runId}">]><Patient xmlns="http://hl7.org/fhir"/>'
    )
    run_one(
        engine,
        operation("create", resource="Patient", sourceId="raw", contentType="xml"),
        contained=[
            {
                "resourceType": "Binary",
                "id": "b",
                "contentType": "application/fhir+xml",
                "data": base64.b64encode(hostile.encode()).decode(),
            }
        ],
        fixture=[{"id": "raw", "resource": {"reference": "#b"}}],
    )
    body = sent(httpserver)[0].get_data()
    assert body.startswith(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "')
    assert b"${runId}" not in body  # variables are filled in, nothing else changes


def test_autocreate_and_autodelete_fixtures(engine, httpserver) -> None:
    answer(httpserver, {"resourceType": "Patient", "id": "server-id"}, status=201)
    result = run_one(
        engine,
        operation("read", resource="Patient", targetId="pat"),
        contained=[{"resourceType": "Patient", "id": "x"}],
        fixture=[{"id": "pat", "autocreate": True, "autodelete": True, "resource": {"reference": "#x"}}],
    )
    got = [(r.method, r.path) for r in sent(httpserver)]
    assert got == [
        ("POST", "/fhir/Patient"),
        ("GET", "/fhir/Patient/server-id"),
        ("DELETE", "/fhir/Patient/server-id"),
    ]
    assert result.setup[0].message == "autocreate pat: Patient/server-id"
