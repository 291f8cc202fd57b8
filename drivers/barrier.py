"""The barrier: a two-door mantrap controller driven over Modbus RTU (pymodbus + pyserial).

One task owns the link: it connects (port checked, identity read, watchdog set, all
inputs read before the controller is trusted), then polls inputs at ``poll_s`` and
writes the heartbeat register, and turns every change into a core input
(``DoorChanged``, ``PresenceChanged``, ``EmergencyChanged``, ``TamperChanged``).
When a request fails after pymodbus's retries the task reports why, typed
(``LinkLost`` for silence, garbled replies or a vanished port; ``DeviceFault`` for
exception responses, a controller restart or its heartbeat watchdog), closes the port
and reconnects with a doubling backoff, then sends ``LinkRestored`` and the full state.

``open``/``close_door`` write the door's coil and wait until the door sensors confirm
the position (polling faster meanwhile); a door that does not get there within
``confirm_timeout_s`` while the link is up becomes ``DoorFault`` (a door problem). A
command that cannot be delivered or confirmed because of the link or a refusal by the
controller raises ``DeviceError`` instead (a device problem; the daemon reports it as
``DeviceFault``, and the link task has reported ``LinkLost`` too).

A reply can pass its CRC and still be impossible (a controller bug, a bit flipped in its
memory): the driver checks what the physics and the interlock allow before the core
hears of it (``implausible``). A door at both limit switches at once, or a door that
opens while the other is open outside EMERGENCY, is a ``DeviceFault`` with that reason
(the core goes OUT_OF_SERVICE and closes both doors), and the snapshot is not passed on;
``LinkRestored`` follows when the reports are possible again. A door that opens without
a command is read again at once: a single glitch is dropped, a door still open is
believed (a forced door: the core's alarm). A "controller restarted" boot count that
changes at every poll is one fault, not a fault per poll.

Framing, CRC and retries are pymodbus's; this module keeps only the register map
(``drivers/regmap.py``) and door semantics. The last 64 frames on the wire, decoded,
are kept for the journal (``black_box()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from drivers.errors import DeviceError
from drivers.interfaces import Emit
from drivers.regmap import RegisterMap, load_regmap
from gate.config import GateConfig, ModbusBarrierConfig
from gate.inputs import (
    DeviceFault,
    Door,
    DoorChanged,
    DoorFault,
    EmergencyChanged,
    LinkLost,
    LinkRestored,
    PresenceChanged,
    TamperChanged,
)

log = logging.getLogger(__name__)

NAME = "barrier"
BLACK_BOX_FRAMES = 64
STATUS_WATCHDOG = 0x0001
RESTART_STORM = 3  # boot-count changes within RESTART_WINDOW_S: no controller boots so fast
RESTART_WINDOW_S = 10.0
FUNCTION_CODES = {
    "read_coils": 1,
    "read_discrete_inputs": 2,
    "read_holding_registers": 3,
    "read_input_registers": 4,
    "write_coil": 5,
    "write_register": 6,
}


class LinkError(Exception):
    """The link to the controller failed; ``kind`` is port, timeout, garbled or closed."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class ControllerError(Exception):
    """The controller answered with a Modbus exception response."""

    def __init__(self, what: str, code: int) -> None:
        try:
            name = ExcCodes(code).name
        except ValueError:
            name = "UNKNOWN"
        self.detail = f"{what}: controller exception {code} ({name})"
        super().__init__(self.detail)
        self.code = code


def check_port(path: str) -> None:
    """Raise ``DeviceError`` with a plain reason unless ``path`` is a usable serial tty."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DeviceError(NAME, f"serial port {path} does not exist") from None
    except OSError as exc:
        raise DeviceError(NAME, f"serial port {path}: {exc.strerror}") from None
    if not stat.S_ISCHR(st.st_mode):
        raise DeviceError(NAME, f"{path} is not a serial device (not a character device)")
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except PermissionError:
        raise DeviceError(NAME, f"serial port {path}: permission denied (group dialout?)") from None
    except OSError as exc:
        raise DeviceError(NAME, f"serial port {path}: {exc.strerror}") from None
    try:
        if not os.isatty(fd):
            raise DeviceError(NAME, f"{path} is not a serial device (not a tty)")
    finally:
        os.close(fd)


def bodies_from_beams(beams: tuple[bool, ...]) -> int:
    """Bodies the beams can tell apart: runs of broken beams separated by clear ones."""
    runs, prev = 0, False
    for broken in beams:
        if broken and not prev:
            runs += 1
        prev = broken
    return runs


@dataclass(frozen=True)
class Snapshot:
    """One poll of the controller's inputs; ``t`` is when the read was issued."""

    t: float
    closed: dict[Door, bool]
    opened: dict[Door, bool | None]
    beams: tuple[bool, ...]
    emergency: bool
    tamper: bool
    people: int
    boot_count: int | None
    status: int | None

    @property
    def presence(self) -> int:
        return max(self.people, bodies_from_beams(self.beams))

    def at(self, door: Door, want_open: bool) -> bool:
        if not want_open:
            return self.closed[door]
        opened = self.opened[door]
        return opened if opened is not None else not self.closed[door]


# No mantrap holds more (one traveller, a tailgater or two): a higher count is a broken
# counter or an uninitialised register (0xFFFF), a controller fault, not a crowd to alarm on.
MAX_PEOPLE = 6


def implausible(
    prev: Snapshot | None, snap: Snapshot, commanded: dict[Door, bool] | None = None
) -> str | None:
    """Why ``snap`` cannot be true (physics, interlock), or None when it can be.

    ``commanded``: the doors the driver commanded open (the daemon opens both only in
    EMERGENCY, before or while the controller's own input says so)."""
    commanded = commanded or dict.fromkeys(Door, False)
    for door in Door:
        if snap.closed[door] and snap.opened[door]:
            return f"{door} door reports closed and fully open at once"
    if snap.people > MAX_PEOPLE:
        return f"people counter reads {snap.people}: more than a mantrap holds ({MAX_PEOPLE})"
    if not snap.emergency and not any(snap.closed.values()):
        # both open: only EMERGENCY releases both. One still open from an EMERGENCY that
        # has just cleared is closing; a door that has just opened beside it is not.
        newly = [d for d in Door if (prev is None or prev.closed[d]) and not commanded[d]]
        if newly:
            return (
                f"both doors report open outside EMERGENCY ({newly[0]} just opened): "
                "the interlock never releases both"
            )
    return None


class ModbusBarrier:
    """``drivers.interfaces.Barrier`` over Modbus RTU."""

    name = NAME

    def __init__(self, cfg: ModbusBarrierConfig, regmap: RegisterMap) -> None:
        self.cfg = cfg
        self.map = regmap
        self.firmware: int | None = None
        self.link_up = False
        self.snapshot: Snapshot | None = None
        self._emit: Emit | None = None
        self._client: AsyncModbusSerialClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._pending = 0
        # doors whose last command the controller refused with an exception reply
        self._refused: dict[Door, str] = {}
        self._generation = dict.fromkeys(Door, 0)
        self._heartbeat = 0
        self._fault: tuple[str, str] | None = None  # (kind, detail) of the current outage
        self._frames: deque[dict[str, Any]] = deque(maxlen=BLACK_BOX_FRAMES)
        self._tx_pdu = ""
        self._rx_seen = False
        # one request on the line at a time: the poller and door commands from other
        # tasks share the client, and RTU can only pair a reply with the last request
        self._line = asyncio.Lock()
        self.polls = 0
        self._commanded = dict.fromkeys(Door, False)  # the last value written to each coil
        self._boots: deque[float] = deque(maxlen=RESTART_STORM)

    # --- Device -----------------------------------------------------------------

    async def start(self, emit: Emit) -> None:
        """Begin; returns after the first connection attempt (success or a reported fault)."""
        if self._task is not None:
            raise DeviceError(NAME, "already started")
        self._emit = emit
        self._task = asyncio.create_task(self._run(), name="barrier-link")
        await self._first_attempt.wait()

    async def close(self) -> None:
        """Stop the link task and release the port; idempotent."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            # Cancel until it ends: a cancellation that races a reply inside pymodbus's
            # wait_for can be swallowed (Python 3.11), so one cancel() is not enough.
            for _ in range(50):
                if task.done():
                    break
                task.cancel()
                self._wake.set()
                await asyncio.wait({task}, timeout=0.1)
            if not task.done():
                log.error("barrier: link task did not stop: %s", task.get_stack())
        self._disconnect()
        self.link_up = False

    async def open(self, door: Door) -> None:
        await self._command(Door(door), True)

    async def close_door(self, door: Door) -> None:
        await self._command(Door(door), False)

    def black_box(self) -> list[dict[str, Any]]:
        """The last frames on the wire (oldest first), decoded, for the journal."""
        return [dict(f) for f in self._frames]

    # --- link task --------------------------------------------------------------

    def _send(self, event: Any) -> None:
        assert self._emit is not None
        try:
            self._emit(event)
        except Exception:  # the daemon's problem, never the link task's death
            log.exception("barrier: emit(%r) failed", event)

    def _report(self, kind: str, detail: str) -> None:
        """Report a fault once per outage (again only if its kind changes)."""
        if self._fault is not None and self._fault[0] == kind:
            return
        self._fault = (kind, detail)
        self.link_up = False
        self._frames.append({"t": time.time(), "dir": "event", "text": f"{kind}: {detail}"})
        log.warning("barrier: %s: %s", kind, detail)
        if kind == "exception":
            self._send(DeviceFault(NAME, detail))
        else:
            self._send(LinkLost(NAME, detail))

    async def _run(self) -> None:
        backoff = self.cfg.backoff_min_s
        while not self._closing:
            try:
                await self._connect()
            except (LinkError, ControllerError) as exc:
                self._disconnect()
                self._report(getattr(exc, "kind", "exception"), exc.detail)
                self._first_attempt.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.cfg.backoff_max_s)
                continue
            except Exception as exc:  # never let the link task die silently
                log.exception("barrier: unexpected error while connecting")
                self._disconnect()
                self._report("internal", f"unexpected error: {exc!r}")
                self._first_attempt.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.cfg.backoff_max_s)
                continue
            backoff = self.cfg.backoff_min_s
            self._reconnect = False
            self._link_gen += 1
            self.link_up = True
            if self._restarted:  # said before LinkRestored, which clears the core's fault
                self._send(DeviceFault(NAME, self._restarted))
                self._restarted = ""
                self._fault = self._fault or ("restart", "")
            if self._fault is not None:
                self._fault = None
                self._send(LinkRestored(NAME))
            self._publish(self._latest, full=True)
            self._first_attempt.set()
            try:
                await self._poll_loop()
            except (LinkError, ControllerError) as exc:
                self._disconnect()
                self._report(getattr(exc, "kind", "exception"), exc.detail)
            except Exception as exc:
                log.exception("barrier: unexpected error while polling")
                self._disconnect()
                self._report("internal", f"unexpected error: {exc!r}")
            self._notify()  # wake confirmation waiters: the link is down
            await asyncio.sleep(backoff)

    def _disconnect(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    async def _connect(self) -> None:
        try:
            check_port(self.cfg.port)
        except DeviceError as exc:
            raise LinkError("port", exc.detail) from None
        self._client = AsyncModbusSerialClient(
            self.cfg.port,
            framer=FramerType.RTU,
            baudrate=self.cfg.baudrate,
            parity=self.cfg.parity,
            stopbits=self.cfg.stopbits,
            timeout=self.cfg.timeout_s,
            retries=self.cfg.retries,
            reconnect_delay=0,  # reconnects are ours, with our backoff and reports
            name=NAME,
            trace_packet=self._trace_packet,
            trace_pdu=self._trace_pdu,
        )
        try:
            ok = await self._client.connect()
        except Exception as exc:
            raise LinkError("port", f"cannot open {self.cfg.port}: {exc}") from None
        if not ok:
            raise LinkError("port", f"cannot open {self.cfg.port}")
        ir, hr = self.map.input_registers, self.map.holding_registers
        rr = await self._call("read firmware version", "read_input_registers", ir.firmware_version)
        self.firmware = rr.registers[0]
        if hr.watchdog_ds is not None:
            ds = round(self.cfg.watchdog_s * 10)
            await self._call("set watchdog", "write_register", hr.watchdog_ds, ds)
        # go on from the controller's current heartbeat value: a restarted daemon that
        # wrote the value its predecessor last wrote would look dead to the watchdog
        hb = await self._call("read heartbeat", "read_holding_registers", hr.heartbeat)
        self._heartbeat = hb.registers[0]
        await self._beat(force=True)
        self._latest = await self._read_inputs()
        boot = self._latest.boot_count
        if boot is not None and self._boot is not None and boot != self._boot:
            self._restarted = (
                f"controller restarted (boot {self._boot} -> {boot}); outputs were reset"
            )
            self._commanded = dict.fromkeys(Door, False)
        self._boot = boot
        log.info("barrier: controller firmware %#06x on %s", self.firmware, self.cfg.port)

    async def _call(self, what: str, method: str, address: int, value: Any = None, **kw: Any):  # type: ignore[no-untyped-def]
        """One Modbus request; failures become ``LinkError`` / ``ControllerError``."""
        async with self._line:
            return await self._call_locked(what, method, address, value, **kw)

    async def _call_locked(
        self, what: str, method: str, address: int, value: Any = None, **kw: Any
    ):  # type: ignore[no-untyped-def]
        tries = self.cfg.retries + 1
        for _ in range(tries):
            rr = await self._request(what, method, address, value, **kw)
            if self._answers(rr, method, address, value, kw.get("count", 1)):
                if rr.isError():
                    raise ControllerError(what, getattr(rr, "exception_code", 0))
                return rr
            # RTU has no transaction id: a reply that arrived after its request timed out
            # is handed by pymodbus to the next request. Discard it, let the line go quiet
            # (the reply to our own request then arrives unclaimed and pymodbus drops it;
            # asking at once would keep one surplus reply in flight forever), ask again.
            self._frames.append(
                {"t": time.time(), "dir": "event", "text": f"{what}: late reply discarded"}
            )
            await asyncio.sleep(self.cfg.timeout_s)
        raise LinkError("garbled", f"{what}: only replies to other requests, {tries} tries")

    @staticmethod
    def _answers(rr: ModbusPDU, method: str, address: int, value: Any, count: int) -> bool:
        """Whether ``rr`` can be the reply to this request (function, echo, size)."""
        fc = FUNCTION_CODES[method]
        if rr.isError():
            return rr.function_code & 0x7F == fc
        if rr.function_code != fc:
            return False
        if method == "write_coil":
            return rr.address == address and bool(rr.bits and rr.bits[0]) == bool(value)
        if method == "write_register":
            return rr.address == address and list(rr.registers) == [value]
        if method in ("read_input_registers", "read_holding_registers"):
            return len(rr.registers) == count
        return len(rr.bits) >= count  # bit replies are padded to whole bytes

    async def _request(self, what: str, method: str, address: int, value: Any, **kw: Any):  # type: ignore[no-untyped-def]
        if self._client is None:
            raise LinkError("closed", f"{what}: not connected")
        fn: Callable[..., Awaitable[ModbusPDU]] = getattr(self._client, method)
        args = (address,) if value is None else (address, value)
        self._rx_seen = False
        tries = self.cfg.retries + 1
        try:
            return await fn(*args, device_id=self.cfg.slave_id, **kw)
        except ConnectionException as exc:
            raise LinkError("closed", f"{what}: serial port closed ({exc.string})") from None
        except ModbusIOException:
            if self._rx_seen:
                raise LinkError(
                    "garbled", f"{what}: garbled replies (CRC/framing errors), {tries} tries"
                ) from None
            raise LinkError(
                "timeout",
                f"{what}: no reply from slave {self.cfg.slave_id} "
                f"in {self.cfg.timeout_s}s, {tries} tries",
            ) from None
        except (ModbusException, OSError) as exc:
            raise LinkError("closed", f"{what}: {exc}") from None
        except Exception as exc:
            # a fault inside the Modbus library (a state it should never reach): nothing
            # says the line is sane, so it is a link fault like the others: the port is
            # closed and opened again, and LinkRestored clears it (an exception of another
            # type would be a fault nothing ever clears)
            log.exception("barrier: %s: unexpected error from the Modbus client", what)
            raise LinkError("internal", f"{what}: unexpected error {exc!r}") from None

    async def _beat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_beat:
            return
        self._heartbeat = (self._heartbeat + 1) & 0xFFFF
        await self._call(
            "heartbeat", "write_register", self.map.holding_registers.heartbeat, self._heartbeat
        )
        self._next_beat = now + self.cfg.heartbeat_s

    async def _read_inputs(self, registers: bool = True) -> Snapshot:
        """Read the input registers (unless told not to), then the discrete inputs.

        One poll is two requests and the world moves between them. Causes are read last:
        the people counter before the door sensors, so a traveller counted inside comes
        with the door that let them in (read the other way round, the counter could say
        "inside" while the door still read closed, and the door's "opened" then reached
        the core after it had commanded that door closed again)."""
        t = time.monotonic()
        d0, dn = self.map.di_span()
        prev = self.snapshot
        regs: list[int] | None = None
        if registers or prev is None:
            r0, rn = self.map.ir_span()
            rr = await self._call("read registers", "read_input_registers", r0, count=rn)
            regs = list(rr.registers)
            if len(regs) != rn:
                raise LinkError("garbled", f"read registers: {len(regs)} for {rn} asked")
            self._registers_t = t
        rr = await self._call("read inputs", "read_discrete_inputs", d0, count=dn)
        bits = rr.bits
        if len(bits) < dn:
            raise LinkError("garbled", f"read inputs: {len(bits)} bits for {dn} asked")
        if regs is None:  # a fast confirmation poll: door sensors only, registers as last read
            assert prev is not None
            return replace(prev, t=t, **self._bits_fields(bits, d0))
        return self.snapshot_of(t, bits, regs)

    def snapshot_of(self, t: float, bits: list[bool], regs: list[int]) -> Snapshot:
        """A ``Snapshot`` from the replies to the two reads (pure: the fuzz target's way in)."""
        ir = self.map.input_registers
        d0, _ = self.map.di_span()
        r0, _ = self.map.ir_span()

        def reg(a: int | None) -> int | None:
            return None if a is None else regs[a - r0]

        return Snapshot(
            t=t,
            **self._bits_fields(bits, d0),
            people=reg(ir.people_count) or 0,
            boot_count=reg(ir.boot_count),
            status=reg(ir.status),
        )

    def _bits_fields(self, bits: list[bool], d0: int) -> dict[str, Any]:
        di = self.map.discrete_inputs

        def bit(a: int | None) -> bool | None:
            return None if a is None else bool(bits[a - d0])

        return {
            "closed": {
                Door.ENTRY: bool(bits[di.entry_closed - d0]),
                Door.EXIT: bool(bits[di.exit_closed - d0]),
            },
            "opened": {Door.ENTRY: bit(di.entry_opened), Door.EXIT: bit(di.exit_opened)},
            "beams": tuple(bool(bits[a - d0]) for a in di.beams),
            "emergency": bool(bits[di.emergency - d0]),
            "tamper": bool(bits[di.tamper - d0]),
        }

    async def _poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            if self._reconnect:  # already reported by the command that failed
                kind = self._fault[0] if self._fault else "timeout"
                raise LinkError(kind, "a command found the link down")
            started = loop.time()
            await self._beat()
            # While a door command waits for confirmation the door sensors are polled
            # every confirm_poll_s, the registers (people count) still every poll_s.
            fast = self._pending > 0 and time.monotonic() - self._registers_t < self.cfg.poll_s
            snap = await self._read_inputs(registers=not fast)
            self.polls += 1
            snap = await self._unglitched(snap, fast)
            await self._check_controller(snap)
            if self._believable(snap):
                self._publish(snap, full=self._resync)
                self._resync = False
            if self._transient and not self._storm and not (snap.status or 0) & STATUS_WATCHDOG:
                # The restart or watchdog trip is over and the controller answers normally:
                # clear the core's fault so an officer can put the gate back in service.
                self._transient = False
                self._send(LinkRestored(NAME))
            period = self.cfg.confirm_poll_s if self._pending else self.cfg.poll_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(started + period):
                    await self._wake.wait()
            self._wake.clear()

    async def _unglitched(self, snap: Snapshot, fast: bool) -> Snapshot:
        """A door that opened without a command, outside EMERGENCY, is read once more:
        a reply that a second read contradicts was a glitch, not a forced door."""
        prev = self.snapshot
        if prev is None or snap.emergency:
            return snap
        uncommanded = [
            d for d in Door if prev.closed[d] and not snap.closed[d] and not self._commanded[d]
        ]
        if not uncommanded:
            return snap
        again = await self._read_inputs(registers=not fast)
        if all(again.closed[d] for d in uncommanded):
            text = f"{uncommanded[0]} door open without a command, not confirmed: dropped"
            self._frames.append({"t": time.time(), "dir": "event", "text": text})
            log.warning("barrier: %s", text)
        return again

    def _believable(self, snap: Snapshot) -> bool:
        """Pass ``snap`` on only if it can be true; an impossible one is a fault, once."""
        if self._implausible is None:
            why = implausible(self.snapshot, snap, self._commanded)
        else:  # still impossible? (no "just opened" needed: nothing was believed since)
            why = self._implausible if implausible(None, snap, self._commanded) else None
        if why is not None:
            if self._implausible is None:
                self._implausible = why
                self._frames.append({"t": time.time(), "dir": "event", "text": why})
                log.error("barrier: impossible report: %s", why)
                self._send(DeviceFault(NAME, f"impossible report from the controller: {why}"))
            return False
        if self._implausible is not None:  # possible again: clear, then the whole state
            log.info("barrier: controller reports are possible again")
            self._implausible = None
            self._resync = True
            self._send(LinkRestored(NAME))
        return True

    async def _check_controller(self, snap: Snapshot) -> None:
        if self._storm and time.monotonic() - self._boots[-1] > RESTART_WINDOW_S:
            self._storm = False  # the boot count held still long enough: believable again
        if snap.boot_count is not None and self._boot is not None and snap.boot_count != self._boot:
            prev, self._boot = self._boot, snap.boot_count
            now = time.monotonic()
            self._boots.append(now)
            recent = [t for t in self._boots if now - t <= RESTART_WINDOW_S]
            if len(recent) >= RESTART_STORM:
                if not self._storm:  # one fault for the storm, not one per poll
                    self._storm = True
                    self._transient = True
                    why = (
                        f"controller reports a restart at every poll ({len(recent)} in "
                        f"{RESTART_WINDOW_S:.0f} s, boot {prev} -> {snap.boot_count}): "
                        "not believable"
                    )
                    self._frames.append({"t": time.time(), "dir": "event", "text": why})
                    self._send(DeviceFault(NAME, why))
                return
            self._storm = False
            hr = self.map.holding_registers
            if hr.watchdog_ds is not None:
                await self._call(
                    "set watchdog",
                    "write_register",
                    hr.watchdog_ds,
                    round(self.cfg.watchdog_s * 10),
                )
            self._transient = True
            self._commanded = dict.fromkeys(Door, False)  # its outputs were reset
            self._send(
                DeviceFault(
                    NAME,
                    f"controller restarted (boot {prev} -> {snap.boot_count}); outputs were reset",
                )
            )
        prev_status = self.snapshot.status if self.snapshot else 0
        if (
            snap.status is not None
            and snap.status & STATUS_WATCHDOG
            and not ((prev_status or 0) & STATUS_WATCHDOG)
        ):
            self._transient = True
            self._send(
                DeviceFault(NAME, "controller heartbeat watchdog tripped: doors closed and locked")
            )

    def _publish(self, snap: Snapshot, full: bool) -> None:
        """Emit what changed since the last snapshot (everything when ``full``)."""
        prev = None if full else self.snapshot
        self.snapshot = snap
        # causes before effects: the emergency input releases the doors in hardware, so
        # the core must hear of it before it hears the doors open (not a forced door)
        if prev is None or prev.emergency != snap.emergency:
            self._send(EmergencyChanged(snap.emergency))
        if prev is None or prev.tamper != snap.tamper:
            self._send(TamperChanged(snap.tamper))
        for door in Door:
            if prev is None or prev.closed[door] != snap.closed[door]:
                self._send(DoorChanged(door, snap.closed[door]))
        if prev is None or prev.presence != snap.presence:
            self._send(PresenceChanged(snap.presence))
        self._notify()

    def _notify(self) -> None:
        """Wake every confirmation waiter (new snapshot, link down, newer command)."""
        self._changed.set()
        self._changed = asyncio.Event()

    # --- commands ---------------------------------------------------------------

    async def _command(self, door: Door, want_open: bool) -> None:
        if self._emit is None:
            raise DeviceError(NAME, "not started")
        try:
            await self._command_checked(door, want_open)
        except (DeviceError, asyncio.CancelledError):
            raise
        except Exception as exc:
            # a bug on the way (never seen): the caller reports a fault, so the link is
            # opened again and its LinkRestored clears it; raised as any other would leave
            # the lane out of service until a restart
            log.exception("barrier: %s %s failed unexpectedly", door, want_open)
            self._report("internal", f"door command: unexpected error {exc!r}")
            self._reconnect = True
            self._wake.set()
            raise DeviceError(NAME, f"door command: unexpected error {exc!r}") from None

    async def _command_checked(self, door: Door, want_open: bool) -> None:
        verb = "open" if want_open else "close"
        self._generation[door] += 1
        gen = self._generation[door]
        self._notify()  # an older command on this door stops waiting
        if not self.link_up:
            self._link_down(
                door, want_open, f"cannot {verb} {door}: link to the controller is down"
            )
            return
        coil = self.map.coils.entry_open if door is Door.ENTRY else self.map.coils.exit_open
        if want_open:  # from now on an opening door is expected (before the write lands)
            self._commanded[door] = True
        for attempt in (1, 2):
            link = self._link_gen
            try:
                await self._call(f"{verb} {door}", "write_coil", coil, want_open)
                self._commanded[door] = want_open
                if self._refused.pop(door, None) is not None and not self._refused:
                    # the daemon reported the refused command as a fault: this door takes
                    # commands again (a busy controller), so say it, or the fault stays
                    log.info("barrier: %s door takes commands again", door)
                    self._send(LinkRestored(NAME))
                break
            except ControllerError as exc:
                self._refused[door] = exc.detail  # the caller reports it (DeviceFault)
                raise DeviceError(NAME, f"{verb} command not delivered: {exc.detail}") from None
            except LinkError as exc:
                if attempt == 1 and self.link_up and self._link_gen != link:
                    continue  # failed on the old link; it was re-established meanwhile
                # Say so now, before the caller reports the failure, and make the link
                # task reconnect: the LinkRestored that clears the fault then comes after.
                self._report(exc.kind, exc.detail)
                self._reconnect = True
                self._wake.set()
                self._link_down(door, want_open, f"{verb} command not delivered: {exc.detail}")
                return
        written = time.monotonic()
        self._pending += 1
        self._wake.set()
        try:
            reached = await self._confirm(door, want_open, written, gen)
        finally:
            self._pending -= 1
        if gen != self._generation[door]:
            return  # a newer command for this door took over
        if not self.link_up:
            self._link_down(
                door, want_open, f"{verb} {door} not confirmed: link to the controller lost"
            )
            return
        if not reached:
            self._send(
                DoorFault(door, f"{door} door did not {verb} within {self.cfg.confirm_timeout_s}s")
            )

    def _link_down(self, door: Door, want_open: bool, detail: str) -> None:
        """A command the link could not carry; ``LinkLost`` has been emitted already.

        An open that cannot be done raises ``DeviceError`` (the caller must know). A close
        does not: with the link down the controller's heartbeat watchdog closes and locks
        both doors by itself within ``watchdog_s``, and raising would only feed the core a
        fault whose out-of-service rule commands the same close again, in a loop.
        """
        self._frames.append({"t": time.time(), "dir": "event", "text": detail})
        if want_open:
            raise DeviceError(NAME, detail)
        log.warning(
            "barrier: %s; the controller watchdog closes it within %ss", detail, self.cfg.watchdog_s
        )

    async def _confirm(self, door: Door, want_open: bool, since: float, gen: int) -> bool:
        deadline = asyncio.get_running_loop().time() + self.cfg.confirm_timeout_s
        while gen == self._generation[door]:
            snap = self.snapshot
            if snap is not None and snap.t >= since and snap.at(door, want_open):
                return True
            if not self.link_up:
                return False
            try:
                async with asyncio.timeout_at(deadline):
                    await self._changed.wait()
            except TimeoutError:
                return False
        return False

    # --- black box ----------------------------------------------------------------

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        now = time.time()
        if sending:
            self._frames.append({"t": now, "dir": "tx", "hex": data.hex(" "), "pdu": self._tx_pdu})
        else:
            self._rx_seen = True
            last = self._frames[-1] if self._frames else None
            # pymodbus re-traces its growing receive buffer: keep one entry per frame.
            if (
                last
                and last["dir"] == "rx"
                and not last["pdu"]
                and data.startswith(bytes.fromhex(last["hex"]))
            ):
                last["hex"], last["t"] = data.hex(" "), now
            else:
                self._frames.append({"t": now, "dir": "rx", "hex": data.hex(" "), "pdu": ""})
        return data

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if sending:
            self._tx_pdu = str(pdu)
        elif self._frames and self._frames[-1]["dir"] == "rx":
            self._frames[-1]["pdu"] = str(pdu)
        return pdu

    _latest: Snapshot
    _boot: int | None = None
    _restarted: str = ""
    _closing: bool = False
    _registers_t: float = 0.0  # when the input registers were last read
    _reconnect: bool = False  # a command failed on the link: poll loop must reconnect
    _link_gen: int = 0  # counts successful connections
    _transient: bool = False  # a DeviceFault sent while the link stayed up, not yet cleared
    _next_beat: float = 0.0
    _implausible: str | None = None  # why the controller's last reports were impossible
    _resync: bool = False  # pass the whole state on at the next believable snapshot
    _storm: bool = False  # a restart storm was reported and not yet over


def build(cfg: ModbusBarrierConfig, gate_cfg: GateConfig) -> ModbusBarrier:
    """Factory for the daemon's wiring; raises ``DeviceError`` for an unknown register map."""
    del gate_cfg  # nothing gate-wide is needed yet
    return ModbusBarrier(cfg, load_regmap(cfg.model, cfg.model_file))
