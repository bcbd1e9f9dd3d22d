"""The outbox's deliveries by MESH instead of HTTP: a partner registered `--push-by mesh`
(here Bath Mind, on the sandbox's third mailbox) receives each change Millie shares with
it as a FHIR message in its mailbox, never what she keeps private, exactly once even
when MESH was away, and a recall message when she withdraws her consent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import orjson
import pytest

from carebridge.adapters.mesh import RECORD_WORKFLOW, Inbound, Mesh
from carebridge.server import partners
from carebridge.server.outbox_cli import summary
from tests.conftest import LiveServer
from tests.exchange.exchange_world import CUSTODIAN, change, wait_for

BATH_MIND = "bath-mind"
BATH_MIND_MAILBOX = "X26ABC3"
TARGET = f"partner/{BATH_MIND}"
ABOUT_ME_LANE = f"{TARGET}|CarePlan/millie-about-me"


def one(server: LiveServer, sql: str, args: tuple) -> tuple | None:
    with server.db.read() as c:  # a fresh read each time: it sees what has committed since
        return c.one(sql, args)


@pytest.fixture(scope="module", autouse=True)
def bath_mind_by_mesh(mesh_server: LiveServer) -> None:
    with mesh_server.db.read() as c:
        bath_mind = partners.get(c, BATH_MIND)
    assert bath_mind is not None
    partners.add(
        mesh_server.db,
        dataclasses.replace(bath_mind, mesh_mailbox=BATH_MIND_MAILBOX, push_by="mesh"),
        replace=True,
    )


class Mailbox:
    """Bath Mind's side of MESH: what has arrived so far (read and acknowledged)."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.messages: list[tuple[Inbound, dict]] = []

    def take(self) -> list[tuple[Inbound, dict]]:
        for mid in self.mesh.inbox():
            m = self.mesh.fetch(mid)
            self.mesh.acknowledge(mid)
            self.messages.append((m, orjson.loads(m.body)))
        return self.messages

    def events(self, reference: str) -> list[tuple[str, dict | None]]:
        """(event code, the record carried) for each message about `reference`, in arrival order."""
        out = []
        for _, bundle in self.take():
            header = bundle["entry"][0]["resource"]
            if header["focus"] == [{"reference": reference}]:
                carried = bundle["entry"][1]["resource"] if len(bundle["entry"]) > 1 else None
                out.append((header["eventCoding"]["code"], carried))
        return out


@pytest.fixture
def mailbox(sandbox) -> Iterator[Mailbox]:
    mesh = Mesh(sandbox.config(BATH_MIND_MAILBOX))
    yield Mailbox(mesh)
    mesh.close()


def test_shared_changes_arrive_as_messages_and_private_ones_never(mesh_server: LiveServer, mailbox: Mailbox):
    with mesh_server.client(CUSTODIAN) as trust:
        shared = change(trust, "CarePlan", "millie-daily-activities", description="Swimming on Saturdays")
        change(trust, "CarePlan", "millie-crisis-plan", description="Text Mum first, then 111")
    wait_for(
        lambda: any(
            r is not None and r["meta"]["versionId"] == shared["meta"]["versionId"]
            for _, r in mailbox.events("CarePlan/millie-daily-activities")
        ),
        why="the shared change in Bath Mind's mailbox",
    )
    [(message, bundle)] = [
        (m, b)
        for m, b in mailbox.messages
        if b["entry"][0]["resource"]["focus"][0]["reference"].endswith("millie-daily-activities")
    ]
    assert message.workflow_id == RECORD_WORKFLOW
    assert bundle["type"] == "message"
    assert bundle["entry"][0]["resource"]["eventCoding"]["code"] == "shared-record-update"
    assert bundle["entry"][1]["resource"]["description"] == "Swimming on Saturdays"
    assert not any(b"millie-crisis-plan" in m.body for m, _ in mailbox.take())
    with mesh_server.db.read() as c:  # `carebridge outbox status` shows it went by MESH
        [status] = [t for t in summary(c, BATH_MIND) if t["target"] == TARGET]
    assert status["by"] == "mesh" and status["delivered"] >= 1


def test_mesh_away_then_back_delivers_each_change_once(mesh_server: LiveServer, sandbox, mailbox: Mailbox):
    sandbox.stop()  # MESH is away (and, in memory, forgets what it held)
    try:
        with mesh_server.client(CUSTODIAN) as trust:
            written = change(trust, "CarePlan", "millie-about-me", description="I'm Millie, I'm 18")
        wait_for(
            lambda: one(
                mesh_server,
                "SELECT attempts FROM outbox WHERE lane = ? AND version = ? AND attempts > 0",
                (ABOUT_ME_LANE, int(written["meta"]["versionId"])),
            ),
            why="a failed attempt while MESH is away",
        )
    finally:
        sandbox.start()
    version = written["meta"]["versionId"]
    wait_for(
        lambda: [
            r
            for _, r in mailbox.events("CarePlan/millie-about-me")
            if r and r["meta"]["versionId"] == version
        ],
        timeout=30,
        why="the change delivered once MESH is back",
    )
    wait_for(
        lambda: one(
            mesh_server,
            "SELECT state FROM outbox WHERE lane = ? AND version = ? AND state = 'delivered'",
            (ABOUT_ME_LANE, int(version)),
        ),
        why="the delivery recorded",
    )
    arrived = [
        r for _, r in mailbox.events("CarePlan/millie-about-me") if r and r["meta"]["versionId"] == version
    ]
    assert len(arrived) == 1


def test_withdrawing_consent_sends_a_recall_message_and_nothing_more(
    mesh_server: LiveServer, mailbox: Mailbox
):
    with mesh_server.client(CUSTODIAN) as trust:
        change(trust, "CarePlan", "millie-daily-activities", description="Swimming on Sundays")
        wait_for(
            lambda: any(
                r is not None and r["description"] == "Swimming on Sundays"
                for _, r in mailbox.events("CarePlan/millie-daily-activities")
            ),
            why="the change before the withdrawal",
        )
        consent = trust.get("/Consent/millie-consent-voluntary").json()
        assert (
            trust.put("/Consent/millie-consent-voluntary", json={**consent, "status": "inactive"}).status_code
            == 200
        )
        wait_for(
            lambda: ("shared-record-recall", None) in mailbox.events("CarePlan/millie-daily-activities"),
            why="the recall message",
        )
        change(trust, "CarePlan", "millie-daily-activities", description="Swimming on Mondays")
    wait_for(
        lambda: (
            one(mesh_server, "SELECT 1 FROM outbox WHERE target = ? AND state = 'pending'", (TARGET,)) is None
        ),
        why="the outbox settled",
    )
    assert not any(
        r is not None and r["description"] == "Swimming on Mondays"
        for _, r in mailbox.events("CarePlan/millie-daily-activities")
    )
