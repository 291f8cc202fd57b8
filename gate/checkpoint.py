"""Signed checkpoints of the audit journal's head (Ed25519), and checking a journal against them.

The hash chain (``gate.journal``) catches an edited, deleted or reordered record, but not
a journal rewritten from the first line with a fresh, self-consistent chain. A checkpoint
``(site, gate, seq, hash, ts)`` signed with the gate's key and kept away from the box
(published on MQTT, and in a local copy) pins the head at that moment: a rewritten
journal no longer holds that hash at that seq, and a truncated one no longer reaches it.

Pure: values in, values out. Reading files and signing on a timer happen in ``autogate``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gate import strictjson
from gate.journal import Head, canonical

SCHEMA = "audit.checkpoint/1"  # gate/schemas/audit.checkpoint.v1.json


class CheckpointError(ValueError):
    """A checkpoint that is malformed or whose signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    site: str
    gate: str
    seq: int
    hash: str
    ts: str
    key_id: str
    sig: str = ""  # base64 Ed25519 signature over ``signed_bytes()``

    def body(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "site": self.site,
            "gate": self.gate,
            "seq": self.seq,
            "hash": self.hash,
            "ts": self.ts,
            "key_id": self.key_id,
        }

    def signed_bytes(self) -> bytes:
        return canonical(self.body())

    def to_json(self) -> dict[str, Any]:
        return self.body() | {"sig": self.sig}


def key_id(public: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key: which key signed (keys rotate)."""
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(private: Ed25519PrivateKey, head: Head, site: str, gate: str, ts: str) -> Checkpoint:
    unsigned = Checkpoint(site, gate, head.seq, head.hash, ts, key_id(private.public_key()))
    sig = base64.b64encode(private.sign(unsigned.signed_bytes())).decode()
    return Checkpoint(**{**unsigned.__dict__, "sig": sig})


def parse(obj: Any) -> Checkpoint:
    """A checkpoint from its JSON form; a missing or mistyped field is a ``CheckpointError``."""
    if not isinstance(obj, Mapping) or obj.get("schema") != SCHEMA:
        raise CheckpointError("not an audit checkpoint")
    try:
        cp = Checkpoint(
            site=str(obj["site"]),
            gate=str(obj["gate"]),
            seq=obj["seq"],
            hash=str(obj["hash"]),
            ts=str(obj["ts"]),
            key_id=str(obj["key_id"]),
            sig=str(obj["sig"]),
        )
    except KeyError as exc:
        raise CheckpointError(f"missing field {exc.args[0]!r}") from None
    if not isinstance(cp.seq, int) or cp.seq < 0:
        raise CheckpointError("seq must be a non-negative integer")
    return cp


def check_signature(public: Ed25519PublicKey, cp: Checkpoint) -> None:
    try:
        public.verify(base64.b64decode(cp.sig, validate=True), cp.signed_bytes())
    except (InvalidSignature, ValueError):
        raise CheckpointError(
            f"checkpoint seq={cp.seq} ({cp.ts}): signature does not verify with key "
            f"{key_id(public)}"
        ) from None


@dataclass(frozen=True)
class Anchoring:
    """Result of checking a journal against checkpoints."""

    ok: bool
    checked: int  # checkpoints whose (seq, hash) the journal holds
    problem: str = ""


def check_journal(
    records: Iterable[Any], checkpoints: Iterable[Checkpoint], public: Ed25519PublicKey
) -> Anchoring:
    """Every signed checkpoint's (seq, hash) must be a record of the journal.

    ``records`` are the journal's parsed lines in order (across rotated files); the
    chain itself is ``gate.journal.verify``'s job, this only anchors it.
    """
    cps = list(checkpoints)
    for cp in cps:
        try:
            check_signature(public, cp)
        except CheckpointError as exc:
            return Anchoring(False, 0, str(exc))
    wanted: dict[int, list[Checkpoint]] = {}
    for cp in cps:
        wanted.setdefault(cp.seq, []).append(cp)
    last_seq = 0
    checked = 0
    for rec in records:
        if not isinstance(rec, dict) or not isinstance(rec.get("seq"), int):
            continue
        last_seq = rec["seq"]
        for cp in wanted.pop(last_seq, []):
            if rec.get("hash") != cp.hash:
                return Anchoring(
                    False,
                    checked,
                    f"journal record seq={cp.seq} differs from the checkpoint signed at "
                    f"{cp.ts}: the journal was rewritten",
                )
            checked += 1
    checked += len(wanted.pop(0, []))  # checkpoints of the empty journal hold trivially
    if wanted:
        seq = min(wanted)
        return Anchoring(
            False,
            checked,
            f"journal ends at seq={last_seq} but a checkpoint signed at {wanted[seq][0].ts} "
            f"covers seq={seq}: records were removed",
        )
    return Anchoring(True, checked)


def load_lines(text: str) -> list[Checkpoint]:
    """Parse a checkpoints file (one JSON checkpoint a line); raises ``CheckpointError``."""
    out: list[Checkpoint] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:  # strict: a duplicate key would be signed as one value and read as another
            obj = strictjson.loads(line, check_unicode=False)
        except strictjson.StrictJsonError as exc:
            raise CheckpointError(f"line {n}: not JSON ({exc})") from None
        try:
            out.append(parse(obj))
        except CheckpointError as exc:
            raise CheckpointError(f"line {n}: {exc}") from None
    return out
