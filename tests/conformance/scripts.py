"""Small TestScript builders for the engine's own tests (the suites are plain JSON)."""

from __future__ import annotations

from typing import Any

OPS = "http://terminology.hl7.org/CodeSystem/testscript-operation-codes"


def operation(code: str, **fields: Any) -> dict:
    return {"operation": {"type": {"system": OPS, "code": code}, **fields}}


def check(**fields: Any) -> dict:
    return {"assert": {"warningOnly": False, **fields}}


def script_of(*tests: dict, **fields: Any) -> dict:
    return {
        "resourceType": "TestScript",
        "id": "t",
        "url": "https://carebridge.example/fhir/TestScript/t",
        "name": "T",
        "status": "draft",
        "test": list(tests),
        **fields,
    }


def case(tid: str, *actions: dict) -> dict:
    return {"id": tid, "name": tid, "action": list(actions)}
