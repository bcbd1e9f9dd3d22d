"""Storage (issue 3, "Storage"): one schema on two backends; every write is one
transaction (resource + history + index rows), so a failure leaves nothing half written;
the schema migrates idempotently; SQLite and PostgreSQL answer searches alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import orjson
import pytest

from carebridge.server import interaction as ix
from carebridge.server import store
from carebridge.server.db import Database
from carebridge.server.demo import load_demo
from carebridge.server.disclosure import requester_for
from carebridge.server.partners import Registry
from tests.conftest import _pg_available, drop_pg_schema, pg_schema_url, uid
from tests.server.fhir_checks import NHS_SYSTEM, SECTION_SYSTEM, nhs_number

INDEX_TABLES = ("idx_token", "idx_string", "idx_date", "idx_ref")


def millie_like(pid: str) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": NHS_SYSTEM, "value": nhs_number()}],
        "name": [{"family": "Harris", "given": ["Millie"]}],
        "birthDate": "2008-07-26",
        "managingOrganization": {"reference": "Organization/awp-bath-cmht"},
    }


def traces(db: Database, rtype: str, rid: str) -> dict[str, int]:
    """How many rows of every kind the database holds for one resource."""
    with db.read() as c:
        out = {
            "resource": c.one("SELECT COUNT(*) FROM resource WHERE type = ? AND id = ?", (rtype, rid))[0],
            "history": c.one("SELECT COUNT(*) FROM history WHERE type = ? AND id = ?", (rtype, rid))[0],
        }
        for table in INDEX_TABLES:
            out[table] = c.one(f"SELECT COUNT(*) FROM {table} WHERE type = ? AND id = ?", (rtype, rid))[0]
    return out


class Boom(RuntimeError):
    pass


def test_a_write_stores_the_resource_its_history_and_its_index_rows(database: Database):
    pid = uid("p")
    with database.write() as c:
        row, created = store.put(c, millie_like(pid), rid=pid, method="PUT")
    assert created and row.version == 1
    t = traces(database, "Patient", pid)
    assert t["resource"] == 1 and t["history"] == 1
    assert t["idx_token"] >= 1 and t["idx_string"] >= 1 and t["idx_date"] == 1 and t["idx_ref"] == 1
    with database.read() as c:
        stored = store.current(c, "Patient", pid)
    assert orjson.loads(stored.body)["meta"]["versionId"] == "1"  # stored bytes, served as they are


def test_a_write_that_fails_while_indexing_leaves_nothing_behind(database: Database, monkeypatch):
    real = store._reindex

    def half_then_fail(c, rtype, rid, resource):
        real(c, rtype, rid, resource)  # index rows written ...
        raise Boom("the disk filled up")  # ... then the write fails

    monkeypatch.setattr(store, "_reindex", half_then_fail)
    pid = uid("p")
    with pytest.raises(Boom), database.write() as c:
        store.put(c, millie_like(pid), rid=pid, method="PUT")
    assert traces(database, "Patient", pid) == dict.fromkeys(("resource", "history", *INDEX_TABLES), 0)
    with database.read() as c:
        assert c.one("SELECT COUNT(*) FROM patient_facts WHERE patient = ?", (pid,))[0] == 0


def test_an_update_that_fails_midway_keeps_the_previous_version_whole(database: Database, monkeypatch):
    pid = uid("p")
    with database.write() as c:
        store.put(c, millie_like(pid), rid=pid, method="PUT")
    before = traces(database, "Patient", pid)
    with database.read() as c:
        old_body = store.current(c, "Patient", pid).body

    def fail_after_deleting(c, rtype, rid, resource):
        for table in INDEX_TABLES:
            c.run(f"DELETE FROM {table} WHERE type = ? AND id = ?", (rtype, rid))
        raise Boom("crash between deleting and writing the index rows")

    monkeypatch.setattr(store, "_reindex", fail_after_deleting)
    changed = {**millie_like(pid), "name": [{"family": "Changed"}]}
    with pytest.raises(Boom), database.write() as c:
        store.put(c, changed, rid=pid, method="PUT")
    assert traces(database, "Patient", pid) == before
    with database.read() as c:
        assert store.current(c, "Patient", pid).body == old_body
        found = c.all(
            "SELECT id FROM idx_string WHERE type = 'Patient' AND param = 'family' AND value = 'harris'"
        )
    assert (pid,) in [tuple(r) for r in found]


def test_a_delete_that_fails_midway_leaves_the_resource_there(database: Database, monkeypatch):
    pid = uid("p")
    with database.write() as c:
        store.put(c, millie_like(pid), rid=pid, method="PUT")
    before = traces(database, "Patient", pid)
    monkeypatch.setattr(store, "_after_delete", lambda *a: (_ for _ in ()).throw(Boom("late failure")))
    with pytest.raises(Boom), database.write() as c:
        store.delete(c, "Patient", pid)
    assert traces(database, "Patient", pid) == before
    with database.read() as c:
        assert not store.current(c, "Patient", pid).deleted


def test_a_failed_organisation_write_leaves_the_organisation_tree_as_it_was(database: Database, monkeypatch):
    with database.write() as c:
        store.put(c, {"resourceType": "Organization", "id": "awp", "name": "AWP"}, rid="awp", method="PUT")
    with database.read() as c:
        tree = sorted(map(tuple, c.all("SELECT descendant, ancestor FROM org_closure")))

    def fail(c, resource, patient):
        store.rebuild_org_closure(c)
        raise Boom("after the tree was rebuilt")

    monkeypatch.setattr(store, "_after_write", fail)
    team = {"resourceType": "Organization", "id": "cmht", "partOf": {"reference": "Organization/awp"}}
    with pytest.raises(Boom), database.write() as c:
        store.put(c, team, rid="cmht", method="PUT")
    with database.read() as c:
        assert sorted(map(tuple, c.all("SELECT descendant, ancestor FROM org_closure"))) == tree
    assert traces(database, "Organization", "cmht")["resource"] == 0


def test_migrating_twice_changes_nothing_and_keeps_the_data(database: Database):
    pid = uid("p")
    with database.write() as c:
        store.put(c, millie_like(pid), rid=pid, method="PUT")
    with database.read() as c:
        versions = c.all("SELECT version FROM schema_version ORDER BY version")
        generations = c.all("SELECT name, value FROM generation ORDER BY name")
    again = Database(database.url)
    again.migrate()
    try:
        with again.read() as c:
            assert c.all("SELECT version FROM schema_version ORDER BY version") == versions
            assert c.all("SELECT name, value FROM generation ORDER BY name") == generations
            assert store.current(c, "Patient", pid) is not None
    finally:
        again.close()


def test_an_unsupported_database_url_says_which_ones_are(tmp_path: Path):
    with pytest.raises(ValueError, match="sqlite:///PATH or postgresql://"):
        Database(f"mysql://{tmp_path}/x")


# -- the two backends answer alike -------------------------------------------------------------------
@pytest.fixture(scope="module")
def both() -> Iterator[dict[str, Database]]:
    """The demo world loaded into a SQLite file and a PostgreSQL schema, same day."""
    if reason := _pg_available():
        pytest.skip(reason)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pg_url = pg_schema_url()
        dbs = {"sqlite": Database(f"sqlite:///{tmp}/same.db"), "postgresql": Database(pg_url)}
        today = date(2026, 3, 14)
        for db in dbs.values():
            load_demo(db, today)
        yield dbs
        for db in dbs.values():
            db.close()
        drop_pg_schema(pg_url)


def answer(db: Database, partner: str, rtype: str, params: list[tuple[str, str]]) -> tuple:
    registry = Registry()
    with db.read() as c:
        requester = requester_for(
            c, registry, partner, practitioner=None, purpose="TREAT", break_glass_reason=None
        )
    ctx = ix.Ctx(
        db=db, registry=registry, requester=requester, scope="system/*.cruds", base_url="http://x/fhir"
    )
    bundle = orjson.loads(ix.search_type(ctx, rtype, params, "http://x/fhir/search").body)
    entries = [
        (e["search"]["mode"], e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle.get("entry", [])
    ]
    nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
    return bundle.get("total"), entries, nxt


SEARCHES = [
    ("awp-bath-cmht", "CarePlan", [("patient", "millie"), ("_total", "accurate")]),
    ("awp-bath-cmht", "CarePlan", [("_sort", "-date"), ("_count", "10")]),
    ("awp-bath-cmht", "CarePlan", [("_tag", f"{SECTION_SYSTEM}|crisis-plan")]),
    ("awp-bath-cmht", "CarePlan", [("_id", "millie-plan"), ("_revinclude", "CarePlan:part-of")]),
    ("awp-bath-cmht", "Patient", [("family", "har")]),
    ("awp-bath-cmht", "Patient", [("birthdate", "lt1960"), ("_sort", "birthdate")]),
    ("awp-bath-cmht", "Patient", [("identifier", f"{NHS_SYSTEM}|9991000011")]),
    ("awp-bath-cmht", "Task", [("owner", "Organization/awp-banes-pcls"), ("_sort", "period")]),
    ("awp-bath-cmht", "Task", [("part-of", "Task/millie-transfer"), ("status:not", "completed")]),
    ("awp-bath-cmht", "Consent", [("actor", "Organization/banes-voluntary-alliance")]),
    ("awp-bath-cmht", "Goal", [("patient", "millie"), ("_include", "Goal:patient")]),
    ("bath-mind", "CarePlan", [("patient", "millie"), ("_total", "accurate"), ("_count", "5")]),
    ("keynsham-gp", "CarePlan", [("_total", "accurate")]),
    ("banes-icr", "CarePlan", [("patient", "george"), ("_include", "CarePlan:patient")]),
]


@pytest.mark.parametrize("partner, rtype, params", SEARCHES, ids=[f"{p}:{t}?{q}" for p, t, q in SEARCHES])
def test_sqlite_and_postgresql_give_the_same_search_answers(both, partner, rtype, params):
    on_sqlite = answer(both["sqlite"], partner, rtype, params)
    on_postgresql = answer(both["postgresql"], partner, rtype, params)
    assert on_sqlite == on_postgresql
    assert on_sqlite[1], "the search should find something in the demo world"


def test_both_backends_hold_the_same_index_rows_for_the_demo_world(both):
    counts = {}
    for name, db in both.items():
        with db.read() as c:
            counts[name] = {
                t: c.all(f"SELECT param, COUNT(*) FROM {t} GROUP BY param ORDER BY param")
                for t in INDEX_TABLES
            }
            counts[name] = {t: [tuple(r) for r in rows] for t, rows in counts[name].items()}
    assert counts["sqlite"] == counts["postgresql"]
