"""No face data outlives its transaction, even when a device answers after it ended.

The chip read and the face burst run in tasks; the traveller can take the passport away
(or the gate go out of service) while they run. Their late answers must be dropped and
counted by the daemon's vault, not kept until the next restart. The ordering is forced
with events: the device answers only when the test says so, after the end it waits for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from autogate.daemon import Daemon
from autogate.ops import Ops
from autogate.wiring import build_devices, settings_from
from drivers.interfaces import ChipReading, Frame
from gate import inputs as i
from gate.config import load_config
from gate.machine import State
from sim.devices import DEFAULT_TRAVELLERS, SimCamera, SimChip
from tests.ops.helpers import make_config
from tests.ops.test_vault import face_frame, face_jpeg


class HeldChip(SimChip):
    """Answers with a real portrait once ``release`` is set."""

    def __init__(self, hall) -> None:  # type: ignore[no-untyped-def]
        super().__init__(hall)
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    async def read(self, mrz):  # type: ignore[no-untyped-def]
        reading = await super().read(mrz)
        self.reading.set()
        await self.release.wait()
        return ChipReading(reading.result, portrait=face_jpeg())


class HeldCamera(SimCamera):
    def __init__(self, hall) -> None:  # type: ignore[no-untyped-def]
        super().__init__(hall)
        self.filming = asyncio.Event()
        self.release = asyncio.Event()

    async def burst(self, n: int) -> Sequence[Frame]:
        self.filming.set()
        await self.release.wait()
        return [Frame(face_frame(), 0.0) for _ in range(n)]


async def _until(pred, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


async def test_late_chip_portrait_and_late_frame_are_dropped(tmp_path: Path) -> None:
    cfg = load_config(make_config(tmp_path))
    ops = Ops.build(cfg, env={})
    devices, hall = build_devices(cfg)
    chip, camera = HeldChip(hall), HeldCamera(hall)
    devices.chip, devices.camera = chip, camera
    daemon = Daemon(cfg, devices, settings_from(cfg), vault=ops.vault)
    hall.emits["bus"] = daemon.emit
    stop = asyncio.Event()
    runner = asyncio.ensure_future(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), 10)
        # 1. the passport is taken away while its chip is read
        hall.current = DEFAULT_TRAVELLERS[0]
        hall._emit("scanner", i.DocumentPlaced())
        await asyncio.wait_for(chip.reading.wait(), 10)
        hall._emit("scanner", i.DocumentRemoved())
        await _until(lambda: daemon.gate.state is State.IDLE)
        chip.release.set()  # the read finishes after the transaction was aborted
        await _until(lambda: daemon.vault.dropped_late >= 1)
        assert daemon.vault.held() == [] and daemon.vault._items == {}

        # 2. the gate goes out of service while the face burst runs
        chip.reading.clear()
        hall._emit("scanner", i.DocumentPlaced())
        await _until(lambda: daemon.gate.state is State.ENTRY_OPEN)
        hall._emit("barrier", i.PresenceChanged(1))
        await asyncio.wait_for(camera.filming.wait(), 10)
        assert daemon.vault.held() != []  # the portrait of the traveller inside
        hall._emit("barrier", i.LinkLost("barrier", "cable pulled"))
        await _until(lambda: daemon.gate.state is State.OUT_OF_SERVICE)
        await _until(lambda: daemon.vault.held() == [])
        camera.release.set()  # the burst ends after the transaction did
        await _until(lambda: daemon.vault.dropped_late >= 2)
        await asyncio.sleep(0.05)
        assert daemon.vault.held() == [] and daemon.vault._items == {}
    finally:
        chip.release.set()
        camera.release.set()
        stop.set()
        await runner
