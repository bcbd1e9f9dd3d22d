"""Partner exchange in the app: the bulk export routes, and the delivery worker that runs
beside the server for as long as the app does (CAREBRIDGE_OUTBOX_WORKER=0 turns it off,
e.g. for a process that should only serve reads).
"""

from __future__ import annotations

import os

from carebridge.server import export, mesh_worker
from carebridge.server.delivery_worker import DeliveryWorker
from carebridge.server.http import Kit


def register(kit: Kit) -> None:
    export.register(kit)
    if os.environ.get("CAREBRIDGE_OUTBOX_WORKER", "1") == "0":
        return
    worker = DeliveryWorker(kit.state.db)
    kit.app.state.delivery = worker
    kit.app.router.on_startup.append(worker.start)
    kit.app.router.on_shutdown.append(worker.stop)
    mesh_worker.register(kit)  # MESH beside HTTP, when CAREBRIDGE_MESH_URL is set
