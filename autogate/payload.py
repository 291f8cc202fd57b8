"""Turn the core's ``Publish`` actions into wire payloads (topic leaf + JSON dict).

Stamps what the pure core cannot know (event id, time, site, gate) and keeps personal
data to what each topic's consumers need: a crossing carries a hashed and a masked
document number only; a referral carries what an officer needs to decide.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from typing import Any

from gate.actions import AckCommand, EventType, Publish
from gate.reasons import text
from gate.results import MrzRecord

SCHEMA_VERSION = 1

TOPIC_LEAF = {
    EventType.CROSSING_ACCEPTED: "event/crossing",
    EventType.CROSSING_ABORTED: "event/crossing",
    EventType.REFERRAL_OPENED: "event/referral",
    EventType.REFERRAL_RESOLVED: "event/referral",
    EventType.ALARM_RAISED: "event/alarm",
    EventType.ALARM_CLEARED: "event/alarm",
    EventType.GATE_STATUS: "status",
    EventType.COMMAND_ACK: "cmd-ack",
}


def mask_number(number: str) -> str:
    """Keep the last three characters: enough for an officer to match a document."""
    return "*" * max(0, len(number) - 3) + number[-3:]


def hash_number(number: str, issuing_state: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}|{issuing_state}|{number}".encode()).hexdigest()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _document(mrz: MrzRecord, full: bool, salt: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "document_code": mrz.document_code,
        "issuing_state": mrz.issuing_state,
        "nationality": mrz.nationality,
        "number_masked": mask_number(mrz.document_number),
        "number_hash": hash_number(mrz.document_number, mrz.issuing_state, salt),
    }
    if full:  # the referral topic: what an officer needs on screen
        doc |= {
            "document_number": mrz.document_number,
            "surname": mrz.surname,
            "given_names": mrz.given_names,
            "date_of_birth": mrz.date_of_birth.isoformat() if mrz.date_of_birth else None,
            "date_of_expiry": mrz.date_of_expiry.isoformat() if mrz.date_of_expiry else None,
            "sex": mrz.sex,
        }
    return doc


def event_payload(
    act: Publish, site: str, gate: str, now: float, salt: str = ""
) -> tuple[str, dict[str, Any]]:
    """Wire form of one event; returns (topic leaf, payload)."""
    data = dict(act.data)
    full = act.type is EventType.REFERRAL_OPENED
    mrz = data.pop("mrz", None)
    body: dict[str, Any] = {
        "schema": f"autogate/{act.type.value}/v{SCHEMA_VERSION}",
        "type": act.type.value,
        "event_id": str(uuid.uuid4()),
        "site": site,
        "gate": gate,
        "ts": dt.datetime.fromtimestamp(now, dt.UTC).isoformat().replace("+00:00", "Z"),
        "txn_id": act.txn_id,
        "reasons": [{"code": r.value, "text": text(r)} for r in act.reasons],
    }
    if isinstance(mrz, MrzRecord):
        body["document"] = _document(mrz, full, salt)
    for key in ("chip", "face", "lists"):
        if key in data:
            body[key] = _plain(data.pop(key))
            if key == "chip" and isinstance(body[key], dict):
                body[key].pop("dg1", None)  # the document block already says what matters
    body.update(_plain(data))
    return TOPIC_LEAF[act.type], body


def ack_payload(ack: AckCommand, site: str, gate: str, now: float) -> tuple[str, dict[str, Any]]:
    return TOPIC_LEAF[EventType.COMMAND_ACK], {
        "schema": f"autogate/command.ack/v{SCHEMA_VERSION}",
        "type": EventType.COMMAND_ACK.value,
        "event_id": str(uuid.uuid4()),
        "site": site,
        "gate": gate,
        "ts": dt.datetime.fromtimestamp(now, dt.UTC).isoformat().replace("+00:00", "Z"),
        "command": ack.command.value,
        "command_id": ack.command_id,
        "accepted": ack.accepted,
        "detail": ack.detail,
    }
