"""Find MRZ lines as rows of equal-pitch characters: the second way to find the band.

The morphology finder of ``drivers/mrz_ocr.py`` closes print into blobs; when the lines
of a band sit close (tight card layouts, a low-resolution camera) their blobs merge and
no line is left to see. This finder looks at characters instead: connected components
of ink the size of a capital, chained left to right to neighbours of about their height
on about their row, a chain kept when it holds at least ``MIN_CHARS`` characters at a
regular pitch (an MRZ line has 30, 36 or 44, its ``<`` fillers included). Each chain
becomes a rotated line box in the same form the morphology finder gives, so the same
band grouping (``drivers.mrz_ocr.bands``) judges both.
"""

from __future__ import annotations

import cv2
import numpy as np

DETECT_W = 1600  # detection width: capitals of a page-filling MRZ stay 10+ px high
MIN_CHARS = 20  # a line missing a third of its characters (glare, wear) still counts
MAX_PITCH_SPREAD = 0.35  # spread of character gaps around their median, as a fraction
# a data page holds a few hundred characters; ten times that is a page of dense print,
# where the morphology finder alone must do (this one would cost seconds there)
MAX_COMPONENTS = 4000


def _components(small: np.ndarray) -> np.ndarray:
    """(x, y, w, h) of ink components shaped like characters (capitals or fillers)."""
    sw = small.shape[1]
    block = max(15, (sw // 40) | 1)
    binary = cv2.adaptiveThreshold(
        small, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 12
    )
    _, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    x, y, w, h, area = stats[1:].T
    keep = (
        (h >= 6)
        & (h <= small.shape[0] / 3)
        & (w <= 1.6 * h)
        & (w >= 0.1 * h)
        & (area >= 0.12 * w * h)
    )
    return np.stack([x, y, w, h], axis=1)[keep].astype(np.float32)


def _chains(comps: np.ndarray) -> list[np.ndarray]:
    """Indices of components chained left to right along a row of print: each links to
    the nearest unclaimed component to its right of about its height on about its row."""
    order = np.argsort(comps[:, 0], kind="stable")
    comps = comps[order]
    x = comps[:, 0]
    cx = comps[:, 0] + comps[:, 2] / 2
    cy = comps[:, 1] + comps[:, 3] / 2
    h = comps[:, 3]
    reach = np.searchsorted(x, cx + 2.5 * h, side="left")
    nxt = np.full(len(comps), -1)
    taken = np.zeros(len(comps), bool)
    for i in range(len(comps)):
        j = np.arange(i + 1, max(i + 1, int(reach[i])))
        if len(j) == 0:
            continue
        ratio = h[j] / h[i]
        ok = (
            ~taken[j]
            & (cx[j] > cx[i])
            & (ratio > 0.4)
            & (ratio < 2.5)
            & (np.abs(cy[j] - cy[i]) < 0.35 * np.maximum(h[i], h[j]))
        )
        if ok.any():
            best = int(j[ok][np.argmin(cx[j][ok])])
            nxt[i] = best
            taken[best] = True
    out = []
    for start in np.flatnonzero(~taken):
        chain = [int(start)]
        while nxt[chain[-1]] >= 0:
            chain.append(int(nxt[chain[-1]]))
        if len(chain) >= MIN_CHARS:
            out.append(order[np.array(chain)])
    return out


def char_lines(gray: np.ndarray) -> list[tuple]:
    """Rotated boxes ``((cx, cy), (w, h), angle)`` of rows of at least ``MIN_CHARS``
    equal-pitch characters, in full-image pixels."""
    hgt, wid = gray.shape
    scale = min(1.0, DETECT_W / wid)
    small = cv2.resize(gray, (round(wid * scale), round(hgt * scale)), interpolation=cv2.INTER_AREA)
    comps = _components(small)
    if not MIN_CHARS <= len(comps) <= MAX_COMPONENTS:
        return []
    boxes = []
    for idx in _chains(comps):
        c = comps[idx]
        cx = c[:, 0] + c[:, 2] / 2
        gaps = np.diff(cx)
        pitch = float(np.median(gaps))
        # fillers and wide letters vary the gap a little; print beside print varies it a lot
        if pitch <= 0 or np.median(np.abs(gaps - pitch)) > MAX_PITCH_SPREAD * pitch:
            continue
        tall = c[c[:, 3] >= 0.8 * np.percentile(c[:, 3], 90)]  # capitals, not fillers
        pts = np.concatenate(
            [
                np.stack([tall[:, 0], tall[:, 1]], 1),
                np.stack([tall[:, 0] + tall[:, 2], tall[:, 1] + tall[:, 3]], 1),
                np.stack([c[:, 0], c[:, 1] + c[:, 3] / 2], 1),
                np.stack([c[:, 0] + c[:, 2], c[:, 1] + c[:, 3] / 2], 1),
            ]
        )
        (x, y), (bw, bh), ang = cv2.minAreaRect(pts.astype(np.float32))
        if bw < bh:
            bw, bh, ang = bh, bw, ang - 90
        ang = (ang + 90) % 180 - 90
        boxes.append(((x / scale, y / scale), (bw / scale, bh / scale), ang))
    return boxes
