"""The HTTP face: FastAPI routes for the FHIR REST API under /fhir.

Handlers are thin: authenticate, negotiate the format, call an interaction, render.
They are `async def` and call the database directly: each worker process serves one
query at a time with no thread hop (SQLite answers in microseconds); throughput scales
by adding workers, which share state only through the database.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from carebridge.consent.model import Requester
from carebridge.mappings.vocabulary import CANONICAL_BASE
from carebridge.server import auth, bundle, formats, operations
from carebridge.server import interaction as ix
from carebridge.server.audit import AuditWriter, events_for
from carebridge.server.auth import require_scope
from carebridge.server.capability import capability_statement
from carebridge.server.db import Database
from carebridge.server.disclosure import requester_for
from carebridge.server.errors import FhirError, operation_outcome
from carebridge.server.partners import Registry, all_partners
from carebridge.server.validate import validate_resource

log = logging.getLogger("carebridge")
Handler = Callable[[Request], Awaitable[Response]]

MAX_BODY_BYTES = int(os.environ.get("CAREBRIDGE_MAX_BODY_BYTES", str(10 * 1024 * 1024)))
PURPOSE_CODES = frozenset(
    {
        "TREAT",
        "ETREAT",
        "CAREMGT",
        "COC",
        "PATRQT",
        "FAMRQT",
        "PWATRNY",
        "SUPNWK",
        "HOPERAT",
        "HPAYMT",
        "HRESCH",
        "PUBHLTH",
        "HSYSADMIN",
        "HDIRECT",
        "HMARKT",
        "HQUALIMP",
        "HLEGAL",
        "HCOMPL",
        "PATADMIN",
        "PATSFTY",
        "POPHLTH",
        "SYSDEV",
    }
)


@dataclass
class State:
    db: Database
    signer: auth.Signer
    registry: Registry
    audit: AuditWriter
    max_body: int = MAX_BODY_BYTES


def base_url(request: Request) -> str:
    # Built from the scope directly: Starlette's URL objects cost more than the read itself.
    scope = request.scope
    host = request.headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}/fhir"


def fhir_response(result: ix.Result, fmt: str, *, pretty: bool = False) -> Response:
    body = result.body
    if body is None:
        return Response(status_code=result.status, headers=result.headers)
    if fmt == "json" and isinstance(body, dict):
        body = orjson.dumps(body, option=orjson.OPT_INDENT_2 if pretty else 0)
    elif fmt == "json" and pretty:
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    else:
        body = formats.render(body, fmt)
    return Response(
        body, status_code=result.status, headers=result.headers, media_type=formats.media_type(fmt)
    )


def _fmt(request: Request) -> str:
    try:
        return formats.negotiate(request.headers.get("accept"), request.query_params.get("_format"))
    except FhirError:
        return "json"


def error_response(request: Request, exc: FhirError) -> Response:
    fmt = _fmt(request)
    headers = dict(exc.headers)
    return Response(
        formats.render(exc.outcome(), fmt),
        status_code=exc.status,
        headers=headers,
        media_type=formats.media_type(fmt),
    )


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise FhirError(413, f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise FhirError(413, f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def resource_body(request: Request, state: State) -> dict:
    raw = await read_body(request, state.max_body)
    fmt = formats.content_format(request.headers.get("content-type"))
    return formats.parse_body(raw, fmt)


def prefer(request: Request) -> dict[str, str]:
    out = {}
    for part in request.headers.get("prefer", "").split(";"):
        for item in part.split(","):
            k, _, v = item.strip().partition("=")
            if k:
                out[k.strip().lower()] = v.strip().strip('"')
    return out


def authenticate(request: Request, state: State) -> ix.Ctx:
    token = auth.bearer(request.headers.get("authorization"))
    claims = state.signer.verify(token)
    purpose = request.headers.get("x-purpose-of-use", "TREAT").strip().upper() or "TREAT"
    if purpose not in PURPOSE_CODES:
        raise FhirError(
            400,
            f"X-Purpose-Of-Use '{purpose}' is not an HL7 v3 PurposeOfUse code (e.g. TREAT, ETREAT, CAREMGT)",
        )
    reason = request.headers.get("x-break-glass-reason")
    reason = reason.strip() if reason and reason.strip() else None
    key = (claims.partner_id, claims.practitioner, purpose, reason)
    requester: Requester | None = state.registry.requesters.get(key)
    if requester is None:
        with state.db.read() as c:
            requester = requester_for(
                c,
                state.registry,
                claims.partner_id,
                practitioner=claims.practitioner,
                purpose=purpose,
                break_glass_reason=reason,
                refresh=False,  # each interaction checks the registry generation in its own query
            )
        if requester is not None:
            if len(state.registry.requesters) > 10_000:  # free-text reasons must not grow it forever
                state.registry.requesters.clear()
            state.registry.requesters[key] = requester
    if requester is None:
        raise auth.unauthorized(f"partner {claims.partner_id} is no longer registered")
    p = prefer(request)
    ret = p.get("return", "representation")
    if ret not in ("minimal", "representation", "OperationOutcome", "operationoutcome"):
        ret = "representation"
    return ix.Ctx(
        db=state.db,
        registry=state.registry,
        requester=requester,
        scope=claims.scope,
        base_url=base_url(request),
        prefer_return="OperationOutcome" if ret.lower() == "operationoutcome" else ret,
        lenient=p.get("handling") == "lenient",
    )


def query_list(request: Request) -> list[tuple[str, str]]:
    return parse_qsl(request.url.query, keep_blank_values=True)


def create_app(database_url: str | None = None, *, db: Database | None = None) -> FastAPI:
    db = db or Database(database_url or os.environ.get("CAREBRIDGE_DATABASE", "sqlite:///carebridge.db"))
    state = State(db=db, signer=auth.Signer(db), registry=Registry(), audit=AuditWriter(db))
    app = FastAPI(
        title="carebridge",
        description="FHIR R4 for community mental-health care coordination; see /fhir/metadata.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.cb = state

    @app.exception_handler(FhirError)
    async def _fhir_error(request: Request, exc: FhirError) -> Response:
        return error_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        text = {404: "no such endpoint: the FHIR base is /fhir", 405: f"{request.method} is not allowed here"}
        return error_response(request, FhirError(exc.status_code, text.get(exc.status_code, str(exc.detail))))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, FhirError(400, f"bad request: {exc.errors()[:1]}"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # A bug of ours, never the client's: log it, say nothing of its insides.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, FhirError(500, "carebridge hit an internal error; it has been logged"))

    def route(path: str, method: str) -> Callable[[Handler], Handler]:
        """Plain Starlette routes: handlers take the Request and nothing needs injecting,
        so FastAPI's per-request dependency solving would be pure overhead on every read."""

        def register(fn: Handler) -> Handler:
            app.add_route(path, fn, methods=[method], include_in_schema=False)
            return fn

        return register

    def respond(request: Request, result: ix.Result) -> Response:
        if not request.scope.get("query_string"):  # the common case: nothing to parse
            return fhir_response(result, formats.negotiate(request.headers.get("accept"), None))
        params = request.query_params
        fmt = formats.negotiate(request.headers.get("accept"), params.get("_format"))
        return fhir_response(result, fmt, pretty=params.get("_pretty") == "true")

    async def disclose(request: Request, ctx: ix.Ctx, result: ix.Result, interaction: str) -> Response:
        """Answer only once the audit of what this answer discloses is stored (rule 9)."""
        formats.negotiate(request.headers.get("accept"), request.query_params.get("_format"))  # 406 first
        await state.audit.commit(events_for(ctx.gates, interaction))
        return respond(request, result)

    # -- open endpoints ----------------------------------------------------------------
    @route("/fhir/metadata", "GET")
    async def metadata(request: Request) -> Response:
        return respond(request, ix.Result(200, capability_statement(base_url(request), OPERATIONS)))

    @route("/fhir/.well-known/smart-configuration", "GET")
    async def smart_configuration(request: Request) -> Response:
        base = base_url(request)
        return Response(
            orjson.dumps(
                {
                    "token_endpoint": f"{base}/token",
                    "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                    "token_endpoint_auth_signing_alg_values_supported": list(auth.ASSERTION_ALGORITHMS),
                    "grant_types_supported": ["client_credentials"],
                    "scopes_supported": ["system/*.cruds", "system/*.rs"],
                    "capabilities": ["client-confidential-asymmetric"],
                    "jwks_uri": f"{base}/.well-known/jwks.json",
                }
            ),
            media_type="application/json",
        )

    @route("/fhir/.well-known/jwks.json", "GET")
    async def jwks(request: Request) -> Response:
        return Response(orjson.dumps(state.signer.jwks()), media_type="application/json")

    @route("/fhir/token", "POST")
    async def token(request: Request) -> Response:
        def oauth_error(status: int, error: str, text: str) -> Response:
            return Response(
                orjson.dumps({"error": error, "error_description": text}),
                status_code=status,
                media_type="application/json",
            )

        raw = await read_body(request, 64 * 1024)
        form = dict(parse_qsl(raw.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != auth.ASSERTION_TYPE or not form.get("client_assertion"):
            return oauth_error(
                400,
                "invalid_request",
                f"send client_assertion_type={auth.ASSERTION_TYPE} and a client_assertion",
            )
        partners = {p.id: p for p in all_partners(db)}
        try:
            client_id = auth.verify_client_assertion(
                db,
                form["client_assertion"],
                f"{base_url(request)}/token",
                {k: p.jwks for k, p in partners.items()},
            )
        except FhirError as exc:
            return oauth_error(401, "invalid_client", exc.diagnostics)
        partner = partners[client_id]
        scope = auth.narrow_scope(partner.scope, form.get("scope"))
        if not scope:
            return oauth_error(
                400, "invalid_scope", f"none of the requested scopes are granted to {client_id}"
            )
        ttl = 300
        return Response(
            orjson.dumps(
                {
                    "access_token": state.signer.issue(client_id, scope, ttl=ttl),
                    "token_type": "bearer",
                    "expires_in": ttl,
                    "scope": scope,
                }
            ),
            media_type="application/json",
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    # -- validation --------------------------------------------------------------------
    def _validate(resource: dict, rtype: str | None) -> ix.Result:
        if resource.get("resourceType") == "Parameters":
            for p in resource.get("parameter") or []:
                if p.get("name") == "resource" and isinstance(p.get("resource"), dict):
                    resource = p["resource"]
                    break
        if rtype and resource.get("resourceType") != rtype:
            raise FhirError(400, f"$validate on {rtype} was sent a {resource.get('resourceType')}")
        ix.check_type(resource.get("resourceType", ""))
        try:
            validate_resource(resource)
        except FhirError as exc:
            oo = exc.outcome()
            return ix.Result(exc.status if exc.status in (400, 422) else 422, oo)
        return ix.Result(200, operation_outcome("the resource is valid", "informational", "information"))

    @route("/fhir/$validate", "POST")
    async def validate_system(request: Request) -> Response:
        authenticate(request, state)
        return respond(request, _validate(await resource_body(request, state), None))

    @route("/fhir/{rtype}/$validate", "POST")
    async def validate_type(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        authenticate(request, state)
        ix.check_type(rtype)
        return respond(request, _validate(await resource_body(request, state), rtype))

    # -- consent operations ------------------------------------------------------------
    @route("/fhir/Consent/$evaluate", "POST")
    async def consent_evaluate(request: Request) -> Response:
        ctx = authenticate(request, state)
        return respond(request, operations.evaluate(ctx, await resource_body(request, state)))

    @route("/fhir/Patient/{rid}/$sharing-choices", "GET")
    async def choices_read(request: Request) -> Response:
        ctx = authenticate(request, state)
        result = operations.read_choices(ctx, request.path_params["rid"])
        return Response(orjson.dumps(result.body), media_type="application/json")

    @route("/fhir/Patient/{rid}/$sharing-choices", "POST")
    async def choices_save(request: Request) -> Response:
        ctx = authenticate(request, state)
        require_scope(ctx.scope, "Consent", "create")
        raw = await read_body(request, state.max_body)
        choices = operations.choices_from_parameters(formats.parse_body(raw, "json"))
        return respond(request, operations.save_choices(ctx, request.path_params["rid"], choices))

    @route("/fhir/Patient/{rid}/$everything", "GET")
    async def patient_everything(request: Request) -> Response:
        ctx = authenticate(request, state)
        require_scope(ctx.scope, "Patient", "read")
        return await disclose(
            request, ctx, operations.everything(ctx, request.path_params["rid"]), "operation"
        )

    # -- whole-system ------------------------------------------------------------------
    @route("/fhir", "POST")
    @route("/fhir/", "POST")
    async def batch(request: Request) -> Response:
        ctx = authenticate(request, state)
        body = await resource_body(request, state)
        if body.get("resourceType") != "Bundle":
            raise FhirError(400, "POST to the base URL takes a batch or transaction Bundle")
        return await disclose(
            request, ctx, ix.Result(200, bundle.process(ctx, body)), body.get("type", "batch")
        )

    # -- type level --------------------------------------------------------------------
    @route("/fhir/{rtype}/_history", "GET")
    async def history_type(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        ctx = authenticate(request, state)
        return await disclose(
            request, ctx, ix.history(ctx, rtype, None, query_list(request), str(request.url)), "history-type"
        )

    @route("/fhir/{rtype}", "GET")
    async def search_get(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        ctx = authenticate(request, state)
        return await disclose(
            request, ctx, ix.search_type(ctx, rtype, query_list(request), str(request.url)), "search-type"
        )

    @route("/fhir/{rtype}/_search", "POST")
    async def search_post(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        ctx = authenticate(request, state)
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip()
        raw = await read_body(request, state.max_body)
        if raw and ctype != "application/x-www-form-urlencoded":
            raise FhirError(415, "POST _search takes application/x-www-form-urlencoded parameters")
        params = query_list(request) + parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        result = ix.search_type(ctx, rtype, params, f"{base_url(request)}/{rtype}/_search")
        return await disclose(request, ctx, result, "search-type")

    @route("/fhir/{rtype}", "POST")
    async def create(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        ctx = authenticate(request, state)
        ix.check_type(rtype)
        body = await resource_body(request, state)
        return respond(
            request, ix.create(ctx, rtype, body, if_none_exist=request.headers.get("if-none-exist"))
        )

    @route("/fhir/{rtype}", "PUT")
    async def conditional_update(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        ctx = authenticate(request, state)
        ix.check_type(rtype)
        criteria = [(k, v) for k, v in query_list(request) if k not in ("_format", "_pretty")]
        if not criteria:
            raise FhirError(405, f"PUT needs an id ({rtype}/ID) or search criteria ({rtype}?identifier=...)")
        body = await resource_body(request, state)
        if_match = ix.parse_if_match(request.headers.get("if-match"))
        return respond(request, ix.conditional_update(ctx, rtype, criteria, body, if_match=if_match))

    # -- instance level ----------------------------------------------------------------
    @route("/fhir/{rtype}/{rid}", "GET")
    async def read(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        rid = request.path_params["rid"]
        ctx = authenticate(request, state)
        return await disclose(request, ctx, ix.read(ctx, rtype, rid), "read")

    @route("/fhir/{rtype}/{rid}", "PUT")
    async def update(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        rid = request.path_params["rid"]
        ctx = authenticate(request, state)
        ix.check_type(rtype)
        body = await resource_body(request, state)
        if_match = ix.parse_if_match(request.headers.get("if-match"))
        return respond(request, ix.update(ctx, rtype, rid, body, if_match=if_match))

    @route("/fhir/{rtype}/{rid}", "DELETE")
    async def delete(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        rid = request.path_params["rid"]
        ctx = authenticate(request, state)
        if_match = ix.parse_if_match(request.headers.get("if-match"))
        return respond(request, ix.delete(ctx, rtype, rid, if_match=if_match))

    @route("/fhir/{rtype}/{rid}/_history", "GET")
    async def history_instance(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        rid = request.path_params["rid"]
        ctx = authenticate(request, state)
        return await disclose(
            request,
            ctx,
            ix.history(ctx, rtype, rid, query_list(request), str(request.url)),
            "history-instance",
        )

    @route("/fhir/{rtype}/{rid}/_history/{vid}", "GET")
    async def vread(request: Request) -> Response:
        rtype = request.path_params["rtype"]
        rid = request.path_params["rid"]
        vid = request.path_params["vid"]
        ctx = authenticate(request, state)
        return await disclose(request, ctx, ix.vread(ctx, rtype, rid, vid), "vread")

    return app


# Operations the server answers beyond the RESTful interactions: (name, definition, scope).
OPERATIONS: list[tuple[str, str, str]] = [
    ("validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate", "system"),
    ("evaluate", f"{CANONICAL_BASE}/OperationDefinition/Consent-evaluate", "Consent"),
    ("sharing-choices", f"{CANONICAL_BASE}/OperationDefinition/Patient-sharing-choices", "Patient"),
    ("everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything", "Patient"),
]
