"""Recognise MRZ characters: find the MRZ lines on a page, cut glyphs, classify them.

Why our own recogniser: Debian's stock Tesseract model misreads MRZs (``<`` as K, O as 0),
no registry ships an MRZ model, and the gate must not fetch files at run time. The MRZ is
one fixed typeface (OCR-B) at a fixed pitch with a 37-symbol alphabet, and every one of
its positions holds a glyph (no spaces), so it is a small, well-posed problem:

1. ``find_lines``: on a downscaled copy, a black-hat filter brings out dark print, a wide
   closing joins the characters of each text line, and the longest group of 2-3 parallel
   lines of similar length is the MRZ (OpenCV morphology, as in PassportEye).
2. Each line is cut out at full resolution along its own rotated rectangle (this undoes
   rotation, and perspective line by line), normalised against its own background (uneven
   light, glare) and scaled to a fixed height.
3. ``glyphs``: connected components give the character pitch; a fixed-pitch model fitted
   to their centres places every character, touching or broken ones included.
4. A small numpy MLP (``models/mrz/``, trained by ``models/mrz/train.py`` from OCR-B
   glyphs under heavy augmentation) classifies each glyph window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from drivers.mrz_band import char_lines
from drivers.mrz_ctc import CtcRead, LineModel, load_line_model, row_image
from drivers.mrz_recog import CNN_SIZE, CNN_SPAN, UNSURE, SecondOpinion, load_second, pool
from gate.mrz.repair import line_checks, repair_line
from gate.resources import shipped_dir

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<"
LINE_H = 40  # a line crop is scaled to this height (capitals about 24 px)
GLYPH_W, GLYPH_H = 16, 24  # classifier input, one character cell
SHIFTS = (0.0, -0.06, 0.06)  # window offsets read_line combines, in pitches
MODEL_DIR = shipped_dir("models/mrz")
DETECT_W = 800
CHAR_BOX_H = 0.92  # a character row's box is this much taller than a morphology line's


@dataclass(frozen=True)
class LineRead:
    text: str
    probs: np.ndarray  # (n, 37) class probabilities, one row per character


# --- 1. find the MRZ lines -----------------------------------------------------------


def _line_boxes(gray: np.ndarray) -> tuple[list[tuple], float]:
    """Rotated rectangles of text lines on a downscaled copy, and the downscale factor."""
    h, w = gray.shape
    scale = min(1.0, DETECT_W / w)
    small = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    sw = small.shape[1]
    k = max(3, round(sw / 80))  # about a character's width on a page that fills the frame
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k * 2 + 1, k + 1))
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel)
    # black-hat relative to the local background, so print under glare or in shadow
    # stands out as much as print in even light
    # (dark surroundings are not paper: their ratio is not amplified)
    c = closed.astype(np.float32)
    black = np.clip((c - small) * 255.0 / np.maximum(c, 128.0), 0, 255).astype(np.uint8)
    _, mask = cv2.threshold(black, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(
        mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * k, max(3, k // 2)))
    )
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 3)))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for contour in contours:
        (cx, cy), (bw, bh), ang = cv2.minAreaRect(contour)
        if bw < bh:
            bw, bh, ang = bh, bw, ang - 90
        ang = (ang + 90) % 180 - 90  # the reading direction: within +-90 degrees of x
        if bh < 2 or bw < 0.2 * sw or bw / bh < 8:
            continue
        boxes.append(((cx / scale, cy / scale), (bw / scale, bh / scale), ang))
    return boxes, scale


def _group(boxes: list[tuple]) -> list[tuple]:
    """The most likely MRZ band among ``boxes`` (see ``bands``), or []."""
    found = bands(boxes)
    return found[0] if found else []


MAX_LINE_GAP = 3.5  # line pitch of a band, in line heights (ICAO: 4.2 mm lines, 2.4 mm caps)
# an MRZ line is 30-44 characters at about its own height apart (2.54 mm pitch, 2.4 mm
# capitals): a line box under half that long for its height is other print
MIN_ASPECT = 14


def bands(boxes: list[tuple]) -> list[list[tuple]]:
    """Candidate MRZ bands, most likely first: 2-3 parallel text lines of about one
    height, stacked at one line pitch, each as a box spanning the band's full length.

    By the band's geometry, not by shared ends: lines of one band may be centred with
    unequal widths (crops of another printer, worn ends), and a name line whose trailing
    fillers are faint is much shorter than the others (TD1's third line) but starts where
    they start. A band with a short or a third line is followed by its two long lines
    alone, so a reader can fall back when the longer guess does not read.
    """
    if not boxes:
        return []
    boxes = sorted(boxes, key=lambda b: -b[1][0])
    out: list[tuple[tuple[bool, int, int, float], list[tuple]]] = []
    for ref in boxes[:6]:
        (rx, ry), (rw, rh), ra = ref
        t = np.deg2rad(ra)
        normal = np.array([-np.sin(t), np.cos(t)])
        axis = np.array([np.cos(t), np.sin(t)])
        members = []
        for b in boxes:
            (x, y), (bw, bh), a = b
            d = np.array([x - rx, y - ry])
            start, end = float(d @ axis - bw / 2), float(d @ axis + bw / 2)
            overlap = min(end, rw / 2) - max(start, -rw / 2)
            long = bw > 0.55 * rw and bw < 1.15 * rw and overlap > 0.8 * min(bw, rw)
            # a line cut short at its end: it starts where the band starts
            short = 0.2 * rw <= bw <= 0.55 * rw and abs(start + rw / 2) < 1.5 * rh
            if (
                (long or short)
                and abs((a - ra + 90) % 180 - 90) < 4
                and 0.6 * rh < bh < 1.6 * rh
                and abs(d @ normal) < 2 * MAX_LINE_GAP * rh
            ):
                members.append((float(d @ normal), start, end, b, long))
        members.sort(key=lambda m: m[0])
        i = next((k for k, m in enumerate(members) if m[3] is ref), None)
        if i is None:  # a degenerate box (no height) is no line of a band
            continue
        for lo_i, hi_i in _runs(members, i, rh):
            run = members[lo_i : hi_i + 1]
            longs = [m for m in run if m[4]]
            if len(longs) < 2:
                continue
            if any(not m[4] for m in run[1:-1]):
                continue  # only an end line may be short
            lo = min(m[1] for m in longs)
            hi = max(m[2] for m in longs)
            group = []
            for off, _, _, b, long in run:
                (_, _), (bw, bh), a = b
                centre = np.array([rx, ry]) + axis * (lo + hi) / 2 + normal * off
                group.append(
                    ((float(centre[0]), float(centre[1])), (hi - lo, bh), a if long else ra)
                )
            out.append(((rw / rh >= MIN_ASPECT, len(longs), len(run), rw), group))
    out.sort(key=lambda g: g[0], reverse=True)
    seen: list[list[tuple]] = []
    for _, g in out:
        if not any(_same(g, h) for h in seen):
            seen.append(g)
    return seen


def _runs(members: list[tuple], i: int, rh: float) -> list[tuple[int, int]]:
    """Windows of 2-3 consecutive lines holding line ``i`` at a regular line pitch (the
    bottom-most first: text above a band is not part of it)."""
    gaps = [b[0] - a[0] for a, b in zip(members, members[1:], strict=False)]

    def ok(k: int) -> bool:
        return 0.9 * rh < gaps[k] < MAX_LINE_GAP * rh

    runs = []
    for lo in range(max(0, i - 2), i + 1):
        for hi in range(max(i, lo + 1), min(len(members), lo + 3)):
            if not all(ok(k) for k in range(lo, hi)):
                continue
            if hi - lo == 2 and not 0.75 < gaps[lo] / gaps[lo + 1] < 1.33:
                continue
            runs.append((lo, hi))
    return sorted(runs, key=lambda r: (r[1] - r[0], r[1]), reverse=True)


def _same(a: list[tuple], b: list[tuple]) -> bool:
    """Two bands of the same lines (found from different reference lines)."""
    if len(a) != len(b):
        return False
    return all(
        np.hypot(p[0][0] - q[0][0], p[0][1] - q[0][1]) < 0.5 * p[1][1]
        for p, q in zip(a, b, strict=True)
    )


def _cut_line(gray: np.ndarray, box: tuple, pitch_hint: float) -> np.ndarray:
    """The line upright at ``LINE_H`` pixels high, widened a little at both ends."""
    (cx, cy), (bw, bh), ang = box
    s = LINE_H / (bh * 1.9)
    out_w = round((bw + 2 * pitch_hint) * s)
    m = cv2.getRotationMatrix2D((cx, cy), ang, s)
    m[0, 2] += out_w / 2 - cx
    m[1, 2] += LINE_H / 2 - cy
    return cv2.warpAffine(
        gray, m, (out_w, LINE_H), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )


MAX_RECUTS = 2  # a clipped line is cut again at most this often, 2 line heights longer each end


def _cut_whole(gray: np.ndarray, box: tuple) -> np.ndarray:
    """``_cut_line``, cut again longer while print runs off one of its ends: a line of wide
    pitch whose first characters stand apart was found as a shorter blob (the closing
    did not bridge its gaps), and its band, as long as the other lines, clipped its first
    glyph (``ACBSO0CPL...`` read ``CBSO0CPL...<``)."""
    crop = _cut_line(gray, box, box[1][1])
    for _ in range(MAX_RECUTS):
        if not _clipped(crop):
            break
        (cx, cy), (bw, bh), ang = box
        box = ((cx, cy), (bw + 4 * bh, bh), ang)
        crop = _cut_line(gray, box, bh)
    return crop


def _clipped(crop: np.ndarray) -> bool:
    """Whether a stroke of print on the text row (the crop's middle; a glyph cut off may
    leave only a leg of itself) touches the crop's left or right end."""
    v = ink(crop)
    binary = (v > 0.45).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    h, w = v.shape
    for i in range(1, count):
        x, y, cw, ch, _ = stats[i]
        on_row = 0.2 * h < y + ch / 2 < 0.8 * h
        if on_row and 0.15 * h <= ch < 0.95 * h and (x == 0 or x + cw >= w):
            return True
    return False


def find_lines(gray: np.ndarray) -> list[np.ndarray]:
    """Upright gray crops of the MRZ lines, top to bottom (empty when no MRZ is seen)."""
    return next(find_bands(gray, limit=1), [])


def find_bands(gray: np.ndarray, limit: int = 3) -> Iterator[list[np.ndarray]]:
    """Line crops of candidate bands, most likely first (see ``bands``), lazily: up to
    ``limit`` from the morphology finder, then, only if the caller asks for more (none
    of those read), up to ``limit`` new ones from the character-row finder
    (``drivers.mrz_band``), which sees lines whose blobs merged."""
    boxes, _ = _line_boxes(gray)
    tried = bands(boxes)[:limit]
    for g in tried:
        yield [_cut_whole(gray, b) for b in g]
    rows = [(c, (w, h * CHAR_BOX_H), a) for c, (w, h), a in char_lines(gray)]
    fresh = [g for g in bands(rows) if not any(_same(g, t) for t in tried)]
    for g in fresh[:limit]:
        yield [_cut_whole(gray, b) for b in g]


# --- 2/3. normalise a line and cut it into character windows -------------------------


def ink(line: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1] against the local background: uneven light and glare cancel."""
    g = line.astype(np.float32)
    k = max(3, line.shape[0] // 2) | 1
    bg = cv2.dilate(g, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    bg = cv2.blur(bg, (k, k))
    v = np.clip((bg - g) / (bg + 1.0), 0, None)
    top = float(np.percentile(v, 99)) or 1.0
    return np.clip(v / top, 0, 1)


@dataclass(frozen=True)
class Layout:
    """Where the characters of a line crop are: its ink map (``LINE_H`` high), each
    character's centre, the pitch, and the text row's top and bottom."""

    ink: np.ndarray
    centres: np.ndarray
    pitch: float
    top: float
    bot: float

    def windows(
        self,
        shifts: tuple[float, ...] = (0.0,),
        size: tuple[int, int] = (GLYPH_H, GLYPH_W),
        span: float = 1.0,
    ) -> np.ndarray:
        """Windows (len(shifts) * n, h * w) ``span`` pitches wide, one per character and
        shift (fractions of the pitch), the n windows of each shift one after another."""
        c = np.asarray(self.centres, np.float32)
        b = self.pitch
        return np.concatenate(
            [
                _cells(self.ink, c + np.float32(sh * b), b * span, self.top, self.bot, size)
                for sh in shifts
            ]
        )


def glyphs(
    line: np.ndarray,
    n: int | None = None,
    allowed: tuple[int, ...] = (),
    shifts: tuple[float, ...] = (0.0,),
) -> np.ndarray:
    """Character windows (k, GLYPH_H * GLYPH_W) of a line crop, left to right.

    ``n`` fixes the number of characters; else it is estimated from the pitch and snapped
    to ``allowed`` when given. Returns an empty array when no characters are found.
    With several ``shifts`` (fractions of the pitch), the k windows of each shift follow
    one another (len(shifts) * k rows).
    """
    lay = layout(line, n, allowed)
    if lay is None:
        return np.zeros((0, GLYPH_H * GLYPH_W), np.float32)
    return lay.windows(shifts)


def layout(line: np.ndarray, n: int | None = None, allowed: tuple[int, ...] = ()) -> Layout | None:
    """The characters' places on a line crop (see ``glyphs``), or None when none are found."""
    line = _upright(line)
    v = ink(line)
    binary = (v > 0.45).astype(np.uint8)
    count, _, stats, cents = cv2.connectedComponentsWithStats(binary, connectivity=8)
    hmax = LINE_H
    comps = [
        (stats[i, 0], stats[i, 1], stats[i, 2], stats[i, 3], cents[i, 0])
        for i in range(1, count)
        if stats[i, 3] >= 0.2 * hmax and stats[i, 4] >= 6 and stats[i, 3] < 0.95 * hmax
    ]
    if len(comps) < 3:
        return None
    heights = np.array([c[3] for c in comps])
    tall_h = np.percentile(heights, 90)
    # drop specks far from the text row
    tall = [c for c in comps if c[3] >= 0.75 * tall_h]
    row_top = np.median([c[1] for c in tall])
    row_bot = np.median([c[1] + c[3] for c in tall])
    comps = [c for c in comps if c[1] < row_bot and c[1] + c[3] > row_top and c[3] >= 0.3 * tall_h]
    comps.sort(key=lambda c: c[4])
    # merge pieces of one broken glyph (overlapping in x)
    merged: list[list[float]] = []
    for x, y, w, h, _ in comps:
        if merged and x < merged[-1][0] + merged[-1][2] - 0.5 * min(w, merged[-1][2]):
            m = merged[-1]
            x1 = max(m[0] + m[2], x + w)
            m[0] = min(m[0], x)
            m[2] = x1 - m[0]
        else:
            merged.append([x, y, w, h])
    if len(merged) < 3:
        return None
    merged = _join_split(merged)
    xs = np.array([m[0] + m[2] / 2 for m in merged])
    ws = np.array([m[2] for m in merged])
    gaps = np.diff(xs)
    single = ws < 1.3 * np.median(ws)
    pitch = (
        float(np.median(gaps[(single[:-1]) & (single[1:])]))
        if np.any(single[:-1] & single[1:])
        else float(np.median(gaps))
    )
    slots = np.zeros(len(xs))
    for i in range(1, len(xs)):
        slots[i] = slots[i - 1] + max(1, round(gaps[i - 1] / pitch))
    fit = single if single.sum() >= 3 else np.ones_like(single)
    a_b = np.polyfit(slots[fit], xs[fit], 2 if fit.sum() > 10 else 1)
    b = float(np.polyval(np.polyder(a_b), slots[fit].mean()))
    left, right = merged[0][0], merged[-1][0] + merged[-1][2]
    est = max(1, round((right - left) / b + 0.3))
    k = len(merged)
    # one component per character (also proportional fonts): take their own centres;
    # else (touching or missing glyphs) the fixed-pitch model places the characters
    clean = bool(np.all(ws < 1.45 * b))
    if n == k or (n is None and clean and (not allowed or k in allowed)):
        centres, n = xs, k
    else:
        if n is None:
            n = min(allowed, key=lambda a: abs(a - est)) if allowed else est
        centres = np.polyval(a_b, np.arange(n))
    # the text row from the tall components, with a margin
    top = row_top - 0.2 * (row_bot - row_top)
    bot = row_bot + 0.2 * (row_bot - row_top)
    return Layout(v, np.asarray(centres, np.float32), b, float(top), float(bot))


MAX_LINE_W = 8000  # a line wider than this at LINE_H is squeezed to it (see _upright)


def _upright(line: np.ndarray) -> np.ndarray:
    """Gray, ``LINE_H`` pixels high (as every reader of a line wants it), at most
    ``MAX_LINE_W`` wide: 44 MRZ characters take about 900 pixels at that height, and
    OpenCV's remap refuses images over 32767 pixels wide (a sliver of a crop scaled to
    ``LINE_H`` got there and raised instead of reading nothing)."""
    if line.ndim == 3:
        line = cv2.cvtColor(line, cv2.COLOR_BGR2GRAY)
    w = min(MAX_LINE_W, max(1, round(line.shape[1] * LINE_H / line.shape[0])))
    if line.shape != (LINE_H, w):
        line = cv2.resize(line, (w, LINE_H), interpolation=cv2.INTER_AREA)
    return line


def text_row(line: np.ndarray, lay: Layout | None = None) -> np.ndarray:
    """The whole-line reader's input (``drivers.mrz_ctc.row_image``) for a line crop: its
    ink map cut to the text row the glyph layout found (``lay``, computed if not given)."""
    if lay is None:
        lay = layout(line)
    if lay is None:
        return row_image(ink(_upright(line)))
    return row_image(lay.ink, lay.top, lay.bot)


SPLIT_PITCH = 0.55  # pieces of one glyph: centres closer than this many pitches


def _join_split(merged: list[list[float]]) -> list[list[float]]:
    """Join the strokes of a glyph whose thin diagonal vanished when binarised (N, M, W in
    light or bold print fall apart into side-by-side stems): neighbours separated by much
    less white than the line's usual gap between characters, whose union is no wider than
    a usual character."""
    gaps = np.array([b[0] - (a[0] + a[2]) for a, b in zip(merged, merged[1:], strict=False)])
    usual_gap = float(np.median(gaps))
    usual_w = float(np.median([m[2] for m in merged]))
    centres = [m[0] + m[2] / 2 for m in merged]
    usual_pitch = float(np.median(np.diff(centres)))
    out = [list(merged[0])]
    for m in merged[1:]:
        last = out[-1]
        gap = m[0] - (last[0] + last[2])
        union = m[0] + m[2] - last[0]
        # or two narrow pieces whose centres stand under half a pitch apart: characters of
        # a fixed-pitch line never do (an M of thin print whose diagonals vanished, its
        # stems a few pixels apart; counted as two, it shifted every glyph after it)
        near = (m[0] + m[2] / 2) - (last[0] + last[2] / 2) < SPLIT_PITCH * usual_pitch
        if (gap <= max(1.5, 0.4 * usual_gap) or near) and union <= 1.25 * usual_w:
            last[2] = union
        else:
            out.append(list(m))
    return out


def _cells(
    v: np.ndarray,
    centres: np.ndarray,
    width: float,
    top: float,
    bot: float,
    size: tuple[int, int] = (GLYPH_H, GLYPH_W),
) -> np.ndarray:
    """One remap cuts every window (``width`` wide, centred on each character) at once.

    Hand-rolled rather than one ``cv2.resize`` per cell: dozens of tiny OpenCV calls cost
    more in thread wake-ups than in work on a loaded 2-core machine.
    """
    n = len(centres)
    gh, gw = size
    jx = (np.arange(gw, dtype=np.float32) + 0.5) * (width / gw) - width / 2 - 0.5
    map_x = (centres[:, None] + jx[None, :]).reshape(1, -1).repeat(gh, axis=0)
    jy = top + (np.arange(gh, dtype=np.float32) + 0.5) * ((bot - top) / gh) - 0.5
    map_y = np.repeat(jy[:, None], n * gw, axis=1).astype(np.float32)
    out = cv2.remap(v, map_x.astype(np.float32), map_y, cv2.INTER_LINEAR, borderValue=0)
    return out.reshape(gh, n, gw).transpose(1, 0, 2).reshape(n, -1).copy()


# --- 4. the classifier ----------------------------------------------------------------


@dataclass(frozen=True)
class Mlp:
    """A two-layer perceptron in numpy: 88 glyphs of a TD3 take about a millisecond."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    mean: float
    std: float

    def probs(self, x: np.ndarray) -> np.ndarray:
        # einsum, not BLAS: a threaded BLAS waking up for a 44 x 384 product costs tens of
        # milliseconds on a busy machine; this loop costs about one
        h = np.maximum(np.einsum("ij,jk->ik", (x - self.mean) / self.std, self.w1) + self.b1, 0)
        z = np.einsum("ij,jk->ik", h, self.w2) + self.b2
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            w1=self.w1.astype(np.float16),
            b1=self.b1.astype(np.float32),
            w2=self.w2.astype(np.float16),
            b2=self.b2.astype(np.float32),
            norm=np.array([self.mean, self.std], np.float32),
        )

    @classmethod
    def load(cls, path: Path) -> Mlp:
        with np.load(path) as z:
            return cls(
                z["w1"].astype(np.float32),
                z["b1"],
                z["w2"].astype(np.float32),
                z["b2"],
                float(z["norm"][0]),
                float(z["norm"][1]),
            )


@cache
def load_model(model_dir: Path = MODEL_DIR) -> Mlp:
    desc = json.loads((model_dir / "model.json").read_text())
    if desc["alphabet"] != ALPHABET or desc["input"] != [GLYPH_H, GLYPH_W]:
        raise ValueError(f"{model_dir}: model does not match this recogniser")
    return Mlp.load(model_dir / desc["weights"])


def read_line(
    line: np.ndarray,
    n: int | None = None,
    allowed: tuple[int, ...] = (),
    model: Mlp | None = None,
    second: SecondOpinion | None = None,
    unsure: float = UNSURE,
    line_model: LineModel | None = None,
    whole_line: bool | None = None,
) -> LineRead:
    """Recognise one line crop (gray or BGR, any height).

    Each character is classified in its window and in windows moved a little left and
    right (``SHIFTS``), and the three opinions are combined (geometric mean): a glyph the
    pitch model placed slightly off, or one that sits between two readings, is decided
    by the views that see it whole. About a millisecond more per page.

    When the line's least certain character is under ``unsure``, the second opinion
    (``drivers.mrz_recog``, the shipped one unless ``second`` is given; ``unsure=0``
    never asks it) reads the same characters in its own wider windows and the two are
    pooled per character.

    ``whole_line`` (default ``WHOLE_LINE``, on: see there) asks the whole-line reader
    (``drivers.mrz_ctc``, ``line_model`` or the shipped one) on a line the glyph cutter
    cut to no MRZ length, on one whose check digits fail after the repair
    (``gate.mrz.repair.line_checks``) and on one whose least certain character is under
    the line model's ``ask_under`` (0 by default: never); ``_with_line`` combines the two.
    """
    lay = layout(line, n, allowed)
    read = LineRead("", np.zeros((0, len(ALPHABET)), np.float32))
    if lay is not None:
        g = lay.windows(SHIFTS)
        p = (model or load_model()).probs(g).reshape(len(SHIFTS), -1, len(ALPHABET))
        p = np.exp(np.log(p + 1e-6).mean(axis=0))
        p /= p.sum(axis=1, keepdims=True)
        if float(p.max(axis=1).min()) < unsure:
            opinion = second or load_second()
            p = pool(p, opinion.probs(lay.windows(size=CNN_SIZE, span=CNN_SPAN)))
        read = LineRead("".join(ALPHABET[i] for i in p.argmax(axis=1)), p)
    widths = (n,) if n else allowed or MRZ_WIDTHS
    if not (WHOLE_LINE if whole_line is None else whole_line):
        return read
    reader = line_model or load_line_model()
    if reader is None:
        return read
    if len(read.text) in widths:
        repaired = repair_line(read.text, read.probs)[0]  # type: ignore[arg-type]  # rows of floats
        sure = float(read.probs.max(axis=1).min()) >= reader.ask_under
        if line_checks(repaired) is not False and sure:
            return read  # the glyph read is of MRZ length and no check digit objects
    whole = reader.read(text_row(line, lay))
    return _with_line(line, read, whole, widths, model, second, unsure, reader.weight)


MRZ_WIDTHS = (30, 36, 44)  # characters per line of TD1, TD2, TD3
# The whole-line reader is asked by default where the glyph read has no MRZ length or
# fails its check digits: by 5-fold cross validation on the real crops it reads a few more
# lines right there and no more wrong ones pass (docs/bench-mrz.md, 2026-12-07 night).
# ``read_line(..., whole_line=False)`` or ``WHOLE_LINE = False`` leaves it out.
WHOLE_LINE = True


def _with_line(
    line: np.ndarray,
    glyph: LineRead,
    whole: CtcRead,
    widths: tuple[int, ...],
    model: Mlp | None,
    second: SecondOpinion | None,
    unsure: float,
    weight: float,
) -> LineRead:
    """Combine the glyph opinions with the whole-line reader's, on a line whose glyph read
    has no MRZ length or fails its check digits.

    Both read as many characters: pooled position by position (log-linear, as the two
    glyph opinions are), so the field types and check digits of the repair decide among
    what they leave likely (its second choices at the least certain positions). The
    cutter's count is no MRZ length and the line reader's is: the cutter miscounted (a
    rule over the print, a stencil face), so the glyphs are cut again at the line reader's
    count and pooled with it (its own read where they cannot be). Otherwise the glyph read
    stands (the line reader's count is no better).
    """
    if len(whole.text) == len(glyph.text) and len(glyph.text):
        p = pool(glyph.probs, whole.probs, weight)
        return LineRead("".join(ALPHABET[i] for i in p.argmax(axis=1)), p)
    if len(whole.text) in widths and len(glyph.text) not in widths:
        again = read_line(line, len(whole.text), (), model, second, unsure, whole_line=False)
        if len(again.text) == len(whole.text):
            return _with_line(line, again, whole, widths, model, second, unsure, weight)
        return LineRead(whole.text, whole.probs)
    return glyph
