"""The facts a consent decision is made from. Plain data: the server gathers them.

Everything here is immutable and free of I/O, so the engine can be tested, cached and
benchmarked without a server or a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Requester:
    """Who is asking, on whose behalf, and why (CONTRACTS.md section 4)."""

    partner_id: str
    kind: str  # trust | gp | voluntary | icr | person
    organization: str | None  # "Organization/ID" of the partner
    # The partner's Organization followed by each partOf ancestor, nearest first.
    org_chain: tuple[str, ...] = ()
    practitioner: str | None = None  # "Practitioner/ID" acting, if any
    patient: str | None = None  # "Patient/ID" a person partner is bound to
    purpose: str = "TREAT"  # HL7 v3 PurposeOfUse code
    break_glass_reason: str | None = None
    action: str = "access"


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """What the server knows about one patient's compartment at decision time."""

    patient: str  # "Patient/ID"
    # The patient's managingOrganization followed by its partOf ancestors.
    custodian_chain: tuple[str, ...] = ()
    # Candidate Consent resources (plain dicts) for this patient; the engine itself
    # applies rule 2 (status, scope, period) to them.
    consents: tuple[dict, ...] = ()
    # Bumped by the store on every Consent write for this patient: the cache key for
    # compiled policies (rule 10).
    consent_version: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    permit: bool
    # custodian | person | consent | break-glass | not-personal | no-consent | denied
    # | advance-decision (break-glass asked for, refused by the person's advance decision)
    basis: str
    # "Consent/ID" references that decided (permitting or denying).
    consents: tuple[str, ...] = ()
    # Provision paths that decided, e.g. ("Consent/c1#provision.provision[1]",).
    provisions: tuple[str, ...] = ()
    break_glass: bool = False
    reason: str = ""
    # Decisions are shared between calls (the engine caches them), so the engine hands
    # out a read-only mapping here; do not mutate it.
    extra: Mapping[str, Any] = field(default_factory=dict)


def utcnow() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
