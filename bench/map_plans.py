"""Care-plan mappings: documents mapped per second, and end-to-end import into SQLite.

    python bench/map_plans.py [--plans 10000] [--map-docs 2000]

(a) pure mapping: care-plan documents checked and mapped to transaction Bundles per
    second, then the same with every resource validated (fhir.resources structure, NHS
    number, reference targets: the server's validation on write) and with the published
    profiles (FHIRPath invariants) on top;
(b) end to end: `carebridge map import` of N care plans (a JSON file of N documents)
    into a fresh SQLite database, through the same code as the CLI (bundle.process with
    validation on write, one atomic transaction per person), then importing the same
    file again (everything unchanged); once as whole JSON documents, once as caseload
    CSV rows. Target: >= 300 plans/s for (b).
A JSON plan is a realistic family of 19 resources: the person, their coordinator, a
parent plan, eight sections, goals, family, contacts, care team, risk assessment and
the Provenance. A caseload row is 6: person, parent plan, contact-plan section, care
team, Provenance (and the coordinator, shared by 250 people each).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

from carebridge.mappings.import_plan import Source, plan_writes
from carebridge.mappings.plan_csv import write_caseload
from carebridge.mappings.plan_document import check_document
from carebridge.mappings.plan_to_fhir import document_parts
from carebridge.mappings.profile_check import check as check_profiles
from carebridge.server import partners
from carebridge.server.db import Database
from carebridge.server.map_import import import_record, read_records
from carebridge.server.map_target import DatabaseTarget
from carebridge.server.validate import validate_resource

TRUST = "bench-trust"
WORDS = (
    "I like walking by the river and seeing my friends on Saturdays. Mornings are hard, so I plan the day"
    " the night before. I want to be asked, not told."
)


def nhs_numbers(count: int) -> list[str]:
    """`count` valid test-range NHS numbers (999 prefix, modulus 11 check digit)."""
    out, stem = [], 999000000
    while len(out) < count:
        digits = str(stem)
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check != 10:  # a stem whose check digit would be 10 has no valid number
            out.append(digits + str(0 if check == 11 else check))
        stem += 1
    return out


def document(i: int, nhs: str, rng: random.Random) -> dict:
    return {
        "format": "carebridge-care-plan",
        "version": 1,
        "person": {
            "nhsNumber": nhs,
            "givenName": rng.choice(["Alex", "Sam", "Jo", "Priya", "Tom", "Ava", "Kai", "Ruth"]),
            "familyName": f"Person{i}",
            "dateOfBirth": f"{rng.randint(1940, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "gender": rng.choice(["female", "male", "other"]),
            "town": rng.choice(["Bath", "Keynsham", "Radstock", "Midsomer Norton"]),
            "phone": f"07700 9{i % 100000:05d}",
        },
        "plan": {
            "title": "My care and support plan",
            "summary": WORDS,
            "cpa": bool(i % 2),
            "started": "2025-01-06",
            "nextReview": "2027-01-06",
            "team": "Bath Community Mental Health Team",
            "coordinator": {
                "name": f"Coordinator {i % 40}",
                "role": "Care coordinator",
                "phone": "01632 960100",
            },
        },
        "sections": {
            "about-me": {"text": WORDS},
            "daily-activities": {
                "text": "My week.",
                "activities": [
                    {"what": "Walk the dog", "when": "Every morning"},
                    {"what": "Job club", "when": "Tuesdays"},
                    {"what": "Tea at my sister's", "when": "Sundays"},
                ],
            },
            "contact-plan": {
                "text": "Phone me first; visits at home are fine if agreed.",
                "agreedContact": [
                    {"method": "phone", "frequency": "Every Tuesday"},
                    {"method": "home-visit", "frequency": "Once a month"},
                ],
            },
            "contacts": {
                "text": "Who to call.",
                "contacts": [{"name": "NHS 111, mental health option", "phone": "111", "emergency": True}],
            },
            "family-relationships": {
                "text": "My sister is my main support.",
                "people": [{"name": "Sue", "relationship": "sister", "phone": "07700 900302"}],
            },
            "recovery-goals": {
                "goals": [
                    {"words": "Get back to work.", "recoveryStar": {"area": "Work", "score": 7}},
                    {
                        "words": "Sleep better.",
                        "recoveryStar": {"area": "Managing mental health", "score": 6},
                    },
                ]
            },
            "crisis-plan": {"text": "If I stop eating and go quiet, ring my sister, then NHS 111."},
            "risk-assessment": {
                "text": "We talked about it together.",
                "assessed": "2025-01-06",
                "risks": [{"what": "Becoming isolated", "level": "low", "why": "Lives alone."}],
                "mitigation": "Weekly contact.",
                "personView": "Fair.",
            },
        },
    }


def bench_mapping(docs: list[dict]) -> None:
    source = Source("bench.json", "$", "JSON care-plan document", "0" * 64)

    def bundles() -> list[list[dict]]:
        out = []
        for doc in docs:
            checked, _ = check_document(doc)
            parts = document_parts(checked, f"Organization/{TRUST}")
            plan = plan_writes(
                parts, [], source=source, custodian=f"Organization/{TRUST}", recorded="2025-01-01T00:00:00Z"
            )
            out.append([e["resource"] for e in plan.entries])
        return out

    t = time.perf_counter()
    mapped = bundles()
    dt = time.perf_counter() - t
    n = len(docs)
    resources = sum(len(b) for b in mapped)
    print(f"(a) mapping only:                     {n / dt:8.0f} documents/s ({resources / n:.1f} resources)")
    t = time.perf_counter()
    for b in bundles():
        for r in b:
            validate_resource(r)
    dt = time.perf_counter() - t
    print(f"(a) mapping + validation on write:    {n / dt:8.0f} documents/s")
    t = time.perf_counter()
    for b in bundles():
        for r in b:
            validate_resource(r)
            check_profiles(r)
    dt = time.perf_counter() - t
    print(f"(a) mapping + validation + profiles:  {n / dt:8.0f} documents/s")


def bench_import(docs: list[dict], tmp: Path, fmt: str) -> None:
    db = Database(f"sqlite:///{tmp / f'bench-{fmt}.db'}")
    partners.add(db, partners.Partner(TRUST, "Bench trust", "trust", partners.DEFAULT_SCOPES["trust"]))
    if fmt == "json":
        path = tmp / "plans.json"
        path.write_bytes(orjson.dumps(docs))
    else:
        path = tmp / "caseload.csv"
        path.write_text(write_caseload(docs)[0])
    print(f"(b) {len(docs)} plans as {path.name}:")
    for label in ("first import (all created)", "same file again (unchanged)"):
        target = DatabaseTarget(db, TRUST)
        t = time.perf_counter()
        outcomes: dict[str, int] = {}
        for record in read_records([path]):
            result = import_record(record, target)
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        dt = time.perf_counter() - t
        target.close()
        n = len(docs)
        print(f"    {label:30s} {n} plans in {dt:6.1f}s = {n / dt:6.0f} plans/s  {outcomes}")
    with db.read() as c:
        (count,) = c.one("SELECT COUNT(*) FROM resource")
    print(f"    the database holds {count} resources")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plans", type=int, default=10_000)
    ap.add_argument("--map-docs", type=int, default=2_000)
    ap.add_argument(
        "--formats", nargs="+", default=["json", "csv"], help="json documents and/or caseload rows"
    )
    args = ap.parse_args()
    rng = random.Random(5)
    print(f"Python {sys.version.split()[0]}")
    numbers = nhs_numbers(max(args.plans, args.map_docs))
    bench_mapping([document(i, numbers[i], rng) for i in range(args.map_docs)])
    with tempfile.TemporaryDirectory(prefix="cb-map-bench-") as tmp:
        docs = [document(i, numbers[i], rng) for i in range(args.plans)]
        for fmt in args.formats:
            bench_import(docs, Path(tmp), fmt)


if __name__ == "__main__":
    main()
