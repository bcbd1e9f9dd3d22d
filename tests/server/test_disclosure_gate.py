"""The disclosure choke point, deny-by-default from day one (issue 3; CONTRACTS.md 4.1, 4.7, 4.8).

The custodian trust (and the trust it is part of) sees everything of its patients; the
person's own app sees their record; everyone else sees only what consent permits. A
resource someone may not see does not exist for them: read is the same 404 as a missing
id, and search, _include, _revinclude, history, transaction responses and totals leave
it out. Writers cannot reach, or learn of, what they may not see either.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import LiveServer, uid
from tests.server.conftest import Person
from tests.server.fhir_checks import (
    BATH_MIND,
    GP,
    ICR,
    SERVICE_B,
    TEST_IDS,
    ids,
    new_plan,
    outcome,
    pages,
    refs,
    search_all,
)

REDACTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "REDACTED"}


def same_as_missing(client: httpx.Client, path: str) -> None:
    """`path` answers exactly as a path to an id that was never written does."""
    rid = path.rsplit("/", 1)[1]
    missing_id = uid("missing")
    hidden = client.get(path)
    missing = client.get(path.replace(rid, missing_id))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text.replace(rid, "ID") == missing.text.replace(missing_id, "ID")
    assert set(hidden.headers) - {"date"} == set(missing.headers) - {"date"}
    assert "ETag" not in hidden.headers


# -- who sees Millie's record ------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["custodian", "trust", "millie_app"])
def test_millies_care_team_her_trust_and_millie_herself_see_her_risk_assessment(request, who, millie: Person):
    client = request.getfixturevalue(who)
    for path in (
        "/RiskAssessment/millie-risk",
        "/CarePlan/millie-risk-assessment",
        "/CarePlan/millie-crisis-plan",
    ):
        r = client.get(path)
        assert r.status_code == 200, (who, path)
        assert REDACTED not in r.json()["meta"].get("security", [])


def test_millies_own_app_sees_only_millie(millie_app, richard: Person):
    same_as_missing(millie_app, f"/CarePlan/{richard.plan}")
    assert ids(millie_app.get("/Patient", params={"_count": 100}).json()) == ["millie"]


def test_service_b_sees_millie_because_she_agreed_but_not_richard(service_b, millie: Person, richard: Person):
    assert service_b.get(f"/CarePlan/{millie.plan}").status_code == 200
    assert service_b.get("/RiskAssessment/millie-risk").status_code == 200
    same_as_missing(service_b, f"/CarePlan/{richard.plan}")
    same_as_missing(service_b, "/Patient/richard")


def test_a_gp_cannot_read_millies_risk_assessment_it_is_as_if_it_did_not_exist(gp):
    same_as_missing(gp, "/RiskAssessment/millie-risk")
    same_as_missing(gp, "/CarePlan/millie-risk-assessment")
    same_as_missing(gp, "/Patient/millie")


def test_a_gp_cannot_read_an_old_version_of_millies_plan_either(gp, millie: Person):
    hidden = gp.get(f"/CarePlan/{millie.plan}/_history/1")
    missing = gp.get(f"/CarePlan/{uid('missing')}/_history/1")
    assert hidden.status_code == missing.status_code == 404


def test_a_voluntary_organisation_sees_millies_plan_but_not_her_risks(bath_mind, millie: Person):
    assert bath_mind.get(f"/CarePlan/{millie.plan}").status_code == 200
    assert bath_mind.get("/CarePlan/millie-about-me").status_code == 200
    same_as_missing(bath_mind, "/CarePlan/millie-crisis-plan")
    same_as_missing(bath_mind, "/RiskAssessment/millie-risk")


# -- deny by default ---------------------------------------------------------------------------------
@pytest.mark.parametrize("partner", [GP, BATH_MIND, ICR, SERVICE_B])
def test_a_person_who_has_consented_to_nothing_is_seen_only_by_their_care_team(
    live: LiveServer, custodian, fresh_patient, partner
):
    plan = custodian.post("/CarePlan", json=new_plan(fresh_patient)).json()
    assert custodian.get(f"/CarePlan/{plan['id']}").status_code == 200
    with live.client(partner) as other:
        same_as_missing(other, f"/CarePlan/{plan['id']}")
        same_as_missing(other, f"/{fresh_patient}")
        found = other.get("/CarePlan", params={"patient": fresh_patient, "_total": "accurate"}).json()
        assert found["total"] == 0 and "entry" not in found
        outcome(other.get(f"/CarePlan/{plan['id']}/_history"), 404)


# -- search, includes, totals ---------------------------------------------------------------------------
def test_a_gp_searching_millies_plan_finds_only_what_she_lets_her_gp_know(gp, millie: Person):
    found = gp.get("/CarePlan", params={"patient": "millie", "_total": "accurate"}).json()
    assert ids(found) == ["millie-transfer-section"]  # news of her move between services
    assert found["total"] == 1
    counted = gp.get("/CarePlan", params={"patient": "millie", "_summary": "count"}).json()
    assert counted["total"] == 1
    assert gp.get("/RiskAssessment", params={"_summary": "count"}).json()["total"] == 0


def test_a_disclosed_section_loses_its_links_to_what_the_gp_may_not_see(gp, millie: Person):
    section = gp.get("/CarePlan/millie-transfer-section").json()
    assert REDACTED in section["meta"]["security"]
    text = str(section)
    assert "Patient/millie" not in text and f"CarePlan/{millie.plan}" not in text


def test_totals_count_only_what_is_disclosed(live, custodian, bath_mind, millie: Person):
    theirs = search_all(bath_mind, "/CarePlan", {"patient": "millie", "_count": 4})
    total = bath_mind.get("/CarePlan", params={"patient": "millie", "_total": "accurate"}).json()["total"]
    everything = custodian.get("/CarePlan", params={"patient": "millie", "_total": "accurate"}).json()[
        "total"
    ]
    assert total == len(theirs) == len(set(theirs))
    assert total < everything
    assert "millie-risk-assessment" not in theirs and "millie-crisis-plan" not in theirs


def test_pages_are_full_even_when_hidden_sections_fall_between_them(bath_mind):
    sizes = [
        len(p.get("entry", [])) for p in pages(bath_mind, "/CarePlan", {"patient": "millie", "_count": 3})
    ]
    assert all(size == 3 for size in sizes[:-1])


def test_include_never_brings_what_the_gp_may_not_see(gp, millie: Person):
    found = gp.get(
        "/CarePlan",
        params={"_id": "millie-transfer-section", "_include": ["CarePlan:part-of", "CarePlan:patient"]},
    ).json()
    assert refs(found) == ["CarePlan/millie-transfer-section"]
    assert refs(found, "include") == []


def test_revinclude_never_brings_millies_hidden_sections(bath_mind, custodian, millie: Person):
    params = {"_id": millie.plan, "_revinclude": "CarePlan:part-of"}
    seen_by_mind = set(ids(bath_mind.get("/CarePlan", params=params).json(), "include"))
    seen_by_team = set(ids(custodian.get("/CarePlan", params=params).json(), "include"))
    assert seen_by_team - seen_by_mind == {"millie-risk-assessment", "millie-crisis-plan"}


# -- history -------------------------------------------------------------------------------------------
def test_history_never_shows_the_gp_what_it_may_not_see(gp):
    outcome(gp.get("/RiskAssessment/millie-risk/_history"), 404)
    every = set()
    for page in pages(gp, "/RiskAssessment/_history", {"_count": 50}):
        every |= {e["fullUrl"].rsplit("/", 1)[1] for e in page.get("entry", [])}
    assert "millie-risk" not in every
    seen = set()
    for page in pages(gp, "/CarePlan/_history", {"_count": 100}):
        seen |= {e["resource"]["id"] for e in page.get("entry", []) if "resource" in e}
    assert seen <= {"millie-transfer-section"}


def test_a_deleted_resource_someone_could_never_see_is_404_not_410_for_them(gp, custodian, fresh_patient):
    plan = custodian.post("/CarePlan", json=new_plan(fresh_patient)).json()
    custodian.delete(f"/CarePlan/{plan['id']}")
    outcome(custodian.get(f"/CarePlan/{plan['id']}"), 410)
    same_as_missing(gp, f"/CarePlan/{plan['id']}")


# -- batch and transaction responses -------------------------------------------------------------
def test_a_batch_read_of_richards_plan_by_service_b_answers_like_a_missing_one(service_b, richard: Person):
    missing = uid("missing")
    r = service_b.post(
        "",
        json={
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": f"CarePlan/{richard.plan}"}},
                {"request": {"method": "GET", "url": f"CarePlan/{missing}"}},
                {"request": {"method": "GET", "url": "CarePlan?patient=richard&_total=accurate"}},
            ],
        },
    )
    hidden, absent, search = r.json()["entry"]
    assert hidden["response"]["status"] == absent["response"]["status"] == "404"
    assert "resource" not in hidden
    text = hidden["response"]["outcome"]["issue"][0]["diagnostics"].replace(richard.plan, "ID")
    assert text.replace("entry[0]", "entry[N]") == absent["response"]["outcome"]["issue"][0][
        "diagnostics"
    ].replace(missing, "ID").replace("entry[1]", "entry[N]")
    assert search["resource"]["total"] == 0 and "entry" not in search["resource"]


def test_a_transaction_reading_richards_plan_fails_as_for_a_missing_one(service_b, richard: Person):
    def tx(url: str) -> httpx.Response:
        return service_b.post(
            "",
            json={
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"request": {"method": "GET", "url": url}}],
            },
        )

    missing = uid("missing")
    hidden, absent = tx(f"CarePlan/{richard.plan}"), tx(f"CarePlan/{missing}")
    assert hidden.status_code == absent.status_code == 404
    assert hidden.text.replace(richard.plan, "ID") == absent.text.replace(missing, "ID")


def test_a_write_response_never_carries_what_the_writer_may_not_see(service_b, custodian, fresh_patient):
    """Service B may add to a record it cannot see, but gets nothing of it back."""
    r = service_b.post("/CarePlan", json=new_plan(fresh_patient, title="From service B"))
    assert r.status_code == 201
    assert r.content == b""
    rid = r.headers["Location"].split("/CarePlan/")[1].split("/")[0]
    assert custodian.get(f"/CarePlan/{rid}").json()["title"] == "From service B"
    same_as_missing(service_b, f"/CarePlan/{rid}")


# -- writers cannot reach or learn of hidden resources -------------------------------------------
@pytest.fixture
def hidden_plan(custodian, fresh_patient) -> dict:
    """A plan of a person who has agreed to share nothing, with an identifier."""
    key = uid("hidden")
    body = new_plan(fresh_patient, identifier=[{"system": TEST_IDS, "value": key}])
    return custodian.post("/CarePlan", json=body).json()


def test_service_b_cannot_update_or_delete_a_plan_it_may_not_see(service_b, custodian, hidden_plan):
    path = f"/CarePlan/{hidden_plan['id']}"
    outcome(service_b.put(path, json={**hidden_plan, "status": "revoked"}), 404, "not known")
    outcome(service_b.delete(path), 404, "not known")
    assert custodian.get(path).json() == hidden_plan


def test_a_conditional_update_cannot_overwrite_a_hidden_plan_by_naming_its_id(
    service_b, custodian, hidden_plan
):
    r = service_b.put(
        "/CarePlan",
        params={"identifier": f"{TEST_IDS}|{uid('nothing')}"},
        json={**hidden_plan, "status": "revoked", "meta": {}},
    )
    outcome(r, 404, "not known")
    assert custodian.get(f"/CarePlan/{hidden_plan['id']}").json() == hidden_plan


def test_a_conditional_update_matching_only_a_hidden_plan_neither_changes_nor_names_it(
    service_b, custodian, hidden_plan
):
    key = hidden_plan["identifier"][0]["value"]
    body = {k: v for k, v in hidden_plan.items() if k not in ("id", "meta")}
    r = service_b.put(
        "/CarePlan", params={"identifier": f"{TEST_IDS}|{key}"}, json={**body, "status": "revoked"}
    )
    assert r.status_code == 201  # for service B nothing matched, so this is a new plan
    assert hidden_plan["id"] not in r.text and hidden_plan["id"] not in r.headers["Location"]
    assert custodian.get(f"/CarePlan/{hidden_plan['id']}").json() == hidden_plan


def test_a_conditional_create_does_not_reveal_that_a_hidden_plan_exists(service_b, hidden_plan):
    key = hidden_plan["identifier"][0]["value"]
    body = {k: v for k, v in hidden_plan.items() if k not in ("id", "meta")}
    r = service_b.post("/CarePlan", json=body, headers={"If-None-Exist": f"identifier={TEST_IDS}|{key}"})
    assert r.status_code == 201
    assert hidden_plan["id"] not in r.text and hidden_plan["id"] not in r.headers["Location"]
