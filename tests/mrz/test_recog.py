"""The second opinion: asked only where the first is unsure, pooled per character, and
the shipped models (both recognisers, the fold split) as the training script wrote them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.mrz_ocr import ALPHABET, MODEL_DIR, load_model, read_line
from drivers.mrz_recog import CNN_SIZE, load_second, pool
from gate.mrz.certainty import MIN_MARGIN
from models.mrz.folds import REAL, crop_ids, document_of, load_folds, make_folds


class Counting:
    """A second opinion that is sure of one text and counts how often it is asked."""

    def __init__(self, text: str) -> None:
        self.text, self.calls = text, 0

    def probs(self, windows: np.ndarray) -> np.ndarray:
        self.calls += 1
        assert windows.shape[1] == CNN_SIZE[0] * CNN_SIZE[1]
        p = np.full((len(windows), len(ALPHABET)), 0.001, np.float32)
        for i, c in enumerate(self.text[: len(windows)]):
            p[i, ALPHABET.index(c)] = 1.0
        return p / p.sum(axis=1, keepdims=True)


def _line(text: str) -> np.ndarray:
    img = np.full((60, 40 + 30 * len(text)), 255, np.uint8)
    for i, c in enumerate(text):
        cv2.putText(img, c, (20 + 30 * i, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.1, 0, 3)
    return img


def test_the_second_opinion_is_asked_only_on_an_unsure_line() -> None:
    line = _line("P<UTO1234")
    second = Counting("P<UTO1234")
    read_line(line, second=second, unsure=0.0)  # never unsure
    assert second.calls == 0
    read_line(line, second=second, unsure=1.01)  # always unsure
    assert second.calls == 1


class Hedging:
    """A first opinion that reads every glyph as ``A`` with probability ``top`` and ``B``
    with the rest: a margin of ``2 * top - 1`` on every character."""

    def __init__(self, top: float) -> None:
        self.top = top

    def probs(self, x: np.ndarray) -> np.ndarray:
        p = np.zeros((len(x), len(ALPHABET)), np.float32)
        p[:, ALPHABET.index("A")], p[:, ALPHABET.index("B")] = self.top, 1 - self.top
        return p


@pytest.mark.parametrize("top", [0.6, 0.7, 0.8, 0.86])
def test_every_line_the_first_opinion_would_leave_uncertain_gets_the_second(top: float) -> None:
    # a character under MIN_MARGIN makes its field uncertain (a referral without a
    # verified chip); the second opinion must have had its say on it first, whatever the
    # first's top probability
    assert 2 * top - 1 < MIN_MARGIN
    second = Counting("P<UTO1234")
    read_line(_line("P<UTO1234"), model=Hedging(top), second=second)  # type: ignore[arg-type]
    assert second.calls == 1


def test_a_line_the_first_opinion_is_sure_of_costs_no_second_opinion() -> None:
    second = Counting("P<UTO1234")
    read_line(_line("P<UTO1234"), model=Hedging(0.999), second=second)  # type: ignore[arg-type]
    assert second.calls == 0


def test_a_confident_second_opinion_decides_a_character_the_first_doubts() -> None:
    line = _line("P<UTO1234")
    first = read_line(line, unsure=0.0, whole_line=False)
    # the character the first opinion is least sure of, and a second opinion that reads
    # another class there with certainty
    col = int(first.probs.max(axis=1).argmin())
    other = next(
        c for c in ALPHABET if c != first.text[col] and first.probs[col, ALPHABET.index(c)] > 1e-3
    )
    text = first.text[:col] + other + first.text[col + 1 :]
    # the glyph opinions alone (the whole-line reader has its own tests)
    both = read_line(line, second=Counting(text), unsure=1.01, whole_line=False)
    assert both.text[col] == other
    assert np.allclose(both.probs.sum(axis=1), 1.0, atol=1e-5)


def test_pooling_keeps_what_both_find_likely_and_drops_what_either_rules_out() -> None:
    a = np.array([[0.6, 0.4, 0.0], [0.5, 0.5, 0.0]], np.float32)
    b = np.array([[0.55, 0.45, 0.0], [0.0, 0.3, 0.7]], np.float32)
    p = pool(a, b)
    assert p[0].argmax() == 0
    assert p[1].argmax() == 1  # class 0 ruled out by b, class 2 by a
    assert np.allclose(p.sum(axis=1), 1.0)


def test_the_shipped_models_are_the_files_model_json_describes() -> None:
    desc = json.loads((MODEL_DIR / "model.json").read_text())
    for d in (desc, desc["second"]):
        assert hashlib.sha256((MODEL_DIR / d["weights"]).read_bytes()).hexdigest() == d["sha256"]
    assert desc["held_out"] == []  # the shipped model is trained on every real crop
    assert (MODEL_DIR / "LICENSE.md").is_file()
    load_model()
    load_second()


def test_the_second_opinion_alone_reads_a_clean_ocr_b_line() -> None:
    from PIL import Image, ImageDraw, ImageFont

    from drivers.mrz_ocr import layout
    from sim.page import ocrb_font_path

    text = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
    font = ImageFont.truetype(ocrb_font_path(), 40)
    img = Image.new("L", (30 * len(text) + 60, 70), 255)
    ImageDraw.Draw(img).text((30, 12), text, fill=0, font=font)
    lay = layout(np.asarray(img), n=len(text))
    assert lay is not None
    p = load_second().probs(lay.windows(size=CNN_SIZE, span=1.5))
    got = "".join(ALPHABET[i] for i in p.argmax(axis=1))
    assert sum(a != b for a, b in zip(got, text, strict=True)) <= 1, got


@pytest.mark.skipif(not Path(REAL).is_dir(), reason="shared real line crops not present")
def test_the_committed_fold_split_is_the_seeded_one_and_keeps_documents_whole() -> None:
    folds = load_folds()
    ids = crop_ids()
    assert sorted(i for f in folds for i in f) == ids  # every crop exactly once
    desc = json.loads((MODEL_DIR / "folds.json").read_text())
    assert folds == make_folds(ids, desc["k"], desc["seed"])
    fold_of_doc: dict[str, set[int]] = {}
    for k, f in enumerate(folds):
        for i in f:
            fold_of_doc.setdefault(document_of(i), set()).add(k)
    assert all(len(v) == 1 for v in fold_of_doc.values())
