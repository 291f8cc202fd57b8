"""Builders for console tests: gate messages that pass the gate's schemas, a console."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from PIL import Image

from console.app import Console
from console.audit import Audit
from console.auth import Officers, Throttle
from console.mqtt import Signer
from console.state import Hall
from gate.actions import EventType, Publish
from gate.events import build_payload, topic

SITE = "kul1"
PASSWORDS = {"alice": "alice-password-1", "sam": "sam-password-12"}
SECRET = b"s" * 48
# the console's key for sealed referral photos (the gates' devices.bus.image_key)
IMAGE_KEY = X25519PrivateKey.generate()
# Argon2id with small parameters: the tests check behaviour, not the work factor
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (240, 300)) -> bytes:
    """A small real JPEG (a face-shaped oval on a background) for the photo slots."""
    from PIL import ImageDraw

    img = Image.new("RGB", size, (200, 205, 210))
    d = ImageDraw.Draw(img)
    w, h = size
    d.ellipse((w * 0.25, h * 0.15, w * 0.75, h * 0.7), fill=color)
    d.rectangle((w * 0.15, h * 0.72, w * 0.85, h), fill=(60, 70, 90))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def now_dt() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def message(gate: str, etype: EventType, txn: str | None = None, reasons=(), **data: Any):
    """(topic, bytes) of one schema-valid gate message, built by the gate's own builder."""
    payload = build_payload(
        Publish(etype, txn, tuple(reasons), data),
        site=SITE,
        gate=gate,
        ts=now_dt(),
        event_id=str(uuid.uuid4()),
    )
    return topic(SITE, gate, _leaf(etype)), json.dumps(payload).encode()


def _leaf(etype: EventType) -> str:
    from gate.events import topic_leaf

    return topic_leaf(etype)


DOCUMENT = {
    "format": "TD3",
    "document_code": "P",
    "issuing_state": "UTO",
    "document_number": "L898902C3",
    "surname": "ERIKSSON",
    "given_names": "ANNA MARIA",
    "nationality": "UTO",
    "date_of_birth": "1974-08-12",
    "sex": "F",
    "date_of_expiry": "2032-04-15",
}


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def publish_command(self, cmd: dict[str, Any]) -> None:
        self.sent.append(cmd)


def make_console(tmp: Path, gates=("g01", "g02"), publisher: Any = None) -> Console:
    officers = Officers(tmp / "officers.json", hasher=FAST_HASHER)
    officers.add("alice", PASSWORDS["alice"], "officer")
    officers.add("sam", PASSWORDS["sam"], "supervisor")
    key = Ed25519PrivateKey.generate()
    return Console(
        hall=Hall(SITE, list(gates), IMAGE_KEY),
        officers=officers,
        audit=Audit(tmp / "audit.jsonl", fsync=False),
        signer=Signer(key, "console-1", SITE),
        publisher=publisher or FakePublisher(),
        secret=SECRET,
        throttle=Throttle(5, 300),
    )
