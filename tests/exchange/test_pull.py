"""`carebridge pull --partner ID`: read a partner's FHIR server (Patient by NHS number, then
CarePlan, CareTeam and Task, page by page), take foreign plans into the care-plan model,
store each version with a Provenance naming where it came from, and never overwrite
what was changed here since (conflicts are reported, the local version is kept).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import orjson
import pytest
from exchange_world import nhs_number
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from carebridge.mappings.foreign_plan import PULLED_FROM_SYSTEM, SOURCE_ID_SYSTEM
from carebridge.mappings.vocabulary import NHS_NUMBER_SYSTEM, SECTION_SYSTEM
from carebridge.server import partners, store
from carebridge.server.cli import app
from carebridge.server.db import Database

ICR = "test-icr"
TRUST = "test-trust"
PAGE = 2


@dataclass
class FakeIcr:
    """A partner FHIR server holding one person's records, paging searches two at a time."""

    server: HTTPServer
    nhs: str
    records: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.server.expect_request(re.compile("/fhir/.*")).respond_with_handler(self.handle)
        foreign = {"reference": "Patient/icr-77"}
        self.put(
            {
                "resourceType": "Patient",
                "id": "icr-77",
                "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": self.nhs}],
            }
        )
        self.put(
            {
                "resourceType": "CareTeam",
                "id": "team-1",
                "subject": foreign,
                "participant": [{"member": {"reference": "Practitioner/icr-doc", "display": "Dr Foreign"}}],
            }
        )
        self.put(
            {
                "resourceType": "CarePlan",
                "id": "plan-1",
                "status": "active",
                "intent": "plan",
                "title": "Care plan",
                "subject": foreign,
            }
        )
        self.put(
            {
                "resourceType": "CarePlan",
                "id": "plan-2",
                "status": "active",
                "intent": "plan",
                "category": [{"text": "Crisis plan"}],
                "description": "theirs",
                "subject": foreign,
                "partOf": [{"reference": "CarePlan/plan-1"}],
            }
        )
        self.put(
            {
                "resourceType": "CarePlan",
                "id": "plan-3",
                "status": "active",
                "intent": "plan",
                "title": "My daily and weekly activities",
                "subject": foreign,
                "partOf": [{"reference": "CarePlan/plan-1"}],
                "careTeam": [{"reference": "CareTeam/team-1"}],
            }
        )
        self.put(
            {
                "resourceType": "Task",
                "id": "task-1",
                "status": "requested",
                "intent": "order",
                "for": foreign,
                "focus": {"reference": "CarePlan/plan-1"},
                "owner": {"reference": "Organization/icr-org", "display": "Somewhere else"},
            }
        )

    @property
    def base(self) -> str:
        return self.server.url_for("/fhir")

    def put(self, resource: dict, *, updated: str | None = None) -> None:
        key = f"{resource['resourceType']}/{resource['id']}"
        old = self.records.get(key, {}).get("meta", {})
        version = int(old.get("versionId", "0")) + 1
        resource["meta"] = {
            "versionId": str(version),
            "lastUpdated": updated or f"2026-05-0{version}T10:00:00Z",
        }
        self.records[key] = resource

    def handle(self, request: Request) -> Response:
        rtype = request.path.rstrip("/").split("/")[-1]
        args = request.args
        if rtype == "Patient":
            hits = [
                r
                for k, r in self.records.items()
                if k.startswith("Patient/")
                if args.get("identifier") == f"{NHS_NUMBER_SYSTEM}|{self.nhs}"
            ]
        else:
            assert args.get("patient") == "Patient/icr-77"
            hits = [r for k, r in sorted(self.records.items()) if k.startswith(f"{rtype}/")]
        page = int(args.get("page", "0"))
        chunk = hits[page * PAGE : (page + 1) * PAGE]
        bundle: dict = {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "self", "url": request.url}],
        }
        if len(hits) > (page + 1) * PAGE:
            query = urlencode({**args.to_dict(), "page": page + 1})
            bundle["link"].append({"relation": "next", "url": f"{self.base}/{rtype}?{query}"})
        bundle["entry"] = [
            {
                "fullUrl": f"{self.base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in chunk
        ]
        return Response(orjson.dumps(bundle), content_type="application/fhir+json")


@pytest.fixture
def world(database: Database) -> Iterator[tuple[Database, FakeIcr, str]]:
    server = HTTPServer(threaded=True)
    server.start()
    held = nhs_number()
    icr = FakeIcr(server, held)
    with database.write() as c:
        store.put(
            c, {"resourceType": "Organization", "id": TRUST, "name": "Test trust"}, rid=TRUST, method="PUT"
        )
    partners.add(
        database, partners.Partner(ICR, "Test ICR", "icr", partners.DEFAULT_SCOPES["icr"], fhir_base=icr.base)
    )
    with database.write() as c:
        store.put(
            c,
            {
                "resourceType": "Patient",
                "id": "local-1",
                "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": held}],
                "managingOrganization": {"reference": f"Organization/{TRUST}"},
            },
            rid="local-1",
            method="PUT",
        )
    yield database, icr, held
    server.stop()


def pull(db: Database, *more: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["pull", "--partner", ICR, "--database", db.url, *more])
    return result.exit_code, result.output


def current(db: Database, rtype: str, rid: str) -> dict:
    with db.read() as c:
        row = store.current(c, rtype, rid)
    assert row is not None and not row.deleted, f"{rtype}/{rid} is not stored"
    return row.resource()


def provenances(db: Database) -> list[dict]:
    with db.read() as c:
        return [
            orjson.loads(bytes(t[0]))
            for t in c.all("SELECT body FROM resource WHERE type = 'Provenance' AND deleted = 0")
        ]


def sections(resource: dict) -> list[str]:
    return [t["code"] for t in resource["meta"].get("tag", []) if t["system"] == SECTION_SYSTEM]


def test_a_pull_takes_the_partners_records_into_the_care_plan_model(
    world: tuple[Database, FakeIcr, str],
) -> None:
    db, icr, _ = world
    code, out = pull(db)
    assert code == 0, out
    assert "5 new" in out
    parent, crisis, daily = (current(db, "CarePlan", f"{ICR}-plan-{n}") for n in (1, 2, 3))
    assert [sections(parent), sections(crisis), sections(daily)] == [
        ["plan"],
        ["crisis-plan"],
        ["daily-activities"],
    ]
    assert crisis["subject"] == {"reference": "Patient/local-1"}
    assert crisis["partOf"] == [{"reference": f"CarePlan/{ICR}-plan-1"}]
    assert daily["careTeam"] == [{"reference": f"CareTeam/{ICR}-team-1"}]
    assert crisis["meta"]["source"] == f"{icr.base}/CarePlan/plan-2"
    assert {"system": PULLED_FROM_SYSTEM, "code": ICR} in crisis["meta"]["tag"]
    team = current(db, "CareTeam", f"{ICR}-team-1")
    # A practitioner carebridge does not hold keeps its name, not a dangling reference.
    assert team["participant"][0]["member"] == {"display": "Dr Foreign"}
    task = current(db, "Task", f"{ICR}-task-1")
    assert task["for"] == {"reference": "Patient/local-1"}
    assert task["focus"] == {"reference": f"CarePlan/{ICR}-plan-1"}
    assert task["owner"] == {"display": "Somewhere else"}


def test_every_pulled_version_has_a_provenance_naming_its_source(
    world: tuple[Database, FakeIcr, str],
) -> None:
    db, icr, _ = world
    assert pull(db)[0] == 0
    provs = provenances(db)
    targets = {p["target"][0]["reference"].split("/_history/")[0] for p in provs}
    assert targets == {
        f"CareTeam/{ICR}-team-1",
        f"Task/{ICR}-task-1",
        *(f"CarePlan/{ICR}-plan-{n}" for n in (1, 2, 3)),
    }
    plan2 = next(p for p in provs if p["target"][0]["reference"].startswith(f"CarePlan/{ICR}-plan-2/"))
    assert plan2["agent"][0]["who"] == {"reference": f"Organization/{ICR}"}
    assert plan2["entity"][0]["what"]["identifier"] == {
        "system": SOURCE_ID_SYSTEM,
        "value": f"{icr.base}/CarePlan/plan-2",
    }


def test_pulling_again_changes_nothing_that_did_not_change(world: tuple[Database, FakeIcr, str]) -> None:
    db, icr, _ = world
    assert pull(db)[0] == 0
    before = len(provenances(db))
    icr.records["CarePlan/plan-3"]["description"] = "new at the partner"
    icr.put(icr.records["CarePlan/plan-3"])
    code, out = pull(db)
    assert code == 0, out
    assert "1 updated, 4 unchanged, 0 conflicts" in out
    assert current(db, "CarePlan", f"{ICR}-plan-3")["description"] == "new at the partner"
    assert len(provenances(db)) == before + 1


def test_a_record_changed_here_since_the_last_pull_is_never_overwritten(
    world: tuple[Database, FakeIcr, str],
) -> None:
    db, icr, _ = world
    assert pull(db)[0] == 0
    local = current(db, "CarePlan", f"{ICR}-plan-2")
    with db.write() as c:
        store.put(c, {**local, "description": "changed here"}, rid=local["id"], method="PUT")
    icr.records["CarePlan/plan-2"]["description"] = "changed there too"
    icr.put(icr.records["CarePlan/plan-2"])
    code, out = pull(db)
    assert code == 0, out
    assert "1 conflicts" in out
    assert f"CarePlan/{ICR}-plan-2 was changed here" in out
    assert current(db, "CarePlan", f"{ICR}-plan-2")["description"] == "changed here"


def test_an_older_version_at_the_partner_does_not_replace_a_newer_one(
    world: tuple[Database, FakeIcr, str],
) -> None:
    db, icr, _ = world
    icr.put(icr.records["CarePlan/plan-3"], updated="2026-06-01T10:00:00Z")
    assert pull(db)[0] == 0
    icr.records["CarePlan/plan-3"]["description"] = "restored from an old backup"
    icr.put(icr.records["CarePlan/plan-3"], updated="2026-01-01T10:00:00Z")
    code, out = pull(db)
    assert "is older than the version pulled before" in out
    assert "description" not in current(db, "CarePlan", f"{ICR}-plan-3")


def test_people_the_partner_does_not_hold_are_reported(world: tuple[Database, FakeIcr, str]) -> None:
    db, _, held = world
    code, out = pull(db, "--nhs-number", held, "--nhs-number", "9434765919")
    assert code == 0, out
    assert "9434765919: not held here" in out


def test_a_partner_without_a_fhir_base_cannot_be_pulled_from(database: Database) -> None:
    partners.add(database, partners.Partner("no-base", "No base", "gp", partners.DEFAULT_SCOPES["gp"]))
    result = CliRunner().invoke(app, ["pull", "--partner", "no-base", "--database", database.url])
    assert result.exit_code == 2
    assert "--fhir-base" in result.output
