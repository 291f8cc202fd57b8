"""The console's intake: whatever arrives on a gate's topics, ``Hall.ingest`` never raises;
and the sealed referral-image plaintext, which any gate can fill with any bytes.

An input is ``leaf\\n`` + payload. The hall is fed a valid history first (so mutated
messages meet open referrals, alarms and counters), then the input; the page's own view
(``snapshot``, ``stats``, as JSON for the event stream) must still build. A bad message
may only mark its gate faulty: there is no reasoned exception here at all.

``referral_image.sealed``: every gate holds the console's public key, so it can seal any
plaintext; the binary layout (header length, JSON header, JPEG slices) must refuse it
with ``ImageMessageError`` only.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from console.state import Hall
from gate.actions import EventType, Publish
from gate.events import build_payload, topic_leaf
from gate.referral_image import LEAF as IMAGE_LEAF
from gate.referral_image import ImageMessageError, build_image_message, open_image_message, seal
from tests.fuzz.harness import Target

SITE, GATE = "kul1", "g01"
KEY = X25519PrivateKey.generate()  # the console's image key


def _msg(etype: EventType, txn: str | None = None, reasons=(), **data: Any) -> bytes:
    import datetime as dt
    import uuid

    payload = build_payload(
        Publish(etype, txn, tuple(reasons), data),
        site=SITE,
        gate=GATE,
        ts=dt.datetime.now(dt.UTC),
        event_id=str(uuid.uuid4()),
    )
    return topic_leaf(etype).encode() + b"\n" + json.dumps(payload).encode()


def _seeds() -> list[bytes]:
    face = {"match": False, "score": 0.4, "threshold": 0.6, "pad_score": 0.7}
    face |= {"pad_threshold": 0.5, "quality": 0.9, "quality_threshold": 0.3, "backend": "x"}
    status = {
        "state": "REFERRED",
        "presence": 1,
        "doors": {"entry": "closed", "exit": "closed"},
        "door_sensors": {"entry": "moving", "exit": "forced"},
        "emergency": False,
        "tamper": True,
        "links": {"barrier": "fault", "scanner": "ok", "bus": "ok"},
        "accepts": ["release", "send_back", "out_of_service"],
    }
    _, image = build_image_message(
        site=SITE,
        gate=GATE,
        txn_id="b-1",
        portrait_jpeg=None,
        frame_jpeg=None,
        pad=0.9,
        recipient=KEY.public_key(),
    )
    return [
        _msg(EventType.GATE_STATUS, "b-1", **status),
        _msg(EventType.GATE_STATUS, state="OFFLINE", online=False),
        _msg(EventType.REFERRAL_OPENED, "b-1", ("face_pad",), face=face, timings={"total": 3}),
        _msg(EventType.REFERRAL_RESOLVED, "b-1", resolution="release", officer="al"),
        _msg(EventType.CROSSING_ACCEPTED, "b-2", timings={"total": 2.5}),
        _msg(EventType.ALARM_RAISED, None, ("gate_link_lost",), device="barrier"),
        _msg(EventType.ALARM_CLEARED, None, ("gate_link_lost",), device="barrier"),
        _msg(EventType.ALARM_CLEARED, None, ("gate_unattended",)),
        IMAGE_LEAF.encode() + b"\n" + image,
    ]


_HISTORY: list[bytes] = []


_LOG = logging.getLogger("autogate.console.state")


def _ingest(data: bytes) -> None:
    level = _LOG.level
    _LOG.setLevel(logging.CRITICAL)  # every refusal is logged: thousands of lines here
    try:
        _ingest_quietly(data)
    finally:
        _LOG.setLevel(level)


def _ingest_quietly(data: bytes) -> None:
    if not _HISTORY:
        _HISTORY.extend(_seeds()[:-3])
    hall = Hall(SITE, [GATE, "g02"], KEY)
    now = time.time()
    for raw in (*_HISTORY, data):
        leaf, _, body = raw.partition(b"\n")
        hall.ingest(f"autogate/v1/{SITE}/{GATE}/" + leaf.decode("utf-8", "replace"), body, now)
    json.dumps({"gates": hall.snapshot(now), "stats": hall.stats(now + 4000)})


def _json_mutator(data: bytes, rng: random.Random) -> bytes:
    """Keep it JSON but put odd values where fields are: wrong types, huge, empty, nested."""
    leaf, _, body = data.partition(b"\n")
    try:
        msg = json.loads(body)
    except ValueError:
        return data
    odd: list[Any] = [None, "", "x" * 300, -1, 2**63, 1e308, [], {}, [[]], True, "Z", {"a": 1}]

    def pick() -> Any:
        return copy.deepcopy(rng.choice(odd))  # never the same object twice: no cycles

    def poke(node: Any) -> None:
        if isinstance(node, dict) and node:
            key = rng.choice(list(node))
            if rng.random() < 0.5:
                poke(node[key])
            else:
                node[key] = pick()
        elif isinstance(node, list) and node:
            i = rng.randrange(len(node))
            node[i] = pick()

    for _ in range(rng.randint(1, 3)):
        poke(msg)
    return leaf + b"\n" + json.dumps(msg).encode()


HEADER = {
    "schema": "referral.image/2",
    "type": "referral.image",
    "event_id": "e",
    "site": SITE,
    "gate": GATE,
    "ts": "2026-12-07T10:00:00.000Z",
    "txn_id": "t1",
}


def _plain(portrait: bytes | None, frame: bytes | None, scores: dict[str, float]) -> bytes:
    import struct

    head = json.dumps(
        {
            "portrait": None if portrait is None else len(portrait),
            "frame": None if frame is None else len(frame),
            "scores": scores,
        }
    ).encode()
    return struct.pack(">I", len(head)) + head + (portrait or b"") + (frame or b"")


def _sealed_seeds() -> list[bytes]:
    from tests.console.helpers import jpeg

    small = jpeg((10, 20, 30), (40, 50))
    return [
        _plain(small, small, {"match": 0.3, "pad": 0.9}),
        _plain(small, None, {}),
        _plain(None, None, {"match_threshold": 0.6}),
    ]


def _open_sealed(plain: bytes) -> object:
    msg = dict(HEADER)
    seal(msg, plain, KEY.public_key())
    return open_image_message(msg, SITE, GATE, KEY)


TARGETS = [
    Target("console_hall_ingest", _seeds, _ingest, (), _json_mutator),
    Target("referral_image.sealed", _sealed_seeds, _open_sealed, (ImageMessageError,)),
]
