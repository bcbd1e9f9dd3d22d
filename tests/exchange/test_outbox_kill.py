"""A server process killed (SIGKILL) in the middle of delivering: after a restart nothing
is lost, each resource's versions still arrive in order, and what is sent again is the
same PUT of the same version (so the partner ends up exactly where it should).
`carebridge serve` runs as a real subprocess here, on both backends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from exchange_world import CUSTODIAN, FAST, Partner, Person, change, outbox, seed_person, subscribe, wait_for
from pytest_httpserver import HTTPServer

from carebridge.server.auth import Signer
from carebridge.server.db import Database
from carebridge.server.demo import load_demo
from tests.conftest import drop_pg_schema, free_port, make_url, uid

VOLUNTARY = "bath-mind"


class Serve:
    """`carebridge serve` in a subprocess, startable again on the same port and database."""

    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log, self.port = url, log, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def start(self) -> None:
        env = {**os.environ, **FAST, "CAREBRIDGE_OUTBOX_LEASE": "2", "CAREBRIDGE_OUTBOX_THREADS": "4"}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from carebridge.server.cli import main; main()",
                    "serve",
                    "--port",
                    str(self.port),
                    "--database",
                    self.url,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

        def up() -> bool:
            try:
                return httpx.get(f"{self.base}/metadata", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=30, why="carebridge serve to answer")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def served(
    backend: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> Iterator[tuple[Serve, Database]]:
    url = make_url(backend, tmp_path_factory)
    db = Database(url)
    load_demo(db)
    serve = Serve(url, tmp_path / "serve.log")
    yield serve, db
    serve.stop()
    db.close()
    if backend == "postgresql":
        drop_pg_schema(url)


def client(serve: Serve, db: Database, partner: str) -> httpx.Client:
    from carebridge.server.partners import get

    with db.read() as c:
        p = get(c, partner)
    assert p is not None
    token = Signer(db).issue(partner, p.scope)
    return httpx.Client(base_url=serve.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_after_sigkill_mid_delivery_nothing_is_lost_and_redelivery_is_idempotent(
    served: tuple[Serve, Database],
) -> None:
    serve, db = served
    serve.start()
    in_flight, release = threading.Event(), threading.Event()
    count = {"n": 0}
    lock = threading.Lock()

    def hold_the_third(_: object) -> None:
        with lock:
            count["n"] += 1
            n = count["n"]
        if n == 3:  # this one is on the wire when the server dies
            in_flight.set()
            release.wait(15)

    server = HTTPServer(threaded=True)
    server.start()
    try:
        partner = Partner(server)
        partner.script = hold_the_third
        with client(serve, db, CUSTODIAN) as trust, client(serve, db, VOLUNTARY) as bath_mind:
            person: Person = seed_person(trust, uid("kill"))
            sub = subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint)
            expected: dict[str, list[int]] = {}
            for i in range(5):
                for code in ("about-me", "daily-activities"):
                    written = change(trust, "CarePlan", person.section(code), description=f"change {i}")
                    expected.setdefault(f"CarePlan/{written['id']}", []).append(
                        int(written["meta"]["versionId"])
                    )
        wait_for(in_flight.is_set, why="a delivery to be in flight")
        serve.kill()
        release.set()
        serve.start()
        wait_for(
            lambda: {r: sorted(set(v)) for r, v in versions(partner).items()} == expected,
            timeout=40,
            why="every version of every resource to arrive",
        )
        wait_for(
            lambda: all(r["state"] == "delivered" for r in outbox(db, f"sub/{sub['id']}")),
            why="the outbox to record them all",
        )
    finally:
        release.set()
        server.stop()
    for ref, seen in versions(partner).items():
        assert seen == sorted(seen), f"{ref} arrived out of order: {seen}"
    # The same version sent twice is the same PUT, byte for byte the same resource.
    bodies: dict[tuple[str, int], dict] = {}
    for r in partner.received("PUT"):
        assert bodies.setdefault((r.ref, r.version), r.body) == r.body
    # The delivery on the wire when the server died was sent again after the restart.
    assert sum(len(v) for v in versions(partner).values()) > sum(len(v) for v in expected.values())


def versions(partner: Partner) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in partner.received("PUT"):
        out.setdefault(r.ref, []).append(r.version)
    return out
