"""Wire events as gates publish them, for the ingest tests."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from gate import events
from gate.actions import EventType, Publish
from gate.reasons import ReasonCode

KEY = b"national-document-key-for-tests"
SITE = "kul1"


def crossing(
    number: str = "AB1234567",
    *,
    gate: str = "g01",
    direction: str = "arrival",
    nationality: str = "UTO",
    ts: dt.datetime | None = None,
    event_id: str | None = None,
) -> tuple[str, dict[str, Any]]:
    act = Publish(
        EventType.CROSSING_ACCEPTED,
        txn_id=uuid.uuid4().hex[:12],
        data={
            "direction": direction,
            "document": {
                "document_code": "P",
                "issuing_state": nationality,
                "nationality": nationality,
                "document_number": number,
            },
        },
    )
    return _wire(act, gate, ts, event_id)


def referral(number: str = "AB1234567", *, gate: str = "g01") -> tuple[str, dict[str, Any]]:
    act = Publish(
        EventType.REFERRAL_OPENED,
        txn_id=uuid.uuid4().hex[:12],
        reasons=(ReasonCode.DOC_EXPIRED,),
        data={
            "document": {
                "document_code": "P",
                "issuing_state": "UTO",
                "document_number": number,
                "surname": "ERIKSSON",
                "given_names": "ANNA MARIA",
                "nationality": "UTO",
                "date_of_birth": "1974-08-12",
                "sex": "F",
                "date_of_expiry": "2012-04-15",
            }
        },
    )
    return _wire(act, gate, None, None)


def alarm(gate: str = "g01") -> tuple[str, dict[str, Any]]:
    act = Publish(EventType.ALARM_RAISED, reasons=(ReasonCode.GATE_TAILGATING,), data={})
    return _wire(act, gate, None, None)


def _wire(
    act: Publish, gate: str, ts: dt.datetime | None, event_id: str | None
) -> tuple[str, dict[str, Any]]:
    payload = events.build_payload(
        act,
        site=SITE,
        gate=gate,
        ts=ts or dt.datetime.now(dt.UTC),
        event_id=event_id or str(uuid.uuid4()),
        document_key=KEY,
    )
    return events.topic(SITE, gate, events.topic_leaf(act.type)), payload


def raw(topic_payload: tuple[str, dict[str, Any]]) -> tuple[str, bytes]:
    t, p = topic_payload
    return t, json.dumps(p).encode()
