"""`carebridge mesh poll`: one MESH round (CONTRACTS.md sections 7 and 9)."""

from __future__ import annotations

import json
import sys

import typer

from carebridge.adapters.mesh import MeshConfig

mesh_app = typer.Typer(help="NHS MESH: GP notices out, partners' messages in.", no_args_is_help=True)
DatabaseOpt = typer.Option(None, "--database", help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB")


@mesh_app.command("poll")
def poll(database: str | None = DatabaseOpt) -> None:
    """Send due notices, track them, and fetch, store and acknowledge inbound messages, once."""
    from carebridge.server.cli import err, open_db
    from carebridge.server.mesh_round import run_once

    cfg = MeshConfig.from_env()
    if cfg is None:
        err.print("MESH is off: set CAREBRIDGE_MESH_URL (and the mailbox settings) to use it")
        raise typer.Exit(2)
    result = run_once(open_db(database), cfg)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
