"""batch and transaction Bundles (issue 3): a transaction is atomic and resolves
urn:uuid references; a batch runs each entry on its own; both answer with a response
Bundle whose entries line up with the request's."""

from __future__ import annotations

import uuid

from tests.conftest import uid
from tests.server.conftest import Person
from tests.server.fhir_checks import TEST_IDS, new_patient, new_plan, outcome


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def entry(resource: dict | None, method: str, url: str, full_url: str | None = None, **request) -> dict:
    e: dict = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        e["resource"] = resource
    if full_url:
        e["fullUrl"] = full_url
    return e


def bundle(kind: str, *entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_a_transaction_registers_a_person_with_their_plan_and_sections_in_one_go(live, custodian):
    patient_urn, plan_urn = urn(), urn()
    patient = new_patient()
    sections = [
        new_plan(patient_urn, partOf=[{"reference": plan_urn}], title=title)
        for title in ("About me", "My recovery goals")
    ]
    r = custodian.post(
        "",
        json=bundle(
            "transaction",
            entry(patient, "POST", "Patient", patient_urn),
            entry(new_plan(patient_urn, title="My plan"), "POST", "CarePlan", plan_urn),
            *(entry(s, "POST", "CarePlan", urn()) for s in sections),
        ),
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["resourceType"] == "Bundle" and answer["type"] == "transaction-response"
    assert len(answer["entry"]) == 4
    assert all(e["response"]["status"].startswith("201") for e in answer["entry"])
    pid = answer["entry"][0]["resource"]["id"]
    plan_id = answer["entry"][1]["resource"]["id"]
    for e in answer["entry"]:
        assert e["response"]["location"].startswith(live.base)
        assert e["response"]["etag"] == 'W/"1"'
        assert e["fullUrl"] == f"{live.base}/{e['resource']['resourceType']}/{e['resource']['id']}"
    # every urn:uuid reference now names the server's ids, in the stored resources too
    stored = custodian.get("/CarePlan", params={"part-of": f"CarePlan/{plan_id}"}).json()
    titles = sorted(e["resource"]["title"] for e in stored["entry"])
    assert titles == ["About me", "My recovery goals"]
    for e in stored["entry"]:
        assert e["resource"]["subject"]["reference"] == f"Patient/{pid}"
        assert e["resource"]["partOf"] == [{"reference": f"CarePlan/{plan_id}"}]
    assert "urn:uuid" not in r.text


def test_a_transaction_answers_in_the_order_it_was_asked(custodian, fresh_patient, millie: Person):
    client_id = uid("tx")
    r = custodian.post(
        "",
        json=bundle(
            "transaction",
            entry(None, "GET", f"CarePlan/{millie.plan}"),
            entry(new_plan(fresh_patient, id=client_id), "PUT", f"CarePlan/{client_id}"),
            entry(new_plan(fresh_patient), "POST", "CarePlan"),
            entry(None, "GET", f"CarePlan?patient={fresh_patient}"),
        ),
    )
    assert r.status_code == 200, r.text
    got = r.json()["entry"]
    assert got[0]["resource"]["id"] == millie.plan and got[0]["response"]["status"].startswith("200")
    assert got[1]["resource"]["id"] == client_id and got[1]["response"]["status"].startswith("201")
    assert got[2]["response"]["status"].startswith("201")
    # reads run after the writes of the same transaction
    found = {e["resource"]["id"] for e in got[3]["resource"]["entry"]}
    assert {client_id, got[2]["resource"]["id"]} <= found


def test_a_transaction_is_all_or_nothing(custodian, fresh_patient):
    marker = uid("atomic")
    ident = [{"system": TEST_IDS, "value": marker}]
    r = custodian.post(
        "",
        json=bundle(
            "transaction",
            entry(new_plan(fresh_patient, identifier=ident), "POST", "CarePlan"),
            entry(new_plan(fresh_patient, identifier=ident), "POST", "CarePlan"),
            entry(new_plan(fresh_patient, identifier=ident, intent="wish"), "POST", "CarePlan"),
        ),
    )
    outcome(r, 422, "Bundle.entry[2]", "CarePlan.intent")
    found = custodian.get("/CarePlan", params={"identifier": f"{TEST_IDS}|{marker}"}).json()
    assert "entry" not in found


def test_conditional_create_inside_a_transaction_finds_the_existing_patient(custodian):
    patient = new_patient()
    nhs = patient["identifier"][0]["value"]
    first = custodian.post("/Patient", json=patient).json()
    patient_urn = urn()
    r = custodian.post(
        "",
        json=bundle(
            "transaction",
            entry(
                patient,
                "POST",
                "Patient",
                patient_urn,
                ifNoneExist=f"identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}",
            ),
            entry(new_plan(patient_urn), "POST", "CarePlan"),
        ),
    )
    assert r.status_code == 200, r.text
    got = r.json()["entry"]
    assert got[0]["response"]["status"].startswith("200")
    assert got[0]["resource"]["id"] == first["id"]
    plans = custodian.get("/CarePlan", params={"patient": f"Patient/{first['id']}"}).json()
    assert len(plans["entry"]) == 1


def test_a_transaction_may_not_touch_one_resource_twice(custodian, fresh_patient):
    rid = uid("twice")
    r = custodian.post(
        "",
        json=bundle(
            "transaction",
            entry(new_plan(fresh_patient, id=rid), "PUT", f"CarePlan/{rid}"),
            entry(new_plan(fresh_patient, id=rid, status="completed"), "PUT", f"CarePlan/{rid}"),
        ),
    )
    outcome(r, 400, f"CarePlan/{rid} appears twice")
    outcome(custodian.get(f"/CarePlan/{rid}"), 404)


def test_a_transaction_can_delete_and_update(custodian, fresh_patient):
    gone = custodian.post("/CarePlan", json=new_plan(fresh_patient)).json()
    kept = custodian.post("/CarePlan", json=new_plan(fresh_patient)).json()
    r = custodian.post(
        "",
        json=bundle(
            "transaction",
            entry(None, "DELETE", f"CarePlan/{gone['id']}"),
            entry({**kept, "status": "completed"}, "PUT", f"CarePlan/{kept['id']}", ifMatch='W/"1"'),
        ),
    )
    assert r.status_code == 200, r.text
    outcome(custodian.get(f"/CarePlan/{gone['id']}"), 410)
    assert custodian.get(f"/CarePlan/{kept['id']}").json()["status"] == "completed"


def test_a_batch_runs_each_entry_on_its_own(custodian, fresh_patient):
    good = new_plan(fresh_patient)
    bad = new_plan(fresh_patient, subject={"reference": "Organization/awp"})
    r = custodian.post(
        "",
        json=bundle(
            "batch",
            entry(good, "POST", "CarePlan"),
            entry(bad, "POST", "CarePlan"),
            entry(None, "GET", f"CarePlan/{uid('missing')}"),
        ),
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["type"] == "batch-response"
    first, second, third = answer["entry"]
    assert first["response"]["status"].startswith("201")
    assert second["response"]["status"] == "422"
    assert "Bundle.entry[1]" in second["response"]["outcome"]["issue"][0]["diagnostics"]
    assert "CarePlan.subject" in second["response"]["outcome"]["issue"][0]["diagnostics"]
    assert third["response"]["status"] == "404"
    stored = custodian.get("/CarePlan", params={"patient": fresh_patient}).json()
    assert [e["resource"]["id"] for e in stored["entry"]] == [first["resource"]["id"]]


def test_a_batch_of_reads_answers_each(custodian, millie: Person, richard: Person):
    r = custodian.post(
        "/",
        json=bundle(
            "batch",
            entry(None, "GET", f"CarePlan/{millie.plan}"),
            entry(None, "GET", f"Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{richard.nhs_number}"),
        ),
    )
    got = r.json()["entry"]
    assert got[0]["resource"]["id"] == millie.plan
    assert [e["resource"]["id"] for e in got[1]["resource"]["entry"]] == ["richard"]


def test_a_bundle_that_is_neither_batch_nor_transaction_is_400(custodian):
    outcome(custodian.post("", json=bundle("collection")), 400, "batch or transaction")


def test_an_entry_without_a_request_is_400(custodian, fresh_patient):
    r = custodian.post(
        "",
        json={
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": new_plan(fresh_patient)}],
        },
    )
    outcome(r, 400, "Bundle.entry[0].request needs a method and a url")


def test_something_other_than_a_bundle_at_the_base_is_400(custodian, fresh_patient):
    outcome(custodian.post("", json=new_plan(fresh_patient)), 400, "Bundle")


def test_a_transaction_in_xml_works_too(custodian, fresh_patient):
    pid = fresh_patient.split("/")[1]
    xml = f"""<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/>
      <entry><resource><CarePlan xmlns="http://hl7.org/fhir"><status value="active"/><intent value="plan"/>
        <subject><reference value="Patient/{pid}"/></subject></CarePlan></resource>
        <request><method value="POST"/><url value="CarePlan"/></request></entry></Bundle>"""
    r = custodian.post(
        "",
        content=xml.encode(),
        headers={"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"},
    )
    assert r.status_code == 200, r.text
    assert "<Bundle" in r.text and "transaction-response" in r.text
    assert len(custodian.get("/CarePlan", params={"patient": fresh_patient}).json()["entry"]) == 1
