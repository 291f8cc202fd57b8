"""Training glyphs for the MRZ recognisers: rendered lines and real line crops.

Both sources are cut by the reader's own ``drivers.mrz_ocr.layout`` (so segmentation
quirks are in the training data) into the windows each recogniser reads: the glyph MLP's
pitch-wide cell and the second opinion's wider one (``drivers.mrz_recog``).

Real crops (``../shared/data/mrz/real_lines``) are cut with their line's ground truth
(the number of characters is known, so the layout places exactly that many), then each is
also augmented a few times (perspective, rotation, defocus or a shaken hand, ink spread or
thinning, uneven light and glare, loss of resolution, noise, JPEG down to quality 20) so the
model learns the print, not the exact pixels of one photo or scan.
Sets are cached under ``var/mrz-train/`` (keyed by their parameters): the k folds of a
cross-validation share one rendering.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from drivers.mrz_ocr import ALPHABET, layout  # noqa: E402
from drivers.mrz_recog import CNN_SIZE, CNN_SPAN  # noqa: E402
from models.mrz.folds import REAL, is_rendered  # noqa: E402

CACHE = ROOT / "var" / "mrz-train"


@dataclass
class GlyphSet:
    """Windows for both recognisers, their labels, and the crop each came from
    (-1 for rendered lines)."""

    mlp: np.ndarray  # (n, GLYPH_H * GLYPH_W) float32
    cnn: np.ndarray  # (n, CNN_H * CNN_W) float16
    y: np.ndarray  # (n,) int class index
    crop: np.ndarray  # (n,) int index into ``ids`` or -1
    ids: list[str]

    def select(self, keep: np.ndarray) -> GlyphSet:
        return GlyphSet(self.mlp[keep], self.cnn[keep], self.y[keep], self.crop[keep], self.ids)

    @staticmethod
    def join(a: GlyphSet, b: GlyphSet) -> GlyphSet:
        assert a.ids == b.ids or not a.ids or not b.ids
        return GlyphSet(
            np.concatenate([a.mlp, b.mlp]),
            np.concatenate([a.cnn, b.cnn]),
            np.concatenate([a.y, b.y]),
            np.concatenate([a.crop, b.crop]),
            a.ids or b.ids,
        )


def cut(line: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Both recognisers' windows for a line whose text is known, or None when the layout
    cannot place that many characters."""
    lay = layout(line, n=len(text))
    if lay is None or len(lay.centres) != len(text):
        return None
    return lay.windows(), lay.windows(size=CNN_SIZE, span=CNN_SPAN).astype(np.float16)


def _perspective(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The line seen at an angle: each corner moved independently (keystone, one end of the
    line taller than the other), as a hand-held phone photographs a data page."""
    h, w = a.shape
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dy, dx = 0.12 * h, 0.015 * w
    jitter = np.stack([rng.uniform(-dx, dx, 4), rng.uniform(-dy, dy, 4)], axis=1)
    m = cv2.getPerspectiveTransform(src, (src + jitter).astype(np.float32))
    return cv2.warpPerspective(a, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _camera_blur(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Defocus (a disc) or a shaken hand (a short line at any angle), else a plain Gaussian."""
    r = rng.random()
    if r < 0.3:
        n = int(rng.integers(3, 8))
        k = np.zeros((n, n), np.float32)
        c = n // 2
        ang = rng.uniform(0, np.pi)
        dx, dy = np.cos(ang) * c, np.sin(ang) * c
        cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
        return cv2.filter2D(a, -1, k / k.sum())
    if r < 0.5:
        n = int(rng.integers(1, 3))
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * n + 1, 2 * n + 1)).astype(np.float32)
        return cv2.filter2D(a, -1, k / k.sum())
    return cv2.GaussianBlur(a, (0, 0), rng.uniform(0.4, 1.8))


def _light(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uneven light over the page: a smooth random field (shadow of a hand, a lamp's fall-off)
    times a left-right gradient, sometimes a specular patch of the laminate."""
    h, w = a.shape
    field = cv2.resize(
        rng.uniform(0.55, 1.0, (2, int(rng.integers(2, 6)))).astype(np.float32),
        (w, h),
        interpolation=cv2.INTER_CUBIC,
    )
    a = a * np.clip(field, 0.4, 1.1)
    if rng.random() < 0.2:
        cx, r = rng.uniform(0, w), rng.uniform(0.5, 2.5) * h
        xx = np.arange(w, dtype=np.float32)
        a = a + 100 * rng.uniform(0.2, 0.7) * np.exp(-((xx - cx) ** 2) / (2 * r * r))[None, :]
    return a


def augment(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A real crop as another camera, printer or scanner might have given it: perspective,
    rotation and shear, ink spread or worn print, defocus or shake, contrast, uneven light,
    loss of resolution, sensor noise, JPEG."""
    a = gray.astype(np.float32)
    h, w = a.shape
    # pad so a rotation keeps the ends of the line
    a = cv2.copyMakeBorder(a, h // 3, h // 3, h // 2, h // 2, cv2.BORDER_REPLICATE)
    h, w = a.shape
    if rng.random() < 0.5:
        a = _perspective(a, rng)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.normal(0, 0.6), rng.uniform(0.9, 1.1))
    m[0, 1] += rng.normal(0, 0.05)  # shear, as perspective gives one line
    a = cv2.warpAffine(a, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    r = rng.random()
    if r < 0.25:  # ink spread (dark print grows)
        k = int(rng.integers(2, 4))
        a = cv2.erode(a, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    elif r < 0.4:  # thin or worn print
        a = cv2.dilate(a, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2, 2)))
    if rng.random() < 0.7:
        a = _camera_blur(a, rng)
    lo, hi = rng.uniform(0, 80), rng.uniform(150, 255)  # contrast
    a = lo + a * (hi - lo) / 255.0
    if rng.random() < 0.6:
        a = _light(a, rng)
    f = rng.uniform(0.45, 1.0)  # loss of resolution
    a = cv2.resize(a, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
    a = a + rng.normal(0, rng.uniform(0, 10), a.shape)
    a8 = np.clip(a, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        _, buf = cv2.imencode(".jpg", a8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 90))])
        a8 = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return a8


def real_crops(real: Path = REAL) -> list[tuple[str, np.ndarray, str]]:
    """(id, gray image, ground truth) of every readable crop, sorted by id."""
    out = []
    for p in sorted(real.glob("*.tif")):
        gt = p.with_name(p.stem + ".gt.txt")
        if not gt.is_file():
            continue
        truth = gt.read_text().strip()
        gray = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if gray is None or not truth or any(c not in ALPHABET for c in truth):
            continue
        out.append((p.stem, gray, truth))
    return out


def _cached(name: str, key: str, build) -> GlyphSet:  # type: ignore[no-untyped-def]
    path = CACHE / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npz"
    if path.is_file():
        with np.load(path) as z:
            return GlyphSet(z["mlp"], z["cnn"], z["y"], z["crop"], list(z["ids"]))
    s = build()
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, mlp=s.mlp, cnn=s.cnn, y=s.y, crop=s.crop, ids=np.array(s.ids, dtype=str))
    return s


DOCUMENT_WEIGHT = 3  # photographed documents get this many times more augmented copies
AUGMENT_VERSION = 2  # bump when ``augment`` changes (the cache key)


def real_set(augments: int, seed: int, document_weight: int = DOCUMENT_WEIGHT) -> GlyphSet:
    """Every real crop cut with its ground truth, and ``augments`` augmented copies
    (``document_weight`` times as many for crops of photographed documents: their print is
    what rendered fonts lack; the set's own rendered lines look like ours)."""

    def build() -> GlyphSet:
        rng = np.random.default_rng(seed)
        crops = real_crops()
        xs, cs, ys, ks = [], [], [], []
        for k, (crop_id, gray, truth) in enumerate(crops):
            copies = augments * (1 if is_rendered(crop_id) else document_weight)
            for j in range(1 + copies):
                got = cut(gray if j == 0 else augment(gray, rng), truth)
                if got is None:
                    continue
                xs.append(got[0])
                cs.append(got[1])
                ys.append([ALPHABET.index(c) for c in truth])
                ks.append(np.full(len(truth), k))
        return GlyphSet(
            np.concatenate(xs),
            np.concatenate(cs),
            np.concatenate(ys),
            np.concatenate(ks),
            [c[0] for c in crops],
        )

    key = f"{augments}/{document_weight}/{seed}/{REAL.resolve()}/v{AUGMENT_VERSION}"
    return _cached("real", key, build)


def rendered_set(n_lines: int, seed: int) -> GlyphSet:
    """Rendered MRZ-like lines (``models/mrz/train.py``'s ``render_line``)."""
    from models.mrz.train import random_text, render_line

    def build() -> GlyphSet:
        rng = np.random.default_rng(seed)
        xs, cs, ys = [], [], []
        for _ in range(n_lines):
            text = random_text(rng)
            got = cut(render_line(text, rng), text)
            if got is None:
                continue
            xs.append(got[0])
            cs.append(got[1])
            ys.append([ALPHABET.index(c) for c in text])
        y = np.concatenate(ys)
        return GlyphSet(np.concatenate(xs), np.concatenate(cs), y, np.full(len(y), -1), [])

    return _cached("rendered", f"{n_lines}/{seed}", build)
