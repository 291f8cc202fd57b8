"""Deterministic synthetic fingerprints at 500 ppi (the SFinGe recipe, Cappelli et al.).

No real fingerprint set that may be redistributed exists here, so the virtual chip's DG3,
the simulated thumb reader and the matcher's calibration use these; every figure drawn
from them is labelled synthetic. A finger is a *master* pattern:

- an orientation field from the zero-pole model (Sherlock and Monro): cores and deltas
  placed by the finger's class (arch, left/right loop, whorl), plus a slow random warp;
- a ridge frequency field around 9 pixels a ridge (ridges about 0.46 mm apart);
- ridges grown from a few random seeds by iterated oriented Gabor filtering, so the
  pattern's minutiae appear where the flow forces ridges to end or split.

An *impression* of it is what one touch on a reader gives: the master moved, rotated
and elastically distorted (the skin stretches near the contact's edge), pressed harder or
lighter (ridges thicken or break), on a contact area of its own, with sensor noise,
blotches and blur. ``impression(finger, k)`` is a pure function of its arguments.

``python -m sim.fingerprints --out DIR --fingers N --impressions K`` writes
``DIR/fNNNN/K.png`` (8-bit grey, 500 ppi in the PNG's pHYs), ``pairs.csv`` (``a,b,same``
as ``../shared/data/faces/pairs.csv``: every genuine pair, impostor pairs across fingers)
and ``manifest.csv`` (path, finger, impression, class), so a licensed real set in the
same layout replaces this one without code changes.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

PPI = 500
MASTER_SHAPE = (560, 480)  # rows, columns: a thumb's whole pad, 28 x 24 mm
IMPRESSION_SHAPE = (400, 320)  # what a 20 x 16 mm sensor window sees
ORIENTATION_BINS = 16
GROWTH_STEPS = 12
CLASSES = ("arch", "left_loop", "right_loop", "whorl", "tented_arch")


@dataclass(frozen=True)
class Singularities:
    cores: tuple[tuple[float, float], ...]  # (x, y) in master pixels
    deltas: tuple[tuple[float, float], ...]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([0xF1A6, *key]))


def finger_class(finger: int) -> str:
    """Thumbs are mostly loops and whorls; arches are rare (about their share in people)."""
    r = _rng(finger, 1).random()
    if r < 0.04:
        return "arch"
    if r < 0.08:
        return "tented_arch"
    if r < 0.38:
        return "whorl"
    return "left_loop" if r < 0.70 else "right_loop"


def singularities(finger: int) -> Singularities:
    rng = _rng(finger, 2)
    h, w = MASTER_SHAPE
    cx = w / 2 + rng.normal(0, w * 0.05)
    cy = h * 0.45 + rng.normal(0, h * 0.04)
    kind = finger_class(finger)
    side = -1 if kind == "left_loop" else 1
    if kind in ("left_loop", "right_loop"):
        core = (cx - side * rng.uniform(0, 25), cy)
        delta = (cx + side * rng.uniform(110, 160), cy + rng.uniform(150, 210))
        return Singularities((core,), (delta,))
    if kind == "whorl":
        sep = rng.uniform(25, 50)
        tilt = rng.uniform(-0.6, 0.6)
        c1 = (cx - sep * np.sin(tilt), cy - sep * np.cos(tilt))
        c2 = (cx + sep * np.sin(tilt), cy + sep * np.cos(tilt))
        spread = rng.uniform(140, 190)
        d1 = (cx - spread, cy + rng.uniform(160, 220))
        d2 = (cx + spread, cy + rng.uniform(160, 220))
        return Singularities((c1, c2), (d1, d2))
    if kind == "tented_arch":
        return Singularities(((cx, cy),), ((cx, cy + rng.uniform(120, 160)),))
    return Singularities((), ())


def orientation_field(finger: int) -> np.ndarray:
    """Ridge orientation in radians (0..pi) at every master pixel (zero-pole model)."""
    h, w = MASTER_SHAPE
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    s = singularities(finger)
    rng = _rng(finger, 3)
    theta = np.zeros((h, w))
    for dx, dy in s.deltas:  # image rows run downward: the signs of the textbook flip
        theta -= np.arctan2(y - dy, x - dx)
    for cx, cy in s.cores:
        theta += np.arctan2(y - cy, x - cx)
    theta *= 0.5
    if not s.cores:  # a plain arch: ridges bow upward over the middle of the pad
        bump = rng.uniform(0.5, 0.9)
        mid = w / 2 + rng.normal(0, 20)
        theta = (
            bump * np.tanh((x - mid) / (w * 0.25)) * np.exp(-(((y - h * 0.55) / (h * 0.4)) ** 2))
        )
        theta = -theta
    # a slow random warp so two fingers of one class are not the same flow
    warp = cv2.resize(rng.normal(0, 0.18, (5, 5)), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.mod(theta + warp, np.pi)


def frequency_field(finger: int) -> np.ndarray:
    """Ridges per pixel at every master pixel: 1/8 .. 1/11 at 500 ppi."""
    h, w = MASTER_SHAPE
    rng = _rng(finger, 4)
    period = rng.uniform(8.6, 9.8) + cv2.resize(
        rng.normal(0, 0.5, (4, 4)), (w, h), interpolation=cv2.INTER_CUBIC
    )
    return 1.0 / np.clip(period, 7.8, 11.5)


def _gabor_bank(freq: float) -> list[np.ndarray]:
    bank = []
    sigma = 0.45 / freq
    size = int(np.ceil(3 * sigma)) * 2 + 1
    for i in range(ORIENTATION_BINS):
        ridge = np.pi * i / ORIENTATION_BINS
        # the filter oscillates across the ridges: its wave runs at ridge + 90 degrees
        k = cv2.getGaborKernel((size, size), sigma, ridge + np.pi / 2, 1 / freq, 1.0, 0)
        bank.append((k - k.mean()).astype(np.float32))
    return bank


@lru_cache(maxsize=64)
def master(finger: int) -> np.ndarray:
    """The finger's whole ridge pattern, float32 in -1 (valley) .. 1 (ridge)."""
    h, w = MASTER_SHAPE
    rng = _rng(finger, 5)
    theta = orientation_field(finger)
    freq = frequency_field(finger)
    bins = np.round(theta / np.pi * ORIENTATION_BINS).astype(np.int32) % ORIENTATION_BINS
    bank = _gabor_bank(float(np.median(freq)))  # one ridge period per finger: 16x faster
    masks = [(ob, bins == ob) for ob in range(ORIENTATION_BINS)]
    img = np.zeros((h, w), np.float32)
    n_seeds = int(rng.integers(6, 14))
    for _ in range(n_seeds):
        yy, xx = int(rng.integers(0, h)), int(rng.integers(0, w))
        img[yy, xx] = rng.choice([-1.0, 1.0])
    img += rng.normal(0, 0.02, (h, w)).astype(np.float32)
    out = np.empty_like(img)
    for _ in range(GROWTH_STEPS):
        for ob, m in masks:
            if m.any():
                out[m] = cv2.filter2D(img, cv2.CV_32F, bank[ob])[m]
        img = np.clip(out * 4.0, -1.0, 1.0)
    return img


def _contact(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """The touching area: an ellipse a little off centre with a ragged edge, 0..1."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w / 2 + rng.normal(0, 10), h / 2 + rng.normal(0, 14)
    ax, ay = w * rng.uniform(0.36, 0.56), h * rng.uniform(0.38, 0.58)
    rag = cv2.resize(rng.normal(0, 0.04, (8, 8)), (w, h), interpolation=cv2.INTER_CUBIC)
    r = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2) + rag
    return np.clip((1.0 - r) / 0.08, 0.0, 1.0).astype(np.float32)


def impression(finger: int, k: int) -> np.ndarray:
    """Impression ``k`` of ``finger``: uint8 grey, dark ridges on white, 500 ppi.

    Impression 0 is a careful enrolment capture (centred, little distortion), what an
    issuer writes into DG3; later ones are gate touches with the usual spread.
    """
    rng = _rng(finger, 100 + k)
    m = master(finger)
    mh, mw = MASTER_SHAPE
    h, w = IMPRESSION_SHAPE
    care = 0.35 if k == 0 else 1.0
    angle = rng.normal(0, 11) * care  # degrees
    tx, ty = rng.normal(0, 30) * care, rng.normal(0, 36) * care
    # the window's centre in the master, then rotation about it
    centre = (mw / 2 + tx, mh / 2 + ty)
    rot = cv2.getRotationMatrix2D(centre, angle, 1.0)
    rot[0, 2] += w / 2 - centre[0]
    rot[1, 2] += h / 2 - centre[1]
    inv = cv2.invertAffineTransform(rot)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    mx = (inv[0, 0] * x + inv[0, 1] * y + inv[0, 2]).astype(np.float32)
    my = (inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]).astype(np.float32)
    # elastic distortion: smooth displacement growing towards the contact's edge
    amp = rng.uniform(3.0, 10.0) * care
    edge = np.sqrt(((x - w / 2) / (w / 2)) ** 2 + ((y - h / 2) / (h / 2)) ** 2)
    for grid in (mx, my):
        field = cv2.resize(rng.normal(0, 1, (4, 4)), (w, h), interpolation=cv2.INTER_CUBIC)
        grid += (amp * field * edge).astype(np.float32)
    ridges = cv2.remap(m, mx, my, cv2.INTER_LINEAR, borderValue=-1.0)
    # pressure: a hard press widens ridges (they fill the valleys), a light one thins them
    pressure = rng.normal(0.0, 0.35)
    local = cv2.resize(rng.normal(0, 0.15, (5, 5)), (w, h), interpolation=cv2.INTER_CUBIC)
    ink = np.clip((ridges + pressure + local) * 2.5, -1.0, 1.0)
    contact = _contact(rng, (h, w))
    # dry patches: ridges broken in small spots
    dry = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 3)
    breaks = (dry > rng.uniform(0.53, 0.62)).astype(np.float32)
    darkness = (ink * 0.5 + 0.5) * contact * (1 - 0.7 * breaks)
    contrast = rng.uniform(170, 225)
    img = 245 - contrast * darkness
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(0.6, 1.1))
    img += rng.normal(0, rng.uniform(4, 16), (h, w)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(img: np.ndarray, fmt: str = "PNG") -> bytes:
    """An impression as image bytes (PNG, or JPEG2000 as chips carry it) at 500 ppi."""
    from PIL import Image

    buf = io.BytesIO()
    im = Image.fromarray(img, "L")
    if fmt == "JPEG2000":
        im.save(buf, "JPEG2000", quality_mode="rates", quality_layers=[15])
    else:
        im.save(buf, fmt, dpi=(PPI, PPI))
    return buf.getvalue()


def write_set(out: Path, fingers: int, impressions: int, impostor_per_finger: int = 0) -> int:
    """Write the images, ``pairs.csv`` and ``manifest.csv``; returns the number of pairs.

    Genuine pairs: every two impressions of a finger. Impostor pairs: impression 0 of
    each finger against impression 1 of every other finger (enrolment against a touch,
    as the gate compares), or ``impostor_per_finger`` of them drawn at random.
    """
    out.mkdir(parents=True, exist_ok=True)
    names: dict[tuple[int, int], str] = {}
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as mf:
        man = csv.writer(mf)
        man.writerow(["path", "finger", "impression", "class"])
        for f in range(fingers):
            (out / f"f{f:04d}").mkdir(exist_ok=True)
            for k in range(impressions):
                name = f"f{f:04d}/{k}.png"
                (out / name).write_bytes(encode(impression(f, k)))
                names[f, k] = name
                man.writerow([name, f, k, finger_class(f)])
            master.cache_clear()
    rows = []
    for f in range(fingers):
        for a, b in itertools.combinations(range(impressions), 2):
            rows.append((names[f, a], names[f, b], 1))
    other = 1 if impressions > 1 else 0
    rng = _rng(fingers, impressions, 7)
    for f in range(fingers):
        others = [g for g in range(fingers) if g != f]
        if impostor_per_finger:
            others = sorted(
                rng.choice(others, min(impostor_per_finger, len(others)), replace=False)
            )
        for g in others:
            rows.append((names[f, 0], names[int(g), other], 0))
    with (out / "pairs.csv").open("w", newline="", encoding="utf-8") as pf:
        w = csv.writer(pf)
        w.writerow(["a", "b", "same"])
        w.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sim.fingerprints", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", type=Path, required=True, help="folder to write (created)")
    p.add_argument("--fingers", type=int, default=100)
    p.add_argument("--impressions", type=int, default=4)
    p.add_argument(
        "--impostors-per-finger", type=int, default=0, help="default: every other finger"
    )
    a = p.parse_args(argv)
    if a.fingers < 2 or a.impressions < 2:
        p.error("need at least 2 fingers and 2 impressions")
    n = write_set(a.out, a.fingers, a.impressions, a.impostors_per_finger)
    print(f"{a.fingers} fingers x {a.impressions} impressions, {n} pairs in {a.out / 'pairs.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
