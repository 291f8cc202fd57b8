"""In-process simulated devices behind the real seams, driven by a scripted hall.

``SimHall`` is the world: the traveller at the reader, the doors and the people in the
mantrap. Each simulated device implements its ``drivers.interfaces`` Protocol and reads
or changes the hall, so the daemon cannot tell it from real hardware. The scripted
traveller (``SimHall.walk``) behaves as a person would: places the document, waits for
the entry to open, walks in, waits for the exit, walks out; when referred, waits for
the officer (``SimHall.officer``) to send them back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from drivers.icao.cbeff import FingerImage
from drivers.interfaces import ChipReading, Emit, FaceVerification, Frame
from gate.inputs import (
    Command,
    DocumentPlaced,
    DoorChanged,
    OfficerCommand,
    PresenceChanged,
)
from gate.inputs import Door as DoorName
from gate.reasons import ReasonCode
from gate.results import (
    Check,
    ChipResult,
    DocumentResult,
    FaceResult,
    ListsResult,
    MrzRecord,
)


@dataclass(frozen=True)
class SimTraveller:
    """A scripted traveller: what their document says and how their checks turn out."""

    name: str
    mrz: MrzRecord
    chip_ok: bool = True
    face_score: float = 0.9
    stolen: bool = False
    # the thumb channel (issue 19): ``thumb_score`` None = a chip without DG3; ``ta`` how
    # terminal authentication ends: "passed", "refused", or "expired" (the gate's IS
    # certificate); ``thumb`` what the reader sees: "given", "none" (no finger), "fault"
    thumb_score: float | None = None
    ta: str = "passed"
    thumb: str = "given"


def sim_mrz(
    surname: str = "TAN",
    given: str = "MEI LING",
    number: str = "A12345678",
    nationality: str = "MYS",
    birth: dt.date = dt.date(1990, 5, 17),
    expiry: dt.date = dt.date(2031, 1, 1),
) -> MrzRecord:
    """A valid-looking MRZ record for scripted travellers (the MRZ issue builds real lines)."""
    return MrzRecord(
        format="TD3",
        document_code="P",
        issuing_state=nationality,
        surname=surname,
        given_names=given,
        document_number=number,
        nationality=nationality,
        date_of_birth=birth,
        sex="F",
        date_of_expiry=expiry,
        valid=True,
        birth_raw=birth.strftime("%y%m%d"),
        expiry_raw=expiry.strftime("%y%m%d"),
        document_number_raw=number,
    )


DEFAULT_TRAVELLERS = (
    SimTraveller("citizen", sim_mrz()),
    SimTraveller(
        "expired passport",
        sim_mrz("LIM", "WEI", "A98765432", expiry=dt.date(2020, 3, 1)),
    ),
)


@dataclass
class SimHall:
    """The simulated world shared by the simulated devices."""

    door_travel_s: float = 0.05
    walk_s: float = 0.05
    current: SimTraveller | None = None
    door_open: dict[DoorName, bool] = field(default_factory=lambda: dict.fromkeys(DoorName, False))
    occupancy: int = 0
    emits: dict[str, Emit] = field(default_factory=dict)
    door_events: dict[DoorName, asyncio.Event] = field(default_factory=dict)

    def _emit(self, device: str, value: Any) -> None:
        emit = self.emits.get(device)
        if emit is not None:
            emit(value)

    def door_event(self, door: DoorName) -> asyncio.Event:
        return self.door_events.setdefault(door, asyncio.Event())

    async def move_door(self, door: DoorName, open_: bool) -> None:
        if self.door_open[door] == open_:
            return
        await asyncio.sleep(self.door_travel_s)
        self.door_open[door] = open_
        self._emit("barrier", DoorChanged(door, closed=not open_))
        self.door_event(door).set()

    async def _wait_door(self, door: DoorName, open_: bool, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.door_open[door] != open_:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ev = self.door_event(door)
            ev.clear()
            try:
                await asyncio.wait_for(ev.wait(), left)
            except TimeoutError:
                return False
        return True

    def officer(self, command: Command, officer: str = "sim-officer") -> None:
        self._emit("bus", OfficerCommand(command, officer, f"sim-{time.monotonic_ns()}"))

    async def walk(self, t: SimTraveller, decide_s: float = 2.0) -> str:
        """Play one traveller; returns "crossed" or "sent back"."""
        self.current = t
        self._emit("scanner", DocumentPlaced())
        if not await self._wait_door(DoorName.ENTRY, True, decide_s):
            # referred at the reader: an officer comes and sends them back
            await asyncio.sleep(self.walk_s)
            self.officer(Command.SEND_BACK)
            self.current = None
            await asyncio.sleep(self.walk_s)
            return "sent back"
        await asyncio.sleep(self.walk_s)
        self.occupancy = 1
        self._emit("barrier", PresenceChanged(1))
        if not await self._wait_door(DoorName.EXIT, True, decide_s + 2):
            self.officer(Command.SEND_BACK)
            await self._wait_door(DoorName.ENTRY, True, decide_s)
            await asyncio.sleep(self.walk_s)
            self.occupancy = 0
            self._emit("barrier", PresenceChanged(0))
            self.current = None
            return "sent back"
        await asyncio.sleep(self.walk_s)
        self.occupancy = 0
        self._emit("barrier", PresenceChanged(0))
        self.current = None
        await self._wait_door(DoorName.EXIT, False, decide_s)
        return "crossed"


class _SimDevice:
    name = "sim"

    def __init__(self, hall: SimHall) -> None:
        self.hall = hall

    async def start(self, emit: Emit) -> None:
        self.hall.emits[self.name] = emit

    async def close(self) -> None:
        self.hall.emits.pop(self.name, None)


class SimScanner(_SimDevice):
    name = "scanner"

    async def read(self) -> DocumentResult:
        t = self.hall.current
        if t is None:
            return DocumentResult(None, 0.0, (ReasonCode.DOC_NOT_FOUND,))
        return DocumentResult(t.mrz, confidence=0.99)


class SimChip(_SimDevice):
    name = "chip"

    async def read(self, mrz: MrzRecord) -> ChipReading:
        t = self.hall.current
        if t is None:
            return ChipReading(ChipResult(False, reasons=(ReasonCode.CHIP_ABSENT,)))
        checks = Check.PASSED if t.chip_ok else Check.FAILED
        reasons = () if t.chip_ok else (ReasonCode.CHIP_AA_FAILED,)
        result = ChipResult(True, "PACE", t.mrz, checks, checks, Check.NOT_SUPPORTED, True, reasons)
        fingers: tuple[FingerImage, ...] = ()
        if t.thumb_score is None:
            result = replace(result, terminal_auth=Check.NOT_SUPPORTED)
        elif t.ta == "passed":
            fingers = (SIM_FINGER,)
            result = replace(result, terminal_auth=Check.PASSED, fingers=(SIM_FINGER.position,))
        else:
            why = (
                ReasonCode.CHIP_TA_CERT_EXPIRED if t.ta == "expired" else ReasonCode.CHIP_TA_REFUSED
            )
            result = replace(result, terminal_auth=Check.FAILED, terminal_auth_reason=why)
        return ChipReading(result, portrait=b"\xff\xd8sim-portrait\xff\xd9", fingers=fingers)


# a stand-in DG3 right thumb for the in-process chip (the virtual chip renders real ones)
SIM_FINGER = FingerImage(1, 0, 80, 0, 8, 8, 500, 8, "raw", bytes(range(64)))


class SimCamera(_SimDevice):
    name = "camera"

    async def burst(self, n: int) -> Sequence[Frame]:
        now = time.monotonic()
        return [Frame(np.full((4, 4, 3), k, np.uint8), now + k / 30) for k in range(n)]


class SimFace:
    name = "face"

    def __init__(self, hall: SimHall, threshold: float) -> None:
        self.hall = hall
        self.threshold = threshold

    async def verify(self, portrait: bytes | None, frames: Sequence[Frame]) -> FaceVerification:
        t = self.hall.current
        score = t.face_score if t is not None and portrait else 0.0
        ok = score >= self.threshold
        reasons = () if ok else (ReasonCode.FACE_NO_MATCH,)
        result = FaceResult(ok, score, self.threshold, 0.0, 1.0, "sim", reasons)
        return FaceVerification(result, frames[0].image if frames else None)


@dataclass(frozen=True)
class SimThumbVerdict:
    """The fields of ``drivers.finger.verifier.ThumbVerdict`` the daemon reads."""

    matched: bool
    score: float | None
    threshold: float
    finger: str
    detail: str
    capture_ms: float = 0.0
    match_ms: float = 0.0
    reader_fault: bool = False


class SimThumb:
    """The thumb reader and matcher as the scripted traveller's ``thumb_score`` says;
    blocking, like the real verifier (the daemon runs it in a thread)."""

    name = "thumb"

    def __init__(self, hall: SimHall, threshold: float = 40.0) -> None:
        self.hall = hall
        self.threshold = threshold
        self.references: list[tuple[FingerImage, ...]] = []  # what each call was given

    def verify(
        self,
        references: Sequence[FingerImage],
        timeout_s: float,
        cancel: threading.Event | None = None,
    ) -> SimThumbVerdict:
        self.references.append(tuple(references))
        t = self.hall.current
        if t is None or t.thumb == "none" or t.thumb_score is None:
            return SimThumbVerdict(False, None, self.threshold, "", "no finger on the reader")
        if t.thumb == "fault":
            return SimThumbVerdict(
                False, None, self.threshold, "", "reader gone", reader_fault=True
            )
        score = t.thumb_score
        return SimThumbVerdict(
            score >= self.threshold, score, self.threshold, "right thumb", "", 30.0, 7.0
        )


class SceneThumbReader:
    """``sim/thumb_reader.py``'s reader inside the daemon, presenting at each capture
    what the rig wrote into the scene file (``Rig._write_thumb_scene``): the camera
    folder's counterpart for the thumb. No file, or a broken one, is no finger."""

    name = "sim thumb reader (scene)"

    def __init__(self, scene: Path) -> None:
        from sim.thumb_reader import SimThumbReader

        self.scene = Path(scene)
        self.inner = SimThumbReader()

    def capture(self, timeout_s: float, cancel: threading.Event | None = None) -> Any:
        try:
            spec = json.loads(self.scene.read_text())
            finger, impression = int(spec.get("finger", 0)), int(spec.get("impression", 1))
            mode = str(spec.get("mode", "finger"))
        except (OSError, ValueError, TypeError, AttributeError):
            finger, impression, mode = 0, 1, "none"
        if mode not in ("finger", "none", "garbage", "truncated", "fault"):
            mode = "none"
        self.inner.present(finger, impression, mode)  # type: ignore[arg-type]
        return self.inner.capture(timeout_s, cancel)

    def close(self) -> None:
        self.inner.close()


class SimBarrier(_SimDevice):
    name = "barrier"

    async def open(self, door: DoorName) -> None:
        await self.hall.move_door(door, True)

    async def close_door(self, door: DoorName) -> None:
        await self.hall.move_door(door, False)


class SimLists:
    name = "lists"

    def __init__(self, hall: SimHall, stolen: Sequence[str] = ()) -> None:
        self.hall = hall
        self.stolen = set(stolen)

    async def check(self, mrz: MrzRecord) -> ListsResult:
        t = self.hall.current
        hit = (t is not None and t.stolen) or mrz.document_number in self.stolen
        return ListsResult(hits=(ReasonCode.LIST_STOLEN_DOC,) if hit else ())
