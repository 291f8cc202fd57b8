"""Replies with a valid CRC but impossible content (issue 16 item 13): what the physics
or the interlock forbid is a controller fault with its reason, never believed; a glitch
is not a forced door; a restart flag at every poll is one fault, not a stream."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from drivers.barrier import ModbusBarrier
from gate.inputs import (
    DeviceFault,
    Door,
    DoorChanged,
    EmergencyChanged,
    LinkRestored,
    PresenceChanged,
)
from sim.barrier import Person, SimController

from .conftest import Recorder


def _lie(sim: SimController, change: Callable[[dict[int, bool]], None], times: int | None) -> None:
    """Make the controller's discrete-input replies lie (``times`` replies, or always)."""
    real = sim._di_values
    left = itertools.count() if times is None else iter(range(times))

    def lying() -> dict[int, bool]:
        values = real()
        if next(left, None) is not None:
            change(values)
        return values

    sim._di_values = lying  # type: ignore[method-assign]


async def _settle(rec: Recorder) -> None:
    await rec.wait_for(lambda e: isinstance(e, DoorChanged))  # the first full state
    await asyncio.sleep(0.1)
    rec.clear()


async def test_door_at_both_limit_switches_is_a_fault_not_a_door_change(
    sim: SimController, barrier: ModbusBarrier, rec: Recorder
) -> None:
    await _settle(rec)
    di = sim.map.discrete_inputs
    assert di.entry_opened is not None

    def both(v: dict[int, bool]) -> None:
        v[di.entry_closed] = True
        v[di.entry_opened] = True

    _lie(sim, both, None)
    fault = await rec.wait_for(lambda e: isinstance(e, DeviceFault))
    assert "entry door reports closed and fully open at once" in fault.detail
    await asyncio.sleep(0.3)
    assert len(rec.of(DeviceFault)) == 1, "one fault, not one per poll"
    sim._di_values = SimController._di_values.__get__(sim)  # type: ignore[method-assign]
    await rec.wait_for(lambda e: isinstance(e, LinkRestored))


async def test_both_doors_open_outside_emergency_is_a_fault(
    sim: SimController, barrier: ModbusBarrier, rec: Recorder
) -> None:
    await _settle(rec)
    di = sim.map.discrete_inputs

    def both_open(v: dict[int, bool]) -> None:
        v[di.entry_closed] = v[di.exit_closed] = False

    _lie(sim, both_open, None)
    fault = await rec.wait_for(lambda e: isinstance(e, DeviceFault))
    assert "both doors report open outside EMERGENCY" in fault.detail
    opened = [e for e in rec.of(DoorChanged) if not e.closed]
    assert len(opened) < 2, "both doors open was passed on to the core"


async def test_both_doors_open_in_emergency_is_believed(
    sim: SimController, barrier: ModbusBarrier, rec: Recorder
) -> None:
    await _settle(rec)
    sim.set_emergency(True)
    await rec.wait_for(lambda e: e == EmergencyChanged(True))
    await rec.wait_for(lambda e: e == DoorChanged(Door.ENTRY, False))
    await rec.wait_for(lambda e: e == DoorChanged(Door.EXIT, False))
    sim.set_emergency(False)  # both close again: closing doors are not a fault
    await rec.wait_for(lambda e: e == DoorChanged(Door.EXIT, True))
    await rec.wait_for(lambda e: e == DoorChanged(Door.ENTRY, True))
    assert not rec.of(DeviceFault)


async def test_one_glitched_reply_is_not_a_forced_door(
    sim: SimController, barrier: ModbusBarrier, rec: Recorder
) -> None:
    await _settle(rec)
    di = sim.map.discrete_inputs

    def entry_open(v: dict[int, bool]) -> None:
        v[di.entry_closed] = False

    _lie(sim, entry_open, 1)
    await asyncio.sleep(0.3)
    assert not rec.of(DoorChanged), rec.events
    # a door that stays open without a command is believed: the core raises door forced
    _lie(sim, entry_open, None)
    await rec.wait_for(lambda e: e == DoorChanged(Door.ENTRY, False))
    assert not rec.of(DeviceFault)


async def test_restart_flag_at_every_poll_is_one_fault(
    sim: SimController, barrier: ModbusBarrier, rec: Recorder
) -> None:
    await _settle(rec)
    real = sim._ir_values
    boots = itertools.count(100)

    def restarting() -> dict[int, int]:
        values = real()
        values[sim.map.input_registers.boot_count] = next(boots) & 0xFFFF  # type: ignore[index]
        return values

    sim._ir_values = restarting  # type: ignore[method-assign]
    await asyncio.sleep(1.0)  # about 50 polls
    faults = rec.of(DeviceFault)
    assert 1 <= len(faults) <= 3, [f.detail for f in faults]
    assert "restart at every poll" in faults[-1].detail
    # and the fault stays: no LinkRestored after the storm fault while it goes on
    last = max(i for i, e in enumerate(rec.events) if isinstance(e, DeviceFault))
    assert not [e for e in rec.events[last:] if isinstance(e, LinkRestored)]


async def test_a_counted_traveller_comes_after_the_door_they_came_through(
    sim: SimController, barrier: ModbusBarrier, rec: Recorder
) -> None:
    """One poll is two reads (discrete inputs, input registers). The world may move between
    them; whichever read comes second must be the door's, so the core never hears of a
    traveller counted inside before the door that let them in (the bench's false
    ``gate_door_forced``). The movement is injected at the counter read: no timing."""
    await _settle(rec)
    real = sim._ir_values
    moved = False

    def step_in_at_the_counter_read() -> dict[int, int]:
        nonlocal moved
        if not moved:  # the entry opens and the traveller is inside, all at once
            moved = True
            entry = sim.model.doors[Door.ENTRY]
            entry.commanded_open, entry.position = True, 1.0
            sim.model.people.append(Person("inside", slot=1))
        return real()

    sim._ir_values = step_in_at_the_counter_read  # type: ignore[method-assign]
    await rec.wait_for(lambda e: isinstance(e, PresenceChanged) and e.count == 1)
    order = [e for e in rec.events if isinstance(e, DoorChanged | PresenceChanged)]
    assert order[0] == DoorChanged(Door.ENTRY, False), order


async def test_a_people_count_no_mantrap_holds_is_a_fault_not_a_crowd(
    sim: SimController, barrier: ModbusBarrier, rec: Recorder
) -> None:
    """A counter that reads 65535 (a sensor failure, a register left uninitialised) is
    not 65,535 people: never a presence the core raises tailgating on, but the
    controller's fault with its reason; a sane count again clears it."""
    await _settle(rec)
    real = sim._ir_values
    address = sim.map.input_registers.people_count
    assert address is not None

    def broken_counter() -> dict[int, int]:
        values = real()
        values[address] = 0xFFFF
        return values

    sim._ir_values = broken_counter  # type: ignore[method-assign]
    fault = await rec.wait_for(lambda e: isinstance(e, DeviceFault))
    assert "people" in fault.detail and "65535" in fault.detail
    await asyncio.sleep(0.3)
    assert not [e for e in rec.of(PresenceChanged) if e.count > 1], rec.events
    assert len(rec.of(DeviceFault)) == 1, "one fault, not one per poll"
    sim._ir_values = real  # type: ignore[method-assign]
    await rec.wait_for(lambda e: isinstance(e, LinkRestored))
