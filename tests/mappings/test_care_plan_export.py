"""`carebridge map export`: a person's plan back out as the JSON or XML document, or as a
plain-language HTML page, read as a partner through the disclosure gate: a partner sees
only what the person's consent lets it see, and what it was shown is audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from plan_world import EXAMPLES, SCHEMAS, golden
from typer.testing import CliRunner

from carebridge.mappings.demo_world import NHS_NUMBERS
from carebridge.server.cli import app
from carebridge.server.db import Database
from carebridge.server.demo import load_demo
from tests.conftest import _pg_available, drop_pg_schema, make_url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """The demo world, with the seed people's golden plans imported by their custodian."""
    if request.param == "postgresql" and (reason := _pg_available()):
        pytest.skip(reason)
    url = make_url(request.param, tmp_path_factory)
    db = Database(url)
    load_demo(db)
    result = CliRunner().invoke(
        app, ["map", "import", *map(str, sorted(EXAMPLES.glob("*.json"))), "--database", url]
    )
    assert result.exit_code == 0, result.output
    yield db
    db.close()
    if request.param == "postgresql":
        drop_pg_schema(url)


def export(db: Database, person: str, fmt: str, *partner: str) -> tuple[int, str]:
    args = ["map", "export", "--patient", NHS_NUMBERS[person], "--format", fmt, "--database", db.url]
    result = CliRunner().invoke(app, [*args, *(("--partner", *partner) if partner else ())])
    return result.exit_code, result.stdout


def audit_events(db: Database) -> int:
    with db.read() as c:
        return c.one("SELECT COUNT(*) FROM resource WHERE type = 'AuditEvent'")[0]


@pytest.mark.parametrize("person", ["millie", "george", "zoe"])
def test_the_custodian_exports_exactly_the_document_that_was_imported(demo: Database, person: str) -> None:
    code, out = export(demo, person, "json")
    assert code == 0
    assert json.loads(out) == golden(person)


def test_the_xml_export_is_the_same_plan_and_matches_the_xsd(demo: Database, tmp_path: Path) -> None:
    code, out = export(demo, "richard", "xml")
    assert code == 0
    root = etree.fromstring(out.encode())
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "care-plan-document.xsd")))
    assert schema.validate(root), schema.error_log.last_error
    assert "<text>I'm Richard, 37, ex-army, living in Bath." in out


def test_a_voluntary_organisation_sees_millies_plan_but_not_her_crisis_plan_or_risks(demo: Database) -> None:
    before = audit_events(demo)
    code, page = export(demo, "millie", "html", "bath-mind")
    assert code == 0
    millie = golden("millie")["sections"]
    assert "About me" in page and "Please talk to me, not about me: ask me first." in page
    assert "Walk Bella (the dog) by the river in Memorial Park" in page
    assert "My crisis plan" not in page and "ten-minutes list (music, cold water" not in page
    assert (
        "Risks, talked about openly" not in page and millie["risk-assessment"]["risks"][0]["what"] not in page
    )
    assert "This copy is for Bath Mind" in page
    assert audit_events(demo) > before  # what Bath Mind was shown is audited


def test_her_care_team_sees_the_whole_plan_in_plain_words(demo: Database) -> None:
    code, page = export(demo, "millie", "html")
    assert code == 0
    for heading in ("About me", "My crisis plan", "Risks, talked about openly", "Moving between services"):
        assert f">{heading}</h2>" in page
    assert "In an emergency or a crisis" in page and "116 123" in page
    assert "Recovery Star, work: aiming for 6 out of 10" in page
    assert "Next review</dt><dd>10 June 2027" in page
    assert "the team that holds Millie&rsquo;s record" in page


def test_someone_whose_consent_shares_nothing_with_the_partner_is_not_found(demo: Database) -> None:
    code, out = export(demo, "millie", "json", "keynsham-gp")
    assert code == 1
    assert out == ""


def test_an_unknown_nhs_number_is_not_found(demo: Database) -> None:
    result = CliRunner().invoke(
        app, ["map", "export", "--patient", "9995000016", "--format", "json", "--database", demo.url]
    )
    assert result.exit_code != 0
