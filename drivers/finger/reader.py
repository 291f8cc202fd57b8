"""What a fingerprint reader gives the gate: one grey capture at the device's resolution.

Capture only: enrolment, storage and matching on the device are never used (the
reference is the chip's DG3, the matcher is ours). A reader raises ``NoFinger`` when no
finger was placed before the timeout or the capture was cancelled (the traveller's
doing, not a fault) and ``ReaderFault`` when the device itself is unreachable or broken.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from drivers.errors import DeviceError

MAX_SIDE = 2000  # pixels; 4 inches at 500 ppi, more than any flat sensor


class NoFinger(Exception):
    """No finger was placed in time (or the capture was cancelled)."""


class ReaderFault(DeviceError):
    """The reader is unreachable or broken: a device fault, not the traveller's."""

    def __init__(self, detail: str) -> None:
        super().__init__("finger reader", detail)


@dataclass(frozen=True)
class Capture:
    pixels: bytes  # 8-bit grey, row by row
    width: int
    height: int
    resolution_ppi: float  # as the device states it; 0 when it states none
    device: str

    def check(self) -> str | None:
        """Why these bytes are not an image (None when they are one)."""
        if not (0 < self.width <= MAX_SIDE and 0 < self.height <= MAX_SIDE):
            return f"capture of {self.width}x{self.height} pixels"
        if len(self.pixels) != self.width * self.height:
            return f"capture of {len(self.pixels)} bytes for {self.width}x{self.height} pixels"
        if not 0 <= self.resolution_ppi <= 5000:
            return f"capture at {self.resolution_ppi} ppi"
        return None


class FingerReader(Protocol):
    name: str

    def capture(self, timeout_s: float, cancel: threading.Event | None = None) -> Capture:
        """Wait up to ``timeout_s`` for a finger and return its image."""
        ...

    def close(self) -> None: ...
