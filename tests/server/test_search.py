"""Search (issue 3, "Search"): the parameters people need, result parameters, and paging.

Parameters are indexed in tables; pages are cut by opaque keyset cursors, never OFFSET;
an unknown parameter is a 400 unless the client asks for lenient handling.
"""

from __future__ import annotations

import pytest

from tests.conftest import LiveServer, uid
from tests.server.conftest import Person
from tests.server.fhir_checks import (
    NHS_SYSTEM,
    SECTION_SYSTEM,
    TEST_IDS,
    ids,
    new_patient,
    new_plan,
    next_link,
    outcome,
    pages,
    refs,
    search_all,
)

CPA = "http://snomed.info/sct|1092421000000100"
CONFIDENTIAL = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}


def world_ids(live: LiveServer, rtype: str, keep) -> set[str]:
    """Ids of the demo world's resources of a type that `keep` selects."""
    return {r["id"] for r in live.world.resources if r["resourceType"] == rtype and keep(r)}  # type: ignore[union-attr]


def ref_of(value) -> set[str]:
    values = value if isinstance(value, list) else [value] if value else []
    return {v["reference"] for v in values}


def post(client, path: str, body: dict) -> dict:
    r = client.post(path, json=body)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def dated_plans(custodian, fresh_patient) -> tuple[str, dict[str, str]]:
    """Three plans of a fresh patient, one per year 2020, 2021 and 2023 (whole years)."""
    made = {}
    for year, status in (("2020", "completed"), ("2021", "completed"), ("2023", "active")):
        body = new_plan(
            fresh_patient, status=status, period={"start": f"{year}-01-01", "end": f"{year}-12-31"}
        )
        made[year] = post(custodian, "/CarePlan", body)["id"]
    return fresh_patient, made


# -- _id, identifier, patient/subject ----------------------------------------------------------
def test_search_by_id_finds_just_those_plans(custodian, millie: Person, richard: Person):
    found = custodian.get("/CarePlan", params={"_id": f"{millie.plan},{richard.plan}"}).json()
    assert found["resourceType"] == "Bundle" and found["type"] == "searchset"
    assert sorted(ids(found)) == sorted([millie.plan, richard.plan])


def test_millie_is_found_by_her_nhs_number(custodian, millie: Person):
    found = custodian.get("/Patient", params={"identifier": f"{NHS_SYSTEM}|{millie.nhs_number}"}).json()
    assert ids(found) == ["millie"]
    # the bare value finds her too, and another system's value does not
    assert ids(custodian.get("/Patient", params={"identifier": millie.nhs_number}).json()) == ["millie"]
    other = custodian.get("/Patient", params={"identifier": f"{TEST_IDS}|{millie.nhs_number}"}).json()
    assert ids(other) == []


def test_patient_and_subject_find_the_same_plans(live, custodian, millie: Person):
    expected = world_ids(live, "CarePlan", lambda r: r["subject"]["reference"] == millie.ref)
    by_patient = search_all(custodian, "/CarePlan", {"patient": "millie", "_count": 100})
    by_subject = search_all(custodian, "/CarePlan", {"subject": millie.ref, "_count": 100})
    assert set(by_patient) == set(by_subject) == expected
    assert len(by_patient) == len(expected)


def test_a_typed_reference_modifier_is_understood(custodian, millie: Person):
    typed = ids(custodian.get("/Goal", params={"subject:Patient": "millie", "_count": 100}).json())
    assert typed and all(g.startswith("millie-goal-") for g in typed)


# -- status, category, date -----------------------------------------------------------------------
def test_status_finds_only_plans_in_that_state(custodian, dated_plans):
    patient, made = dated_plans
    done = ids(custodian.get("/CarePlan", params={"patient": patient, "status": "completed"}).json())
    assert sorted(done) == sorted([made["2020"], made["2021"]])
    not_done = ids(custodian.get("/CarePlan", params={"patient": patient, "status:not": "completed"}).json())
    assert not_done == [made["2023"]]


def test_category_finds_the_care_programme_approach_plans(live, custodian):
    def is_cpa(r) -> bool:
        codings = [c for cat in r.get("category", []) for c in cat["coding"]]
        return any(c["code"] == CPA.split("|")[1] for c in codings)

    expected = world_ids(live, "CarePlan", is_cpa)
    assert expected  # Millie, Richard, Jenny and Zoe are on CPA
    assert set(search_all(custodian, "/CarePlan", {"category": CPA})) == expected


@pytest.mark.parametrize(
    "value, years",
    [
        ("2021", ["2021"]),
        ("eq2021", ["2021"]),
        ("ne2021", ["2020", "2023"]),
        ("lt2021-01-01", ["2020"]),
        ("le2021-06-01", ["2020", "2021"]),
        ("gt2021-12-31", ["2023"]),
        ("ge2021-06-01", ["2021", "2023"]),
        ("sa2021-12-31", ["2023"]),
        ("eb2021-01-01", ["2020"]),
        ("2022", []),
    ],
)
def test_date_search_understands_prefixes(custodian, dated_plans, value, years):
    patient, made = dated_plans
    found = ids(custodian.get("/CarePlan", params={"patient": patient, "date": value}).json())
    assert sorted(found) == sorted(made[y] for y in years)


def test_last_updated_finds_what_changed_since(custodian, fresh_patient):
    old = post(custodian, "/CarePlan", new_plan(fresh_patient))
    new = post(custodian, "/CarePlan", new_plan(fresh_patient))
    since = new["meta"]["lastUpdated"]

    def changed(prefix: str) -> list[str]:
        params = {"patient": fresh_patient, "_lastUpdated": f"{prefix}{since}"}
        return ids(custodian.get("/CarePlan", params=params).json())

    assert new["id"] in changed("ge")
    assert new["id"] in changed("")  # an instant equals itself
    assert new["id"] not in changed("lt")
    assert old["id"] in changed("le")
    assert changed("gt") == []
    assert (
        ids(custodian.get("/CarePlan", params={"patient": fresh_patient, "_lastUpdated": "lt2000"}).json())
        == []
    )


# -- tags, security labels, part-of -------------------------------------------------------------
def test_tag_finds_every_risk_assessment_section(live, custodian):
    expected = world_ids(
        live,
        "CarePlan",
        lambda r: any(t["code"] == "risk-assessment" for t in r.get("meta", {}).get("tag", [])),
    )
    found = search_all(custodian, "/CarePlan", {"_tag": f"{SECTION_SYSTEM}|risk-assessment"})
    assert set(found) == expected and "millie-risk-assessment" in found


def test_security_label_search_finds_the_restricted_plan(custodian, fresh_patient):
    restricted = post(custodian, "/CarePlan", new_plan(fresh_patient, meta={"security": [CONFIDENTIAL]}))
    post(custodian, "/CarePlan", new_plan(fresh_patient))
    label = f"{CONFIDENTIAL['system']}|{CONFIDENTIAL['code']}"
    found = ids(custodian.get("/CarePlan", params={"patient": fresh_patient, "_security": label}).json())
    assert found == [restricted["id"]]


def test_part_of_finds_every_section_of_millies_plan(live, custodian, millie: Person):
    expected = world_ids(live, "CarePlan", lambda r: f"CarePlan/{millie.plan}" in ref_of(r.get("partOf")))
    found = search_all(custodian, "/CarePlan", {"part-of": f"CarePlan/{millie.plan}"})
    assert set(found) == expected
    assert {"millie-about-me", "millie-crisis-plan", "millie-risk-assessment"} <= set(found)


# -- Task, Consent, Patient parameters -------------------------------------------------------------
@pytest.mark.parametrize(
    "param, value, element",
    [
        ("owner", "Organization/awp-banes-pcls", "owner"),
        ("owner", "Organization/awp-bath-cmht", "owner"),
        ("requester", "Organization/awp-bath-cmht", "requester"),
        ("focus", "CarePlan/millie-plan", "focus"),
        ("part-of", "Task/millie-transfer", "partOf"),
    ],
)
def test_millies_transfer_tasks_are_found_by_who_and_what(live, custodian, param, value, element):
    expected = world_ids(live, "Task", lambda r: value in ref_of(r.get(element)))
    assert expected
    assert set(search_all(custodian, "/Task", {param: value})) == expected


def test_consents_are_found_by_the_organisation_they_name(live, custodian):
    found = search_all(custodian, "/Consent", {"actor": "Organization/keynsham-gp"})
    assert found == ["millie-consent-gp"]


def test_patients_are_found_by_family_name_and_birth_date(custodian, millie: Person, richard: Person):
    assert ids(custodian.get("/Patient", params={"family": millie.family.lower()}).json()) == ["millie"]
    assert ids(custodian.get("/Patient", params={"family": millie.family[:3]}).json()) == ["millie"]
    assert "richard" in ids(custodian.get("/Patient", params={"birthdate": richard.birth_date}).json())
    year = millie.birth_date[:4]
    born = ids(custodian.get("/Patient", params={"birthdate": year, "family": millie.family}).json())
    assert born == ["millie"]


# -- result parameters -----------------------------------------------------------------------------
def test_count_cuts_a_page_and_says_where_the_next_one_is(custodian, millie: Person):
    page = custodian.get("/CarePlan", params={"patient": "millie", "_count": 2}).json()
    assert len(page["entry"]) == 2
    assert next_link(page) is not None


def test_summary_count_gives_only_the_number(live, custodian, millie: Person):
    expected = world_ids(live, "CarePlan", lambda r: r["subject"]["reference"] == millie.ref)
    counted = custodian.get("/CarePlan", params={"patient": "millie", "_summary": "count"}).json()
    assert counted["total"] == len(expected)
    assert "entry" not in counted


def test_total_accurate_counts_every_match_across_pages(custodian, millie: Person):
    first = custodian.get("/CarePlan", params={"patient": "millie", "_total": "accurate", "_count": 3}).json()
    visited = search_all(custodian, "/CarePlan", {"patient": "millie", "_count": 3})
    assert first["total"] == len(visited)
    assert "total" not in custodian.get("/CarePlan", params={"patient": "millie"}).json()


def test_elements_returns_only_what_was_asked_marked_subsetted(custodian, millie: Person):
    found = custodian.get("/CarePlan", params={"_id": millie.plan, "_elements": "title"}).json()
    plan = found["entry"][0]["resource"]
    assert set(plan) == {"resourceType", "id", "meta", "title"}
    assert {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "SUBSETTED",
    } in plan["meta"]["tag"]


def test_sort_orders_by_date_either_way(custodian, dated_plans):
    patient, made = dated_plans
    up = ids(custodian.get("/CarePlan", params={"patient": patient, "_sort": "date"}).json())
    down = ids(custodian.get("/CarePlan", params={"patient": patient, "_sort": "-date"}).json())
    assert up == [made["2020"], made["2021"], made["2023"]]
    assert down == list(reversed(up))


def test_sort_by_something_that_is_not_sortable_is_400(custodian):
    outcome(custodian.get("/CarePlan", params={"_sort": "title"}), 400, "cannot sort CarePlan by 'title'")


def test_include_brings_the_care_team_of_millies_plan(custodian, millie: Person):
    found = custodian.get("/CarePlan", params={"_id": millie.plan, "_include": "CarePlan:care-team"}).json()
    assert refs(found) == [f"CarePlan/{millie.plan}"]
    assert refs(found, "include") == ["CareTeam/millie-care-team"]


def test_revinclude_brings_every_section_that_is_part_of_millies_plan(live, custodian, millie: Person):
    found = custodian.get("/CarePlan", params={"_id": millie.plan, "_revinclude": "CarePlan:part-of"}).json()
    expected = world_ids(live, "CarePlan", lambda r: f"CarePlan/{millie.plan}" in ref_of(r.get("partOf")))
    assert ids(found) == [millie.plan]
    assert set(ids(found, "include")) == expected


def test_include_of_a_parameter_that_is_not_a_reference_is_400(custodian):
    outcome(
        custodian.get("/CarePlan", params={"_include": "CarePlan:status"}), 400, "not a reference parameter"
    )


# -- paging ---------------------------------------------------------------------------------------
def test_following_next_links_visits_every_match_exactly_once(live, custodian):
    every = world_ids(live, "CarePlan", lambda r: True)
    visited = []
    for page in pages(custodian, "/CarePlan", {"_count": 7}):
        assert len(page.get("entry", [])) <= 7
        visited += ids(page)
    assert len(visited) == len(set(visited))
    assert every <= set(visited)


def test_paging_is_by_cursor_so_a_new_plan_does_not_shift_the_pages(custodian, fresh_patient):
    """With OFFSET paging, a row inserted before the current position would make the next
    page repeat a row; a keyset cursor carries on exactly after the last row seen."""
    made = sorted(post(custodian, "/CarePlan", new_plan(fresh_patient))["id"] for _ in range(5))
    page = custodian.get("/CarePlan", params={"patient": fresh_patient, "_sort": "_id", "_count": 2}).json()
    seen = ids(page)
    assert seen == made[:2]
    nxt = next_link(page)
    assert "offset" not in nxt.lower()
    # a plan that sorts before everything seen so far arrives between two page requests
    early = "0000-" + uid("early")
    assert custodian.put(f"/CarePlan/{early}", json=new_plan(fresh_patient, id=early)).status_code == 201
    while nxt:
        page = custodian.get(nxt).json()
        seen += ids(page)
        nxt = next_link(page)
    assert seen == made


def test_a_cursor_the_server_did_not_make_is_400(custodian):
    outcome(custodian.get("/CarePlan", params={"_cursor": "not-ours"}), 400, "start the search again")


# -- POST _search, unknown parameters, lenient handling --------------------------------------------
def test_post_search_answers_like_get(custodian, millie: Person):
    form = {"patient": "millie", "_tag": f"{SECTION_SYSTEM}|about-me"}
    by_post = custodian.post("/CarePlan/_search", data=form)
    assert by_post.status_code == 200
    assert ids(by_post.json()) == ids(custodian.get("/CarePlan", params=form).json()) == ["millie-about-me"]


def test_post_search_with_a_json_body_is_415(custodian):
    r = custodian.post("/CarePlan/_search", json={"patient": "millie"})
    outcome(r, 415, "application/x-www-form-urlencoded")


def test_an_unknown_search_parameter_is_400_and_names_the_known_ones(custodian):
    text = outcome(custodian.get("/CarePlan", params={"colour": "blue"}), 400, "colour", "part-of")
    assert "handling=lenient" in text


def test_an_unknown_parameter_is_ignored_when_lenient_handling_is_asked_for(custodian, millie: Person):
    r = custodian.get(
        "/CarePlan", params={"colour": "blue", "_id": millie.plan}, headers={"Prefer": "handling=lenient"}
    )
    assert r.status_code == 200
    assert ids(r.json()) == [millie.plan]


def test_string_search_is_case_and_accent_insensitive(custodian):
    family = uid("Zoë")
    post(custodian, "/Patient", new_patient(family=family))
    plain = family.replace("ë", "e").upper()
    assert len(ids(custodian.get("/Patient", params={"family": plain}).json())) == 1
