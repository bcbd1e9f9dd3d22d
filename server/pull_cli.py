"""`carebridge pull --partner ID`: copy a partner's care records for the people held here."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def pull(
    partner: str = typer.Option(..., "--partner", help="partner id (registered with --fhir-base)"),
    nhs_number: list[str] = typer.Option(
        [], "--nhs-number", help="only this person (repeatable); default: everyone held here"
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="CAREBRIDGE_PULL_TOKEN", help="bearer token for the partner's server"
    ),
    database: str | None = typer.Option(
        None, "--database", help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
    ),
) -> None:
    """Read a partner's FHIR server (Patient by NHS number, then CarePlan, CareTeam, Task) and
    store what it holds, with Provenance; local changes are never overwritten."""
    from carebridge.adapters.pull import PartnerReader
    from carebridge.server import partners
    from carebridge.server.cli import open_db
    from carebridge.server.pull_store import local_nhs_numbers, pull_partner

    db = open_db(database)
    with db.read() as c:
        p = partners.get(c, partner)
    if p is None:
        err.print(f"[red]no partner {partner}[/red]: add it with `carebridge partner add`")
        raise typer.Exit(2)
    if not p.fhir_base:
        err.print(f"[red]partner {partner} has no --fhir-base[/red]: register its FHIR base URL first")
        raise typer.Exit(2)
    numbers = nhs_number or local_nhs_numbers(db)
    reader = PartnerReader(p.fhir_base, token)
    try:
        report = pull_partner(db, p, reader, numbers)
    finally:
        reader.close()
    console.print(
        f"pulled from {partner}: {report.created} new, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.conflicts)} conflicts, {len(report.errors)} errors"
    )
    for nhs in report.not_at_partner:
        console.print(f"  {nhs}: not held by {partner}")
    for nhs in report.not_held_here:
        console.print(f"  {nhs}: not held here, so nothing was pulled for them")
    for text in report.conflicts:
        console.print(f"  [yellow]conflict[/yellow] {text}", soft_wrap=True)
    for text in report.errors:
        err.print(f"  [red]error[/red] {text}", soft_wrap=True)
    if report.errors:
        raise typer.Exit(1)
