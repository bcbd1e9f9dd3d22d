"""Pull: take a partner's care records for the people carebridge holds, without ever
overwriting what was changed here.

For each local patient (by NHS number) the partner's CarePlans, CareTeams and Tasks are
read (adapters/pull.py), mapped into the care-plan model (mappings/foreign_plan.py) and
stored, one patient per transaction, each new version with a Provenance naming the
partner and the record's URL. A pulled record that has been changed (or deleted) here
since it was last pulled is a conflict: it is reported and the local version is kept.
A partner version older than the one last pulled is also reported and not stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from carebridge.adapters.pull import PartnerReader, PullError
from carebridge.mappings.foreign_plan import local_id, provenance, to_local
from carebridge.mappings.vocabulary import NHS_NUMBER_SYSTEM
from carebridge.server import store
from carebridge.server.db import Conn, Database
from carebridge.server.errors import FhirError
from carebridge.server.instants import instant_key, now_instant
from carebridge.server.partners import Partner
from carebridge.server.validate import validate_resource


@dataclass
class PullReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    not_at_partner: list[str] = field(default_factory=list)
    not_held_here: list[str] = field(default_factory=list)


def local_nhs_numbers(db: Database) -> list[str]:
    with db.read() as c:
        return [
            t[0]
            for t in c.all(
                "SELECT DISTINCT i.code FROM idx_token i JOIN resource r ON r.type = i.type AND r.id = i.id "
                "WHERE i.type = 'Patient' AND i.param = 'identifier' AND i.system = ? AND r.deleted = 0 "
                "ORDER BY i.code",
                (NHS_NUMBER_SYSTEM,),
            )
        ]


def _local_patient(c: Conn, nhs_number: str) -> str | None:
    t = c.one(
        "SELECT r.id FROM resource r WHERE r.type = 'Patient' AND r.deleted = 0 AND r.id IN "
        "(SELECT id FROM idx_token WHERE type = 'Patient' AND param = 'identifier' AND system = ? "
        "AND code = ?)",
        (NHS_NUMBER_SYSTEM, nhs_number),
    )
    return t[0] if t else None


def pull_partner(db: Database, partner: Partner, reader: PartnerReader, nhs_numbers: list[str]) -> PullReport:
    report = PullReport()
    for nhs in nhs_numbers:
        with db.read() as c:
            patient = _local_patient(c, nhs)
        if patient is None:
            report.not_held_here.append(nhs)
            continue
        try:
            found = reader.patient_by_nhs_number(nhs)
            if found is None:
                report.not_at_partner.append(nhs)
                continue
            foreign_patient = found[0]
            records = list(reader.records_of(str(foreign_patient.get("id"))))
        except PullError as exc:
            report.errors.append(f"NHS number {nhs}: {exc}")
            continue
        refs = {f"Patient/{foreign_patient.get('id')}": f"Patient/{patient}"}
        for resource, _ in records:
            rtype, rid = resource["resourceType"], str(resource.get("id"))
            refs[f"{rtype}/{rid}"] = f"{rtype}/{local_id(partner.id, rtype, rid)}"
        items = []
        for resource, url in records:
            try:
                mapped = to_local(resource, partner=partner.id, source_url=url, refs=refs)
                validate_resource(mapped)
            except (FhirError, KeyError, TypeError, ValueError) as exc:
                why = exc.diagnostics if isinstance(exc, FhirError) else f"{type(exc).__name__}: {exc}"
                report.errors.append(f"{url}: not taken: {why}")
                continue
            meta = resource.get("meta") or {}
            items.append((mapped, url, meta.get("versionId"), meta.get("lastUpdated")))
        with db.write() as c:
            for item in items:
                _store_one(c, partner.id, *item, report=report)
    return report


def _store_one(
    c: Conn,
    partner: str,
    mapped: dict,
    url: str,
    source_version: str | None,
    source_updated: str | None,
    *,
    report: PullReport,
) -> None:
    rtype, rid = mapped["resourceType"], mapped["id"]
    rec = c.one(
        "SELECT local_version, source_version, source_updated FROM pull_record "
        "WHERE partner = ? AND source = ?",
        (partner, url),
    )
    current = store.current(c, rtype, rid)
    if current is not None:
        if rec is None or int(rec[0]) != current.version:
            what = "deleted" if current.deleted else "changed"
            report.conflicts.append(
                f"{rtype}/{rid} was {what} here since it was last pulled (now version {current.version}); "
                f"the local version is kept and {url} was not taken"
            )
            return
        if (source_version, source_updated) == (rec[1], rec[2]):
            report.unchanged += 1
            return
        if source_updated and rec[2] and instant_key(source_updated) < instant_key(rec[2]):
            report.conflicts.append(
                f"{url} (last updated {source_updated}) is older than the version pulled before "
                f"({rec[2]}); {rtype}/{rid} is kept as it is"
            )
            return
    row, created = store.put(c, mapped, rid=rid, method="PUT")
    prov = provenance(
        f"{rtype}/{rid}/_history/{row.version}",
        partner=partner,
        source_url=url,
        recorded=now_instant(),
        source_updated=source_updated,
    )
    validate_resource(prov)
    store.put(c, prov, rid=store.new_id(), method="POST")
    c.run("DELETE FROM pull_record WHERE partner = ? AND source = ?", (partner, url))
    c.run(
        "INSERT INTO pull_record (partner, source, rtype, rid, local_version, source_version, "
        "source_updated, pulled) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (partner, url, rtype, rid, row.version, source_version, source_updated, time.time()),
    )
    if created:
        report.created += 1
    else:
        report.updated += 1
