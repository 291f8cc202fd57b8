"""The simulator's thumb reader: what a traveller puts on the glass, through the same
``FingerReader`` interface as libfprint's (``drivers/finger/reader.py``).

It presents a chosen impression of a chosen synthetic finger (``sim/fingerprints.py``;
impression 0 is the one on the virtual chip, so present another for a real-life touch),
or no finger (the capture waits out its timeout), or garbage (sensor noise; a frame
whose size does not match its bytes), or a dead reader. A rig or scenario changes what
is presented between travellers with ``present``.
"""

from __future__ import annotations

import threading
from typing import Literal

import numpy as np

from drivers.finger.reader import Capture, NoFinger, ReaderFault
from sim import fingerprints

Mode = Literal["finger", "none", "garbage", "truncated", "fault"]


class SimThumbReader:
    name = "sim thumb reader"

    def __init__(self, finger: int = 0, impression: int = 1, mode: Mode = "finger") -> None:
        self._lock = threading.Lock()
        self.finger, self.impression, self.mode = finger, impression, mode
        self.captures = 0

    def present(
        self, finger: int | None = None, impression: int = 1, mode: Mode = "finger"
    ) -> None:
        """What the next capture sees; ``finger=None`` is no finger at all."""
        with self._lock:
            self.mode = "none" if finger is None and mode == "finger" else mode
            self.finger = finger if finger is not None else self.finger
            self.impression = impression

    def capture(self, timeout_s: float, cancel: threading.Event | None = None) -> Capture:
        with self._lock:
            finger, impression, mode = self.finger, self.impression, self.mode
            self.captures += 1
        if mode == "fault":
            raise ReaderFault("no answer from the simulated reader")
        if mode == "none":
            (cancel or threading.Event()).wait(max(0.0, timeout_s))
            raise NoFinger(
                "no finger placed" + (" (cancelled)" if cancel and cancel.is_set() else "")
            )
        h, w = fingerprints.IMPRESSION_SHAPE
        if mode in ("garbage", "truncated"):
            rng = np.random.default_rng(self.captures)
            noise = rng.integers(0, 256, (h, w), dtype=np.uint8).tobytes()
            if mode == "truncated":
                noise = noise[: len(noise) // 3]
            return Capture(noise, w, h, fingerprints.PPI, self.name)
        img = fingerprints.impression(finger, impression)
        return Capture(img.tobytes(), w, h, fingerprints.PPI, self.name)

    def close(self) -> None:
        pass
