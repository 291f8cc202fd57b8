"""Presentation-attack detection over a burst (ISO/IEC 30107-3 terms).

Two kinds of evidence, both computed from what quality already found:

- **Texture and colour, per frame.** A printed photo or a screen re-imaged by the camera
  carries a loss of gamut, halftone dots or a sub-pixel grid (moire), banding and glare.
  We describe the upright face crop by uniform LBP histograms in Y, Cr and Cb (the
  colour-texture descriptor of Boulkenafet et al., 2015), a radial power spectrum (moire
  and halftone peaks) of that crop and of a patch at the camera's full resolution, and
  colour moments, and score it with a logistic regression that
  ``sim/train_pad.py`` trains on generated attacks (no registry ships an anti-spoofing
  model). The weights are ~200 numbers in ``models/face/pad_texture.json``; numpy
  evaluates them, so there is no runtime to load.
- **Motion, over the burst.** A flat photo moves as a plane: its landmarks in every
  frame follow one homography of the first frame's, and its eyes never blink. A real
  face's landmarks leave that plane (parallax, expression) and its eye aspect ratio
  changes. These cues are reported; they only make a burst look *more* like an attack
  when the model's ``motion`` section says so, since a traveller who stands still is
  also nearly planar over 200 ms.

The score is 0 (bona fide) to 1 (attack); the threshold comes from the model file.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drivers.descriptor import is_number
from drivers.errors import DeviceError
from drivers.face.detect import Face
from drivers.face.quality import eye_aspect_ratio, face_crop


def _uniform_lut() -> np.ndarray:
    """Map the 256 LBP codes to 59 bins: 58 uniform patterns and one for the rest."""
    lut = np.full(256, 58, dtype=np.int64)
    n = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        if sum(bits[i] != bits[(i + 1) % 8] for i in range(8)) <= 2:
            lut[code] = n
            n += 1
    return lut


_LUT = _uniform_lut()
_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]


def lbp_hist(channel: np.ndarray) -> np.ndarray:
    """Normalised histogram of uniform LBP(8, 1) codes (hand-written: no scikit-image)."""
    c = channel.astype(np.int16)
    centre = c[1:-1, 1:-1]
    code = np.zeros(centre.shape, dtype=np.int64)
    for bit, (dy, dx) in enumerate(_OFFSETS):
        nb = c[1 + dy : c.shape[0] - 1 + dy, 1 + dx : c.shape[1] - 1 + dx]
        code |= (nb >= centre).astype(np.int64) << bit
    hist = np.bincount(_LUT[code].ravel(), minlength=59).astype(np.float64)
    return hist / hist.sum()


@functools.cache
def _spectrum_layout(h: int, w: int, bands: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Window and radial band masks of an h x w spectrum (computed once per size)."""
    window = np.outer(np.hanning(h), np.hanning(w))
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
    edges = np.linspace(0.02, 1.0, bands + 1)
    masks = [(r > a) & (r <= b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return window, masks, (r > 0.5) & (r <= 1)


def spectrum_profile(gray: np.ndarray, bands: int = 12) -> np.ndarray:
    """Log power in radial frequency bands, plus the peakiness of the outer half."""
    window, masks, outer_mask = _spectrum_layout(gray.shape[0], gray.shape[1], bands)
    g = gray.astype(np.float32)
    g = (g - g.mean()) * window
    power = np.abs(np.fft.fftshift(np.fft.fft2(g))) ** 2 + 1e-6
    sums = [float(power[m].sum()) for m in masks]
    total = np.log(sum(sums))
    prof = [np.log(x) - total for x in sums]
    outer = np.log(power[outer_mask])
    peak = float(np.percentile(outer, 99.9) - np.median(outer))
    return np.array([*prof, peak], dtype=np.float64)


def colour_moments(crop: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.float64) / 255
    ycc = cv2.cvtColor(crop, cv2.COLOR_BGR2YCrCb).reshape(-1, 3).astype(np.float64) / 255
    spec = np.mean((hsv[:, 2] > 0.94) & (hsv[:, 1] < 0.12))
    return np.array(
        [
            *hsv[:, 1:].mean(0),
            *hsv[:, 1:].std(0),
            *ycc.mean(0),
            *ycc.std(0),
            np.percentile(ycc[:, 0], 2),
            np.percentile(ycc[:, 0], 98),
            spec,
        ]
    )


NATIVE = 128  # side of the full-resolution patch whose spectrum is measured


def native_patch(bgr: np.ndarray, face: Face) -> np.ndarray:
    """The camera's own pixels around the nose, not resampled.

    The 64-px-eye crop the other cues use is a downscale (INTER_AREA) that averages
    away the frequencies where a halftone screen or a display's sub-pixel grid shows;
    this patch keeps them. Clamped inside the frame; smaller when the frame is.
    """
    h, w = bgr.shape[:2]
    side = min(NATIVE, h, w)
    cx, cy = face.landmarks[27:36].mean(axis=0)
    x0 = int(np.clip(round(cx) - side // 2, 0, w - side))
    y0 = int(np.clip(round(cy) - side // 2, 0, h - side))
    return bgr[y0 : y0 + side, x0 : x0 + side]


def frame_features(bgr: np.ndarray, face: Face) -> np.ndarray:
    """The texture/colour feature vector of one frame's face (``FEATURES`` numbers)."""
    crop = face_crop(bgr, face, eye_px=64.0, size=160)[16:144, 16:144]
    ycc = cv2.cvtColor(crop, cv2.COLOR_BGR2YCrCb)
    lbp = np.concatenate([lbp_hist(ycc[..., i]) for i in range(3)])
    spec = spectrum_profile(ycc[..., 0])
    patch = native_patch(bgr, face)
    native = (
        spectrum_profile(cv2.cvtColor(patch, cv2.COLOR_BGR2YCrCb)[..., 0])
        if min(patch.shape[:2]) >= 32
        else spec  # a frame too small to hold a patch has no finer detail to show
    )
    return np.concatenate([lbp, spec, colour_moments(crop), native])


FEATURES = 3 * 59 + 13 + 13 + 13  # LBP Y/Cr/Cb, crop spectrum, colour moments, native spectrum


def motion_cues(faces: Sequence[Face]) -> dict[str, float]:
    """Non-planar landmark motion and eye-aspect-ratio range over the burst."""
    if len(faces) < 2:
        return {"frames": float(len(faces))}
    ied = float(np.mean([f.eye_distance for f in faces])) or 1.0
    ref = faces[0].landmarks.astype(np.float32)
    residuals, travel = [], []
    for f in faces[1:]:
        pts = f.landmarks.astype(np.float32)
        h, _ = cv2.findHomography(ref, pts, 0)
        if h is None:
            continue
        proj = cv2.perspectiveTransform(ref[None], h)[0]
        residuals.append(float(np.sqrt(np.mean(np.sum((proj - pts) ** 2, axis=1)))) / ied)
        travel.append(float(np.sqrt(np.mean(np.sum((pts - ref) ** 2, axis=1)))) / ied)
    ears = [eye_aspect_ratio(f) for f in faces]
    return {
        "frames": float(len(faces)),
        "nonplanar": max(residuals) if residuals else 0.0,
        "motion": max(travel) if travel else 0.0,
        "ear_range": float(max(ears) - min(ears)),
    }


MIN_STD = 1e-6  # feature spreads the model standardises by; the shipped one's least is 2e-4
MAX_MAGNITUDE = 1e6  # any mean, std, weight or bias; the shipped model's largest is 7.9
_MOTION = ("min_nonplanar", "min_ear_range", "weight")  # meta.motion's numbers (PAD.__init__)


@dataclass
class PadModel:
    """Standardise, then logistic regression; the threshold is part of the model."""

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> PadModel:
        """The model at ``path``; anything that would make a score NaN, or a threshold no
        score reaches (PAD silently off), is refused with the path (``DeviceError``)."""

        def bad(why: str) -> DeviceError:
            return DeviceError("face", f"PAD model {path}: {why}")

        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise bad(str(exc)) from None
        if not isinstance(d, dict):
            raise bad("not a JSON object")
        missing = [k for k in ("mean", "std", "weights", "bias", "threshold") if k not in d]
        if missing:
            raise bad(f"no {missing[0]!r}")
        vectors = {}
        for key in ("mean", "std", "weights"):
            v = d[key]
            if not isinstance(v, list) or not all(is_number(x) for x in v):
                raise bad(f"{key} is not a list of finite numbers")
            vectors[key] = np.array(v, dtype=np.float64)
        if not (len(vectors["mean"]) == len(vectors["std"]) == len(vectors["weights"]) == FEATURES):
            raise bad(f"{len(vectors['weights'])} weights, features are {FEATURES}")
        if not np.all(vectors["std"] >= MIN_STD):
            raise bad(f"std must be at least {MIN_STD:g} (a zero divides every score into NaN)")
        if not is_number(d["bias"]):
            raise bad(f"bias {d['bias']!r} is not a finite number")
        if max(float(np.abs(v).max()) for v in vectors.values()) > MAX_MAGNITUDE or (
            abs(d["bias"]) > MAX_MAGNITUDE
        ):
            # a standardised logistic regression has small numbers; these overflow the
            # score to +-inf or NaN (found by tests/fuzz/targets_files.py)
            raise bad(f"a value beyond +-{MAX_MAGNITUDE:g}: no trained model has one")
        threshold = d["threshold"]
        if not is_number(threshold) or not 0 < threshold < 1:
            raise bad(f"threshold {threshold!r} is not a number in (0, 1), the score's range")
        meta = d.get("meta", {})
        if not isinstance(meta, dict) or not isinstance(meta.get("motion", {}), dict):
            raise bad("meta (and meta.motion) must be objects")
        numbers = [("borderline_margin", meta)] + [(k, meta.get("motion", {})) for k in _MOTION]
        for key, where in numbers:
            if key in where and not is_number(where[key]):
                raise bad(f"{key} {where[key]!r} is not a finite number")
        return cls(
            vectors["mean"],
            vectors["std"],
            vectors["weights"],
            float(d["bias"]),
            float(threshold),
            meta,
        )

    def save(self, path: str | Path) -> None:
        d = {
            "meta": self.meta,
            "threshold": round(self.threshold, 6),
            "bias": self.bias,
            "mean": [round(float(x), 6) for x in self.mean],
            "std": [round(float(x), 6) for x in self.std],
            "weights": [round(float(x), 6) for x in self.weights],
        }
        Path(path).write_text(json.dumps(d, indent=1) + "\n", encoding="utf-8")

    def logit(self, feats: np.ndarray) -> np.ndarray:
        x = (np.atleast_2d(feats) - self.mean) / self.std
        return x @ self.weights + self.bias


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(x, -40, 40)))


def train_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 3000, lr: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Full-batch gradient descent on the L2-penalised log-loss, balanced classes."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    w = np.zeros(z.shape[1])
    b = 0.0
    cw = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    n = len(y)
    for _ in range(steps):
        p = sigmoid(z @ w + b)
        g = cw * (p - y)
        w -= lr * (z.T @ g / n + l2 * w / n)
        b -= lr * float(g.mean())
    return mean, std, w, b


@dataclass(frozen=True)
class PadResult:
    score: float  # 0 bona fide .. 1 attack
    attack: bool
    cues: dict[str, float]
    logit_sum: float = 0.0  # texture evidence of the frames judged, to pool bursts
    frames: int = 0
    planar: bool = False  # the motion rule fired (only when the model enables it)


class PAD:
    """Burst-level presentation-attack detection."""

    def __init__(self, model: PadModel) -> None:
        self.model = model
        m = model.meta.get("motion", {})
        self.motion_rule = bool(m.get("enabled", False))
        self.min_nonplanar = float(m.get("min_nonplanar", 0.0))
        self.min_ear_range = float(m.get("min_ear_range", 0.0))
        self.motion_weight = float(m.get("weight", 0.0))
        # the band of first-burst scores that get one more burst, pooled with it (score
        # units, either side of the threshold; sim/pad_rule.py chose them on training data)
        self.above = float(model.meta.get("borderline_margin", 0.0))
        self.below = float(model.meta.get("borderline_below", 0.0))

    def borderline(self, first: PadResult) -> bool:
        """Too close to the threshold to decide on one burst, on either side.

        Just over it, a bona fide face unlucky in one burst may clear it with the next;
        just under it, an attack that slipped under once rarely does so twice. Either way
        the verdict is the two bursts pooled (``pool``), which gets no third burst."""
        t = self.model.threshold
        return t - self.below <= first.score < t + self.above

    def assess(self, frames: Sequence[np.ndarray], faces: Sequence[Face]) -> PadResult:
        """``frames[i]`` shows ``faces[i]`` (one face per frame, from quality)."""
        if not faces:
            return PadResult(0.0, False, {})
        feats = np.stack([frame_features(f, face) for f, face in zip(frames, faces, strict=True)])
        logits = self.model.logit(feats)
        score = float(sigmoid(float(np.mean(logits))))
        cues = {"texture": round(score, 4), "texture_max": round(float(sigmoid(logits.max())), 4)}
        cues |= {k: round(v, 4) for k, v in motion_cues(faces).items()}
        planar = False
        if self.motion_rule and len(faces) >= 3:
            planar = (
                cues["nonplanar"] < self.min_nonplanar and cues["ear_range"] < self.min_ear_range
            )
            cues["planar"] = float(planar)
            if planar:
                score = min(1.0, score + self.motion_weight)
        return PadResult(
            score, score >= self.model.threshold, cues, float(logits.sum()), len(faces), planar
        )

    def pool(self, first: PadResult, second: PadResult) -> PadResult:
        """Both bursts of one traveller judged as one presentation: the mean logit over
        all their frames. The first burst was over the threshold, so (with as many frames
        each) the pair passes only when the second is under it by at least as much: every
        attack that pooling lets through, a second chance judged alone would let through
        too, never the reverse; a bona fide face unlucky in one burst is judged on twice
        the frames. A burst the motion rule found planar keeps its penalty."""
        n = first.frames + second.frames
        if not n:
            return second
        score = float(sigmoid((first.logit_sum + second.logit_sum) / n))
        planar = first.planar or second.planar
        if planar:
            score = min(1.0, score + self.motion_weight)
        cues = {**second.cues, "texture_pooled": round(score, 4), "first_burst": first.score}
        return PadResult(
            score,
            score >= self.model.threshold,
            cues,
            first.logit_sum + second.logit_sum,
            n,
            planar,
        )
