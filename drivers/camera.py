"""The gate camera through OpenCV: a device index, an RTSP/HTTP URL, a video file, or a
folder of frames (the simulator's camera).

``burst(n)`` returns ``n`` consecutive frames with their monotonic capture times. A
camera that gives no frame, or frames that are all identical (a frozen pipeline repeats
its last buffer, a real sensor never does), raises ``DeviceError``; the daemon turns
that into OUT_OF_SERVICE. Every OpenCV call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from drivers.errors import DeviceError
from drivers.interfaces import Emit, Frame
from gate.config import GateConfig, OpenCVCameraConfig
from gate.inputs import DeviceFault, LinkRestored

log = logging.getLogger(__name__)
MAX_FRAME_PIXELS = 50_000_000  # as drivers.face.detect: larger than any camera frame
RECOVERY_S = 1.0  # a failed camera is tried again this often until it gives a frame

NAME = "camera"  # the device name of its faults (DeviceError("camera", ...))
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".jp2", ".j2k", ".ppm", ".pgm", ".webp"}


def _frame_file(path: Path) -> np.ndarray | None:
    """A BGR frame from an image file, or None; the size comes from the header first, so
    a decompression bomb is never decoded (OpenCV's own limit is a gigapixel, and it
    raises instead of refusing)."""
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Exception:  # noqa: BLE001 - PIL raises many types for what is no image
        return None
    if w * h > MAX_FRAME_PIXELS:
        return None
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    return img if img is not None and img.size else None


class _FolderSource:
    """Frames from image files in name order, wrapping around (a virtual camera).

    The folder is the scene: when its content changes (a new traveller's frames written,
    or the folder swapped for another), the next frame comes from the new content."""

    def __init__(self, folder: Path, loop: bool) -> None:
        self.folder = folder
        self.loop = loop
        self.files: list[Path] = []
        self.stamp: tuple[int, int] | None = None
        self.pos = 0
        self._rescan()

    def _rescan(self) -> None:
        try:
            st = self.folder.stat()
        except OSError:
            self.files, self.stamp = [], None
            return
        stamp = (st.st_ino, st.st_mtime_ns)
        if stamp != self.stamp:
            self.stamp = stamp
            self.files = sorted(
                p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
            )
            self.pos = 0

    def read(self) -> np.ndarray | None:
        """The next frame; a file that is no usable frame (torn, empty, a header that
        claims more pixels than any camera gives) is skipped: it is one bad frame, not a
        dead camera. None when no file of the folder gives one."""
        self._rescan()
        for _ in range(len(self.files)):
            if self.pos >= len(self.files) and not self.loop:
                return None
            path = self.files[self.pos % len(self.files)]
            self.pos += 1
            img = _frame_file(path)
            if img is not None:
                return img
            log.warning("camera: %s is no usable frame, skipped", path.name)
        return None

    def release(self) -> None:
        self.files = []


class _CaptureSource:
    """cv2.VideoCapture over a device index, URL or video file."""

    def __init__(self, source: int | str, cfg: OpenCVCameraConfig) -> None:
        params: list[int] = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(cfg.timeout_s * 1000),
        ]  # fmt: skip
        self.cap = cv2.VideoCapture(source, cv2.CAP_ANY, params)
        self.is_file = isinstance(source, str) and Path(source).is_file()
        self.loop = cfg.loop
        if cfg.width:
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
        if cfg.height:
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
        if cfg.fps:
            self.cap.set(cv2.CAP_PROP_FPS, cfg.fps)

    def opened(self) -> bool:
        return bool(self.cap.isOpened())

    def read(self) -> np.ndarray | None:
        ok, frame = self.cap.read()
        if not ok and self.is_file and self.loop:  # a video file plays again from the start
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.cap.read()
        return frame if ok else None

    def release(self) -> None:
        self.cap.release()


def open_source(cfg: OpenCVCameraConfig) -> _FolderSource | _CaptureSource:
    src = cfg.source
    if isinstance(src, str) and Path(src).is_dir():
        folder = _FolderSource(Path(src), cfg.loop)
        if not folder.files:
            raise DeviceError("camera", f"no image files in {src}")
        return folder
    if isinstance(src, str) and "://" not in src and not Path(src).exists():
        raise DeviceError("camera", f"no such video file or folder: {src}")
    cap = _CaptureSource(src, cfg)
    if not cap.opened():
        cap.release()
        raise DeviceError("camera", f"cannot open {src!r}")
    return cap


def usable_frame(frame: object) -> np.ndarray | None:
    """``frame`` as 8-bit gray (2-D) or BGR (3 channels), or None when it is no image."""
    if not isinstance(frame, np.ndarray) or frame.size == 0 or frame.ndim not in (2, 3):
        return None
    if frame.ndim == 3 and frame.shape[2] not in (1, 3, 4):
        return None
    if frame.dtype != np.uint8:
        if frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        elif np.issubdtype(frame.dtype, np.number) and np.isfinite(frame).all():
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        else:
            return None
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    elif frame.ndim == 3 and frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def frozen(frames: Sequence[np.ndarray], tolerance: float) -> bool:
    """True when every frame equals the first (mean absolute difference <= tolerance)."""
    if len(frames) < 2:
        return False
    first = frames[0].astype(np.int16)
    for f in frames[1:]:
        if f.shape != frames[0].shape:
            return False
        if float(np.abs(f.astype(np.int16) - first).mean()) > tolerance:
            return False
    return True


class OpenCVCamera:
    """``drivers.interfaces.Camera`` over OpenCV."""

    def __init__(self, cfg: OpenCVCameraConfig, name: str = "camera") -> None:
        self.cfg = cfg
        self.name = name
        self._src: _FolderSource | _CaptureSource | None = None
        self._lock = threading.Lock()  # one OpenCV reader at a time
        self._last: np.ndarray | None = None
        self._era = 0  # bumped by ``forget``: a burst begun before it keeps no frame
        self._emit: Emit | None = None
        self._recovery: asyncio.Task[None] | None = None

    async def start(self, emit: Emit) -> None:
        self._emit = emit
        try:
            self._src = await asyncio.to_thread(open_source, self.cfg)
        except DeviceError as exc:
            # absent at boot (a USB camera enumerates late, a stream is not up yet): out of
            # service until it gives frames. Failing the start would crash-loop the daemon
            # until systemd gave up on the lane.
            log.error("camera: %s; trying every %.1f s", exc.detail, RECOVERY_S)
            emit(DeviceFault(NAME, exc.detail))
            self._recovery = asyncio.ensure_future(self._recover())

    def forget(self) -> None:
        """The transaction ended: drop the last frame kept for the frozen check (it shows
        the traveller's face). Lock-free: called from the event loop during a burst."""
        self._era += 1
        self._last = None

    def _burst(self, n: int) -> list[Frame]:
        era = self._era
        with self._lock:
            if self._src is None:
                self._src = open_source(self.cfg)
            frames: list[Frame] = []
            deadline = time.monotonic() + self.cfg.timeout_s * max(1, n)
            while len(frames) < n:
                img = usable_frame(self._src.read())
                if img is None:
                    raise DeviceError("camera", f"no frame from {self.cfg.source!r}")
                if img.ndim == 2:  # a gray camera: the face pipeline works on BGR
                    img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
                frames.append(Frame(image=img, ts=time.monotonic()))
                if time.monotonic() > deadline:
                    raise DeviceError("camera", f"burst of {n} took longer than allowed")
            images = [f.image for f in frames]
            if self._last is not None:
                images.insert(0, self._last)
            if frozen(images, self.cfg.frozen_tolerance):
                raise DeviceError("camera", "frozen: consecutive frames are identical")
            if era == self._era:
                self._last = images[-1]
            return frames

    async def burst(self, n: int) -> Sequence[Frame]:
        if n < 1:
            raise ValueError("burst needs n >= 1")
        try:
            return await asyncio.to_thread(self._burst, n)
        except DeviceError:
            # the daemon takes the lane out of service on this; without a word that the
            # camera is back, 'in service' would be refused until a restart
            self._start_recovery()
            raise
        except Exception as exc:
            # a backend failing in a way nobody foresaw: a camera fault all the same, and
            # one that clears (the source is opened again); raised as itself it was a
            # fault the daemon reported and nothing ever cleared
            log.exception("camera: burst failed unexpectedly")
            self._start_recovery()
            raise DeviceError(NAME, f"burst failed: unexpected error {exc!r}") from None

    def _start_recovery(self) -> None:
        if self._emit is not None and (self._recovery is None or self._recovery.done()):
            self._recovery = asyncio.ensure_future(self._recover())

    async def _recover(self) -> None:
        """Open the source again until it gives a frame, then say the camera is back."""
        while True:
            await asyncio.sleep(RECOVERY_S)
            if await asyncio.to_thread(self._answers):
                log.info("camera: frames again from %r", self.cfg.source)
                if self._emit is not None:
                    self._emit(LinkRestored(NAME))
                return

    def _answers(self) -> bool:
        with self._lock:
            try:
                if self._src is not None:
                    self._src.release()
                self._src = open_source(self.cfg)
                two = [self._src.read(), self._src.read()]
                # two frames, and not the same twice: a frozen pipeline is not back
                return all(f is not None for f in two) and not frozen(
                    two,  # type: ignore[arg-type]
                    self.cfg.frozen_tolerance,
                )
            except DeviceError:
                return False
            except Exception:  # noqa: BLE001 - a backend failing oddly is still no frame
                log.exception("camera: trying the source again failed")
                return False

    async def close(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
        with self._lock:
            if self._src is not None:
                self._src.release()
                self._src = None


def build(cfg: OpenCVCameraConfig, gate_cfg: GateConfig) -> OpenCVCamera:
    """Factory for the daemon's wiring."""
    return OpenCVCamera(cfg)
