"""One MESH round: send due notices, track what was sent, take in what arrived.
Run by `carebridge mesh poll` and, when MESH is configured, by the server's worker."""

from __future__ import annotations

from dataclasses import asdict

from carebridge.adapters.mesh import Mesh, MeshConfig, MeshError
from carebridge.server import mesh_inbound, mesh_outbound
from carebridge.server.audit import AuditWriter
from carebridge.server.db import Database


def run_once(db: Database, cfg: MeshConfig, mesh: Mesh | None = None) -> dict:
    client = mesh or Mesh(cfg)
    audit = AuditWriter(db)
    try:
        sent = mesh_outbound.send_due(db, client, cfg.mailbox, audit)
        tracked = mesh_outbound.track(db, client)
        try:
            polled = asdict(mesh_inbound.poll(db, client))
        except MeshError as exc:  # the inbox could not be listed: try again next round
            polled = {"error": str(exc)}
        return {"outbound": asdict(sent), "tracking": asdict(tracked), "inbound": polled}
    finally:
        audit.close()
        if mesh is None:
            client.close()
