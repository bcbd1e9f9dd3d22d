"""The three reports: report.html for people, junit.xml for CI, testreport.json (FHIR)."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree as ET

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from carebridge.conformance import extensions
from carebridge.conformance.engine import Engine, Role, Settings
from carebridge.conformance.reports import write_reports
from carebridge.conformance.results import ScriptResult
from tests.conformance.scripts import case, check, operation, script_of

TOKEN = "eyJhbGciOiJFUzI1NiJ9.secret-part-of-the-token"


@pytest.fixture
def results(httpserver: HTTPServer) -> list[ScriptResult]:
    httpserver.expect_request(re.compile(r"/fhir/.*")).respond_with_response(
        Response(
            json.dumps({"resourceType": "Patient", "id": "leaked"}),
            status=200,
            content_type="application/fhir+json",
        )
    )
    engine = Engine(
        Settings(
            httpserver.url_for("/fhir"), {"custodian": Role("custodian", f"Bearer {TOKEN}")}, "custodian"
        )
    )
    rule = [{"url": extensions.RULE, "valueString": "CONTRACTS.md §4 rule 8: read gives 404"}]
    hidden = {
        "id": "hidden-is-404",
        "name": "A hidden resource is not there",
        "extension": rule,
        "action": [
            operation("read", resource="Patient", params="/leaked"),
            check(description="It answers 404.", response="notFound"),
        ],
    }
    fine = case("metadata-ok", operation("read", resource="Patient", params="/x"), check(response="okay"))
    try:
        failing = engine.run(script_of(hidden, title="Rule 8"), suite="consent")
        passing = engine.run(script_of(fine, id="ok", title="Reads"), suite="core")
        skipped = engine.run(
            script_of(
                case(
                    "needs-gp",
                    operation(
                        "read",
                        resource="Patient",
                        params="/x",
                        requestHeader=[{"field": "Authorization", "value": "${auth.gp}"}],
                    ),
                )
            ),
            suite="consent",
        )
    finally:
        engine.close()
    return [passing, failing, skipped]


def test_html_shows_each_failure_with_its_rule_request_and_response(results, tmp_path) -> None:
    html_path, _, _ = write_reports(results, tmp_path)
    html = html_path.read_text()
    assert "FAIL: 1 of 2 tests failed" in html
    assert "A hidden resource is not there" in html and "CONTRACTS.md §4 rule 8: read gives 404" in html
    assert "It answers 404." in html and "HTTP status: expected &#39;404&#39; (found &#39;200&#39;)" in html
    assert re.search(r"GET http://[^ ]+/fhir/Patient/leaked", html)
    assert "HTTP 200" in html and "&#34;leaked&#34;" in html
    assert "Not run:</b> the config gives no role gp" in html


def test_tokens_never_reach_a_report(results, tmp_path) -> None:
    for path in write_reports(results, tmp_path):
        text = path.read_text()
        assert "secret-part-of-the-token" not in text
    assert "Bearer eyJhbGciOi... (redacted)" in (tmp_path / "report.html").read_text()


def test_junit_counts_tests_failures_and_skips(results, tmp_path) -> None:
    _, junit_path, _ = write_reports(results, tmp_path)
    root = ET.parse(junit_path).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "1", "1")
    failure = root.find(".//testcase/failure")
    assert failure is not None and "rule 8" in failure.get("message", "")
    assert "GET http" in (failure.text or "")


def test_testreport_json_is_a_bundle_of_testreports(results, tmp_path) -> None:
    _, _, json_path = write_reports(results, tmp_path)
    bundle = json.loads(json_path.read_text())
    reports = [e["resource"] for e in bundle["entry"]]
    assert [r["result"] for r in reports] == ["pass", "fail", "pending"]
    assert reports[2]["status"] == "stopped"
    assert reports[2]["extension"][0]["valueString"] == "the config gives no role gp"
