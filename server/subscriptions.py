"""FHIR R4 rest-hook Subscriptions: owned by the partner that made them.

The server stamps the creating partner into `meta.tag` (whatever the client sent
there), and only that partner can read, update or delete the Subscription; deliveries
for it are decided with that partner's rights. Criteria are ordinary searches
(`CarePlan?patient=millie`), checked once on write and matched by the search index.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlparse

from carebridge.consent.model import Decision, Requester
from carebridge.mappings.vocabulary import CANONICAL_BASE
from carebridge.server.auth import require_scope
from carebridge.server.catalog import RESOURCE_TYPES, RESULT_PARAMS
from carebridge.server.errors import FhirError

OWNER_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/subscription-owner"
PAYLOADS = ("application/fhir+json", "application/json")
# Types a Subscription may not watch: audit trails, and Subscriptions themselves.
NOT_WATCHABLE = frozenset({"AuditEvent", "Subscription"})

OWNER = Decision(True, "owner", reason="the partner that created this Subscription")
NOT_OWNER = Decision(False, "denied", reason="a Subscription is seen only by the partner that created it")


def owner_of(resource: Any) -> str | None:
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if isinstance(tag, dict) and tag.get("system") == OWNER_SYSTEM:
            return tag.get("code")
    return None


def decide_owner(requester: Requester, resource: Any) -> Decision:
    """Only its owner sees a Subscription (its endpoint headers may hold secrets)."""
    owner = owner_of(resource)
    return OWNER if owner is not None and owner == requester.partner_id else NOT_OWNER


@lru_cache(maxsize=1024)
def parse_criteria(criteria: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """('CarePlan', (('patient', 'millie'),)) from 'CarePlan?patient=millie'; 422 if unusable."""
    text = (criteria or "").strip()
    rtype, _, query = text.partition("?")
    rtype = rtype.rstrip("/").rsplit("/", 1)[-1]
    if rtype not in RESOURCE_TYPES or rtype in NOT_WATCHABLE:
        raise FhirError(
            422,
            f"Subscription.criteria '{criteria}' must start with a resource type this server serves "
            "(for example CarePlan?patient=ID); AuditEvent and Subscription cannot be watched",
            expression=["Subscription.criteria"],
        )
    params = tuple(parse_qsl(query, keep_blank_values=True))
    for name, _ in params:
        if name.partition(":")[0] in RESULT_PARAMS:
            raise FhirError(
                422,
                f"Subscription.criteria may only hold search parameters, not '{name}'",
                expression=["Subscription.criteria"],
            )
    from carebridge.server import search

    try:
        search.parse(rtype, list(params))
    except FhirError as exc:
        raise FhirError(
            422, f"Subscription.criteria: {exc.diagnostics}", expression=["Subscription.criteria"]
        ) from None
    return rtype, params


def stamp(requester: Requester, scope: str, resource: dict) -> dict:
    """Check a Subscription a partner writes and make it theirs (other types pass through)."""
    if resource.get("resourceType") != "Subscription":
        return resource
    channel = resource.get("channel") or {}
    if channel.get("type") != "rest-hook":
        raise FhirError(
            422,
            "carebridge delivers Subscriptions by rest-hook only: set channel.type to rest-hook",
            expression=["Subscription.channel.type"],
        )
    endpoint = channel.get("endpoint") or ""
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise FhirError(
            422,
            "Subscription.channel.endpoint must be the absolute http(s) base URL to deliver to",
            expression=["Subscription.channel.endpoint"],
        )
    payload = channel.get("payload")
    if payload is not None and payload.split(";")[0].strip() not in PAYLOADS:
        raise FhirError(
            422,
            f"Subscription.channel.payload '{payload}' is not supported: use application/fhir+json "
            "(or leave it out to be told of changes without their content)",
            expression=["Subscription.channel.payload"],
        )
    for header in channel.get("header") or []:
        if ":" not in header:
            raise FhirError(
                422,
                f"Subscription.channel.header '{header}' must look like 'Name: value'",
                expression=["Subscription.channel.header"],
            )
    rtype, _ = parse_criteria(resource.get("criteria") or "")
    # A partner is told only of what its token could read itself.
    require_scope(scope, rtype, "read")
    out = dict(resource)
    # The server decides the status: requested (or a stale error) becomes active.
    out["status"] = "off" if resource.get("status") == "off" else "active"
    out.pop("error", None)
    meta = dict(out.get("meta") or {})
    tags = [t for t in meta.get("tag") or [] if not (isinstance(t, dict) and t.get("system") == OWNER_SYSTEM)]
    tags.append({"system": OWNER_SYSTEM, "code": requester.partner_id, "display": "created by this partner"})
    meta["tag"] = tags
    out["meta"] = meta
    return out


def headers_of(resource: dict) -> dict[str, str]:
    out = {}
    for header in (resource.get("channel") or {}).get("header") or []:
        name, _, value = header.partition(":")
        if name.strip():
            out[name.strip()] = value.strip()
    return out
