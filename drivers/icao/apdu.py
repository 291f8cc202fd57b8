"""ISO/IEC 7816-4 command APDUs (short and extended length) and a channel that sends them.

``Channel`` is the one place every APDU of a read goes through: it applies secure
messaging when a session is installed, counts APDUs and bytes, and keeps the time spent
waiting for the card apart from our own CPU time (the benchmark's split).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from drivers.icao.errors import StatusError

if TYPE_CHECKING:
    from drivers.icao.sm import SecureMessaging

Transmit = Callable[[bytes], bytes]

SW_OK = 0x9000
SW_END_OF_FILE = 0x6282  # fewer bytes than asked: the end of the file was reached


@dataclass(frozen=True)
class APDU:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    ne: int | None = None  # bytes expected: None = no Le field, up to 256 / 65536

    def is_extended(self) -> bool:
        return len(self.data) > 255 or (self.ne is not None and self.ne > 256)

    def encode(self, extended: bool | None = None) -> bytes:
        ext = self.is_extended() if extended is None else extended
        out = bytes([self.cla, self.ins, self.p1, self.p2])
        if ext:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.ne is not None:
                out += (b"" if self.data else b"\x00") + (self.ne % 65536).to_bytes(2, "big")
        else:
            if self.data:
                out += bytes([len(self.data)]) + self.data
            if self.ne is not None:
                out += bytes([self.ne % 256])
        return out

    @classmethod
    def parse(cls, raw: bytes) -> APDU:
        """Decode the four ISO cases in short and extended form; ``ValueError`` if none fits."""
        if len(raw) < 4:
            raise ValueError("APDU shorter than its header")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, ne=body[0] or 256)
        if body[0] != 0:
            lc = body[0]
            data = body[1 : 1 + lc]
            rest = body[1 + lc :]
            if len(data) != lc or len(rest) > 1:
                raise ValueError("short APDU length mismatch")
            return cls(cla, ins, p1, p2, data, (rest[0] or 256) if rest else None)
        if len(body) == 3:
            return cls(cla, ins, p1, p2, ne=int.from_bytes(body[1:3], "big") or 65536)
        lc = int.from_bytes(body[1:3], "big")
        data = body[3 : 3 + lc]
        rest = body[3 + lc :]
        if lc == 0 or len(data) != lc or len(rest) not in (0, 2):
            raise ValueError("extended APDU length mismatch")
        ne = (int.from_bytes(rest, "big") or 65536) if rest else None
        return cls(cla, ins, p1, p2, data, ne)


@dataclass
class StepStats:
    apdus: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    card_s: float = 0.0  # waiting for the card (inside transmit)
    total_s: float = 0.0  # wall time of the step; host CPU = total - card


@dataclass
class Channel:
    """Sends APDUs, with secure messaging once ``sm`` is set, and keeps per-step counters."""

    transmit: Transmit
    sm: SecureMessaging | None = None
    extended: bool = False  # the card accepts extended length APDUs
    steps: dict[str, StepStats] = field(default_factory=dict)
    step: str = "select"
    _t0: float = 0.0

    def begin(self, step: str) -> None:
        self.end()
        self.step = step
        self.steps.setdefault(step, StepStats())
        self._t0 = time.perf_counter()

    def end(self) -> None:
        if self._t0:
            self.steps.setdefault(self.step, StepStats()).total_s += time.perf_counter() - self._t0
            self._t0 = 0.0

    @property
    def apdus(self) -> int:
        return sum(s.apdus for s in self.steps.values())

    def raw(self, apdu: bytes) -> bytes:
        st = self.steps.setdefault(self.step, StepStats())
        t = time.perf_counter()
        resp = self.transmit(apdu)
        st.card_s += time.perf_counter() - t
        st.apdus += 1
        st.bytes_out += len(apdu)
        st.bytes_in += len(resp)
        if len(resp) < 2:
            raise StatusError(0, "response without status word")
        return resp

    def send(self, apdu: APDU, *, plain: bool = False) -> tuple[bytes, int]:
        """Send ``apdu`` (protected unless ``plain``); returns ``(data, sw)`` unprotected."""
        if self.sm is not None and not plain:
            wrapped = self.sm.protect_command(apdu)
            resp = self.raw(wrapped.encode())
            return self.sm.unprotect_response(resp, odd=bool(apdu.ins & 1))
        resp = self.raw(apdu.encode())
        return resp[:-2], int.from_bytes(resp[-2:], "big")

    def check(self, apdu: APDU, what: str, *, plain: bool = False) -> bytes:
        data, sw = self.send(apdu, plain=plain)
        if sw != SW_OK:
            raise StatusError(sw, what)
        return data
