"""MESH deliveries for `carebridge outbox status`: counts by state per partner mailbox."""

from __future__ import annotations

from carebridge.server.db import Conn

STATES = ("pending", "sent", "delivered", "acked", "withheld", "failed", "expired")


def mesh_summary(c: Conn, partner: str | None = None) -> list[dict]:
    exists = c.one(
        "SELECT to_regclass('mesh_message') IS NOT NULL WHERE to_regclass('mesh_message') IS NOT NULL"
        if c.dialect == "postgresql"
        else "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mesh_message'"
    )
    if exists is None:
        return []
    where, args = ("WHERE partner = ?", [partner]) if partner else ("", [])
    out: dict[str, dict] = {}
    for who, box, flow, state, n in c.all(
        f"SELECT partner, mailbox, workflow, state, COUNT(*) FROM mesh_message {where} "
        "GROUP BY partner, mailbox, workflow, state ORDER BY partner",
        args,
    ):
        t = out.setdefault(
            f"mesh/{box}",
            {"target": f"mesh/{box}", "partner": who, "workflow": flow, **{s: 0 for s in STATES}},
        )
        t[state] = t.get(state, 0) + int(n)
    for t in out.values():
        last = c.one(
            "SELECT last_error, note FROM mesh_message WHERE mailbox = ? AND (last_error IS NOT NULL "
            "OR note IS NOT NULL) ORDER BY created DESC LIMIT 1",
            (t["target"][5:],),
        )
        t["last_error"] = (last[0] or last[1]) if last else None
    return list(out.values())
