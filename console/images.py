"""How traveller images travel: one ``referral-image`` message beside ``referral.opened``.

The referral event (``gate/schemas/referral.v1.json``) carries reasons and document fields
only; the two photos an officer compares go in a separate, non-retained QoS 1 message on
``autogate/v1/{site}/{gate}/event/referral-image``, sent right after the referral:

    {"schema": "referral.image/1", "type": "referral.image", "event_id", "site", "gate",
     "ts", "txn_id", "portrait": {"mime": "image/jpeg", "data": <base64>},
     "frame": {...}, "scores": {"match": 0.41, "match_threshold": 0.6, "pad": 0.93}}

Why a message and not a fetch from the gate: the gate serves nothing (no listening
port on an edge box), and the broker's ACL already says who may read a gate's events.
Why not retained: a retained message would keep a traveller's face on the broker's disk
after the referral ends. The console keeps the bytes in memory only, for as long as the
referral is open (``console.state``).

``build_image_message`` is what the gate daemon calls (it needs only the JPEG bytes it
holds for the referral); ``parse_image_message`` is the console's strict reader.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from gate.events import format_ts, topic

SCHEMA = "referral.image/1"
LEAF = "event/referral-image"
MAX_IMAGE_BYTES = 512 * 1024  # a DG2 portrait is ~15-30 KB, a live crop well under this
JPEG_MAGIC = b"\xff\xd8\xff"


class ImageMessageError(ValueError):
    """A referral-image message that is not what the schema above says."""


@dataclass(frozen=True)
class ReferralImages:
    txn_id: str
    portrait: bytes | None
    frame: bytes | None
    scores: dict[str, float]
    ts: str


def _image(jpeg: bytes | None) -> dict[str, str] | None:
    if jpeg is None:
        return None
    if not jpeg.startswith(JPEG_MAGIC) or len(jpeg) > MAX_IMAGE_BYTES:
        raise ImageMessageError("image must be a JPEG of at most 512 KB")
    return {"mime": "image/jpeg", "data": base64.b64encode(jpeg).decode("ascii")}


def build_image_message(
    *,
    site: str,
    gate: str,
    txn_id: str,
    portrait_jpeg: bytes | None,
    frame_jpeg: bytes | None,
    match: float | None = None,
    match_threshold: float | None = None,
    pad: float | None = None,
    ts: dt.datetime | None = None,
) -> tuple[str, bytes]:
    """(full topic, JSON bytes) for the gate to publish with QoS 1, retain False."""
    scores = {
        k: float(v)
        for k, v in (("match", match), ("match_threshold", match_threshold), ("pad", pad))
        if v is not None
    }
    body: dict[str, Any] = {
        "schema": SCHEMA,
        "type": "referral.image",
        "event_id": str(uuid.uuid4()),
        "site": site,
        "gate": gate,
        "ts": format_ts(ts or dt.datetime.now(dt.UTC)),
        "txn_id": txn_id,
        "portrait": _image(portrait_jpeg),
        "frame": _image(frame_jpeg),
        "scores": scores,
    }
    return topic(site, gate, LEAF), json.dumps(body, separators=(",", ":")).encode()


def _decode(value: Any, name: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("mime") != "image/jpeg":
        raise ImageMessageError(f"{name}: expected {{mime: image/jpeg, data}}")
    try:
        raw = base64.b64decode(value.get("data", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ImageMessageError(f"{name}: data is not base64") from None
    if not raw.startswith(JPEG_MAGIC) or len(raw) > MAX_IMAGE_BYTES:
        raise ImageMessageError(f"{name}: not a JPEG of at most 512 KB")
    return raw


def parse_image_message(msg: dict[str, Any], site: str, gate: str) -> ReferralImages:
    """Strictly read a decoded referral-image payload received on ``site``/``gate``."""
    if msg.get("schema") != SCHEMA or msg.get("type") != "referral.image":
        raise ImageMessageError(f"schema is not {SCHEMA!r}")
    if msg.get("site") != site or msg.get("gate") != gate:
        raise ImageMessageError("site/gate differ from the topic")
    txn = msg.get("txn_id")
    if not isinstance(txn, str) or not 0 < len(txn) <= 64:
        raise ImageMessageError("txn_id: expected a string of 1-64 characters")
    scores = msg.get("scores", {})
    if not isinstance(scores, dict) or not all(
        k in ("match", "match_threshold", "pad") and isinstance(v, int | float)
        for k, v in scores.items()
    ):
        raise ImageMessageError("scores: expected numbers match, match_threshold, pad")
    ts = msg.get("ts")
    if not isinstance(ts, str):
        raise ImageMessageError("ts: expected a string")
    return ReferralImages(
        txn_id=txn,
        portrait=_decode(msg.get("portrait"), "portrait"),
        frame=_decode(msg.get("frame"), "frame"),
        scores={k: float(v) for k, v in scores.items()},
        ts=ts,
    )
