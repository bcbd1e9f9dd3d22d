"""MESH in the server's background: a MESH round every CAREBRIDGE_MESH_POLL seconds
(default 60), only when CAREBRIDGE_MESH_URL is set. A failing round is logged and the next
one tries again; nothing here can stop the server."""

from __future__ import annotations

import logging
import os
import threading

from carebridge.adapters.mesh import MeshConfig
from carebridge.server.db import Database
from carebridge.server.http import Kit

log = logging.getLogger("carebridge.mesh")


class MeshWorker:
    def __init__(self, db: Database, cfg: MeshConfig, every: float) -> None:
        self.db, self.cfg, self.every = db, cfg, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="carebridge-mesh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        from carebridge.server.mesh_round import run_once

        while not self._stop.is_set():
            try:
                run_once(self.db, self.cfg)
            except Exception:  # MESH or the database away: the next round tries again
                log.exception("MESH round failed")
            self._stop.wait(self.every)


def register(kit: Kit) -> None:
    cfg = MeshConfig.from_env()
    if cfg is None:
        return  # MESH is off
    worker = MeshWorker(kit.state.db, cfg, float(os.environ.get("CAREBRIDGE_MESH_POLL", "60")))
    kit.app.state.mesh = worker
    kit.app.router.on_startup.append(worker.start)
    kit.app.router.on_shutdown.append(worker.stop)
