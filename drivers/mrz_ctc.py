"""The MRZ reader's whole-line opinion: a small CRNN read by CTC, in onnxruntime.

Why a whole-line reader beside the two glyph classifiers (``drivers.mrz_ocr``,
``drivers.mrz_recog``): both classify windows that the glyph cutter placed, so a line the
cutter cannot cut (a rule drawn over the print, a stencil face, text that changes size)
comes out a character too long or too short, and no glyph classifier can fix that. This
model sees the whole text row and decides itself where the characters are (Connectionist
Temporal Classification, Graves et al. 2006): convolutions over the row, a small
bidirectional LSTM along it, one distribution over the 37 MRZ symbols and a blank per
column. It is trained by ``models/mrz/ctc.py`` (PyTorch, training only) on rendered and
real lines, exported to ONNX and run here.

``read`` gives the best path (the likeliest symbol per column, repeats merged, blanks
dropped) and, for every character of it, the distribution at the column where that
character peaks (the blank taken out and the rest renormalised): the per-character
probabilities ``drivers.mrz_ocr.read_line`` pools with the glyph opinions, position by
position, once both read the same number of characters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from gate.mrz.checkdigit import ALPHABET  # the reader's class order: 0-9, A-Z, <
from gate.resources import shipped_dir

CTC_H = 24  # the text row (with a margin) is scaled to this height
CTC_MAX_W = 1600  # wider crops are squeezed: 44 characters at any pitch fit
CTC_MIN_W = 32
ROW_MARGIN = 0.25  # above and below the text row, in text heights
BLANK = 37  # the CTC blank is the class after the 37 MRZ symbols
MODEL_DIR = shipped_dir("models/mrz")
POOL_WEIGHT = 0.5  # the line reader's weight when pooled, unless its descriptor names one
DESCRIPTOR = "line_ctc.json"  # beside the glyph models' model.json, written by models/mrz/ctc.py


@dataclass(frozen=True)
class CtcRead:
    text: str
    probs: np.ndarray  # (len(text), 37): each character's distribution at its peak column


def row_image(ink: np.ndarray, top: float | None = None, bot: float | None = None) -> np.ndarray:
    """The model's input from an ink map (``drivers.mrz_ocr.ink``, ink = 1): the text row
    from ``top`` to ``bot`` (the glyph layout's, when it found one; else the rows holding
    ink) with a margin, scaled to ``CTC_H`` pixels high, float32 in [0, 1].

    Scaled by the row, not by the crop: a loose crop and a tight one give the same
    character height, so the model sees one pitch in columns whatever the cropping."""
    h, w = ink.shape
    if top is None or bot is None or bot - top < 4:
        rows = np.flatnonzero((ink > 0.45).mean(axis=1) > 0.02)
        top, bot = (float(rows[0]), float(rows[-1] + 1)) if len(rows) else (0.0, float(h))
        margin = ROW_MARGIN * (bot - top)
        top, bot = top - margin, bot + margin
    t, b = max(0, int(np.floor(top))), min(h, int(np.ceil(bot)))
    if b - t < 4:
        t, b = 0, h
    band = ink[t:b]
    out_w = int(np.clip(round(w * CTC_H / band.shape[0]), CTC_MIN_W, CTC_MAX_W))
    return cv2.resize(band, (out_w, CTC_H), interpolation=cv2.INTER_AREA).astype(np.float32)


def best_path(logp: np.ndarray, temperature: float = 1.0) -> CtcRead:
    """Greedy CTC decoding of ``logp`` (T, 38) log-probabilities: the argmax column by
    column, repeats merged, blanks dropped; each character's distribution over the 37
    symbols is the one at the column of its run where it is likeliest, softened by
    ``temperature`` (the log-probabilities divided by it: the same read, the model's
    over-confidence taken out before it is pooled; see ``LineModel``).

    Hand-written (a dozen lines): greedy decoding is what the per-position pooling needs,
    and no library gives the peak column of each character."""
    best = logp.argmax(axis=1)
    z = logp / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    chars: list[int] = []
    rows: list[np.ndarray] = []
    t = 0
    while t < len(best):
        k = int(best[t])
        end = t
        while end + 1 < len(best) and best[end + 1] == k:
            end += 1
        if k != BLANK:
            peak = t + int(np.argmax(p[t : end + 1, k]))
            row = p[peak, :BLANK]
            chars.append(k)
            rows.append(row / max(float(row.sum()), 1e-9))
        t = end + 1
    text = "".join(ALPHABET[k] for k in chars)
    probs = np.stack(rows).astype(np.float32) if rows else np.zeros((0, BLANK), np.float32)
    return CtcRead(text, probs)


@dataclass(frozen=True)
class LineModel:
    """An onnxruntime session of the CRNN: (1, 1, CTC_H, W) -> log-probabilities (T, 38).

    ``temperature``, ``weight`` and ``ask_under`` come from the descriptor
    (``models/mrz/calibrate.py`` chooses them out of fold): CTC training makes the peak
    columns nearly certain, right or wrong, so its distributions are softened by
    ``temperature`` before ``drivers.mrz_ocr`` pools them with the glyph opinions at
    ``weight``; ``ask_under`` > 0 also asks it on lines whose checks hold but whose least
    certain glyph is under that probability."""

    session: object  # onnxruntime.InferenceSession
    input_name: str
    temperature: float = 1.0
    weight: float = POOL_WEIGHT
    ask_under: float = 0.0  # also asked where the glyph read's least sure character is under

    def logp(self, row: np.ndarray) -> np.ndarray:
        x = row.astype(np.float32)[None, None]
        out = self.session.run(None, {self.input_name: x})[0]  # type: ignore[attr-defined]
        return np.asarray(out, np.float32).reshape(-1, BLANK + 1)

    def read(self, row: np.ndarray) -> CtcRead:
        return best_path(self.logp(row), self.temperature)

    @classmethod
    def load(
        cls,
        path: Path,
        temperature: float = 1.0,
        weight: float = POOL_WEIGHT,
        ask_under: float = 0.0,
    ) -> LineModel:
        from drivers.mrz_recog import onnx_session

        return cls(*onnx_session(path), temperature, weight, ask_under)


@cache
def load_line_model(model_dir: Path = MODEL_DIR) -> LineModel | None:
    """The shipped (or ``model_dir``'s) line model; None when that folder has none (fold
    models of an older training run), so the reader goes on with the glyph opinions."""
    path = model_dir / DESCRIPTOR
    if not path.is_file():
        return None
    desc = json.loads(path.read_text())
    if desc["height"] != CTC_H or desc["classes"] != BLANK + 1:
        raise ValueError(f"{model_dir}: line model does not match this reader")
    return LineModel.load(
        model_dir / desc["weights"],
        float(desc.get("temperature", 1.0)),
        float(desc.get("pool_weight", POOL_WEIGHT)),
        float(desc.get("ask_under", 0.0)),
    )
