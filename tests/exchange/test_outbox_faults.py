"""The outbox under faults: deliveries are retried, never lost, and kept in order per
resource, whatever the partner does (is down, answers 500 or 429, hangs, answers
garbage, redirects elsewhere); a consent withdrawn while deliveries wait drops them and
sends a recall instead. Each on both backends.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from exchange_world import (
    CUSTODIAN,
    Partner,
    Person,
    change,
    health,
    outbox,
    subscribe,
    wait_for,
)
from pytest_httpserver import HTTPServer
from werkzeug import Response

from carebridge.server import partners
from tests.conftest import LiveServer, free_port, uid

VOLUNTARY = "bath-mind"
# A partner that hangs longer than this is given up on (and tried again).
OUTBOX = {"CAREBRIDGE_PUSH_READ_TIMEOUT": "1.5"}


def versions_by_resource(received: list) -> dict[str, list[int]]:
    """Versions each resource arrived in, in arrival order (a repeat of the same PUT, which a
    timed-out try can cause, counts once: it changes nothing at the partner)."""
    out: dict[str, list[int]] = {}
    for r in received:
        seen = out.setdefault(r.ref, [])
        if not seen or seen[-1] != r.version:
            seen.append(r.version)
    return out


def failing(times: int, answer: Response) -> object:
    """A partner script: answer `answer` to the first `times` requests, then accept."""
    count = {"n": 0}
    lock = threading.Lock()

    def script(_: object) -> Response | None:
        with lock:
            count["n"] += 1
            return answer if count["n"] <= times else None

    return script


def test_a_partner_down_then_back_receives_everything_in_order_per_resource(
    exchange: LiveServer, person: Person
) -> None:
    port = free_port()  # nothing listens there yet: the partner is down
    with exchange.client(VOLUNTARY) as bath_mind:
        sub = subscribe(bath_mind, f"CarePlan?patient={person.id}", f"http://127.0.0.1:{port}/fhir")
        expected: dict[str, list[int]] = {}
        with exchange.client(CUSTODIAN) as trust:
            for i in range(3):
                for code in ("about-me", "daily-activities"):
                    written = change(trust, "CarePlan", person.section(code), description=f"version {i}")
                    expected.setdefault(f"CarePlan/{written['id']}", []).append(
                        int(written["meta"]["versionId"])
                    )
        target = f"sub/{sub['id']}"
        wait_for(lambda: health(exchange.db, target) == "down", why="the partner to be marked down")
        # Its Subscription says so, in FHIR terms.
        down = bath_mind.get(f"/Subscription/{sub['id']}").json()
        assert down["status"] == "error"
        assert "127.0.0.1" in down["error"]
        server = HTTPServer(host="127.0.0.1", port=port, threaded=True)
        server.start()
        try:
            partner = Partner(server)
            wait_for(
                lambda: versions_by_resource(partner.received("PUT")) == expected,
                timeout=30,
                why="all six changes",
            )
            assert versions_by_resource(partner.received("PUT")) == expected
            wait_for(lambda: health(exchange.db, target) == "up", why="the partner to be marked up")
            assert bath_mind.get(f"/Subscription/{sub['id']}").json()["status"] == "active"
        finally:
            server.stop()


@pytest.mark.parametrize(
    "answer",
    [
        Response("boom", status=500),
        Response("", status=503),
        Response("<html>not FHIR</html>", status=200, content_type="application/fhir+json"),
    ],
    ids=["500", "503", "garbage-body"],
)
def test_failed_deliveries_are_retried_until_they_succeed(
    exchange: LiveServer, partner: Partner, person: Person, answer: Response
) -> None:
    partner.script = failing(2, answer)
    with exchange.client(VOLUNTARY) as bath_mind:
        sub = subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint)
    with exchange.client(CUSTODIAN) as trust:
        written = change(trust, "CarePlan", person.section("about-me"), description="keep trying")
    ref = f"CarePlan/{written['id']}"
    rows = wait_for(
        lambda: [r for r in outbox(exchange.db, f"sub/{sub['id']}") if r["state"] == "delivered"],
        why="the delivery to succeed",
    )
    assert len(rows) == 1 and rows[0]["attempts"] >= 3
    assert {a.ref for a in partner.attempts} == {ref}
    assert len(partner.attempts) >= 3
    assert [r.version for r in partner.received("PUT")][-1] == int(written["meta"]["versionId"])


def test_429_is_retried_no_sooner_than_retry_after_asks(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    # Without Retry-After the next try would come within a second (CAREBRIDGE_OUTBOX_BACKOFF_MAX).
    partner.script = failing(1, Response("slow down", status=429, headers={"Retry-After": "2"}))
    with exchange.client(VOLUNTARY) as bath_mind:
        subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint)
    with exchange.client(CUSTODIAN) as trust:
        change(trust, "CarePlan", person.section("about-me"), description="not so fast")
    wait_for(lambda: partner.received("PUT"), why="the retried delivery")
    first, second = partner.attempts[:2]
    assert first.status == 429
    assert second.at - first.at >= 1.9


def test_a_partner_that_hangs_times_out_and_is_tried_again(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    hung = threading.Event()

    def hang_once(_: object) -> Response | None:
        if not hung.is_set():
            hung.set()
            threading.Event().wait(3)  # longer than the read timeout (1.5s)
        return None

    partner.script = hang_once
    with exchange.client(VOLUNTARY) as bath_mind:
        sub = subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint)
    with exchange.client(CUSTODIAN) as trust:
        change(trust, "CarePlan", person.section("about-me"), description="are you there?")
    rows = wait_for(
        lambda: [r for r in outbox(exchange.db, f"sub/{sub['id']}") if r["state"] == "delivered"],
        why="the delivery after the time-out",
    )
    assert rows[0]["attempts"] >= 2
    # The partner saw it twice: the try that timed out (recorded once it stops hanging) and the retry.
    wait_for(lambda: len(partner.attempts) >= 2, why="the hung request to finish at the partner")


@pytest.fixture
def garbage_then_partner() -> Iterator[tuple[str, list[Partner]]]:
    """A port that first answers bytes that are not HTTP at all, then a real partner."""
    port = free_port()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    started: list[Partner] = []

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(b"\x00\x01 this is not HTTP \xff\r\n\r\n")
            conn.close()
        listener.close()
        server = HTTPServer(host="127.0.0.1", port=port, threaded=True)
        server.start()
        started.append(Partner(server))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/fhir", started
    thread.join(timeout=10)
    for p in started:
        p.server.stop()


def test_garbled_answers_are_retried_not_lost(
    exchange: LiveServer, person: Person, garbage_then_partner: tuple[str, list[Partner]]
) -> None:
    endpoint, started = garbage_then_partner
    with exchange.client(VOLUNTARY) as bath_mind:
        sub = subscribe(bath_mind, f"CarePlan?patient={person.id}", endpoint)
    with exchange.client(CUSTODIAN) as trust:
        change(trust, "CarePlan", person.section("about-me"), description="through the noise")
    rows = wait_for(
        lambda: [r for r in outbox(exchange.db, f"sub/{sub['id']}") if r["state"] == "delivered"],
        why="delivery once the partner answers properly",
    )
    assert rows[0]["attempts"] >= 3
    *_, put = started[0].received("PUT")
    assert put.body["description"] == "through the noise"


def test_a_redirect_to_another_host_is_not_followed(exchange: LiveServer, person: Person) -> None:
    elsewhere = HTTPServer(host="localhost", threaded=True)
    elsewhere.start()
    redirecting = HTTPServer(host="127.0.0.1", threaded=True)
    redirecting.start()
    try:
        thief = Partner(elsewhere)
        partner = Partner(redirecting)
        partner.script = lambda r: Response("", status=307, headers={"Location": elsewhere.url_for(r.path)})
        with exchange.client(VOLUNTARY) as bath_mind:
            sub = subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint)
            with exchange.client(CUSTODIAN) as trust:
                change(trust, "CarePlan", person.section("about-me"), description="stay here")
            wait_for(lambda: health(exchange.db, f"sub/{sub['id']}") == "down", why="the partner marked down")
            errored = bath_mind.get(f"/Subscription/{sub['id']}").json()
        assert thief.attempts == []
        assert len(partner.attempts) >= 3
        assert errored["status"] == "error"
        assert "does not follow redirects" in errored["error"]
        [row] = outbox(exchange.db, f"sub/{sub['id']}")
        assert row["state"] == "pending"  # still waiting: re-registering the endpoint would release it
        assert "another host" in row["last_error"]
    finally:
        elsewhere.stop()
        redirecting.stop()


def test_consent_withdrawn_while_deliveries_wait_drops_them_and_recalls_what_was_sent(
    exchange: LiveServer, partner: Partner, person: Person
) -> None:
    app = uid("app")
    partners.add(
        exchange.db,
        partners.Partner(
            app, "Their own page", "person", partners.DEFAULT_SCOPES["person"], patient=f"Patient/{person.id}"
        ),
    )
    about, daily = f"CarePlan/{person.section('about-me')}", f"CarePlan/{person.section('daily-activities')}"
    with exchange.client(VOLUNTARY) as bath_mind, exchange.client(CUSTODIAN) as trust:
        sub = subscribe(bath_mind, f"CarePlan?patient={person.id}", partner.endpoint)
        change(trust, "CarePlan", person.section("about-me"), description="sent before")
        wait_for(lambda: partner.received("PUT", about), why="the first delivery")
        partner.script = lambda _: Response("", status=503)  # the partner goes down
        change(trust, "CarePlan", person.section("about-me"), description="queued 1")
        change(trust, "CarePlan", person.section("about-me"), description="queued 2")
        change(trust, "CarePlan", person.section("daily-activities"), description="queued, never sent")
        wait_for(
            lambda: any(
                r["attempts"] > 0 and r["state"] == "pending" for r in outbox(exchange.db, f"sub/{sub['id']}")
            ),
            why="the queued deliveries to be failing",
        )
        consent = trust.get(f"/Consent/{person.consent}").json()
        assert (
            trust.put(f"/Consent/{person.consent}", json={**consent, "status": "inactive"}).status_code == 200
        )
        wait_for(
            lambda: any(r["action"] == "delete" for r in outbox(exchange.db, f"sub/{sub['id']}")),
            why="the recall to be queued",
        )
        partner.script = None  # back up
        [recall] = wait_for(lambda: partner.received("DELETE"), why="the recall")
    assert recall.ref == about
    assert [r.body["description"] for r in partner.received("PUT")] == ["sent before"]
    assert partner.received(ref=daily) == []  # never held, so nothing to recall
    rows = outbox(exchange.db, f"sub/{sub['id']}")
    puts = [r["state"] for r in rows if r["action"] == "put"]
    assert puts[0] == "delivered"
    assert len(puts) == 4 and set(puts[1:]) <= {"dropped", "withheld"}  # never sent
    # The person sees the recall in their access log.
    with exchange.client() as anon:
        log = anon.get(
            "/AuditEvent",
            params={"patient": person.id},
            headers={"Authorization": f"Bearer {exchange.token(app)}"},
        ).json()
    recalls = [
        e["resource"]
        for e in log.get("entry", [])
        if any(s.get("code") == "recall" for s in e["resource"].get("subtype", []))
    ]
    assert [e["entity"][1]["what"]["reference"] for e in recalls] == [about]
    assert recalls[0]["agent"][0]["who"]["reference"] == f"Organization/{VOLUNTARY}"
