"""Bad input (issue 3, "Bad input"): every one gives the right status and an
OperationOutcome that says what to fix; none gives a 5xx; no write is ever partial.
"""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import LiveServer, uid
from tests.server.conftest import Person
from tests.server.fhir_checks import (
    CUSTODIAN,
    NHS_SYSTEM,
    TEST_IDS,
    extra_server,
    new_patient,
    new_plan,
    outcome,
)

XML = {"Content-Type": "application/fhir+xml"}


def nobody_called(client: httpx.Client, family: str) -> None:
    """No Patient with this family name was stored (the write left nothing behind)."""
    found = client.get("/Patient", params={"family:exact": family}).json()
    assert "entry" not in found, found


# -- bodies that are not FHIR ---------------------------------------------------------------------
def test_malformed_json_is_400_and_says_where(custodian):
    family = uid("Broken")
    r = custodian.post(
        "/Patient",
        content=f'{{"resourceType": "Patient", "name": [{{"family": "{family}"}}]'.encode(),
        headers={"Content-Type": "application/fhir+json"},
    )
    outcome(r, 400, "not valid JSON", "line 1")
    nobody_called(custodian, family)


def test_a_json_array_instead_of_a_resource_is_400(custodian):
    outcome(custodian.post("/Patient", json=[new_patient()]), 400, "JSON object")


def test_an_empty_body_is_400(custodian):
    outcome(custodian.post("/Patient", content=b""), 400, "body is empty")


def test_malformed_xml_is_400(custodian):
    family = uid("Broken")
    body = f'<Patient xmlns="http://hl7.org/fhir"><name><family value="{family}"/></name>'.encode()
    outcome(custodian.post("/Patient", content=body, headers=XML), 400, "not well-formed XML")
    nobody_called(custodian, family)


def test_xml_outside_the_fhir_namespace_is_400(custodian):
    outcome(
        custodian.post("/Patient", content=b"<Patient><id value='x'/></Patient>", headers=XML),
        400,
        "namespace",
    )


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="&xxe;"/></name></Patient>"""

PARAMETER_XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Patient [<!ENTITY % remote SYSTEM "file:///etc/passwd"> %remote;]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="x"/></name></Patient>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Patient xmlns="http://hl7.org/fhir"><name><family value="&lol9;"/></name></Patient>"""


@pytest.mark.parametrize(
    "body",
    [XXE, PARAMETER_XXE, XXE.decode().replace('"1.0"', '"1.0" encoding="UTF-16"').encode("utf-16")],
    ids=["external-entity", "parameter-entity", "utf-16"],
)
def test_an_xxe_body_is_refused_and_never_reads_the_file(custodian, body):
    for path in ("/Patient", "/$validate", "/Patient/$validate"):
        r = custodian.post(path, content=body, headers={**XML, "Accept": "application/fhir+xml"})
        outcome(r, 400, "XML")
        assert "root:" not in r.text and "/bin/" not in r.text
    r = custodian.put("/Patient/xxe-target", content=body, headers=XML)
    outcome(r, 400)
    assert "root:" not in r.text
    outcome(custodian.get("/Patient/xxe-target"), 404)


def test_a_billion_laughs_body_is_refused_without_expanding_it(custodian):
    r = custodian.post("/Patient", content=BILLION_LAUGHS, headers=XML)
    outcome(r, 400, "DOCTYPE")
    assert "lollol" not in r.text


# -- too large ------------------------------------------------------------------------------------
@pytest.fixture
def small_server(live: LiveServer):
    """A carebridge on the live database whose body limit is 2 KB."""
    with extra_server(live, max_body=2048) as base:
        yield base


def test_a_body_over_the_size_limit_is_413_and_nothing_is_stored(live: LiveServer, small_server, custodian):
    family = uid("Huge")
    body = new_patient(
        family=family,
        text={
            "status": "generated",
            "div": "<div xmlns='http://www.w3.org/1999/xhtml'>" + "x" * 4000 + "</div>",
        },
    )
    headers = {"Authorization": f"Bearer {live.tokens[CUSTODIAN]}"}
    with httpx.Client(base_url=small_server, headers=headers) as small:
        outcome(small.post("/Patient", json=body), 413, "limit", "2048")
        # a body that does not declare its length is cut off as it streams in
        chunks = (b" " * 512 for _ in range(8))
        outcome(
            small.post("/Patient", content=chunks, headers={"Content-Type": "application/fhir+json"}),
            413,
            "limit",
        )
        # and a small one still goes through
        assert small.post("/Patient", json=new_patient()).status_code == 201
    nobody_called(custodian, family)


# -- bodies that do not fit the URL -------------------------------------------------------------------
def test_a_care_plan_posted_to_the_patient_endpoint_is_400(custodian, fresh_patient):
    r = custodian.post("/Patient", json=new_plan(fresh_patient))
    outcome(r, 400, "the body is a CarePlan", "this URL is for Patient")


def test_an_update_whose_body_names_another_id_is_400_and_changes_nothing(custodian, fresh_patient):
    pid = fresh_patient.split("/")[1]
    before = custodian.get(f"/{fresh_patient}").json()
    other = uid("other")
    r = custodian.put(f"/{fresh_patient}", json={**before, "id": other, "gender": "female"})
    outcome(r, 400, other, pid, "does not match")
    assert custodian.get(f"/{fresh_patient}").json() == before
    outcome(custodian.get(f"/Patient/{other}"), 404)


def test_an_update_without_an_id_in_the_body_is_400(custodian, fresh_patient):
    before = custodian.get(f"/{fresh_patient}").json()
    body = {k: v for k, v in before.items() if k != "id"}
    outcome(custodian.put(f"/{fresh_patient}", json=body), 400, '"id"')


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_unknown_resource_type_is_404_and_lists_the_served_ones(custodian, method):
    r = custodian.request(method, "/Spaceship", json={"resourceType": "Spaceship"})
    outcome(r, 404, "unknown resource type 'Spaceship'", "CarePlan", "Patient")


def test_a_bundle_posted_as_a_resource_is_refused(custodian):
    outcome(
        custodian.post("/Bundle", json={"resourceType": "Bundle", "type": "collection"}), 405, "not stored"
    )


def test_an_element_fhir_does_not_have_is_400_naming_it(custodian):
    r = custodian.post("/Patient", json={**new_patient(), "favouriteColour": "teal"})
    outcome(r, 400, "Patient.favouriteColour")


def test_a_date_that_is_not_a_date_is_400_naming_the_element(custodian):
    outcome(
        custodian.post("/Patient", json={**new_patient(), "birthDate": "31/12/1990"}),
        400,
        "Patient.birthDate",
    )


# -- search parameters ------------------------------------------------------------------------------
def test_an_unknown_search_parameter_is_400(custodian):
    outcome(custodian.get("/Patient", params={"shoe-size": "9"}), 400, "unknown search parameter 'shoe-size'")


def test_a_date_search_with_a_value_that_is_not_a_date_is_400(custodian):
    outcome(
        custodian.get("/CarePlan", params={"date": "last-tuesday"}),
        400,
        "'last-tuesday' is not a valid date",
        "YYYY-MM-DD",
    )


def test_a_count_that_is_not_a_number_is_400(custodian):
    outcome(custodian.get("/CarePlan", params={"_count": "lots"}), 400, "_count must be a whole number")


def test_a_modifier_a_parameter_does_not_take_is_400(custodian):
    outcome(custodian.get("/CarePlan", params={"date:exact": "2020"}), 400, ":exact")


def test_a_chained_search_is_400_with_advice(custodian):
    outcome(custodian.get("/CarePlan", params={"subject.name": "Millie"}), 400, "two steps")


# -- FHIR-valid shapes with invalid content: 422 ----------------------------------------------------
def test_a_bad_nhs_number_is_422_naming_the_field(custodian):
    body = new_patient()
    body["identifier"] = [{"system": NHS_SYSTEM, "value": "9991000012"}]  # wrong check digit
    r = custodian.post("/Patient", json=body)
    text = outcome(r, 422, "Patient.identifier[0].value", "9991000012", "check digit")
    assert r.json()["issue"][0]["expression"] == ["Patient.identifier[0].value"]
    assert "modulus 11" in text
    nobody_called(custodian, body["name"][0]["family"])


@pytest.mark.parametrize("value", ["999 100 0011", "12345", "99910000AB"])
def test_an_nhs_number_that_is_not_ten_digits_is_422(custodian, value):
    body = new_patient()
    body["identifier"] = [{"system": TEST_IDS, "value": "x"}, {"system": NHS_SYSTEM, "value": value}]
    outcome(custodian.post("/Patient", json=body), 422, "Patient.identifier[1].value", "10 digits")


def test_a_bad_nhs_number_cannot_be_put_on_millie(custodian, millie: Person):
    before = custodian.get(f"/Patient/{millie.id}").json()
    bad = {**before, "identifier": [{"system": NHS_SYSTEM, "value": "9991000010"}]}
    outcome(custodian.put(f"/Patient/{millie.id}", json=bad), 422, "check digit")
    assert custodian.get(f"/Patient/{millie.id}").json() == before


def test_a_reference_to_a_type_the_element_does_not_allow_is_422(custodian, fresh_patient):
    body = new_plan(fresh_patient, partOf=[{"reference": fresh_patient}])
    r = custodian.post("/CarePlan", json=body)
    outcome(r, 422, "CarePlan.partOf", fresh_patient, "must refer to CarePlan")


def test_a_managing_organization_that_is_a_practitioner_is_422(custodian):
    body = new_patient(managingOrganization={"reference": "Practitioner/sam-patel"})
    outcome(custodian.post("/Patient", json=body), 422, "Patient.managingOrganization", "Organization")


def test_a_code_outside_a_required_value_set_is_422_naming_the_codes_allowed(custodian, fresh_patient):
    r = custodian.post("/Patient", json=new_patient(gender="sometimes"))
    outcome(r, 422, "Patient.gender", "'sometimes'", "male", "female", "other", "unknown")
    r = custodian.post("/CarePlan", json=new_plan(fresh_patient, status="paused"))
    outcome(r, 422, "CarePlan.status", "on-hold")


# -- versions -------------------------------------------------------------------------------------
def test_a_stale_if_match_is_412_and_the_resource_is_unchanged(custodian, fresh_patient):
    before = custodian.get(f"/{fresh_patient}").json()
    r = custodian.put(f"/{fresh_patient}", json={**before, "gender": "male"}, headers={"If-Match": 'W/"7"'})
    outcome(r, 412, "If-Match", "version 7", "read it again")
    assert custodian.get(f"/{fresh_patient}").json() == before


# -- tokens and scopes ------------------------------------------------------------------------------
def test_no_token_is_401_and_says_how_to_get_one(anonymous, millie: Person):
    r = anonymous.get(f"/CarePlan/{millie.plan}")
    outcome(r, 401, "Authorization: Bearer", "carebridge token")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_no_token_means_no_write(anonymous, custodian):
    body = new_patient()
    outcome(anonymous.post("/Patient", json=body), 401)
    nobody_called(custodian, body["name"][0]["family"])


def test_an_expired_token_is_401(live: LiveServer, millie: Person):
    token = live.token(CUSTODIAN, ttl=-60)
    with httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {token}"}) as c:
        outcome(c.get(f"/CarePlan/{millie.plan}"), 401, "expired")


def test_a_token_signed_by_another_key_is_401(live: LiveServer, millie: Person):
    forger = ec.generate_private_key(ec.SECP256R1())
    claims = {"iss": "carebridge", "sub": CUSTODIAN, "scope": "system/*.cruds", "exp": int(time.time()) + 600}
    token = jwt.encode(claims, forger, algorithm="ES256")
    with httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {token}"}) as c:
        outcome(c.get(f"/CarePlan/{millie.plan}"), 401, "not valid")


def test_an_unsigned_token_is_401(live: LiveServer, millie: Person):
    claims = {"iss": "carebridge", "sub": CUSTODIAN, "scope": "system/*.cruds", "exp": int(time.time()) + 600}
    token = jwt.encode(claims, None, algorithm="none")
    with httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {token}"}) as c:
        outcome(c.get(f"/CarePlan/{millie.plan}"), 401)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-jwt"])
def test_an_authorization_header_that_is_not_a_bearer_token_is_401(live: LiveServer, header, millie: Person):
    with httpx.Client(base_url=live.base, headers={"Authorization": header}) as c:
        outcome(c.get(f"/CarePlan/{millie.plan}"), 401)


def test_a_token_for_a_partner_never_registered_is_401(live: LiveServer, millie: Person):
    from carebridge.server.auth import Signer

    token = Signer(live.db).issue(uid("stranger"), "system/*.cruds")
    with httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {token}"}) as c:
        outcome(c.get(f"/CarePlan/{millie.plan}"), 401, "no longer registered")


def test_a_scope_too_narrow_for_the_type_is_403_and_nothing_is_written(live: LiveServer, custodian):
    token = live.token(CUSTODIAN, scope="system/CarePlan.rs")
    body = new_patient()
    with httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {token}"}) as c:
        outcome(c.post("/Patient", json=body), 403, "system/Patient.c")
        outcome(c.get("/Patient/millie"), 403, "system/Patient.r")
        outcome(c.get("/CarePlan", params={"_revinclude": "Goal:patient"}), 403, "Goal")
        assert c.get("/CarePlan/millie-plan").status_code == 200
    nobody_called(custodian, body["name"][0]["family"])


def test_a_read_only_partner_cannot_write_403(gp, custodian, fresh_patient):
    r = gp.post("/CarePlan", json=new_plan(fresh_patient))
    outcome(r, 403, "create on CarePlan")
    assert "entry" not in custodian.get("/CarePlan", params={"patient": fresh_patient}).json()


def test_an_unknown_purpose_of_use_is_400(custodian, millie: Person):
    r = custodian.get(f"/CarePlan/{millie.plan}", headers={"X-Purpose-Of-Use": "CURIOSITY"})
    outcome(r, 400, "X-Purpose-Of-Use", "TREAT")


# -- no partial writes ------------------------------------------------------------------------------
def test_a_transaction_with_one_bad_entry_stores_none_of_its_entries(custodian):
    good, bad = new_patient(), new_patient()
    bad["identifier"][0]["value"] = "9991000012"
    plan_for_good = new_plan("urn:uuid:0d4c2c52-0c0b-4c59-9c3e-1b5a1d6f0a01")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0d4c2c52-0c0b-4c59-9c3e-1b5a1d6f0a01",
                "resource": good,
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": plan_for_good, "request": {"method": "POST", "url": "CarePlan"}},
            {"resource": bad, "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    r = custodian.post("", json=bundle)
    outcome(r, 422, "Bundle.entry[2]", "check digit")
    assert r.json()["issue"][0]["code"] == "value"
    assert r.json()["issue"][0]["expression"] == ["Patient.identifier[0].value"]
    nobody_called(custodian, good["name"][0]["family"])
    nobody_called(custodian, bad["name"][0]["family"])


def test_a_transaction_failing_late_undoes_its_earlier_updates(custodian, fresh_patient):
    before = custodian.get(f"/{fresh_patient}").json()
    plan_id = uid("plan")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": {**before, "gender": "female"}, "request": {"method": "PUT", "url": fresh_patient}},
            {
                "resource": new_plan(fresh_patient, id=plan_id),
                "request": {"method": "PUT", "url": f"CarePlan/{plan_id}", "ifMatch": 'W/"4"'},
            },
        ],
    }
    r = custodian.post("", json=bundle)
    outcome(r, 412, "Bundle.entry[1]", "If-Match")
    assert custodian.get(f"/{fresh_patient}").json() == before
    outcome(custodian.get(f"/CarePlan/{plan_id}"), 404)


def test_a_narrative_that_is_not_xhtml_is_400_so_the_resource_can_always_be_sent_as_xml(
    custodian, fresh_patient
):
    broken = {"status": "generated", "div": "<div>never closed"}
    outcome(
        custodian.post("/CarePlan", json=new_plan(fresh_patient, text=broken)),
        400,
        "CarePlan.text.div",
        "XHTML",
    )
    not_xhtml = {"status": "generated", "div": "<p>no namespace</p>"}
    outcome(custodian.post("/CarePlan", json=new_plan(fresh_patient, text=not_xhtml)), 400, "xmlns")
    assert "entry" not in custodian.get("/CarePlan", params={"patient": fresh_patient}).json()


# -- never a 5xx ---------------------------------------------------------------------------------------
ODD_REQUESTS = [
    ("GET", "/CarePlan/millie-plan/_history/99999999999999999999", {}, None, 404),
    ("GET", "/CarePlan/millie-plan/_history/-1", {}, None, 404),
    ("GET", "/CarePlan", {"_cursor": "W1tdXQ"}, None, 400),  # base64 of [[]]
    ("GET", "/CarePlan", {"_cursor": "W251bGxd"}, None, 400),  # base64 of [null]
    ("GET", "/CarePlan/_history", {"_cursor": "99999999999999999999999"}, None, 400),
    ("GET", "/CarePlan/_history", {"_since": "whenever"}, None, 400),
    ("GET", "/CarePlan", {"_count": "-1"}, None, 400),
    ("GET", "/CarePlan", {"_sort": "-"}, None, 400),
    ("GET", "/CarePlan", {"_include": ":::"}, None, 400),
    ("GET", "/CarePlan", {"date": "2020-02-30"}, None, 400),
    ("GET", "/CarePlan", {"status:missing": "perhaps"}, None, 400),
    ("GET", "/CarePlan", {"subject:Spaceship": "x"}, None, 400),
    ("GET", "/CarePlan", {"_summary": "some"}, None, 400),
    ("GET", "/CarePlan", {"_total": "roughly"}, None, 400),
    ("POST", "/CarePlan", {}, {"resourceType": 5}, 400),
    ("POST", "/CarePlan", {}, {"resourceType": "CarePlan", "status": ["active"]}, 400),
    ("POST", "", {}, {"resourceType": "Bundle", "type": "transaction", "entry": "x"}, 400),
    ("POST", "", {}, {"resourceType": "Bundle", "type": "transaction", "entry": [1, 2]}, 400),
    (
        "POST",
        "",
        {},
        {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": 5, "url": 7}}]},
        400,
    ),
    ("DELETE", "/CarePlan", {}, None, 405),
    ("PATCH", "/CarePlan/millie-plan", {}, {}, 405),
]


@pytest.mark.parametrize("method, path, params, body, status", ODD_REQUESTS)
def test_odd_requests_get_a_4xx_operation_outcome_never_a_5xx(custodian, method, path, params, body, status):
    kw = {"params": params} if body is None else {"params": params, "json": body}
    outcome(custodian.request(method, path, **kw), status)
