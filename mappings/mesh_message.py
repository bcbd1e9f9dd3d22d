"""FHIR R4 messages carried by MESH (CONTRACTS.md section 9), pure building and parsing.

Outbound: a GP transfer notice as a `message` Bundle: MessageHeader first, then the
Communication, the parent transfer Task (each only as disclosed to the GP) and a
plain-language HTML summary of the handover as a DocumentReference.
Inbound: a partner's message Bundle read into what carebridge should do with it; anything
else is refused with a reason (the caller quarantines it).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

import orjson

from .vocabulary import CANONICAL_BASE, GP_TRANSFER_NOTICE, MESSAGE_EVENT_SYSTEM, MESSAGE_EVENTS

SUMMARY_TYPE = {"system": "http://loinc.org", "code": "18761-7", "display": "Transfer summary note"}
ACK_CODES = {"ok", "transient-error", "fatal-error"}


def local_id(communication_id: str) -> str:
    """One notification, one local id: MESH and carebridge both use it to spot re-sends."""
    return f"cb-{communication_id}"


def handover_summary(communication: dict, task: dict | None) -> str:
    """The handover in plain words, as a small HTML page (only what the GP may see)."""
    said = " ".join(p.get("contentString", "") for p in communication.get("payload") or [])
    lines = [f"<p>{html.escape(said)}</p>"] if said else []
    if task is not None:
        period = task.get("executionPeriod") or {}
        if period.get("start"):
            lines.append(
                f"<p>The handover runs from {html.escape(period['start'])}"
                + (f" to {html.escape(period['end'])}" if period.get("end") else "")
                + ".</p>"
            )
        lines.append(f"<p>Its current state: {html.escape(task.get('status', 'unknown'))}.</p>")
    body = "\n".join(lines) or "<p>A transfer of care has been planned.</p>"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Transfer of care</title></head>'
        f"<body><h1>Transfer of care</h1>\n{body}\n</body></html>"
    )


def notification_bundle(
    *,
    message_id: str,
    communication: dict,
    task: dict | None,
    source_endpoint: str,
    destination_endpoint: str,
    sender: str | None,
    receiver: str,
    timestamp: str,
) -> dict:
    """The message Bundle for one GP transfer notice; `message_id` is the local id."""
    summary = handover_summary(communication, task)
    doc_id = f"{message_id}-summary"
    focus = [{"reference": f"Communication/{communication['id']}"}]
    header: dict = {
        "resourceType": "MessageHeader",
        "id": message_id,
        "eventCoding": _event(GP_TRANSFER_NOTICE),
        "destination": [{"endpoint": destination_endpoint, "receiver": {"reference": receiver}}],
        "source": {"name": "carebridge", "endpoint": source_endpoint},
        "focus": focus,
    }
    if sender:
        header["sender"] = {"reference": sender}
    doc = {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "status": "current",
        "type": {"coding": [SUMMARY_TYPE]},
        "date": timestamp,
        "description": "The handover in plain words",
        "content": [
            {
                "attachment": {
                    "contentType": "text/html",
                    "language": "en-GB",
                    "data": base64.b64encode(summary.encode()).decode(),
                    "title": "Transfer of care",
                }
            }
        ],
        "context": {"related": [{"reference": f"Communication/{communication['id']}"}]},
    }
    if communication.get("subject"):
        doc["subject"] = communication["subject"]
    resources = [header, communication, *([task] if task is not None else []), doc]
    return {
        "resourceType": "Bundle",
        "id": message_id,
        "type": "message",
        "timestamp": timestamp,
        "entry": [{"fullUrl": _full_url(r), "resource": r} for r in resources],
    }


def record_message(
    *,
    message_id: str,
    action: str,
    reference: str,
    resource: dict | None,
    source_endpoint: str,
    destination_endpoint: str,
    timestamp: str,
) -> dict:
    """One outbox delivery as a message: the shared record as disclosed (`update`), or a
    request to delete the partner's copy of `reference` (`recall`, no resource)."""
    header = {
        "resourceType": "MessageHeader",
        "id": message_id,
        "eventCoding": _event(f"shared-record-{action}"),
        "destination": [{"endpoint": destination_endpoint}],
        "source": {"name": "carebridge", "endpoint": source_endpoint},
        "focus": [{"reference": reference}],
    }
    entries = [header, *([resource] if resource is not None else [])]
    return {
        "resourceType": "Bundle",
        "id": message_id,
        "type": "message",
        "timestamp": timestamp,
        "entry": [{"fullUrl": _full_url(r), "resource": r} for r in entries],
    }


def ack_bundle(*, message_id: str, acked: str, timestamp: str, code: str = "ok") -> dict:
    """A business acknowledgement of message `acked` (what a GP system sends back)."""
    header = {
        "resourceType": "MessageHeader",
        "id": message_id,
        "eventCoding": _event("transfer-gp-notification-ack"),
        "source": {"endpoint": "urn:gp"},
        "response": {"identifier": acked, "code": code},
    }
    return {
        "resourceType": "Bundle",
        "id": message_id,
        "type": "message",
        "timestamp": timestamp,
        "entry": [{"fullUrl": _full_url(header), "resource": header}],
    }


@dataclass
class Parsed:
    """What an inbound message asks for: an acknowledgement of one of ours, or records."""

    header_id: str
    acknowledges: str | None = None  # the local id of our message it answers
    ack_code: str | None = None
    communications: list[dict] = field(default_factory=list)
    task_updates: list[dict] = field(default_factory=list)  # {"id", "status", "note"?}


class Unreadable(ValueError):
    """Not a FHIR message carebridge can take; the text is the reason kept with it."""


def parse(body: bytes) -> Parsed:
    try:
        bundle = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Unreadable(f"not JSON: {exc}") from exc
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise Unreadable("not a FHIR Bundle")
    if bundle.get("type") != "message":
        raise Unreadable(f"a Bundle of type {bundle.get('type')!r}, not 'message'")
    entries = [e.get("resource") for e in bundle.get("entry") or [] if isinstance(e, dict)]
    if not entries or not isinstance(entries[0], dict) or entries[0].get("resourceType") != "MessageHeader":
        raise Unreadable("the first entry is not a MessageHeader")
    header = entries[0]
    if not header.get("id"):
        raise Unreadable("the MessageHeader has no id")
    out = Parsed(header_id=str(header["id"]))
    response = header.get("response")
    if isinstance(response, dict):
        if not response.get("identifier") or response.get("code") not in ACK_CODES:
            raise Unreadable("a response without an identifier or a valid code")
        out.acknowledges, out.ack_code = str(response["identifier"]), response["code"]
        return out
    for r in entries[1:]:
        if not isinstance(r, dict):
            raise Unreadable("an entry without a resource")
        if r.get("resourceType") == "Communication":
            if not (r.get("subject") or {}).get("reference"):
                raise Unreadable("a Communication without a subject")
            out.communications.append(r)
        elif r.get("resourceType") == "Task":
            if not r.get("id") or not r.get("status"):
                raise Unreadable("a Task update without an id or status")
            out.task_updates.append({"id": r["id"], "status": r["status"], "note": r.get("note")})
    if not out.communications and not out.task_updates:
        raise Unreadable("a message with nothing carebridge can take (no Communication, no Task)")
    return out


def _event(code: str) -> dict:
    return {"system": MESSAGE_EVENT_SYSTEM, "code": code, "display": MESSAGE_EVENTS[code]}


def _full_url(resource: dict) -> str:
    return f"{CANONICAL_BASE}/{resource['resourceType']}/{resource['id']}"
