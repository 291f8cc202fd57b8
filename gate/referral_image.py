"""The referral-image message: the two photos an officer compares, sealed for the console.

One message on ``autogate/v1/{site}/{gate}/event/referral-image`` right after
``referral.opened`` (QoS 1, never retained, never in the outbox):

    {"schema": "referral.image/2", "type": "referral.image", "event_id", "site", "gate",
     "ts", "txn_id", "enc": {"alg": "X25519-HKDF-SHA256-A256GCM", "kid", "epk", "nonce",
     "ct"}}

Only the console can open it. The gate holds the console's X25519 public key (config);
for each message it makes a fresh key pair, derives an AES-256 key with HKDF-SHA256 from
the shared secret (salt: both public keys), and seals the photos with AES-GCM, the
header fields above as associated data, so a sealed image cannot be moved to another
gate or transaction. A broker that queues it for an offline console, a retained copy,
a recorder or a stolen monitor password see ciphertext only.

The sealed plaintext is binary, not JSON with base64: ``>I`` header length, a JSON
header ``{"portrait": n|null, "frame": n|null, "scores": {...}}``, then the JPEG bytes.
``open_image_message`` decrypts straight into one ``bytearray`` that the console
overwrites when the referral closes (``ReferralImages.wipe``): no other copy is kept.

Pure: keys and time come in as arguments. The gate builds (``build_image_message``),
the console reads (``open_image_message``); neither imports the other.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import json
import os
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gate.events import format_ts, topic

SCHEMA = "referral.image/2"
TYPE = "referral.image"
LEAF = "event/referral-image"
ALG = "X25519-HKDF-SHA256-A256GCM"
INFO = b"autogate referral-image v2"
MAX_IMAGE_BYTES = 512 * 1024  # a DG2 portrait is ~15-30 KB, a live crop well under this
MAX_SEALED = 2 * MAX_IMAGE_BYTES + 4096
JPEG_MAGIC = b"\xff\xd8\xff"
SCORES = ("match", "match_threshold", "pad")
TAG = 16


class ImageMessageError(ValueError):
    """A referral-image message that is not what the format above says, or not ours."""


@dataclass
class ReferralImages:
    """Opened photos: views into one buffer that ``wipe`` overwrites with zeros."""

    txn_id: str
    ts: str
    scores: dict[str, float]
    portrait: memoryview | None = None
    frame: memoryview | None = None
    buffer: bytearray = field(default_factory=bytearray, repr=False)

    def wipe(self) -> None:
        """Overwrite the photos in place and let go of them (the referral is closed)."""
        for view in (self.portrait, self.frame):
            if view is not None:
                with contextlib.suppress(BufferError):  # still exported: zeroed all the same
                    view.release()
        self.portrait = self.frame = None
        self.buffer[:] = bytes(len(self.buffer))


def load_public_key(data: str | bytes) -> X25519PublicKey:
    """The console's X25519 public key: PEM, or base64 of the 32 raw bytes."""
    raw = data.encode() if isinstance(data, str) else data
    if raw.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(raw)
        if not isinstance(key, X25519PublicKey):
            raise ValueError("not an X25519 public key")
        return key
    try:
        decoded = base64.b64decode(raw.strip(), validate=True)
    except binascii.Error:
        raise ValueError("X25519 public key is neither PEM nor base64") from None
    if len(decoded) != 32:
        raise ValueError(f"raw X25519 public key must be 32 bytes, got {len(decoded)}")
    return X25519PublicKey.from_public_bytes(decoded)


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64(key: X25519PublicKey) -> str:
    return base64.b64encode(_raw(key)).decode("ascii")


def key_id(key: X25519PublicKey) -> str:
    """Which console key sealed it (keys rotate): 16 hex digits of SHA-256."""
    return hashlib.sha256(_raw(key)).hexdigest()[:16]


def _aead_key(shared: bytes, epk: bytes, recipient: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + recipient, info=INFO)
    return hkdf.derive(shared)


def _aad(msg: dict[str, Any]) -> bytes:
    head = {k: msg.get(k) for k in ("schema", "type", "event_id", "site", "gate", "ts", "txn_id")}
    head["kid"] = msg.get("enc", {}).get("kid")
    return json.dumps(head, sort_keys=True, separators=(",", ":")).encode()


def _check_jpeg(jpeg: bytes | None) -> None:
    if jpeg is not None and (not jpeg.startswith(JPEG_MAGIC) or len(jpeg) > MAX_IMAGE_BYTES):
        raise ImageMessageError("image must be a JPEG of at most 512 KB")


def build_image_message(
    *,
    site: str,
    gate: str,
    txn_id: str,
    portrait_jpeg: bytes | None,
    frame_jpeg: bytes | None,
    recipient: X25519PublicKey,
    match: float | None = None,
    match_threshold: float | None = None,
    pad: float | None = None,
    ts: dt.datetime | None = None,
) -> tuple[str, bytes]:
    """(full topic, JSON bytes) for the gate to publish with QoS 1, retain False."""
    _check_jpeg(portrait_jpeg)
    _check_jpeg(frame_jpeg)
    scores = {
        k: float(v)
        for k, v in zip(SCORES, (match, match_threshold, pad), strict=True)
        if v is not None
    }
    header = json.dumps(
        {
            "portrait": None if portrait_jpeg is None else len(portrait_jpeg),
            "frame": None if frame_jpeg is None else len(frame_jpeg),
            "scores": scores,
        },
        separators=(",", ":"),
    ).encode()
    plain = b"".join(
        (struct.pack(">I", len(header)), header, portrait_jpeg or b"", frame_jpeg or b"")
    )
    msg: dict[str, Any] = {
        "schema": SCHEMA,
        "type": TYPE,
        "event_id": str(uuid.uuid4()),
        "site": site,
        "gate": gate,
        "ts": format_ts(ts or dt.datetime.now(dt.UTC)),
        "txn_id": txn_id,
    }
    seal(msg, plain, recipient)
    return topic(site, gate, LEAF), json.dumps(msg, separators=(",", ":")).encode()


def seal(msg: dict[str, Any], plain: bytes, recipient: X25519PublicKey) -> None:
    """Add ``enc`` to ``msg``: ``plain`` sealed to ``recipient`` with the header as AAD."""
    eph = X25519PrivateKey.generate()
    epk, rpk = _raw(eph.public_key()), _raw(recipient)
    nonce = os.urandom(12)
    msg["enc"] = {"alg": ALG, "kid": key_id(recipient)}
    enc = Cipher(
        algorithms.AES(_aead_key(eph.exchange(recipient), epk, rpk)), modes.GCM(nonce)
    ).encryptor()
    enc.authenticate_additional_data(_aad(msg))
    ct = enc.update(plain) + enc.finalize() + enc.tag
    msg["enc"].update(
        epk=base64.b64encode(epk).decode(),
        nonce=base64.b64encode(nonce).decode(),
        ct=base64.b64encode(ct).decode(),
    )


def _b64(value: Any, name: str, size: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or (size is not None and len(raw) != size):
        raise ImageMessageError(
            f"enc.{name}: expected base64" + (f" of {size} bytes" if size else "")
        )
    return raw


def open_image_message(
    msg: dict[str, Any], site: str, gate: str, key: X25519PrivateKey
) -> ReferralImages:
    """Check and decrypt a referral-image payload received on ``site``/``gate``."""
    if msg.get("schema") != SCHEMA or msg.get("type") != TYPE:
        raise ImageMessageError(f"schema is not {SCHEMA!r} (unsealed images are refused)")
    if msg.get("site") != site or msg.get("gate") != gate:
        raise ImageMessageError("site/gate differ from the topic")
    txn = msg.get("txn_id")
    if not isinstance(txn, str) or not 0 < len(txn) <= 64:
        raise ImageMessageError("txn_id: expected a string of 1-64 characters")
    ts = msg.get("ts")
    if not isinstance(ts, str):
        raise ImageMessageError("ts: expected a string")
    enc = msg.get("enc")
    if not isinstance(enc, dict) or enc.get("alg") != ALG:
        raise ImageMessageError(f"enc: expected alg {ALG}")
    if enc.get("kid") != key_id(key.public_key()):
        raise ImageMessageError(f"sealed for key {str(enc.get('kid'))[:16]!r}, not this console's")
    epk, nonce = _b64(enc.get("epk"), "epk", 32), _b64(enc.get("nonce"), "nonce", 12)
    ct = _b64(enc.get("ct"), "ct")
    if not TAG < len(ct) <= MAX_SEALED:
        raise ImageMessageError("enc.ct: wrong size")
    try:
        shared = key.exchange(X25519PublicKey.from_public_bytes(epk))
    except ValueError:
        raise ImageMessageError("enc.epk: not a usable X25519 key") from None
    aead = _aead_key(shared, epk, _raw(key.public_key()))
    body, tag = ct[:-TAG], ct[-TAG:]
    dec = Cipher(algorithms.AES(aead), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(_aad(msg))
    buf = bytearray(len(body) + 15)  # update_into's room; the plaintext lands only here
    try:
        n = dec.update_into(body, buf)
        dec.finalize()
        return _split(buf, n, txn, ts)
    except (InvalidTag, ImageMessageError, ValueError, struct.error) as exc:
        buf[:] = bytes(len(buf))
        if isinstance(exc, InvalidTag):
            raise ImageMessageError(
                "does not decrypt: forged, altered or for another key"
            ) from None
        raise ImageMessageError(f"sealed content malformed: {exc}") from None


def _split(buf: bytearray, n: int, txn: str, ts: str) -> ReferralImages:
    mv = memoryview(buf)[:n]
    (hlen,) = struct.unpack(">I", mv[:4])
    header = json.loads(bytes(mv[4 : 4 + hlen]))
    if not isinstance(header, dict):
        raise ImageMessageError("header is not an object")
    scores = header.get("scores", {})
    if not isinstance(scores, dict) or not all(
        k in SCORES and isinstance(v, int | float) and not isinstance(v, bool)
        for k, v in scores.items()
    ):
        raise ImageMessageError("scores: expected numbers match, match_threshold, pad")
    pos = 4 + hlen
    views: list[memoryview | None] = []
    for name in ("portrait", "frame"):
        size = header.get(name)
        if size is None:
            views.append(None)
            continue
        if not isinstance(size, int) or not 0 < size <= MAX_IMAGE_BYTES or pos + size > n:
            raise ImageMessageError(f"{name}: bad length")
        view = mv[pos : pos + size]
        if bytes(view[:3]) != JPEG_MAGIC:
            raise ImageMessageError(f"{name}: not a JPEG")
        views.append(view)
        pos += size
    if pos != n:
        raise ImageMessageError("trailing bytes after the images")
    return ReferralImages(
        txn, ts, {k: float(v) for k, v in scores.items()}, views[0], views[1], buf
    )
