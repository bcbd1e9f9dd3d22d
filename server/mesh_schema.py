"""Tables for MESH (schema version 3): one row per notice carebridge sends or message it
takes in, and the quarantine.

A `mesh_message` row for an outbound GP notice is keyed by its local id (one notice, one
row, one MESH message) and is written in the transaction that stores the notice.
"""

from __future__ import annotations


def mesh_schema(dialect: str) -> list[str]:
    real = "REAL" if dialect == "sqlite" else "DOUBLE PRECISION"
    blob = "BLOB" if dialect == "sqlite" else "BYTEA"
    return [
        # state: pending -> sent -> delivered (the GP's system downloaded it) -> acked (its
        # business acknowledgement came back); or withheld (consent), failed, expired.
        f"""CREATE TABLE IF NOT EXISTS mesh_message (
            local_id TEXT PRIMARY KEY, partner TEXT NOT NULL, mailbox TEXT NOT NULL,
            workflow TEXT NOT NULL, communication TEXT NOT NULL, task TEXT, patient TEXT,
            state TEXT NOT NULL DEFAULT 'pending', message_id TEXT, attempts INTEGER NOT NULL DEFAULT 0,
            next_at {real} NOT NULL, expires {real} NOT NULL, created {real} NOT NULL,
            done_at {real}, last_error TEXT, note TEXT)""",
        "CREATE INDEX IF NOT EXISTS mesh_message_state ON mesh_message (state, next_at)",
        "CREATE INDEX IF NOT EXISTS mesh_message_comm ON mesh_message (communication)",
        # Inbound messages carebridge could not take: kept whole, with the reason.
        f"""CREATE TABLE IF NOT EXISTS mesh_quarantine (
            message_id TEXT PRIMARY KEY, sender TEXT, workflow TEXT, reason TEXT NOT NULL,
            body {blob} NOT NULL, received {real} NOT NULL)""",
        # Inbound messages already stored: a poll that dies before acknowledging stores nothing twice.
        f"""CREATE TABLE IF NOT EXISTS mesh_inbound (
            message_id TEXT PRIMARY KEY, sender TEXT, workflow TEXT, outcome TEXT NOT NULL,
            received {real} NOT NULL)""",
    ]
