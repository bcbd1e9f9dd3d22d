"""Formats (issue 3, "Formats"): JSON and XML both ways; _format, Accept and
Content-Type as the FHIR spec reads them; 406 and 415 where a format is not offered."""

from __future__ import annotations

import orjson
import pytest
from lxml import etree

from tests.server.conftest import Person
from tests.server.fhir_checks import new_patient, new_plan, outcome

FHIR_NS = "{http://hl7.org/fhir}"
XML = "application/fhir+xml"
JSON = "application/fhir+json"


def xml_root(text: bytes) -> etree._Element:
    return etree.fromstring(text, etree.XMLParser(resolve_entities=False, no_network=True))


def without_meta(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k not in ("id", "meta")}


def test_json_is_the_default(custodian, millie: Person):
    r = custodian.get(f"/CarePlan/{millie.plan}")
    assert r.headers["content-type"] == f"{JSON}; charset=utf-8"
    assert r.json()["id"] == millie.plan


@pytest.mark.parametrize(
    "accept", [XML, "application/xml", "text/xml", "application/fhir+xml;q=0.9, text/csv"]
)
def test_accept_asks_for_xml(custodian, millie: Person, accept):
    r = custodian.get(f"/CarePlan/{millie.plan}", headers={"Accept": accept})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(XML)
    root = xml_root(r.content)
    assert root.tag == f"{FHIR_NS}CarePlan"
    assert root.find(f"{FHIR_NS}id").get("value") == millie.plan


@pytest.mark.parametrize("fmt", ["xml", XML, "application/xml"])
def test_format_parameter_asks_for_xml_and_wins_over_accept(custodian, millie: Person, fmt):
    r = custodian.get(f"/CarePlan/{millie.plan}", params={"_format": fmt}, headers={"Accept": JSON})
    assert r.headers["content-type"].startswith(XML)
    assert xml_root(r.content).tag == f"{FHIR_NS}CarePlan"


@pytest.mark.parametrize("fmt", ["json", JSON, "application/json"])
def test_format_parameter_asks_for_json(custodian, millie: Person, fmt):
    r = custodian.get(f"/CarePlan/{millie.plan}", params={"_format": fmt}, headers={"Accept": XML})
    assert r.headers["content-type"].startswith(JSON)
    assert r.json()["id"] == millie.plan


def test_the_preferred_accept_type_by_quality_wins(custodian, millie: Person):
    r = custodian.get(f"/CarePlan/{millie.plan}", headers={"Accept": f"{JSON};q=0.5, {XML};q=0.9"})
    assert r.headers["content-type"].startswith(XML)


def test_a_browser_asking_for_html_gets_json(custodian, millie: Person):
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    r = custodian.get(f"/CarePlan/{millie.plan}", headers={"Accept": accept})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(JSON)


def test_xml_and_json_carry_the_same_care_plan(custodian, millie: Person):
    as_json = custodian.get(f"/CarePlan/{millie.plan}").json()
    as_xml = xml_root(custodian.get(f"/CarePlan/{millie.plan}", params={"_format": "xml"}).content)
    assert as_xml.find(f"{FHIR_NS}title").get("value") == as_json["title"]
    assert as_xml.find(f"{FHIR_NS}subject/{FHIR_NS}reference").get("value") == millie.ref
    tags = [t.find(f"{FHIR_NS}code").get("value") for t in as_xml.iterfind(f"{FHIR_NS}meta/{FHIR_NS}tag")]
    assert tags == [t["code"] for t in as_json["meta"]["tag"]]


def test_a_search_bundle_comes_as_xml_too(custodian, millie: Person):
    r = custodian.get("/Patient", params={"_id": "millie", "_format": "xml"})
    root = xml_root(r.content)
    assert root.tag == f"{FHIR_NS}Bundle"
    assert root.find(f"{FHIR_NS}type").get("value") == "searchset"
    patient = root.find(f"{FHIR_NS}entry/{FHIR_NS}resource/{FHIR_NS}Patient")
    assert patient.find(f"{FHIR_NS}id").get("value") == "millie"


def test_errors_come_in_xml_when_xml_is_asked_for(custodian):
    r = custodian.get("/CarePlan/no-such-plan", headers={"Accept": XML})
    outcome(r, 404, "not known")
    root = xml_root(r.content)
    assert root.tag == f"{FHIR_NS}OperationOutcome"


@pytest.mark.parametrize(
    "path",
    [
        "/CarePlan/millie-daily-activities",
        "/Goal/millie-goal-1",
        "/RiskAssessment/millie-risk",
        "/RelatedPerson/millie-mum",
        "/CareTeam/millie-care-team",
    ],
)
def test_a_resource_sent_back_as_xml_is_stored_exactly_as_its_json(custodian, fresh_patient, path):
    """Round trip: read JSON, read XML, write the XML back (for a fresh patient), compare."""
    original = custodian.get(path).json()
    original = orjson.loads(orjson.dumps(original).replace(b"Patient/millie", fresh_patient.encode()))
    original.pop("id")
    original.pop("partOf", None)  # the copy is no section of Millie's plan
    original["meta"] = {k: v for k, v in original["meta"].items() if k == "tag"}
    # Write the JSON once, so the XML we send back is carebridge's own rendering.
    stored = custodian.post(f"/{original['resourceType']}", json=original).json()
    xml = custodian.get(f"/{original['resourceType']}/{stored['id']}", params={"_format": "xml"}).content
    r = custodian.post(
        f"/{original['resourceType']}", content=xml, headers={"Content-Type": XML, "Accept": JSON}
    )
    assert r.status_code == 201, r.text
    assert without_meta(r.json()) == without_meta(stored)
    assert r.json()["meta"].get("tag") == stored["meta"].get("tag")


def test_a_patient_can_be_created_in_xml_and_read_back_in_json(custodian):
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<Patient xmlns="http://hl7.org/fhir">
  <identifier><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="9990000018"/></identifier>
  <name><family value="Xmlson"/><given value="Ada"/></name>
  <birthDate value="1990-02-03"/>
  <managingOrganization><reference value="Organization/awp-bath-cmht"/></managingOrganization>
</Patient>"""
    r = custodian.post("/Patient", content=xml, headers={"Content-Type": XML})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith(JSON)  # no Accept: the default answer is JSON
    back = custodian.get(f"/Patient/{r.json()['id']}").json()
    assert back["name"] == [{"family": "Xmlson", "given": ["Ada"]}]
    assert back["birthDate"] == "1990-02-03"
    assert back["identifier"][0]["value"] == "9990000018"


def test_content_type_json_variants_are_understood(custodian, fresh_patient):
    body = orjson.dumps(new_plan(fresh_patient))
    for ctype in (JSON, "application/json", "application/fhir+json; charset=utf-8", "application/json+fhir"):
        assert custodian.post("/CarePlan", content=body, headers={"Content-Type": ctype}).status_code == 201


def test_an_unsupported_accept_is_406(custodian, millie: Person):
    r = custodian.get(f"/CarePlan/{millie.plan}", headers={"Accept": "text/csv"})
    outcome(r, 406, "application/fhir+json", "application/fhir+xml")


def test_an_unsupported_format_parameter_is_406(custodian, millie: Person):
    outcome(custodian.get(f"/CarePlan/{millie.plan}", params={"_format": "turtle"}), 406, "json or xml")


def test_a_search_with_an_unsupported_accept_is_406(custodian):
    outcome(custodian.get("/CarePlan", headers={"Accept": "application/pdf"}), 406)


def test_an_unsupported_content_type_is_415_and_nothing_is_stored(custodian):
    family = "Csvson-" + new_patient()["identifier"][0]["value"]
    r = custodian.post("/Patient", content=f"family\n{family}\n", headers={"Content-Type": "text/csv"})
    outcome(r, 415, "application/fhir+json", "application/fhir+xml")
    assert "entry" not in custodian.get("/Patient", params={"family": family}).json()


def test_pretty_printing_is_on_request(custodian, millie: Person):
    compact = custodian.get(f"/CarePlan/{millie.plan}")
    pretty = custodian.get(f"/CarePlan/{millie.plan}", params={"_pretty": "true"})
    assert b"\n" not in compact.content and b"\n" in pretty.content
    assert pretty.json() == compact.json()
