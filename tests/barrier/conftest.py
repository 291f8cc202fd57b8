"""Fixtures: a simulated controller on a real pty pair and the real driver on the other end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from drivers.barrier import ModbusBarrier
from drivers.regmap import load_regmap
from gate.config import ModbusBarrierConfig
from gate.inputs import Input
from sim.barrier import SimController

# Short timings so link faults show up quickly; the defaults are for a real gate.
FAST = dict(
    parity="N",  # the simulated line is 8N1 (see docs/barrier.md on ptys and parity)
    poll_s=0.02,
    confirm_poll_s=0.01,
    confirm_timeout_s=1.0,
    heartbeat_s=0.1,
    watchdog_s=0.5,
    timeout_s=0.25,  # generous: the CI machine is shared and often loaded
    retries=2,
    backoff_min_s=0.05,
    backoff_max_s=0.2,
)


class Recorder:
    """Collects emitted inputs; ``wait_for`` waits until one matches."""

    def __init__(self) -> None:
        self.events: list[Input] = []

    def __call__(self, event: Input) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, pred: Callable[[Input], bool], timeout: float = 3.0) -> Input:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for e in self.events[seen:]:
                if pred(e):
                    return e
            seen = len(self.events)
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching event in {timeout}s; got {self.events}")
            await asyncio.sleep(0.005)

    def clear(self) -> None:
        self.events.clear()


def make_cfg(port: str, **kw: Any) -> ModbusBarrierConfig:
    return ModbusBarrierConfig(type="modbus_rtu", port=port, **{**FAST, **kw})


@pytest.fixture
async def sim() -> AsyncIterator[SimController]:
    async with SimController(travel_s=0.1, walk_s=0.05) as s:
        yield s


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
async def barrier(sim: SimController, rec: Recorder) -> AsyncIterator[ModbusBarrier]:
    b = ModbusBarrier(make_cfg(sim.port), load_regmap("generic-2door"))
    await b.start(rec)
    yield b
    await b.close()


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """pymodbus's habit: a test that leaves tasks running fails."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0.05)
    left = [
        t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()
    ]
    assert not left, f"tasks left running: {left}"
