"""A deliberately broken FHIR server, for showing the suites catch real faults.

carebridge itself, behind an ASGI wrapper that can switch on one fault at a time. Each
fault is a way a FHIR server could break the contract; `CAUGHT_BY` names the test in
the suites that must fail because of it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from lxml import etree

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]

FAULTS = {
    "leak-search": "search answers include resources the requester may not see",
    "leak-include": "_include and _revinclude carry resources the requester may not see",
    "count-total": "Bundle.total also counts resources the requester may not see",
    "ignore-if-match": "If-Match headers are ignored",
    "nhs-200": "a Patient with a bad NHS number is answered 200",
    "xxe-expand": "XML entities in request bodies are expanded",
    "500-bad-body": "a body that is not JSON is answered 500 with a stack trace",
}

# fault -> (suite, script file, the test that names it)
CAUGHT_BY = {
    "leak-search": ("consent", "08-rule-8-not-there.json", "search-omits-denied"),
    "leak-include": ("consent", "08-rule-8-not-there.json", "include-never-carries-denied"),
    "count-total": ("consent", "08-rule-8-not-there.json", "total-counts-only-disclosed"),
    "ignore-if-match": ("core", "05-if-match.json", "update-if-match-mismatch-412"),
    "nhs-200": ("security", "04-nhs-numbers.json", "bad-nhs-number-422"),
    "xxe-expand": ("security", "02-xml-entities.json", "xxe-entity-refused"),
    "500-bad-body": ("core", "08-errors.json", "malformed-body-is-400"),
}


class FaultyServer:
    """`inner` (carebridge) with the faults in `self.faults` switched on."""

    def __init__(self, inner: ASGIApp, custodian_authorization: str) -> None:
        self.inner = inner
        self.custodian = custodian_authorization.encode()
        self.faults: set[str] = set()

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or not self.faults:
            await self.inner(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        method, path = scope["method"], scope["path"]
        if "ignore-if-match" in self.faults:
            headers.pop(b"if-match", None)
        ctype = headers.get(b"content-type", b"").decode()
        if "xxe-expand" in self.faults and "xml" in ctype and b"<!ENTITY" in body:
            body = _expand_entities(body)
        if "500-bad-body" in self.faults and method in ("POST", "PUT") and "json" in ctype:
            try:
                json.loads(body)
            except ValueError:
                trace = (
                    b"Traceback (most recent call last):\n  json.decoder.JSONDecodeError: Expecting value\n"
                )
                await _answer(send, 500, [(b"content-type", b"text/plain")], trace)
                return
        status, out_headers, out = await self._call(scope, headers, body)
        if "nhs-200" in self.faults and status == 422 and b"NHS number" in out and path.endswith("/Patient"):
            status, out = 200, body
        if _is_search(method, path) and status == 200 and headers.get(b"authorization") != self.custodian:
            out = await self._leak(scope, headers, out)
        await _answer(send, status, out_headers, out)

    async def _call(self, scope: Scope, headers: dict[bytes, bytes], body: bytes) -> tuple[int, list, bytes]:
        sent = False
        start: dict = {}
        chunks: list[bytes] = []
        fixed = {k: v for k, v in headers.items() if k != b"content-length"}
        fixed[b"content-length"] = str(len(body)).encode()

        async def receive() -> dict:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.inner({**scope, "headers": list(fixed.items())}, receive, capture)
        return start["status"], list(start.get("headers", [])), b"".join(chunks)

    async def _leak(self, scope: Scope, headers: dict[bytes, bytes], out: bytes) -> bytes:
        """The custodian's answer to the same search, mixed into the requester's."""
        if not self.faults & {"leak-search", "leak-include", "count-total"}:
            return out
        _, _, theirs = await self._call(scope, {**headers, b"authorization": self.custodian}, b"")
        mine, god = json.loads(out), json.loads(theirs)
        have = {e.get("fullUrl") for e in mine.get("entry") or []}
        extra = [e for e in god.get("entry") or [] if e.get("fullUrl") not in have]
        mode = {"leak-search": "match", "leak-include": "include"}
        for fault, wanted in mode.items():
            if fault in self.faults:
                mine.setdefault("entry", []).extend(
                    e for e in extra if (e.get("search") or {}).get("mode") == wanted
                )
        if "count-total" in self.faults and "total" in mine and "total" in god:
            mine["total"] = god["total"]
        return json.dumps(mine).encode()


def _is_search(method: str, path: str) -> bool:
    parts = [p for p in path.split("/") if p]
    return method == "GET" and len(parts) == 2 and parts[0] == "fhir" and parts[1][:1].isupper()


class _NoFiles(etree.Resolver):
    """Even a broken server should not read the test machine's files."""

    def resolve(self, url: str, pubid: str, context: object) -> object:
        return self.resolve_string("", context)


def _expand_entities(body: bytes) -> bytes:
    parser = etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=True)
    parser.resolvers.add(_NoFiles())
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return body  # e.g. an expansion bomb lxml refuses: pass it on unchanged
    return etree.tostring(root)


async def _answer(send: Callable, status: int, headers: list, body: bytes) -> None:
    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
