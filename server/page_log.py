"""Who has looked at my record: the person's AuditEvents and sharing-choice changes,
read through the gate, turned into sentences by mappings/access_log.py.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from carebridge.consent.choices import PRESENT_URL, RECORDED_BY_URL
from carebridge.mappings.access_log import LogEntry, change_entry, event_entry
from carebridge.server import store
from carebridge.server.db import Conn
from carebridge.server.disclosure import Gate
from carebridge.server.operations import CHOICES_IDENTIFIER, resource_label
from carebridge.server.sharing_table import display_name
from carebridge.server.store import COLUMNS, row_from

MOST_EVENTS = 300


def local_zone() -> tzinfo:
    """England's clock (BST in summer); UTC only where the system has no zone data."""
    try:
        return ZoneInfo("Europe/London")
    except ZoneInfoNotFoundError:
        return UTC


def access_log(c: Conn, gate: Gate, pid: str) -> list[LogEntry]:
    """Newest first. AuditEvents pass the gate (custodian and person only); the choices
    Consents shown are disclosed through it like any other read."""
    tz = local_zone()
    names: dict[str, str | None] = {}
    labels: dict[str, str | None] = {}
    partners: dict[str, tuple[str, str] | None] = {}

    def name_of(ref: str) -> str | None:
        if ref not in names:
            names[ref] = display_name(c, ref)
        return names[ref]

    def partner_of(partner_id: str) -> tuple[str, str] | None:
        if partner_id not in partners:
            p = gate.registry.partner(c, partner_id)
            partners[partner_id] = (p.name, p.kind) if p else None
        return partners[partner_id]

    def label_of(ref: str) -> str | None:
        if ref not in labels:
            rtype, _, rid = ref.partition("/")
            row = store.current(c, rtype, rid)
            labels[ref] = resource_label(row.resource()) if row and row.body else None
        return labels[ref]

    entries: list[LogEntry] = []
    for t in c.all(
        f"SELECT {COLUMNS} FROM resource WHERE patient = ? AND type = 'AuditEvent' AND deleted = 0 "
        "ORDER BY last_updated DESC, id DESC LIMIT ?",
        (pid, MOST_EVENTS),
    ):
        body = gate.disclose(row_from(t))
        if body is None:
            continue
        entry = event_entry(orjson.loads(body), partner_of, name_of, label_of, tz)
        if entry is not None:
            entries.append(entry)
    for t in c.all(
        f"SELECT {COLUMNS} FROM resource WHERE patient = ? AND type = 'Consent' AND deleted = 0 AND id IN "
        "(SELECT id FROM idx_token WHERE type = 'Consent' AND param = 'identifier' AND system = ?)",
        (pid, CHOICES_IDENTIFIER),
    ):
        body = gate.disclose(row_from(t))
        if body is None:
            continue
        consent = orjson.loads(body)
        recorded_by = next(
            (
                (e.get("valueReference") or {}).get("reference")
                for e in consent.get("extension") or []
                if e.get("url") == RECORDED_BY_URL
            ),
            None,
        )
        present = [
            (e.get("valueReference") or {}).get("reference") or ""
            for e in consent.get("extension") or []
            if e.get("url") == PRESENT_URL
        ]
        entry = change_entry(consent, f"Patient/{pid}", recorded_by, present, name_of, tz)
        if entry is not None:
            entries.append(entry)
    entries.sort(key=lambda e: e.when, reverse=True)
    return entries
