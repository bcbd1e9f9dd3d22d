"""People and partners for the exchange tests: a person of their own per test, so no test
changes what another reads, and partner systems that record what carebridge sends them.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from carebridge.mappings.vocabulary import NHS_NUMBER_SYSTEM, SECTION_SYSTEM

ALLIANCE = "banes-voluntary-alliance"
CUSTODIAN = "awp-bath-cmht"
SHARED_SECTIONS = ("about-me", "daily-activities")
PRIVATE_SECTIONS = ("crisis-plan",)


# Short timeouts and backoff, so retries and "partner down" happen within a test.
FAST = {
    "CAREBRIDGE_PUSH_CONNECT_TIMEOUT": "2",
    "CAREBRIDGE_PUSH_READ_TIMEOUT": "5",
    "CAREBRIDGE_OUTBOX_BACKOFF_BASE": "0.1",
    "CAREBRIDGE_OUTBOX_BACKOFF_MAX": "0.8",
    "CAREBRIDGE_OUTBOX_DOWN_AFTER": "3",
    "CAREBRIDGE_OUTBOX_POLL": "0.05",
    "CAREBRIDGE_OUTBOX_LEASE": "3",
}


def wait_for(what: Callable[[], Any], *, timeout: float = 20.0, every: float = 0.05, why: str = "") -> Any:
    """Poll until `what()` is truthy (bounded); returns its value or fails saying what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {why or what}")
        time.sleep(every)


def nhs_number() -> str:
    """A random valid test-range NHS number (modulus 11)."""
    while True:
        digits = "999" + "".join(random.choice("0123456789") for _ in range(6))
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check != 10:
            return digits + str(check)


def _tag(code: str) -> dict:
    return {"tag": [{"system": SECTION_SYSTEM, "code": code}]}


@dataclass
class Person:
    """A person held by the demo trust, who shares some plan sections with the alliance."""

    id: str
    nhs_number: str
    consent: str
    plan: str
    sections: dict[str, str]  # section code -> CarePlan id
    risk: str

    def section(self, code: str) -> str:
        return self.sections[code]


def seed_person(trust: httpx.Client, pid: str) -> Person:
    """Patient, a consent for the alliance (plan + about-me + daily-activities; never the crisis
    plan), a parent plan, sections, and a risk assessment the daily-activities section points at."""
    number = nhs_number()
    patient = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": number}],
        "name": [{"given": ["Test"], "family": pid}],
        "managingOrganization": {"reference": f"Organization/{CUSTODIAN}"},
    }
    _put(trust, patient)
    consent = {
        "resourceType": "Consent",
        "id": f"{pid}-consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
        "provision": {
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": {"reference": f"Organization/{ALLIANCE}"},
                }
            ],
            "provision": [
                {
                    "type": "permit",
                    "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Patient"}],
                },
                {
                    "type": "permit",
                    "code": [
                        {"coding": [{"system": SECTION_SYSTEM, "code": c}]}
                        for c in ("plan", *SHARED_SECTIONS)
                    ],
                },
            ],
        },
    }
    _put(trust, consent)
    risk = {
        "resourceType": "RiskAssessment",
        "id": f"{pid}-risk",
        "meta": _tag("risk-assessment"),
        "status": "final",
        "subject": {"reference": f"Patient/{pid}"},
        "occurrenceDateTime": "2026-05-01T10:00:00Z",
    }
    _put(trust, risk)
    plan = _plan(pid, f"{pid}-plan", "plan", None)
    _put(trust, plan)
    sections = {}
    for code in (*SHARED_SECTIONS, *PRIVATE_SECTIONS):
        section = _plan(pid, f"{pid}-{code}", code, f"{pid}-plan")
        if code == "daily-activities":
            section["supportingInfo"] = [{"reference": f"RiskAssessment/{pid}-risk", "display": "my risks"}]
        _put(trust, section)
        sections[code] = section["id"]
    return Person(pid, number, consent["id"], plan["id"], sections, risk["id"])


def _plan(pid: str, rid: str, code: str, parent: str | None) -> dict:
    plan = {
        "resourceType": "CarePlan",
        "id": rid,
        "meta": _tag(code),
        "status": "active",
        "intent": "plan",
        "title": code,
        "description": f"{code} of {pid}",
        "subject": {"reference": f"Patient/{pid}"},
    }
    if parent:
        plan["partOf"] = [{"reference": f"CarePlan/{parent}"}]
    return plan


def _put(client: httpx.Client, resource: dict) -> dict:
    r = client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert r.status_code in (200, 201), r.text
    return r.json()


def change(client: httpx.Client, rtype: str, rid: str, **fields: Any) -> dict:
    """Read, change and write back one resource; returns the new version."""
    current = client.get(f"/{rtype}/{rid}").json()
    current.update(fields)
    r = client.put(f"/{rtype}/{rid}", json=current)
    assert r.status_code == 200, r.text
    return r.json()


def subscribe(
    client: httpx.Client,
    criteria: str,
    endpoint: str,
    *,
    payload: str | None = "application/fhir+json",
    headers: list[str] | None = None,
) -> dict:
    channel: dict = {"type": "rest-hook", "endpoint": endpoint}
    if payload:
        channel["payload"] = payload
    if headers:
        channel["header"] = headers
    r = client.post(
        "/Subscription",
        json={
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "test",
            "criteria": criteria,
            "channel": channel,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


@dataclass
class Received:
    method: str
    path: str
    body: dict | None
    headers: dict[str, str]
    at: float
    status: int

    @property
    def ref(self) -> str:
        return "/".join(self.path.rstrip("/").split("/")[-2:])

    @property
    def version(self) -> int:
        return int(((self.body or {}).get("meta") or {}).get("versionId") or 0)


Script = Callable[[Received], Response | None]


@dataclass
class Partner:
    """A partner FHIR server (pytest-httpserver) that records every request carebridge makes.

    `script` may answer a request itself (to fail it, say); otherwise it is accepted.
    """

    server: HTTPServer
    attempts: list[Received] = field(default_factory=list)
    script: Script | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    @property
    def endpoint(self) -> str:
        return self.server.url_for("/fhir")

    def _handle(self, request: Request) -> Response:
        raw = request.get_data()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        rec = Received(request.method, request.path, body, dict(request.headers), time.time(), 0)
        answer = self.script(rec) if self.script else None
        if answer is None:
            answer = Response(
                raw or b"",
                status=200 if request.method != "POST" else 202,
                content_type="application/fhir+json",
            )
        rec.status = answer.status_code
        with self.lock:
            self.attempts.append(rec)
        return answer

    def received(self, method: str | None = None, ref: str | None = None) -> list[Received]:
        """Requests it accepted (2xx), in arrival order."""
        with self.lock:
            attempts = sorted(self.attempts, key=lambda r: r.at)
            return [
                r
                for r in attempts
                if 200 <= r.status < 300
                and (method is None or r.method == method)
                and (ref is None or r.ref == ref)
            ]


def outbox(db: Any, target: str | None = None) -> list[dict]:
    """The outbox rows (oldest first), as dicts, straight from the database."""
    cols = (
        "id",
        "target",
        "partner",
        "action",
        "reason",
        "rtype",
        "rid",
        "version",
        "state",
        "attempts",
        "last_error",
        "note",
    )
    where, args = ("WHERE target = ?", (target,)) if target else ("", ())
    with db.read() as c:
        return [
            dict(zip(cols, t, strict=True))
            for t in c.all(f"SELECT {', '.join(cols)} FROM outbox {where} ORDER BY id", args)
        ]


def health(db: Any, target: str) -> str | None:
    with db.read() as c:
        t = c.one("SELECT health FROM outbox_target WHERE target = ?", (target,))
    return t[0] if t else None


# -- bulk export ----------------------------------------------------------------------
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


def kick_off(client: httpx.Client, path: str, **params: str) -> str:
    r = client.get(path, params=params, headers=ASYNC)
    assert r.status_code == 202, r.text
    return r.headers["Content-Location"]


def finished(client: httpx.Client, status_url: str) -> dict:
    def done() -> dict | None:
        r = client.get(status_url)
        if r.status_code == 202:
            return None
        assert r.status_code == 200, r.text
        return r.json()

    return wait_for(done, timeout=60, every=0.1, why="the export to finish")


def files(client: httpx.Client, manifest: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for item in manifest["output"]:
        r = client.get(item["url"])
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [orjson.loads(line) for line in r.text.splitlines() if line]
        assert len(lines) == item["count"]
        assert all(x["resourceType"] == item["type"] for x in lines)
        out[item["type"]] = lines
    return out


def export(client: httpx.Client, path: str = "/Patient/$export", **params: str) -> dict[str, list[dict]]:
    return files(client, finished(client, kick_off(client, path, **params)))
