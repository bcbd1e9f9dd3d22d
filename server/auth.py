"""Identity: the server's signing key, bearer tokens, SMART scopes and backend services.

Tokens are ES256 JWTs signed by a key kept in the database, so every worker on every
host accepts every other's tokens. A verified token is cached in process until it
expires: signature checks stay off the read path.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from carebridge.server.db import Database
from carebridge.server.errors import FhirError
from carebridge.server.instants import now_instant

ISSUER = "carebridge"
ALGORITHM = "ES256"
ASSERTION_ALGORITHMS = ("RS384", "ES384")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

INTERACTION_LETTER = {
    "read": "r",
    "vread": "r",
    "history": "r",
    "search": "s",
    "create": "c",
    "update": "u",
    "delete": "d",
}


@dataclass(frozen=True, slots=True)
class Claims:
    partner_id: str
    scope: str
    practitioner: str | None
    expires: float


# -- the server's own key -------------------------------------------------------------
class Signer:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.kid, pem = self._load_or_create()
        self.private_key = serialization.load_pem_private_key(pem.encode(), password=None)
        self.public_key = self.private_key.public_key()
        self._verified: OrderedDict[str, Claims] = OrderedDict()

    def _load_or_create(self) -> tuple[str, str]:
        with self.db.write() as c:
            t = c.one("SELECT kid, private_pem FROM server_key ORDER BY created LIMIT 1")
            if t:
                return t[0], t[1]
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            kid = uuid.uuid4().hex[:16]
            c.run(
                "INSERT INTO server_key (kid, private_pem, created) VALUES (?, ?, ?)",
                (kid, pem, now_instant()),
            )
            return kid, pem

    def issue(self, partner_id: str, scope: str, *, practitioner: str | None = None, ttl: int = 3600) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": partner_id,
            "scope": scope,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        if practitioner:
            claims["practitioner"] = practitioner
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def verify(self, token: str) -> Claims:
        cached = self._verified.get(token)
        now = time.time()
        if cached is not None:
            if cached.expires > now:
                return cached
            del self._verified[token]
        try:
            data = jwt.decode(
                token,
                self.public_key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("the bearer token has expired: ask for a new one") from None
        except jwt.PyJWTError as exc:
            raise unauthorized(f"the bearer token is not valid: {exc}") from None
        claims = Claims(
            str(data["sub"]), str(data.get("scope", "")), data.get("practitioner"), float(data["exp"])
        )
        self._verified[token] = claims
        if len(self._verified) > 10_000:
            self._verified.popitem(last=False)
        return claims

    def jwks(self) -> dict:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.public_key))
        jwk.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": [jwk]}


def unauthorized(message: str) -> FhirError:
    return FhirError(401, message, headers={"WWW-Authenticate": 'Bearer realm="carebridge"'})


def bearer(header: str | None) -> str:
    if not header:
        raise unauthorized(
            "this request needs an Authorization: Bearer TOKEN header "
            "(get a token with `carebridge token --partner ID` or POST /fhir/token)"
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("the Authorization header must be 'Bearer TOKEN'")
    return token.strip()


# -- scopes ---------------------------------------------------------------------------
@lru_cache(maxsize=1024)
def parse_scopes(scope: str) -> dict[str, frozenset[str]]:
    """SMART v2 (system/Type.cruds) and v1 (system/Type.read|write|*) into type -> letters."""
    grants: dict[str, set[str]] = {}
    for item in scope.split():
        context, _, rest = item.partition("/")
        if context not in ("system", "user", "patient") or "." not in rest:
            continue
        rtype, _, perms = rest.partition(".")
        perms = perms.split("?")[0]
        if perms == "read":
            letters = set("rs")
        elif perms == "write":
            letters = set("cud")
        elif perms == "*":
            letters = set("cruds")
        else:
            letters = set(perms) & set("cruds")
        grants.setdefault(rtype, set()).update(letters)
    return {k: frozenset(v) for k, v in grants.items()}


def scope_allows(scope: str, rtype: str, interaction: str) -> bool:
    grants = parse_scopes(scope)
    letter = INTERACTION_LETTER[interaction]
    return letter in grants.get(rtype, frozenset()) or letter in grants.get("*", frozenset())


def require_scope(scope: str, rtype: str, interaction: str) -> None:
    if not scope_allows(scope, rtype, interaction):
        letter = INTERACTION_LETTER[interaction]
        raise FhirError(
            403,
            f"your token's scopes ({scope or 'none'}) do not allow {interaction} on {rtype}: "
            f"it needs system/{rtype}.{letter} or system/*.{letter}",
        )


def narrow_scope(granted: str, requested: str | None) -> str:
    """The requested scopes that the partner's granted scopes cover."""
    if not requested:
        return granted
    kept = []
    for item in requested.split():
        grants = parse_scopes(item)
        ok = all(
            all(
                scope_allows(granted, rtype, i)
                for i, letter in INTERACTION_LETTER.items()
                if letter in letters
            )
            for rtype, letters in grants.items()
        )
        if grants and ok:
            kept.append(item)
    return " ".join(kept)


# -- SMART Backend Services -----------------------------------------------------------
def verify_client_assertion(
    db: Database, assertion: str, token_url: str, jwks_of: dict[str, str | None]
) -> str:
    """The partner id a valid client_assertion JWT speaks for, or a FhirError(401)."""
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise FhirError(401, f"client_assertion is not a JWT: {exc}", code="login") from None
    client_id = unverified.get("iss")
    if not client_id or unverified.get("sub") != client_id:
        raise FhirError(401, "client_assertion must have iss and sub both equal to your client id")
    if header.get("alg") not in ASSERTION_ALGORITHMS:
        raise FhirError(401, f"client_assertion must be signed with {' or '.join(ASSERTION_ALGORITHMS)}")
    jwks_text = jwks_of.get(client_id)
    if not jwks_text:
        raise FhirError(401, f"{client_id} has no registered key: register one with --jwks-file")
    keys = json.loads(jwks_text).get("keys", [])
    kid = header.get("kid")
    candidates = [k for k in keys if not kid or k.get("kid") == kid]
    last_error: Exception | None = None
    for jwk in candidates:
        try:
            key = jwt.PyJWK(jwk, algorithm=header["alg"]).key
            data = jwt.decode(
                assertion,
                key,
                algorithms=list(ASSERTION_ALGORITHMS),
                audience=token_url,
                options={"require": ["exp", "iss", "sub", "aud", "jti"]},
            )
            break
        except jwt.PyJWTError as exc:
            last_error = exc
    else:
        raise FhirError(401, f"client_assertion could not be verified: {last_error or 'no matching key'}")
    if data["exp"] > time.time() + 300:
        raise FhirError(401, "client_assertion exp must be no more than five minutes ahead")
    with db.write() as c:
        c.run("DELETE FROM used_jti WHERE expires < ?", (int(time.time()),))
        if c.one("SELECT 1 FROM used_jti WHERE jti = ?", (f"{client_id}:{data['jti']}",)):
            raise FhirError(401, "client_assertion jti was already used: make a new assertion")
        c.run(
            "INSERT INTO used_jti (jti, expires) VALUES (?, ?)",
            (f"{client_id}:{data['jti']}", int(data["exp"])),
        )
    return client_id
