"""`carebridge outbox status|retry`: what is waiting, failed and delivered, per partner
target, and a nudge to try again now."""

from __future__ import annotations

import json
import sys
import time

import typer
from rich.console import Console
from rich.table import Table

from carebridge.server.db import Conn
from carebridge.server.mesh_status import STATES as MESH_STATES
from carebridge.server.mesh_status import mesh_summary

outbox_app = typer.Typer(
    help="The outbox: pushes to partners (waiting, failed, delivered).", no_args_is_help=True
)
console = Console()

DatabaseOpt = typer.Option(None, "--database", help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
STATES = ("pending", "delivered", "failed", "withheld", "dropped")


def summary(c: Conn, partner: str | None = None) -> list[dict]:
    """One entry per delivery target: counts by state, health, and the last error."""
    now = time.time()
    targets: dict[str, dict] = {}
    where, args = ("WHERE partner = ?", [partner]) if partner else ("", [])
    for target, who, by, state, n, oldest, flying in c.all(
        "SELECT target, partner, transport, state, COUNT(*), MIN(created), "
        f"SUM(CASE WHEN claim_until > ? THEN 1 ELSE 0 END) FROM outbox {where} "
        "GROUP BY target, partner, transport, state ORDER BY target",
        [now, *args],
    ):
        if target == "recheck":
            continue
        t = targets.setdefault(
            target,
            {"target": target, "partner": who, **{s: 0 for s in STATES}, "in_flight": 0, "health": "up"},
        )
        t["by"] = by  # http or mesh
        t[state] = t.get(state, 0) + int(n)
        if state == "pending":
            t["in_flight"] = int(flying or 0)
            t["oldest_waiting_seconds"] = round(now - float(oldest), 1)
    for target, who, health, failures, hold, error in c.all(
        f"SELECT target, partner, health, failures, hold_until, last_error FROM outbox_target {where}", args
    ):
        t = targets.setdefault(
            target, {"target": target, "partner": who, **{s: 0 for s in STATES}, "in_flight": 0}
        )
        t.update(
            health=health,
            failures=int(failures),
            retry_in_seconds=max(0.0, round(float(hold) - now, 1)),
            last_error=error,
        )
    for t in targets.values():
        t["holds"] = c.one("SELECT COUNT(*) FROM outbox_delivered WHERE target = ?", (t["target"],))[0]  # type: ignore[index]
    return sorted(targets.values(), key=lambda t: t["target"])


@outbox_app.command("status")
def status(
    partner: str | None = typer.Option(None, "--partner", help="only this partner"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    database: str | None = DatabaseOpt,
) -> None:
    """Deliveries per target: waiting, in flight, failed, delivered, and partner health."""
    from carebridge.server.cli import open_db

    db = open_db(database)
    with db.read() as c:
        rows = summary(c, partner)
        mesh = mesh_summary(c, partner)
    if as_json:
        sys.stdout.write(json.dumps(rows + mesh, indent=2) + "\n")
        return
    if mesh:  # GP notices by MESH, one line per partner mailbox
        mesh_table = Table("target", "partner", "workflow", *MESH_STATES, "last error or note")
        for m in mesh:
            counts = [str(m[k]) for k in MESH_STATES]
            mesh_table.add_row(m["target"], m["partner"], m["workflow"], *counts, m["last_error"] or "")
        console.print(mesh_table)
    if not rows:
        if not mesh:
            console.print("the outbox is empty: no partner has been sent anything yet")
        return
    table = Table(
        "target",
        "partner",
        "by",
        "health",
        "waiting",
        "in flight",
        "failed",
        "delivered",
        "withheld",
        "dropped",
        "holds",
        "last error",
    )
    for t in rows:
        table.add_row(
            t["target"],
            t["partner"],
            t.get("by", "http"),
            t.get("health", "up"),
            str(t["pending"]),
            str(t["in_flight"]),
            str(t["failed"]),
            str(t["delivered"]),
            str(t["withheld"]),
            str(t["dropped"]),
            str(t["holds"]),
            t.get("last_error") or "",
        )
    console.print(table)


@outbox_app.command("retry")
def retry(
    partner: str | None = typer.Option(None, "--partner", help="only this partner"),
    database: str | None = DatabaseOpt,
) -> None:
    """Try again now: failed deliveries are queued again and waiting ones are due at once."""
    from carebridge.server.cli import open_db

    db = open_db(database)
    now = time.time()
    where, args = (" AND partner = ?", [partner]) if partner else ("", [])
    with db.write() as c:
        failed = c.run(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?, done_at = NULL, "
            f"claim_until = 0 WHERE state = 'failed'{where}",
            [now, *args],
        )
        waiting = c.run(f"UPDATE outbox SET next_at = ? WHERE state = 'pending'{where}", [now, *args])
        c.run(f"UPDATE outbox_target SET hold_until = 0 WHERE 1 = 1{where}", args)
    console.print(f"{failed} failed deliveries queued again; {waiting} waiting deliveries are due now")
