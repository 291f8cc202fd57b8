"""The gate's MQTT messages: wire payloads built from core actions, checked against schemas.

The core says *what* happened (``gate.actions.Publish``); this module says how it looks on
the wire: topic leaf per event type, envelope (``schema``, ``event_id``, ``site``,
``gate``, ``ts``), and how much personal data each topic may carry. Crossing events go to
dashboards and statistics, so the document number appears only as a keyed hash
(HMAC-SHA256, so it cannot be brute-forced from the small space of document numbers
without the site's key) and masked to its last three characters; referral events are for
the officer who must decide, so they carry the document's identity fields.

Pure: the only I/O is reading the packaged JSON Schemas once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, is_dataclass
from enum import Enum
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from jsonschema.exceptions import best_match

from gate.actions import AckCommand, EventType, Publish
from gate.results import MrzRecord

PREFIX = "autogate/v1"
SCHEMA_BASE = "https://autogate.dev/schemas/"

# event type -> (schema id, topic leaf)
_ROUTE: dict[EventType, tuple[str, str]] = {
    EventType.GATE_STATUS: ("gate.status/1", "status"),
    EventType.CROSSING_ACCEPTED: ("crossing/1", "event/crossing"),
    EventType.CROSSING_ABORTED: ("crossing/1", "event/crossing"),
    EventType.REFERRAL_OPENED: ("referral/1", "event/referral"),
    EventType.REFERRAL_RESOLVED: ("referral/1", "event/referral"),
    EventType.ALARM_RAISED: ("alarm/1", "event/alarm"),
    EventType.ALARM_CLEARED: ("alarm/1", "event/alarm"),
    EventType.COMMAND_ACK: ("command.ack/1", "cmd-ack"),
    EventType.AUDIT_CHECKPOINT: ("audit.checkpoint/1", "audit/checkpoint"),
}

SCHEMA_FILES = {
    "gate.status/1": "gate.status.v1.json",
    "crossing/1": "crossing.v1.json",
    "referral/1": "referral.v1.json",
    "alarm/1": "alarm.v1.json",
    "command/1": "command.v1.json",
    "command.ack/1": "command.ack.v1.json",
    "audit.checkpoint/1": "audit.checkpoint.v1.json",  # gate/checkpoint.py (ops)
}

# ``Publish.data`` keys each schema family accepts (anything else is a programming error:
# refusing it keeps personal data from leaking onto a topic by accident)
_COMMON_KEYS = {"detail", "timings", "direction"}
_DATA_KEYS: dict[str, set[str]] = {
    "gate.status/1": {
        "detail",
        "state",
        "online",
        "doors",
        "presence",
        "links",
        "outbox_depth",
        "version",
        "door_sensors",
        "emergency",
        "tamper",
        "accepts",
        "alarm_id",
    },
    "crossing/1": _COMMON_KEYS | {"mrz", "document", "access_control", "stage", "biometric"},
    "referral/1": _COMMON_KEYS
    | {
        "mrz",
        "document",
        "resolution",
        "officer",
        "command_id",
        "stage",
        "chip",
        "face",
        "biometric",
        "thumb",
    },
    "alarm/1": {"detail", "device", "state", "command_id", "officer", "alarm_id"},
    "command.ack/1": {"detail", "command_id", "command", "accepted", "officer"},
}


class EventError(ValueError):
    """An action or payload that cannot become a valid message (names the field)."""


def topic(site: str, gate: str, leaf: str) -> str:
    return f"{PREFIX}/{site}/{gate}/{leaf}"


def topic_leaf(event_type: EventType) -> str:
    return _ROUTE[EventType(event_type)][1]


def schema_id(event_type: EventType) -> str:
    return _ROUTE[EventType(event_type)][0]


def format_ts(ts: dt.datetime) -> str:
    """UTC ISO 8601 with millisecond precision and ``Z``; naive datetimes are refused."""
    if ts.tzinfo is None:
        raise EventError("ts: naive datetime (give a timezone-aware UTC time)")
    return ts.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("timestamp without timezone")
    return value


def mask_document_number(number: str) -> str:
    """``AB1234567`` -> ``******567``: enough for an officer to match a complaint."""
    number = number.replace("<", "")
    return "*" * max(0, len(number) - 3) + number[-3:]


def hash_document_number(number: str, key: bytes) -> str:
    """Keyed pseudonym: the same document gives the same hash at one site, nothing else."""
    return hmac.new(key, number.replace("<", "").encode("ascii"), hashlib.sha256).hexdigest()


def ack_action(ack: AckCommand, officer: str = "") -> Publish:
    """The ``command.ack`` event for the core's ``AckCommand`` action."""
    data: dict[str, Any] = {
        "command_id": ack.command_id,
        "command": str(ack.command),
        "accepted": ack.accepted,
    }
    if ack.detail:
        data["detail"] = ack.detail
    if officer:
        data["officer"] = officer
    return Publish(EventType.COMMAND_ACK, data=data)


def build_payload(
    action: Publish,
    *,
    site: str,
    gate: str,
    ts: dt.datetime,
    event_id: str,
    document_key: bytes = b"",
) -> dict[str, Any]:
    """The wire payload of ``action``; raises ``EventError`` if it would not validate."""
    try:
        etype = EventType(action.type)
    except ValueError:
        raise EventError(f"type: unknown event type {action.type!r}") from None
    sid = schema_id(etype)
    unknown = set(action.data) - _DATA_KEYS[sid]
    if unknown:
        raise EventError(f"data: keys not allowed on {sid}: {sorted(unknown)}")
    data = dict(action.data)
    payload: dict[str, Any] = {
        "schema": sid,
        "type": str(etype),
        "event_id": event_id,
        "site": site,
        "gate": gate,
        "ts": format_ts(ts),
    }
    if action.txn_id is not None or sid in ("crossing/1", "referral/1"):
        payload["txn_id"] = action.txn_id
    if action.reasons or sid != "gate.status/1":
        payload["reasons"] = [str(r) for r in action.reasons]
    if sid == "gate.status/1":
        payload["online"] = bool(data.pop("online", True))
        payload["state"] = _state_name(data.pop("state", "UNKNOWN"))
    elif sid == "crossing/1":
        payload["decision"] = "accepted" if etype is EventType.CROSSING_ACCEPTED else "aborted"
        doc = _document(data.pop("mrz", None), data.pop("document", None))
        access = data.pop("access_control", None)
        if doc is not None or access is not None:
            payload["document"] = _crossing_document(doc or {}, document_key, access)
    elif sid == "referral/1":
        doc = _document(data.pop("mrz", None), data.pop("document", None))
        if doc is not None:
            payload["document"] = _referral_document(doc)
    elif sid == "alarm/1" and "state" in data:
        data["state"] = _state_name(data["state"])
    elif sid == "command.ack/1":
        payload["command_id"] = data.pop("command_id", None)
        cmd = data.pop("command", None)
        payload["command"] = None if cmd is None else str(cmd)
        payload["accepted"] = bool(data.pop("accepted", False))
    payload.update({k: _plain(v) for k, v in data.items()})
    if isinstance(payload.get("detail"), str):
        payload["detail"] = clip_detail(payload["detail"])
    validate(payload)
    return payload


MAX_DETAIL = 500  # common.v1.json's detail.maxLength


def clip_detail(text: str) -> str:
    """A detail cut to what the schema takes. Details carry what devices and libraries
    said (an exception's text, a reply dump): one longer than the schema allows made the
    alarm of that very fault unpublishable, and the officer never saw why the lane had
    stopped."""
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def _state_name(state: Any) -> str:
    """States go on the wire as DESIGN.md names them (``IDLE``, ``OUT_OF_SERVICE``)."""
    name = state.name if isinstance(state, Enum) else str(state)
    return name.upper()


def _document(mrz: Any, document: Any) -> dict[str, Any] | None:
    if isinstance(mrz, MrzRecord):
        return asdict(mrz)
    if mrz is not None:
        raise EventError("data.mrz: expected an MrzRecord")
    if document is None:
        return None
    if not isinstance(document, Mapping):
        raise EventError("data.document: expected a mapping")
    return dict(document)


def _crossing_document(doc: Mapping[str, Any], key: bytes, access: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: doc[k] for k in ("document_code", "issuing_state", "nationality") if doc.get(k)
    }
    number = doc.get("document_number")
    if number:
        if key:  # an HMAC under an empty key is a plain digest: reversible by trying numbers
            out["number_hash"] = hash_document_number(number, key)
        out["number_masked"] = mask_document_number(number)
    if access is not None:
        out["access_control"] = str(access)
    return out


_REFERRAL_FIELDS = (
    "format",
    "document_code",
    "issuing_state",
    "document_number",
    "surname",
    "given_names",
    "nationality",
    "date_of_birth",
    "sex",
    "date_of_expiry",
)


def _referral_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(doc[k]) for k in _REFERRAL_FIELDS if k in doc and doc[k] != ""}


def _plain(value: Any) -> Any:
    """JSON-ready: enums by value, dates ISO, dataclasses and tuples unpacked."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return format_ts(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --- schemas --------------------------------------------------------------------------


@cache
def load_schema(sid: str) -> dict[str, Any]:
    """The packaged JSON Schema for schema id ``sid`` (e.g. ``crossing/1``)."""
    try:
        name = SCHEMA_FILES[sid]
    except KeyError:
        raise EventError(f"schema: unknown schema {sid!r}") from None
    text = resources.files("gate.schemas").joinpath(name).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def _common_defs() -> dict[str, Any]:
    text = resources.files("gate.schemas").joinpath("common.v1.json").read_text(encoding="utf-8")
    return json.loads(text)["$defs"]


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace ``$ref``s to the common definitions by their content.

    The shipped files keep their ``$ref``s (for consumers with a schema registry); here
    they are resolved once, because resolving them on every message through
    ``referencing`` made validation cost milliseconds per event.
    """
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _inline(v, defs) for k, v in node.items() if k != "$ref"}
    ref = node.get("$ref")
    if ref is None:
        return out
    name = ref.rsplit("/", 1)[-1]
    if (
        not (ref.startswith("../common/v1#/$defs/") or ref.startswith("#/$defs/"))
        or name not in defs
    ):
        raise EventError(f"schema: unresolvable $ref {ref!r}")
    return {**_inline(defs[name], defs), **out}


@cache
def _anchored(pattern: str) -> re.Pattern[str]:
    """A schema pattern as JSON Schema means it (ECMA-262: ``$`` is the end of the text).
    Python's ``$`` also matches before a final newline, so an id ending in a newline
    passed ``^[a-z0-9]...$``; a final ``$`` is made ``\\Z``."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + "\\Z"
    return re.compile(pattern)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _anchored(pattern).search(instance):
        yield ValidationError(f"does not match {pattern!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})


@cache
def _validator(sid: str) -> Draft202012Validator:
    return _Validator(  # type: ignore[no-any-return]
        _inline(load_schema(sid), _common_defs()), format_checker=FormatChecker()
    )


def _without_data(error: Any) -> str:
    """What a schema error says, without the offending value: jsonschema quotes it ("'<a
    name>' does not match ..."), and these messages reach logs, alarms and the console.
    Field names (required, unexpected) are the schema's words and stay."""
    if error.validator in ("required", "additionalProperties"):
        return str(error.message)[:200]
    if error.validator in ("type", "format", "pattern", "enum", "const"):
        return f"not a valid value ({error.validator} {error.validator_value!r})"[:200]
    return f"fails {error.validator} {error.validator_value!r}"[:200]


def _not_finite(value: Any, path: str = "") -> str | None:
    """Where in ``value`` a float is NaN or infinite (a dotted path), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, Mapping):
        for k, v in value.items():
            found = _not_finite(v, f"{path}.{k}" if path else str(k))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for n, v in enumerate(value):
            found = _not_finite(v, f"{path}.{n}" if path else str(n))
            if found is not None:
                return found
    return None


def validate(payload: Mapping[str, Any]) -> None:
    """Check ``payload`` against the schema its ``schema`` field names; ``EventError`` if not."""
    sid = payload.get("schema") if isinstance(payload, Mapping) else None
    if not isinstance(sid, str) or sid not in SCHEMA_FILES:
        raise EventError(f"schema: missing or unknown schema id {sid!r}")
    where = _not_finite(payload)
    if where is not None:
        # JSON has no NaN or infinity (json.dumps writes them anyway, as bare words no
        # strict reader takes: the central record refuses the whole event) and the
        # schemas' "number" lets them through
        raise EventError(f"{sid}: {where or '(root)'}: not a finite number")
    validator = _validator(sid)
    if validator.is_valid(payload):
        return
    error = best_match(validator.iter_errors(payload))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(root)"
        raise EventError(f"{sid}: {where}: {_without_data(error)}")
