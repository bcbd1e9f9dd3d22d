"""For bench/consent_read.py only: the same read by id with no consent and no audit.

Authenticates like carebridge and serves the stored bytes, so the difference between
this and `carebridge serve` is exactly what consent enforcement and audit cost.
"""

import os

from fastapi import FastAPI, Request
from fastapi.responses import Response

from carebridge.server import auth, store
from carebridge.server.db import Database
from carebridge.server.errors import FhirError

db = Database(os.environ["CAREBRIDGE_DATABASE"])
signer = auth.Signer(db)
app = FastAPI()


async def read(request: Request) -> Response:
    try:
        signer.verify(auth.bearer(request.headers.get("authorization")))
    except FhirError as exc:
        return Response(status_code=exc.status)
    with db.read() as c:
        row = store.current(c, request.path_params["rtype"], request.path_params["rid"])
    if row is None or row.body is None:
        return Response(status_code=404)
    return Response(row.body, media_type="application/fhir+json", headers={"ETag": f'W/"{row.version}"'})


app.add_route("/fhir/{rtype}/{rid}", read, methods=["GET"])
