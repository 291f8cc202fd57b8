"""A face verification that dies of a bug (an odd portrait or frame no test had seen)
ends that traveller's face check, a reasoned referral, never the lane: it was a
DeviceFault('camera') from the daemon's guard, out of service, and nothing ever cleared
it. Same for the portrait's embedding ahead of the burst (``prepare``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from autogate.daemon import Daemon
from autogate.wiring import build_devices, settings_from
from drivers.interfaces import FaceVerification, Frame
from gate import inputs as i
from gate.config import load_config
from gate.machine import State
from gate.reasons import ReasonCode
from sim.devices import DEFAULT_TRAVELLERS
from tests.ops.helpers import make_config

pytestmark = pytest.mark.timeout(60)


class FaceCrashOnce:
    """The face device's first verification (and every prepare) raises a bug."""

    name = "face"

    def __init__(self, inner: object) -> None:
        self.inner, self.calls = inner, 0

    async def start(self, emit: i.Input) -> None:
        start = getattr(self.inner, "start", None)
        if start is not None:
            await start(emit)

    async def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            await close()

    async def prepare(self, portrait: bytes | None) -> None:
        raise RuntimeError("dlib: unsupported image type")

    async def verify(self, portrait: bytes | None, frames: Sequence[Frame]) -> FaceVerification:
        self.calls += 1
        if self.calls == 1:
            raise IndexError("index 3 is out of bounds for axis 0 with size 3")
        return await self.inner.verify(portrait, frames)  # type: ignore[attr-defined, no-any-return]


async def test_a_face_check_that_crashes_is_referred_and_the_next_traveller_crosses(
    tmp_path: Path,
) -> None:
    cfg = load_config(make_config(tmp_path))
    devices, hall = build_devices(cfg)
    devices = replace(devices, face=FaceCrashOnce(devices.face))  # type: ignore[arg-type]
    daemon = Daemon(cfg, devices, settings_from(cfg))
    seen: list[i.Input] = []
    emit = daemon.emit

    def spy(event: i.Input) -> None:
        seen.append(event)
        emit(event)

    daemon.emit = spy  # type: ignore[method-assign]
    hall.emits["bus"] = spy  # the officer's commands
    stop = asyncio.Event()
    runner = asyncio.ensure_future(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), 10)
        citizen = DEFAULT_TRAVELLERS[0]
        assert await hall.walk(citizen) == "sent back"  # referred: the exit never opens
        for _ in range(200):  # the send-back returns the gate to IDLE, the entry closed
            # (on a loaded machine the entry's "closed" could come after the next
            # traveller's document, and be taken for that traveller's entry)
            if daemon.gate.state is State.IDLE and daemon.gate.entry_sensed == "closed":
                break
            await asyncio.sleep(0.05)
        assert daemon.gate.state is State.IDLE, daemon.gate.state
        # decide_s: how long the hall waits for a door (generous: a loaded machine)
        assert await hall.walk(citizen, decide_s=10) == "crossed"
    finally:
        stop.set()
        await runner
    assert not [e for e in seen if isinstance(e, i.DeviceFault)]
    faces = [e for e in seen if isinstance(e, i.FaceVerified)]
    assert faces[0].result.reasons == (ReasonCode.FACE_UNREADABLE,) and not faces[0].result.match
