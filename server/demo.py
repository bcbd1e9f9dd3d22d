"""Load the demo world (CONTRACTS.md section 8) and print tokens and ready-to-paste curls."""

from __future__ import annotations

from datetime import date

from rich.console import Console

from carebridge.adapters.mesh import DEFAULT_WORKFLOW
from carebridge.mappings.demo_world import DemoWorld, build_demo_world
from carebridge.server import partners, store
from carebridge.server.auth import Signer
from carebridge.server.db import Database
from carebridge.server.validate import validate_resource

DEMO_TOKEN_TTL = 12 * 3600


def _partner_order(items: list[dict]) -> list[dict]:
    """Parents before the partners that are part of them."""
    by_id = {p["id"]: p for p in items}
    done: list[dict] = []
    seen: set[str] = set()

    def visit(p: dict) -> None:
        if p["id"] in seen:
            return
        seen.add(p["id"])
        parent = p.get("part_of")
        if parent and parent in by_id:
            visit(by_id[parent])
        done.append(p)

    for p in items:
        visit(p)
    return done


def load_demo(db: Database, today: date | None = None) -> DemoWorld:
    """Write the demo world; running it again brings it back to its starting state."""
    world = build_demo_world(today or date.today())
    for r in world.resources:
        validate_resource(r)
    partner_ids = {p["id"] for p in world.partners}
    orgs = [r for r in world.resources if r["resourceType"] == "Organization"]
    rest = [r for r in world.resources if r["resourceType"] != "Organization"]
    with db.write() as c:
        for r in orgs:
            store.put(c, r, rid=r["id"], method="PUT")
    for p in _partner_order(world.partners):
        kind = p["kind"]
        partners.add(
            db,
            partners.Partner(
                id=p["id"],
                name=p["name"],
                kind=kind,
                scope=p.get("scope") or partners.DEFAULT_SCOPES[kind],
                ods=p.get("ods"),
                part_of=p.get("part_of"),
                patient=p.get("patient"),
                fhir_base=p.get("fhir_base"),
                mesh_mailbox=p.get("mesh_mailbox"),
                mesh_workflow=DEFAULT_WORKFLOW if p.get("mesh_mailbox") else None,
            ),
            replace=True,
        )
    with db.write() as c:
        for r in rest:
            if r["resourceType"] == "Organization" and r["id"] in partner_ids:
                continue
            store.put(c, r, rid=r["id"], method="PUT")
    return world


def print_demo(db: Database, world: DemoWorld, base: str, console: Console) -> dict[str, str]:
    signer = Signer(db)
    tokens = {}
    console.rule("carebridge demo world")
    console.print("Bearer tokens (valid 12 hours), one per demo partner:")
    for p in world.partners:
        scope = p.get("scope") or partners.DEFAULT_SCOPES[p["kind"]]
        tokens[p["id"]] = signer.issue(p["id"], scope, ttl=DEMO_TOKEN_TTL)
        var = p["id"].upper().replace("-", "_") + "_TOKEN"
        console.print(f"[bold]{p['name']}[/bold] ({p['kind']}):", soft_wrap=True)
        console.print(f"export {var}={tokens[p['id']]}", soft_wrap=True, highlight=False)
    trust = next(p["id"] for p in world.partners if p["kind"] == "trust")
    voluntary = next(p["id"] for p in world.partners if p["kind"] == "voluntary")
    gp = next(p["id"] for p in world.partners if p["kind"] == "gp")
    examples = [
        (
            "Read Millie's care plan as her care team (the custodian trust):",
            trust,
            f"{base}/CarePlan/millie-plan",
        ),
        (
            "Millie's plan sections a voluntary organisation may see (her consent says yes):",
            voluntary,
            f"{base}/CarePlan?patient=millie&_total=accurate",
        ),
        (
            "Her GP sees nothing in advance (her consent says no): an empty search",
            gp,
            f"{base}/CarePlan?patient=millie&_total=accurate",
        ),
        ("Millie's consent, as the custodian sees it:", trust, f"{base}/Consent?patient=millie"),
    ]
    console.rule("try these")
    for text, who, url in examples:
        console.print(text)
        console.print(
            f"curl -s -H 'Authorization: Bearer {tokens[who]}' '{url}'", soft_wrap=True, highlight=False
        )
    console.print(f"curl -s '{base}/metadata'  # the CapabilityStatement needs no token", highlight=False)
    # The person's own pages (/my/): open the link in a browser.
    for p in world.partners:
        if p["kind"] == "person":
            link = f"{base.removesuffix('/fhir')}/my/?token={tokens[p['id']]}"
            console.print(f"{p['name']} in a browser: {link}", soft_wrap=True, highlight=False)
    return tokens
