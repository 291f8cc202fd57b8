"""The MRZ reader's second opinion: a small convolutional glyph classifier in onnxruntime.

Why a second recogniser, and why built differently: the first opinion (the numpy MLP of
``drivers.mrz_ocr``) sees one pitch-wide cell of 16 x 24 pixels and is fast enough to read
every glyph of every page. Where it is unsure, an opinion whose errors are not the same
errors is worth more than a bigger copy of the same model: this one is a CNN (shared
local features, so a stroke is a stroke wherever the pitch model placed it), sees 1.5
pitches of context at 24 x 24, and is trained in PyTorch with its own augmentation
(``models/mrz/cnn.py``), then run from ONNX. It costs a millisecond or two per line, so it
is asked only on lines where the first opinion's least certain character is under
``UNSURE`` (every line the first alone could leave with an uncertain field); the two are pooled per character (log-linear: the product of probabilities,
renormalised), and the field types and check digits of the repair decide among what is
left (``gate.mrz.repair``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from gate.mrz.certainty import MIN_MARGIN
from gate.resources import shipped_dir

CNN_SIZE = (24, 24)  # (h, w) of the second opinion's window
CNN_SPAN = 1.5  # its width, in pitches: a glyph and half of each neighbour
# ask the second opinion on every line on which the first alone could leave a field
# uncertain: a margin under MIN_MARGIN means a top probability under (1 + MIN_MARGIN) / 2
# (the runner-up has at most what the top leaves). Pooled, two differently built opinions
# that agree are surer than either, and one that disagrees keeps the doubt
# (bench/mrz_confidence.py at 0.8: right real lines flagged 58 % -> 18 %, wrong ones all)
UNSURE = (1 + MIN_MARGIN) / 2
MODEL_DIR = shipped_dir("models/mrz")
CLASSES = 37  # ALPHABET of drivers.mrz_ocr: 0-9, A-Z, <


@dataclass(frozen=True)
class SecondOpinion:
    """An onnxruntime session of the glyph CNN: windows (n, h * w) -> probabilities (n, 37)."""

    session: object  # onnxruntime.InferenceSession (typed loosely: optional at import)
    input_name: str

    def probs(self, windows: np.ndarray) -> np.ndarray:
        if len(windows) == 0:
            return np.zeros((0, CLASSES), np.float32)
        x = windows.astype(np.float32).reshape(-1, 1, *CNN_SIZE)
        out = self.session.run(None, {self.input_name: x})[0]  # type: ignore[attr-defined]
        return np.asarray(out, np.float32)

    @classmethod
    def load(cls, path: Path) -> SecondOpinion:
        return cls(*onnx_session(path))


def onnx_session(path: Path) -> tuple[object, str]:
    """An onnxruntime session on one thread, and its input's name (both MRZ models)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # one thread: a pool waking up on a busy 2-core machine costs more than the work
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess, sess.get_inputs()[0].name


@cache
def load_second(model_dir: Path = MODEL_DIR) -> SecondOpinion:
    desc = json.loads((model_dir / "model.json").read_text())["second"]
    if desc["input"] != list(CNN_SIZE) or desc["span"] != CNN_SPAN or desc["classes"] != CLASSES:
        raise ValueError(f"{model_dir}: second-opinion model does not match this reader")
    return SecondOpinion.load(model_dir / desc["weights"])


def pool(first: np.ndarray, second: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """Per-character log-linear pool of two opinions (rows are probability vectors): a
    class both find likely stays likely, one that either rules out goes."""
    z = (1 - weight) * np.log(first + 1e-6) + weight * np.log(second + 1e-6)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
