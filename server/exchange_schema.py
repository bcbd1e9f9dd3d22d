"""Tables for partner exchange (schema version 2): the outbox, delivery health, what each
partner holds, bulk export jobs and pull records.

Times the worker compares (next attempt, lease expiry) are epoch seconds, so both
databases compare them as numbers.
"""

from __future__ import annotations


def exchange_schema(dialect: str) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    real = "REAL" if dialect == "sqlite" else "DOUBLE PRECISION"
    return [
        # One row per delivery to make. A lane is one resource at one target: rows in a lane
        # go strictly in id order (per-resource order); lanes go in parallel. `transport`
        # says how it travels (http today; mesh can be added beside it).
        f"""CREATE TABLE IF NOT EXISTS outbox (
            id {serial}, lane TEXT NOT NULL, target TEXT NOT NULL, partner TEXT NOT NULL,
            subscription TEXT, endpoint TEXT, transport TEXT NOT NULL DEFAULT 'http',
            action TEXT NOT NULL, reason TEXT NOT NULL, rtype TEXT NOT NULL, rid TEXT NOT NULL,
            version INTEGER NOT NULL, patient TEXT, state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0, next_at {real} NOT NULL,
            claim_until {real} NOT NULL DEFAULT 0, claimed_by TEXT, created {real} NOT NULL,
            done_at {real}, last_error TEXT, note TEXT)""",
        "CREATE INDEX IF NOT EXISTS outbox_ready ON outbox (state, next_at, id)",
        "CREATE INDEX IF NOT EXISTS outbox_lane ON outbox (lane, state, id)",
        "CREATE INDEX IF NOT EXISTS outbox_target_state ON outbox (target, state)",
        "CREATE INDEX IF NOT EXISTS outbox_patient ON outbox (patient, state)",
        # Health of each delivery target (a Subscription, or a partner's --fhir-base).
        f"""CREATE TABLE IF NOT EXISTS outbox_target (
            target TEXT PRIMARY KEY, partner TEXT NOT NULL, subscription TEXT,
            health TEXT NOT NULL DEFAULT 'up', failures INTEGER NOT NULL DEFAULT 0,
            hold_until {real} NOT NULL DEFAULT 0, last_error TEXT, last_ok {real},
            last_failure {real})""",
        # What each target holds now: recall sends DELETE for these.
        f"""CREATE TABLE IF NOT EXISTS outbox_delivered (
            target TEXT NOT NULL, rtype TEXT NOT NULL, rid TEXT NOT NULL, version INTEGER NOT NULL,
            patient TEXT, partner TEXT NOT NULL, subscription TEXT, endpoint TEXT NOT NULL,
            transport TEXT NOT NULL DEFAULT 'http', delivered_at {real} NOT NULL,
            PRIMARY KEY (target, rtype, rid))""",
        "CREATE INDEX IF NOT EXISTS outbox_delivered_patient ON outbox_delivered (patient)",
        "CREATE INDEX IF NOT EXISTS outbox_delivered_resource ON outbox_delivered (rtype, rid)",
        # Active Subscriptions by the type their criteria name: the write path's lookup.
        """CREATE TABLE IF NOT EXISTS outbox_subscription (
            id TEXT PRIMARY KEY, partner TEXT NOT NULL, rtype TEXT NOT NULL,
            criteria TEXT NOT NULL, ends TEXT)""",
        "CREATE INDEX IF NOT EXISTS outbox_subscription_type ON outbox_subscription (rtype)",
        f"""CREATE TABLE IF NOT EXISTS export_job (
            id TEXT PRIMARY KEY, partner TEXT NOT NULL, practitioner TEXT, purpose TEXT NOT NULL,
            level TEXT NOT NULL, types TEXT NOT NULL, since TEXT, request TEXT NOT NULL,
            state TEXT NOT NULL, transaction_time TEXT NOT NULL, watermark BIGINT NOT NULL,
            created {real} NOT NULL, heartbeat {real} NOT NULL, finished {real}, progress TEXT,
            output TEXT, error TEXT, directory TEXT NOT NULL)""",
        # Pulled resources: where each came from and which versions were reconciled.
        f"""CREATE TABLE IF NOT EXISTS pull_record (
            partner TEXT NOT NULL, source TEXT NOT NULL, rtype TEXT NOT NULL, rid TEXT NOT NULL,
            local_version INTEGER NOT NULL, source_version TEXT, source_updated TEXT,
            pulled {real} NOT NULL, PRIMARY KEY (partner, source))""",
        "CREATE INDEX IF NOT EXISTS pull_record_local ON pull_record (rtype, rid)",
    ]
