"""testreport.json: a FHIR R4 Bundle (collection) of one TestReport per script."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from carebridge.conformance import extensions
from carebridge.conformance.results import ActionResult, ScriptResult

ENGINE_URI = "https://carebridge.example/conformance"
# TestReport action results are pass | skip | fail | warning | error: the same words.


def report_for(r: ScriptResult) -> dict:
    report: dict = {
        "resourceType": "TestReport",
        "id": uuid.uuid4().hex,
        "name": r.title,
        "status": "stopped" if r.not_applicable else "completed",
        "testScript": {"reference": r.url or f"TestScript/{r.id}", "display": r.title},
        "result": {"pass": "pass", "fail": "fail", "skip": "pending"}[r.result],
        "tester": "carebridge conformance",
        "issued": r.issued or datetime.now(UTC).isoformat(timespec="seconds"),
        "participant": [
            {"type": "test-engine", "uri": ENGINE_URI, "display": "carebridge TestScript engine"},
            {"type": "server", "uri": r.base_url or "http://unknown"},
        ],
    }
    if r.not_applicable:
        report["extension"] = [{"url": extensions.NOT_APPLICABLE, "valueString": r.not_applicable}]
        return report
    if r.tests:
        passed = sum(1 for t in r.tests if t.result == "pass")
        report["score"] = round(100.0 * passed / len(r.tests), 1)
    if r.setup:
        report["setup"] = {"action": [_action(a) for a in r.setup]}
    tests = []
    for t in r.tests:
        entry: dict = {"name": t.name, "action": [_action(a) for a in t.actions]}
        if t.description or t.rule:
            entry["description"] = " ".join(x for x in (t.rule and f"[{t.rule}]", t.description) if x)
        tests.append(entry)
    if tests:
        report["test"] = tests
    teardown = [{"operation": _result(a)} for a in r.teardown if a.kind == "operation"]
    if teardown:
        report["teardown"] = {"action": teardown}
    return report


def _action(a: ActionResult) -> dict:
    return {"operation" if a.kind == "operation" else "assert": _result(a)}


def _result(a: ActionResult) -> dict:
    out = {"result": a.result}
    message = " ".join(x for x in (a.description, a.message and f"({a.message})") if x)
    if message:
        out["message"] = message
    return out


def bundle(results: list[ScriptResult]) -> dict:
    return {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "type": "collection",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "entry": [
            {"fullUrl": f"urn:uuid:{rep['id']}", "resource": rep} for rep in (report_for(r) for r in results)
        ],
    }
