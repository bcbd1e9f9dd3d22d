"""Who is at the screen, and whose record they may open.

Two ways in (CONTRACTS.md section 2): the person's own link (a `person` partner token
bound to them), or "assisted": a care coordinator signed in for the trust that holds
the record (a trust token naming their Practitioner) opens the page for someone on
their caseload. Every page re-checks this against the registry and the record, so a
changed id in the URL finds nothing (404), exactly like a record that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from fastapi import Request

from carebridge.consent.model import Requester
from carebridge.server import store
from carebridge.server.db import Conn
from carebridge.server.disclosure import Gate, requester_for
from carebridge.server.http import State, base_url
from carebridge.server.interaction import Ctx
from carebridge.server.page_session import Session
from carebridge.server.sharing_table import PAGE_PURPOSE, display_name


@dataclass
class Viewer:
    session: Session
    requester: Requester
    name: str  # who is signed in: "Millie Harris" or "Sam Patel"
    assisted: bool  # a coordinator at the screen with the person

    @property
    def practitioner(self) -> str | None:
        return self.session.practitioner


class NotAllowed(Exception):
    """A sign-in that is valid but cannot use these pages; the message says why."""


def viewer_for(c: Conn, state: State, session: Session) -> Viewer | None:
    """The viewer a session stands for now, or None if its partner has gone."""
    requester = requester_for(
        c,
        state.registry,
        session.partner,
        practitioner=session.practitioner,
        purpose=PAGE_PURPOSE,
        break_glass_reason=None,
    )
    if requester is None:
        return None
    if requester.kind == "person":
        if not requester.patient or requester.patient != session.patient:
            return None
        pid = requester.patient.removeprefix("Patient/")
        return Viewer(session, requester, display_name(c, f"Patient/{pid}") or "you", assisted=False)
    if requester.kind == "trust" and session.practitioner:
        name = display_name(c, session.practitioner)
        return None if name is None else Viewer(session, requester, name, assisted=True)
    return None


def check_sign_in(c: Conn, state: State, partner_id: str, practitioner: str | None) -> None:
    """Raise NotAllowed unless this token may sign in to the person's pages."""
    state.registry.refresh(c)
    partner = state.registry.partner(c, partner_id)
    if partner is None:
        raise NotAllowed("This sign-in link is for a system that is no longer registered.")
    if partner.kind == "person":
        return
    if partner.kind == "trust":
        if not practitioner:
            raise NotAllowed(
                "To help someone with their choices, sign in with a link made for you by name "
                "(a trust token that names your Practitioner record)."
            )
        if display_name(c, practitioner) is None:
            raise NotAllowed("The practitioner named in this sign-in is not known to carebridge.")
        return
    raise NotAllowed(
        "These pages are for a person and their care coordinator. Partner systems use the FHIR API instead."
    )


def caseload(c: Conn, state: State, viewer: Viewer) -> list[str]:
    """Patient ids the viewer may open: their own, or (assisted) the people whose care
    team names this practitioner and whose record this trust holds."""
    if not viewer.assisted:
        return [viewer.requester.patient.removeprefix("Patient/")] if viewer.requester.patient else []
    rows = c.all(
        "SELECT DISTINCT r.patient FROM idx_ref i JOIN resource r ON r.type = i.type AND r.id = i.id "
        "WHERE i.type = 'CareTeam' AND i.param = 'participant' AND i.target = ? AND r.deleted = 0 "
        "AND r.patient IS NOT NULL ORDER BY r.patient",
        (viewer.practitioner,),
    )
    gate = Gate(c, state.registry, viewer.requester)
    out = []
    for (pid,) in rows:
        prow = store.current(c, "Patient", pid)
        if prow is not None and not prow.deleted and gate.decide(prow, prow.resource()).basis == "custodian":
            out.append(pid)
    return out


def may_open(c: Conn, state: State, viewer: Viewer, pid: str) -> bool:
    return pid in caseload(c, state, viewer)


def helper_role(c: Conn, viewer: Viewer, pid: str) -> str | None:
    """'care coordinator': the viewer's role in this person's care team, in words."""
    if not viewer.assisted:
        return None
    for (body,) in c.all(
        "SELECT body FROM resource WHERE type = 'CareTeam' AND patient = ? AND deleted = 0", (pid,)
    ):
        team = orjson.loads(bytes(body))
        for p in team.get("participant") or []:
            if (p.get("member") or {}).get("reference") == viewer.practitioner:
                for role in p.get("role") or []:
                    if role.get("text"):
                        return role["text"].lower()
    return None


def ctx_for(state: State, viewer: Viewer, request: Request) -> Ctx:
    """The same request context the FHIR API builds, so saving uses the API's own code."""
    return Ctx(
        db=state.db,
        registry=state.registry,
        requester=viewer.requester,
        scope=viewer.session.scope,
        base_url=base_url(request),
    )
