"""A session with face-sized images: nothing biometric on disk after it, sealed referrals go.

The simulated chip and camera are given a real JPEG portrait (the size DG2 carries) and
640x480 frames, so the scan looks for what a leak would really leave: JPEG / JPEG 2000
signatures and any stretch of the raw frame bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from autogate.daemon import Daemon
from autogate.ops import Ops
from autogate.wiring import build_devices, settings_from
from drivers.interfaces import ChipReading, Frame
from gate.config import load_config
from sim.devices import DEFAULT_TRAVELLERS, SimCamera, SimChip, SimTraveller, sim_mrz
from tests.ops.helpers import has_image_magic, image_hits, make_config, write_aes_key
from tests.ops.test_vault import face_frame, face_jpeg

PORTRAIT = face_jpeg()
FRAME = face_frame()


class JpegChip(SimChip):
    async def read(self, mrz):  # type: ignore[no-untyped-def]
        reading = await super().read(mrz)
        return ChipReading(reading.result, portrait=PORTRAIT)


class VgaCamera(SimCamera):
    async def burst(self, n: int) -> Sequence[Frame]:
        return [Frame(FRAME, time.monotonic()) for _ in range(n)]


def leaks(root: Path) -> list[tuple[Path, str]]:
    raw = FRAME.tobytes()
    return image_hits(root, (PORTRAIT[200:264], raw[10_000:10_064], raw[-64:]))


async def session(tmp_path: Path, retention_s: float) -> tuple[Path, list[tuple[Path, str]]]:
    write_aes_key(tmp_path / "referral.key")
    cfg = load_config(
        make_config(
            tmp_path,
            privacy={"referral_key": str(tmp_path / "referral.key"), "retention_s": retention_s},
        )
    )
    ops = Ops.build(cfg, env={})
    devices, hall = build_devices(cfg)
    devices.chip, devices.camera = JpegChip(hall), VgaCamera(hall)
    daemon = Daemon(cfg, devices, settings_from(cfg), vault=ops.vault)
    ops.attach(daemon)
    hall.emits["bus"] = daemon.emit
    stop = asyncio.Event()
    runner = asyncio.ensure_future(daemon.run(stop))
    await ops.start(daemon, stop)
    var = cfg.storage.data_dir
    try:
        await asyncio.wait_for(daemon.ready.wait(), 10)
        assert await hall.walk(DEFAULT_TRAVELLERS[0]) == "crossed"
        await asyncio.sleep(0.1)
        after_accept = leaks(var)
        assert daemon.vault.held() == []  # not even in memory
        lookalike = SimTraveller("lookalike", sim_mrz("TAN", "AH KOW", "B11122233"), face_score=0.2)
        hall.walk_s = 0.05
        walking = asyncio.ensure_future(hall.walk(lookalike, decide_s=0.5))
        while not list((var / "referrals").glob("*.bin")):
            assert not walking.done(), "the referral was never sealed"
            await asyncio.sleep(0.02)
        sealed = next((var / "referrals").glob("*.bin"))
        assert not has_image_magic(sealed.read_bytes()) and leaks(var) == []
        assert await walking == "sent back"  # the officer resolved it
    finally:
        stop.set()
        await runner
        await ops.stop()
    return var, after_accept


async def test_no_biometrics_on_disk_after_accept_and_after_a_resolved_referral(
    tmp_path: Path,
) -> None:
    var, after_accept = await session(tmp_path, retention_s=0)
    assert after_accept == []
    assert list((var / "referrals").iterdir()) == []  # deleted at resolution
    assert leaks(var) == []
    # the probe is not blind: the same scan finds the images written in the clear
    (var / "leak.bin").write_bytes(b"x" + PORTRAIT + FRAME.tobytes())
    assert {kind for _, kind in leaks(var)} >= {"jpeg", "blob"}


async def test_referral_kept_sealed_during_retention(tmp_path: Path) -> None:
    var, _ = await session(tmp_path, retention_s=3600)
    (sealed,) = list((var / "referrals").glob("*.bin"))
    assert leaks(var) == []
    ops = Ops.build(load_config(tmp_path / "gate.yaml"), env={})  # a restart: still held
    bio = ops.vault.get(sealed.stem)
    assert bio is not None and bio.portrait == PORTRAIT
    assert bio.best_frame is not None and np.array_equal(bio.best_frame, FRAME)
