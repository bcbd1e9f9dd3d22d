"""Sign-in sessions and CSRF tokens for the person's pages under /my/.

A session is a signed cookie (HMAC-SHA256), so every worker accepts every other's. Its
key is derived from the server's token-signing key, which lives in the database: no
second secret to keep, and no session is valid on another carebridge. The cookie is
HttpOnly and SameSite=Strict and dies after a while idle, and at the latest when the
sign-in token it came from would have expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import asdict, dataclass, replace

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from carebridge.server.auth import Signer

COOKIE = "cb_my"
PRE_COOKIE = "cb_my_pre"  # for the sign-in form, before there is a session
PATH = "/my/"
IDLE_SECONDS = 20 * 60
LONGEST_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Session:
    partner: str
    scope: str
    sid: str  # random per sign-in: the CSRF tokens hang off it
    started: int
    expires: int  # idle deadline, pushed on by each page
    ends: int  # hard deadline: sign-in token expiry or LONGEST_SECONDS
    practitioner: str | None = None  # "Practitioner/ID" in assisted mode
    patient: str | None = None  # "Patient/ID" for the person's own link


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Issue, read and refresh session cookies; make and check CSRF tokens."""

    def __init__(self, signer: Signer) -> None:
        pem = signer.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self._key = HKDF(hashes.SHA256(), 32, salt=None, info=b"carebridge /my/ sessions v1").derive(pem)

    def _mac(self, purpose: str, data: bytes) -> str:
        return _b64(hmac.new(self._key, purpose.encode() + b"\0" + data, hashlib.sha256).digest())

    # -- sessions ---------------------------------------------------------------------
    def start(
        self,
        partner: str,
        scope: str,
        token_expires: float,
        *,
        practitioner: str | None = None,
        patient: str | None = None,
        now: float | None = None,
    ) -> Session:
        at = int(now if now is not None else time.time())
        ends = min(int(token_expires), at + LONGEST_SECONDS)
        return Session(
            partner=partner,
            scope=scope,
            sid=secrets.token_urlsafe(18),
            started=at,
            expires=min(at + IDLE_SECONDS, ends),
            ends=ends,
            practitioner=practitioner,
            patient=patient,
        )

    def encode(self, session: Session) -> str:
        body = orjson.dumps(asdict(session))
        return f"{_b64(body)}.{self._mac('session', body)}"

    def decode(self, value: str | None, *, now: float | None = None) -> Session | None:
        """The session in a cookie, or None if it is missing, forged or expired."""
        if not value or "." not in value or len(value) > 4096:
            return None
        body_text, _, mac = value.partition(".")
        try:
            body = _unb64(body_text)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            session = Session(**orjson.loads(body))
        except (orjson.JSONDecodeError, TypeError):
            return None
        at = now if now is not None else time.time()
        if at >= session.expires or at >= session.ends:
            return None
        return session

    def refreshed(self, session: Session, *, now: float | None = None) -> Session:
        """The same session with its idle deadline pushed on (never past its hard end)."""
        at = int(now if now is not None else time.time())
        return replace(session, expires=min(at + IDLE_SECONDS, session.ends))

    # -- CSRF ---------------------------------------------------------------------------
    def csrf(self, session: Session) -> str:
        return self._mac("csrf", session.sid.encode())

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))

    def pre_nonce(self) -> str:
        return secrets.token_urlsafe(18)

    def pre_csrf(self, nonce: str) -> str:
        return self._mac("sign-in", nonce.encode())

    def pre_csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce) and bool(token) and hmac.compare_digest(str(token), self.pre_csrf(str(nonce)))


def cookie_options(secure: bool) -> dict:
    """HttpOnly and SameSite=Strict always; Secure whenever the page came over HTTPS."""
    return {"path": PATH, "httponly": True, "samesite": "strict", "secure": secure}
