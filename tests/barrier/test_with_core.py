"""The real driver and simulated controller feeding the real core (``gate.machine``).

A minimal version of the daemon's loop: the driver's inputs go through ``step``, door
actions run in order on the driver. It checks that what the driver reports is what the
core's safety rules need: tailgating -> ALARM, emergency -> both doors released, a stuck
door -> ALARM, a lost link -> OUT_OF_SERVICE.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from drivers.barrier import ModbusBarrier
from drivers.errors import DeviceError
from drivers.regmap import load_regmap
from gate import inputs as i
from gate import machine
from gate.actions import CloseDoor, OpenDoor
from gate.inputs import Door
from gate.reasons import ReasonCode
from gate.results import ListsResult
from sim.barrier import SimController
from tests.core.helpers import chip, doc, face, settings

from .conftest import make_cfg

S = machine.State


class CoreLoop:
    def __init__(self, barrier: ModbusBarrier) -> None:
        self.barrier = barrier
        self.gate = machine.initial(settings(), time.time(), boot="t")
        self.actions: list[object] = []
        self.inputs: asyncio.Queue[i.Input] = asyncio.Queue()
        self.doors: asyncio.Queue[object] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(self._consume()), asyncio.create_task(self._drive())]
        await self.barrier.start(self.inputs.put_nowait)
        self.inputs.put_nowait(i.Started())
        await self.until(lambda g: g.state is S.IDLE)

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.barrier.close()

    def feed(self, ev: i.Input) -> None:
        self.inputs.put_nowait(ev)

    async def _consume(self) -> None:
        while True:
            ev = await self.inputs.get()
            self.gate, acts = machine.step(self.gate, ev, time.time())
            self.actions += acts
            for a in acts:
                if isinstance(a, OpenDoor | CloseDoor):
                    self.doors.put_nowait(a)

    async def _drive(self) -> None:
        while True:  # as autogate/daemon.py's door worker does
            a = await self.doors.get()
            try:
                if isinstance(a, OpenDoor):
                    await self.barrier.open(a.door)
                elif isinstance(a, CloseDoor):
                    await self.barrier.close_door(a.door)
            except DeviceError as exc:
                self.feed(i.DeviceFault("barrier", exc.detail))

    async def until(self, pred, timeout: float = 4.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not pred(self.gate):
            if time.monotonic() > deadline:
                raise AssertionError(f"gate stayed {self.gate.state}; actions {self.actions}")
            await asyncio.sleep(0.01)

    @property
    def txn(self) -> str:
        assert self.gate.txn is not None
        return self.gate.txn.id

    async def to_entry_open(self) -> None:
        self.feed(i.DocumentPlaced())
        await self.until(lambda g: g.txn is not None)
        self.feed(i.DocumentRead(self.txn, doc()))
        self.feed(i.ChipRead(self.txn, chip()))
        self.feed(i.ListsChecked(self.txn, ListsResult()))
        await self.until(lambda g: g.state is S.ENTRY_OPEN)


@pytest.fixture
async def core(sim: SimController) -> AsyncIterator[CoreLoop]:
    loop = CoreLoop(ModbusBarrier(make_cfg(sim.port), load_regmap("generic-2door")))
    await loop.start()
    yield loop
    await loop.stop()


async def test_accepted_crossing(sim: SimController, core: CoreLoop) -> None:
    await core.to_entry_open()
    await sim.walk_in()  # the core closes the entry behind the traveller
    await core.until(lambda g: g.state is S.IN_MANTRAP)
    assert sim.door_closed(Door.ENTRY)
    core.feed(i.FaceVerified(core.txn, face(True)))
    await core.until(lambda g: g.state is S.EXIT_OPEN)
    await sim.walk_out()
    await core.until(lambda g: g.state is S.IDLE)
    await asyncio.sleep(0.3)
    assert sim.door_closed(Door.EXIT) and sim.door_closed(Door.ENTRY)


async def test_tailgating_raises_alarm(sim: SimController, core: CoreLoop) -> None:
    await core.to_entry_open()
    await sim.tailgate()
    await core.until(lambda g: g.state is S.ALARM)
    assert any(ReasonCode.GATE_TAILGATING in getattr(a, "reasons", ()) for a in core.actions)


async def test_emergency_releases_both_doors(sim: SimController, core: CoreLoop) -> None:
    sim.model.hw_emergency_release = False  # the core's command alone must open them
    sim.set_emergency(True)
    await core.until(lambda g: g.state is S.EMERGENCY)
    await asyncio.sleep(0.4)
    assert sim.door_open_commanded(Door.ENTRY) and sim.door_open_commanded(Door.EXIT)
    assert not sim.door_closed(Door.ENTRY) and not sim.door_closed(Door.EXIT)


async def test_stuck_door_raises_alarm(sim: SimController, core: CoreLoop) -> None:
    await core.to_entry_open()
    await core.until(lambda g: sim.model.doors[Door.ENTRY].opened)
    sim.block_door(Door.ENTRY)  # jammed open
    await sim.walk_in()
    await core.until(lambda g: g.state is S.ALARM)
    assert any(ReasonCode.GATE_DOOR_STUCK in getattr(a, "reasons", ()) for a in core.actions)


async def test_pulled_cable_puts_gate_out_of_service(sim: SimController, core: CoreLoop) -> None:
    sim.pull_cable()
    await core.until(lambda g: g.state is S.OUT_OF_SERVICE and "barrier" in g.faults)
    sim.restore_cable()
    await core.until(lambda g: "barrier" not in g.faults)
    assert core.gate.state is S.OUT_OF_SERVICE  # back in service only by an officer
