"""Train the MRZ recognisers: the glyph MLP (first opinion) and the glyph CNN (second).

    nice -n 10 .venv/bin/python models/mrz/train.py [--lines 4000] [--augments 4] [--holdout K]

Two sources of glyphs (``models/mrz/data.py``), both cut into character windows by the
very ``drivers.mrz_ocr.layout`` the reader uses, so segmentation quirks are in the
training data:

- lines of MRZ text (realistic MRZs from ``sim.page`` and uniform random strings, so the
  model learns glyphs, not the prior of a field) rendered in OCR-B and look-alike faces at
  random sizes and pitches, degraded (stroke weight, shear, rotation, uneven light, glare,
  blur, loss of resolution, noise, JPEG, thresholding);
- the real line crops of ``../shared/data/mrz/real_lines``, cut with their ground truth,
  each also augmented ``--augments`` times (rotation, blur, ink spread, JPEG, uneven light).

The MLP is fitted with Adam in numpy and saved as float16 weights (``ocrb_mlp.npz``); the
CNN is fitted in PyTorch (training only, ``models/mrz/cnn.py``) and exported to ONNX
(``glyph_cnn.onnx``); ``model.json`` records both (alphabet, input sizes, hashes, the exact
command, validation error on rendered lines). ``--holdout K`` leaves fold K of
``folds.json`` out, for cross validation (``models/mrz/cv.py``). Seeded: the same command
gives the same weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from functools import cache
from pathlib import Path

# one BLAS thread: on a shared 2-core machine a threaded BLAS was measured 10x slower per
# training step than one thread (and one thread is bit-for-bit reproducible)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from drivers.mrz_ocr import ALPHABET, GLYPH_H, GLYPH_W, Mlp  # noqa: E402
from drivers.mrz_recog import CLASSES, CNN_SIZE, CNN_SPAN, SecondOpinion  # noqa: E402
from models.mrz.cnn import train_cnn  # noqa: E402
from models.mrz.data import GlyphSet, real_set, rendered_set  # noqa: E402
from models.mrz.folds import load_folds  # noqa: E402
from sim.page import ocrb_font_path, random_identity  # noqa: E402

OUT = Path(__file__).resolve().parent


# Mostly OCR-B (Debian fonts-ocr-b: regular, sharp, oblique); real MRZs are also printed
# in look-alikes, so common sans fonts join when installed (missing ones are skipped).
_OTHER_FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    # condensed and light faces: zeros and O's of other widths than OCR-B's
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-ExtraLight.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
]


@cache
def fonts() -> tuple[list[str], list[float]]:
    ocrb = Path(ocrb_font_path())
    main = [str(ocrb)] + [
        str(ocrb.with_name(v)) for v in ("OCRBS.otf", "OCRBL.otf") if ocrb.with_name(v).is_file()
    ]
    other = [f for f in _OTHER_FONTS if Path(f).is_file()]
    weights = [0.45] + [0.2 / max(1, len(main) - 1)] * (len(main) - 1)
    weights += [0.35 / max(1, len(other))] * len(other)
    w = np.array(weights[: len(main) + len(other)])
    return main + other, list(w / w.sum())


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def random_text(rng: np.random.Generator) -> str:
    if rng.random() < 0.45:
        fmt = str(rng.choice(["TD3", "TD1"]))
        lines = random_identity(rng, fmt).lines()
        return lines[int(rng.integers(len(lines)))]
    n = int(rng.integers(20, 45))
    text = "".join(rng.choice(list(ALPHABET), n))
    if rng.random() < 0.5:  # filler runs as MRZs have them
        k = int(rng.integers(1, n // 2))
        text = text[: n - k] + "<" * k
    return text


def render_line(text: str, rng: np.random.Generator) -> np.ndarray:
    """One MRZ-like line, gray, degraded like a camera crop or a thresholded scan."""
    size = int(rng.integers(28, 64))
    paths, weights = fonts()
    font = _font(paths[int(rng.choice(len(paths), p=weights))], size)
    adv = font.getlength("M")
    pitch = adv * rng.uniform(0.98, 1.3)
    proportional = rng.random() < 0.25  # some documents space characters by their width
    track = rng.uniform(0.1, 0.5) * adv
    cap = font.getbbox("H")[3] - font.getbbox("H")[1]
    h = int(cap * rng.uniform(2.1, 2.8))
    xs = [pitch * (1 + i) for i in range(len(text))]
    if proportional:
        xs = list(pitch + np.cumsum([0] + [font.getlength(c) + track for c in text[:-1]]))
    w = int(xs[-1] + 2 * pitch)
    # glyphs wider or narrower against the pitch than the font draws them (printers'
    # OCR-B variants, bold print): drawn at positions / sx, then the line stretched by sx
    sx = float(rng.uniform(0.8, 1.35)) if rng.random() < 0.4 else 1.0
    bg, fg = int(rng.integers(140, 256)), int(rng.integers(0, 90))
    img = Image.new("L", (max(8, round(w / sx)), h), bg)
    d = ImageDraw.Draw(img)
    y0 = (h - cap) / 2 - font.getbbox("H")[1] + rng.normal(0, 0.04) * cap
    for i, ch in enumerate(text):
        x = (xs[i] + rng.normal(0, 0.03) * pitch) / sx
        d.text((x, y0 + rng.normal(0, 0.02) * cap), ch, fill=fg, font=font)
    a = np.asarray(img, np.float32)
    if sx != 1.0:
        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:  # stroke weight: ink spread (up to heavy bold) or thin print
        bold = rng.random() < 0.6
        top = max(4, round(0.22 * cap)) if bold else 3 + size // 24
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(rng.integers(2, top)),) * 2)
        a = cv2.erode(a, k) if bold else cv2.dilate(a, k)
    # shear (perspective seen on one line), small residual rotation
    sh = rng.normal(0, 0.08)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.normal(0, 0.25), 1.0).astype(np.float32)
    m[0, 1] += sh
    m[0, 2] -= sh * h / 2
    a = cv2.warpAffine(a, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.5:  # uneven light
        g = np.linspace(rng.uniform(0.5, 1), rng.uniform(0.5, 1), w, dtype=np.float32)
        a = a * g[None, :]
    if rng.random() < 0.25:  # glare
        cx, r = rng.uniform(0, w), rng.uniform(0.5, 3) * h
        xx = np.arange(w, dtype=np.float32)
        a = a + 120 * rng.uniform(0.2, 0.8) * np.exp(-((xx - cx) ** 2) / (2 * r * r))[None, :]
    if rng.random() < 0.7:
        a = cv2.GaussianBlur(a, (0, 0), rng.uniform(0.3, 0.07 * size))
    f = rng.uniform(0.35, 1.0)  # loss of resolution
    a = cv2.resize(a, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
    a = a + rng.normal(0, rng.uniform(0, 12), a.shape)
    a8 = np.clip(a, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", a8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
        a8 = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    if rng.random() < 0.3:  # thresholded scans (as the real line crops are)
        _, a8 = cv2.threshold(a8, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return a8


def train(x: np.ndarray, y: np.ndarray, hidden: int, epochs: int, seed: int) -> Mlp:
    rng = np.random.default_rng(seed)
    mean, std = float(x.mean()), float(x.std()) + 1e-6
    xn = ((x - mean) / std).astype(np.float32)
    d, k = x.shape[1], len(ALPHABET)
    params = [
        rng.normal(0, np.sqrt(2 / d), (d, hidden)).astype(np.float32),
        np.zeros(hidden, np.float32),
        rng.normal(0, np.sqrt(2 / hidden), (hidden, k)).astype(np.float32),
        np.zeros(k, np.float32),
    ]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    step, batch = 0, 256
    for epoch in range(epochs):
        lr = 2e-3 * (0.5 * (1 + np.cos(np.pi * epoch / epochs)))
        order = rng.permutation(len(xn))
        loss = 0.0
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            xb, yb = xn[idx], y[idx]
            w1, b1, w2, b2 = params
            hpre = xb @ w1 + b1
            hb = np.maximum(hpre, 0)
            z = hb @ w2 + b2
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            loss += -np.log(p[np.arange(len(yb)), yb] + 1e-9).sum()
            p[np.arange(len(yb)), yb] -= 1
            p /= len(yb)
            gw2, gb2 = hb.T @ p + 1e-4 * w2, p.sum(0)
            gh = (p @ w2.T) * (hpre > 0)
            gw1, gb1 = xb.T @ gh + 1e-4 * w1, gh.sum(0)
            step += 1
            for j, g in enumerate((gw1, gb1, gw2, gb2)):
                m1[j] = 0.9 * m1[j] + 0.1 * g
                m2[j] = 0.999 * m2[j] + 0.001 * g * g
                mh = m1[j] / (1 - 0.9**step)
                vh = m2[j] / (1 - 0.999**step)
                params[j] -= lr * mh / (np.sqrt(vh) + 1e-8)
        print(f"epoch {epoch + 1}/{epochs} loss {loss / len(xn):.4f}", flush=True)
    return Mlp(params[0], params[1], params[2], params[3], mean, std)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=4000, help="rendered lines")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--seed", type=int, default=9303)
    ap.add_argument(
        "--augments",
        type=int,
        default=4,
        help="augmented copies per crop (x --doc-weight for photographed ones)",
    )
    ap.add_argument(
        "--doc-weight", type=int, default=6, help="x augmented copies for photographed crops"
    )
    ap.add_argument("--cnn-epochs", type=int, default=8)
    ap.add_argument(
        "--holdout", type=int, default=None, help="leave this fold of folds.json out (CV)"
    )
    ap.add_argument("--cnn-samples", type=int, default=100_000, help="CNN windows per epoch")
    ap.add_argument("--no-real", action="store_true", help="rendered lines only")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    t0 = time.time()
    synth = rendered_set(args.lines, args.seed)
    val = rendered_set(max(200, args.lines // 10), args.seed + 1)
    real = real_set(args.augments, args.seed, args.doc_weight)
    held: set[str] = set()
    if args.holdout is not None:
        held = set(load_folds()[args.holdout])
    keep = np.array([not args.no_real and real.ids[k] not in held for k in real.crop])
    real = real.select(keep)
    data = GlyphSet.join(synth, real)
    print(
        f"{len(synth.y)} rendered + {len(real.y)} real glyphs "
        f"({len(set(real.crop.tolist()))} crops), {len(held)} held out, "
        f"{time.time() - t0:.0f} s",
        flush=True,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    model = train(data.mlp, data.y, args.hidden, args.epochs, args.seed)
    err = float((model.probs(val.mlp).argmax(1) != val.y).mean())
    weights = args.out / "ocrb_mlp.npz"
    model.save(weights)
    t1 = time.time()
    cnn_path = args.out / "glyph_cnn.onnx"
    cnn = train_cnn(data.cnn, data.y, args.cnn_epochs, args.seed, cnn_path, args.cnn_samples)
    second = SecondOpinion.load(cnn_path)
    cnn_err = float((second.probs(val.cnn).argmax(1) != val.y).mean())
    command = (
        f"models/mrz/train.py --lines {args.lines} --epochs {args.epochs} "
        f"--hidden {args.hidden} --seed {args.seed} --augments {args.augments} "
        f"--doc-weight {args.doc_weight} "
        f"--cnn-epochs {args.cnn_epochs} --cnn-samples {args.cnn_samples}"
    ) + (f" --holdout {args.holdout}" if args.holdout is not None else "")
    command += " --no-real" if args.no_real else ""
    desc = {
        "name": "autogate MRZ glyph classifier (first opinion) and glyph CNN (second opinion)",
        "kind": "mlp-numpy",
        "weights": weights.name,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "alphabet": ALPHABET,
        "input": [GLYPH_H, GLYPH_W],
        "hidden": args.hidden,
        "fonts": [Path(f).name for f in fonts()[0]],
        "real_crops": "../shared/data/mrz/real_lines",
        "held_out": sorted(held),
        "trained_with": command,
        "train_glyphs": int(len(data.y)),
        "real_glyphs": int(len(real.y)),
        "validation_char_error": round(err, 5),
        "train_seconds": round(t1 - t0),
        "second": {
            "kind": "cnn-onnx",
            "weights": cnn_path.name,
            "sha256": hashlib.sha256(cnn_path.read_bytes()).hexdigest(),
            "input": list(CNN_SIZE),
            "span": CNN_SPAN,
            "classes": CLASSES,
            "validation_char_error": round(cnn_err, 5),
            **cnn,
        },
        "licence": "see models/mrz/LICENSE.md",
    }
    (args.out / "model.json").write_text(json.dumps(desc, indent=1) + "\n")
    print(json.dumps({k: v for k, v in desc.items() if k != "held_out"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
