"""A referral's photos reach the console over the broker sealed to its key, and never
touch the gate's disk nor rest readable on the broker's."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from autogate.daemon import Daemon
from autogate.wiring import build_devices, settings_from
from gate.config import GateConfig
from gate.referral_image import open_image_message, public_key_b64
from sim.broker import Broker
from sim.devices import SimTraveller, sim_mrz

from .conftest import Monitor

FACE = Path(__file__).resolve().parents[2] / "../shared/data/faces/london_009/01.jpg"
CONSOLE_KEY = X25519PrivateKey.generate()
PUBLIC = public_key_b64(CONSOLE_KEY.public_key())


def jpeg2000(path: Path) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.open(path).save(buf, format="JPEG2000")
    return buf.getvalue()


async def _referral(cfg: GateConfig, portrait: bytes) -> None:
    devices, hall = build_devices(cfg)

    real_read = devices.chip.read

    async def read_with_real_portrait(mrz: Any) -> Any:
        reading = await real_read(mrz)
        return dataclasses.replace(reading, portrait=portrait)

    devices.chip.read = read_with_real_portrait  # type: ignore[method-assign]
    daemon = Daemon(cfg, devices, settings_from(cfg))
    hall.emits["bus"] = daemon.emit
    stop = asyncio.Event()
    run = asyncio.ensure_future(daemon.run(stop))
    await asyncio.wait_for(daemon.ready.wait(), 20)
    # a traveller whose face does not match: referred in the mantrap, photos on both sides
    await hall.walk(SimTraveller("impostor", sim_mrz(number="R1234567"), face_score=0.1))
    await asyncio.sleep(1.0)
    stop.set()
    await run


@pytest.mark.parametrize("fmt", ["jpeg", "jpeg2000"])
def test_referral_photos_travel_sealed_beside_the_referral_and_stay_off_disk(
    fmt: str, gate_cfg_factory: Any, monitor: Monitor, tmp_path: Path
) -> None:
    cfg = gate_cfg_factory(image_key=PUBLIC)
    portrait = FACE.read_bytes() if fmt == "jpeg" else jpeg2000(FACE)
    asyncio.run(_referral(cfg, portrait))
    assert monitor.wait_for(lambda _: bool(monitor.on("event/referral-image")), 10)
    (msg,) = monitor.on("event/referral-image")
    (ref,) = [m for m in monitor.on("event/referral") if m["type"] == "referral.opened"]
    images = open_image_message(msg, "kul1", "g01", CONSOLE_KEY)
    assert images.txn_id == ref["txn_id"]
    assert images.portrait is not None and bytes(images.portrait[:3]) == b"\xff\xd8\xff"
    if fmt == "jpeg":
        assert images.portrait == FACE.read_bytes()  # the chip portrait, byte for byte
    else:  # JPEG 2000 from the chip reaches the browser as a JPEG of the same picture
        import cv2
        import numpy as np

        shown = cv2.imdecode(np.frombuffer(images.portrait, np.uint8), cv2.IMREAD_COLOR)
        assert shown.shape == cv2.imread(str(FACE)).shape
    assert images.frame is not None and bytes(images.frame[:3]) == b"\xff\xd8\xff"
    assert images.scores["match"] == ref["face"]["score"]
    # nothing of either image rests in the gate's data directory (outbox, WAL, journal)
    data = b"".join(p.read_bytes() for p in (tmp_path / "var").rglob("*") if p.is_file())
    assert FACE.read_bytes()[:64] not in data and b"\xff\xd8\xff" not in data


def test_queued_for_an_offline_console_the_broker_holds_ciphertext_only(
    gate_cfg_factory: Any, broker: Broker, tmp_path: Path
) -> None:
    """Item 5: the console's persistent session queues the image on the broker's disk."""
    offline = Monitor(broker, user="console", client_id="autogate-console-offline")
    offline.client.disconnect()
    offline.client.loop_stop()
    cfg = gate_cfg_factory(image_key=PUBLIC)
    asyncio.run(_referral(cfg, FACE.read_bytes()))
    broker.wait_saved()
    db = (broker.directory / "mosquitto.db").read_bytes()
    assert b"referral.image/2" in db  # the image is queued there for the console
    face = FACE.read_bytes()
    for start in range(200, len(face) - 64, 997):
        window = face[start : start + 48]
        assert window not in db
        assert base64.b64encode(window)[4:40] not in db
    assert b'"portrait"' not in db and b"image/jpeg" not in db


def test_without_the_console_key_no_photo_leaves_the_gate(
    gate_cfg_factory: Any, monitor: Monitor
) -> None:
    asyncio.run(_referral(gate_cfg_factory(), FACE.read_bytes()))
    assert monitor.wait_for(lambda _: bool(monitor.on("event/referral")), 10)
    assert monitor.on("event/referral-image") == []
    assert json.dumps(monitor.on("event/referral")).find("/9j/") < 0  # no base64 JPEG
