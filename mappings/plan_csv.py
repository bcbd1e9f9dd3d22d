"""Coordinators' caseload spreadsheets (CSV) -> care-plan documents, and back.

A caseload row is only part of a plan (who, who coordinates, how contact is made, when
it is reviewed), so its documents are imported as partial: they update what they state
and never remove what a full document wrote (see import_plan.py).

Pure: named bytes in, documents out. A caseload file has one row per person
(docs/schemas/caseload.tableschema.json); an optional sections file adds the person's
words, one row per section (for `recovery-goals`, one row per goal). Row numbers are
the spreadsheet's: the header is row 1. A problem in one row fails only that person;
a file whose header is wrong, or that cannot be read as CSV, fails as a whole.
Files must be UTF-8 (a byte-order mark is fine); a row holding bytes that are not
UTF-8 is refused, by row, with the column named.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from carebridge.mappings.plan_document import (
    FORMAT,
    VERSION,
    FieldError,
    heading_code,
    method_code,
    nhs_number_problem,
    normalise_nhs_number,
)

CASELOAD_REQUIRED = (
    "nhs_number",
    "given_name",
    "family_name",
    "date_of_birth",
    "coordinator",
    "team",
    "contact_frequency",
    "contact_method",
    "next_review",
)
CASELOAD_OPTIONAL = ("gender", "town", "cpa", "coordinator_phone")
SECTIONS_COLUMNS = ("nhs_number", "section", "text")
# Document field -> caseload column, so a problem found in the document names the column.
COLUMN_OF = {
    "person.nhsNumber": "nhs_number",
    "person.givenName": "given_name",
    "person.familyName": "family_name",
    "person.dateOfBirth": "date_of_birth",
    "person.gender": "gender",
    "person.town": "town",
    "plan.cpa": "cpa",
    "plan.nextReview": "next_review",
    "plan.team": "team",
    "plan.coordinator.name": "coordinator",
    "plan.coordinator.phone": "coordinator_phone",
    "plan.coordinator": "coordinator",
    "sections.contact-plan.agreedContact": "contact_method",
}
_YES = {"yes": True, "y": True, "true": True, "no": False, "n": False, "false": False}


@dataclass
class CsvRecord:
    """One person from a caseload row (plus their section rows)."""

    file: str
    record: str
    data: dict | None
    errors: list[FieldError] = field(default_factory=list)
    source: bytes = b""
    # document field -> (file, row, column) of the cell it came from
    origins: dict[str, tuple[str, str, str]] = field(default_factory=dict)

    def locate(self, error: FieldError) -> FieldError:
        """A problem found in the document, re-addressed to the cell it came from."""
        best = ""
        for path in self.origins:
            if (
                error.field == path
                or error.field.startswith(path + ".")
                or error.field.startswith(path + "[")
            ) and len(path) > len(best):
                best = path
        if not best:
            return error
        file, row, column = self.origins[best]
        return FieldError(column, error.message, file=file, record=row)


def _rows(
    name: str, raw: bytes, columns: tuple[str, ...], optional: tuple[str, ...]
) -> tuple[list, list[CsvRecord]]:
    """(rows as (row number, cells by column, [(column, problem)]), file-level failures)."""
    text = raw.decode("utf-8-sig", errors="surrogateescape")
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        table = list(reader)
    except csv.Error as exc:
        return [], [
            CsvRecord(name, "the whole file", None, [FieldError("", f"cannot be read as CSV: {exc}")])
        ]
    if not table:
        return [], [
            CsvRecord(name, "the whole file", None, [FieldError("", "is empty: it needs a header row")])
        ]
    header = [h.strip() for h in table[0]]
    if any(_bad(h) for h in header):
        return [], [
            CsvRecord(
                name, "row 1", None, [FieldError("", "the header is not UTF-8 text: save the file as UTF-8")]
            )
        ]
    missing = [c for c in columns if c not in header]
    unknown = [h for h in header if h not in columns and h not in optional]
    dupes = sorted({h for h in header if header.count(h) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)}")
    if dupes:
        problems.append(f"repeated column(s): {', '.join(dupes)}")
    if problems:
        expected = ", ".join(columns) + (f" (optional: {', '.join(optional)})" if optional else "")
        message = "; ".join(problems) + f". The columns are: {expected}"
        return [], [CsvRecord(name, "row 1", None, [FieldError("header", message)])]
    out = []
    for n, cells in enumerate(table[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            out.append((n, None, [("", f"has {len(cells)} cells but the header has {len(header)}")]))
            continue
        row = dict(zip(header, cells, strict=True))
        bad = [(c, "is not UTF-8 text: save the file as UTF-8") for c, v in row.items() if _bad(v)]
        out.append((n, row, bad))
    return out, []


def _bad(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def read_caseload(name: str, raw: bytes, sections: list[tuple[str, bytes]] | None = None) -> list[CsvRecord]:
    """One record per caseload row; section rows attach to their person by NHS number."""
    rows, failed = _rows(name, raw, CASELOAD_REQUIRED, CASELOAD_OPTIONAL)
    if failed:
        return failed
    records: list[CsvRecord] = []
    by_nhs: dict[str, CsvRecord] = {}
    for n, row, bad in rows:
        rec = CsvRecord(name, f"row {n}", None)
        if row is None or bad:
            rec.errors = [FieldError(column, message) for column, message in bad]
            records.append(rec)
            continue
        rec.source = ",".join(row.values()).encode()
        rec.data = _caseload_document(row, rec, name, f"row {n}")
        nhs = rec.data["person"].get("nhsNumber", "")
        if nhs in by_nhs:
            rec.errors.append(FieldError("nhs_number", f"this person is already on {by_nhs[nhs].record}"))
        elif nhs:
            by_nhs[nhs] = rec
        records.append(rec)
    for sname, sraw in sections or []:
        records += _attach_sections(sname, sraw, by_nhs)
    for rec in records:
        if rec.errors:
            rec.data = None
    return records


def _caseload_document(row: dict, rec: CsvRecord, file: str, where: str) -> dict:
    cell = {k: v.strip() for k, v in row.items()}
    for path, column in COLUMN_OF.items():
        rec.origins[path] = (file, where, column)
    person: dict = {
        "nhsNumber": normalise_nhs_number(cell["nhs_number"]),
        "givenName": cell["given_name"],
        "familyName": cell["family_name"],
    }
    for column, key in (("date_of_birth", "dateOfBirth"), ("gender", "gender"), ("town", "town")):
        if cell.get(column):
            person[key] = cell[column]
    plan: dict = {}
    if cell.get("cpa"):
        answer = _YES.get(cell["cpa"].lower())
        if answer is None:
            rec.errors.append(FieldError("cpa", f"'{cell['cpa']}' must be yes or no"))
        plan["cpa"] = bool(answer)
    if cell["next_review"]:
        plan["nextReview"] = cell["next_review"]
    if cell["team"]:
        plan["team"] = cell["team"]
    if cell["coordinator"]:
        plan["coordinator"] = {"name": cell["coordinator"]}
        if cell.get("coordinator_phone"):
            plan["coordinator"]["phone"] = cell["coordinator_phone"]
    elif cell.get("coordinator_phone"):
        rec.errors.append(
            FieldError("coordinator_phone", "there is a phone number but no coordinator's name")
        )
    sections: dict = {}
    methods = [m.strip() for m in cell["contact_method"].replace(",", ";").split(";") if m.strip()]
    if methods:
        agreed = []
        for m in methods:
            code = method_code(m)
            if code is None:
                rec.errors.append(
                    FieldError("contact_method", f"'{m}' is not a contact method (e.g. phone, home visit)")
                )
                continue
            item = {"method": code}
            if cell["contact_frequency"]:
                item["frequency"] = cell["contact_frequency"]
            agreed.append(item)
        sections["contact-plan"] = {"agreedContact": agreed}
    elif cell["contact_frequency"]:
        rec.errors.append(
            FieldError("contact_method", "say how contact is made (e.g. phone) as well as how often")
        )
    return {"format": FORMAT, "version": VERSION, "person": person, "plan": plan, "sections": sections}


def _attach_sections(name: str, raw: bytes, by_nhs: dict[str, CsvRecord]) -> list[CsvRecord]:
    rows, failed = _rows(name, raw, SECTIONS_COLUMNS, ())
    if failed:
        # The persons these rows belong to cannot be known; fail every caseload record,
        # so nobody is imported without the words they were meant to have.
        for rec in by_nhs.values():
            rec.errors.append(
                FieldError("", f"{name} could not be read, so this plan is incomplete", file=name)
            )
        return failed
    orphans: list[CsvRecord] = []
    for n, row, bad in rows:
        where = f"row {n}"
        if row is None or bad:
            orphans.append(CsvRecord(name, where, None, [FieldError(c, m) for c, m in bad]))
            continue
        nhs = normalise_nhs_number(row["nhs_number"])
        rec = by_nhs.get(nhs)
        if rec is None:
            problem = nhs_number_problem(nhs) or "no caseload row has this NHS number"
            orphans.append(CsvRecord(name, where, None, [FieldError("nhs_number", problem)]))
            continue
        rec.source += b"\n" + ",".join(row.values()).encode()
        code = heading_code(row["section"])
        if code is None or code == "transfer":
            rec.errors.append(
                FieldError("section", f"unknown section heading '{row['section']}'", file=name, record=where)
            )
            continue
        sections = rec.data["sections"] if rec.data else {}
        text = row["text"]
        path = f"sections.{code}"
        if code == "recovery-goals":
            goals = sections.setdefault(code, {}).setdefault("goals", [])
            rec.origins[f"{path}.goals[{len(goals)}]"] = (name, where, "text")
            goals.append({"words": text})
        elif "text" in sections.get(code, {}):
            rec.errors.append(FieldError("section", f"a second row for '{code}'", file=name, record=where))
        else:
            sections.setdefault(code, {})["text"] = text
            rec.origins[path] = (name, where, "text")
    return orphans


def write_caseload(docs: list[dict]) -> tuple[str, str]:
    """Canonical documents as (caseload CSV, sections CSV) text."""
    head = CASELOAD_REQUIRED + CASELOAD_OPTIONAL
    main, words = io.StringIO(), io.StringIO()
    cw = csv.writer(main, lineterminator="\n")
    sw = csv.writer(words, lineterminator="\n")
    cw.writerow(head)
    sw.writerow(SECTIONS_COLUMNS)
    for doc in docs:
        person, plan, sections = doc["person"], doc["plan"], doc["sections"]
        agreed = sections.get("contact-plan", {}).get("agreedContact", [])
        coordinator = plan.get("coordinator", {})
        row = {
            "nhs_number": person["nhsNumber"],
            "given_name": person["givenName"],
            "family_name": person["familyName"],
            "date_of_birth": person.get("dateOfBirth", ""),
            "coordinator": coordinator.get("name", ""),
            "team": plan.get("team", ""),
            "contact_frequency": agreed[0].get("frequency", "") if agreed else "",
            "contact_method": "; ".join(a["method"] for a in agreed),
            "next_review": plan.get("nextReview", ""),
            "gender": person.get("gender", ""),
            "town": person.get("town", ""),
            "cpa": {True: "yes", False: "no"}.get(plan.get("cpa"), ""),
            "coordinator_phone": coordinator.get("phone", ""),
        }
        cw.writerow([row[c] for c in head])
        for code, section in sections.items():
            if code == "recovery-goals":
                for goal in section.get("goals", []):
                    sw.writerow([person["nhsNumber"], code, goal["words"]])
            elif "text" in section:
                sw.writerow([person["nhsNumber"], code, section["text"]])
    return main.getvalue(), words.getvalue()
