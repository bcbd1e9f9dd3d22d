"""Bulk export jobs (FHIR Bulk Data): one NDJSON file per type, written through the gate.

A job walks patients in batches; each batch is read in one short read, every resource
decided for the requester by the gate (`Gate.disclose`, the stored bytes untouched
unless something in them must be redacted) and appended to its type's file as it goes,
so memory holds one batch at most. Each patient's disclosures become one AuditEvent,
stored before the job says it is complete (rule 9). The export is as of the
kick-off: a resource changed since is exported as the version it had then.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from carebridge.consent.model import Requester
from carebridge.server import exchange_audit
from carebridge.server.audit import AuditJob, AuditWriter
from carebridge.server.catalog import RESOURCE_TYPES
from carebridge.server.db import Conn, Database
from carebridge.server.disclosure import Gate, requester_for
from carebridge.server.instants import now_instant
from carebridge.server.partners import Registry
from carebridge.server.store import COLUMNS, Row, row_from

log = logging.getLogger("carebridge.export")

PATIENT_BATCH = 500
AUDIT_AHEAD = 1  # batches whose AuditEvents may still be being written while the next is decided
STALE_AFTER = 60.0  # a running job whose heartbeat is older than this has died
KEEP_FOR = 24 * 3600.0  # finished jobs and their files are removed after this
_running = threading.BoundedSemaphore(2)  # jobs in flight per process

# Types in patient compartments (exported per patient, audited per patient).
PERSONAL_TYPES = frozenset(name for name, rt in RESOURCE_TYPES.items() if rt.compartment)


def export_dir() -> Path:
    return Path(os.environ.get("CAREBRIDGE_EXPORT_DIR") or Path(tempfile.gettempdir()) / "carebridge-exports")


@dataclass
class Job:
    id: str
    partner: str
    practitioner: str | None
    purpose: str
    level: str  # system | patient
    types: list[str]
    since: str | None
    request: str
    state: str  # running | complete | error | cancelled
    transaction_time: str
    watermark: int
    created: float
    heartbeat: float
    finished: float | None
    progress: str | None
    output: list[dict]
    error: str | None
    directory: str

    @property
    def stale(self) -> bool:
        return self.state == "running" and time.time() - self.heartbeat > STALE_AFTER


_JOB_COLUMNS = (
    "id, partner, practitioner, purpose, level, types, since, request, state, transaction_time, watermark, "
    "created, heartbeat, finished, progress, output, error, directory"
)


def load(c: Conn, job_id: str) -> Job | None:
    t = c.one(f"SELECT {_JOB_COLUMNS} FROM export_job WHERE id = ?", (job_id,))
    if t is None:
        return None
    values = list(t)
    values[5] = values[5].split(",") if values[5] else []
    values[15] = orjson.loads(values[15]) if values[15] else []
    values[10] = int(values[10])
    return Job(*values)


def create(
    db: Database, requester: Requester, level: str, types: list[str], since: str | None, request: str
) -> Job:
    job_id = uuid.uuid4().hex
    now = time.time()
    _clean_old(db, now)
    directory = str(export_dir() / job_id)
    with db.write() as c:
        t = c.one("SELECT MAX(seq) FROM history")
        watermark = int(t[0] or 0) if t else 0
        c.run(
            f"INSERT INTO export_job ({_JOB_COLUMNS}) VALUES ({', '.join('?' * 18)})",
            (
                job_id,
                requester.partner_id,
                requester.practitioner,
                requester.purpose,
                level,
                ",".join(types),
                since,
                request,
                "running",
                now_instant(),
                watermark,
                now,
                now,
                None,
                "starting",
                None,
                None,
                directory,
            ),
        )
        job = load(c, job_id)
    assert job is not None
    return job


def start(db: Database, audit: AuditWriter, job: Job) -> threading.Thread:
    thread = threading.Thread(
        target=run, args=(db, audit, job), name=f"carebridge-export-{job.id[:8]}", daemon=True
    )
    thread.start()
    return thread


def cancel(db: Database, job: Job) -> None:
    with db.write() as c:
        c.run("UPDATE export_job SET state = 'cancelled', finished = ? WHERE id = ?", (time.time(), job.id))
    shutil.rmtree(job.directory, ignore_errors=True)


def _clean_old(db: Database, now: float) -> None:
    with db.write() as c:
        old = c.all("SELECT id, directory FROM export_job WHERE created < ?", (now - KEEP_FOR,))
        c.many("DELETE FROM export_job WHERE id = ?", [(t[0],) for t in old])
    for _, directory in old:
        shutil.rmtree(directory, ignore_errors=True)


class _Files:
    """One NDJSON file per type, opened on its first resource."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[str, IO[bytes]] = {}
        self.counts: dict[str, int] = {}

    def write(self, rtype: str, body: bytes) -> None:
        f = self.files.get(rtype)
        if f is None:
            f = self.files[rtype] = open(self.directory / f"{rtype}.ndjson", "wb", buffering=1 << 20)  # noqa: SIM115
            self.counts[rtype] = 0
        f.write(body)
        f.write(b"\n")
        self.counts[rtype] += 1

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def run(db: Database, audit: AuditWriter, job: Job) -> None:
    with _running:
        directory = Path(job.directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = _Files(directory)
        try:
            exported = _export(db, audit, job, files)
            files.close()
            output = [
                {"type": t, "name": f"{t}.ndjson", "count": n} for t, n in sorted(files.counts.items()) if n
            ]
            with db.write() as c:
                c.run(
                    "UPDATE export_job SET state = 'complete', finished = ?, heartbeat = ?, progress = ?, "
                    "output = ? WHERE id = ? AND state = 'running'",
                    (
                        time.time(),
                        time.time(),
                        f"{exported} resources",
                        orjson.dumps(output).decode(),
                        job.id,
                    ),
                )
        except Exception as exc:
            files.close()
            log.exception("export %s failed", job.id)
            with db.write() as c:
                c.run(
                    "UPDATE export_job SET state = 'error', finished = ?, error = ? WHERE id = ?",
                    (time.time(), f"the export could not be completed: {type(exc).__name__}", job.id),
                )
            shutil.rmtree(directory, ignore_errors=True)


def _export(db: Database, audit: AuditWriter, job: Job, files: _Files) -> int:
    registry = Registry()
    with db.read() as c:
        requester = requester_for(
            c,
            registry,
            job.partner,
            practitioner=job.practitioner,
            purpose=job.purpose,
            break_glass_reason=None,
        )
    if requester is None:
        raise RuntimeError(f"partner {job.partner} is no longer registered")
    personal = [t for t in job.types if t in PERSONAL_TYPES]
    exported = 0
    # Each batch's AuditEvents are written by the audit thread while the next batch is
    # decided; all of them are waited for below, before the job can say it is complete.
    pending: list[AuditJob | None] = []
    beat = time.time()
    after = ""
    while personal:
        with db.read() as c:
            patients = [
                t[0]
                for t in c.all(
                    "SELECT DISTINCT patient FROM resource WHERE patient > ? ORDER BY patient LIMIT ?",
                    (after, PATIENT_BATCH),
                )
            ]
            if not patients:
                break
            after = patients[-1]
            # A gate per batch: what it remembers stays bounded by the batch.
            gate = Gate(c, registry, requester)
            marks = ",".join("?" * len(patients))
            gate.prime_many(
                [
                    (patient, org, int(version))
                    for patient, org, version in c.all(
                        "SELECT patient, managing_org, consent_version FROM patient_facts "
                        f"WHERE patient IN ({marks})",
                        patients,
                    )
                ]
            )
            for row in _patient_rows(c, job, patients, personal):
                body = gate.disclose(row)
                if body is not None:
                    files.write(row.type, body)
                    exported += 1
            events = exchange_audit.disclosure_records([gate], "operation", "export")
        pending.append(audit.submit(events))
        if len(pending) > AUDIT_AHEAD:  # bounded: a slow audit store slows the export down
            audit.wait([pending.pop(0)])
        if time.time() - beat > 2:
            beat = _heartbeat(db, job, f"{exported} resources so far")
    if job.level == "system":
        for rtype in job.types:
            with db.read() as c:
                gate = Gate(c, registry, requester)
                for row in _unowned_rows(c, job, rtype):
                    body = gate.disclose(row)
                    if body is not None:
                        files.write(row.type, body)
                        exported += 1
    audit.wait(pending)  # every disclosure is audited before the files can be fetched
    with db.read() as c:
        t = c.one("SELECT state FROM export_job WHERE id = ?", (job.id,))
    if t is None or t[0] != "running":
        raise RuntimeError("the export was cancelled")
    return exported


def _heartbeat(db: Database, job: Job, progress: str) -> float:
    now = time.time()
    with db.write() as c:
        c.run("UPDATE export_job SET heartbeat = ?, progress = ? WHERE id = ?", (now, progress, job.id))
    return now


def _as_of(c: Conn, job: Job, seq: int, row: Row) -> Row | None:
    """The version current at the job's kick-off (None if it did not exist then, or was deleted)."""
    if seq > job.watermark:
        t = c.one(
            f"SELECT {COLUMNS} FROM history WHERE type = ? AND id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
            (row.type, row.id, job.watermark),
        )
        if t is None:
            return None
        row = row_from(t)
        if job.since and row.last_updated < job.since:
            return None
    return None if row.deleted else row


def _patient_rows(c: Conn, job: Job, patients: list[str], types: list[str]) -> Iterator[Row]:
    marks = ",".join("?" * len(patients))
    tmarks = ",".join("?" * len(types))
    since = ""
    # Resources changed after kick-off are read as they were then; their current row may
    # be newer than _since even when the old version is not, so they are not filtered here.
    args: list = [*patients, *types]
    if job.since:
        since = " AND (last_updated >= ? OR seq > ?)"
        args += [job.since, job.watermark]
    for t in c.all(
        f"SELECT seq, {COLUMNS} FROM resource WHERE patient IN ({marks}) AND type IN ({tmarks}){since} "
        # Each Patient first: its decision is then remembered when its records refer to it.
        "ORDER BY patient, CASE WHEN type = 'Patient' THEN 0 ELSE 1 END",
        args,
    ):
        if t[0] <= job.watermark and not t[4]:
            yield row_from(t[1:])  # unchanged since kick-off and not deleted: the common case
        elif (row := _as_of(c, job, int(t[0]), row_from(t[1:]))) is not None:
            yield row


def _unowned_rows(c: Conn, job: Job, rtype: str) -> Iterator[Row]:
    """Resources of a type outside every patient compartment, in id order, a page at a time."""
    after = ""
    since = " AND (last_updated >= ? OR seq > ?)" if job.since else ""
    while True:
        args: list = [rtype, after]
        if job.since:
            args += [job.since, job.watermark]
        page = c.all(
            f"SELECT seq, {COLUMNS} FROM resource WHERE type = ? AND patient IS NULL AND id > ?{since} "
            "ORDER BY id LIMIT 1000",
            args,
        )
        for t in page:
            row = _as_of(c, job, int(t[0]), row_from(t[1:]))
            if row is not None:
                yield row
        if len(page) < 1000:
            return
        after = page[-1][2]
