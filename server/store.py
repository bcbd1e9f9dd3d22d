"""Versioned resource storage: one transaction per write, stored JSON bytes per version.

A write stores the resource's bytes in `resource` (current) and `history` (every
version), replaces its search index rows, and keeps the facts the consent decision
needs (the patient's custodian, their consent version, the organisation tree) in step,
all inside the caller's transaction.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from carebridge.consent.redact import references
from carebridge.server import outbox
from carebridge.server.catalog import RESOURCE_TYPES
from carebridge.server.db import Conn
from carebridge.server.errors import FhirError
from carebridge.server.indexing import index_rows, reference_target, walk
from carebridge.server.instants import now_instant


@dataclass(frozen=True, slots=True)
class Row:
    type: str
    id: str
    version: int
    deleted: bool
    last_updated: str
    patient: str | None
    # Space-separated "Type/id" targets of every reference in the body, kept on write so
    # disclosure can tell whether anything needs redacting without parsing the body.
    refs: str | None
    body: bytes | None

    @property
    def ref(self) -> str:
        return f"{self.type}/{self.id}"

    def resource(self) -> dict:
        return orjson.loads(self.body) if self.body else {}


COLUMNS = "type, id, version, deleted, last_updated, patient, refs, body"


def row_from(t: tuple) -> Row:
    body = t[7]
    if body is not None and not isinstance(body, bytes):
        body = bytes(body)
    return Row(t[0], t[1], int(t[2]), bool(t[3]), t[4], t[5], t[6], body)


def new_id() -> str:
    """A server-assigned id that sorts by creation time: new rows land at the end of every
    (type, id) index instead of on random pages, which keeps bulk writes (audit) cheap."""
    return f"{time.time_ns():016x}-{secrets.token_hex(6)}"


def current(c: Conn, rtype: str, rid: str) -> Row | None:
    t = c.one(f"SELECT {COLUMNS} FROM resource WHERE type = ? AND id = ?", (rtype, rid))
    return row_from(t) if t else None


def version(c: Conn, rtype: str, rid: str, vid: int) -> Row | None:
    t = c.one(
        f"SELECT {COLUMNS} FROM history WHERE type = ? AND id = ? AND version = ?",
        (rtype, rid, vid),
    )
    return row_from(t) if t else None


def _lock_current(c: Conn, rtype: str, rid: str) -> tuple[int, bool] | None:
    lock = " FOR UPDATE" if c.dialect == "postgresql" else ""
    t = c.one(f"SELECT version, deleted FROM resource WHERE type = ? AND id = ?{lock}", (rtype, rid))
    return (int(t[0]), bool(t[1])) if t else None


def compartment_patient(c: Conn, resource: dict) -> str | None:
    """The id of the patient whose compartment holds this resource, if any."""
    rtype = resource["resourceType"]
    if rtype == "Patient":
        return resource.get("id")
    rt = RESOURCE_TYPES[rtype]
    fallback: str | None = None
    for path in rt.compartment:
        for value in walk(resource, path):
            target = reference_target(value)
            if not target:
                continue
            ttype, tid = target.split("/", 1)
            if ttype == "Patient":
                return tid
            fallback = fallback or target
    if fallback and rtype in ("Provenance", "AuditEvent"):
        # Provenance of a CarePlan belongs with the CarePlan's patient.
        ttype, tid = fallback.split("/", 1)
        t = c.one("SELECT patient FROM resource WHERE type = ? AND id = ?", (ttype, tid))
        return t[0] if t else None
    return None


def put(
    c: Conn,
    resource: dict,
    *,
    rid: str,
    method: str,
    if_match: int | None = None,
    must_exist: bool = False,
) -> tuple[Row, bool]:
    """Create or update `resource` with id `rid`; returns (row, created)."""
    rtype = resource["resourceType"]
    existing = _lock_current(c, rtype, rid)
    if if_match is not None and (existing is None or existing[0] != if_match or existing[1]):
        have = "does not exist" if existing is None else f"is at version {existing[0]}"
        raise FhirError(
            412,
            f"If-Match asked for version {if_match} of {rtype}/{rid}, but it {have}; "
            "read it again and resend your change",
        )
    if must_exist and (existing is None or existing[1]):
        raise FhirError(404, f"{rtype}/{rid} is not known to this server")
    meta_version = (resource.get("meta") or {}).get("versionId")
    if (
        meta_version is not None
        and existing is not None
        and not existing[1]
        and str(meta_version) != str(existing[0])
    ):
        raise FhirError(
            409,
            f"version conflict: you sent a change to version {meta_version} of {rtype}/{rid}, "
            f"but it is now at version {existing[0]}; read it again and resend your change",
        )
    vid = existing[0] + 1 if existing else 1
    stamp = now_instant()
    resource = dict(resource)
    resource["id"] = rid
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(vid)
    meta["lastUpdated"] = stamp
    resource["meta"] = meta
    patient = compartment_patient(c, resource)
    refs = " ".join(sorted(references(resource))) or None
    body = orjson.dumps(resource)
    seq = _history(c, rtype, rid, vid, False, stamp, method, patient, refs, body)
    if existing:
        c.run(
            "UPDATE resource SET version = ?, deleted = 0, last_updated = ?, seq = ?, patient = ?, "
            "refs = ?, body = ? WHERE type = ? AND id = ?",
            (vid, stamp, seq, patient, refs, body, rtype, rid),
        )
    else:
        c.run(
            f"INSERT INTO resource ({COLUMNS}, seq) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?)",
            (rtype, rid, vid, stamp, patient, refs, body, seq),
        )
    _reindex(c, rtype, rid, resource)
    _after_write(c, resource, patient)
    outbox.changed(c, rtype, rid, vid, patient, resource)  # its deliveries commit with it
    return Row(rtype, rid, vid, False, stamp, patient, refs, body), existing is None or existing[1]


def delete(c: Conn, rtype: str, rid: str, *, if_match: int | None = None) -> Row | None:
    """Delete (a new, deleted version); None when there was nothing to delete."""
    existing = _lock_current(c, rtype, rid)
    if if_match is not None and (existing is None or existing[0] != if_match):
        raise FhirError(412, f"If-Match asked for version {if_match} of {rtype}/{rid}, which is not current")
    if existing is None or existing[1]:
        return None
    old = current(c, rtype, rid)
    vid = existing[0] + 1
    stamp = now_instant()
    patient = old.patient if old else None
    seq = _history(c, rtype, rid, vid, True, stamp, "DELETE", patient, None, None)
    c.run(
        "UPDATE resource SET version = ?, deleted = 1, last_updated = ?, seq = ?, refs = NULL, "
        "body = NULL WHERE type = ? AND id = ?",
        (vid, stamp, seq, rtype, rid),
    )
    _reindex(c, rtype, rid, None)
    if old and old.body:
        _after_delete(c, old.resource(), patient)
    outbox.changed(c, rtype, rid, vid, patient, None)
    return Row(rtype, rid, vid, True, stamp, patient, None, None)


def _history(
    c: Conn,
    rtype: str,
    rid: str,
    vid: int,
    deleted: bool,
    stamp: str,
    method: str,
    patient: str | None,
    refs: str | None,
    body: bytes | None,
) -> int:
    t = c.one(
        "INSERT INTO history (type, id, version, deleted, last_updated, method, patient, refs, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        (rtype, rid, vid, 1 if deleted else 0, stamp, method, patient, refs, body),
    )
    assert t is not None
    return int(t[0])


def _reindex(c: Conn, rtype: str, rid: str, resource: dict | None) -> None:
    for table in ("idx_token", "idx_string", "idx_date", "idx_ref"):
        c.run(f"DELETE FROM {table} WHERE type = ? AND id = ?", (rtype, rid))
    if resource is None:
        return
    rows = index_rows(RESOURCE_TYPES[rtype], resource)
    c.many(
        "INSERT INTO idx_token (type, id, param, system, code) VALUES (?, ?, ?, ?, ?)",
        [(rtype, rid, *r) for r in rows["token"]],
    )
    c.many(
        "INSERT INTO idx_string (type, id, param, value) VALUES (?, ?, ?, ?)",
        [(rtype, rid, *r) for r in rows["string"]],
    )
    c.many(
        "INSERT INTO idx_date (type, id, param, low, high) VALUES (?, ?, ?, ?, ?)",
        [(rtype, rid, *r) for r in rows["date"]],
    )
    c.many(
        "INSERT INTO idx_ref (type, id, param, target) VALUES (?, ?, ?, ?)",
        [(rtype, rid, *r) for r in rows["ref"]],
    )


def _upsert_facts(
    c: Conn,
    patient: str,
    *,
    managing_org: str | None = None,
    set_org: bool = False,
    bump_consent: bool = False,
) -> None:
    exists = c.one("SELECT 1 FROM patient_facts WHERE patient = ?", (patient,))
    if not exists:
        c.run(
            "INSERT INTO patient_facts (patient, managing_org, consent_version) VALUES (?, ?, ?)",
            (patient, managing_org if set_org else None, 1 if bump_consent else 0),
        )
        return
    if set_org:
        c.run("UPDATE patient_facts SET managing_org = ? WHERE patient = ?", (managing_org, patient))
    if bump_consent:
        c.run(
            "UPDATE patient_facts SET consent_version = consent_version + 1 WHERE patient = ?",
            (patient,),
        )


def _after_write(c: Conn, resource: dict, patient: str | None) -> None:
    rtype = resource["resourceType"]
    if rtype == "Patient" and patient:
        org = reference_target(resource.get("managingOrganization"))
        _upsert_facts(c, patient, managing_org=org, set_org=True)
    elif rtype == "Consent" and patient:
        # Rule 10: the next decision for this patient must see this change.
        _upsert_facts(c, patient, bump_consent=True)
    elif rtype == "Organization":
        rebuild_org_closure(c)


def _after_delete(c: Conn, resource: dict, patient: str | None) -> None:
    # A deleted Patient keeps its custodian: the rest of the record (and the Patient's
    # own history) stays with the trust that holds it, and nobody else gains sight of it.
    _after_write(c, resource, patient)


def rebuild_org_closure(c: Conn) -> None:
    """Recompute Organization.partOf ancestry (a few hundred rows) and bump its generation."""
    parents: dict[str, str] = {}
    for oid, target in c.all(
        "SELECT r.id, i.target FROM resource r JOIN idx_ref i ON i.type = r.type AND i.id = r.id "
        "AND i.param = 'partof' WHERE r.type = 'Organization' AND r.deleted = 0"
    ):
        parents[f"Organization/{oid}"] = target
    orgs = [
        f"Organization/{t[0]}"
        for t in c.all("SELECT id FROM resource WHERE type = 'Organization' AND deleted = 0")
    ]
    rows = []
    for org in orgs:
        seen = {org}
        rows.append((org, org, 0))
        node, depth = org, 0
        while (parent := parents.get(node)) and parent not in seen:  # cycles end the walk
            depth += 1
            seen.add(parent)
            rows.append((org, parent, depth))
            node = parent
    c.run("DELETE FROM org_closure")
    c.many("INSERT INTO org_closure (descendant, ancestor, depth) VALUES (?, ?, ?)", rows)
    c.run("UPDATE generation SET value = value + 1 WHERE name = 'org'")


def append(c: Conn, resources: Iterable[dict]) -> list[Row]:
    """Store brand-new resources (server-made ids, version 1) in bulk: audit records and
    notices written many at a time, where the per-resource checks of `put` buy nothing."""
    stamp = now_instant()
    rows: list[Row] = []
    index: dict[str, list[tuple]] = {"token": [], "string": [], "date": [], "ref": []}
    for resource in resources:
        rtype, rid = resource["resourceType"], resource["id"]
        resource = {
            **resource,
            "meta": {**(resource.get("meta") or {}), "versionId": "1", "lastUpdated": stamp},
        }
        patient = compartment_patient(c, resource)
        refs = " ".join(sorted(references(resource))) or None
        body = orjson.dumps(resource)
        for kind, values in index_rows(RESOURCE_TYPES[rtype], resource).items():
            index[kind].extend((rtype, rid, *v) for v in values)
        rows.append(Row(rtype, rid, 1, False, stamp, patient, refs, body))
        if rtype in ("Patient", "Consent", "Organization"):
            _after_write(c, resource, patient)
    _insert_all(
        c,
        "INSERT INTO history (type, id, version, deleted, last_updated, method, patient, refs, body)",
        [(r.type, r.id, 1, 0, stamp, "POST", r.patient, r.refs, r.body) for r in rows],
    )
    # The current rows are copied from those history rows inside the database, so each
    # gets its seq without a round trip (or a returned row) per resource.
    by_type: dict[str, list[str]] = {}
    for r in rows:
        by_type.setdefault(r.type, []).append(r.id)
    for rtype, ids in by_type.items():
        for start in range(0, len(ids), _PARAMS_PER_INSERT):
            part = ids[start : start + _PARAMS_PER_INSERT]
            c.run(
                f"INSERT INTO resource ({COLUMNS}, seq) SELECT {COLUMNS}, seq FROM history "
                f"WHERE type = ? AND version = 1 AND id IN ({', '.join('?' * len(part))})",
                [rtype, *part],
            )
    _insert_all(c, "INSERT INTO idx_token (type, id, param, system, code)", index["token"])
    _insert_all(c, "INSERT INTO idx_string (type, id, param, value)", index["string"])
    _insert_all(c, "INSERT INTO idx_date (type, id, param, low, high)", index["date"])
    _insert_all(c, "INSERT INTO idx_ref (type, id, param, target)", index["ref"])
    return rows


# Parameters per INSERT of many rows: well inside SQLite's 32,766 and PostgreSQL's 65,535.
_PARAMS_PER_INSERT = 4000


def _insert_all(c: Conn, head: str, rows: list[tuple]) -> None:
    """`head` ("INSERT INTO t (a, b)") with every row, many rows per statement. A statement
    per row (executemany) hands the GIL over and back for each row, and taking it back
    can wait a whole switch interval (5 ms) while another thread is busy in Python, as an
    export deciding the next batch is while its audit is written."""
    if not rows:
        return
    width = len(rows[0])
    one = "(" + ", ".join("?" * width) + ")"
    per = max(1, _PARAMS_PER_INSERT // width)
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        c.run(f"{head} VALUES {', '.join([one] * len(part))}", [v for r in part for v in r])
