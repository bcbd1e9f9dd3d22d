"""TestScript operations -> HTTP requests, sent and recorded.

The URL comes from `url`, else `resource` + `params`, else the `targetId` fixture
(`Type/id`, plus `_history/vid` for vread), else the operation type; the body is the
`sourceId` fixture with variables filled in (an update carries the id it updates, as
TestScript engines do). The default role's bearer token is added unless the operation
sets `Authorization` itself; a header set to "" is not sent at all.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from carebridge.conformance import extensions
from carebridge.conformance.body_patch import apply as apply_patch
from carebridge.conformance.context import RunContext
from carebridge.conformance.exchange import JSON, XML, Exchange, dict_to_xml, send
from carebridge.conformance.fixtures import Fixture

METHODS = {
    "read": "GET",
    "vread": "GET",
    "history": "GET",
    "historyInstance": "GET",
    "historyType": "GET",
    "historySystem": "GET",
    "search": "GET",
    "searchSystem": "GET",
    "capabilities": "GET",
    "create": "POST",
    "transaction": "POST",
    "batch": "POST",
    "update": "PUT",
    "updateCreate": "PUT",
    "delete": "DELETE",
    "deleteCondMultiple": "DELETE",
    "deleteCondSingle": "DELETE",
    "patch": "PATCH",
}
HISTORY = ("history", "historyInstance", "historyType")
SHORT_MIME = {"json": JSON, "xml": XML, "ttl": "text/turtle"}
FORM = "application/x-www-form-urlencoded"


class OperationError(Exception):
    """An operation the engine cannot turn into a request."""


@dataclass
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


def mime(code: str | None) -> str | None:
    return SHORT_MIME.get(code, code) if code else None


def run(op: dict, ctx: RunContext) -> Exchange:
    req = build(op, ctx)
    ex = send(ctx.client, req.method, req.url, req.headers, req.body)
    if extensions.value(op, extensions.POLL) and req.method == "GET":
        ex = _poll(ex, req, ctx)
    ctx.last = ex
    if op.get("responseId"):
        ctx.responses[op["responseId"]] = ex
    if op.get("requestId"):
        ctx.requests[op["requestId"]] = ex
    return ex


def _poll(ex: Exchange, req: Request, ctx: RunContext) -> Exchange:
    """An async job (bulk export): ask again while it answers 202, as Retry-After says."""
    deadline = time.monotonic() + ctx.poll_timeout
    while ex.status == 202 and time.monotonic() < deadline:
        try:
            wait = float(ex.header("retry-after") or 0.5)
        except ValueError:
            wait = 0.5
        time.sleep(min(max(wait, 0.1), 2.0))
        ex = send(ctx.client, req.method, req.url, req.headers, req.body)
    return ex


def build(op: dict, ctx: RunContext) -> Request:
    v = ctx.vars
    code = ((op.get("type") or {}).get("code") or "").strip()
    method = (
        (op.get("method") or "").upper() or METHODS.get(code) or ("POST" if op.get("sourceId") else "GET")
    )
    url, url_id = _url(op, code, method, ctx)
    headers: dict[str, str] = {"Accept": mime(op.get("accept")) or JSON}
    body, content_type = _body(op, code, url_id, ctx)
    if code in ("search", "searchSystem") and method == "POST":
        # Search by POST: the parameters go in a form body to [type]/_search.
        split = urlsplit(url)
        url = f"{split.scheme}://{split.netloc}{split.path.rstrip('/')}/_search"
        body, content_type = split.query.encode(), FORM
    if body is not None:
        headers["Content-Type"] = content_type or JSON
    for h in op.get("requestHeader") or []:
        headers[h["field"]] = v.substitute(h.get("value") or "")
    if ctx.default_auth and not any(k.lower() == "authorization" for k in headers):
        headers["Authorization"] = ctx.default_auth
    headers = {k: val for k, val in headers.items() if val != ""}
    return Request(method, url, headers, body)


def _url(op: dict, code: str, method: str, ctx: RunContext) -> tuple[str, str | None]:
    """The request URL, and the resource id it names (for update bodies)."""
    v = ctx.vars
    base = ctx.base_url.rstrip("/")
    rtype = op.get("resource")
    if op.get("url"):
        url = v.substitute(op["url"])
        if not url.startswith(("http://", "https://")):
            url = f"{base}/{url.lstrip('/')}"
        return url, None
    if op.get("params") is not None:
        params = v.substitute(op["params"])
        url = f"{base}/{rtype}{params}" if rtype else f"{base}/{params.lstrip('/')}"
        path = urlsplit(url).path
        if code in HISTORY and "_history" not in path:
            split = urlsplit(url)
            url = f"{split.scheme}://{split.netloc}{split.path.rstrip('/')}/_history"
            url += f"?{split.query}" if split.query else ""
        parts = [p for p in path.split("/") if p]
        url_id = parts[-1] if rtype and len(parts) >= 2 and parts[-2] == rtype else None
        return url, url_id
    target = op.get("targetId")
    if target:
        ttype, tid, tver = _target(target, ctx)
        rtype = rtype or ttype
        url = f"{base}/{rtype}/{tid}"
        if code == "vread":
            url += f"/_history/{tver}"
        elif code in HISTORY:
            url += "/_history"
        elif code not in METHODS:
            url += f"/${code}"
        return url, tid
    if code == "capabilities":
        return f"{base}/metadata", None
    if code in ("transaction", "batch") or (code in ("historySystem", "searchSystem")):
        return base + ("/_history" if code == "historySystem" else ""), None
    if code in ("update", "updateCreate") and op.get("sourceId"):
        src = ctx.source(op["sourceId"])
        rid = src.resource.get("id") if src is not None and src.resource else None
        if rid:
            return f"{base}/{rtype}/{rid}", rid
    if code in HISTORY:
        return f"{base}/{rtype}/_history", None
    if code and code not in METHODS:
        return (f"{base}/{rtype}/${code}" if rtype else f"{base}/${code}"), None
    if not rtype:
        raise OperationError(f"operation {code or method} names no resource, url, params or targetId")
    return f"{base}/{rtype}", None


def _target(target_id: str, ctx: RunContext) -> tuple[str, str, str | None]:
    src = ctx.source(target_id)
    if src is None:
        raise OperationError(f"targetId {target_id} is no fixture or response of this script")
    if isinstance(src, Fixture) and src.created:
        ttype, _, tid = src.created.partition("/")
        return ttype, tid, None
    res = src.resource or {}
    if isinstance(src, Exchange):
        location = src.header("location")
        if location:
            parts = urlsplit(location).path.rstrip("/").split("/")
            if "_history" in parts:
                i = parts.index("_history")
                return parts[i - 2], parts[i - 1], parts[i + 1] if i + 1 < len(parts) else None
            return parts[-2], parts[-1], None
    if res.get("resourceType") and res.get("id"):
        return res["resourceType"], res["id"], (res.get("meta") or {}).get("versionId")
    raise OperationError(f"targetId {target_id} names no resource id")


def _body(op: dict, code: str, url_id: str | None, ctx: RunContext) -> tuple[bytes | None, str | None]:
    if not op.get("sourceId"):
        return None, None
    v = ctx.vars
    src = ctx.source(op["sourceId"])
    if src is None:
        raise OperationError(f"sourceId {op['sourceId']} is no fixture or response of this script")
    content_type = mime(op.get("contentType"))
    if isinstance(src, Fixture) and src.raw is not None:
        # Written bytes (e.g. hostile XML): variables filled in, nothing else touched.
        return v.substitute(src.raw.decode("utf-8")).encode(), content_type or src.media
    if src.resource is None:
        raise OperationError(f"sourceId {op['sourceId']} has no resource to send")
    resource = v.substitute_json(copy.deepcopy(src.resource))
    if isinstance(src, Fixture) and src.contained:
        resource.pop("id", None)  # a contained fixture's id is local to the script
    if code in ("update", "updateCreate") and url_id:
        resource["id"] = url_id
    patch = extensions.value(op, extensions.BODY_PATCH)
    if patch:
        resource = apply_patch(resource, json.loads(v.substitute(patch)))
    if content_type == XML:
        return dict_to_xml(resource), XML
    body = json.dumps(resource, ensure_ascii=False).encode()
    size = extensions.value(op, extensions.BODY_SIZE)
    if size is not None:
        want = int(v.substitute(str(size)))
        body += b" " * max(0, want - len(body))  # trailing whitespace keeps it valid JSON
    return body, content_type or JSON
