"""A full-page document reader that is a camera over the glass (V4L2, RTSP/HTTP, a video file).

Many kiosk and e-gate page readers are, seen from the host, a UVC camera (V4L2 on Linux)
under their own lighting, or an IP camera streaming RTSP. There is no "document placed"
signal: presence is seen. ``Presence`` compares a small, blurred grey view of each frame
with the empty glass: a page is placed when the view departs from it and then holds still
for ``settle_frames`` (the traveller's hand has left), removed when the view is the
empty glass again; the empty view follows slow light changes while nothing is there.
The held frame is read by the same pipeline as every page (``drivers.scanner.read_image``).
Capture and reads run in worker threads: the daemon's loop never waits on a camera.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

import cv2
import numpy as np

from drivers.camera import open_source, usable_frame
from drivers.errors import DeviceError
from drivers.interfaces import Emit
from drivers.mrz_ocr import load_model
from drivers.scanner import read_image
from gate.config import GateConfig, OpenCVCameraConfig, PageCameraScannerConfig
from gate.inputs import DeviceFault, DocumentPlaced, DocumentRemoved, LinkRestored
from gate.reasons import ReasonCode as R
from gate.results import DocumentResult

log = logging.getLogger(__name__)

VIEW = (160, 120)  # presence is judged on this small a view: cheap, and blind to noise
REOPEN_S = 1.0
FAULT_AFTER = 3  # reopen attempts before the reader is reported faulty


def _view(frame: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    small = cv2.resize(gray, VIEW, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (5, 5), 0).astype(np.float32)


@dataclass
class Presence:
    """Document presence from successive frames; ``feed`` says what changed, if anything."""

    change: float
    still: float
    settle_frames: int
    empty: np.ndarray | None = None
    last: np.ndarray | None = None
    steady: int = 0
    present: bool = False

    def feed(self, frame: np.ndarray) -> str | None:
        """``"placed"``, ``"removed"`` or None for one frame."""
        view = _view(frame)
        if self.empty is None:  # the glass is empty at start (the daemon starts in IDLE)
            self.empty = self.last = view
            return None
        moved = float(np.abs(view - self.last).mean()) if self.last is not None else 255.0
        self.last = view
        self.steady = self.steady + 1 if moved <= self.still else 0
        off_glass = float(np.abs(view - self.empty).mean()) > self.change
        if not self.present:
            if not off_glass:
                self.empty = 0.95 * self.empty + 0.05 * view  # slow light drift
                return None
            if self.steady >= self.settle_frames:
                self.present = True
                return "placed"
            return None
        if not off_glass and self.steady >= self.settle_frames:
            self.present = False
            return "removed"
        return None


class PageCameraScanner:
    """``DocumentScanner`` over a camera that looks at the reader's glass."""

    def __init__(self, cfg: PageCameraScannerConfig, name: str = "scanner") -> None:
        self.name = name
        self.cfg = cfg
        self.presence = Presence(cfg.change, cfg.still, cfg.settle_frames)
        self.page: np.ndarray | None = None  # the still frame a read works on
        self._source: object | None = None
        self._task: asyncio.Task[None] | None = None

    def _camera_cfg(self) -> OpenCVCameraConfig:
        c = self.cfg
        return OpenCVCameraConfig(
            type="opencv",
            source=c.source,
            width=c.width,
            height=c.height,
            loop=False,
            timeout_s=c.timeout_s,
        )

    async def start(self, emit: Emit) -> None:
        await asyncio.to_thread(load_model)  # fail at start, not at the first traveller
        absent = False
        try:
            self._source = await asyncio.to_thread(open_source, self._camera_cfg())
        except DeviceError as exc:  # absent at boot: out of service until it gives frames
            log.error("page camera: %s; trying again", exc.detail)
            emit(DeviceFault("scanner", exc.detail))
            absent = True
        self._task = asyncio.create_task(self._watch(emit, absent), name=f"{self.name}-watch")

    def _grab(self) -> np.ndarray | None:
        """The next frame, as 8-bit gray or BGR; None for no frame. A backend that fails
        in a way nobody foresaw (it raises, or hands over BGRA, 16-bit or empty frames)
        is a camera giving no frame, counted and reopened like one: it used to end the
        watch task, and the lane saw no document again, with nothing said."""
        source = self._source
        if source is None:
            return None
        try:
            frame = source.read()  # type: ignore[attr-defined]
        except Exception:
            log.exception("page camera %r: reading a frame failed", self.cfg.source)
            return None
        return usable_frame(frame)

    async def _watch(self, emit: Emit, faulted: bool = False) -> None:
        failures = FAULT_AFTER if faulted else 0  # a fault said at start clears the same way
        while True:
            await asyncio.sleep(self.cfg.poll_s)
            frame = await asyncio.to_thread(self._grab)
            if frame is None:  # unplugged, stream dropped, end of a video file
                failures += 1
                log.warning("page camera %r: no frame (%d); reopening", self.cfg.source, failures)
                if failures == FAULT_AFTER:  # a glitch is retried; a dead camera is a fault
                    emit(DeviceFault("scanner", f"no frame from {self.cfg.source!r}"))
                await asyncio.sleep(REOPEN_S)
                try:
                    self._source = await asyncio.to_thread(open_source, self._camera_cfg())
                except DeviceError:
                    pass
                except Exception:  # a backend failing oddly: still no camera, try again
                    log.exception("page camera %r: reopening failed", self.cfg.source)
                continue
            if failures >= FAULT_AFTER:  # reported faulty: the core's fault clears on this
                log.info("page camera %r: frames again", self.cfg.source)
                emit(LinkRestored("scanner"))
            failures = 0
            try:
                what = self.presence.feed(frame)
            except Exception:  # never seen: one frame lost, not the watch
                log.exception("page camera %r: frame not usable", self.cfg.source)
                continue
            if what == "placed":
                self.page = frame
                emit(DocumentPlaced())
            elif what == "removed":
                self.page = None
                emit(DocumentRemoved())

    async def read(self) -> DocumentResult:
        page = self.page
        if page is None:  # taken away between placing and reading
            return DocumentResult(mrz=None, reasons=(R.DOC_UNREADABLE,), elapsed_s=0.0)
        return await asyncio.to_thread(
            read_image, page, today=dt.date.today(), min_confidence=self.cfg.min_confidence
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._source is not None:
            await asyncio.to_thread(self._source.release)  # type: ignore[attr-defined]
            self._source = None


def build(cfg: PageCameraScannerConfig, gate_cfg: GateConfig) -> PageCameraScanner:
    """Wiring hook: ``devices.scanner: {type: page_camera, source: /dev/video0}``."""
    return PageCameraScanner(cfg)
