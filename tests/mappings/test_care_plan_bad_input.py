"""Bad input to `carebridge map import`: each bad record is a clear error naming its file,
its record (row or JSON path) and the field; the other records in the same run still
import; a failing record writes nothing; the run exits 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plan_world import EXAMPLES, add_trust, bad_check_digit, fresh_person
from typer.testing import CliRunner

from carebridge.mappings.plan_xml import write_xml
from carebridge.server.cli import app
from carebridge.server.db import Database

CASELOAD_HEAD = (
    "nhs_number,given_name,family_name,date_of_birth,coordinator,team,"
    "contact_frequency,contact_method,next_review"
)


def import_files(db: Database, trust: str, *paths: Path, extra: tuple[str, ...] = ()) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["map", "import", *map(str, paths), "--database", db.url, "--partner", trust, *extra]
    )
    return result.exit_code, result.output


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error ")]


def people_in(db: Database) -> int:
    with db.read() as c:
        return c.one("SELECT COUNT(*) FROM resource WHERE type = 'Patient' AND deleted = 0")[0]


def caseload_row(doc: dict, **cells: str) -> str:
    p = doc["person"]
    row = {
        "nhs_number": p["nhsNumber"],
        "given_name": p["givenName"],
        "family_name": p["familyName"],
        "date_of_birth": p.get("dateOfBirth", ""),
        "coordinator": "John Hughes",
        "team": "Bath Community Mental Health Team",
        "contact_frequency": "Weekly",
        "contact_method": "phone",
        "next_review": "2027-02-01",
        **cells,
    }
    return ",".join(row[c] for c in CASELOAD_HEAD.split(","))


@pytest.fixture
def trust(database: Database) -> str:
    return add_trust(database)


def test_a_run_with_every_kind_of_bad_input_imports_the_good_records_and_names_each_bad_one(
    database: Database, trust: str, tmp_path: Path
) -> None:
    good, unreal, wrong_digit = fresh_person("jenny"), fresh_person("zoe"), fresh_person("ava")
    unreal["person"]["dateOfBirth"] = "1998-02-30"
    wrong_digit["person"]["nhsNumber"] = bad_check_digit(wrong_digit["person"]["nhsNumber"])
    no_nhs = fresh_person("fred")
    del no_nhs["person"]["nhsNumber"]
    (tmp_path / "plans.json").write_text(json.dumps([good, no_nhs, wrong_digit, unreal]))

    george = write_xml([fresh_person("george")])
    (tmp_path / "heading.xml").write_bytes(george.replace(b'heading="about-me"', b'heading="hobbies"'))
    (tmp_path / "cut-short.xml").write_bytes(write_xml([fresh_person("richard")])[:700])
    (tmp_path / "laughs.xml").write_bytes(
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b'<carePlan xmlns="https://carebridge.example/ns/care-plan" version="1"><person>'
        b"<nhsNumber>&lol2;</nhsNumber></person></carePlan>"
    )
    (tmp_path / "xxe.xml").write_bytes(
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<carePlan xmlns="https://carebridge.example/ns/care-plan" version="1"><person>'
        b"<givenName>&x;</givenName></person></carePlan>"
    )
    (tmp_path / "columns.csv").write_text("nhs number,name\n9991000011,Millie\n")
    latin, fine = fresh_person("millie"), fresh_person("millie")
    latin["person"]["familyName"] = "Héloïse"
    (tmp_path / "caseload.csv").write_bytes(
        f"{CASELOAD_HEAD}\n{caseload_row(latin)}\n{caseload_row(fine)}\n".encode("latin-1")
    )

    code, output = import_files(
        database,
        trust,
        *(tmp_path / n for n in ("plans.json", "heading.xml", "cut-short.xml", "laughs.xml", "xxe.xml")),
        tmp_path / "columns.csv",
        tmp_path / "caseload.csv",
    )
    assert code == 1
    errors = "\n".join(error_lines(output))
    assert f"{tmp_path}/plans.json, $[1], person.nhsNumber: is missing" in errors
    assert f"{tmp_path}/plans.json, $[2], person.nhsNumber:" in errors and "check digit" in errors
    assert f"{tmp_path}/plans.json, $[3], person.dateOfBirth: '1998-02-30' is not a real date" in errors
    assert f"{tmp_path}/heading.xml, /carePlan, sections.hobbies: unknown section heading 'hobbies'" in errors
    assert f"{tmp_path}/cut-short.xml, /: the XML is not well-formed" in errors
    assert f"{tmp_path}/laughs.xml, /: XML with a DOCTYPE or ENTITY declaration is refused" in errors
    assert f"{tmp_path}/xxe.xml, /: XML with a DOCTYPE or ENTITY declaration is refused" in errors
    assert f"{tmp_path}/columns.csv, row 1, header: missing column(s): nhs_number" in errors
    assert f"{tmp_path}/caseload.csv, row 2, family_name: is not UTF-8 text" in errors
    assert "root:" not in output  # /etc/passwd was never read
    assert "lollollollol" not in output
    # Jenny's plan ($[0]) and the good caseload row (row 3) imported; nothing of the rest.
    assert people_in(database) == 2
    assert "│       2 │       0 │         0 │      9 │" in output


def test_a_bad_section_row_fails_only_its_own_person(database: Database, trust: str, tmp_path: Path) -> None:
    first, second = fresh_person("ava"), fresh_person("fred")
    (tmp_path / "caseload.csv").write_text(
        f"{CASELOAD_HEAD}\n{caseload_row(first)}\n{caseload_row(second)}\n"
    )
    (tmp_path / "sections.csv").write_text(
        "nhs_number,section,text\n"
        f"{first['person']['nhsNumber']},About me,I'm Ava.\n"
        f"{second['person']['nhsNumber']},hobbies,Sheds\n"
        "9991000011,about-me,Nobody on this caseload\n"
    )
    code, output = import_files(database, trust, tmp_path / "caseload.csv", tmp_path / "sections.csv")
    assert code == 1
    errors = error_lines(output)
    assert any(
        f"{tmp_path}/sections.csv, row 3, section: unknown section heading 'hobbies'" in e for e in errors
    )
    assert any(f"{tmp_path}/sections.csv, row 4, nhs_number: no caseload row" in e for e in errors)
    assert people_in(database) == 1  # Ava, with her words; Fred waits until his row is fixed


def test_the_example_files_import_cleanly_in_every_format(database: Database, trust: str) -> None:
    code, output = import_files(database, trust, *sorted(EXAMPLES.glob("*.json")))
    assert code == 0, output
    assert "│       7 │       0 │         0 │      0 │" in output
    code, output = import_files(database, trust, *sorted((EXAMPLES / "xml").glob("*.xml")))
    assert code == 0, output
    assert "│       0 │       0 │         7 │      0 │" in output  # the same plans: unchanged
    code, output = import_files(
        database, trust, EXAMPLES / "csv" / "caseload.csv", EXAMPLES / "csv" / "sections.csv"
    )
    assert code == 0, output
    assert people_in(database) == 7


def test_a_dry_run_checks_and_reports_but_writes_nothing(
    database: Database, trust: str, tmp_path: Path
) -> None:
    (tmp_path / "plan.json").write_text(json.dumps(fresh_person("richard")))
    out = tmp_path / "bundle.json"
    code, output = import_files(
        database, trust, tmp_path / "plan.json", extra=("--dry-run", "--out", str(out))
    )
    assert code == 0, output
    assert "would be (dry run)" in output and "│       1 │" in output
    assert people_in(database) == 0
    bundle = json.loads(out.read_text())
    assert bundle["type"] == "transaction"
    assert {e["request"]["method"] for e in bundle["entry"]} == {"PUT"}
    assert bundle["entry"][0]["request"]["url"].startswith(
        "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C"
    )
