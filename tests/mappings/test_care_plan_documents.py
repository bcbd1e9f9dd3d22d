"""The local care-plan document: what a coordinator's file may hold, and the clear,
per-field errors when it is wrong (missing NHS number, bad check digit, unknown heading,
impossible date, ...). The person's own words are never changed."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from plan_world import SCHEMAS, SEED_PEOPLE, bad_check_digit, fresh_person, golden

from carebridge.mappings.plan_document import FieldError, check_document
from carebridge.mappings.vocabulary import SECTIONS


def problems(doc: dict) -> dict[str, str]:
    checked, errors = check_document(doc)
    assert checked is None and errors, "expected the document to be refused"
    return {e.field: e.message for e in errors}


@pytest.mark.parametrize("name", SEED_PEOPLE)
def test_each_seed_persons_golden_document_is_canonical_and_matches_the_json_schema(name: str) -> None:
    doc = golden(name)
    checked, errors = check_document(doc)
    assert errors == []
    assert checked == doc
    schema = json.loads((SCHEMAS / "care-plan-document.schema.json").read_text())
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(doc)) == []


def test_the_seed_peoples_words_are_kept_verbatim() -> None:
    millie = golden("millie")
    checked, _ = check_document(millie)
    assert checked["sections"]["about-me"]["text"].startswith("I'm Millie, I'm 18 and I live in Keynsham")
    assert checked["sections"]["recovery-goals"]["goals"][1]["words"] == (
        "Drink less on nights out: two drinks, then soft drinks, and get home with a friend."
    )


def test_a_missing_nhs_number_is_named() -> None:
    doc = fresh_person()
    del doc["person"]["nhsNumber"]
    assert problems(doc) == {"person.nhsNumber": "is missing"}


def test_a_bad_check_digit_is_named() -> None:
    doc = fresh_person()
    doc["person"]["nhsNumber"] = bad_check_digit(doc["person"]["nhsNumber"])
    assert "check digit" in problems(doc)["person.nhsNumber"]


def test_an_nhs_number_written_with_spaces_is_read_as_ten_digits() -> None:
    doc = fresh_person()
    n = doc["person"]["nhsNumber"]
    doc["person"]["nhsNumber"] = f"{n[:3]} {n[3:6]} {n[6:]}"
    checked, errors = check_document(doc)
    assert errors == [] and checked["person"]["nhsNumber"] == n


def test_an_unknown_heading_is_named_with_the_headings_there_are() -> None:
    doc = fresh_person()
    doc["sections"]["hobbies"] = {"text": "Fishing"}
    message = problems(doc)["sections.hobbies"]
    assert "unknown section heading 'hobbies'" in message and "about-me" in message


def test_a_heading_may_be_written_as_its_plain_english_title() -> None:
    doc = fresh_person()
    words = doc["sections"].pop("about-me")
    doc["sections"][SECTIONS["about-me"]] = words
    checked, errors = check_document(doc)
    assert errors == []
    assert checked["sections"]["about-me"] == words


def test_the_transfer_section_is_not_imported() -> None:
    doc = fresh_person()
    doc["sections"]["transfer"] = {"text": "Moving to the PCLS"}
    assert "$plan-transfer" in problems(doc)["sections.transfer"]


@pytest.mark.parametrize("value", ["2025-02-30", "2025-13-01", "12/03/2025", "2025-3-1"])
def test_an_impossible_date_is_named(value: str) -> None:
    doc = fresh_person()
    doc["person"]["dateOfBirth"] = value
    assert value in problems(doc)["person.dateOfBirth"]


def test_every_problem_in_a_document_is_reported_at_once() -> None:
    doc = fresh_person()
    doc["person"]["nhsNumber"] = bad_check_digit(doc["person"]["nhsNumber"])
    doc["plan"]["nextReview"] = "2025-02-29"
    doc["sections"]["recovery-goals"]["goals"][0]["recoveryStar"] = {"area": "Work", "score": 12}
    doc["sections"]["contact-plan"]["agreedContact"][0]["method"] = "carrier pigeon"
    assert set(problems(doc)) == {
        "person.nhsNumber",
        "plan.nextReview",
        "sections.recovery-goals.goals[0].recoveryStar.score",
        "sections.contact-plan.agreedContact[0].method",
    }


def test_contact_methods_may_be_written_in_words() -> None:
    doc = fresh_person()
    doc["sections"]["contact-plan"]["agreedContact"] = [{"method": "Home visit", "frequency": "Monthly"}]
    checked, errors = check_document(doc)
    assert errors == []
    agreed = checked["sections"]["contact-plan"]["agreedContact"]
    assert agreed == [{"method": "home-visit", "frequency": "Monthly"}]


def test_unknown_fields_and_wrong_types_are_named_rather_than_ignored() -> None:
    doc = fresh_person()
    doc["person"]["nhs"] = "typo"
    doc["plan"]["cpa"] = "yes"
    doc["sections"]["contacts"] = {"contacts": [{"name": "NHS 111", "emergency": "yes"}]}
    found = problems(doc)
    assert "unknown field" in found["person.nhs"]
    assert "true or false" in found["plan.cpa"]
    assert "true or false" in found["sections.contacts.contacts[0].emergency"]


def test_an_empty_section_is_refused() -> None:
    doc = fresh_person()
    doc["sections"]["faith-spirituality"] = {}
    assert "is empty" in problems(doc)["sections.faith-spirituality"]


def test_a_document_that_is_not_a_care_plan_is_refused_plainly() -> None:
    assert check_document(["not", "a", "plan"]) == (None, [FieldError("", "must be an object")])
    doc = copy.deepcopy(golden("ava"))
    doc["format"] = "something-else"
    assert "not a carebridge care-plan document" in problems(doc)["format"]


def test_the_csv_table_schemas_list_exactly_the_columns_the_reader_takes() -> None:
    from carebridge.mappings.plan_csv import CASELOAD_OPTIONAL, CASELOAD_REQUIRED, SECTIONS_COLUMNS

    caseload = json.loads((SCHEMAS / "caseload.tableschema.json").read_text())
    sections = json.loads((SCHEMAS / "sections.tableschema.json").read_text())
    assert [f["name"] for f in caseload["fields"]] == [*CASELOAD_REQUIRED, *CASELOAD_OPTIONAL]
    assert [f["name"] for f in sections["fields"]] == list(SECTIONS_COLUMNS)
