"""The seams between the daemon and the devices.

Every device is started with an ``emit`` callback for what it reports unprompted
(a document placed, beams broken, a link lost, an officer command) and offers
``async`` methods for what the core asks of it. Blocking libraries (pyscard, dlib,
OpenCV) run in worker threads inside the driver; the daemon's loop never blocks.
Results are the frozen values of ``gate.results``; biometric bytes travel beside them
in ``ChipReading`` / ``FaceVerification`` so the core never holds them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gate.inputs import Door, Input
from gate.results import ChipResult, DocumentResult, FaceResult, ListsResult, MrzRecord

Emit = Callable[[Input], None]


@runtime_checkable
class Device(Protocol):
    name: str

    async def start(self, emit: Emit) -> None:
        """Open the device and begin reporting unprompted inputs through ``emit``."""

    async def close(self) -> None:
        """Release the device; idempotent."""


class DocumentScanner(Device, Protocol):
    async def read(self) -> DocumentResult:
        """Image the data page now and read its MRZ (never raises on a bad page)."""


@dataclass(frozen=True)
class ChipReading:
    result: ChipResult
    portrait: bytes | None = None  # DG2 image bytes (JPEG / JPEG 2000), in memory only
    # DG3's finger images (``drivers.icao.cbeff.FingerImage``) after terminal
    # authentication, in memory only: the thumb verifier's references, vaulted like the
    # portrait
    fingers: tuple[Any, ...] = ()


class ChipReader(Device, Protocol):
    async def read(self, mrz: MrzRecord) -> ChipReading:
        """Access (PACE or BAC with the MRZ key), read, verify, cross-check with ``mrz``."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR, as OpenCV gives it
    ts: float  # monotonic capture time, seconds


class Camera(Device, Protocol):
    async def burst(self, n: int) -> Sequence[Frame]:
        """Capture ``n`` consecutive frames; raises ``DeviceError`` on a dead camera."""


@dataclass(frozen=True)
class FaceVerification:
    result: FaceResult
    best_frame: np.ndarray | None = None  # the frame matched, for an officer's review


class FaceVerifier(Protocol):
    """``prepare(portrait)`` may also be offered: the daemon calls it right after the
    chip read so the portrait is embedded before the traveller reaches the camera."""

    name: str

    async def verify(self, portrait: bytes | None, frames: Sequence[Frame]) -> FaceVerification:
        """Quality, presentation-attack detection and 1:1 match of ``frames`` to ``portrait``."""


class Barrier(Device, Protocol):
    """Doors and mantrap sensors; sensor changes and link state arrive through ``emit``."""

    async def open(self, door: Door) -> None: ...

    async def close_door(self, door: Door) -> None: ...


class EventBus(Device, Protocol):
    """Outgoing events (durably queued) and incoming, already authenticated, commands."""

    async def publish(self, topic_leaf: str, payload: dict[str, Any], retain: bool = False) -> None:
        """Queue ``payload`` for ``.../{topic_leaf}``; returns once it is safe on disk."""

    async def publish_transient(self, topic_leaf: str, body: bytes) -> bool:
        """Send now, QoS 1, never via the disk (traveller images); False if not sent."""


class Watchlist(Protocol):
    name: str

    async def check(self, mrz: MrzRecord) -> ListsResult:
        """Check the document and person; a check that cannot be made is ``unavailable``."""
