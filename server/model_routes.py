"""The published care-plan model over HTTP: StructureDefinitions, CodeSystems and
ValueSets, read-only, and the profile checks `$validate` runs.

The model is built in code (mappings/published_model.py), not stored, so what is served
is always what the mappings and `$validate` use. It is not personal data; it still
leaves through the disclosure gate like everything else (the gate answers
"not personal" for it), so there is no side door.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from fastapi.responses import Response

from carebridge.mappings import profile_check
from carebridge.mappings.published_model import MODEL_DATE, MODEL_TYPES, model_resource, published_model
from carebridge.server import search
from carebridge.server.auth import require_scope
from carebridge.server.catalog import RESOURCE_TYPES
from carebridge.server.errors import FhirError, not_found
from carebridge.server.http import Kit, query_list, read_body
from carebridge.server.indexing import index_rows, normalise_string
from carebridge.server.interaction import Result, searchset, version_headers
from carebridge.server.store import Row

STAMP = f"{MODEL_DATE}T00:00:00Z"


def _row(resource: dict) -> Row:
    served = {**resource, "meta": {"versionId": "1", "lastUpdated": STAMP}}
    return Row(resource["resourceType"], resource["id"], 1, False, STAMP, None, None, orjson.dumps(served))


def _matches(resource: dict, f: search.Filter) -> bool:
    p = f.param
    if p.type == "date":
        raise FhirError(400, f"searching the published model by {p.name} is not supported")
    if p.name == "_id":
        found = resource["id"] in f.values
    else:
        rows = index_rows(RESOURCE_TYPES[resource["resourceType"]], resource)
        kind = "token" if p.type == "token" else "string"
        values = [r[1:] for r in rows[kind] if r[0] == p.name]
        if f.modifier == "missing":
            return (not values) == (f.values[0] == "true")
        found = any(_value_matches(p.type, f.modifier, v, want) for v in values for want in f.values)
    return not found if f.modifier == "not" else found


def _value_matches(kind: str, modifier: str | None, value: tuple, want: str) -> bool:
    if kind == "token":
        system, code = value
        if "|" in want:
            s, _, c = want.partition("|")
            return (not s or s == system) and (not c or c == code)
        return code == want
    (text,) = value
    if kind == "uri":  # URIs are indexed exactly as written
        return text.startswith(want) if modifier == "below" else text == want
    want = normalise_string(want)
    if modifier == "exact":
        return text == want
    return want in text if modifier == "contains" else text.startswith(want)


def _profile_issues(resource: dict, body: dict) -> list[dict]:
    """$validate's check against the published profiles (Parameters.profile may name one)."""
    requested = []
    if body.get("resourceType") == "Parameters":
        for p in body.get("parameter") or []:
            if p.get("name") == "profile":
                value = p.get("valueUri") or p.get("valueCanonical") or p.get("valueString")
                if isinstance(value, str):
                    requested.append(value)
    return [i.as_outcome_issue() for i in profile_check.check(resource, tuple(requested))]


def register(kit: Kit) -> None:
    """Routes: GET [type]/[id] and [type]?params for the model's types; writes answer 405."""
    kit.validators.append(_profile_issues)
    for rtype in MODEL_TYPES:
        _register_type(kit, rtype)


def _register_type(kit: Kit, rtype: str) -> None:
    async def read(request: Request) -> Response:
        rid = request.path_params["rid"]
        ctx = kit.authenticate(request)
        require_scope(ctx.scope, rtype, "read")
        resource = model_resource(rtype, rid)
        if resource is None:
            raise not_found(rtype, rid)
        row = _row(resource)
        with ctx.db.read() as c:
            body = ctx.gate(c).disclose(row)
        if body is None:
            raise not_found(rtype, rid)
        return await kit.disclose(
            request, ctx, Result(200, body, version_headers(row, ctx.base_url), row), "read"
        )

    async def find(request: Request, params: list[tuple[str, str]], self_url: str) -> Response:
        ctx = kit.authenticate(request)
        require_scope(ctx.scope, rtype, "search")
        q = search.parse(rtype, params, lenient=ctx.lenient)
        if q.include or q.revinclude:
            raise FhirError(400, "the published model has no references to include")
        hits = [
            r
            for r in published_model()
            if r["resourceType"] == rtype and all(_matches(r, f) for f in q.filters)
        ]
        with ctx.db.read() as c:
            gate = ctx.gate(c)
            disclosed = [(row, body) for row in map(_row, hits) if (body := gate.disclose(row)) is not None]
        entries = (
            []
            if q.summary == "count"
            else [(row, search.shape(body, q)) for row, body in disclosed[: q.count]]
        )
        page = search.Page(entries, None, len(disclosed) if q.total else None, [])
        return await kit.disclose(
            request, ctx, Result(200, searchset(ctx, rtype, q, page, self_url)), "search-type"
        )

    async def search_get(request: Request) -> Response:
        return await find(request, query_list(request), str(request.url))

    async def search_post(request: Request) -> Response:
        raw = await read_body(request, kit.state.max_body)
        params = query_list(request) + parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return await find(request, params, str(request.url))

    async def read_only(request: Request) -> Response:
        kit.authenticate(request)
        raise FhirError(405, f"{rtype} resources are published by carebridge and are read-only")

    kit.route(f"/fhir/{rtype}/_search", "POST")(search_post)
    kit.route(f"/fhir/{rtype}/{{rid}}", "GET")(read)
    kit.route(f"/fhir/{rtype}", "GET")(search_get)
    for method, path in (
        ("POST", ""),
        ("PUT", ""),
        ("PUT", "/{rid}"),
        ("DELETE", "/{rid}"),
        ("PATCH", "/{rid}"),
    ):
        kit.route(f"/fhir/{rtype}{path}", method)(read_only)
