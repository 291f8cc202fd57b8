"""A simulated gate controller: a real pymodbus RTU server on a real pty, with door physics.

Layout (all in the caller's asyncio loop, no threads)::

    driver (pymodbus client) ─ pty A ═ Wire (relay) ═ pty B ─ pymodbus ModbusSerialServer
                                         │                        │
                          line speed, pulled cable,        SimDevice action syncs the
                          noise, corrupted replies          registers with GateModel

Two ``os.openpty()`` pairs joined by an in-process relay play the RS-485 cable: unlike a
bare socat pair, the relay can pace bytes at the configured baud rate (a pty has no line
speed, so without it 9600 and 115200 baud would measure the same) and can cut, garble or
drop what crosses it. The register layout comes from the same YAML map as the driver's
(``drivers/regmap.py``). The control API (``walk_in``, ``tailgate``, ``pull_cable``, ...)
is what tests and the scenario runner drive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import time
import tty
from dataclasses import dataclass, field

from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.regmap import RegisterMap, load_regmap
from gate.inputs import Door

log = logging.getLogger(__name__)

FIRMWARE = 0x0103  # 1.3
STATUS_WATCHDOG = 0x0001
WALKABLE = 0.8  # door position (0 closed .. 1 open) a person can pass


class Wire:
    """The serial cable: two pty pairs and a relay that paces, cuts and garbles bytes."""

    def __init__(self, baudrate: int, rng: random.Random) -> None:
        self.baudrate = baudrate
        self.rng = rng
        self.cut = False
        self.corrupt_next = 0  # garble this many chunks travelling to the driver
        self._fds: list[int] = []
        self._masters: dict[str, int] = {}
        self.paths: dict[str, str] = {}
        self._busy_until = {"driver": 0.0, "controller": 0.0}
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        for side in ("driver", "controller"):
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo, no line editing before pyserial configures it
            os.set_blocking(master, False)
            self._fds += [master, slave]  # keep the slave open: master reads never hit EIO
            self._masters[side] = master
            self.paths[side] = os.ttyname(slave)
        self._loop.add_reader(self._masters["driver"], self._relay, "driver", "controller")
        self._loop.add_reader(self._masters["controller"], self._relay, "controller", "driver")

    def close(self) -> None:
        if self._loop is not None:
            for fd in self._masters.values():
                self._loop.remove_reader(fd)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        self._masters.clear()

    def _relay(self, src: str, dst: str) -> None:
        try:
            data = os.read(self._masters[src], 4096)
        except OSError:
            return
        if not data or self.cut:
            return
        if dst == "driver" and self.corrupt_next > 0:
            self.corrupt_next -= 1
            i = self.rng.randrange(len(data))
            data = data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1 :]
        self.send(data, dst)

    def send(self, data: bytes, toward: str) -> None:
        """Put ``data`` on the line toward one end, at line speed (10 bits per byte)."""
        assert self._loop is not None
        now = self._loop.time()
        start = max(now, self._busy_until[toward])
        done = start + len(data) * 10 / self.baudrate
        self._busy_until[toward] = done
        self._loop.call_at(done, self._write, toward, data)

    def _write(self, toward: str, data: bytes) -> None:
        fd = self._masters.get(toward)
        if fd is None:
            return
        with contextlib.suppress(OSError):  # a full pty buffer drops bytes, as a line would
            os.write(fd, data)


@dataclass
class DoorModel:
    travel_s: float
    position: float = 0.0  # 0 closed and locked .. 1 fully open
    commanded_open: bool = False
    blocked: bool = False  # jammed: does not move at all

    @property
    def closed(self) -> bool:
        return self.position <= 0.0

    @property
    def opened(self) -> bool:
        return self.position >= 1.0


@dataclass
class Person:
    zone: str  # "entry_door", "inside", "exit_door"
    slot: int = 0  # which inner beam a person inside stands on


@dataclass
class GateModel:
    """The controller's physical world; ``step(dt)`` advances it."""

    travel_s: float = 0.3
    hw_emergency_release: bool = True
    doors: dict[Door, DoorModel] = field(default_factory=dict)
    people: list[Person] = field(default_factory=list)
    emergency: bool = False
    tamper: bool = False
    lamps: dict[str, bool] = field(default_factory=dict)
    heartbeat: int = 0
    watchdog_s: float = 0.0  # 0 = off until the daemon sets it
    last_heartbeat: float | None = None  # None = watchdog not armed yet
    watchdog_tripped: bool = False
    boot_count: int = 1

    def __post_init__(self) -> None:
        if not self.doors:
            self.doors = {d: DoorModel(self.travel_s) for d in Door}

    def beams(self, n: int) -> list[bool]:
        out = [False] * n
        for p in self.people:
            if p.zone == "entry_door":
                out[0] = True
            elif p.zone == "exit_door":
                out[-1] = True
            elif n > 2:
                out[min(max(p.slot, 1), n - 2)] = True
        return out

    def in_doorway(self, door: Door) -> bool:
        zone = "entry_door" if door is Door.ENTRY else "exit_door"
        return any(p.zone == zone for p in self.people)

    def write_heartbeat(self, value: int, now: float) -> None:
        if value != self.heartbeat or self.last_heartbeat is None:
            self.heartbeat = value
            self.last_heartbeat = now
            self.watchdog_tripped = False

    def step(self, dt: float, now: float) -> None:
        if (
            self.watchdog_s > 0
            and self.last_heartbeat is not None
            and not self.watchdog_tripped
            and now - self.last_heartbeat > self.watchdog_s
        ):
            # Heartbeat lost: close and lock; opening needs a fresh command after recovery.
            self.watchdog_tripped = True
            for d in self.doors.values():
                d.commanded_open = False
        for door, d in self.doors.items():
            want_open = (d.commanded_open and not self.watchdog_tripped) or (
                self.emergency and self.hw_emergency_release
            )
            target = 1.0 if want_open else 0.0
            if d.blocked or (target < d.position and self.in_doorway(door)):
                continue
            rate = float("inf") if d.travel_s <= 0 else dt / d.travel_s
            if target > d.position:
                d.position = min(target, d.position + rate)
            else:
                d.position = max(target, d.position - rate)


class SimController:
    """A Modbus RTU gate controller on a pty, plus the control API tests drive it with."""

    def __init__(
        self,
        regmap: RegisterMap | None = None,
        *,
        slave_id: int = 1,
        baudrate: int = 115200,
        travel_s: float = 0.3,
        step_s: float = 0.005,
        walk_s: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.map = regmap or load_regmap("generic-2door")
        self.slave_id = slave_id
        self.baudrate = baudrate
        self.model = GateModel(travel_s=travel_s)
        self.step_s = step_s
        self.walk_s = walk_s  # time a body takes to cross a doorway beam
        self.rng = random.Random(seed)  # noise is reproducible
        self.wire = Wire(baudrate, self.rng)
        self.drop_replies = 0
        self.requests = 0
        self._server: ModbusSerialServer | None = None
        self._physics: asyncio.Task[None] | None = None
        self._serve: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------

    @property
    def port(self) -> str:
        """The driver's end of the line (a /dev/pts/N path)."""
        return self.wire.paths["driver"]

    async def start(self) -> None:
        self.wire.open()
        await self._start_server()
        self._physics = asyncio.create_task(self._run_physics(), name="sim-barrier-physics")

    async def close(self) -> None:
        if self._physics is not None:
            self._physics.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._physics
            self._physics = None
        await self._stop_server()
        self.wire.close()

    async def __aenter__(self) -> SimController:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _start_server(self) -> None:
        self._server = ModbusSerialServer(
            self._device(),
            framer=FramerType.RTU,
            port=self.wire.paths["controller"],
            baudrate=self.baudrate,
            trace_packet=self._trace_packet,
            trace_pdu=self._trace_pdu,
        )
        await self._server.serve_forever(background=True)

    async def _stop_server(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    async def _run_physics(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.step_s)
            now = time.monotonic()
            self.model.step(now - last, now)
            last = now

    # --- Modbus datastore -------------------------------------------------------

    def _device(self) -> SimDevice:
        m = self.map

        def bits(addrs: list[int]) -> list[SimData]:
            return [SimData(address=a, values=False, datatype=DataType.BITS) for a in sorted(addrs)]

        def regs(addrs: list[int]) -> list[SimData]:
            return [
                SimData(address=a, values=0, datatype=DataType.REGISTERS) for a in sorted(addrs)
            ]

        return SimDevice(
            id=self.slave_id,
            simdata=(
                bits(m.coils._addresses()),
                bits(m.discrete_inputs._addresses()),
                regs(m.holding_registers._addresses()),
                regs(m.input_registers._addresses()),
            ),
            action=self._action,
        )

    def _coil_values(self) -> dict[int, bool]:
        c, md = self.map.coils, self.model
        out = {
            c.entry_open: md.doors[Door.ENTRY].commanded_open,
            c.exit_open: md.doors[Door.EXIT].commanded_open,
        }
        for name in ("lamp_green", "lamp_red", "buzzer"):
            addr = getattr(c, name)
            if addr is not None:
                out[addr] = md.lamps.get(name, False)
        return out

    def _set_coil(self, addr: int, value: bool) -> None:
        c = self.map.coils
        if value and self.model.watchdog_tripped and addr in (c.entry_open, c.exit_open):
            return  # locked: an open needs a live heartbeat first
        if addr == c.entry_open:
            self.model.doors[Door.ENTRY].commanded_open = value
        elif addr == c.exit_open:
            self.model.doors[Door.EXIT].commanded_open = value
        else:
            for name in ("lamp_green", "lamp_red", "buzzer"):
                if getattr(c, name) == addr:
                    self.model.lamps[name] = value

    def _di_values(self) -> dict[int, bool]:
        di, md = self.map.discrete_inputs, self.model
        entry, exit_ = md.doors[Door.ENTRY], md.doors[Door.EXIT]
        out = {
            di.entry_closed: entry.closed,
            di.exit_closed: exit_.closed,
            di.emergency: md.emergency,
            di.tamper: md.tamper,
        }
        if di.entry_opened is not None:
            out[di.entry_opened] = entry.opened
        if di.exit_opened is not None:
            out[di.exit_opened] = exit_.opened
        out.update(zip(di.beams, md.beams(len(di.beams)), strict=True))
        return out

    def _ir_values(self) -> dict[int, int]:
        ir, md = self.map.input_registers, self.model
        out = {ir.firmware_version: FIRMWARE}
        if ir.people_count is not None:
            out[ir.people_count] = len(md.people)
        if ir.boot_count is not None:
            out[ir.boot_count] = md.boot_count & 0xFFFF
        if ir.status is not None:
            out[ir.status] = STATUS_WATCHDOG if md.watchdog_tripped else 0
        return out

    def _hr_values(self) -> dict[int, int]:
        hr = self.map.holding_registers
        out = {hr.heartbeat: self.model.heartbeat}
        if hr.watchdog_ds is not None:
            out[hr.watchdog_ds] = round(self.model.watchdog_s * 10)
        return out

    @staticmethod
    def _put_bits(registers: list[int], start: int, values: dict[int, bool]) -> None:
        # Bit blocks hold 16 bits per register; ``start`` is in register units.
        for addr, value in values.items():
            i, bit = addr // 16 - start, 1 << (addr % 16)
            if 0 <= i < len(registers):
                registers[i] = (registers[i] | bit) if value else (registers[i] & ~bit)

    @staticmethod
    def _put_regs(registers: list[int], start: int, values: dict[int, int]) -> None:
        for addr, value in values.items():
            if 0 <= addr - start < len(registers):
                registers[addr - start] = value

    async def _action(
        self,
        function_code: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        """Called by pymodbus on every access: bring the registers in line with the model."""
        self.requests += 1
        now = time.monotonic()
        if function_code in (1, 5, 15):
            self._put_bits(registers, start, self._coil_values())
            if set_values is not None:
                for i, v in enumerate(set_values):
                    self._set_coil(address + i, bool(v))
        elif function_code == 2:
            self._put_bits(registers, start, self._di_values())
        elif function_code == 4:
            self._put_regs(registers, start, self._ir_values())
        else:
            if set_values is not None:
                hr = self.map.holding_registers
                for i, v in enumerate(set_values):
                    if address + i == hr.heartbeat:
                        self.model.write_heartbeat(int(v), now)
                    elif address + i == hr.watchdog_ds:
                        self.model.watchdog_s = int(v) / 10
            self._put_regs(registers, start, self._hr_values())

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        # A real RS-485 slave stays silent on frames for other ids; pymodbus would answer
        # "device failure", so the request is dropped here (None: no reply is scheduled).
        if not sending and pdu.dev_id != self.slave_id:
            return None  # type: ignore[return-value]
        return pdu

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending and self.drop_replies > 0:
            self.drop_replies -= 1
            return b""
        return data

    # --- control API --------------------------------------------------------------

    def door_closed(self, door: Door) -> bool:
        return self.model.doors[door].closed

    def door_open_commanded(self, door: Door) -> bool:
        return self.model.doors[door].commanded_open

    @property
    def people(self) -> int:
        return len(self.model.people)

    async def _wait_walkable(self, door: Door, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.model.doors[door].position < WALKABLE:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{door} door did not open for the walker")
            await asyncio.sleep(self.step_s)

    async def _enter(self, slot: int, timeout: float) -> None:
        await self._wait_walkable(Door.ENTRY, timeout)
        p = Person("entry_door")
        self.model.people.append(p)
        await asyncio.sleep(self.walk_s)
        p.zone, p.slot = "inside", slot

    async def walk_in(self, timeout: float = 5.0) -> None:
        """One traveller walks through the open entry door and stands in the mantrap."""
        await self._enter(slot=len(self.map.discrete_inputs.beams) - 2, timeout=timeout)

    async def tailgate(self, timeout: float = 5.0) -> None:
        """Two bodies go through the entry door one right behind the other."""
        first = asyncio.create_task(self.walk_in(timeout))
        await asyncio.sleep(self.walk_s / 2)
        await self._enter(slot=1, timeout=timeout)
        await first

    async def _leave(self, door: Door, timeout: float) -> None:
        inside = [p for p in self.model.people if p.zone == "inside"]
        if not inside:
            raise RuntimeError("nobody in the mantrap")
        p = max(inside, key=lambda q: q.slot) if door is Door.EXIT else inside[0]
        await self._wait_walkable(door, timeout)
        p.zone = "exit_door" if door is Door.EXIT else "entry_door"
        await asyncio.sleep(self.walk_s)
        self.model.people.remove(p)

    async def walk_out(self, timeout: float = 5.0) -> None:
        """The traveller in the mantrap leaves landside through the exit door."""
        await self._leave(Door.EXIT, timeout)

    async def walk_back(self, timeout: float = 5.0) -> None:
        """The traveller in the mantrap is sent back out through the entry door."""
        await self._leave(Door.ENTRY, timeout)

    def set_emergency(self, active: bool = True) -> None:
        self.model.emergency = active

    def set_tamper(self, active: bool = True) -> None:
        self.model.tamper = active

    def block_door(self, door: Door, blocked: bool = True) -> None:
        self.model.doors[door].blocked = blocked

    def pull_cable(self) -> None:
        self.wire.cut = True

    def restore_cable(self) -> None:
        self.wire.cut = False

    def inject_noise(self, n: int = 16, toward: str = "driver") -> None:
        """Random bytes on the line (an induced burst), toward ``driver`` or ``controller``."""
        self.wire.send(self.rng.randbytes(n), toward)

    def corrupt_replies(self, n: int = 1) -> None:
        """Flip a byte in the next ``n`` chunks sent to the driver (CRC errors)."""
        self.wire.corrupt_next += n

    def drop(self, n: int = 1) -> None:
        """The controller ignores the next ``n`` requests (no reply at all)."""
        self.drop_replies += n

    async def restart(self, down_s: float = 0.3) -> None:
        """Power-cycle the controller: silent for ``down_s``, outputs off, boot count +1."""
        await self._stop_server()
        for d in self.model.doors.values():
            d.commanded_open = False
        self.model.lamps.clear()
        self.model.watchdog_s = 0.0
        self.model.last_heartbeat = None
        self.model.watchdog_tripped = False
        await asyncio.sleep(down_s)
        self.model.boot_count += 1
        await self._start_server()


async def _serve(args: argparse.Namespace) -> None:
    regmap = load_regmap(args.model, args.model_file)
    sim = SimController(
        regmap, slave_id=args.slave_id, baudrate=args.baudrate, travel_s=args.travel
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with sim:
        print(f"PORT {sim.port}", flush=True)  # point the driver's `port:` here
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Run a simulated controller until interrupted: ``python -m sim.barrier``."""
    p = argparse.ArgumentParser(prog="python -m sim.barrier", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="generic-2door", help="register map name")
    p.add_argument("--model-file", default=None, help="register map YAML file")
    p.add_argument("--baudrate", type=int, default=115200, help="paced line speed")
    p.add_argument("--slave-id", type=int, default=1)
    p.add_argument("--travel", type=float, default=0.3, help="door travel time, seconds")
    asyncio.run(_serve(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
