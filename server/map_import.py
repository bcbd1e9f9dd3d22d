"""`carebridge map import`: local care-plan records -> FHIR, one atomic Bundle per person.

Reading files is here; everything else is the pure mappings: check the document, map
it to parts, ask the target what it already holds (one batch), plan the writes, and
send them as one transaction. A record that fails names its file, its record (row or
JSON path) and the field; it writes nothing, and the next record still imports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from carebridge.mappings import profile_check
from carebridge.mappings.import_plan import Source, found_resources, lookup_bundle, plan_writes
from carebridge.mappings.plan_csv import read_caseload
from carebridge.mappings.plan_document import FieldError, check_document
from carebridge.mappings.plan_to_fhir import PART_PREFIX, Part, document_parts
from carebridge.mappings.plan_xml import read_xml
from carebridge.server.errors import FhirError
from carebridge.server.instants import now_instant
from carebridge.server.map_target import Target, TargetError, batch_failures
from carebridge.server.validate import validate_resource

KINDS = {"json": "JSON care-plan document", "xml": "XML care-plan document", "csv": "CSV caseload row"}


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    record: str
    field: str
    message: str

    def __str__(self) -> str:
        where = ", ".join(p for p in (self.file, self.record, self.field) if p)
        return f"{where}: {self.message}"


@dataclass
class Record:
    """One person's plan as read from a file, before it is checked."""

    file: str
    record: str
    fmt: str
    data: dict | None
    errors: list[FieldError] = field(default_factory=list)
    source: bytes = b""
    locate: Callable[[FieldError], FieldError] = lambda e: e

    def problems(self, errors: list[FieldError]) -> list[Problem]:
        out = []
        for e in errors:
            e = self.locate(e)
            out.append(Problem(e.file or self.file, e.record or self.record, e.field, e.message))
        return out


@dataclass
class Result:
    file: str
    record: str
    outcome: str  # created | updated | unchanged | failed (dry run: the same, not written)
    problems: list[Problem] = field(default_factory=list)
    bundle: dict | None = None
    who: str = ""


def guess_format(path: Path) -> str | None:
    ext = path.suffix.lower().lstrip(".")
    return ext if ext in KINDS else None


def read_records(paths: list[Path], fmt: str | None = None) -> list[Record]:
    """Every record in the files (CSV section files attach to the caseload rows)."""
    records: list[Record] = []
    caseloads: list[tuple[str, bytes]] = []
    section_files: list[tuple[str, bytes]] = []
    for path in paths:
        name = str(path)
        kind = fmt or guess_format(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            records.append(
                Record(name, "the whole file", kind or "?", None, [FieldError("", f"cannot be read: {exc}")])
            )
            continue
        if kind is None:
            records.append(
                Record(
                    name,
                    "the whole file",
                    "?",
                    None,
                    [FieldError("", "unknown format: use --format json|xml|csv")],
                )
            )
        elif kind == "json":
            records += _json_records(name, raw)
        elif kind == "xml":
            records += [Record(name, r.record, "xml", r.data, r.errors, r.source) for r in read_xml(raw)]
        elif _is_sections_csv(raw):
            section_files.append((name, raw))
        else:
            caseloads.append((name, raw))
    if section_files and not caseloads:
        for name, _ in section_files:
            message = "is a sections file: import it together with the caseload file it belongs to"
            records.append(Record(name, "the whole file", "csv", None, [FieldError("", message)]))
    for name, raw in caseloads:
        for r in read_caseload(name, raw, section_files):
            records.append(Record(r.file, r.record, "csv", r.data, r.errors, r.source, r.locate))
    return records


def _is_sections_csv(raw: bytes) -> bool:
    first = raw.decode("utf-8-sig", errors="replace").split("\n", 1)[0]
    return "section" in [c.strip().strip('"') for c in first.split(",")]


def _json_records(name: str, raw: bytes) -> Iterator[Record]:
    try:
        data = orjson.loads(raw.removeprefix(b"\xef\xbb\xbf"))  # editors on Windows add a BOM
    except orjson.JSONDecodeError as exc:
        yield Record(
            name, "the whole file", "json", None, [FieldError("", f"is not valid JSON (UTF-8): {exc}")]
        )
        return
    if isinstance(data, list):
        for i, item in enumerate(data):
            yield Record(name, f"$[{i}]", "json", item, source=orjson.dumps(item))
    else:
        yield Record(name, "$", "json", data, source=raw)


def validate_parts(parts: list[Part]) -> list[FieldError]:
    """Local checks before anything is sent: FHIR validity and the published profiles."""
    types = {f"{PART_PREFIX}{p.key}": p.rtype for p in parts}
    errors = []
    for p in parts:
        resource = _placeholders({**p.resource, "id": "check"}, types)
        try:
            validate_resource(resource)
        except FhirError as exc:
            errors.append(FieldError(p.field, exc.diagnostics))
        for issue in profile_check.check(resource):
            if issue.severity == "error":
                errors.append(FieldError(p.field, issue.diagnostics))
    return errors


def _placeholders(node: object, types: dict[str, str]) -> object:
    """References between parts ('part:...') as Type/id references, for checking alone."""
    if isinstance(node, dict):
        return {
            k: f"{types[v]}/check" if k == "reference" and v in types else _placeholders(v, types)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_placeholders(v, types) for v in node]
    return node


def map_record(record: Record, custodian: str) -> tuple[list[Part] | None, list[Problem]]:
    """The parts of a record's plan, or the problems that stop it mapping."""
    if record.data is None:
        return None, record.problems(record.errors or [FieldError("", "could not be read")])
    doc, errors = check_document(record.data)
    if errors or doc is None:
        return None, record.problems(errors)
    return document_parts(doc, custodian), []


def import_record(record: Record, target: Target | None, *, dry_run: bool = False) -> Result:
    """Import one record (atomically); with `dry_run`, check it and work out what would change."""
    custodian = target.identity.organization if target else "Organization/custodian"
    result = Result(record.file, record.record, "failed")
    parts, problems = map_record(record, custodian)
    if parts is None:
        result.problems = problems
        return result
    result.who = next(p.value for p in parts if p.rtype == "Patient")
    if dry_run:
        errors = validate_parts(parts)
        if errors:
            result.problems = record.problems(errors)
            return result
    source = Source(
        file=record.file,
        record=record.record,
        kind=KINDS.get(record.fmt, "care-plan record"),
        digest=hashlib.sha256(record.source).hexdigest(),
    )
    try:
        found = []
        if target is not None:
            answer = target.batch(lookup_bundle(parts))
            failures = batch_failures(answer)
            if failures:
                raise TargetError(400, "; ".join(failures))
            found = found_resources(answer)
            holder = _held_elsewhere(target, result.who, found)
            if holder:
                message = (
                    f"this person's record is held by {holder}, not {target.identity.organization}: "
                    "a plan is imported by the trust that holds the record (give --partner)"
                )
                result.problems = [Problem(record.file, record.record, "person.nhsNumber", message)]
                return result
    except TargetError as exc:
        result.problems = [
            Problem(record.file, record.record, "", f"could not look the person up: {exc.message}")
        ]
        return result
    complete = record.fmt != "csv"  # a caseload row is only part of a plan
    plan = plan_writes(
        parts, found, source=source, custodian=custodian, recorded=now_instant(), complete=complete
    )
    result.bundle = plan.bundle()
    if plan.entries and target is not None and not dry_run:
        try:
            target.transaction(plan.bundle())
        except TargetError as exc:
            result.problems = [
                Problem(record.file, record.record, _field_of(exc.message, plan.fields), exc.message)
            ]
            return result
    result.outcome = plan.outcome
    return result


def _held_elsewhere(target: Target, nhs: str, found: list[dict]) -> str | None:
    if any(r.get("resourceType") == "Patient" for r in found):
        return None
    check = getattr(target, "held_elsewhere", None)  # only a database target can tell
    return check(nhs) if check is not None else None


def _field_of(message: str, fields: list[str]) -> str:
    """The document field behind 'Bundle.entry[i]: ...' in a target's refusal."""
    if message.startswith("Bundle.entry["):
        index = message[len("Bundle.entry[") :].split("]", 1)[0]
        if index.isdigit() and int(index) < len(fields):
            return fields[int(index)]
    return ""
