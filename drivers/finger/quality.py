"""Is this capture a fingerprint at all? A cheap check before the matcher.

mindtct finds minutiae in anything (in sensor noise it finds more than in a finger), so
a minutiae count says nothing. Ridges do: in a block of a real print the grey-level
gradients share one direction (high coherence of the structure tensor); in noise,
a blank or a smudge they do not. ``ridge_area`` is the share of 16 x 16 blocks that show
ridges: a finger on a sensor covers a good part of it.
"""

from __future__ import annotations

import cv2
import numpy as np

BLOCK = 16
MIN_COHERENCE = 0.45
MIN_CONTRAST = 8.0  # grey levels, standard deviation inside a block


def ridge_area(img: np.ndarray) -> float:
    """Share (0..1) of the image's blocks with oriented ridges of some contrast."""
    if img.ndim != 2 or min(img.shape) < BLOCK:
        return 0.0
    f = img.astype(np.float32)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
    h, w = (img.shape[0] // BLOCK) * BLOCK, (img.shape[1] // BLOCK) * BLOCK

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).sum(axis=(1, 3))

    gxx, gyy, gxy = blocks(gx * gx), blocks(gy * gy), blocks(gx * gy)
    coherence = np.sqrt((gxx - gyy) ** 2 + 4 * gxy**2) / (gxx + gyy + 1e-6)
    std = f[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).std(axis=(1, 3))
    return float(np.mean((coherence > MIN_COHERENCE) & (std > MIN_CONTRAST)))
