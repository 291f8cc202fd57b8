"""1:1 fingerprint comparison with NIST NBIS: mindtct minutiae and the Bozorth3 score
(``nbis-py``: NBIS compiled behind Rust bindings), behind a threshold descriptor.

Chosen by measurement over ``afis`` (``docs/finger.md``): afis's wheel carries no native
NBIS library here, and its pure-Python mindtct takes some 20 s an image. Bozorth3's
score is the size of the largest consistent cluster of minutia pairs (an integer, higher
is more alike; not normalised). It is not scale invariant, so every image is brought to
500 ppi first. The threshold lives only in the descriptor (``models/finger/*.json``):
``autogate finger calibrate`` writes it, the verifier reads it.

Extraction and comparison run in a worker process (``isolated.py``): a hostile image
that crashes NBIS refuses that traveller's thumb, nothing more.
"""

from __future__ import annotations

import hashlib
import io
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.descriptor import ModelDescriptor
from drivers.errors import DeviceError
from drivers.finger.isolated import Worker, WorkerFailed
from gate.resources import shipped_dir

MODELS_DIR = shipped_dir("models/finger")
DEFAULT_DESCRIPTOR = MODELS_DIR / "nbis_bozorth3.json"
PPI = 500
MATCH_TIMEOUT_S = 10.0
MIN_SIDE = 96  # pixels at 500 ppi: 5 mm, far less than any sensor's window
MAX_SIDE = 2000


class Descriptor(ModelDescriptor):
    """The thumb matcher's descriptor (the face's shape: backend, threshold, calibration)."""

    DEVICE = "finger"
    THRESHOLDS = (0.0, math.inf)  # Bozorth3 scores are >= 0: a threshold of 0 matches anyone

    @property
    def min_minutiae(self) -> int:
        return int(self.data.get("min_minutiae", 12))

    @classmethod
    def check(cls, path: Path, data: dict[str, Any]) -> None:
        if data.get("backend") != "nbis":
            raise DeviceError("finger", f"{path}: not an NBIS matcher descriptor")
        if not isinstance(data.get("threshold"), int | float):
            raise DeviceError("finger", f"{path} is not calibrated (no threshold)")
        cls.check_optional(path, data, "min_minutiae", int)


@dataclass(frozen=True)
class Comparison:
    score: float
    minutiae_reference: int
    minutiae_live: int
    extract_ms: float  # the live image's extraction (the reference's is cached)
    match_ms: float


def to_png(image: Any, ppi: float) -> bytes:
    """A grey ``PIL.Image`` at ``ppi`` as an 8-bit PNG at 500 ppi (what NBIS expects);
    ``ValueError`` for an image too small or too large to be a fingerprint (mindtct
    smashes its stack on a strip 8 pixels high: such images never reach it)."""
    from PIL import Image

    grey = image.convert("L")
    if ppi and abs(ppi - PPI) > 5:
        w, h = grey.size
        grey = grey.resize(
            (max(1, round(w * PPI / ppi)), max(1, round(h * PPI / ppi))), Image.Resampling.LANCZOS
        )
    if min(grey.size) < MIN_SIDE:
        raise ValueError(f"image of {grey.size[0]}x{grey.size[1]} at 500 ppi is too small")
    if max(grey.size) > MAX_SIDE:
        raise ValueError(f"image of {grey.size[0]}x{grey.size[1]} at 500 ppi is too large")
    buf = io.BytesIO()
    grey.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


# --- in the worker process ------------------------------------------------------------
_extractor: Any = None
_cache: OrderedDict[str, Any] = OrderedDict()


def _extract(png: bytes) -> Any:
    global _extractor
    import nbis

    if _extractor is None:
        _extractor = nbis.new_nbis_extractor(
            nbis.NbisExtractorSettings(
                min_quality=0.0,
                get_center=False,
                check_fingerprint=False,
                compute_nfiq2=False,
                ppi=float(PPI),
            )
        )
    return _extractor.extract_minutiae(png)


def _cached(png: bytes) -> Any:
    key = hashlib.sha256(png).hexdigest()
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    m = _extract(png)
    _cache[key] = m
    while len(_cache) > 256:
        _cache.popitem(last=False)
    return m


def compare_pngs(reference: bytes, live: bytes) -> Comparison | str:
    """Score of ``live`` against ``reference`` (both 500 ppi PNG); a string says why not.
    Runs in the worker; references are cached by content (retries, calibration)."""
    try:
        ref = _cached(reference)
        t0 = time.perf_counter()
        liv = _cached(live)
        t1 = time.perf_counter()
        score = ref.compare(liv)
        t2 = time.perf_counter()
        return Comparison(
            float(score), len(ref.get()), len(liv.get()), (t1 - t0) * 1e3, (t2 - t1) * 1e3
        )
    except Exception as exc:  # NbisError and whatever the bindings raise on a bad image
        return f"the matcher refused the image: {type(exc).__name__}: {exc}"[:200]


def extract_ahead(png: bytes) -> bool:
    """Extract and cache a reference's minutiae (queued while the traveller touches)."""
    try:
        _cached(png)
        return True
    except Exception:  # compare_pngs will say why
        return False


def cached(png: bytes) -> bool:
    return hashlib.sha256(png).hexdigest() in _cache


def _warm() -> bool:
    import nbis  # noqa: F401

    return True


# --- in the daemon -------------------------------------------------------------------
class NBISMatcher:
    """Compares in a worker process; ``in_process=True`` only for sets we made (bench,
    calibration), never for a chip's or a reader's image."""

    name = "nbis_bozorth3"

    def __init__(self, in_process: bool = False, timeout_s: float = MATCH_TIMEOUT_S) -> None:
        self.in_process = in_process
        self.timeout_s = timeout_s
        self.worker = Worker("the NBIS matcher", warm=_warm)

    def warm(self) -> None:
        if not self.in_process:
            self.worker.warm()  # spawn and import once, not per traveller

    def prepare(self, reference_png: bytes) -> None:
        """Extract the reference's minutiae now, while the reader waits for the finger."""
        if not self.in_process:
            self.worker.start(extract_ahead, reference_png)

    def compare(self, reference_png: bytes, live_png: bytes) -> Comparison:
        """The comparison, or ``ValueError`` saying why there is none (a bad image, or
        the matcher crashed on it)."""
        if self.in_process:
            out = compare_pngs(reference_png, live_png)
        else:
            try:
                out = self.worker.call(
                    compare_pngs, reference_png, live_png, timeout_s=self.timeout_s
                )
            except WorkerFailed as exc:
                raise ValueError(str(exc)) from None
        if isinstance(out, str):
            raise ValueError(out)
        return out

    def close(self) -> None:
        self.worker.close()
