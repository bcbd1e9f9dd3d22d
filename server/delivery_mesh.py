"""Outbox deliveries by NHS MESH, beside HTTP: for partners registered `--push-by mesh`.

Each delivery (already decided and audited when it was claimed) becomes one FHIR message
Bundle in the partner's mailbox: the record as disclosed, or a recall naming the record
to delete. Its MESH local id is derived from the delivery, so a retry first asks MESH
whether an earlier attempt got there (its answer lost) and does not send it twice.
"""

from __future__ import annotations

import hashlib
import threading

import orjson

from carebridge.adapters.mesh import RECORD_WORKFLOW, Mesh, MeshConfig, MeshError
from carebridge.adapters.push import Outcome
from carebridge.mappings.mesh_message import record_message
from carebridge.server.delivery import Delivery
from carebridge.server.instants import now_instant


def delivery_local_id(d: Delivery) -> str:
    """Stable across retries, distinct per partner, record, version and action."""
    key = f"{d.target}|{d.rtype}/{d.rid}|{d.version}|{d.action}"
    return "cb-" + hashlib.sha256(key.encode()).hexdigest()[:32]


class MeshTransport:
    """Sends from carebridge's own mailbox; one MESH client per sending thread."""

    def __init__(self, cfg: MeshConfig) -> None:
        self.cfg = cfg
        self._local = threading.local()
        self._clients: list[Mesh] = []
        self._lock = threading.Lock()

    def _mesh(self) -> Mesh:
        mesh = getattr(self._local, "mesh", None)
        if mesh is None:
            mesh = self._local.mesh = Mesh(self.cfg)
            with self._lock:
                self._clients.append(mesh)
        return mesh

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for mesh in clients:
            mesh.close()

    def send(self, d: Delivery) -> Outcome:
        if d.notify_only:
            return Outcome(False, None, "MESH carries records, not notices")
        lid = delivery_local_id(d)
        reference = f"{d.rtype}/{d.rid}"
        action = "recall" if d.action == "delete" else "update"
        message = record_message(
            message_id=lid,
            action=action,
            reference=reference,
            resource=orjson.loads(d.body) if action == "update" and d.body is not None else None,
            source_endpoint=f"mesh://{self.cfg.mailbox}",
            destination_endpoint=f"mesh://{d.base}",
            timestamp=now_instant(),
        )
        mesh = self._mesh()
        try:
            if d.attempts and mesh.sent_with_local_id(lid) is not None:
                return Outcome(True, 202)  # an earlier attempt got there
            mesh.send(
                d.base,
                orjson.dumps(message),
                workflow_id=RECORD_WORKFLOW,
                local_id=lid,
                subject=f"{'Recall of' if action == 'recall' else 'Shared record'} {reference}",
            )
        except MeshError as exc:
            return Outcome(False, None, f"MESH: {exc}")
        return Outcome(True, 202)
