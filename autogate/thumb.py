"""The thumb channel at the daemon's seam: run the verifier's blocking ``verify`` off the
core's loop and turn its verdict into the core's ``ThumbResult``.

The verifier (``drivers/finger/verifier.py``: capture on the reader, match against DG3)
is a blocking call with its own timeout and a cancel event; it runs in a worker thread
like pyscard and dlib do. Whatever it does, the traveller gets an answer: an exception
or a missing reference is a reader fault for this traveller, never a crashed daemon nor
a lane out of service.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from drivers.icao.cbeff import FingerImage
from gate.config import ConfigError, GateConfig, NbisThumbConfig, validation_error
from gate.results import ThumbResult

if TYPE_CHECKING:
    from drivers.finger.config import FingerConfig

log = logging.getLogger("autogate.thumb")


class ThumbVerifier(Protocol):
    """The contract of ``drivers.finger.verifier`` (its ``build_verifier(cfg)``)."""

    def verify(
        self,
        references: Sequence[FingerImage],
        timeout_s: float,
        cancel: threading.Event | None = None,
    ) -> Any: ...


def finger_config(cfg: GateConfig, path: str | Path = "<config>") -> FingerConfig | None:
    """The ``drivers/finger`` configuration of ``devices.thumb`` (type ``nbis``), checked
    with one-line errors naming the field; ``None`` for no thumb or the in-process sim."""
    thumb = cfg.devices.thumb
    if not isinstance(thumb, NbisThumbConfig):
        return None
    from drivers.finger.config import FingerConfig

    base = thumb.base
    try:
        return FingerConfig.model_validate(
            thumb.model_extra or {}, context={"base": base} if base else None
        )
    except ValidationError as exc:
        line = str(validation_error("", exc)).removeprefix(": ")
        field = "devices.thumb" if line.startswith(("(root)", "Input")) else "devices.thumb."
        raise ConfigError(f"{path}: {field}{line}") from None


def to_result(verdict: Any, wall_s: float) -> ThumbResult:
    """The core's view of a ``ThumbVerdict``. Without a score: a reader fault; no finger
    placed (the capture ran out, nothing was matched); or a capture that could not be
    compared (noise, too few minutiae, no usable DG3 image: ``detail`` says which), which
    is a thumb that did not match. A score that is not a finite number is kept as
    ``None`` so the decision cannot read it as a match."""
    score = verdict.score
    if score is not None and not (isinstance(score, int | float) and math.isfinite(score)):
        score = None
    fault = bool(verdict.reader_fault)
    capture_ms, match_ms = float(verdict.capture_ms or 0.0), float(verdict.match_ms or 0.0)
    no_finger = score is None and not fault and capture_ms > 0 and match_ms == 0
    spent_ms = capture_ms + match_ms
    return ThumbResult(
        matched=bool(verdict.matched) and score is not None and not fault,
        score=None if score is None else float(score),
        threshold=float(verdict.threshold),
        finger=str(verdict.finger)[:32],
        detail=str(verdict.detail)[:200],
        presented=not no_finger,
        reader_fault=fault,
        elapsed_s=spent_ms / 1000 if spent_ms > 0 else wall_s,
    )


def fault(detail: str, wall_s: float = 0.0) -> ThumbResult:
    return ThumbResult(False, None, detail=detail[:200], reader_fault=True, elapsed_s=wall_s)


async def verify(
    verifier: ThumbVerifier,
    references: Sequence[FingerImage],
    timeout_s: float,
    cancel: threading.Event,
) -> ThumbResult:
    """One thumb for one traveller, in a worker thread; never raises (but on cancel)."""
    if not references:
        return fault("no reference finger from the chip")
    t0 = time.perf_counter()
    try:
        verdict = await asyncio.to_thread(verifier.verify, tuple(references), timeout_s, cancel)
        return to_result(verdict, time.perf_counter() - t0)
    except asyncio.CancelledError:
        cancel.set()
        raise
    except Exception as exc:  # the reader's or the matcher's failure: this traveller only
        log.exception("thumb verification failed")
        return fault(f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
