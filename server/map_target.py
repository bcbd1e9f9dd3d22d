"""Where `carebridge map` reads and writes: a database, or a running server over HTTP.

Both speak FHIR Bundles, so the import and export code is the same for either. The
database target acts as a registered partner through the same interaction functions
and disclosure gate as the API (bundle.process), and stores the audit of what it was
shown, as the HTTP server would; the HTTP target posts the same Bundles with requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import jwt
import orjson
import requests

from carebridge.mappings.vocabulary import CANONICAL_BASE, NHS_NUMBER_SYSTEM
from carebridge.server import bundle as bundles
from carebridge.server import interaction as ix
from carebridge.server import partners
from carebridge.server.audit import AuditWriter, events_for
from carebridge.server.db import Database
from carebridge.server.disclosure import requester_for
from carebridge.server.errors import FhirError
from carebridge.server.partners import Registry

# Stands in for the server's base URL in responses built without HTTP.
LOCAL_BASE = CANONICAL_BASE


class TargetError(Exception):
    """The target refused a request: its status and its words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Identity:
    partner_id: str
    name: str
    kind: str

    @property
    def organization(self) -> str:
        return f"Organization/{self.partner_id}"


class Target(Protocol):
    identity: Identity

    def batch(self, bundle: dict) -> dict: ...

    def transaction(self, bundle: dict) -> dict: ...

    def close(self) -> None: ...


class DatabaseTarget:
    """Acts as partner `partner_id` directly on a database."""

    def __init__(self, db: Database, partner_id: str) -> None:
        self.db = db
        self.registry = Registry()
        with db.read() as c:
            partner = partners.get(c, partner_id)
            requester = requester_for(
                c, self.registry, partner_id, practitioner=None, purpose="TREAT", break_glass_reason=None
            )
        if partner is None or requester is None:
            raise TargetError(401, f"no partner '{partner_id}' is registered in this database")
        self.partner = partner
        self.requester = requester
        self.identity = Identity(partner.id, partner.name, partner.kind)
        self.audit = AuditWriter(db)
        if db.dialect == "sqlite":
            # A bulk import writes a few hundred WAL pages per person: checkpoint (and
            # fsync) every ~40 MB instead of every ~4 MB. Durability per commit is unchanged.
            with db.read() as c:
                c.run("PRAGMA wal_autocheckpoint=10000")

    def _ctx(self, prefer: str) -> ix.Ctx:
        return ix.Ctx(
            db=self.db,
            registry=self.registry,
            requester=self.requester,
            scope=self.partner.scope,
            base_url=LOCAL_BASE,
            prefer_return=prefer,
        )

    def _run(self, bundle: dict, prefer: str) -> dict:
        ctx = self._ctx(prefer)
        try:
            out = bundles.process(ctx, bundle)
        except FhirError as exc:
            raise TargetError(exc.status, exc.diagnostics) from None
        # Rule 9: what this partner was shown is audited, as over HTTP.
        self.audit.commit_now(events_for(ctx.gates, bundle["type"]))
        return out

    def batch(self, bundle: dict) -> dict:
        return self._run(bundle, "representation")

    def transaction(self, bundle: dict) -> dict:
        return self._run(bundle, "minimal")

    def held_elsewhere(self, nhs_number: str) -> str | None:
        """The organisation holding the record of a person this partner cannot see, if any.

        A conditional update never matches what its requester may not see (rule 8), so
        importing someone another trust holds would make a second Patient. The operator
        running the CLI has the database in hand, so the import can check and refuse;
        a partner over HTTP is told nothing."""
        with self.db.read() as c:
            t = c.one(
                "SELECT f.managing_org FROM idx_token i "
                "JOIN resource r ON r.type = i.type AND r.id = i.id JOIN patient_facts f ON f.patient = r.id "
                "WHERE i.type = 'Patient' AND i.param = 'identifier' AND i.system = ? AND i.code = ? "
                "AND r.deleted = 0",
                (NHS_NUMBER_SYSTEM, nhs_number),
            )
        return (t[0] or "another organisation") if t else None

    def close(self) -> None:
        self.audit.close()


class HttpTarget:
    """Acts as whoever `token` belongs to, on the FHIR server at `base_url`."""

    def __init__(
        self, base_url: str, token: str, *, partner_id: str | None = None, timeout: float = 120
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/fhir+json",
                "Accept": "application/fhir+json",
            }
        )
        if partner_id is None:
            try:
                # Only to learn which partner we are (the server checks the signature).
                partner_id = str(jwt.decode(token, options={"verify_signature": False})["sub"])
            except (jwt.PyJWTError, KeyError):
                raise TargetError(
                    400, "cannot tell from --token which partner it belongs to; give --partner"
                ) from None
        org = self._get(f"Organization/{partner_id}")
        kind = next(
            (c.get("code") for t in org.get("type") or [] for c in t.get("coding") or [] if c.get("code")),
            "trust",
        )
        self.identity = Identity(partner_id, org.get("name") or partner_id, kind)

    def _get(self, path: str) -> dict:
        try:
            r = self.session.get(f"{self.base_url}/{path}", timeout=self.timeout)
        except requests.RequestException as exc:
            raise TargetError(503, f"cannot reach {self.base_url}: {exc}") from None
        return self._answer(r)

    def _answer(self, r: requests.Response) -> dict:
        try:
            body = orjson.loads(r.content) if r.content else {}
        except orjson.JSONDecodeError:
            body = {}
        if r.status_code >= 400:
            issues = body.get("issue") or [{}] if isinstance(body, dict) else [{}]
            text = issues[0].get("diagnostics") or r.reason
            raise TargetError(r.status_code, text)
        return body

    def _post(self, bundle: dict, prefer: str) -> dict:
        try:
            r = self.session.post(
                self.base_url,
                data=orjson.dumps(bundle),
                headers={"Prefer": f"return={prefer}"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TargetError(503, f"cannot reach {self.base_url}: {exc}") from None
        return self._answer(r)

    def batch(self, bundle: dict) -> dict:
        return self._post(bundle, "representation")

    def transaction(self, bundle: dict) -> dict:
        return self._post(bundle, "minimal")

    def close(self) -> None:
        self.session.close()


def batch_failures(response: dict) -> list[str]:
    """The words of every failed entry of a batch response."""
    out = []
    for i, entry in enumerate(response.get("entry") or []):
        status = str((entry.get("response") or {}).get("status", "200"))
        if not status.startswith("2"):
            outcome = (entry.get("response") or {}).get("outcome") or {}
            words = ((outcome.get("issue") or [{}])[0]).get("diagnostics") or status
            out.append(f"Bundle.entry[{i}]: {words}")
    return out
