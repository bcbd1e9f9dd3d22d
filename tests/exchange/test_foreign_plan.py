"""Foreign records into the care-plan model (pure): stable local ids, section tags from
what the partner wrote, references rewritten to what carebridge holds or cut to text."""

from __future__ import annotations

from carebridge.mappings.foreign_plan import PULLED_FROM_SYSTEM, local_id, section_of, to_local
from carebridge.mappings.vocabulary import SECTION_SYSTEM

REFS = {
    "Patient/p9": "Patient/local",
    "CarePlan/parent": "CarePlan/icr-parent",
    "CarePlan/child": "CarePlan/icr-child",
}


def plan(**more: object) -> dict:
    return {
        "resourceType": "CarePlan",
        "id": "child",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/p9"},
        **more,
    }


def test_local_ids_are_readable_when_they_fit_and_stable_hashes_when_not() -> None:
    assert local_id("icr", "CarePlan", "abc-1") == "icr-abc-1"
    odd = local_id("icr", "CarePlan", "a/b c" * 20)
    assert odd.startswith("pulled-") and len(odd) <= 64
    assert odd == local_id("icr", "CarePlan", "a/b c" * 20)
    assert odd != local_id("icr", "Task", "a/b c" * 20)


def test_sections_are_recognised_by_tag_code_or_title() -> None:
    tagged = plan(meta={"tag": [{"system": SECTION_SYSTEM, "code": "contacts"}]})
    assert section_of(tagged) == "contacts"
    assert section_of(plan(category=[{"coding": [{"code": "crisis-plan"}]}])) == "crisis-plan"
    assert section_of(plan(title="My recovery goals")) == "recovery-goals"
    assert section_of(plan(title="Things to remember")) is None


def test_a_plan_without_section_or_parent_becomes_the_parent_plan() -> None:
    out = to_local(plan(id="parent"), partner="icr", source_url="https://icr/CarePlan/parent", refs=REFS)
    assert {"system": SECTION_SYSTEM, "code": "plan"} in out["meta"]["tag"]


def test_an_unrecognised_child_section_is_left_untagged_so_no_section_consent_shares_it() -> None:
    out = to_local(
        plan(partOf=[{"reference": "CarePlan/parent"}], title="Notes"),
        partner="icr",
        source_url="https://icr/CarePlan/child",
        refs=REFS,
    )
    assert [t for t in out["meta"]["tag"] if t["system"] == SECTION_SYSTEM] == []
    assert out["partOf"] == [{"reference": "CarePlan/icr-parent"}]


def test_references_are_rewritten_or_cut_to_their_display_text() -> None:
    out = to_local(
        plan(
            title="Daily activities",
            author={"reference": "Practitioner/x", "display": "Dr X"},
            goal=[{"reference": "Goal/unknown"}],
            meta={"tag": [{"system": PULLED_FROM_SYSTEM, "code": "someone-else"}], "versionId": "4"},
        ),
        partner="icr",
        source_url="https://icr/CarePlan/child",
        refs=REFS,
    )
    assert out["id"] == "icr-child"
    assert out["subject"] == {"reference": "Patient/local"}
    assert out["author"] == {"display": "Dr X"}
    assert out["goal"] == [{"display": "a record held by the partner system"}]
    assert out["meta"]["tag"] == [
        {"system": SECTION_SYSTEM, "code": "daily-activities"},
        {"system": PULLED_FROM_SYSTEM, "code": "icr"},
    ]
    assert "versionId" not in out["meta"]
    assert out["meta"]["source"] == "https://icr/CarePlan/child"
