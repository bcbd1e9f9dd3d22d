"""A minimal partner FHIR server for the delivery benchmark: accepts every PUT/DELETE at
once and remembers when each arrived. `GET /stats` returns what it saw. Raw ASGI, so the
partner is never the slow end of the measurement."""

from __future__ import annotations

import time

import orjson

ARRIVALS: list[tuple[str, str, int, float]] = []


async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    method, path = scope["method"], scope["path"]
    if method == "GET" and path == "/stats":
        answer = orjson.dumps({"arrivals": ARRIVALS})
    elif method == "POST" and path == "/reset":
        ARRIVALS.clear()
        answer = b"{}"
    else:
        version = 0
        if body:
            version = int(orjson.loads(body).get("meta", {}).get("versionId", 0))
        ARRIVALS.append((method, path, version, time.time()))
        answer = b""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/fhir+json"),
                (b"content-length", str(len(answer)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer})
