"""Officer commands from the console: envelope, Ed25519 signature, time window, replay store.

The broker's ACL already lets only the console role publish on ``.../cmd/#``; the gate
still trusts no message it cannot verify itself (a stolen console password, a broker
misconfiguration). A command is a JSON object (schema ``command/1``) signed with Ed25519
over its canonical form: every field but ``sig``, keys sorted, no whitespace, UTF-8. The
fields are strings only, so this simple form is byte-identical to RFC 8785 (JCS) and any
console can produce it with its JSON library.

It is refused when: not one unambiguous JSON text (``gate.strictjson``: UTF-8, no
duplicate keys) or not the schema (``malformed``), no signature
(``unsigned``), a key the gate does not know (``unknown_key``), a signature that does not
verify (``bad_signature``), meant for another gate or sent on another command's topic
(``wrong_gate``, ``topic_mismatch``), signed outside ``now ± window`` or before this
process started (``expired``), or a nonce already used (``replayed``). The very same
signed command again is a ``duplicate``, not an attack: MQTT delivers at least once, so a
copy is dropped (journalled and counted), never carried out twice and never answered with
a refusal that would contradict the first copy's ack. A ``release`` or
``send_back`` must name the ``txn_id`` of the referral it decides, a ``reset_alarm`` the
``alarm_id`` of the alarm it resets (``malformed`` if not): the core refuses either when
that is not the referral open, or the alarm raised, at the gate now. Nonces are kept
only for the window: an older command is refused by its timestamp anyway, and one signed
before a restart by the start time, so the store needs no disk.

Pure: time comes in as ``now``; keys come in as objects.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gate import strictjson
from gate.events import EventError, format_ts, parse_ts, validate
from gate.inputs import Command, OfficerCommand

SCHEMA = "command/1"
MAX_BYTES = 4096  # a command is under 600 bytes; anything far larger is not one
_TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
BOUND = {Command.RELEASE.value, Command.SEND_BACK.value}  # decide one referral: name it
ALARM_BOUND = {Command.RESET_ALARM.value}  # resets one alarm: name it


class RefusalReason(StrEnum):
    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_GATE = "wrong_gate"
    TOPIC_MISMATCH = "topic_mismatch"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    # the same signed command again (MQTT delivers at least once): never carried out twice,
    # never answered with a refusal that would contradict the first copy's answer
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Refusal:
    """Why a command was refused, with what could be read of it (for the ack and alarm)."""

    reason: RefusalReason
    detail: str = ""
    command_id: str | None = None
    command: Command | None = None
    officer: str = ""
    count: int = 1  # more than one: refusals held back in a flood, reported together


class RefusalBudget:
    """How many refused commands a gate answers one by one per window; the rest are held
    and reported together when the window ends (``take_held``).

    Each answer costs the daemon's loop an fsync'd journal record (about 6 ms) and two
    outbox rows (the negative ack and the alarm). Anyone with the console's broker
    password can publish on ``cmd/`` without the signing key, so answering a flood of
    forged commands one by one stalled the lane. Accepted commands never count here.
    Pure: time comes in as ``now`` (monotonic seconds).
    """

    def __init__(self, per_window: int = 20, window_s: float = 10.0) -> None:
        self.per_window, self.window_s = per_window, window_s
        self._start: float | None = None
        self._used = 0
        self._held: dict[RefusalReason, int] = {}

    def answer(self, now: float, reason: RefusalReason) -> bool:
        """Answer this refusal one by one (True), or hold it for the window's summary."""
        if self._start is None or now - self._start >= self.window_s:
            self._start, self._used = now, 0
        if self._used < self.per_window:
            self._used += 1
            return True
        self._held[reason] = self._held.get(reason, 0) + 1
        return False

    def remaining(self, now: float) -> float:
        """Seconds until the current window ends (when the held refusals are reported)."""
        return 0.0 if self._start is None else max(0.0, self._start + self.window_s - now)

    def take_held(self) -> dict[RefusalReason, int]:
        held, self._held = self._held, {}
        return held


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The signed bytes: every field except ``sig``, sorted keys, compact, UTF-8."""
    body = {k: v for k, v in fields.items() if k != "sig"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_command(
    private_key: Ed25519PrivateKey,
    *,
    site: str,
    gate: str,
    command: Command | str,
    officer: str,
    key_id: str,
    ts: dt.datetime,
    nonce: str | None = None,
    command_id: str | None = None,
    txn_id: str | None = None,
    alarm_id: str | None = None,
) -> dict[str, Any]:
    """A signed ``command/1`` payload (the console side; publish it on ``.../cmd/{command}``)."""
    fields: dict[str, Any] = {
        "schema": SCHEMA,
        "command_id": command_id or str(uuid.uuid4()),
        "site": site,
        "gate": gate,
        "command": str(Command(command)),
        "officer": officer,
        "ts": format_ts(ts),
        "nonce": nonce or secrets.token_hex(16),
        "key_id": key_id,
    }
    if txn_id is not None:
        fields["txn_id"] = txn_id
    if alarm_id is not None:
        fields["alarm_id"] = alarm_id
    fields["sig"] = base64.b64encode(private_key.sign(canonical(fields))).decode("ascii")
    return fields


def load_public_key(data: str | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or base64 of the 32 raw bytes."""
    raw = data.encode() if isinstance(data, str) else data
    if raw.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(raw)
        except UnsupportedAlgorithm as exc:  # a key type cryptography does not know
            raise ValueError(f"not an Ed25519 public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    try:
        decoded = base64.b64decode(raw.strip(), validate=True)
    except binascii.Error:
        raise ValueError("public key is neither PEM nor base64") from None
    if len(decoded) != 32:
        raise ValueError(f"raw Ed25519 public key must be 32 bytes, got {len(decoded)}")
    return Ed25519PublicKey.from_public_bytes(decoded)


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


class NonceStore:
    """Nonces seen within the window; commands signed before ``not_before`` are refused."""

    def __init__(self, window_s: float, not_before: dt.datetime, max_entries: int = 10_000):
        self.window = dt.timedelta(seconds=window_s)
        self.not_before = not_before
        self.max_entries = max_entries
        # nonce -> (when it may be forgotten, the signature it came with)
        self._seen: dict[str, tuple[dt.datetime, str]] = {}

    def use(self, nonce: str, ts: dt.datetime, now: dt.datetime, sig: str = "") -> bool:
        """Record ``nonce``; False if it was already used (a replay) or the store is full."""
        self._prune(now)
        if nonce in self._seen or len(self._seen) >= self.max_entries:
            return False
        self._seen[nonce] = (max(ts, now) + self.window, sig)
        return True

    def is_copy(self, nonce: str, sig: str) -> bool:
        """Was ``nonce`` used by this very signed command (the same signature)? Ed25519
        signatures are deterministic, so the same signature is the same signed content."""
        seen = self._seen.get(nonce)
        return bool(sig) and seen is not None and seen[1] == sig

    def __len__(self) -> int:
        return len(self._seen)

    def _prune(self, now: dt.datetime) -> None:
        for nonce in [n for n, (until, _) in self._seen.items() if until < now]:
            del self._seen[nonce]


def verify_command(
    raw: bytes | str,
    *,
    topic_command: str,
    site: str,
    gate: str,
    keys: Mapping[str, Ed25519PublicKey],
    now: dt.datetime,
    nonces: NonceStore,
) -> OfficerCommand | Refusal:
    """Verify one command message received on ``.../cmd/{topic_command}``.

    Never raises on what the network sends: every message gets an ``OfficerCommand`` or
    a ``Refusal`` (the bus answers each refusal with a negative ack, an alarm, a count
    and a journal record). Structure is checked before any key is used, so a message
    nobody could sign is ``malformed``, not a crash.
    """
    try:  # UTF-8, unique keys, no NaN: the bytes mean what the signature covers
        # (an unpaired surrogate is refused below, by ``canonical``, with what is readable)
        msg = strictjson.loads(raw, max_bytes=MAX_BYTES, check_unicode=False)
    except strictjson.StrictJsonError as exc:
        return Refusal(RefusalReason.MALFORMED, _printable(str(exc)))
    if not isinstance(msg, dict):
        return Refusal(RefusalReason.MALFORMED, "not a JSON object")
    seen = _readable(msg)
    if not msg.get("sig"):
        return Refusal(RefusalReason.UNSIGNED, "no signature", **seen)
    if msg.get("schema") != SCHEMA:
        return Refusal(RefusalReason.MALFORMED, f"schema is not {SCHEMA!r}", **seen)
    try:
        validate(msg)
    except EventError as exc:
        return Refusal(RefusalReason.MALFORMED, _printable(str(exc)), **seen)
    try:
        signed = canonical(msg)
    except UnicodeEncodeError:  # a lone surrogate (``\ud800``) that JSON allowed
        return Refusal(RefusalReason.MALFORMED, "a field is not valid Unicode", **seen)
    ts = _instant(msg["ts"])
    if ts is None:
        return Refusal(RefusalReason.MALFORMED, "ts: not a real UTC instant", **seen)
    key = keys.get(msg["key_id"])
    if key is None:
        return Refusal(RefusalReason.UNKNOWN_KEY, f"key {msg['key_id']!r} not trusted", **seen)
    try:
        key.verify(base64.b64decode(msg["sig"]), signed)
    except (InvalidSignature, binascii.Error):
        return Refusal(RefusalReason.BAD_SIGNATURE, "signature does not verify", **seen)
    if (msg["site"], msg["gate"]) != (site, gate):
        return Refusal(RefusalReason.WRONG_GATE, f"for {msg['site']}/{msg['gate']}", **seen)
    if msg["command"] != topic_command:
        return Refusal(RefusalReason.TOPIC_MISMATCH, f"sent on cmd/{topic_command}", **seen)
    if msg["command"] in BOUND and not msg.get("txn_id"):
        return Refusal(
            RefusalReason.MALFORMED, f"{msg['command']} must name the referral's txn_id", **seen
        )
    if msg["command"] in ALARM_BOUND and not msg.get("alarm_id"):
        return Refusal(
            RefusalReason.MALFORMED, f"{msg['command']} must name the alarm's alarm_id", **seen
        )
    skew = abs((now - ts).total_seconds())
    if skew > nonces.window.total_seconds():
        return Refusal(RefusalReason.EXPIRED, f"signed {skew:.0f} s from now", **seen)
    if ts < nonces.not_before:
        return Refusal(RefusalReason.EXPIRED, "signed before the gate started", **seen)
    if not nonces.use(msg["nonce"], ts, now, msg["sig"]):
        if nonces.is_copy(msg["nonce"], msg["sig"]):
            return Refusal(RefusalReason.DUPLICATE, "a copy of a command already received", **seen)
        return Refusal(RefusalReason.REPLAYED, "nonce already used", **seen)
    return OfficerCommand(
        Command(msg["command"]),
        officer=msg["officer"],
        command_id=msg["command_id"],
        txn_id=msg.get("txn_id"),
        alarm_id=msg.get("alarm_id"),
    )


def _instant(text: str) -> dt.datetime | None:
    """``ts`` as an aware datetime, or None when it is not a real instant: the schema's
    pattern lets ``2026-02-30`` and hour 25 through, and ``$`` matches before a newline."""
    if _TS.fullmatch(text) is None:
        return None
    try:
        return parse_ts(text)
    except ValueError:
        return None


def _printable(text: str) -> str:
    """A detail that is safe in an ack, an alarm and the journal: valid UTF-8, short."""
    return text.encode("utf-8", "replace").decode("utf-8")[:200]


def _text(value: Any, limit: int = 64) -> str | None:
    """``value`` if it is a short string that encodes as UTF-8, else None."""
    if not isinstance(value, str) or len(value) > limit:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def _readable(msg: dict[str, Any]) -> dict[str, Any]:
    """What a refused message says about itself, kept only if well-formed (for the ack)."""
    out: dict[str, Any] = {}
    cid = _text(msg.get("command_id"))
    if cid is not None:
        out["command_id"] = cid
    command = _text(msg.get("command"))
    if command in set(Command):
        out["command"] = Command(command)
    officer = _text(msg.get("officer"))
    if officer is not None:
        out["officer"] = officer
    return out
