"""The `carebridge` command."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from carebridge.conformance.cli import app as conformance_app
from carebridge.server.db import DEFAULT_URL, Database, DatabaseUnavailable
from carebridge.server.map_command import map_app
from carebridge.server.mesh_cli import mesh_app
from carebridge.server.outbox_cli import outbox_app
from carebridge.server.pull_cli import pull

app = typer.Typer(help="carebridge: FHIR R4 care plans, consent and transfers.", no_args_is_help=True)
partner_app = typer.Typer(help="The partner registry: systems that talk to carebridge.", no_args_is_help=True)
app.add_typer(partner_app, name="partner")
app.add_typer(outbox_app, name="outbox")
app.add_typer(conformance_app, name="conformance")
app.add_typer(map_app, name="map")
app.add_typer(mesh_app, name="mesh")
app.command("pull")(pull)
console = Console()
err = Console(stderr=True)

DatabaseOpt = typer.Option(None, "--database", help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB")


def database_url(value: str | None) -> str:
    return value or os.environ.get("CAREBRIDGE_DATABASE") or DEFAULT_URL


def open_db(url: str | None) -> Database:
    try:
        return Database(database_url(url))
    except (DatabaseUnavailable, ValueError) as exc:
        err.print(f"[red]cannot open the database:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8080, help="port to listen on"),
    database: str | None = DatabaseOpt,
    workers: int = typer.Option(1, help="worker processes (they share state only through the database)"),
    demo: bool = typer.Option(False, "--demo", help="load the demo world and print tokens and curl examples"),
    access_log: bool = typer.Option(False, "--access-log", help="log every request"),
) -> None:
    """Run the FHIR server at http://HOST:PORT/fhir."""
    import uvicorn

    url = database_url(database)
    os.environ["CAREBRIDGE_DATABASE"] = url
    db = open_db(url)
    if demo:
        from carebridge.server.demo import load_demo, print_demo

        world = load_demo(db)
        print_demo(db, world, f"http://{host}:{port}/fhir", console)
    db.close()
    console.print(
        f"carebridge FHIR server on http://{host}:{port}/fhir (database {url}, {workers} worker(s))"
    )
    uvicorn.run(
        "carebridge.server.main:app",
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="warning" if not access_log else "info",
        loop="uvloop",
        http="httptools",
    )


@partner_app.command("add")
def partner_add(
    id: str = typer.Option(..., "--id", help="partner id (also its Organization id)"),
    name: str = typer.Option(..., help="display name"),
    kind: str = typer.Option(..., help="trust | gp | voluntary | icr | person"),
    ods: str | None = typer.Option(None, help="ODS organisation code"),
    part_of: str | None = typer.Option(None, "--part-of", help="Organization id this one is part of"),
    patient: str | None = typer.Option(None, help="Patient/ID a person partner is bound to"),
    scope: str | None = typer.Option(None, help="SMART scopes (default by kind)"),
    jwks_file: Path | None = typer.Option(None, "--jwks-file", help="JWKS with the partner's public key(s)"),
    fhir_base: str | None = typer.Option(None, "--fhir-base", help="the partner's FHIR base URL (push)"),
    mesh_mailbox: str | None = typer.Option(None, "--mesh-mailbox", help="the partner's MESH mailbox id"),
    mesh_workflow: str | None = typer.Option(None, "--mesh-workflow", help="MESH workflow id to use"),
    push_by: str | None = typer.Option(
        None, "--push-by", help="how shared records are pushed to it: http (--fhir-base) or mesh"
    ),
    database: str | None = DatabaseOpt,
) -> None:
    """Register a partner (and its Organization)."""
    from carebridge.server import partners

    jwks = None
    if jwks_file is not None:
        try:
            jwks = jwks_file.read_text()
            if "keys" not in json.loads(jwks):
                raise ValueError("a JWKS is a JSON object with a 'keys' list")
        except (OSError, ValueError) as exc:
            err.print(f"[red]--jwks-file {jwks_file}:[/red] {exc}")
            raise typer.Exit(2) from None
    p = partners.Partner(
        id=id,
        name=name,
        kind=kind,
        scope=scope or partners.DEFAULT_SCOPES.get(kind, ""),
        ods=ods,
        part_of=part_of.removeprefix("Organization/") if part_of else None,
        patient=patient,
        jwks=jwks,
        fhir_base=fhir_base,
        mesh_mailbox=mesh_mailbox,
        mesh_workflow=mesh_workflow or ("CAREBRIDGE_TRANSFER_NOTIFICATION" if mesh_mailbox else None),
        push_by=push_by,
    )
    db = open_db(database)
    try:
        partners.add(db, p)
    except ValueError as exc:
        err.print(f"[red]cannot add partner:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"added {kind} partner {id} ({name}) with scopes: {p.scope}")


@partner_app.command("list")
def partner_list(database: str | None = DatabaseOpt) -> None:
    """List registered partners."""
    from carebridge.server.partners import all_partners

    table = Table("id", "name", "kind", "ods", "part of", "patient", "scope", "key")
    for p in all_partners(open_db(database)):
        table.add_row(
            p.id,
            p.name,
            p.kind,
            p.ods or "",
            p.part_of or "",
            p.patient or "",
            p.scope,
            "yes" if p.jwks else "",
        )
    console.print(table)


@partner_app.command("remove")
def partner_remove(partner_id: str, database: str | None = DatabaseOpt) -> None:
    """Remove a partner: its tokens stop working at once."""
    from carebridge.server.partners import remove

    if not remove(open_db(database), partner_id):
        err.print(f"no partner {partner_id}")
        raise typer.Exit(1)
    console.print(f"removed {partner_id}")


@app.command()
def token(
    partner: str = typer.Option(..., "--partner", help="partner id"),
    practitioner: str | None = typer.Option(None, help="Practitioner/ID acting for the partner"),
    ttl: int = typer.Option(3600, help="lifetime in seconds"),
    scope: str | None = typer.Option(None, help="narrow the partner's scopes"),
    database: str | None = DatabaseOpt,
) -> None:
    """Print a bearer token for a partner, signed by the server's key."""
    from carebridge.server import auth, partners

    db = open_db(database)
    with db.read() as c:
        p = partners.get(c, partner)
    if p is None:
        err.print(f"[red]no partner {partner}[/red]: add it with `carebridge partner add`")
        raise typer.Exit(2)
    granted = auth.narrow_scope(p.scope, scope)
    if practitioner and not practitioner.startswith("Practitioner/"):
        err.print("--practitioner takes Practitioner/ID")
        raise typer.Exit(2)
    sys.stdout.write(auth.Signer(db).issue(p.id, granted, practitioner=practitioner, ttl=ttl) + "\n")


def main() -> None:
    app()
