"""Score a labelled fingerprint pair set for calibration (the faces' tool does the rest).

The pair set has the faces' layout (``pairs.csv`` with ``a,b,same``, paths relative to
it; ``manifest.csv`` beside it with any attributes to break rates down by), so
``drivers/face/calibrate.py`` reads it, sets the threshold at the target FMR and draws the
DET curve. Only the scoring is the finger's own: every image is brought to 500 ppi (its
file's stated resolution, else 500) and its minutiae extracted once.

Runs in this process: the set is the operator's own files, and 40,000 comparisons
through the worker would copy the images 80,000 times. A gate's images never come here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from drivers.finger import matcher as m


def load_png(path: Path) -> bytes:
    """An image file as the 500 ppi PNG the matcher takes."""
    from PIL import Image

    with Image.open(path) as im:
        dpi = im.info.get("dpi", (m.PPI, m.PPI))[0] or m.PPI
        return m.to_png(im, float(dpi))


def pair_scores(
    root: Path,
    a: list[str],
    b: list[str],
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """(score per pair, NaN where an image could not be compared; images refused)."""
    pngs: dict[str, bytes | None] = {}
    for name in sorted(set(a) | set(b)):
        try:
            pngs[name] = load_png(root / name)
        except (OSError, ValueError):
            pngs[name] = None
    refused = sum(v is None for v in pngs.values())
    out = np.full(len(a), np.nan)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        px, py = pngs[x], pngs[y]
        if px is not None and py is not None:
            res = m.compare_pngs(px, py)
            if isinstance(res, m.Comparison):
                out[i] = res.score
        if progress:
            progress(1)
    return out, refused
