"""`carebridge outbox status|retry`: what waits, fails and was delivered, per partner
target; and a nudge that makes waiting and failed deliveries due now."""

from __future__ import annotations

import json

from exchange_world import CUSTODIAN, Partner, Person, change, health, outbox, subscribe, wait_for
from typer.testing import CliRunner
from werkzeug import Response

from carebridge.server.cli import app
from tests.conftest import LiveServer

VOLUNTARY = "bath-mind"


def status(exchange: LiveServer) -> dict[str, dict]:
    result = CliRunner().invoke(app, ["outbox", "status", "--json", "--database", exchange.db.url])
    assert result.exit_code == 0, result.output
    return {t["target"]: t for t in json.loads(result.output)}


def test_status_shows_waiting_and_delivered_per_target_and_retry_nudges(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    partner.script = lambda _: Response("", status=500)
    with exchange.client(VOLUNTARY) as bath_mind, exchange.client(CUSTODIAN) as trust:
        sub = subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint)
        change(trust, "CarePlan", person.section("about-me"), description="waiting")
        target = f"sub/{sub['id']}"
        wait_for(lambda: health(exchange.db, target) == "down", why="the partner to be marked down")
        seen = status(exchange)[target]
        assert seen["partner"] == VOLUNTARY
        assert seen["health"] == "down"
        assert seen["pending"] == 1 and seen["delivered"] == 0
        assert "500" in seen["last_error"]

        partner.script = None
        result = CliRunner().invoke(
            app, ["outbox", "retry", "--partner", VOLUNTARY, "--database", exchange.db.url]
        )
        assert result.exit_code == 0, result.output
        assert "due now" in result.output
        wait_for(lambda: partner.received("PUT"), why="the nudged delivery")
        wait_for(lambda: status(exchange)[target]["delivered"] == 1, why="status to show it delivered")
        seen = status(exchange)[target]
    assert seen["health"] == "up"
    assert seen["pending"] == 0
    assert seen["holds"] == 1  # the copy it now has, which a recall would ask it to delete
    assert [r["state"] for r in outbox(exchange.db, target)] == ["delivered"]
