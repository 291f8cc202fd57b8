"""The document reader: data-page image -> MRZ lines -> ``MrzRecord``, never an exception.

``read_image`` is the whole pipeline on one image (a path, encoded bytes or a numpy
array): decode with guards (empty, truncated, non-image, absurd sizes), find and cut the
MRZ lines, recognise them (``drivers.mrz_ocr``), parse with OCR repair
(``gate.mrz.parse_mrz``). Every failure is a reason code in the ``DocumentResult``.

``OcrScanner`` is the ``DocumentScanner`` device: it watches an image source (a file the
reader's camera, or the simulator's page renderer ``sim/page.py``, writes), reports
``DocumentPlaced`` / ``DocumentRemoved`` as the image appears and goes, and reads it on
demand in a worker thread so the daemon's loop never blocks on OpenCV.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import io
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from drivers.interfaces import Emit
from drivers.mrz_ocr import ALPHABET, LineRead, find_bands, load_model, read_line
from drivers.mrz_recog import load_second
from gate.config import GateConfig, OcrScannerConfig
from gate.inputs import DocumentPlaced, DocumentRemoved
from gate.mrz import LAYOUTS, parse_mrz
from gate.mrz.certainty import MIN_MARGIN, uncertain_fields
from gate.mrz.repair import lean_to_digits, repair_line
from gate.reasons import ReasonCode as R
from gate.results import DocumentResult, MrzRecord

MIN_SIDE = 64  # smaller cannot hold a legible MRZ
MAX_PIXELS = 60_000_000  # refuse before decoding: a 20000 x 20000 image is 1.2 GB in memory
MAX_BYTES = 64 * 1024 * 1024
LOW_CONFIDENCE = 0.55  # correct reads of rendered pages stay above 0.57 (1st percentile)


def _fail(reason: R, t0: float) -> DocumentResult:
    return DocumentResult(mrz=None, reasons=(reason,), elapsed_s=time.perf_counter() - t0)


def decode(source: str | Path | bytes | np.ndarray) -> np.ndarray | R:
    """A gray image, or the reason it cannot be one (checked before any large allocation)."""
    img: np.ndarray | None
    if isinstance(source, np.ndarray):
        img = source
        if img.dtype != np.uint8 or img.ndim not in (2, 3) or img.size == 0:
            return R.DOC_UNREADABLE
        if img.ndim == 3 and img.shape[2] not in (1, 3, 4):
            return R.DOC_UNREADABLE
    else:
        if isinstance(source, str | Path):
            try:
                with open(source, "rb") as f:
                    data = f.read(MAX_BYTES + 1)
            except OSError:
                return R.DOC_UNREADABLE
        else:
            data = bytes(source)
        if not data or len(data) > MAX_BYTES:
            return R.DOC_UNREADABLE
        try:  # the header alone gives the size: refuse decompression bombs unopened
            with Image.open(io.BytesIO(data)) as probe:
                w, h = probe.size
        except Exception:  # PIL raises many types for non-images; all mean the same here
            return R.DOC_UNREADABLE
        if w * h > MAX_PIXELS:
            return R.DOC_UNREADABLE
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        if img is None:
            return R.DOC_UNREADABLE
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    elif img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY if img.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    if img.size > MAX_PIXELS:
        return R.DOC_UNREADABLE
    return img


def _recognise(crops: list[np.ndarray]) -> list[LineRead]:
    allowed = (30,) if len(crops) == 3 else (36, 44)
    reads = [read_line(c, allowed=allowed) for c in crops]
    n = max(len(r.text) for r in reads)
    # all lines of an MRZ have one length: re-cut any line that disagrees
    return [r if len(r.text) == n else read_line(c, n=n) for r, c in zip(reads, crops, strict=True)]


MAX_UNSURE = 6  # second choices tried at the least certain positions
SECOND_MIN = 0.1  # a second choice below this probability is not a candidate


def second_choices(reads: list[LineRead], today: dt.date) -> MrzRecord | None:
    """Try the classifier's second choice at its least certain positions, one at a time;
    keep the result only if exactly one substitution gives a valid MRZ.

    One at a time: with pairs, a page under glare found a wrong pair that satisfied both
    the optional and the composite digit (a 1 in 100 chance, tried 36 times)."""
    unsure = []
    for li, r in enumerate(reads):
        order = np.argsort(-r.probs, axis=1)
        for col in range(len(r.text)):
            p1, p2 = r.probs[col, order[col, 0]], r.probs[col, order[col, 1]]
            if p2 >= SECOND_MIN:
                unsure.append((float(p1 - p2), li, col, ALPHABET[order[col, 1]]))
    unsure = sorted(unsure)[:MAX_UNSURE]
    base = [r.text for r in reads]
    found: dict[tuple[str, ...], MrzRecord] = {}
    for _, li, col, ch in unsure:
        lines = list(base)
        lines[li] = lines[li][:col] + ch + lines[li][col + 1 :]
        rec = parse_mrz(lines, today=today, repair=True)
        if rec.valid:
            extra = ((li, col, base[li][col], ch),)
            found[rec.lines] = dataclasses.replace(rec, repaired=extra + rec.repaired)
    # more than one valid substitution is ambiguous: a guess is not a repair
    return next(iter(found.values())) if len(found) == 1 else None


def read_image(
    source: str | Path | bytes | np.ndarray,
    *,
    today: dt.date,
    min_confidence: float = LOW_CONFIDENCE,
    min_margin: float = MIN_MARGIN,
) -> DocumentResult:
    """Find, recognise and parse the MRZ on a data-page image.

    ``min_margin``: a character of a field no check digit covers read with less margin
    over its runner-up makes that field ``uncertain`` (``gate.mrz.certainty``)."""
    t0 = time.perf_counter()
    gray = decode(source)
    if isinstance(gray, R):
        return _fail(gray, t0)
    if min(gray.shape[:2]) < MIN_SIDE:
        return _fail(R.DOC_NOT_FOUND, t0)
    try:
        return _read(gray, today, min_confidence, min_margin, t0)
    except (cv2.error, ValueError, IndexError, np.linalg.LinAlgError):
        # a degenerate image the geometry cannot handle (never seen on pages; kept so
        # the gate refers instead of crashing, as the DocumentScanner contract says)
        return _fail(R.DOC_NOT_FOUND, t0)


def _read(
    gray: np.ndarray, today: dt.date, min_confidence: float, min_margin: float, t0: float
) -> DocumentResult:
    best: tuple[MrzRecord, float, list[LineRead]] | None = None
    for turn in ("as is", "deskewed", cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE):
        if best is not None and best[0].valid:
            break
        if (
            best is not None
            and best[0].format
            and (turn != "deskewed" or _way_up(best[0], best[2])[2] >= SURE_AS_LIES)
        ):
            break  # a band of an MRZ's shape, read with the certainty of print upright
        # a card or page laid askew or sideways (a page camera over open glass, a TD1 in
        # a reader's corner): the finder looks for lines running across, within about
        # 20 degrees. Straightened by its estimated skew when the page as it lies gave no
        # valid MRZ; turned a right angle only when no band was found at all. A page that
        # reads costs nothing more (upside down is the band reader's own second look)
        page = _turned(gray, turn)
        if page is None:
            continue
        # candidate bands, most likely first: a guess that does not read (a third line
        # that was page text) gives way to the next
        for crops in find_bands(page):
            got = _read_band(crops, today)
            if got is not None and (best is None or _rank(got[0]) > _rank(best[0])):
                best = got
            if best is not None and best[0].valid:
                break
    if best is None:
        return _fail(R.DOC_NOT_FOUND, t0)
    rec, conf, reads = best
    reasons = rec.reasons
    # also when valid: names, codes and sex carry no check digit, so a valid MRZ read with
    # an unsure character may still be wrong there
    if conf < min_confidence:
        reasons = (*reasons, R.DOC_LOW_CONFIDENCE)
    lay = LAYOUTS.get(rec.format)
    unsure = (
        uncertain_fields(rec.lines, [r.probs.tolist() for r in reads], lay, min_margin)
        if lay is not None and len(reads) == len(rec.lines)
        else ()
    )
    return DocumentResult(
        mrz=rec,
        confidence=conf,
        reasons=reasons,
        elapsed_s=time.perf_counter() - t0,
        uncertain=unsure,
    )


def _lean(rec: MrzRecord, reads: list[LineRead], today: dt.date) -> MrzRecord:
    """U read for 0 in a document number passes its check digit (``lean_to_digits``)."""
    lay = LAYOUTS.get(rec.format)
    if lay is None or len(reads) != len(rec.lines):
        return rec
    lines, log = lean_to_digits(rec.lines, [r.probs.tolist() for r in reads], lay)
    if not log:
        return rec
    leaned = parse_mrz(lines, today=today)
    if leaned.valid != rec.valid:  # cannot happen (values kept modulo 10): keep the read
        return rec
    return dataclasses.replace(leaned, repaired=rec.repaired + tuple(log))


def _as_read(rec: MrzRecord, reads: list[LineRead], today: dt.date) -> MrzRecord:
    """An MRZ the repair could not make valid, each line repaired alone.

    A repair across the band is evidence only when every check digit then agrees.
    Without that, the field types it forced were those of a layout the lines may not
    have (a national card's own format, a crop of another document, made-up test lines):
    on pages of real crops whose lines are not one valid MRZ, it turned 17 of 100 pages
    read exactly into wrong text (``bench/mrz_band.py``, 2026-12-07). Each line is then
    repaired as a line read alone (``repair_line``: only a line whose letter and digit
    positions fit one line of one format, so a 0 in a name still becomes O). The gate
    refers an invalid MRZ either way; the officer sees what is printed."""
    lines, log = [], []
    for li, r in enumerate(reads):
        text, fixes = repair_line(r.text, r.probs.tolist())
        lines.append(text)
        log += [(li, col, old, new) for _, col, old, new in fixes]
    read = parse_mrz(lines, today=today)
    return dataclasses.replace(read, repaired=tuple(log)) if read.format else rec


def _rank(rec: MrzRecord) -> tuple[bool, bool]:
    """Which of two reads of candidate bands is likelier the MRZ: a valid one, else one
    of an MRZ's shape; on a tie the earlier (likelier by its geometry) stays. Counting
    failed checks was tried: a wrong band's read then won on pages of mixed documents."""
    return (rec.valid, bool(rec.format))


def _read_band(
    crops: list[np.ndarray], today: dt.date
) -> tuple[MrzRecord, float, list[LineRead]] | None:
    """The band's MRZ, its confidence and the line reads, both ways up (None when
    nothing reads)."""
    best: tuple[MrzRecord, float, list[LineRead]] | None = None
    for flip in (False, True):  # a page laid upside down reads the same, turned
        lines = [cv2.rotate(c, cv2.ROTATE_180) for c in reversed(crops)] if flip else crops
        reads = _recognise(lines)
        if not all(r.text for r in reads):
            continue
        conf = float(min(r.probs.max(axis=1).min() for r in reads))
        rec = parse_mrz([r.text for r in reads], today=today, repair=True)
        if not rec.valid and rec.format:
            rec = second_choices(reads, today) or rec
        rec = _lean(rec, reads, today)
        if not rec.valid:
            rec = _as_read(rec, reads, today)
        if best is None or _way_up(rec, reads) > _way_up(best[0], best[2]):
            best = (rec, conf, reads)
        if rec.valid:
            break
    return best


SKEW_MIN = 12.0  # degrees: under this the finder copes with the page as it lies
# mean certainty of a band read from print upright: bands of real crops read 0.93-0.98,
# pages skewed 25-30 degrees (found, but cut askew) 0.71-0.95; under it, an invalid read
# is tried again straightened (bench/mrz_band.py pages, sim/page.py pages turned)
SURE_AS_LIES = 0.96


def _turned(gray: np.ndarray, turn: str | int) -> np.ndarray | None:
    """The page turned a right angle (``cv2.ROTATE_*``), or straightened by its
    estimated skew ("deskewed"; None when it is under ``SKEW_MIN``)."""
    if turn == "as is":
        return gray
    if turn != "deskewed":
        return cv2.rotate(gray, int(turn))
    deg = skew(gray)
    if abs(deg) < SKEW_MIN:
        return None
    return rotated(gray, deg, int(np.median(gray)))


def rotated(gray: np.ndarray, deg: float, border: int) -> np.ndarray:
    """``gray`` turned ``deg`` degrees counter-clockwise on a canvas that holds all of it
    (the corners filled with ``border``)."""
    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(gray, m, (nw, nh), borderValue=border)


def skew(gray: np.ndarray) -> float:
    """The page's skew in degrees (-45, 45], from the orientation of its strongest edges
    taken modulo 90 (print is strokes across and along its lines). Hand-written: OpenCV
    has no skew estimate; a Hough transform of a whole page costs ten times more."""
    h, w = gray.shape
    s = min(1.0, 800 / max(h, w))
    small = cv2.resize(
        gray, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
    )
    f = small.astype(np.float32)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    strong = mag > np.percentile(mag, 90)
    if not strong.any():
        return 0.0
    z = (mag[strong] * np.exp(4j * np.arctan2(gy[strong], gx[strong]))).sum()
    return float(np.degrees(np.angle(z) / 4))


def _way_up(rec: MrzRecord, reads: list[LineRead]) -> tuple[bool, bool, float]:
    """Which reading of a band is the right way up: a valid one, else one of an MRZ's
    shape, else the one the recogniser is surer of (print read upside down is no
    character it knows: its mean certainty is far lower). The last matters for a
    document whose MRZ no check digit validates (a national card's own layout)."""
    sure = float(np.mean([r.probs.max(axis=1).mean() for r in reads])) if reads else 0.0
    return (rec.valid, bool(rec.format), sure)


class OcrScanner:
    """A document reader whose camera delivers its page image as a file (``image_path``).

    The file appearing (or changing) is a document placed; it vanishing is a document
    removed. In the simulator ``sim.page.write_page`` plays the camera.
    """

    def __init__(self, cfg: OcrScannerConfig, name: str = "scanner") -> None:
        self.name = name
        self.cfg = cfg
        self._task: asyncio.Task[None] | None = None
        self._stamp: tuple[int, int] | None = None

    async def start(self, emit: Emit) -> None:
        await asyncio.to_thread(load_model)  # fail at start, not at the first traveller
        await asyncio.to_thread(load_second)  # (and the second opinion's session built)
        self._stamp = self._current()
        self._task = asyncio.create_task(self._watch(emit), name=f"{self.name}-watch")

    def _current(self) -> tuple[int, int] | None:
        try:
            st = self.cfg.image_path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    async def _watch(self, emit: Emit) -> None:
        while True:
            await asyncio.sleep(self.cfg.poll_s)
            now = self._current()
            if now != self._stamp:
                if now is None:
                    emit(DocumentRemoved())
                else:
                    emit(DocumentPlaced())
                self._stamp = now

    async def read(self) -> DocumentResult:
        return await asyncio.to_thread(
            read_image,
            self.cfg.image_path,
            today=dt.date.today(),
            min_confidence=self.cfg.min_confidence,
            min_margin=self.cfg.min_margin,
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def build(cfg: OcrScannerConfig, gate_cfg: GateConfig) -> OcrScanner:
    """The lead's wiring hook: ``devices.scanner: {type: ocr, image_path: ...}``."""
    return OcrScanner(cfg)
