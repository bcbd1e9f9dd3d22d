"""The HTTP face: FastAPI routes for the FHIR REST API under /fhir.

Handlers are thin: authenticate, negotiate the format, call an interaction, render.
They are `async def` and call the database directly: each worker process serves one
query at a time with no thread hop (SQLite answers in microseconds); throughput scales
by adding workers, which share state only through the database.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from carebridge.server import auth, bundle, exchange, model_routes, operations, pages, transfer
from carebridge.server import interaction as ix
from carebridge.server.audit import AuditWriter
from carebridge.server.capability import capability_statement
from carebridge.server.db import Database
from carebridge.server.errors import FhirError, operation_outcome
from carebridge.server.http import (
    Kit,
    State,
    authenticate,
    base_url,
    error_response,
    query_list,
    read_body,
    resource_body,
)
from carebridge.server.partners import Registry, all_partners
from carebridge.server.validate import validate_resource

log = logging.getLogger("carebridge")


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

    kit = Kit(app, state, operations=list(OPERATIONS))
    route, respond, disclose = kit.route, kit.respond, kit.disclose
    # Operation routes first: their literal paths must win over /fhir/{type}/{id}.
    for module in ROUTE_MODULES:
        module.register(kit)

    # -- open endpoints ----------------------------------------------------------------
    @route("/fhir/metadata", "GET")
    async def metadata(request: Request) -> Response:
        return respond(request, ix.Result(200, capability_statement(base_url(request), kit.operations)))

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
        body = resource
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
        issues = [issue for check in kit.validators for issue in check(resource, body)]
        if any(i["severity"] in ("error", "fatal") for i in issues):
            return ix.Result(422, {"resourceType": "OperationOutcome", "issue": issues})
        valid = operation_outcome("the resource is valid", "informational", "information")
        return ix.Result(200, {**valid, "issue": valid["issue"] + issues})

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
]

# Modules that add operations: each has `register(kit)`.
ROUTE_MODULES = (operations, transfer, exchange, model_routes, pages)
