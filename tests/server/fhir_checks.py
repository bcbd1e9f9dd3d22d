"""What the server tests share: the demo partners, fresh test data, assertions on
OperationOutcomes and bundles, paging, and a second server over the same database."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from tests.conftest import LiveServer, free_port, uid


def outcome(response: httpx.Response, status: int, *words: str) -> str:
    """Assert a client error: this status, an OperationOutcome (JSON or XML) whose
    diagnostics contain every one of `words` (case-insensitive), and no stack trace.
    Returns the diagnostics text."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.status_code < 500
    ctype = response.headers.get("content-type", "")
    assert "traceback" not in response.text.lower()
    if "xml" in ctype:
        assert "<OperationOutcome" in response.text
        text = response.text
    else:
        assert ctype.startswith("application/fhir+json"), ctype
        body = response.json()
        assert body["resourceType"] == "OperationOutcome", body
        issue = body["issue"][0]
        assert issue["severity"] in ("error", "fatal")
        text = issue["diagnostics"]
    for word in words:
        assert word.lower() in text.lower(), f"{word!r} not in {text!r}"
    return text


def refs(bundle: dict, mode: str | None = "match") -> list[str]:
    """'Type/id' of each entry (only entries of this search mode unless mode is None)."""
    out = []
    for e in bundle.get("entry") or []:
        if mode is not None and (e.get("search") or {}).get("mode") != mode:
            continue
        r = e["resource"]
        out.append(f"{r['resourceType']}/{r['id']}")
    return out


def ids(bundle: dict, mode: str | None = "match") -> list[str]:
    return [r.split("/", 1)[1] for r in refs(bundle, mode)]


def next_link(bundle: dict) -> str | None:
    return next((link["url"] for link in bundle.get("link") or [] if link["relation"] == "next"), None)


def pages(client: httpx.Client, path: str, params: dict | None = None) -> Iterator[dict]:
    """Every page of a search or history, following next links."""
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    page = r.json()
    yield page
    while url := next_link(page):
        r = client.get(url)
        assert r.status_code == 200, r.text
        page = r.json()
        yield page


def search_all(client: httpx.Client, path: str, params: dict | None = None) -> list[str]:
    """The ids of every match, across every page."""
    out: list[str] = []
    for page in pages(client, path, params):
        out += ids(page)
    return out


CUSTODIAN = "awp-bath-cmht"  # service A: holds every demo patient's record
TRUST = "awp"  # the trust that service A (and service B) are part of
SERVICE_B = "awp-banes-pcls"
GP = "keynsham-gp"
BATH_MIND = "bath-mind"
CITIZENS_ADVICE = "citizens-advice-banes"
RECOVERY_COLLEGE = "recovery-college"
ICR = "banes-icr"
MILLIE_APP = "millie-app"

NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SECTION_SYSTEM = "https://carebridge.example/fhir/CodeSystem/care-plan-section"
TEST_IDS = "https://carebridge.example/fhir/test-identifier"


# -- fresh data ----------------------------------------------------------------------------------
def nhs_number() -> str:
    """A random NHS number in the 999 test range with a valid modulus-11 check digit."""
    while True:
        digits = [9, 9, 9] + [random.randrange(10) for _ in range(6)]
        check = 11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        if check == 10:
            continue
        return "".join(map(str, digits)) + str(0 if check == 11 else check)


def new_patient(family: str | None = None, **extra: object) -> dict:
    """A Patient body held by Bath CMHT, with a fresh family name and NHS number."""
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS_SYSTEM, "value": nhs_number()}],
        "name": [{"family": family or uid("Fam"), "given": ["Test"]}],
        "managingOrganization": {"reference": f"Organization/{CUSTODIAN}"},
        **extra,
    }


def new_plan(patient: str, **extra: object) -> dict:
    return {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": patient},
        **extra,
    }


# -- a second server over the same database (e.g. with a tiny body limit) ------------------
@contextmanager
def extra_server(live: LiveServer, **state: object) -> Iterator[str]:
    """Another carebridge on the live server's database, its app state overridden."""
    from carebridge.server.app import create_app
    from carebridge.server.db import Database

    db = Database(live.db.url)
    app = create_app(db=db)
    for k, v in state.items():
        setattr(app.state.cb, k, v)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the extra server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        db.close()
