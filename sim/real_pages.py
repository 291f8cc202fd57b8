"""Data pages built from real MRZ line crops (``../shared/data/mrz/real_lines``).

The rendered pages of ``sim/page.py`` are all one typeface at one pitch; real documents
are not. These pages set real crops (photos and scans of many states' documents, each
with its ground truth) into a page, centred as they come, so the lines of one band may
differ in width and pitch, at four levels: ``as_is``; ``rotated`` (3-7 degrees, blur);
``jpeg_light`` (JPEG q30, uneven light); ``page`` (a whole data page around the band:
title, labels, field values, portrait, guilloche); ``tight`` (lines trimmed to their
print and stacked 15 % of a line apart, as on cramped cards, so that blobs of closed
print merge). Reproducible from a seed. Used by
``bench/mrz_band.py`` and the MRZ finder's tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

DATA = Path(__file__).resolve().parents[1] / "../shared/data/mrz/real_lines"
LEVELS = ("as_is", "rotated", "jpeg_light", "page", "tight")
SHAPES = {"TD1": (3, 30), "TD2": (2, 36), "TD3": (2, 44)}


@dataclass(frozen=True)
class Crop:
    name: str
    text: str
    image: np.ndarray  # gray

    @property
    def role(self) -> tuple[int, int]:
        """(width, line index) from the text's shape: where its digits sit."""
        t, n = self.text, len(self.text)

        def digits(s: str) -> int:
            return sum(c.isdigit() for c in s)

        if n == 30:
            if digits(t[:6]) >= 4:
                return n, 1
            return (n, 2) if digits(t) == 0 else (n, 0)
        return n, 1 if digits(t[13:19]) >= 4 else 0


@cache
def load_crops(data: Path = DATA) -> tuple[Crop, ...]:
    """Every crop of an MRZ width (30, 36, 44) with its ground truth."""
    out = []
    for gt in sorted(data.glob("*.gt.txt")):
        text = gt.read_text().strip()
        tif = gt.with_name(gt.name[: -len(".gt.txt")] + ".tif")
        if len(text) not in (30, 36, 44) or not re.fullmatch(r"[0-9A-Z<]+", text):
            continue
        img = cv2.imread(str(tif), cv2.IMREAD_GRAYSCALE)
        if img is not None:
            out.append(Crop(gt.name[: -len(".gt.txt")], text, img))
    return tuple(out)


def pick_band(
    rng: np.random.Generator, fmt: str, crops: tuple[Crop, ...] | None = None
) -> list[Crop]:
    """One crop per line of ``fmt``, each line from a random document (of ``crops``, by
    default every crop)."""
    n, width = SHAPES[fmt]
    crops = load_crops() if crops is None else crops
    band = []
    for li in range(n):
        pool = [c for c in crops if c.role == (width, li)]
        band.append(pool[int(rng.integers(len(pool)))])
    return band


def _band_image(band: list[Crop], rng: np.random.Generator) -> np.ndarray:
    """The crops scaled to one height, centred one under the other on paper."""
    h = 56
    rows = [cv2.resize(c.image, (round(c.image.shape[1] * h / c.image.shape[0]), h)) for c in band]
    w = max(r.shape[1] for r in rows)
    paper = int(np.median(np.concatenate([r[:, :4].ravel() for r in rows])))
    gap = int(rng.integers(0, 12))
    out = np.full((len(rows) * (h + gap) + 2 * h, w + 2 * h), max(paper, 200), np.uint8)
    for i, r in enumerate(rows):
        x = (out.shape[1] - r.shape[1]) // 2
        y = h + i * (h + gap)
        out[y : y + h, x : x + r.shape[1]] = np.minimum(out[y : y + h, x : x + r.shape[1]], r)
    return out


def _tight_band(band: list[Crop]) -> np.ndarray:
    """The crops cut to their print and stacked with gaps of 15 % of a line."""
    h = 56
    rows = []
    for c in band:
        g = cv2.resize(c.image, (round(c.image.shape[1] * h / c.image.shape[0]), h))
        ys = np.flatnonzero((g < 128).sum(axis=1) > 0.02 * g.shape[1])
        rows.append(g[max(0, ys[0] - 1) : ys[-1] + 2] if len(ys) else g)
    w, th = max(r.shape[1] for r in rows), max(r.shape[0] for r in rows)
    gap = round(0.15 * th)
    out = np.full((len(rows) * (th + gap) + 2 * th, w + 2 * th), 235, np.uint8)
    for i, r in enumerate(rows):
        x, y = (out.shape[1] - r.shape[1]) // 2, th + i * (th + gap)
        out[y : y + r.shape[0], x : x + r.shape[1]] = np.minimum(
            out[y : y + r.shape[0], x : x + r.shape[1]], r
        )
    return out


def _page_around(band: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A data page with the band at its foot: title, labels, values, portrait, guilloche."""
    bh, bw = band.shape
    w, h = bw, int(bw * 0.7)
    img = Image.new("L", (w, h), int(band[0, 0]))
    d = ImageDraw.Draw(img)
    xs = np.arange(0, w, 3)
    for k in range(14):
        ys = (h - bh) * (k + 0.5) / 14 + 8 * np.sin(xs * (0.01 + 0.02 * rng.random()) + k)
        d.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=170, width=1)
    big = ImageFont.load_default(size=max(12, w // 30))
    small = ImageFont.load_default(size=max(10, w // 60))
    d.text((w * 0.3, h * 0.03), "PASSPORT  PASSEPORT  REISEPASS", 40, big)
    d.rectangle((w * 0.04, h * 0.15, w * 0.3, h - bh - 20), fill=120)
    y = h * 0.15
    letters = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    while y < h - bh - 40:
        d.text((w * 0.35, y), "Surname / Nom / Apellidos", 90, small)
        value = "".join(rng.choice(letters, int(rng.integers(4, 14))))
        d.text((w * 0.35, y + w // 55), value, 20, big)
        y += w // 55 + w // 26
    page = np.asarray(img).copy()
    page[h - bh :] = np.minimum(page[h - bh :], band)
    return page


def _rotate(img: np.ndarray, deg: float) -> np.ndarray:
    from drivers.scanner import rotated

    return rotated(img, deg, int(np.median(img[:5])))


def build_page(
    seed: int, level: str, fmt: str | None = None, crops: tuple[Crop, ...] | None = None
) -> tuple[np.ndarray, list[str]]:
    """A gray page and its MRZ lines as printed (the crops' ground truth), its lines cut
    from ``crops`` (by default every crop: ``bench/mrz_band.py --cv-dir`` passes one
    fold's, so that a reader that never saw them reads them)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    rng = np.random.default_rng(seed)
    fmt = fmt or ("TD1", "TD2", "TD3")[int(rng.integers(3))]
    band = pick_band(rng, fmt, crops)
    img = _tight_band(band) if level == "tight" else _band_image(band, rng)
    if level == "page":
        img = _page_around(img, rng)
    if level == "rotated":
        deg = float(rng.uniform(3, 7)) * (1 if rng.random() < 0.5 else -1)
        img = cv2.GaussianBlur(_rotate(img, deg), (0, 0), 1.0)
    if level == "jpeg_light":
        h, w = img.shape
        gx = np.linspace(float(rng.uniform(0.45, 0.7)), 1.05, w)[None, :]
        gy = np.linspace(1.0, float(rng.uniform(0.6, 0.9)), h)[:, None]
        img = np.clip(img * gx * gy, 0, 255).astype(np.uint8)
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 30])
        img = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    return img, [c.text for c in band]
