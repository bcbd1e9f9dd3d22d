"""The ceiling for bench/read.py: a FastAPI endpoint returning a fixed 3 KB JSON body."""

from fastapi import FastAPI
from fastapi.responses import Response

BODY = (b'{"resourceType":"Basic","text":"' + b"x" * 3000 + b'"}')[:3072]

app = FastAPI()


@app.get("/fixed")
async def fixed() -> Response:
    return Response(BODY, media_type="application/fhir+json")
