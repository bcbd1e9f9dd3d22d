"""The care-plan model over HTTP: the published profiles and terminology are served
read-only and used by $validate; `carebridge map import|export --base-url` talk to a
running server like any partner. These tests import plans, so they run on a demo server
of their own (searches in other tests count the demo world's plans)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from plan_world import fhir_family, fresh_person, golden
from typer.testing import CliRunner

from carebridge.mappings.plan_codes import PROFILES, RECORD_SYSTEM
from carebridge.mappings.vocabulary import SECTION_SYSTEM
from carebridge.server.cli import app
from tests.conftest import LiveServer, own_server

CUSTODIAN = "awp-bath-cmht"
VOLUNTARY = "bath-mind"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with own_server(request.param, tmp_path_factory) as srv:
        yield srv


def cli(live: LiveServer, partner: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--base-url", live.base, "--token", live.tokens[partner]])
    return result.exit_code, result.output


def test_the_published_profiles_and_terminology_are_served_to_any_partner(live: LiveServer) -> None:
    with live.client(VOLUNTARY) as bath_mind:
        found = bath_mind.get(
            "/StructureDefinition", params={"type": "CarePlan", "_total": "accurate"}
        ).json()
        codes = bath_mind.get("/CodeSystem/care-plan-section")
        as_xml = bath_mind.get("/ValueSet/care-plan-section", headers={"Accept": "application/fhir+xml"})
        by_url = bath_mind.get("/StructureDefinition", params={"url": PROFILES["Goal"]}).json()
    assert found["total"] == 2  # the parent plan and its sections
    assert {e["resource"]["url"] for e in found["entry"]} == {PROFILES["plan"], PROFILES["section"]}
    assert codes.status_code == 200 and codes.json()["url"] == SECTION_SYSTEM
    assert as_xml.status_code == 200 and b"<ValueSet" in as_xml.content
    assert [e["resource"]["id"] for e in by_url["entry"]] == ["carebridge-recovery-goal"]


def test_the_published_model_is_read_only_even_for_a_trust(live: LiveServer) -> None:
    with live.client(CUSTODIAN) as trust:
        vs = trust.get("/ValueSet/care-plan-section").json()
        put = trust.put("/ValueSet/care-plan-section", json={**vs, "status": "retired"})
        post = trust.post(
            "/CodeSystem", json={"resourceType": "CodeSystem", "status": "draft", "content": "complete"}
        )
        delete = trust.delete("/StructureDefinition/carebridge-care-plan")
        sneaky = trust.post(
            "",
            json={
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {**vs, "status": "retired"},
                        "request": {"method": "PUT", "url": f"ValueSet/{vs['id']}"},
                    }
                ],
            },
        )
        capability = trust.get("/metadata").json()
        after = trust.get("/ValueSet/care-plan-section").json()
    assert (put.status_code, post.status_code, delete.status_code) == (405, 405, 405)
    assert sneaky.status_code == 405
    assert after["status"] == "active"
    served = {r["type"]: r for r in capability["rest"][0]["resource"]}
    assert [i["code"] for i in served["StructureDefinition"]["interaction"]] == ["read", "search-type"]


def test_validate_checks_a_resource_against_the_published_profiles(live: LiveServer) -> None:
    section = next(r for r in fhir_family(golden("jenny")) if r.get("title") == "About me")
    broken = copy.deepcopy(section)
    broken["meta"]["tag"] = [{"system": SECTION_SYSTEM, "code": "hobbies"}]
    broken.pop("partOf")
    with live.client(CUSTODIAN) as trust:
        good = trust.post("/CarePlan/$validate", json=section)
        bad = trust.post("/CarePlan/$validate", json=broken)
        asked = trust.post(
            "/$validate",
            json={
                "resourceType": "Parameters",
                "parameter": [
                    {
                        "name": "resource",
                        "resource": {
                            "resourceType": "Consent",
                            "status": "active",
                            "scope": {"text": "x"},
                            "category": [{"text": "consent"}],
                        },
                    },
                    {"name": "profile", "valueUri": PROFILES["Consent"]},
                ],
            },
        )
    assert good.status_code == 200, good.text
    assert bad.status_code == 422
    problems = [i["diagnostics"] for i in bad.json()["issue"]]
    assert "CarePlan.partOf is required here (at least 1), but is missing" in problems
    assert any("'hobbies' is not a code of" in p for p in problems)
    assert asked.status_code == 422
    assert any(i["diagnostics"].startswith("cb-consent-1:") for i in asked.json()["issue"])


def test_import_and_export_over_http_as_the_custodian(live: LiveServer, tmp_path: Path) -> None:
    doc = fresh_person("zoe")
    nhs = doc["person"]["nhsNumber"]
    path = tmp_path / "zoe.json"
    path.write_text(json.dumps(doc))

    code, output = cli(live, CUSTODIAN, "map", "import", str(path))
    assert code == 0, output
    assert "│       1 │       0 │         0 │      0 │" in output
    code, output = cli(live, CUSTODIAN, "map", "import", str(path))
    assert "│       0 │       0 │         1 │      0 │" in output  # re-running: unchanged

    with live.client(CUSTODIAN) as trust:
        (person,) = trust.get(
            "/Patient", params={"identifier": f"https://fhir.nhs.uk/Id/nhs-number|{nhs}"}
        ).json()["entry"]
        plans = trust.get("/CarePlan", params={"patient": person["resource"]["id"], "_count": 50}).json()
    assert {e["resource"]["identifier"][0]["value"] for e in plans["entry"]} == {
        f"{nhs}/plan",
        *(f"{nhs}/section/{code}" for code in doc["sections"]),
    }
    assert all(e["resource"]["identifier"][0]["system"] == RECORD_SYSTEM for e in plans["entry"])

    result = CliRunner().invoke(
        app,
        [
            "map",
            "export",
            "--patient",
            nhs,
            "--format",
            "json",
            "--base-url",
            live.base,
            "--token",
            live.tokens[CUSTODIAN],
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == doc


def test_a_partner_without_the_persons_consent_cannot_export_their_plan(
    live: LiveServer, tmp_path: Path
) -> None:
    doc = fresh_person("jenny")
    path = tmp_path / "jenny.json"
    path.write_text(json.dumps(doc))
    assert cli(live, CUSTODIAN, "map", "import", str(path))[0] == 0
    result = CliRunner().invoke(
        app,
        [
            "map",
            "export",
            "--patient",
            doc["person"]["nhsNumber"],
            "--format",
            "html",
            "--base-url",
            live.base,
            "--token",
            live.tokens[VOLUNTARY],
        ],
    )
    assert result.exit_code == 1
    assert result.stdout == ""
