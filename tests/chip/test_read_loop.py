"""Issue 16 item 3: a document's failure ends with that document (a reasoned referral);
only an unreachable reader is a device fault, and it clears itself when the reader
answers again."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

import drivers.chip as chip_driver
from autogate.daemon import Daemon
from autogate.wiring import build_devices, settings_from
from drivers.chip import PcscChipReader, ReaderNotFound
from drivers.interfaces import ChipReading
from gate import inputs as i
from gate.config import PcscChipConfig, load_config
from gate.machine import State
from gate.reasons import ReasonCode
from gate.results import MrzRecord
from sim.devices import DEFAULT_TRAVELLERS
from tests.ops.helpers import make_config

pytestmark = pytest.mark.timeout(60)
READER = "Virtual PCD 00 00"


class CrashOnce:
    """A chip reader whose first read dies of a bug (as today's parser did on a hostile
    chip), then reads normally."""

    name = "chip"

    def __init__(self, inner: object) -> None:
        self.inner, self.reads = inner, 0

    async def start(self, emit: i.Input) -> None:
        await self.inner.start(emit)  # type: ignore[attr-defined]

    async def close(self) -> None:
        await self.inner.close()  # type: ignore[attr-defined]

    async def read(self, mrz: MrzRecord) -> ChipReading:
        self.reads += 1
        if self.reads == 1:
            raise IndexError("index out of range")
        return await self.inner.read(mrz)  # type: ignore[attr-defined, no-any-return]


async def test_a_crashing_document_is_referred_and_the_next_crosses(tmp_path: Path) -> None:
    cfg = load_config(make_config(tmp_path))
    devices, hall = build_devices(cfg)
    devices = replace(devices, chip=CrashOnce(devices.chip))  # type: ignore[arg-type]
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
        assert await hall.walk(citizen) == "sent back"
        for _ in range(100):  # the officer's send-back returns the gate to IDLE
            if daemon.gate.state is State.IDLE:
                break
            await asyncio.sleep(0.05)
        assert daemon.gate.state is State.IDLE, daemon.gate.state
        assert await hall.walk(citizen) == "crossed"
    finally:
        stop.set()
        await runner
    assert not [e for e in seen if isinstance(e, i.DeviceFault)]
    reads = [e for e in seen if isinstance(e, i.ChipRead)]
    assert reads[0].result.reasons == (ReasonCode.CHIP_READ_ERROR,)


def reader(**kw: object) -> PcscChipReader:
    r = PcscChipReader(PcscChipConfig(type="pcsc", reader=READER, **kw), None)  # type: ignore[arg-type]
    r.PROBE_S = 0.05
    return r


async def test_unexpected_error_in_a_read_is_that_documents_read_error(monkeypatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise KeyError("a parser's bug")

    monkeypatch.setattr(chip_driver, "read_once", broken)
    reading = await reader().read(DEFAULT_TRAVELLERS[0].mrz)
    assert reading.result.present and reading.result.reasons == (ReasonCode.CHIP_READ_ERROR,)


async def test_missing_reader_is_a_fault_that_clears_itself(monkeypatch) -> None:
    visible: list[str] = []
    monkeypatch.setattr(chip_driver, "list_readers", lambda: list(visible))
    events: list[i.Input] = []
    r = reader()
    await r.start(events.append)  # no reader: a fault, not a failed start
    assert events == [i.DeviceFault("chip", f"reader {READER!r} not among []")]
    await asyncio.sleep(0.2)
    assert len(events) == 1  # still missing: nothing more
    visible.append(READER)
    for _ in range(40):
        if len(events) > 1:
            break
        await asyncio.sleep(0.05)
    assert events[1:] == [i.LinkRestored("chip")]
    await r.close()


async def test_reader_lost_mid_service_clears_when_it_answers(monkeypatch) -> None:
    visible = [READER]
    monkeypatch.setattr(chip_driver, "list_readers", lambda: list(visible))

    def unplugged(*_: object, **__: object) -> None:
        raise ReaderNotFound("chip", "reader unplugged")

    events: list[i.Input] = []
    r = reader()
    await r.start(events.append)
    assert events == []
    visible.clear()
    monkeypatch.setattr(chip_driver, "read_once", unplugged)
    with pytest.raises(ReaderNotFound):  # the daemon makes it a DeviceFault
        await r.read(DEFAULT_TRAVELLERS[0].mrz)
    await asyncio.sleep(0.2)
    assert events == []
    visible.append(READER)
    for _ in range(40):
        if events:
            break
        await asyncio.sleep(0.05)
    assert events == [i.LinkRestored("chip")]
    await r.close()
