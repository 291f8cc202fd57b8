"""One comparison score for a whole burst: the mean embedding of its good frames.

A single best frame carries that frame's noise (expression, blur, sensor noise) into
the score; the mean embedding of the frames that pass quality averages it away, so a
genuine traveller's score rises and its spread narrows. The threshold for a fused
score must be calibrated on bursts (``autogate face calibrate`` with burst folders):
the fused score's distribution is not a single still's. A max over frames would need
no such care only in appearance: it gives impostors several draws and raises FMR.

The descriptor's ``fusion.frames`` caps the frames embedded (best quality first):
each costs one embedding, about 13 ms with dlib's ResNet in onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from drivers.face.detect import Detector, Face
from drivers.face.match import Descriptor, Matcher
from drivers.face.quality import Quality, QualityLimits, assess

DEFAULT_FRAMES = 3


def fusion_frames(descriptor: Descriptor) -> int:
    """Frames fused per burst as the descriptor was calibrated for (1 = best frame only)."""
    fusion = descriptor.data.get("fusion") or {}
    return max(1, int(fusion.get("frames", 1)))


def chosen(qualities: Sequence[Quality], k: int) -> list[int]:
    """Indices of the frames that pass quality, best score first, at most ``k``."""
    passing = [i for i, q in enumerate(qualities) if q.passed and q.face is not None]
    return sorted(passing, key=lambda i: -qualities[i].score)[:k]


def fuse(matcher: Matcher, vecs: Sequence[np.ndarray]) -> np.ndarray:
    """Mean embedding; re-normalised for cosine backends (their embeddings are unit)."""
    mean = np.mean(np.stack(vecs), axis=0).astype(np.float32)
    if matcher.backend != "dlib":
        mean /= float(np.linalg.norm(mean)) + 1e-9
    return mean


def embed_frames(
    matcher: Matcher,
    frames: Sequence[np.ndarray],
    qualities: Sequence[Quality],
    k: int,
) -> tuple[np.ndarray | None, list[int]]:
    """The fused embedding of a burst's best ``k`` passing frames, and which they were."""
    idx = chosen(qualities, k)
    if not idx:
        return None, []
    vecs = [matcher.embed(frames[i], qualities[i].face) for i in idx]  # type: ignore[arg-type]
    return fuse(matcher, vecs), idx


def embed_burst(
    matcher: Matcher,
    detector: Detector,
    frames: list[np.ndarray],
    k: int,
    limits: QualityLimits | None = None,
) -> tuple[np.ndarray | None, list[Quality]]:
    """Detect, assess and fuse a burst as the verifier does (for calibration)."""
    limits = limits or QualityLimits()
    found: list[list[Face]] = detector.detect_burst(frames)
    qualities = [assess(f, faces, limits) for f, faces in zip(frames, found, strict=True)]
    vec, _ = embed_frames(matcher, frames, qualities, k)
    return vec, qualities
