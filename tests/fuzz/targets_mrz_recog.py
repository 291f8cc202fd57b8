"""The MRZ line recogniser (both opinions) on arbitrary pixels: a line crop is whatever
the band finder cut, so any gray image must give a read (possibly empty) whose text and
probability rows agree, never an exception.

Input bytes: height (1 byte), width (2 bytes, big-endian), a fixed length (1 byte, 0 =
let the reader count), then the pixels row by row (repeated or cut to fit)."""

from __future__ import annotations

import random

import cv2
import numpy as np

from drivers.mrz_ocr import read_line
from models.mrz.folds import REAL
from tests.fuzz import harness

MAX_W = 900  # keeps 2,000 inputs to seconds in the suite


def decode(data: bytes) -> tuple[np.ndarray, int | None]:
    h = max(1, data[0]) if data else 1
    w = max(1, int.from_bytes(data[1:3], "big") % MAX_W) if len(data) > 2 else 1
    n = data[3] % 60 if len(data) > 3 else 0
    px = np.frombuffer(data[4:], np.uint8) if len(data) > 4 else np.zeros(1, np.uint8)
    img = np.resize(px, h * w).reshape(h, w)
    return img, n or None


def encode(img: np.ndarray, n: int = 0) -> bytes:
    h, w = img.shape
    return bytes([h]) + w.to_bytes(2, "big") + bytes([n]) + img.astype(np.uint8).tobytes()


def _seeds() -> list[bytes]:
    out = []
    for p in sorted(REAL.glob("*.tif"))[::160]:
        g = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if g is None:
            continue
        g = cv2.resize(g, (min(MAX_W - 1, round(g.shape[1] * 20 / g.shape[0])), 20))
        out.append(encode(g))
    # a drawn line, so the target has a seed without the shared data
    img = np.full((40, 600), 255, np.uint8)
    for i in range(20):
        cv2.putText(img, "P<UTO0123456789ABCDE"[i], (10 + 29 * i, 32), 0, 1.0, 0, 2)
    out.append(encode(img))
    out.append(encode(img, 44))
    return out


def _geometry(data: bytes, rng: random.Random) -> bytes:
    """Change the header only: same pixels at another shape or fixed length."""
    b = bytearray(data or b"\x01\x00\x01\x00")
    b[0] = rng.choice((1, 2, 3, 8, 20, 40, 41, 80, 255))
    b[1:3] = rng.randrange(MAX_W).to_bytes(2, "big")
    if len(b) > 3:
        b[3] = rng.choice((0, 1, 2, 30, 36, 44, 59))
    return bytes(b)


def call(data: bytes, whole_line: bool = False) -> None:
    img, n = decode(data)
    read = read_line(img, n=n, whole_line=whole_line)
    if read.probs.shape != (len(read.text), 37):
        raise AssertionError(f"text of {len(read.text)} with probs {read.probs.shape}")
    if len(read.text) and not np.allclose(read.probs.sum(axis=1), 1.0, atol=1e-3):
        raise AssertionError("probability rows do not sum to 1")


def call_whole_line(data: bytes) -> None:
    """The same, with the whole-line reader (an option) asked where it may be."""
    call(data, whole_line=True)


TARGETS = [
    harness.Target("mrz_read_line", _seeds, call, (), _geometry),
    harness.Target("mrz_read_line_whole", _seeds, call_whole_line, (), _geometry),
]
