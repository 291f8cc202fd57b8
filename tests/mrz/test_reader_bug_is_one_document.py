"""A document read that dies of a bug (a page image no test had seen) is that document's
DOC_UNREADABLE, a referral at the reader, never the lane: it was a DeviceFault('scanner')
from the daemon's guard, out of service, and nothing cleared it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from autogate.daemon import Daemon
from autogate.wiring import build_devices, settings_from
from gate import inputs as i
from gate.config import load_config
from gate.machine import State
from gate.reasons import ReasonCode
from gate.results import DocumentResult
from sim.devices import DEFAULT_TRAVELLERS
from tests.ops.helpers import make_config

pytestmark = pytest.mark.timeout(60)


class ReaderCrashOnce:
    name = "scanner"

    def __init__(self, inner: object) -> None:
        self.inner, self.reads = inner, 0

    async def start(self, emit: i.Input) -> None:
        await self.inner.start(emit)  # type: ignore[attr-defined]

    async def close(self) -> None:
        await self.inner.close()  # type: ignore[attr-defined]

    async def read(self) -> DocumentResult:
        self.reads += 1
        if self.reads == 1:
            raise TypeError("'NoneType' object is not subscriptable")
        return await self.inner.read()  # type: ignore[attr-defined, no-any-return]


async def test_a_read_that_crashes_is_referred_and_the_next_document_crosses(
    tmp_path: Path,
) -> None:
    cfg = load_config(make_config(tmp_path))
    devices, hall = build_devices(cfg)
    devices = replace(devices, scanner=ReaderCrashOnce(devices.scanner))  # type: ignore[arg-type]
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
        assert await hall.walk(citizen) == "sent back"  # referred at the reader
        for _ in range(200):
            if daemon.gate.state is State.IDLE and daemon.gate.entry_sensed != "open":
                break
            await asyncio.sleep(0.05)
        assert daemon.gate.state is State.IDLE, daemon.gate.state
        # decide_s: how long the hall waits for a door (generous: a loaded machine)
        assert await hall.walk(citizen, decide_s=10) == "crossed"
    finally:
        stop.set()
        await runner
    assert not [e for e in seen if isinstance(e, i.DeviceFault)]
    reads = [e for e in seen if isinstance(e, i.DocumentRead)]
    assert reads[0].result.reasons == (ReasonCode.DOC_UNREADABLE,)
