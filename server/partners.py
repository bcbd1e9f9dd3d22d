"""The partner registry: systems that talk to carebridge, each also an Organization.

Every worker caches partners and organisation ancestry keyed by a generation number
that each registry or Organization change bumps in the same transaction, so a change
is seen by all workers on their next request.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from carebridge.mappings.vocabulary import ODS_SYSTEM, PARTNER_KIND_SYSTEM, PARTNER_KINDS
from carebridge.server import store
from carebridge.server.db import Conn, Database
from carebridge.server.errors import FhirError
from carebridge.server.instants import now_instant

DEFAULT_SCOPES = {
    "trust": "system/*.cruds",
    "gp": "system/*.rs system/Subscription.cruds",
    "voluntary": "system/*.rs system/Subscription.cruds",
    "icr": "system/*.rs system/Subscription.cruds",
    "person": "system/*.rs system/Subscription.cruds",
}

KIND_NAMES = {
    "trust": "Mental-health or community service",
    "gp": "GP practice",
    "voluntary": "Voluntary-sector organisation",
    "icr": "Integrated care record",
    "person": "The person's own app",
}


@dataclass(frozen=True, slots=True)
class Partner:
    id: str
    name: str
    kind: str
    scope: str
    ods: str | None = None
    part_of: str | None = None  # Organization id
    patient: str | None = None  # "Patient/ID" for a person partner
    jwks: str | None = None
    fhir_base: str | None = None
    mesh_mailbox: str | None = None
    mesh_workflow: str | None = None
    # How the registry push reaches it: "http" (its --fhir-base, the default when it has
    # one) or "mesh" (its MESH mailbox, for systems that only take MESH).
    push_by: str | None = None

    @property
    def organization(self) -> str | None:
        return None if self.kind == "person" else f"Organization/{self.id}"

    def public(self) -> dict:
        d = asdict(self)
        d.pop("jwks")
        d["has_key"] = bool(self.jwks)
        return d


_FIELDS = (
    "id, name, kind, scope, ods, part_of, patient, jwks, fhir_base, mesh_mailbox, mesh_workflow, push_by"
)


def organization_resource(p: Partner) -> dict:
    org: dict = {
        "resourceType": "Organization",
        "id": p.id,
        "active": True,
        "name": p.name,
        "type": [
            {
                "coding": [{"system": PARTNER_KIND_SYSTEM, "code": p.kind, "display": KIND_NAMES[p.kind]}],
                "text": KIND_NAMES[p.kind],
            }
        ],
    }
    if p.ods:
        org["identifier"] = [{"system": ODS_SYSTEM, "value": p.ods}]
    if p.part_of:
        org["partOf"] = {"reference": f"Organization/{p.part_of.removeprefix('Organization/')}"}
    return org


def validate(p: Partner) -> None:
    if p.kind not in PARTNER_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PARTNER_KINDS)}, not {p.kind!r}")
    if p.kind == "person" and not (p.patient or "").startswith("Patient/"):
        raise ValueError("a person partner is bound to one patient: give --patient Patient/ID")
    if p.kind != "person" and p.patient:
        raise ValueError("only a person partner can be bound to a patient")
    if p.push_by not in (None, "http", "mesh"):
        raise ValueError(f"--push-by must be http or mesh, not {p.push_by!r}")
    if p.push_by == "mesh" and not p.mesh_mailbox:
        raise ValueError("--push-by mesh needs the partner's --mesh-mailbox")
    if p.push_by == "http" and not p.fhir_base:
        raise ValueError("--push-by http needs the partner's --fhir-base")
    if not p.id or "/" in p.id or len(p.id) > 64:
        raise ValueError("the partner id must be 1-64 characters without '/'")


def add(db: Database, p: Partner, *, replace: bool = False) -> Partner:
    validate(p)
    with db.write() as c:
        exists = c.one("SELECT 1 FROM partner WHERE id = ?", (p.id,))
        if exists and not replace:
            raise ValueError(f"partner {p.id} already exists; remove it first or use another id")
        if p.part_of:
            parent = store.current(c, "Organization", p.part_of.removeprefix("Organization/"))
            if parent is None or parent.deleted:
                raise ValueError(f"--part-of {p.part_of}: no such Organization")
        if exists:
            c.run("DELETE FROM partner WHERE id = ?", (p.id,))
        c.run(
            f"INSERT INTO partner ({_FIELDS}, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                p.id,
                p.name,
                p.kind,
                p.scope,
                p.ods,
                p.part_of,
                p.patient,
                p.jwks,
                p.fhir_base,
                p.mesh_mailbox,
                p.mesh_workflow,
                p.push_by,
                now_instant(),
            ),
        )
        if p.kind != "person":
            store.put(c, organization_resource(p), rid=p.id, method="PUT")
        c.run("UPDATE generation SET value = value + 1 WHERE name = 'partner'")
    return p


def remove(db: Database, partner_id: str) -> bool:
    with db.write() as c:
        n = c.run("DELETE FROM partner WHERE id = ?", (partner_id,))
        c.run("UPDATE generation SET value = value + 1 WHERE name = 'partner'")
    return n > 0


def _from_row(t: tuple) -> Partner:
    return Partner(*t)


def get(c: Conn, partner_id: str) -> Partner | None:
    t = c.one(f"SELECT {_FIELDS} FROM partner WHERE id = ?", (partner_id,))
    return _from_row(t) if t else None


def all_partners(db: Database) -> list[Partner]:
    with db.read() as c:
        return [_from_row(t) for t in c.all(f"SELECT {_FIELDS} FROM partner ORDER BY id")]


class Registry:
    """Per-process caches of partners and org ancestry, invalidated by generation."""

    def __init__(self) -> None:
        self._gen: tuple[int, int] = (-1, -1)
        self._partners: dict[str, Partner | None] = {}
        self._chains: dict[str, tuple[str, ...]] = {}
        # Requesters built from the cached facts, keyed by (partner, practitioner, purpose, reason).
        self.requesters: dict[tuple, object] = {}

    @staticmethod
    def generations(c: Conn) -> tuple[int, int]:
        gens = dict(c.all("SELECT name, value FROM generation"))
        return int(gens.get("partner", 0)), int(gens.get("org", 0))

    def stale(self, gens: tuple[int, int]) -> bool:
        """Forget cached facts if the registry or organisation tree changed; True if it did."""
        if gens == self._gen:
            return False
        self._gen = gens
        self._partners.clear()
        self._chains.clear()
        self.requesters.clear()
        return True

    def refresh(self, c: Conn) -> None:
        self.stale(self.generations(c))

    def partner(self, c: Conn, partner_id: str) -> Partner | None:
        if partner_id not in self._partners:
            self._partners[partner_id] = get(c, partner_id)
        return self._partners[partner_id]

    def chain(self, c: Conn, org_ref: str | None) -> tuple[str, ...]:
        """The organisation followed by its partOf ancestors, nearest first."""
        if not org_ref:
            return ()
        if org_ref not in self._chains:
            rows = c.all("SELECT ancestor FROM org_closure WHERE descendant = ? ORDER BY depth", (org_ref,))
            self._chains[org_ref] = tuple(r[0] for r in rows) or (org_ref,)
        return self._chains[org_ref]


def require_known(c: Conn, partner_id: str) -> Partner:
    p = get(c, partner_id)
    if p is None:
        raise FhirError(401, f"partner {partner_id} is not registered")
    return p
