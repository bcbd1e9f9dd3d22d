"""SMART Backend Services: a bearer token for a client id and its private key.

The client signs a short-lived assertion (RS384 for RSA keys, ES384 for EC keys) and
trades it at the server's token endpoint, found in `.well-known/smart-configuration`
unless the config names one.
"""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class TokenError(Exception):
    """No token could be had for a role."""


def token_endpoint(client: httpx.Client, base_url: str) -> str:
    url = base_url.rstrip("/") + "/.well-known/smart-configuration"
    try:
        r = client.get(url, headers={"Accept": "application/json"})
        endpoint = r.json().get("token_endpoint") if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise TokenError(f"cannot read {url}: {exc}") from None
    if not endpoint:
        raise TokenError(f"{url} names no token_endpoint; give token_url in the config")
    return endpoint


def fetch_token(
    client: httpx.Client,
    *,
    client_id: str,
    private_key_pem: bytes,
    token_url: str,
    scope: str | None = None,
    kid: str | None = None,
) -> str:
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    alg = "ES384" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS384"
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    }
    assertion = jwt.encode(claims, key, algorithm=alg, headers={"kid": kid} if kid else None)
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    if scope:
        form["scope"] = scope
    try:
        r = client.post(token_url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise TokenError(f"{token_url}: {exc}") from None
    if r.status_code != 200:
        raise TokenError(f"{token_url} refused {client_id}: {r.status_code} {r.text[:300]}")
    token = r.json().get("access_token")
    if not token:
        raise TokenError(f"{token_url} gave {client_id} no access_token")
    return token
