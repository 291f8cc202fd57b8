"""From a gate's MQTT message to the row the central record keeps (pure, no I/O).

The centre keeps what it needs to answer "when did this document last enter, and was it
referred", and no more: the document number only as the national keyed hash
(HMAC-SHA256, ``gate.events.hash_document_number``) plus its last three characters;
names, birth dates, portraits and face scores of referral events are dropped here, so they
never reach the database. A message that is not a valid event of ours becomes a
``Reject`` (kept apart, with the reason) rather than being lost or crashing a worker.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeGuard

import fastjsonschema

from gate import events

TABLES = ("crossings", "referrals", "alarms")
# columns of each table, in insert order (``event_id`` is the idempotency key)
COLUMNS: dict[str, tuple[str, ...]] = {
    "crossings": (
        "event_id",
        "site",
        "gate",
        "ts",
        "type",
        "txn_id",
        "direction",
        "decision",
        "reasons",
        "number_hash",
        "number_masked",
        "nationality",
        "issuing_state",
        "document_code",
    ),
    "referrals": (
        "event_id",
        "site",
        "gate",
        "ts",
        "type",
        "txn_id",
        "direction",
        "reasons",
        "number_hash",
        "number_masked",
        "nationality",
        "issuing_state",
        "document_code",
        "resolution",
        "officer",
    ),
    "alarms": ("event_id", "site", "gate", "ts", "type", "device", "state", "reasons", "detail"),
}
_TABLE_OF_SCHEMA = {"crossing/1": "crossings", "referral/1": "referrals", "alarm/1": "alarms"}
# topic leaves the centre records; others under event/ (the referral photos of
# console/images.py) are for the site's officers only and are not kept here
RECORDED_LEAVES = ("event/crossing", "event/referral", "event/alarm")


# what a document number may be when someone asks the record (query CLI, entry service):
# ASCII letters and digits only (str.isalnum() also passes "Ä" or "１", which the hash,
# ASCII by design, refused with a traceback)
_DOCUMENT_NUMBER = re.compile(r"[A-Za-z0-9]{1,20}")


def is_document_number(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _DOCUMENT_NUMBER.fullmatch(value) is not None


@dataclass(frozen=True)
class Row:
    table: str
    values: tuple[Any, ...]  # in COLUMNS[table] order; ``ts`` as the wire's ISO string

    @property
    def event_id(self) -> str:
        return str(self.values[0])


@dataclass(frozen=True)
class Reject:
    """A message kept for an engineer: its digest makes a redelivery land once."""

    digest: str
    topic: str
    payload: bytes
    error: str


def to_record(topic: str, payload: bytes, document_key: bytes) -> Row | Reject | None:
    """The row for one message on ``autogate/v1/{site}/{gate}/event/...``, or why not;
    ``None`` for a topic the centre does not record (photos)."""
    if not topic.endswith(RECORDED_LEAVES):
        return None

    def reject(error: str) -> Reject:
        digest = hashlib.sha256(topic.encode("utf-8", "replace") + b"\0" + payload).hexdigest()
        return Reject(digest, topic[:512], payload, error[:500])

    if b"\\u0000" in payload:  # PostgreSQL text cannot hold it: the batch would never commit
        return reject("a NUL character in a string")
    try:
        msg = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return reject(f"not JSON: {type(exc).__name__}: {exc}")
    if not isinstance(msg, dict):
        return reject("not a JSON object")
    sid = msg.get("schema")
    table = _TABLE_OF_SCHEMA.get(sid) if isinstance(sid, str) else None
    if table is None:
        return reject(f"schema {str(msg.get('schema'))[:40]!r} is not recorded centrally")
    try:
        validate(msg)
    except events.EventError as exc:
        return reject(str(exc))
    except RecursionError:
        return reject("nested too deeply")
    parts = topic.split("/")
    if len(parts) < 5 or parts[2] != msg["site"] or parts[3] != msg["gate"]:
        return reject("topic does not name the payload's site and gate")
    doc = _document(msg, document_key) if table != "alarms" else {}
    row: dict[str, Any] = {
        **msg,
        **doc,
        "reasons": json.dumps(msg.get("reasons", [])),
        "detail": msg.get("detail"),
    }
    return Row(table, tuple(row.get(c) for c in COLUMNS[table]))


def validate(msg: dict[str, Any]) -> None:
    """The gate's own JSON Schemas, compiled (fastjsonschema: ~13 us an event where
    jsonschema takes ~370 us, the whole of an ingest worker's budget); a refusal is
    re-explained by ``gate.events.validate`` so the reject names the field.
    ``tests/ingest/test_records.py`` checks both agree on mutated events."""
    sid = msg.get("schema")
    if not isinstance(sid, str) or sid not in _TABLE_OF_SCHEMA:
        events.validate(msg)  # raises naming the schema
        raise events.EventError(f"schema {str(sid)[:40]!r} is not recorded centrally")
    try:
        _compiled(sid)(msg)
    except fastjsonschema.JsonSchemaException as exc:
        events.validate(msg)  # raises with the gate's message
        raise events.EventError(f"{msg['schema']}: {getattr(exc, 'message', exc)}") from None


@cache
def _compiled(sid: str) -> Callable[[Any], Any]:
    schema = copy.deepcopy(events._validator(sid).schema)  # $refs inlined once
    schema.pop("$schema", None)  # 2020-12 id; the keywords used are draft-07's
    return fastjsonschema.compile(schema, formats={"date": _is_date})


def _is_date(value: str) -> bool:
    """As jsonschema's ``date`` format: YYYY-MM-DD and a real day."""
    if not (len(value) == 10 and value.isascii()):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _document(msg: dict[str, Any], key: bytes) -> dict[str, Any]:
    """Document columns: crossings arrive hashed; referrals carry the number in clear."""
    doc = msg.get("document") or {}
    out = {k: doc.get(k) for k in ("nationality", "issuing_state", "document_code")}
    if "number_hash" in doc:
        out["number_hash"] = doc["number_hash"]
        out["number_masked"] = doc.get("number_masked")
    elif doc.get("document_number"):
        out["number_hash"] = events.hash_document_number(doc["document_number"], key)
        out["number_masked"] = events.mask_document_number(doc["document_number"])
    return out
