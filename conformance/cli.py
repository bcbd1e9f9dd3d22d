"""`carebridge conformance run|config`: the suites from the command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    help="Conformance suites (FHIR TestScripts) for any FHIR R4 server, carebridge or a partner's.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)


@app.command("run")
def run_command(
    report: Path = typer.Option(
        ..., "--report", help="directory for report.html, junit.xml, testreport.json"
    ),
    base_url: str | None = typer.Option(
        None, "--base-url", help="the FHIR base URL (else base_url in --config)"
    ),
    config: Path | None = typer.Option(
        None, "--config", help="TOML: roles (tokens or SMART keys), variables"
    ),
    suite: list[str] = typer.Option([], "--suite", help="suite to run (repeatable; default: all)"),
    script: list[Path] = typer.Option(
        [], "--script", help="an extra TestScript JSON file to run (repeatable)"
    ),
    fixtures: list[Path] = typer.Option(
        [], "--fixtures", help="a directory of fixture resources (repeatable)"
    ),
    var: list[str] = typer.Option([], "--var", help="NAME=VALUE for a TestScript variable (repeatable)"),
) -> None:
    """Run suites against a server; exit 1 if any test fails."""
    from carebridge.conformance import config as cfg
    from carebridge.conformance import runner, suites
    from carebridge.conformance.engine import Engine
    from carebridge.conformance.reports import write_reports
    from carebridge.conformance.smart import TokenError

    try:
        conf = cfg.load(config) if config else cfg.Config()
    except cfg.ConfigError as exc:
        err.print(f"[red]config:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    url = base_url or conf.base_url
    if not url:
        err.print("[red]give --base-url (or base_url in --config)[/red]")
        raise typer.Exit(2)
    unknown = [s for s in suite if s not in suites.names()]
    if unknown:
        err.print(f"[red]no suite {', '.join(unknown)}[/red]; the suites are: {', '.join(suites.names())}")
        raise typer.Exit(2)
    for item in var:
        name, sep, value = item.partition("=")
        if not sep:
            err.print(f"[red]--var {escape(item)}: write NAME=VALUE[/red]")
            raise typer.Exit(2)
        conf.variables[name] = value
    try:
        settings = cfg.settings(conf, url, fixture_dirs=list(fixtures))
    except (TokenError, OSError, ValueError) as exc:
        err.print(f"[red]cannot get a token:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    # No --suite: every suite, unless only extra --script files were asked for.
    items = runner.select(suite or (None if not script else []), script)
    engine = Engine(settings)
    console.print(f"Running {len(items)} TestScript(s) against [bold]{escape(url)}[/bold]")
    try:
        results = runner.run(engine, items, on_result=_progress)
    finally:
        engine.close()
    paths = write_reports(results, report)
    failed = runner.failed(results)
    tests = [t for r in results for t in r.tests]
    n_fail = sum(1 for t in tests if t.result in ("fail", "error")) + sum(
        1 for r in results if r.setup_failure
    )
    n_pass = sum(1 for t in tests if t.result == "pass")
    n_skip = sum(1 for r in results if r.not_applicable)
    style = "red" if failed else "green"
    console.print(
        f"[{style} bold]{'FAIL' if failed else 'PASS'}[/]: {n_pass} passed, {n_fail} failed, "
        f"{n_skip} script(s) not applicable. Reports: {', '.join(str(p) for p in paths)}"
    )
    raise typer.Exit(1 if failed else 0)


def _progress(result: object) -> None:
    from carebridge.conformance.results import ScriptResult

    assert isinstance(result, ScriptResult)
    marks = {"pass": "[green]PASS[/green]", "fail": "[red]FAIL[/red]", "skip": "[yellow]SKIP[/yellow]"}
    console.print(
        f"{marks[result.result]} {escape(result.suite)}/{escape(result.id)}  {escape(result.title)}"
    )
    if result.not_applicable:
        console.print(f"      not applicable: {escape(result.not_applicable)}")
    if result.setup_failure:
        f = result.setup_failure
        console.print(f"      [red]setup failed[/red]: {escape(f.description)}: {escape(f.message)}")
    for t in result.tests:
        if t.result in ("fail", "error") and t.failure is not None:
            console.print(f"      [red]x[/red] {escape(t.name)}: {escape(t.failure.message)}")


@app.command("config")
def config_command(
    database: str = typer.Option(
        ..., "--database", help="the carebridge database: sqlite:///PATH or postgresql://..."
    ),
    base_url: str = typer.Option("http://127.0.0.1:8080/fhir", "--base-url", help="written into the TOML"),
    ttl: int = typer.Option(86400, "--ttl", help="token lifetime in seconds"),
) -> None:
    """Register the partners the suites act as on a carebridge database; print the TOML."""
    from carebridge.conformance import register
    from carebridge.server.db import Database, DatabaseUnavailable

    try:
        db = Database(database)
    except (DatabaseUnavailable, ValueError) as exc:
        err.print(f"[red]cannot open the database:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    try:
        register.register(db)
        text = register.toml(base_url, register.roles(db, ttl=ttl))
    finally:
        db.close()
    typer.echo(text)
