"""Fuzz targets of the console: what a gate (or anyone with a gate's password) can send it.

- ``referral_image.sealed``: the plaintext inside a sealed referral image. Any gate holds
  the console's public key, so it can seal any bytes: the binary layout (header length,
  JSON header, JPEG slices) must refuse them with ``ImageMessageError`` only.
- ``console.hall.ingest``: any payload on any gate leaf; the hall marks the gate faulty
  and never raises.
"""

from __future__ import annotations

import json
import struct
import time

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from console.state import Hall
from gate.actions import EventType
from gate.reasons import ReasonCode
from gate.referral_image import ImageMessageError, open_image_message, seal
from tests.console.helpers import DOCUMENT, jpeg, message
from tests.fuzz.harness import Target

KEY = X25519PrivateKey.generate()
HEADER = {"schema": "referral.image/2", "type": "referral.image", "event_id": "e",
          "site": "kul1", "gate": "g01", "ts": "2026-12-07T10:00:00.000Z", "txn_id": "t1"}  # fmt: skip


def _plain(portrait: bytes | None, frame: bytes | None, scores: dict[str, float]) -> bytes:
    head = json.dumps(
        {
            "portrait": None if portrait is None else len(portrait),
            "frame": None if frame is None else len(frame),
            "scores": scores,
        }
    ).encode()
    return struct.pack(">I", len(head)) + head + (portrait or b"") + (frame or b"")


def _sealed_seeds() -> list[bytes]:
    small = jpeg((10, 20, 30), (40, 50))
    return [
        _plain(small, small, {"match": 0.3, "pad": 0.9}),
        _plain(small, None, {}),
        _plain(None, None, {"match_threshold": 0.6}),
    ]


def _open_sealed(plain: bytes) -> object:
    msg = dict(HEADER)
    seal(msg, plain, KEY.public_key())
    return open_image_message(msg, "kul1", "g01", KEY)


def _ingest_seeds() -> list[bytes]:
    out = []
    for leaf_msg in (
        message("g01", EventType.GATE_STATUS, state="IDLE"),
        message(
            "g01", EventType.REFERRAL_OPENED, "t1", (ReasonCode.FACE_NO_MATCH,), document=DOCUMENT
        ),  # fmt: skip
        message("g01", EventType.ALARM_RAISED, None, (ReasonCode.GATE_TAMPER,), device="barrier"),
    ):
        topic, raw = leaf_msg
        out.append(topic.encode() + b"\n" + raw)
    return out


def _ingest(data: bytes) -> object:
    topic, _, raw = data.partition(b"\n")
    hall = Hall("kul1", ["g01"], KEY)
    return hall.ingest(topic.decode("utf-8", "replace"), raw, time.time())


TARGETS = [
    Target("referral_image.sealed", _sealed_seeds, _open_sealed, (ImageMessageError,)),
    Target("console.hall.ingest", _ingest_seeds, _ingest),
]
