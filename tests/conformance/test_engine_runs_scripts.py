"""How a TestScript runs: setup, tests, teardown; what a failure stops; when a script
does not apply; and the FHIR TestReport it produces."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pytest_httpserver import HTTPServer
from werkzeug import Response

from carebridge.conformance.engine import Engine, Role, Settings
from carebridge.conformance.report_json import bundle, report_for
from tests.conformance.scripts import case, check, operation, script_of

PATIENT = {"resourceType": "Patient", "id": "p1"}


@pytest.fixture
def engine(httpserver: HTTPServer) -> Iterator[Engine]:
    httpserver.expect_request(re.compile(r"/fhir/(Patient|metadata).*")).respond_with_response(
        Response(json.dumps(PATIENT), status=200, content_type="application/fhir+json")
    )
    e = Engine(
        Settings(httpserver.url_for("/fhir"), {"custodian": Role("custodian", "Bearer t")}, "custodian")
    )
    yield e
    e.close()


READ = operation("read", resource="Patient", params="/p1")
TEARDOWN = {"action": [operation("delete", resource="Patient", params="/p1")]}


def test_a_failing_assert_stops_its_test_and_the_next_test_still_runs(engine) -> None:
    result = engine.run(
        script_of(
            case("first", READ, check(response="notFound"), check(resource="Patient")),
            case("second", READ, check(response="okay")),
        )
    )
    first, second = result.tests
    assert [a.result for a in first.actions] == ["pass", "fail", "skip"]
    assert first.result == "fail" and first.failure is first.actions[1]
    assert second.result == "pass"
    assert result.result == "fail"


def test_a_failed_setup_skips_every_test_and_teardown_still_runs(engine, httpserver) -> None:
    result = engine.run(
        script_of(case("t", READ), setup={"action": [READ, check(response="gone")]}, teardown=TEARDOWN)
    )
    assert result.setup_failure is not None and result.setup_failure.result == "fail"
    assert [t.result for t in result.tests] == ["skip"]
    assert result.teardown[0].result == "pass"
    assert httpserver.log[-1][0].method == "DELETE"
    assert result.result == "fail"


def test_warnings_do_not_fail_a_test(engine) -> None:
    result = engine.run(
        script_of(case("t", READ, check(headerField="ETag", operator="notEmpty", warningOnly=True)))
    )
    assert result.result == "pass" and len(result.tests[0].warnings) == 1


def test_a_script_needing_a_role_the_config_lacks_is_not_applicable(engine, httpserver) -> None:
    needs_gp = operation(
        "read",
        resource="Patient",
        params="/p1",
        requestHeader=[{"field": "Authorization", "value": "${auth.gp}"}],
    )
    result = engine.run(script_of(case("t", needs_gp)))
    assert result.not_applicable == "the config gives no role gp"
    assert result.result == "skip" and not httpserver.log


def test_a_script_needing_an_undeclared_capability_is_not_applicable(engine, tmp_path) -> None:
    needed = {
        "resourceType": "CapabilityStatement",
        "url": "https://example.org/needs-export",
        "status": "active",
        "kind": "requirements",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "date": "2026-01-01",
        "rest": [{"mode": "server", "operation": [{"name": "export", "definition": "http://x/export"}]}],
    }
    (tmp_path / "needs.json").write_text(json.dumps(needed))
    script = script_of(
        case("t", READ),
        metadata={"capability": [{"required": True, "capabilities": "https://example.org/needs-export"}]},
    )
    # The recording server's /metadata is not a CapabilityStatement declaring $export.
    result = engine.run(script, path=tmp_path / "script.json")
    assert result.not_applicable is not None and result.result == "skip"


def test_the_report_is_a_fhir_r4_testreport_in_a_bundle(engine) -> None:
    result = engine.run(
        script_of(
            case("ok", READ, check(response="okay")),
            case("bad", READ, check(response="gone")),
            setup={"action": [READ]},
            teardown=TEARDOWN,
        )
    )
    report = report_for(result)
    get_fhir_model_class("TestReport").model_validate(report)
    assert report["result"] == "fail" and report["score"] == 50.0
    assert report["test"][1]["action"][1]["assert"]["result"] == "fail"
    assert report["teardown"]["action"][0]["operation"]["result"] == "pass"
    collection = bundle([result])
    get_fhir_model_class("Bundle").model_validate(collection)
    assert collection["type"] == "collection" and len(collection["entry"]) == 1
