"""The RESTful interactions (issue 3, "Interactions"), over real sockets on both backends.

read, vread, create with server ids, update, create-on-update with client ids,
conditional create and update, delete then 410, instance and type history (paged),
ETag / If-Match / meta.versionId (never a lost update), Location, Last-Modified and
Prefer: return=minimal|representation|OperationOutcome.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

import httpx

from tests.conftest import LiveServer, uid
from tests.server.conftest import Person
from tests.server.fhir_checks import (
    CUSTODIAN,
    TEST_IDS,
    new_patient,
    new_plan,
    next_link,
    outcome,
    pages,
)


def created(response: httpx.Response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


# -- read and vread ---------------------------------------------------------------------------
def test_the_care_team_reads_millies_care_plan_by_id(custodian, millie: Person):
    r = custodian.get(f"/CarePlan/{millie.plan}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+json")
    plan = r.json()
    assert plan["resourceType"] == "CarePlan"
    assert plan["id"] == millie.plan
    assert plan["subject"]["reference"] == millie.ref
    assert r.headers["ETag"] == f'W/"{plan["meta"]["versionId"]}"'


def test_reading_an_id_that_was_never_written_is_404(custodian):
    outcome(custodian.get(f"/CarePlan/{uid('never')}"), 404, "not known")


def test_vread_returns_each_version_as_it_was(custodian, fresh_patient):
    first = created(custodian.post("/CarePlan", json=new_plan(fresh_patient, title="First words")))
    pid = first["id"]
    r = custodian.put(f"/CarePlan/{pid}", json={**first, "title": "Second words"})
    assert r.status_code == 200
    v1 = custodian.get(f"/CarePlan/{pid}/_history/1")
    v2 = custodian.get(f"/CarePlan/{pid}/_history/2")
    assert (v1.status_code, v2.status_code) == (200, 200)
    assert v1.json()["title"] == "First words" and v1.json()["meta"]["versionId"] == "1"
    assert v2.json()["title"] == "Second words" and v2.json()["meta"]["versionId"] == "2"
    assert v1.headers["ETag"] == 'W/"1"'
    outcome(custodian.get(f"/CarePlan/{pid}/_history/3"), 404, "no version 3")
    outcome(custodian.get(f"/CarePlan/{pid}/_history/latest"), 400, "version id must be a number")


# -- create -------------------------------------------------------------------------------------
def test_create_assigns_a_server_id_and_says_where_it_is(live: LiveServer, custodian, fresh_patient):
    body = new_plan(fresh_patient, id="client-chose-this")  # a POSTed id is not the id
    r = custodian.post("/CarePlan", json=body)
    plan = created(r)
    assert plan["id"] != "client-chose-this"
    assert plan["meta"]["versionId"] == "1"
    assert r.headers["Location"] == f"{live.base}/CarePlan/{plan['id']}/_history/1"
    assert r.headers["ETag"] == 'W/"1"'
    assert custodian.get(f"/CarePlan/{plan['id']}").json() == plan


def test_two_creates_get_two_different_ids(custodian, fresh_patient):
    a = created(custodian.post("/CarePlan", json=new_plan(fresh_patient)))
    b = created(custodian.post("/CarePlan", json=new_plan(fresh_patient)))
    assert a["id"] != b["id"]


def test_last_modified_is_the_http_date_of_meta_last_updated(custodian, fresh_patient):
    r = custodian.post("/CarePlan", json=new_plan(fresh_patient))
    plan = created(r)
    sent = parsedate_to_datetime(r.headers["Last-Modified"])
    stamp = plan["meta"]["lastUpdated"]
    assert sent.strftime("%Y-%m-%dT%H:%M:%S") == stamp[:19]
    read = custodian.get(f"/CarePlan/{plan['id']}")
    assert read.headers["Last-Modified"] == r.headers["Last-Modified"]


# -- update -------------------------------------------------------------------------------------
def test_update_makes_a_new_version_and_keeps_the_old_one(live, custodian, fresh_patient):
    plan = created(custodian.post("/CarePlan", json=new_plan(fresh_patient)))
    r = custodian.put(f"/CarePlan/{plan['id']}", json={**plan, "status": "completed"})
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "2"
    assert r.json()["status"] == "completed"
    assert r.headers["ETag"] == 'W/"2"'
    assert r.headers["Location"] == f"{live.base}/CarePlan/{plan['id']}/_history/2"
    assert custodian.get(f"/CarePlan/{plan['id']}/_history/1").json()["status"] == "active"


def test_update_with_a_client_id_creates_the_resource_there(live, custodian, fresh_patient):
    rid = uid("client-id")
    r = custodian.put(f"/CarePlan/{rid}", json=new_plan(fresh_patient, id=rid))
    assert r.status_code == 201, r.text
    assert r.json()["id"] == rid
    assert r.headers["Location"] == f"{live.base}/CarePlan/{rid}/_history/1"
    assert custodian.get(f"/CarePlan/{rid}").status_code == 200


def test_an_id_that_is_not_a_fhir_id_is_refused(custodian, fresh_patient):
    rid = "not_valid!" + "x" * 70
    r = custodian.put(f"/CarePlan/{rid}", json=new_plan(fresh_patient, id=rid))
    outcome(r, 400, "CarePlan.id")


# -- conditional create and update ------------------------------------------------------------------
def test_conditional_create_does_not_duplicate_a_patient_already_registered(custodian):
    body = new_patient()
    nhs = body["identifier"][0]["value"]
    criteria = f"identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}"
    first = custodian.post("/Patient", json=body, headers={"If-None-Exist": criteria})
    again = custodian.post("/Patient", json=body, headers={"If-None-Exist": criteria})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    found = custodian.get("/Patient", params={"identifier": f"https://fhir.nhs.uk/Id/nhs-number|{nhs}"})
    assert len(found.json()["entry"]) == 1


def test_conditional_create_matching_two_resources_is_412(custodian, fresh_patient):
    tag = uid("dup")
    for _ in range(2):
        created(
            custodian.post(
                "/CarePlan", json=new_plan(fresh_patient, identifier=[{"system": TEST_IDS, "value": tag}])
            )
        )
    r = custodian.post(
        "/CarePlan", json=new_plan(fresh_patient), headers={"If-None-Exist": f"identifier={TEST_IDS}|{tag}"}
    )
    outcome(r, 412, "matches 2")


def test_conditional_update_by_identifier_updates_the_one_it_finds(custodian, fresh_patient):
    key = uid("cu")
    ident = [{"system": TEST_IDS, "value": key}]
    plan = created(custodian.post("/CarePlan", json=new_plan(fresh_patient, identifier=ident)))
    r = custodian.put(
        "/CarePlan",
        params={"identifier": f"{TEST_IDS}|{key}"},
        json=new_plan(fresh_patient, identifier=ident, status="completed"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == plan["id"]
    assert r.json()["meta"]["versionId"] == "2"
    assert custodian.get(f"/CarePlan/{plan['id']}").json()["status"] == "completed"


def test_conditional_update_that_finds_nothing_creates(custodian, fresh_patient):
    key = uid("cu-new")
    ident = [{"system": TEST_IDS, "value": key}]
    r = custodian.put(
        "/CarePlan",
        params={"identifier": f"{TEST_IDS}|{key}"},
        json=new_plan(fresh_patient, identifier=ident),
    )
    assert r.status_code == 201, r.text
    assert "Location" in r.headers
    found = custodian.get("/CarePlan", params={"identifier": f"{TEST_IDS}|{key}"}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [r.json()["id"]]


def test_conditional_update_without_criteria_or_id_is_refused(custodian, fresh_patient):
    outcome(custodian.put("/CarePlan", json=new_plan(fresh_patient)), 405, "needs an id")


# -- delete -------------------------------------------------------------------------------------
def test_a_deleted_care_plan_is_gone_410_but_its_history_remains(custodian, fresh_patient):
    plan = created(custodian.post("/CarePlan", json=new_plan(fresh_patient)))
    r = custodian.delete(f"/CarePlan/{plan['id']}")
    assert r.status_code == 200
    assert r.json()["resourceType"] == "OperationOutcome"
    outcome(custodian.get(f"/CarePlan/{plan['id']}"), 410, "deleted")
    assert custodian.get(f"/CarePlan/{plan['id']}/_history/1").status_code == 200
    outcome(custodian.get(f"/CarePlan/{plan['id']}/_history/2"), 410, "deletion")
    history = custodian.get(f"/CarePlan/{plan['id']}/_history").json()
    assert [e["response"]["status"] for e in history["entry"]] == ["410 Gone", "201 Created"]
    assert "resource" not in history["entry"][0]
    # ... and it is no longer found by search
    found = custodian.get("/CarePlan", params={"patient": fresh_patient}).json()
    assert plan["id"] not in [e["resource"]["id"] for e in found.get("entry", [])]


def test_deleting_twice_is_harmless(custodian, fresh_patient):
    plan = created(custodian.post("/CarePlan", json=new_plan(fresh_patient)))
    assert custodian.delete(f"/CarePlan/{plan['id']}").status_code == 200
    again = custodian.delete(f"/CarePlan/{plan['id']}")
    assert again.status_code == 200
    assert "nothing deleted" in again.json()["issue"][0]["diagnostics"]


def test_a_deleted_resource_can_be_brought_back_by_update(custodian, fresh_patient):
    plan = created(custodian.post("/CarePlan", json=new_plan(fresh_patient)))
    custodian.delete(f"/CarePlan/{plan['id']}")
    r = custodian.put(f"/CarePlan/{plan['id']}", json={**plan, "meta": {}})
    assert r.status_code == 201, r.text
    assert r.json()["meta"]["versionId"] == "3"
    assert custodian.get(f"/CarePlan/{plan['id']}").status_code == 200


def test_deleting_a_patient_leaves_the_care_team_able_to_see_the_rest_of_the_record(custodian):
    pid = created(custodian.post("/Patient", json=new_patient()))["id"]
    plan = created(custodian.post("/CarePlan", json=new_plan(f"Patient/{pid}")))
    assert custodian.delete(f"/Patient/{pid}").status_code == 200
    outcome(custodian.get(f"/Patient/{pid}"), 410, "deleted")
    assert custodian.get(f"/CarePlan/{plan['id']}").status_code == 200


# -- history ------------------------------------------------------------------------------------
def test_instance_history_lists_every_version_newest_first_across_pages(custodian, fresh_patient):
    plan = created(custodian.post("/CarePlan", json=new_plan(fresh_patient, title="v1")))
    for n in range(2, 6):
        r = custodian.put(f"/CarePlan/{plan['id']}", json={**plan, "meta": {}, "title": f"v{n}"})
        assert r.status_code == 200
    seen = []
    for page in pages(custodian, f"/CarePlan/{plan['id']}/_history", {"_count": 2}):
        assert page["type"] == "history"
        assert len(page.get("entry", [])) <= 2
        seen += [e["resource"]["title"] for e in page.get("entry", [])]
    assert seen == ["v5", "v4", "v3", "v2", "v1"]


def test_type_history_pages_through_every_change_since_a_moment(custodian):
    first = created(custodian.post("/Patient", json=new_patient()))
    since = first["meta"]["lastUpdated"]
    second = created(custodian.post("/Patient", json=new_patient()))
    custodian.put(f"/Patient/{first['id']}", json={**first, "gender": "female"})
    changes = []
    for page in pages(custodian, "/Patient/_history", {"_since": since, "_count": 1}):
        changes += [(e["resource"]["id"], e["resource"]["meta"]["versionId"]) for e in page.get("entry", [])]
    assert changes == [(first["id"], "2"), (second["id"], "1"), (first["id"], "1")]


def test_history_refuses_parameters_it_does_not_take(custodian, millie: Person):
    outcome(custodian.get(f"/CarePlan/{millie.plan}/_history", params={"colour": "red"}), 400, "_count")


def test_history_of_an_unknown_resource_is_404(custodian):
    outcome(custodian.get(f"/CarePlan/{uid('nope')}/_history"), 404)


# -- versions: ETag, If-Match, meta.versionId ------------------------------------------------------
def test_if_match_with_the_current_etag_updates(custodian, fresh_patient):
    r = custodian.post("/CarePlan", json=new_plan(fresh_patient))
    plan = created(r)
    etag = r.headers["ETag"]
    ok = custodian.put(f"/CarePlan/{plan['id']}", json={**plan, "title": "mine"}, headers={"If-Match": etag})
    assert ok.status_code == 200


def test_a_stale_if_match_is_412_and_the_newer_change_survives(custodian, fresh_patient):
    plan = created(custodian.post("/CarePlan", json=new_plan(fresh_patient)))
    first = custodian.put(
        f"/CarePlan/{plan['id']}",
        json={**plan, "meta": {}, "title": "Sam's edit"},
        headers={"If-Match": 'W/"1"'},
    )
    assert first.status_code == 200
    late = custodian.put(
        f"/CarePlan/{plan['id']}",
        json={**plan, "meta": {}, "title": "John's edit"},
        headers={"If-Match": 'W/"1"'},
    )
    outcome(late, 412, "version 1", "read it again")
    assert custodian.get(f"/CarePlan/{plan['id']}").json()["title"] == "Sam's edit"


def test_a_stale_meta_version_id_is_409_never_a_lost_update(custodian, fresh_patient):
    plan = created(custodian.post("/CarePlan", json=new_plan(fresh_patient)))  # meta.versionId "1"
    assert custodian.put(f"/CarePlan/{plan['id']}", json={**plan, "title": "first"}).status_code == 200
    stale = custodian.put(f"/CarePlan/{plan['id']}", json={**plan, "title": "second"})
    outcome(stale, 409, "version conflict")
    assert custodian.get(f"/CarePlan/{plan['id']}").json()["title"] == "first"


def test_concurrent_updates_of_one_version_let_exactly_one_through(live, fresh_patient, custodian):
    plan = created(custodian.post("/CarePlan", json=new_plan(fresh_patient)))

    def edit(n: int) -> int:
        with live.client(CUSTODIAN) as c:
            body = {**plan, "meta": {}, "title": f"edit {n}"}
            return c.put(f"/CarePlan/{plan['id']}", json=body, headers={"If-Match": 'W/"1"'}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(edit, range(8)))
    assert statuses.count(200) == 1
    assert all(s in (409, 412) for s in statuses if s != 200)
    final = custodian.get(f"/CarePlan/{plan['id']}").json()
    assert final["meta"]["versionId"] == "2"
    assert final["title"] == f"edit {statuses.index(200)}"


def test_if_match_on_delete_protects_a_newer_version(custodian, fresh_patient):
    plan = created(custodian.post("/CarePlan", json=new_plan(fresh_patient)))
    custodian.put(f"/CarePlan/{plan['id']}", json={**plan, "meta": {}, "title": "changed"})
    outcome(custodian.delete(f"/CarePlan/{plan['id']}", headers={"If-Match": 'W/"1"'}), 412, "version 1")
    assert custodian.get(f"/CarePlan/{plan['id']}").status_code == 200


def test_an_if_match_that_is_not_an_etag_is_400(custodian, millie: Person):
    r = custodian.put(f"/CarePlan/{millie.plan}", json={}, headers={"If-Match": "yesterday"})
    outcome(r, 400, "If-Match must be an ETag")


# -- Prefer: return=... ----------------------------------------------------------------------------
def test_prefer_return_minimal_sends_no_body_but_says_where(live, custodian, fresh_patient):
    r = custodian.post("/CarePlan", json=new_plan(fresh_patient), headers={"Prefer": "return=minimal"})
    assert r.status_code == 201
    assert r.content == b""
    assert r.headers["Location"].startswith(f"{live.base}/CarePlan/")
    assert r.headers["ETag"] == 'W/"1"'


def test_prefer_return_representation_sends_the_stored_resource(custodian, fresh_patient):
    r = custodian.post("/CarePlan", json=new_plan(fresh_patient), headers={"Prefer": "return=representation"})
    plan = created(r)
    assert plan["meta"]["versionId"] == "1"
    assert custodian.get(f"/CarePlan/{plan['id']}").json() == plan


def test_prefer_return_operation_outcome_says_what_happened(custodian, fresh_patient):
    r = custodian.post(
        "/CarePlan", json=new_plan(fresh_patient), headers={"Prefer": "return=OperationOutcome"}
    )
    assert r.status_code == 201
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert "created" in body["issue"][0]["diagnostics"]
    rid = r.headers["Location"].split("/CarePlan/")[1].split("/")[0]
    assert rid in body["issue"][0]["diagnostics"]
    upd = custodian.put(
        f"/CarePlan/{rid}",
        json=new_plan(fresh_patient, id=rid),
        headers={"Prefer": "return=OperationOutcome"},
    )
    assert upd.status_code == 200
    assert "updated" in upd.json()["issue"][0]["diagnostics"]


def test_history_next_links_are_cursors_not_offsets(custodian, fresh_patient):
    plan = created(custodian.post("/CarePlan", json=new_plan(fresh_patient)))
    for n in range(3):
        custodian.put(f"/CarePlan/{plan['id']}", json={**plan, "meta": {}, "title": str(n)})
    page = custodian.get(f"/CarePlan/{plan['id']}/_history", params={"_count": 2}).json()
    link = next_link(page)
    assert link is not None and "_cursor=" in link
    assert "offset" not in link.lower() and "_page" not in link
