"""From a gate's MQTT message to the row the central record keeps (pure, no I/O).

The centre keeps what it needs to answer "when did this document last enter, and was it
referred", and no more: the document number only as the national keyed hash
(HMAC-SHA256, ``gate.events.hash_document_number``) plus its last three characters;
names, birth dates, portraits and face scores of referral events are dropped here, so they
never reach the database. A message that is not a valid event of ours becomes a
``Reject`` (kept apart, with the reason) rather than being lost or crashing a worker.

One reading: the bytes are parsed by ``gate.strictjson`` (UTF-8 only, no duplicate key at
any depth, no NaN or Infinity, no overflowing float or inexact integer, no unpaired
surrogate), after a size and a nesting bound that cost one pass in C, and then checked
against the event's JSON Schema. An event another reader could read differently (a
second ``"direction"`` that ``json.loads`` kept and a first-key reader did not) is refused
as malformed before any field is used.
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

from gate import events, strictjson

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
# The schemas' bounds (64 reasons, a 500-character detail, 32 timings, 64-character
# names) keep a valid event under about 13 KB even with every character \u-escaped; the
# bounds leave room and cap what one message costs before it is parsed.
MAX_EVENT_BYTES = 32 * 1024
MAX_DEPTH = 8  # a valid event nests 3 deep (event, document or timings, nothing below)
_SCHEMA_ID = re.compile(r"[a-z][a-z.]{0,30}/[0-9]{1,3}")


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
    """A refused message as an operator needs it to find the gate and the fault: where,
    when (the row's ``received_at``), why, how large, and the SHA-256 of its bytes (to
    match the gate's copy), never the bytes: a broken or hostile gate's message may hold
    a traveller's names and number (docs/ingest.md). ``payload`` is kept only when our
    own code failed on the message (``internal``): it may be a valid event the record
    lacks, to replay once the bug is fixed; the purge bounds how long."""

    digest: str  # SHA-256 of topic, NUL, bytes: the key, so a redelivery is kept once
    topic: str
    site: str | None
    gate: str | None
    size: int
    sha256: str
    error: str
    payload: bytes | None = None

    @classmethod
    def of(cls, topic: str, payload: bytes, error: str, *, internal: bool = False) -> Reject:
        digest = hashlib.sha256(topic.encode("utf-8", "replace") + b"\0" + payload).hexdigest()
        site, gate, shown = where(topic)
        return cls(
            digest,
            shown,
            site,
            gate,
            len(payload),
            hashlib.sha256(payload).hexdigest(),
            error[:500],
            payload if internal else None,
        )


def where(topic: str) -> tuple[str | None, str | None, str]:
    """Site, gate and the topic as kept: whole when it has the six levels of ours, else
    its first four levels and its shape (a level is the sender's text, of any length)."""
    parts = topic.split("/")
    site = parts[2][:64] if len(parts) > 3 else None
    gate = parts[3][:64] if len(parts) > 3 else None
    if len(parts) == 6 and len(topic) <= 300:
        return site, gate, topic
    head = "/".join(p[:64] for p in parts[:4])
    return site, gate, f"{head}/... ({len(parts)} levels, {len(topic)} characters)"


def quarantined(topic: str, payload: bytes, record: Row | Reject) -> dict[str, Any]:
    """What ``quarantine`` keeps of a record the database refused: where it came from and
    a row's table and values (JSON: enough to insert it again, and nothing the record
    would not hold), never the message's bytes; a reject keeps no record."""
    site, gate, shown = where(topic)
    kept: str | None = None
    if isinstance(record, Row):
        values = dict(zip(COLUMNS[record.table], record.values, strict=True))
        kept = json.dumps({"table": record.table, "values": values}, default=str)
    return {
        "topic": shown,
        "site": site,
        "gate": gate,
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "record": kept,
    }


def to_record(topic: str, payload: bytes, document_key: bytes) -> Row | Reject | None:
    """The row for one message on ``autogate/v1/{site}/{gate}/event/...``, or why not;
    ``None`` for a topic the centre does not record (photos)."""
    if not topic.endswith(RECORDED_LEAVES):
        return None

    def reject(error: str) -> Reject:
        return Reject.of(topic, payload, error)

    if b"\\u0000" in payload:  # PostgreSQL text cannot hold it: the batch would never commit
        return reject("a NUL character in a string")
    try:
        msg = strictjson.loads(payload, max_bytes=MAX_EVENT_BYTES, max_depth=MAX_DEPTH)
    except strictjson.StrictJsonError as exc:
        return reject(f"malformed: {exc}")
    if not isinstance(msg, dict):
        return reject("not a JSON object")
    sid = msg.get("schema")
    table = _TABLE_OF_SCHEMA.get(sid) if isinstance(sid, str) else None
    if table is None:
        # the value is quoted only when it looks like a schema id: never a sender's text
        shown = repr(sid) if isinstance(sid, str) and _SCHEMA_ID.fullmatch(sid) else "(other)"
        return reject(f"schema {shown} is not recorded centrally")
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
