"""Importing care plans into carebridge, on both databases: one atomic Bundle per person,
written as the custodian trust through the same interaction functions as the API;
re-importing changes nothing; an edited document creates new versions of exactly the
parts that changed; a Provenance names the source."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import orjson
import pytest
from plan_world import add_trust, fresh_person, golden

from carebridge.mappings.demo_world import NHS_NUMBERS
from carebridge.mappings.import_plan import Source, found_resources, lookup_bundle, plan_writes
from carebridge.mappings.plan_codes import IMPORT_SOURCE_SYSTEM, RECORD_SYSTEM
from carebridge.mappings.vocabulary import NHS_NUMBER_SYSTEM, PLAN_CODE, SECTION_SYSTEM
from carebridge.server import partners, store
from carebridge.server.db import Database
from carebridge.server.demo import load_demo
from carebridge.server.map_import import Result, import_record, map_record, read_records
from carebridge.server.map_target import DatabaseTarget, TargetError


def write(tmp_path: Path, name: str, doc: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def run(db: Database, trust: str, *paths: Path) -> list[Result]:
    target = DatabaseTarget(db, trust)
    try:
        return [import_record(r, target) for r in read_records(list(paths))]
    finally:
        target.close()


ROW = ", ".join(f"r.{c.strip()}" for c in store.COLUMNS.split(","))


def family(db: Database, nhs: str) -> dict[str, dict]:
    """The person's resources that carry a business identifier, by identifier value."""
    with db.read() as c:
        rows = c.all(
            f"SELECT {ROW} FROM resource r JOIN idx_token i ON i.type = r.type AND i.id = r.id "
            "WHERE i.param = 'identifier' "
            "AND i.system = ? AND i.code LIKE ?",
            (RECORD_SYSTEM, f"{nhs}/%"),
        )
    out = {}
    for t in rows:
        row = store.row_from(t)
        body = row.resource()
        value = next(i["value"] for i in body.get("identifier", []) if i["system"] == RECORD_SYSTEM)
        out[value.removeprefix(f"{nhs}/")] = {"row": row, "body": body}
    return out


def patients(db: Database, nhs: str) -> list[str]:
    with db.read() as c:
        return [
            t[0]
            for t in c.all(
                "SELECT r.id FROM resource r JOIN idx_token i ON i.type = r.type AND i.id = r.id "
                "WHERE r.type = 'Patient' AND r.deleted = 0 AND i.system = ? AND i.code = ?",
                (NHS_NUMBER_SYSTEM, nhs),
            )
        ]


WRITES = "SELECT COUNT(*) FROM history WHERE type <> 'AuditEvent'"


def provenances(db: Database, patient: str) -> list[dict]:
    with db.read() as c:
        rows = c.all(
            "SELECT body FROM resource WHERE type = 'Provenance' AND patient = ? ORDER BY seq", (patient,)
        )
    return [orjson.loads(bytes(t[0])) for t in rows]


def test_a_first_import_creates_the_family_and_a_second_changes_nothing(
    database: Database, tmp_path: Path
) -> None:
    trust = add_trust(database)
    doc = fresh_person("richard")
    nhs = doc["person"]["nhsNumber"]
    path = write(tmp_path, "richard.json", doc)

    (first,) = run(database, trust, path)
    assert (first.outcome, first.problems) == ("created", [])
    written = family(database, nhs)
    assert {"plan", "care-team", "risk-assessment", "goal/1", "section/about-me"} <= set(written)
    assert written["plan"]["body"]["meta"]["tag"][0] == {
        "system": SECTION_SYSTEM,
        "code": PLAN_CODE,
        "display": "My care and support plan",
    }
    with database.read() as c:
        (changes,) = c.one(WRITES)

    (second,) = run(database, trust, path)
    assert second.outcome == "unchanged"
    with database.read() as c:
        assert c.one(WRITES)[0] == changes  # not one new version (the lookup's audit aside)
    assert patients(database, nhs) == [written["plan"]["row"].patient]


def test_an_edited_document_makes_new_versions_of_exactly_what_changed(
    database: Database, tmp_path: Path
) -> None:
    trust = add_trust(database)
    doc = fresh_person("richard")
    nhs = doc["person"]["nhsNumber"]
    run(database, trust, write(tmp_path, "plan.json", doc))
    before = {k: v["row"].version for k, v in family(database, nhs).items()}

    edited = copy.deepcopy(doc)
    edited["sections"]["about-me"]["text"] += " I've started volunteering at the bike workshop."
    edited["sections"]["recovery-goals"]["goals"][1]["words"] = "Sleep through most nights."
    (result,) = run(database, trust, write(tmp_path, "plan.json", edited))
    assert result.outcome == "updated"

    after = {k: v["row"].version for k, v in family(database, nhs).items()}
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"section/about-me", "goal/2"}
    assert after["section/about-me"] == 2


def test_a_part_left_out_of_the_document_is_deleted(database: Database, tmp_path: Path) -> None:
    trust = add_trust(database)
    doc = fresh_person("richard")
    nhs = doc["person"]["nhsNumber"]
    run(database, trust, write(tmp_path, "plan.json", doc))
    crisis = family(database, nhs)["section/crisis-plan"]["row"]

    del doc["sections"]["crisis-plan"]
    doc["sections"]["recovery-goals"]["goals"].pop()
    (result,) = run(database, trust, write(tmp_path, "plan.json", doc))
    assert result.outcome == "updated"
    with database.read() as c:
        assert store.current(c, "CarePlan", crisis.id).deleted
    assert "section/crisis-plan" not in family(database, nhs) and "goal/4" not in family(database, nhs)


def test_the_provenance_names_the_source_and_the_custodian(database: Database, tmp_path: Path) -> None:
    trust = add_trust(database)
    doc = fresh_person("jenny")
    (result,) = run(database, trust, write(tmp_path, "jenny-from-rio.json", doc))
    patient = patients(database, doc["person"]["nhsNumber"])[0]
    (provenance,) = provenances(database, patient)
    source = provenance["entity"][0]["what"]
    assert source["identifier"] == {
        "system": IMPORT_SOURCE_SYSTEM,
        "value": f"{tmp_path}/jenny-from-rio.json#$",
    }
    assert "JSON care-plan document" in source["display"]
    assert provenance["agent"][0]["who"] == {"reference": f"Organization/{trust}"}
    assert provenance["target"][0] == {"reference": f"Patient/{patient}"}
    assert len(provenance["target"]) == len(result.bundle["entry"]) - 1  # all it wrote, but itself


def test_a_known_person_is_matched_by_nhs_number_and_keeps_what_the_document_does_not_say(
    database: Database, tmp_path: Path
) -> None:
    trust = add_trust(database)
    doc = fresh_person("zoe")
    nhs = doc["person"]["nhsNumber"]
    with database.write() as c:
        store.put(
            c,
            {
                "resourceType": "Patient",
                "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs}],
                "name": [{"use": "official", "family": "Old-name", "given": ["Zoe"]}],
                "generalPractitioner": [{"reference": "Organization/some-gp"}],
                "managingOrganization": {"reference": f"Organization/{trust}"},
            },
            rid="zoe-from-the-api",
            method="PUT",
        )
    (result,) = run(database, trust, write(tmp_path, "zoe.json", doc))
    assert result.outcome == "created"  # her plan is new; she is not
    assert patients(database, nhs) == ["zoe-from-the-api"]
    with database.read() as c:
        zoe = store.current(c, "Patient", "zoe-from-the-api").resource()
    assert zoe["name"][0]["family"] == doc["person"]["familyName"]
    assert zoe["generalPractitioner"] == [{"reference": "Organization/some-gp"}]


def test_a_person_held_by_another_trust_is_refused_and_nothing_is_written(
    database: Database, tmp_path: Path
) -> None:
    ours, theirs = add_trust(database, "our-trust"), add_trust(database, "their-trust")
    doc = fresh_person("fred")
    nhs = doc["person"]["nhsNumber"]
    run(database, theirs, write(tmp_path, "fred.json", doc))
    held = {k: v["row"].version for k, v in family(database, nhs).items()}

    doc["sections"]["about-me"]["text"] = "Changed by the wrong trust."
    (result,) = run(database, ours, write(tmp_path, "fred.json", doc))
    assert result.outcome == "failed"
    (problem,) = result.problems
    assert problem.field == "person.nhsNumber" and problem.file.endswith("fred.json")
    assert "held by Organization/their-trust" in problem.message
    assert {k: v["row"].version for k, v in family(database, nhs).items()} == held


def test_the_first_import_of_the_demo_world_updates_its_plans_in_place(
    database: Database, tmp_path: Path
) -> None:
    load_demo(database)
    path = write(tmp_path, "millie.json", golden("millie"))
    (first,) = run(database, "awp-bath-cmht", path)
    assert first.outcome == "updated"  # one person, one parent plan: no second plan beside it
    with database.read() as c:
        plans = [
            t[0]
            for t in c.all(
                "SELECT r.id FROM resource r JOIN idx_token i ON i.type = r.type AND i.id = r.id "
                "WHERE r.type = 'CarePlan' AND r.patient = 'millie' AND r.deleted = 0 AND i.param = '_tag' "
                "AND i.code = 'plan'"
            )
        ]
        transfer = store.current(c, "CarePlan", "millie-transfer-section").resource()
    assert plans == ["millie-plan"]
    assert family(database, NHS_NUMBERS["millie"])["section/about-me"]["row"].id == "millie-about-me"
    assert transfer["partOf"] == [{"reference": "CarePlan/millie-plan"}]
    (again,) = run(database, "awp-bath-cmht", path)
    assert again.outcome == "unchanged"


def test_a_caseload_row_updates_what_it_states_and_removes_nothing(
    database: Database, tmp_path: Path
) -> None:
    trust = add_trust(database)
    doc = fresh_person("george", nextReview="2027-01-11")
    nhs = doc["person"]["nhsNumber"]
    run(database, trust, write(tmp_path, "george.json", doc))
    before = {k: v["row"].version for k, v in family(database, nhs).items()}
    caseload = tmp_path / "caseload.csv"
    caseload.write_text(
        "nhs_number,given_name,family_name,date_of_birth,coordinator,team,contact_frequency,contact_method,next_review\n"
        f"{nhs},George,{doc['person']['familyName']},{doc['person']['dateOfBirth']},John Hughes,"
        f"{doc['plan']['team']},Every fortnight,home visit,2027-03-01\n"
    )
    (result,) = run(database, trust, caseload)
    assert result.outcome == "updated"
    after = family(database, nhs)
    assert set(after) == set(before)  # nothing removed
    changed = {k for k in after if after[k]["row"].version != before[k]}
    assert changed == {"plan", "section/contact-plan"}
    parent = after["plan"]["body"]
    assert parent["description"] == doc["plan"]["summary"]  # kept: the caseload does not say
    assert parent["activity"][0]["detail"]["scheduledPeriod"] == {"start": "2027-03-01"}


def test_the_importer_acts_as_the_trust_and_its_lookups_are_audited(
    database: Database, tmp_path: Path
) -> None:
    load_demo(database)
    run(database, "awp-bath-cmht", write(tmp_path, "zoe.json", golden("zoe")))
    with database.read() as c:
        (events,) = c.one("SELECT COUNT(*) FROM resource WHERE type = 'AuditEvent' AND patient = 'zoe'")
        partner = partners.get(c, "awp-bath-cmht")
    assert events >= 1
    assert partner is not None and partner.kind == "trust"


def test_a_plan_whose_part_changed_meanwhile_is_refused_whole(database: Database, tmp_path: Path) -> None:

    trust = add_trust(database)
    doc = fresh_person("richard")
    nhs = doc["person"]["nhsNumber"]
    run(database, trust, write(tmp_path, "plan.json", doc))
    doc["sections"]["about-me"]["text"] = "Edited in the trust's system."
    doc["sections"]["crisis-plan"]["text"] = "Edited too."
    (record,) = read_records([write(tmp_path, "plan.json", doc)])
    target = DatabaseTarget(database, trust)
    parts, _ = map_record(record, f"Organization/{trust}")
    found = found_resources(target.batch(lookup_bundle(parts)))
    source = Source("plan.json", "$", "JSON", "0" * 64)
    when = "2025-03-12T10:00:00Z"
    plan = plan_writes(parts, found, source=source, custodian=f"Organization/{trust}", recorded=when)
    # Meanwhile someone changes the crisis plan through the API...
    crisis = family(database, nhs)["section/crisis-plan"]
    with database.write() as c:
        changed = {**crisis["body"], "description": "Changed meanwhile"}
        store.put(c, changed, rid=crisis["row"].id, method="PUT")
    before = {k: v["row"].version for k, v in family(database, nhs).items()}
    # ...so the import's If-Match no longer holds: none of its changes are written.
    with pytest.raises(TargetError) as refused:
        target.transaction(plan.bundle())
    target.close()
    assert refused.value.status == 412
    assert {k: v["row"].version for k, v in family(database, nhs).items()} == before
    assert family(database, nhs)["section/about-me"]["body"]["description"] != "Edited in the trust's system."
