"""FHIR Bulk Data export: `GET /fhir/$export` and `GET /fhir/Patient/$export`.

Kick-off (with `Prefer: respond-async`) answers 202 and a status URL in
Content-Location; the status URL answers 202 while the job runs, then the manifest;
the files are NDJSON, one per type, streamed from disk. Only the partner that asked
can poll, fetch or cancel; what is in the files is what the gate let through for it.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from fastapi import Request
from fastapi.responses import FileResponse, Response

from carebridge.server import export_job
from carebridge.server.auth import require_scope, scope_allows
from carebridge.server.catalog import RESOURCE_TYPES
from carebridge.server.errors import FhirError, operation_outcome
from carebridge.server.http import Kit, base_url, prefer, query_list
from carebridge.server.instants import date_range
from carebridge.server.interaction import Ctx

NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
BULK = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition"


def _job_for(kit: Kit, ctx: Ctx, job_id: str) -> export_job.Job:
    with kit.state.db.read() as c:
        job = export_job.load(c, job_id)
    # Someone else's export does not exist for you (rule 8).
    if job is None or job.partner != ctx.requester.partner_id or job.state == "cancelled":
        raise FhirError(404, f"there is no export {job_id} of yours")
    return job


def _since(value: str) -> str:
    rng = date_range(value)
    if rng is None or "T" not in value:
        raise FhirError(400, f"_since must be an instant such as 2026-05-01T00:00:00Z, not '{value}'")
    return rng[0][:23] + "Z"  # the stored lastUpdated form, so the two compare as text


def kick_off(ctx: Ctx, request: Request, level: str) -> tuple[list[str], str | None]:
    if "respond-async" not in prefer(request):
        raise FhirError(400, "bulk export runs in the background: send the header Prefer: respond-async")
    accept = (request.headers.get("accept") or "application/fhir+json").split(";")[0].strip()
    if accept not in ("application/fhir+json", "application/json", "*/*"):
        raise FhirError(400, "bulk export kick-off takes Accept: application/fhir+json")
    if ctx.requester.purpose == "ETREAT":
        raise FhirError(403, "break-glass is for one person's record in an emergency, not for bulk export")
    allowed = [t for t in RESOURCE_TYPES if level == "system" or t in export_job.PERSONAL_TYPES]
    types: list[str] | None = None
    since: str | None = None
    for name, value in query_list(request):
        if name == "_type":
            types = types or []
            for t in (v.strip() for v in value.split(",")):
                if t not in allowed:
                    raise FhirError(
                        400, f"_type '{t}' is not a type this export can hold: {', '.join(allowed)}"
                    )
                require_scope(ctx.scope, t, "read")
                if t not in types:
                    types.append(t)
        elif name == "_since":
            since = _since(value)
        elif name == "_outputFormat":
            if value not in OUTPUT_FORMATS:
                raise FhirError(400, f"_outputFormat '{value}' is not supported: use application/fhir+ndjson")
        elif not ctx.lenient:
            raise FhirError(
                400,
                f"bulk export does not support the parameter '{name}' (it takes _type, _since and "
                "_outputFormat); send Prefer: handling=lenient to ignore it",
            )
    if types is None:
        types = [t for t in allowed if scope_allows(ctx.scope, t, "read")]
    if not types:
        raise FhirError(403, "your token's scopes allow reading none of the types an export holds")
    return types, since


def manifest(job: export_job.Job, base: str) -> dict:
    return {
        "transactionTime": job.transaction_time,
        "request": job.request,
        "requiresAccessToken": True,
        "output": [
            {"type": o["type"], "url": f"{base}/$export-file/{job.id}/{o['name']}", "count": o["count"]}
            for o in job.output
        ],
        "error": [],
    }


def register(kit: Kit) -> None:
    """Routes: GET /fhir/$export, GET /fhir/Patient/$export, GET|DELETE the status URL, GET files."""
    kit.operation("export", f"{BULK}/export", "system")
    kit.operation("export", f"{BULK}/patient-export", "Patient")
    state = kit.state

    async def start(request: Request, level: str) -> Response:
        ctx = kit.authenticate(request)
        types, since = kick_off(ctx, request, level)
        job = export_job.create(state.db, ctx.requester, level, types, since, str(request.url))
        export_job.start(state.db, state.audit, job)
        body = operation_outcome(f"export {job.id} started; poll the Content-Location URL for its files")
        return Response(
            orjson.dumps(body),
            status_code=202,
            media_type="application/fhir+json",
            headers={"Content-Location": f"{base_url(request)}/$export-status/{job.id}"},
        )

    @kit.route("/fhir/$export", "GET")
    async def export_system(request: Request) -> Response:
        return await start(request, "system")

    @kit.route("/fhir/Patient/$export", "GET")
    async def export_patients(request: Request) -> Response:
        return await start(request, "patient")

    @kit.route("/fhir/$export-status/{job}", "GET")
    async def export_status(request: Request) -> Response:
        ctx = kit.authenticate(request)
        job = _job_for(kit, ctx, request.path_params["job"])
        if job.state == "running" and not job.stale:
            return Response(
                status_code=202, headers={"X-Progress": job.progress or "running", "Retry-After": "1"}
            )
        if job.state == "complete":
            return Response(
                orjson.dumps(manifest(job, base_url(request))),
                media_type="application/json",
                headers={
                    "Expires": time.strftime(
                        "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(job.created + export_job.KEEP_FOR)
                    )
                },
            )
        reason = (
            job.error or "the export stopped before it finished (its server process ended); start it again"
        )
        raise FhirError(500, reason, code="exception")

    @kit.route("/fhir/$export-status/{job}", "DELETE")
    async def export_cancel(request: Request) -> Response:
        ctx = kit.authenticate(request)
        job = _job_for(kit, ctx, request.path_params["job"])
        export_job.cancel(state.db, job)
        return Response(status_code=202)

    @kit.route("/fhir/$export-file/{job}/{name}", "GET")
    async def export_file(request: Request) -> Response:
        ctx = kit.authenticate(request)
        job = _job_for(kit, ctx, request.path_params["job"])
        name = request.path_params["name"]
        if job.state != "complete" or name not in {o["name"] for o in job.output}:
            raise FhirError(404, f"export {job.id} has no file {name}")
        path = Path(job.directory) / name
        if not path.is_file():
            raise FhirError(404, f"the file {name} of export {job.id} is not kept on this server")
        return FileResponse(path, media_type=NDJSON)
