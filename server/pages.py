""" "My care plan, my choices": the person's own pages under /my/ (server-rendered HTML).

The person, or their care coordinator beside them, reads the plan, sees who can see
which part (decided by the gate, exactly as the API enforces it), changes those
choices (saved by the API's own `save_choices`), and reads who has looked. Pages carry
no script: every action is a link or a form. Every page that shows personal data
discloses it through the gate and waits for its audit, like any FHIR read.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from urllib.parse import parse_qsl, quote

import orjson
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.routing import Match, Route

from carebridge.consent.sharing_form import CRISIS_ANSWERS
from carebridge.mappings.plan_words import plan_words
from carebridge.server import page_access, page_choices
from carebridge.server.audit import events_for
from carebridge.server.auth import scope_allows
from carebridge.server.db import Conn
from carebridge.server.disclosure import NOT_PERSONAL
from carebridge.server.errors import FhirError
from carebridge.server.http import Kit, read_body
from carebridge.server.instants import now_instant
from carebridge.server.interaction import Ctx
from carebridge.server.page_access import NotAllowed, Viewer
from carebridge.server.page_log import access_log
from carebridge.server.page_render import error_page, render, stylesheet
from carebridge.server.page_session import COOKIE, PRE_COOKIE, Session, Sessions, cookie_options
from carebridge.server.sharing_table import GROUPS, Record, display_name, load_record
from carebridge.server.store import Row

log = logging.getLogger("carebridge.pages")

FORM_LIMIT = 64 * 1024
CATCH_ALL = "/my/{rest:path}"
# What a page may show of the plan (tasks of a transfer are the care team's working notes).
PLAN_TYPES = frozenset({"CarePlan", "Goal", "RiskAssessment", "CareTeam", "RelatedPerson"})
NAV = (
    ("plan", "My care plan"),
    ("sharing", "Who can see what"),
    ("choices", "Change my choices"),
    ("log", "Who has looked at my record"),
)
EXPIRED_FORM = (
    "This form has expired, or it did not come from this page. "
    "Go back, reload the page and try again. Nothing was changed."
)
BAD_SIGN_IN = (
    "That sign-in link or code is not right, or it has expired. Ask your care coordinator for a new one."
)


class PageError(Exception):
    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(message or "")
        self.status = status
        self.message = message


class SignInNeeded(Exception):
    pass


@dataclass
class Here:
    """One request on one person's pages: who is at the screen, and for whom."""

    session: Session
    viewer: Viewer
    ctx: Ctx
    pid: str
    person: str  # the person's name
    helper: str | None  # "You are making these choices with ..." in assisted mode
    csrf: str

    def page(self, nav: str | None = None) -> dict:
        return {
            "viewer": self.viewer,
            "csrf": self.csrf,
            "person_id": self.pid,
            "person": self.person,
            "helper": self.helper,
            "nav": nav,
            "nav_items": NAV,
        }


def register(kit: Kit) -> None:
    """Routes under /my/ (the FHIR API is untouched)."""
    state = kit.state
    sessions = Sessions(state.signer)

    def page(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """Friendly HTML for every failure, with the right status; never a stack trace."""

        @functools.wraps(fn)
        async def handler(request: Request) -> Response:
            try:
                return await fn(request)
            except SignInNeeded:
                return _sign_in_form(request, 401, "Please sign in to see this page.")
            except PageError as exc:
                return error_page(exc.status, exc.message)
            except FhirError as exc:
                return error_page(exc.status, exc.diagnostics if exc.status < 500 else None)
            except Exception:
                log.exception("page %s %s failed", request.method, request.url.path)
                return error_page(500)

        return handler

    # -- sessions ------------------------------------------------------------------------
    def _secure(request: Request) -> bool:
        return request.url.scheme == "https"

    def _session(request: Request) -> Session | None:
        return sessions.decode(request.cookies.get(COOKIE))

    def _keep(response: Response, request: Request, session: Session) -> Response:
        response.set_cookie(
            COOKIE,
            sessions.encode(sessions.refreshed(session)),
            **cookie_options(_secure(request)),
        )
        return response

    def _sign_in_form(request: Request, status: int = 200, message: str | None = None) -> Response:
        nonce = sessions.pre_nonce()
        response = render(
            "sign_in.html", status, title="Sign in", message=message, pre_csrf=sessions.pre_csrf(nonce)
        )
        response.set_cookie(PRE_COOKIE, nonce, max_age=1800, **cookie_options(_secure(request)))
        response.delete_cookie(COOKIE, **cookie_options(_secure(request)))
        return response

    async def _form(request: Request) -> dict[str, str]:
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise PageError(400, "Please use the form on the page.")
        try:
            raw = await read_body(request, FORM_LIMIT)
        except FhirError as exc:
            raise PageError(exc.status) from None
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))

    def _same_origin(request: Request) -> bool:
        """A second line behind the CSRF token: browsers say where a form came from."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        # "null" is what privacy settings send; the CSRF token still has to match.
        here = f"{request.url.scheme}://{request.headers.get('host', '')}"
        return origin in (None, "null", here)

    def _check_csrf(request: Request, session: Session, form: dict[str, str]) -> None:
        if not _same_origin(request) or not sessions.csrf_ok(session, form.get("csrf")):
            raise PageError(403, EXPIRED_FORM)

    def _here(c: Conn, request: Request) -> Here:
        session = _session(request)
        if session is None:
            raise SignInNeeded
        viewer = page_access.viewer_for(c, state, session)
        if viewer is None:
            raise SignInNeeded
        pid = request.path_params["pid"]
        # Another person's id finds nothing, exactly like an id that does not exist.
        if not page_access.may_open(c, state, viewer, pid):
            raise PageError(404)
        person = display_name(c, f"Patient/{pid}") or "you"
        helper = None
        if viewer.assisted:
            role = page_access.helper_role(c, viewer, pid)
            helper = f"{viewer.name}, your {role}" if role else viewer.name
        ctx = page_access.ctx_for(state, viewer, request)
        return Here(session, viewer, ctx, pid, person, helper, sessions.csrf(session))

    async def _audited(here: Here, response: Response) -> Response:
        """Answer only once what this page disclosed is in the audit trail (rule 9)."""
        await state.audit.commit(events_for(here.ctx.gates, "read"))
        return response

    def _disclose(c: Conn, here: Here, rows: list[Row]) -> list[dict]:
        gate = here.ctx.gate(c)
        out = []
        for row in rows:
            body = gate.disclose(row)
            if body is not None:
                out.append(orjson.loads(body))
        return out

    # -- open routes ------------------------------------------------------------------------
    @kit.route("/my/static/pages.css", "GET")
    async def css(request: Request) -> Response:
        return stylesheet()

    async def _sign_in_with(request: Request, token: str, *, via_link: bool) -> Response:
        try:
            claims = state.signer.verify(token)
        except FhirError:
            return _sign_in_form(request, 401, BAD_SIGN_IN)
        with state.db.read() as c:
            try:
                page_access.check_sign_in(c, state, claims.partner_id, claims.practitioner)
            except NotAllowed as exc:
                return error_page(403, str(exc))
            partner = state.registry.partner(c, claims.partner_id)
        if partner is None:  # removed a moment ago
            return _sign_in_form(request, 401, BAD_SIGN_IN)
        session = sessions.start(
            claims.partner_id,
            claims.scope,
            claims.expires,
            practitioner=claims.practitioner if partner.kind == "trust" else None,
            patient=partner.patient if partner.kind == "person" else None,
        )
        if via_link:
            # A page that moves on by itself, not a redirect: the token leaves the address
            # bar, and the Strict cookie is sent even when the link came from elsewhere.
            response: Response = render("signing_in.html", title="Signing you in", refresh="/my/")
        else:
            response = RedirectResponse("/my/", status_code=303)
        response.delete_cookie(PRE_COOKIE, **cookie_options(_secure(request)))
        response.set_cookie(COOKIE, sessions.encode(session), **cookie_options(_secure(request)))
        return response

    @kit.route("/my/", "GET")
    @page
    async def start(request: Request) -> Response:
        token = request.query_params.get("token")
        if token:
            return await _sign_in_with(request, token, via_link=True)
        session = _session(request)
        if session is None:
            return _sign_in_form(request)
        with state.db.read() as c:
            viewer = page_access.viewer_for(c, state, session)
            if viewer is None:
                return _sign_in_form(request, 401, "Please sign in again.")
            people = page_access.caseload(c, state, viewer)
            if not viewer.assisted:
                if not people:
                    raise PageError(404)
                return _keep(RedirectResponse(f"/my/{quote(people[0])}/", status_code=303), request, session)
            ctx = page_access.ctx_for(state, viewer, request)
            gate = ctx.gate(c)
            listed = []
            for pid in people:
                record = load_record(c, pid)
                if record is None:
                    continue
                body = gate.disclose(record.patient_row)
                if body is None:
                    continue
                patient = orjson.loads(body)
                listed.append(
                    {
                        "id": pid,
                        "name": display_name(c, f"Patient/{pid}") or pid,
                        "born": _born(patient.get("birthDate")),
                    }
                )
        await state.audit.commit(events_for(ctx.gates, "read"))
        response = render(
            "caseload.html",
            title="Who are you with today?",
            viewer=viewer,
            csrf=sessions.csrf(session),
            people=listed,
        )
        return _keep(response, request, session)

    @kit.route("/my/sign-in", "GET")
    @page
    async def sign_in_page(request: Request) -> Response:
        return _sign_in_form(request)

    @kit.route("/my/sign-in", "POST")
    @page
    async def sign_in(request: Request) -> Response:
        form = await _form(request)
        if not _same_origin(request) or not sessions.pre_csrf_ok(
            request.cookies.get(PRE_COOKIE), form.get("csrf")
        ):
            return _sign_in_form(request, 403, EXPIRED_FORM)
        code = form.get("code", "").strip()
        if not code:
            return _sign_in_form(request, 400, "Enter the sign-in code you were given.")
        return await _sign_in_with(request, code, via_link=False)

    @kit.route("/my/sign-out", "POST")
    @page
    async def sign_out(request: Request) -> Response:
        session = _session(request)
        if session is not None:
            _check_csrf(request, session, await _form(request))
        return _sign_in_form(request, 200, "You have signed out.")

    # -- one person's pages ------------------------------------------------------------------
    @kit.route("/my/{pid}/", "GET")
    @page
    async def home(request: Request) -> Response:
        with state.db.read() as c:
            here = _here(c, request)
            record = _record(c, here)
            _disclose(c, here, [record.patient_row])
        response = render("home.html", title="Start", **here.page(""))
        return _keep(await _audited(here, response), request, here.session)

    @kit.route("/my/{pid}/plan", "GET")
    @page
    async def plan(request: Request) -> Response:
        with state.db.read() as c:
            here = _here(c, request)
            record = _record(c, here)
            shown = _disclose(
                c, here, [record.patient_row, *(r for r in record.rows if r.type in PLAN_TYPES)]
            )
            # Organisations and staff are not personal data: their names need no gate.
            words = plan_words(
                (r for r in shown if r.get("resourceType") != "Patient"),
                lambda ref: display_name(c, ref) if ref.split("/")[0] in NOT_PERSONAL else None,
            )
        response = render("plan.html", title="My care plan", plan=words, **here.page("plan"))
        return _keep(await _audited(here, response), request, here.session)

    @kit.route("/my/{pid}/sharing", "GET")
    @page
    async def sharing(request: Request) -> Response:
        with state.db.read() as c:
            here = _here(c, request)
            sh = _sharing(c, here)
        response = render(
            "sharing.html",
            title="Who can see what",
            sh=sh,
            groups=GROUPS,
            saved=request.query_params.get("saved") == "1",
            **here.page("sharing"),
        )
        return _keep(await _audited(here, response), request, here.session)

    @kit.route("/my/{pid}/choices", "GET")
    @page
    async def choices(request: Request) -> Response:
        with state.db.read() as c:
            here = _here(c, request)
            sh = _sharing(c, here)
        response = render(
            "choices.html", title="Change my choices", sh=sh, groups=GROUPS, **here.page("choices")
        )
        return _keep(await _audited(here, response), request, here.session)

    async def _recipient_page(request: Request, form: dict[str, str] | None) -> Response:
        ref = f"{request.path_params['rtype']}/{request.path_params['rid']}"
        with state.db.read() as c:
            here = _here(c, request)
            sh = _sharing(c, here)
            recipient = sh.recipient(ref)
            if recipient is None:
                raise PageError(404)
            if form is None:
                row = sh.rows_now()[ref]
                values = {f"see-{k}": ("yes" if v else "no") for k, v in row.see.items()}
                for name, when in (("from", row.start), ("until", row.end)):
                    if when:
                        d = date.fromisoformat(when)
                        values.update({f"{name}-day": str(d.day), f"{name}-month": str(d.month)})
                        values[f"{name}-year"] = str(d.year)
                status, errors = 200, {}
            else:
                _check_csrf(request, here.session, form)
                proposal = page_choices.propose(sh, "recipient", form, ref)
                if not proposal.errors:
                    return await _confirm(c, request, here, sh, proposal, action_back=request.url.path)
                values, status, errors = form, 400, proposal.errors
        response = render(
            "choose.html",
            status,
            title=f"What can {recipient.name} see?",
            sh=sh,
            recipient=recipient,
            values=values,
            errors=errors,
            **here.page("choices"),
        )
        return _keep(await _audited(here, response), request, here.session)

    @kit.route("/my/{pid}/choices/{rtype}/{rid}", "GET")
    @page
    async def choose(request: Request) -> Response:
        return await _recipient_page(request, None)

    @kit.route("/my/{pid}/choices/{rtype}/{rid}", "POST")
    @page
    async def choose_post(request: Request) -> Response:
        return await _recipient_page(request, await _form(request))

    async def _crisis_page(request: Request, form: dict[str, str] | None) -> Response:
        with state.db.read() as c:
            here = _here(c, request)
            sh = _sharing(c, here)
            if form is None:
                values = {f"crisis:{ref}": row.crisis for ref, row in sh.rows_now().items()}
                status, errors = 200, {}
            else:
                _check_csrf(request, here.session, form)
                proposal = page_choices.propose(sh, "crisis", form)
                if not proposal.errors:
                    return await _confirm(c, request, here, sh, proposal, action_back=request.url.path)
                values, status, errors = form, 400, proposal.errors
        response = render(
            "crisis.html",
            status,
            title="If I am unwell and cannot decide",
            sh=sh,
            values=values,
            errors=errors,
            answers=CRISIS_ANSWERS,
            **here.page("choices"),
        )
        return _keep(await _audited(here, response), request, here.session)

    @kit.route("/my/{pid}/crisis", "GET")
    @page
    async def crisis(request: Request) -> Response:
        return await _crisis_page(request, None)

    @kit.route("/my/{pid}/crisis", "POST")
    @page
    async def crisis_post(request: Request) -> Response:
        return await _crisis_page(request, await _form(request))

    @kit.route("/my/{pid}/stop", "GET")
    @page
    async def stop(request: Request) -> Response:
        with state.db.read() as c:
            here = _here(c, request)
            sh = _sharing(c, here)
            proposal = page_choices.propose(sh, "stop", {})
            return await _confirm(
                c, request, here, sh, proposal, action_back=f"/my/{quote(here.pid)}/choices"
            )

    @kit.route("/my/{pid}/save", "POST")
    @page
    async def save(request: Request) -> Response:
        form = await _form(request)
        with state.db.read() as c:
            here = _here(c, request)
            _check_csrf(request, here.session, form)
            if here.viewer.assisted and not scope_allows(here.session.scope, "Consent", "create"):
                raise PageError(403, "Your sign-in does not allow you to record someone's choices.")
            sh = _sharing(c, here)
            kind = form.get("kind", "")
            if kind not in ("recipient", "crisis", "stop"):
                raise PageError(400)
            ref = form.get("recipient")
            try:
                proposal = page_choices.propose(sh, kind, form, ref)
            except LookupError:
                raise PageError(404) from None
            back = form.get("back", f"/my/{here.pid}/choices")
            if not back.startswith(f"/my/{here.pid}/"):
                back = f"/my/{here.pid}/choices"
            if proposal.errors:
                raise PageError(400)
            if form.get("v") != str(sh.record.consent_version):
                return await _confirm(c, request, here, sh, proposal, action_back=back, status=409)
            if here.viewer.assisted and form.get("together") != "yes":
                return await _confirm(
                    c, request, here, sh, proposal, action_back=back, status=400, together_missing=True
                )
            pv = _preview(c, here, sh, proposal)
            if pv.problems:
                raise PageError(422, " ".join(pv.problems))
        try:
            page_choices.save(here.ctx, sh, pv)
        except FhirError as exc:
            if exc.status != 409:
                raise
            with state.db.read() as c:
                sh = _sharing(c, here)
                return await _confirm(c, request, here, sh, proposal, action_back=back, status=409)
        response = RedirectResponse(f"/my/{quote(here.pid)}/sharing?saved=1", status_code=303)
        return _keep(await _audited(here, response), request, here.session)

    @kit.route("/my/{pid}/log", "GET")
    @page
    async def access(request: Request) -> Response:
        with state.db.read() as c:
            here = _here(c, request)
            record = _record(c, here)
            _disclose(c, here, [record.patient_row])
            entries = access_log(c, here.ctx.gate(c), here.pid)
        response = render(
            "log.html",
            title="Who has looked at my record",
            others=[e for e in entries if not e.you],
            mine=[e for e in entries if e.you],
            **here.page("log"),
        )
        return _keep(await _audited(here, response), request, here.session)

    # Anything else under /my/: a friendly page, whatever the method (405 for a known page).
    @page
    async def not_found(request: Request) -> Response:
        mine = [r for r in kit.app.router.routes if isinstance(r, Route) and r.path.startswith("/my/")]
        if any(r.path != CATCH_ALL and r.matches(request.scope)[0] == Match.PARTIAL for r in mine):
            raise PageError(405)
        raise PageError(404)

    kit.app.add_route(
        "/my/{rest:path}",
        not_found,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )

    # -- helpers that need the state ------------------------------------------------------------
    def _record(c: Conn, here: Here) -> Record:
        record = load_record(c, here.pid)
        if record is None:
            raise PageError(404)
        return record

    def _sharing(c: Conn, here: Here) -> page_choices.Sharing:
        sh = page_choices.read_sharing(c, here.ctx, here.pid)
        if sh is None:
            raise PageError(404)
        # The page shows the effect of these Consents: that is a disclosure of them.
        _disclose(c, here, [sh.record.patient_row, *(r for r in sh.record.rows if r.type == "Consent")])
        return sh

    def _preview(c: Conn, here: Here, sh: page_choices.Sharing, proposal: page_choices.Proposal):
        assisted = here.viewer.assisted
        return page_choices.preview(
            c,
            state.registry,
            sh,
            proposal,
            recorded_by=here.viewer.practitioner if assisted else f"Patient/{here.pid}",
            present=[here.viewer.practitioner] if assisted and here.viewer.practitioner else [],
            when=now_instant(),
        )

    async def _confirm(
        c: Conn,
        request: Request,
        here: Here,
        sh: page_choices.Sharing,
        proposal: page_choices.Proposal,
        *,
        action_back: str,
        status: int = 200,
        together_missing: bool = False,
    ) -> Response:
        pv = _preview(c, here, sh, proposal)
        if pv.problems:
            raise PageError(422, " ".join(pv.problems))
        response = render(
            "confirm.html",
            status,
            title="Check your changes",
            proposal=proposal,
            pv=pv,
            version=sh.record.consent_version,
            back=action_back,
            stale=status == 409,
            together_missing=together_missing,
            always=sh.always,
            **here.page("choices"),
        )
        return _keep(await _audited(here, response), request, here.session)


def _born(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        d = date.fromisoformat(value)
    except ValueError:
        return None
    return f"{d.day} {d:%B %Y}"
