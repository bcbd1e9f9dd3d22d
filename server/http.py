"""HTTP plumbing shared by every route module: state, authentication, bodies, formats,
and the `Kit` a route module registers its routes with.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from carebridge.consent.model import Requester
from carebridge.server import auth, formats
from carebridge.server import interaction as ix
from carebridge.server.audit import AuditWriter, events_for
from carebridge.server.db import Database
from carebridge.server.disclosure import requester_for
from carebridge.server.errors import FhirError
from carebridge.server.partners import Registry

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


@dataclass
class Kit:
    """What a route module needs: `register(kit)` adds its routes and operations."""

    app: FastAPI
    state: State
    # (name, definition URL, "system" or a resource type) for the CapabilityStatement
    operations: list[tuple[str, str, str]] = field(default_factory=list)
    # Checks `$validate` runs on a FHIR-valid resource: (resource, request body) -> issues
    validators: list[Callable[[dict, dict], list[dict]]] = field(default_factory=list)

    def route(self, path: str, method: str) -> Callable[[Handler], Handler]:
        """Plain Starlette routes: handlers take the Request and nothing needs injecting,
        so FastAPI's per-request dependency solving would be pure overhead on every read."""

        def register(fn: Handler) -> Handler:
            self.app.add_route(path, fn, methods=[method], include_in_schema=False)
            return fn

        return register

    def operation(self, name: str, definition: str, scope: str) -> None:
        self.operations.append((name, definition, scope))

    def authenticate(self, request: Request) -> ix.Ctx:
        return authenticate(request, self.state)

    async def body(self, request: Request) -> dict:
        return await resource_body(request, self.state)

    def respond(self, request: Request, result: ix.Result) -> Response:
        if not request.scope.get("query_string"):  # the common case: nothing to parse
            return fhir_response(result, formats.negotiate(request.headers.get("accept"), None))
        params = request.query_params
        fmt = formats.negotiate(request.headers.get("accept"), params.get("_format"))
        return fhir_response(result, fmt, pretty=params.get("_pretty") == "true")

    async def disclose(self, request: Request, ctx: ix.Ctx, result: ix.Result, interaction: str) -> Response:
        """Answer only once the audit of what this answer discloses is stored (rule 9)."""
        formats.negotiate(request.headers.get("accept"), request.query_params.get("_format"))  # 406 first
        await self.state.audit.commit(events_for(ctx.gates, interaction))
        return self.respond(request, result)
