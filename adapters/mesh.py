"""MESH I/O through NHS England's official `mesh-client`: configuration from the
environment (CONTRACTS.md section 9) and a thin client. No database, no FHIR here.

Secrets (password, shared key, key file path) live only in the environment and in this
object; `MeshConfig.__repr__` hides them so they never reach a log line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import mesh_client
import requests

DEFAULT_WORKFLOW = "CAREBRIDGE_TRANSFER_NOTIFICATION"
ACK_WORKFLOW = "CAREBRIDGE_TRANSFER_NOTIFICATION_ACK"
RECORD_WORKFLOW = "CAREBRIDGE_SHARED_RECORD"  # the registry push, when it goes by MESH
FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class MeshConfig:
    url: str
    mailbox: str
    password: str = field(repr=False)
    shared_key: str = field(repr=False)
    cert: str | None = None
    key: str | None = field(default=None, repr=False)
    ca: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> MeshConfig | None:
        """None when CAREBRIDGE_MESH_URL is unset: MESH is off."""
        e = os.environ if env is None else env
        url = e.get("CAREBRIDGE_MESH_URL", "").strip()
        if not url:
            return None
        return cls(
            url=url,
            mailbox=e.get("CAREBRIDGE_MESH_MAILBOX", ""),
            password=e.get("CAREBRIDGE_MESH_PASSWORD", ""),
            shared_key=e.get("CAREBRIDGE_MESH_SHARED_KEY", ""),
            cert=e.get("CAREBRIDGE_MESH_CERT") or None,
            key=e.get("CAREBRIDGE_MESH_KEY") or None,
            ca=e.get("CAREBRIDGE_MESH_CA") or None,
        )


@dataclass(frozen=True)
class Inbound:
    message_id: str
    sender: str | None
    workflow_id: str | None
    local_id: str | None
    body: bytes


class MeshError(Exception):
    """MESH could not be reached or refused the request (retry later)."""


class Mesh:
    """carebridge's own mailbox. Every network failure surfaces as MeshError."""

    def __init__(self, cfg: MeshConfig, *, max_chunk_size: int = 75 * 1024 * 1024) -> None:
        cert = (cfg.cert, cfg.key) if cfg.cert and cfg.key else None
        self._client = mesh_client.MeshClient(
            cfg.url,
            cfg.mailbox,
            cfg.password,
            shared_key=cfg.shared_key.encode(),
            cert=cert,  # type: ignore[arg-type]
            verify=cfg.ca if cfg.ca else None,
            max_chunk_size=max_chunk_size,
            max_retries=0,  # the outbox retries, with its own backoff
            timeout=30,
            application_name="carebridge",
        )

    def close(self) -> None:
        self._client.close()

    def send(self, recipient: str, body: bytes, *, workflow_id: str, local_id: str, subject: str) -> str:
        try:
            return self._client.send_message(
                recipient,
                body,
                workflow_id=workflow_id,
                local_id=local_id,
                subject=subject,
                content_type=FHIR_JSON,
            )
        except (requests.RequestException, mesh_client.MeshError) as exc:
            raise MeshError(_plain(exc)) from exc

    def sent_with_local_id(self, local_id: str) -> str | None:
        """The message id MESH already holds for this local id, if an earlier send got there
        (its answer lost on the way back). mesh-client has no call for this tracking route."""
        url = f"{self._client.mailbox_url}/outbox/tracking/{requests.utils.quote(local_id)}"
        try:
            r = self._client._session.get(url, timeout=30)  # noqa: SLF001 - the client's authed session
        except requests.RequestException as exc:
            raise MeshError(_plain(exc)) from exc
        if r.status_code == 404:
            return None
        if r.status_code == 300:  # more than one already: certainly sent, never send again
            return "(several)"
        if r.status_code >= 400:
            raise MeshError(f"MESH tracking answered {r.status_code}")
        found = r.json()
        if isinstance(found, list):
            found = found[0] if found else {}
        return found.get("messageId") or found.get("message_id") or found.get("messageID") or "(unknown)"

    def track(self, message_id: str) -> dict:
        try:
            return dict(self._client.track_message(message_id))
        except requests.RequestException as exc:
            raise MeshError(_plain(exc)) from exc

    def inbox(self) -> list[str]:
        try:
            return list(self._client.list_messages())
        except requests.RequestException as exc:
            raise MeshError(_plain(exc)) from exc

    def fetch(self, message_id: str) -> Inbound:
        """The whole message; mesh-client joins chunked messages as it reads."""
        try:
            msg = self._client.retrieve_message(message_id)
            try:  # not `with msg`: that would acknowledge before carebridge has stored it
                body = msg.read()
            finally:
                msg.close()
            return Inbound(
                message_id,
                msg.mex_header("from"),
                msg.mex_header("workflowid"),
                msg.mex_header("localid"),
                body,
            )
        except requests.RequestException as exc:
            raise MeshError(_plain(exc)) from exc

    def acknowledge(self, message_id: str) -> None:
        try:
            self._client.acknowledge_message(message_id)
        except requests.RequestException as exc:
            raise MeshError(_plain(exc)) from exc


def _plain(exc: Exception) -> str:
    # Only the kind of failure and the HTTP status: URLs and headers may carry credentials.
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")
