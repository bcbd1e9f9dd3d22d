"""Fixtures for the care-plan mapping tests: the seed people's golden documents and
fresh people for tests that write (so no test changes what another one reads)."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

from carebridge.mappings.import_plan import Source, plan_writes
from carebridge.mappings.plan_document import check_document
from carebridge.mappings.plan_to_fhir import document_parts
from carebridge.server import partners
from carebridge.server.db import Database

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCHEMAS = ROOT / "docs" / "schemas"
SEED_PEOPLE = ("millie", "richard", "jenny", "george", "ava", "zoe", "fred")
CUSTODIAN = "Organization/awp-bath-cmht"


def golden(name: str) -> dict:
    """The seed person's golden care-plan document (examples/NAME.json)."""
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def fresh_nhs_number(rng: random.Random | None = None) -> str:
    """A valid NHS number in the test range that no seed person has."""
    rng = rng or random.Random()
    while True:
        stem = f"9995{rng.randrange(10**5):05d}"
        check = 11 - sum(int(d) * w for d, w in zip(stem, range(10, 1, -1), strict=True)) % 11
        if check != 10:
            return stem + str(0 if check == 11 else check)


def bad_check_digit(number: str) -> str:
    return number[:9] + str((int(number[9]) + 1) % 10)


def fresh_person(name: str = "richard", **plan: object) -> dict:
    """A seed person's plan for somebody new (a fresh NHS number and surname)."""
    doc = copy.deepcopy(golden(name))
    doc["person"]["nhsNumber"] = fresh_nhs_number()
    doc["person"]["familyName"] = f"Test-{doc['person']['nhsNumber'][-5:]}"
    doc["plan"].update(plan)
    return doc


def fhir_family(doc: dict, custodian: str = CUSTODIAN) -> list[dict]:
    """The resources a document maps to, as a first import would write them."""
    checked, errors = check_document(doc)
    assert not errors, errors
    plan = plan_writes(
        document_parts(checked, custodian),
        [],
        source=Source("test.json", "$", "JSON care-plan document", "0" * 64),
        custodian=custodian,
        recorded="2025-03-12T10:00:00Z",
    )
    return [e["resource"] for e in plan.entries]


def add_trust(db: Database, partner_id: str = "test-trust") -> str:
    trust = partners.Partner(partner_id, "Test trust", "trust", partners.DEFAULT_SCOPES["trust"])
    partners.add(db, trust, replace=True)
    return partner_id
