"""`carebridge map import|export` (CONTRACTS.md section 7): care plans in and out.

Imports are written as the custodian trust (`--partner`, or the trust holding most
records in the database, or whoever `--token` belongs to); exports are read as a
partner through the disclosure gate, like any API request.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

map_app = typer.Typer(help="Care plans: local records (JSON, XML, CSV) <-> FHIR.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

DatabaseOpt = typer.Option(None, "--database", help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
BaseUrlOpt = typer.Option(None, "--base-url", help="a running carebridge, e.g. http://127.0.0.1:8080/fhir")
TokenOpt = typer.Option(None, "--token", help="bearer token for --base-url")
PartnerOpt = typer.Option(None, "--partner", help="the partner to act as (a registered partner id)")
OUTCOMES = ("created", "updated", "unchanged", "failed")


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]{message}[/red]")
    return typer.Exit(code)


def _target(
    database: str | None,
    base_url: str | None,
    token: str | None,
    partner: str | None,
    *,
    nhs: str | None = None,
):
    """The database or server to work on, acting as the right partner."""
    from carebridge.server.map_target import DatabaseTarget, HttpTarget, TargetError

    if base_url and database:
        raise _fail("give either --database or --base-url, not both")
    try:
        if base_url:
            if not token:
                raise _fail("--base-url needs --token (see `carebridge token`)")
            return HttpTarget(base_url, token, partner_id=partner)
        from carebridge.server.cli import open_db

        db = open_db(database)
        if partner is None:
            partner = _default_partner(db, nhs)
        return DatabaseTarget(db, partner)
    except TargetError as exc:
        raise _fail(exc.message) from None


def _default_partner(db, nhs: str | None) -> str:
    if nhs is not None:
        from carebridge.server.map_export import custodian_of

        found = custodian_of(db, nhs)
        if found:
            return found
    with db.read() as c:
        rows = c.all(
            "SELECT p.id, COUNT(f.patient) FROM partner p LEFT JOIN patient_facts f "
            "ON f.managing_org = 'Organization/' || p.id WHERE p.kind = 'trust' "
            "GROUP BY p.id ORDER BY 2 DESC, 1"
        )
    if not rows:
        raise _fail(
            "no trust is registered to act as: `carebridge partner add --kind trust ...`, or give --partner"
        )
    if len(rows) > 1 and rows[0][1] == rows[1][1]:
        names = ", ".join(r[0] for r in rows)
        raise _fail(f"several trusts could be the custodian ({names}): say which with --partner")
    return rows[0][0]


@map_app.command("import")
def import_(
    files: list[Path] = typer.Argument(
        ..., help="care-plan files: *.json, *.xml, caseload *.csv (+ sections *.csv)"
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="json | xml | csv (default: from each file's extension)"
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="check and report what would change; write nothing"
    ),
    out: Path | None = typer.Option(None, "--out", help="also write the transaction Bundle(s) to this file"),
    database: str | None = DatabaseOpt,
    base_url: str | None = BaseUrlOpt,
    token: str | None = TokenOpt,
    partner: str | None = PartnerOpt,
) -> None:
    """Import local care-plan records as FHIR care-plan families, one atomic Bundle per person."""
    import orjson

    from carebridge.server.map_import import import_record, read_records

    if fmt is not None and fmt not in ("json", "xml", "csv"):
        raise _fail("--format is json, xml or csv")
    records = read_records(files, fmt)
    target = _target(database, base_url, token, partner)
    who = target.identity
    verb = "Checking" if dry_run else "Importing"
    console.print(
        f"{verb} {len(records)} record(s) from {len(files)} file(s) as {who.name} ({who.partner_id})"
    )
    counts: Counter[str] = Counter()
    problems = []
    bundles = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, transient=False, disable=not records) as progress:
            task = progress.add_task(verb.lower(), total=len(records))
            for record in records:
                result = import_record(record, target, dry_run=dry_run)
                counts[result.outcome] += 1
                problems += result.problems
                if result.bundle is not None and result.bundle["entry"]:
                    bundles.append(result.bundle)
                progress.advance(task)
    finally:
        target.close()
    table = Table(title="would be (dry run)" if dry_run else None)
    for outcome in OUTCOMES:
        table.add_column(outcome, justify="right")
    table.add_row(*(str(counts[o]) for o in OUTCOMES))
    console.print(table)
    for p in problems:
        err.print(f"[red]error[/red] {p}", soft_wrap=True, highlight=False)
    if out is not None:
        if len(bundles) == 1:
            data = bundles[0]
        else:
            data = {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": b} for b in bundles],
            }
        out.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        console.print(f"wrote {len(bundles)} transaction Bundle(s) to {out}")
    if counts["failed"]:
        raise typer.Exit(1)


@map_app.command("export")
def export(
    patient: str = typer.Option(..., "--patient", help="the person's NHS number"),
    fmt: str = typer.Option("json", "--format", help="json | xml | html"),
    out: Path | None = typer.Option(None, "--out", help="write here instead of to standard output"),
    database: str | None = DatabaseOpt,
    base_url: str | None = BaseUrlOpt,
    token: str | None = TokenOpt,
    partner: str | None = PartnerOpt,
) -> None:
    """Write a person's care plan, as the partner may see it, as JSON, XML or a plain-language HTML page."""
    from datetime import date

    from carebridge.server.map_export import FORMATS, NotFound, export_plan
    from carebridge.server.map_target import TargetError

    if fmt not in FORMATS:
        raise _fail("--format is json, xml or html")
    target = _target(database, base_url, token, partner, nhs=patient)
    try:
        data = export_plan(target, patient, fmt, prepared_on=date.today().isoformat())
    except (NotFound, TargetError) as exc:
        raise _fail(str(exc), 1) from None
    finally:
        target.close()
    who = f"as {target.identity.name} ({target.identity.partner_id})"
    if out is None:
        sys.stdout.buffer.write(data)
        err.print(f"exported {who}")
    else:
        out.write_bytes(data)
        err.print(f"wrote {out} ({len(data)} bytes), exported {who}")
