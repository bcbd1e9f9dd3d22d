"""Several delivery workers on one database (as with `carebridge serve --workers N`, or
servers on several machines): each delivery is claimed by exactly one of them, and each
resource's versions still arrive in order."""

from __future__ import annotations

from exchange_world import CUSTODIAN, Partner, Person, change, subscribe, wait_for

from carebridge.server.db import Database
from carebridge.server.delivery_policy import DeliveryConfig
from carebridge.server.delivery_worker import DeliveryWorker
from tests.conftest import LiveServer

VOLUNTARY = "bath-mind"
# This module's server runs no delivery worker of its own: the test starts two.
OUTBOX = {"CAREBRIDGE_OUTBOX_WORKER": "0"}


def test_two_workers_share_the_outbox_without_sending_anything_twice(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    expected: dict[str, list[int]] = {}
    with exchange.client(VOLUNTARY) as bath_mind, exchange.client(CUSTODIAN) as trust:
        subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint)
        for i in range(8):
            for code in ("about-me", "daily-activities"):
                written = change(trust, "CarePlan", person.section(code), description=f"change {i}")
                expected.setdefault(f"CarePlan/{written['id']}", []).append(int(written["meta"]["versionId"]))
    # One delivery per claim and long leases: any repeat would be a double claim, not a retry.
    cfg = DeliveryConfig(poll=0.01, batch=1, threads=1, lease=60)
    workers = [DeliveryWorker(Database(exchange.db.url), cfg) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        wait_for(lambda: len(partner.received("PUT")) >= 16, why="all sixteen changes")
    finally:
        for w in workers:
            w.stop()
    got: dict[str, list[int]] = {}
    for r in partner.received("PUT"):
        got.setdefault(r.ref, []).append(r.version)
    assert got == expected  # every version once, in order
    with exchange.db.read() as c:
        claimed = {
            t[0]
            for t in c.all(
                "SELECT claimed_by FROM outbox WHERE state = 'delivered' AND patient = ?", (person.id,)
            )
        }
    assert claimed == {w.id for w in workers}  # both took a share
