"""batch and transaction Bundles.

A transaction is one database transaction: every entry commits or none does, and
`urn:uuid:` fullUrls are resolved to the ids the server assigns before anything is
written. A batch runs each entry on its own. Entries go through the same interaction
functions as single requests, so the same checks and the same disclosure gate apply.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from carebridge.server import interaction as ix
from carebridge.server import store
from carebridge.server.db import Conflict, Conn
from carebridge.server.errors import FhirError, operation_outcome

METHOD_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
MAX_ENTRIES = 5000


def _relative(url: str, base_url: str) -> str:
    if url.startswith(base_url):
        url = url[len(base_url) :]
    return url.lstrip("/")


def _rewrite_refs(node: Any, ids: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "reference" and isinstance(v, str) and v in ids:
                out[k] = ids[v]
            else:
                out[k] = _rewrite_refs(v, ids)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, ids) for v in node]
    return node


def _entries(bundle: dict) -> list[dict]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError(400, "Bundle.entry must be a list")
    if len(entries) > MAX_ENTRIES:
        raise FhirError(413, f"a Bundle may hold at most {MAX_ENTRIES} entries; split it")
    for i, e in enumerate(entries):
        req = e.get("request") if isinstance(e, dict) else None
        if not isinstance(req, dict) or not req.get("method") or not req.get("url"):
            raise FhirError(400, f"Bundle.entry[{i}].request needs a method and a url")
        if req["method"] not in METHOD_ORDER:
            raise FhirError(400, f"Bundle.entry[{i}].request.method {req['method']} is not supported")
    return entries


def process(ctx: ix.Ctx, bundle: dict) -> dict:
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise FhirError(400, f"POST to the base URL takes a batch or transaction Bundle, not type '{kind}'")
    entries = _entries(bundle)
    if kind == "batch":
        responses = [_batch_entry(ctx, i, e) for i, e in enumerate(entries)]
        return {"resourceType": "Bundle", "type": "batch-response", "entry": responses}
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": _transaction(ctx, entries)}


def _batch_entry(ctx: ix.Ctx, i: int, entry: dict) -> dict:
    try:
        return _response_entry(_run_entry(ctx, entry, None, {}))
    except FhirError as exc:
        return {"response": {"status": str(exc.status), "outcome": _located(exc, i)}}
    except Conflict:
        return {
            "response": {
                "status": "409",
                "outcome": operation_outcome("concurrent change; retry", "conflict", "error"),
            }
        }


def _located(exc: FhirError, i: int) -> dict:
    oo = exc.outcome()
    oo["issue"][0]["diagnostics"] = f"Bundle.entry[{i}]: {exc.diagnostics}"
    return oo


def _transaction(ctx: ix.Ctx, entries: list[dict]) -> list[dict]:
    # Assign every new resource its id first, so references between entries resolve.
    ids: dict[str, str] = {}
    planned: list[tuple[int, dict, str | None]] = []
    for i, e in enumerate(entries):
        method = e["request"]["method"]
        full_url = e.get("fullUrl")
        new_id = None
        if method == "POST":
            new_id = store.new_id()
            rtype = (e.get("resource") or {}).get("resourceType")
            if full_url and rtype:
                ids[full_url] = f"{rtype}/{new_id}"
        elif method == "PUT" and full_url and full_url.startswith("urn:"):
            url = _relative(e["request"]["url"], ctx.base_url)
            if "?" not in url:
                ids[full_url] = url
        planned.append((i, e, new_id))
    seen_targets: set[str] = set()
    for i, e, _ in planned:
        url = _relative(e["request"]["url"], ctx.base_url)
        if e["request"]["method"] in ("PUT", "DELETE") and "?" not in url:
            if url in seen_targets:
                raise FhirError(400, f"Bundle.entry[{i}]: {url} appears twice in one transaction")
            seen_targets.add(url)
    results: dict[int, dict] = {}
    try:
        with ctx.db.write() as c:
            _resolve_conditional_creates(ctx, c, planned, ids)
            for i, e, new_id in sorted(planned, key=lambda p: METHOD_ORDER[p[1]["request"]["method"]]):
                if e.get("resource") is not None:
                    e = {**e, "resource": _rewrite_refs(e["resource"], ids)}
                try:
                    results[i] = _response_entry(_run_entry(ctx, e, c, {"new_id": new_id}))
                except FhirError as exc:
                    raise FhirError(
                        exc.status,
                        f"Bundle.entry[{i}]: {exc.diagnostics}",
                        code=exc.code,
                        expression=exc.expression,
                    ) from None
    except Conflict:
        raise FhirError(
            409, "another change was committed at the same time; nothing was written, retry"
        ) from None
    return [results[i] for i in range(len(entries))]


def _resolve_conditional_creates(
    ctx: ix.Ctx, c: Conn, planned: list[tuple[int, dict, str | None]], ids: dict[str, str]
) -> None:
    """A conditional create that finds its match stands for that resource: references to
    its fullUrl must name the existing resource, not the id planned for a new one."""
    for _, e, _ in planned:
        criteria = e["request"].get("ifNoneExist")
        full_url = e.get("fullUrl")
        if e["request"]["method"] != "POST" or not criteria or full_url not in ids:
            continue
        rtype = ids[full_url].split("/", 1)[0]
        try:
            matches = ix._conditional_matches(ctx, c, rtype, criteria)
        except FhirError:
            continue  # the entry itself reports what is wrong with its criteria
        if len(matches) == 1:
            ids[full_url] = matches[0].ref


def _run_entry(ctx: ix.Ctx, entry: dict, conn: Conn | None, extra: dict) -> ix.Result:
    req = entry["request"]
    method = req["method"]
    url = _relative(req["url"], ctx.base_url)
    split = urlsplit(url)
    path = [p for p in split.path.split("/") if p]
    query = parse_qsl(split.query, keep_blank_values=True)
    resource = entry.get("resource")
    if_match = ix.parse_if_match(req.get("ifMatch"))
    if not path:
        raise FhirError(400, f"entry request url '{req['url']}' names no resource type")
    rtype = path[0]
    if method == "GET" or method == "HEAD":
        # Inside a transaction, reads run on its connection: they see its own writes.
        if len(path) == 1:
            return ix.search_type(ctx, rtype, query, f"{ctx.base_url}/{url}", conn=conn)
        if len(path) == 2:
            return ix.read(ctx, rtype, path[1], conn=conn)
        if len(path) == 4 and path[2] == "_history":
            return ix.vread(ctx, rtype, path[1], path[3], conn=conn)
        if len(path) == 3 and path[2] == "_history":
            return ix.history(ctx, rtype, path[1], query, f"{ctx.base_url}/{url}", conn=conn)
        raise FhirError(400, f"cannot GET '{url}' inside a Bundle")
    if method in ("POST", "PUT") and not isinstance(resource, dict):
        raise FhirError(400, f"a {method} entry needs a resource")
    if method == "POST":
        return ix.create(
            ctx, rtype, resource, if_none_exist=req.get("ifNoneExist"), conn=conn, rid=extra.get("new_id")
        )
    if method == "PUT":
        if len(path) == 1:
            return ix.conditional_update(ctx, rtype, query, resource, if_match=if_match, conn=conn)
        return ix.update(ctx, rtype, path[1], resource, if_match=if_match, conn=conn)
    if method == "DELETE":
        if len(path) != 2:
            raise FhirError(400, "DELETE entries must name Type/id")
        return ix.delete(ctx, rtype, path[1], if_match=if_match, conn=conn)
    raise FhirError(400, f"{method} is not supported inside a Bundle")


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found", 410: "Gone"}


def _response_entry(result: ix.Result) -> dict:
    response: dict = {"status": f"{result.status} {_REASONS.get(result.status, '')}".strip()}
    if "Location" in result.headers:
        response["location"] = result.headers["Location"]
    if "ETag" in result.headers:
        response["etag"] = result.headers["ETag"]
    if result.row is not None:
        response["lastModified"] = result.row.last_updated
    entry: dict = {}
    body = result.body
    if isinstance(body, bytes):
        body = orjson.loads(body)
    if isinstance(body, dict):
        if body.get("resourceType") == "OperationOutcome":
            response["outcome"] = body
        else:
            if result.row is not None:
                entry["fullUrl"] = result.headers.get("Location", "").split("/_history/")[0] or None
            entry["resource"] = body
    entry["response"] = response
    return {k: v for k, v in entry.items() if v is not None}
