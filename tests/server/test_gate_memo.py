"""What a bulk export's gate remembers (Consents read for a batch of patients at once, and
reference lists already found visible) changes nothing it discloses: for every partner
of the demo world and every stored resource, one long-lived gate gives the very bytes
and decisions a fresh gate per resource gives. Also: audit records stored in bulk
(`store.append`) are stored and indexed as one at a time would be.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from carebridge.server import store
from carebridge.server.catalog import RESOURCE_TYPES
from carebridge.server.db import Database
from carebridge.server.demo import load_demo
from carebridge.server.disclosure import Gate, requester_for
from carebridge.server.indexing import index_rows
from carebridge.server.partners import Registry
from carebridge.server.store import COLUMNS, row_from

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_a_batch_gate_discloses_what_a_fresh_gate_per_resource_does(database: Database) -> None:
    world = load_demo(database)
    registry = Registry()
    with database.read() as c:
        rows = [row_from(t) for t in c.all(f"SELECT {COLUMNS} FROM resource ORDER BY patient, type, id")]
        facts = [
            (p, org, int(v))
            for p, org, v in c.all("SELECT patient, managing_org, consent_version FROM patient_facts")
        ]
        assert any(r.refs for r in rows) and facts
        checked = 0
        for partner in world.partners:
            requester = requester_for(
                c, registry, partner["id"], practitioner=None, purpose="TREAT", break_glass_reason=None
            )
            assert requester is not None
            batch = Gate(c, Registry(), requester, now=NOW)
            batch.prime_many(facts)
            for row in rows * 2:  # twice: the second time from what the gate remembers
                fresh = Gate(c, Registry(), requester, now=NOW)
                assert batch.disclose(row) == fresh.disclose(row), (partner["id"], row.ref)
                if row.patient is not None and not row.deleted:
                    # ... and the facts it primed in bulk are the ones a lone read gathers.
                    assert batch.facts(row.patient) == fresh.facts(row.patient)
                    resource = orjson.loads(row.body) if row.body else {}
                    assert batch.decide(row, resource) == fresh.decide(row, resource)
                checked += 1
    assert checked >= 2 * len(rows) * len(world.partners)


class _NothingClear(set):
    """A gate's `_clear` that never remembers: every reference list is looked at again."""

    def add(self, item: object) -> None:
        pass


def test_a_reference_that_turns_hidden_is_redacted_again(database: Database) -> None:
    # An export reads each resource as of its kick-off but checks references against the
    # current row: the plan Millie's section points at may be visible now and hidden in
    # the version exported. Once the gate has seen it hidden, the section loses the link.
    load_demo(database)
    registry = Registry()
    with database.read() as c:
        requester = requester_for(
            c, registry, "bath-mind", practitioner=None, purpose="TREAT", break_glass_reason=None
        )
        assert requester is not None
        section, crisis = (store.current(c, "CarePlan", i) for i in ("millie-about-me", "millie-crisis-plan"))
        assert section is not None and crisis is not None and crisis.body is not None
        assert section.refs is not None and "CarePlan/millie-plan" in section.refs.split()
        hidden_plan = store.Row(
            "CarePlan",
            "millie-plan",
            1,
            False,
            crisis.last_updated,
            crisis.patient,
            crisis.refs,
            orjson.dumps({**orjson.loads(crisis.body), "id": "millie-plan"}),
        )
        answers = []
        for remembers in (True, False):
            gate = Gate(c, Registry(), requester, now=NOW)
            if not remembers:
                gate._clear = _NothingClear()
            answers.append([gate.disclose(r) for r in (section, hidden_plan, section)])
    assert answers[0] == answers[1]
    first, plan, again = answers[0]
    assert first == section.body and plan is None
    assert again is not None and b"CarePlan/millie-plan" not in again


def test_audit_records_stored_in_bulk_are_stored_and_indexed_as_they_were_given(database: Database) -> None:
    events = [
        {
            "resourceType": "AuditEvent",
            "id": store.new_id(),
            "action": "R",
            "recorded": "2026-06-01T12:00:00.000Z",
            "entity": [
                {"what": {"reference": f"Patient/p{i}"}},
                {"what": {"reference": f"CarePlan/c{i}/_history/2"}},
            ],
        }
        for i in range(1500)  # more than one INSERT's worth of rows
    ]
    with database.write() as c:
        stored = store.append(c, iter(events))  # any iterable, consumed once
    assert [r.id for r in stored] == [e["id"] for e in events]
    with database.read() as c:
        for event, row in zip(events[::97], stored[::97], strict=True):
            current = store.current(c, "AuditEvent", event["id"])
            assert current == row
            assert current.patient == event["entity"][0]["what"]["reference"].split("/")[1]
            seq = c.one("SELECT seq FROM resource WHERE type = 'AuditEvent' AND id = ?", (event["id"],))
            hist = c.one(
                "SELECT seq, version, method FROM history WHERE type = 'AuditEvent' AND id = ?",
                (event["id"],),
            )
            assert seq is not None and hist is not None
            assert (int(hist[0]), int(hist[1]), hist[2]) == (int(seq[0]), 1, "POST")
            assert store.version(c, "AuditEvent", event["id"], 1) == row
            resource = orjson.loads(row.body)
            want = index_rows(RESOURCE_TYPES["AuditEvent"], resource)
            for kind, table, cols in (
                ("token", "idx_token", "param, system, code"),
                ("date", "idx_date", "param, low, high"),
                ("ref", "idx_ref", "param, target"),
            ):
                got = c.all(
                    f"SELECT {cols} FROM {table} WHERE type = 'AuditEvent' AND id = ?", (event["id"],)
                )
                assert sorted(map(tuple, got)) == sorted(want[kind])
        n = c.one("SELECT COUNT(*) FROM history WHERE type = 'AuditEvent'")
        assert n is not None and int(n[0]) == len(events)
