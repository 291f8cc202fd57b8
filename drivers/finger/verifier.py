"""Thumb verification for the gate: capture a thumb, compare it with the chip's DG3.

``verify`` never raises for bad input. A DG3 image that cannot be decoded (or that
crashes the WSQ decoder), a capture that is noise or the wrong size, an image that
crashes the matcher: each gives a ``ThumbVerdict`` with ``matched=False`` and a
``detail`` saying why, and the next traveller starts clean. ``reader_fault`` is set only
when the reader itself is unreachable or broken, so the daemon can tell a device fault
from a traveller's failed attempt.

One comparison per traveller, against the finger the gate asks for (``finger``, or the
first of ``fallback`` that DG3 holds): the threshold was calibrated for one comparison
at FMR 0.1 %, and comparing against every finger on the chip would multiply that FMR.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from drivers.finger.config import POSITION_NAMES, POSITIONS, FingerConfig, LibfprintReaderConfig
from drivers.finger.matcher import DEFAULT_DESCRIPTOR, Descriptor, NBISMatcher, to_png
from drivers.finger.quality import ridge_area
from drivers.finger.reader import Capture, FingerReader, NoFinger
from drivers.icao import cbeff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThumbVerdict:
    matched: bool  # score >= threshold
    score: float | None  # matcher similarity; None when nothing could be compared
    threshold: float  # the calibrated threshold (FMR 0.1 %) that was applied
    finger: str  # the reference position compared, e.g. "right_thumb"
    detail: str  # why there is no score (no finger placed in time, poor capture, ...)
    capture_ms: float = 0.0
    match_ms: float = 0.0
    reader_fault: bool = False  # the reader itself is unreachable/broken (a device fault)
    minutiae: tuple[int, int] = (0, 0)  # reference, live (0, 0 when not compared)


class ThumbVerifier(Protocol):
    def verify(
        self,
        references: Sequence[cbeff.FingerImage],
        timeout_s: float,
        cancel: threading.Event | None = None,
    ) -> ThumbVerdict: ...


class Verifier:
    """A reader, the NBIS matcher and a calibrated threshold."""

    def __init__(
        self,
        reader: FingerReader,
        matcher: NBISMatcher,
        descriptor: Descriptor,
        finger: str = "right_thumb",
        fallback: Sequence[str] = ("left_thumb",),
        min_ridge_area: float = 0.25,
        assumed_ppi: float = 500.0,
    ) -> None:
        self.reader, self.matcher, self.descriptor = reader, matcher, descriptor
        self.threshold = descriptor.threshold
        self.order = [finger, *[f for f in fallback if f != finger]]
        self.min_ridge_area = min_ridge_area
        self.assumed_ppi = assumed_ppi

    def _verdict(self, finger: str, detail: str, **kw: Any) -> ThumbVerdict:
        log.info("thumb not compared (%s): %s", finger, detail)
        return ThumbVerdict(False, None, self.threshold, finger, detail, **kw)

    def _reference(self, references: Sequence[cbeff.FingerImage]) -> tuple[str, bytes | str]:
        """(position name, 500 ppi PNG) of the finger to compare, or a reason instead."""
        by_pos = {f.position: f for f in references}
        problems = []
        for name in self.order:
            f = by_pos.get(POSITIONS[name])
            if f is None:
                continue
            try:
                return name, to_png(cbeff.decode(f), f.resolution_ppi or 500)
            except Exception as exc:  # LDSError, and whatever a hostile image raises
                problems.append(f"{name}: {exc}")
        held = ", ".join(POSITION_NAMES.get(f.position, str(f.position)) for f in references)
        if problems:
            return self.order[0], "no usable reference image (" + "; ".join(problems) + ")"
        return self.order[
            0
        ], f"no reference image of {' or '.join(self.order)} (DG3 holds {held or 'none'})"

    def _live(self, cap: Capture) -> bytes | str:
        bad = cap.check()
        if bad:
            return f"garbage from the reader: {bad}"
        img = np.frombuffer(cap.pixels, np.uint8).reshape(cap.height, cap.width)
        area = ridge_area(img)
        if area < self.min_ridge_area:
            return (
                f"poor capture: ridges on {area:.0%} of the image (needs {self.min_ridge_area:.0%})"
            )
        from PIL import Image

        try:
            return to_png(Image.fromarray(img, "L"), cap.resolution_ppi or self.assumed_ppi)
        except ValueError as exc:
            return f"garbage from the reader: {exc}"

    def verify(
        self,
        references: Sequence[cbeff.FingerImage],
        timeout_s: float,
        cancel: threading.Event | None = None,
    ) -> ThumbVerdict:
        finger, ref = self._reference(references)
        if isinstance(ref, str):
            return self._verdict(finger, ref)  # the traveller is not asked to touch at all
        self.matcher.prepare(ref)  # the worker extracts it while the traveller touches
        t0 = time.perf_counter()
        try:
            cap = self.reader.capture(timeout_s, cancel)
        except NoFinger as exc:
            return self._verdict(finger, f"no finger placed in time ({exc})",
                                 capture_ms=_ms(t0))  # fmt: skip
        except Exception as exc:  # ReaderFault, and anything a broken device raises
            log.warning("thumb reader fault: %s", exc)
            return self._verdict(finger, f"reader fault: {exc}", capture_ms=_ms(t0),
                                 reader_fault=True)  # fmt: skip
        capture_ms = _ms(t0)
        t1 = time.perf_counter()
        live = self._live(cap)
        if isinstance(live, str):
            return self._verdict(finger, live, capture_ms=capture_ms, match_ms=_ms(t1))
        try:
            c = self.matcher.compare(ref, live)
        except ValueError as exc:
            return self._verdict(finger, str(exc), capture_ms=capture_ms, match_ms=_ms(t1))
        if c.minutiae_live < self.descriptor.min_minutiae:
            return self._verdict(
                finger,
                f"poor capture: {c.minutiae_live} minutiae (needs {self.descriptor.min_minutiae})",
                capture_ms=capture_ms,
                match_ms=_ms(t1),
            )
        matched = c.score >= self.threshold
        log.info("thumb %s: score %.0f, threshold %.0f", finger, c.score, self.threshold)
        return ThumbVerdict(
            matched,
            c.score,
            self.threshold,
            finger,
            "" if matched else "score below the threshold",
            capture_ms=capture_ms,
            match_ms=_ms(t1),
            minutiae=(c.minutiae_reference, c.minutiae_live),
        )

    def close(self) -> None:
        self.matcher.close()
        self.reader.close()


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def build_reader(cfg: FingerConfig) -> FingerReader:
    r = cfg.reader
    if isinstance(r, LibfprintReaderConfig):
        from drivers.finger.libfprint import LibfprintReader

        return LibfprintReader(r)
    # the simulator's reader; drivers import nothing of sim/ at module level
    sim = importlib.import_module("sim.thumb_reader")
    reader: FingerReader = sim.SimThumbReader(r.finger, r.impression, r.mode)
    return reader


def build_verifier(cfg: FingerConfig | None = None, reader: FingerReader | None = None) -> Verifier:
    """The verifier the config names (its reader unless one is given), matcher warmed."""
    cfg = cfg or FingerConfig()
    desc = Descriptor.load(cfg.descriptor or DEFAULT_DESCRIPTOR)
    matcher = NBISMatcher()
    matcher.warm()
    assumed = cfg.reader.resolution_ppi if isinstance(cfg.reader, LibfprintReaderConfig) else 500.0
    return Verifier(
        reader or build_reader(cfg),
        matcher,
        desc,
        cfg.finger,
        cfg.fallback,
        cfg.min_ridge_area,
        assumed,
    )
