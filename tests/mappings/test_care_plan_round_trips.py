"""Local -> FHIR -> local gives back what went in, for JSON, XML and CSV; and the FHIR
in the middle is the CarePlan family of CONTRACTS.md section 3."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from lxml import etree
from plan_world import CUSTODIAN, EXAMPLES, SCHEMAS, SEED_PEOPLE, fhir_family, fresh_person, golden

from carebridge.mappings.demo_world import build_demo_world
from carebridge.mappings.plan_codes import RECORD_SYSTEM
from carebridge.mappings.plan_csv import read_caseload, write_caseload
from carebridge.mappings.plan_document import check_document
from carebridge.mappings.plan_from_fhir import family_to_document
from carebridge.mappings.plan_to_fhir import document_parts
from carebridge.mappings.plan_xml import read_xml, write_xml
from carebridge.mappings.vocabulary import CPA_CARE_PLAN, MENTAL_HEALTH_CARE_PLAN, PLAN_CODE, SECTION_SYSTEM


def section_tags(resource: dict) -> list[str]:
    return [t["code"] for t in resource.get("meta", {}).get("tag", []) if t["system"] == SECTION_SYSTEM]


@pytest.mark.parametrize("name", SEED_PEOPLE)
def test_json_to_fhir_and_back_gives_the_same_document(name: str) -> None:
    doc = golden(name)
    assert family_to_document(fhir_family(doc)) == doc


@pytest.mark.parametrize("name", SEED_PEOPLE)
def test_xml_to_fhir_and_back_gives_the_same_xml(name: str) -> None:
    xml = write_xml([golden(name)])
    (record,) = read_xml(xml)
    checked, errors = check_document(record.data)
    assert errors == []
    assert write_xml([family_to_document(fhir_family(checked))]) == xml


def test_the_xml_examples_match_the_xsd_and_hold_the_same_plans_as_the_json_ones() -> None:
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "care-plan-document.xsd")))
    read = []
    for path in sorted((EXAMPLES / "xml").glob("*.xml")):
        assert schema.validate(etree.parse(str(path))), schema.error_log.last_error
        read += [check_document(r.data)[0] for r in read_xml(path.read_bytes())]
    assert sorted(read, key=lambda d: d["person"]["nhsNumber"]) == sorted(
        (golden(n) for n in SEED_PEOPLE), key=lambda d: d["person"]["nhsNumber"]
    )


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_to_fhir_and_back_gives_the_same_rows() -> None:
    caseload = (EXAMPLES / "csv" / "caseload.csv").read_bytes()
    sections = (EXAMPLES / "csv" / "sections.csv").read_bytes()
    records = read_caseload("caseload.csv", caseload, [("sections.csv", sections)])
    assert [r.errors for r in records] == [[]] * 7
    back = [family_to_document(fhir_family(check_document(r.data)[0])) for r in records]
    out_caseload, out_sections = write_caseload(back)
    assert rows(out_caseload) == rows(caseload.decode())
    assert rows(out_sections) == rows(sections.decode())


def test_one_person_maps_to_the_whole_care_plan_family() -> None:
    millie = golden("millie")
    family = fhir_family(millie)
    kinds = [r["resourceType"] for r in family]
    (parent,) = [r for r in family if r["resourceType"] == "CarePlan" and section_tags(r) == [PLAN_CODE]]
    sections = [r for r in family if r["resourceType"] == "CarePlan" and r is not parent]
    assert kinds.count("Patient") == 1 and kinds.count("CareTeam") == 1 and kinds.count("RiskAssessment") == 1
    assert kinds.count("Goal") == 4  # her four goals, in her own words
    assert {section_tags(s)[0] for s in sections} == set(millie["sections"])
    assert all(s["partOf"] == [{"reference": f"CarePlan/{parent['id']}"}] for s in sections)
    assert {"coding": [MENTAL_HEALTH_CARE_PLAN]} in parent["category"]
    assert {"coding": [CPA_CARE_PLAN]} in parent["category"]
    for r in family:
        if r["resourceType"] in ("CarePlan", "Goal", "CareTeam", "RelatedPerson", "RiskAssessment"):
            assert len(section_tags(r)) == 1, r["resourceType"]
            assert r["identifier"][0]["system"] == RECORD_SYSTEM
    goal = next(r for r in family if r["resourceType"] == "Goal")
    assert goal["description"]["text"] == millie["sections"]["recovery-goals"]["goals"][0]["words"]
    assert goal["target"][0]["measure"]["text"] == "Recovery Star: Physical health and self-care"
    assert goal["target"][0]["detailInteger"] == 7


def test_the_same_document_always_maps_to_the_same_parts() -> None:
    # What lets a re-import see that nothing changed: no clocks, no randomness.
    checked, _ = check_document(fresh_person())
    assert document_parts(checked, CUSTODIAN) == document_parts(checked, CUSTODIAN)


def test_the_demo_worlds_plans_read_back_as_documents_with_the_seed_peoples_words() -> None:
    world = build_demo_world(date(2025, 3, 12))
    staff = [r for r in world.resources if r["resourceType"] in ("Practitioner", "PractitionerRole")]
    hers = [r for r in world.resources if "Patient/millie" in json.dumps(r)]
    millie = [world.get("Patient/millie"), *staff, *hers]
    doc = family_to_document(millie)
    assert doc["person"]["nhsNumber"] == "9991000011"
    sam = {"name": "Sam Patel", "role": "Care coordinator", "phone": "01632 960101"}
    assert doc["plan"]["coordinator"] == sam
    assert doc["sections"]["about-me"]["text"] == golden("millie")["sections"]["about-me"]["text"]
    assert [g["words"] for g in doc["sections"]["recovery-goals"]["goals"]] == [
        g["words"] for g in golden("millie")["sections"]["recovery-goals"]["goals"]
    ]
    assert "transfer" not in doc["sections"]  # written by $plan-transfer, never exported as a heading
