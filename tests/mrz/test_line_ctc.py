"""The whole-line reader (CRNN read by CTC): its decoding, when the reader asks it, how its
opinion is combined with the glyph opinions, and the shipped model."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from drivers.mrz_ctc import (
    BLANK,
    CTC_H,
    DESCRIPTOR,
    POOL_WEIGHT,
    CtcRead,
    LineModel,
    best_path,
    load_line_model,
)
from drivers.mrz_ocr import ALPHABET, MODEL_DIR, read_line, text_row
from gate.mrz.repair import repair_line
from tests.mrz.test_recog import Hedging


def _logp(columns: list[str], sure: float = 0.9) -> np.ndarray:
    """Log-probabilities of columns that each favour one symbol ('-' is the blank)."""
    p = np.full((len(columns), BLANK + 1), (1 - sure) / BLANK, np.float32)
    for t, c in enumerate(columns):
        p[t, BLANK if c == "-" else ALPHABET.index(c)] = sure
    return np.log(p)


def test_best_path_merges_repeats_and_keeps_fillers_a_blank_apart() -> None:
    got = best_path(_logp(list("--PP-<<-<-UU-T--O")))
    assert got.text == "P<<UTO"  # '<<' then '<': a repeat counts once unless a blank parts it
    assert got.probs.shape == (6, len(ALPHABET))
    assert np.allclose(got.probs.sum(axis=1), 1.0, atol=1e-5)
    assert all(ALPHABET[i] == c for i, c in zip(got.probs.argmax(axis=1), got.text, strict=True))


def test_best_path_gives_each_character_the_column_where_it_peaks() -> None:
    logp = _logp(list("-00-"))
    # the second column is surer of 0; its runner-up there is O
    p = np.exp(logp[2])
    p[ALPHABET.index("0")], p[ALPHABET.index("O")] = 0.6, 0.3
    logp[2] = np.log(p / p.sum())
    logp[1, ALPHABET.index("0")] = np.log(0.95)
    got = best_path(logp)
    assert got.text == "0"
    assert got.probs[0, ALPHABET.index("0")] > 0.9  # the peak column, not the doubtful one


def test_a_temperature_softens_the_distributions_and_keeps_the_read() -> None:
    logp = _logp(list("-PP-<-0-"), sure=0.97)
    sharp, soft = best_path(logp), best_path(logp, temperature=2.5)
    assert soft.text == sharp.text == "P<0"
    assert np.allclose(soft.probs.sum(axis=1), 1.0, atol=1e-5)
    assert (soft.probs.max(axis=1) < sharp.probs.max(axis=1)).all()
    assert (soft.probs.argmax(axis=1) == sharp.probs.argmax(axis=1)).all()


def test_the_calibration_in_a_descriptor_reaches_the_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    desc = json.loads((MODEL_DIR / DESCRIPTOR).read_text())
    desc.update(weights=str((MODEL_DIR / desc["weights"]).resolve()), temperature=2.0)
    desc["pool_weight"] = 0.4
    (tmp_path / DESCRIPTOR).write_text(json.dumps(desc))
    model = load_line_model(tmp_path)
    assert isinstance(model, LineModel)
    assert (model.temperature, model.weight) == (2.0, 0.4)
    desc.pop("temperature"), desc.pop("pool_weight")
    (tmp_path / DESCRIPTOR).write_text(json.dumps(desc))
    load_line_model.cache_clear()
    model = load_line_model(tmp_path)
    assert model is not None and (model.temperature, model.weight) == (1.0, POOL_WEIGHT)


def test_best_path_of_nothing_but_blanks_is_an_empty_read() -> None:
    got = best_path(_logp(list("-----")))
    assert got.text == "" and got.probs.shape == (0, len(ALPHABET))


class FakeLine:
    """A line reader sure of one text, counting how often it is asked."""

    weight = POOL_WEIGHT
    ask_under = 0.0

    def __init__(self, text: str, sure: float = 0.999) -> None:
        self.text, self.sure, self.calls = text, sure, 0

    def read(self, row: np.ndarray) -> CtcRead:
        self.calls += 1
        assert row.shape[0] == CTC_H and row.dtype == np.float32
        p = np.full((len(self.text), len(ALPHABET)), (1 - self.sure) / 36, np.float32)
        for i, c in enumerate(self.text):
            p[i, ALPHABET.index(c)] = self.sure
        return CtcRead(self.text, p)


def _line(text: str) -> np.ndarray:
    img = np.full((60, 40 + 30 * len(text)), 255, np.uint8)
    for i, c in enumerate(text):
        cv2.putText(img, c, (20 + 30 * i, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.1, 0, 3)
    return img


TD1_NAME = "SMITH<<JOHN".ljust(30, "<")  # a TD1 name line


def test_the_line_reader_is_asked_by_default_and_can_be_left_out() -> None:
    line = _line(TD1_NAME + "<")  # a length no MRZ line has
    fake = FakeLine(TD1_NAME)
    read_line(line, line_model=fake, whole_line=False)  # type: ignore[arg-type]
    assert fake.calls == 0
    read_line(line, line_model=fake)  # type: ignore[arg-type]
    assert fake.calls == 1


def test_an_unsure_line_whose_checks_hold_costs_no_line_reader() -> None:
    fake = FakeLine("B" * 30)
    got = read_line(
        _line("A" * 30),
        model=Hedging(0.6),  # type: ignore[arg-type]
        second=Hedging(0.6),  # type: ignore[arg-type]
        line_model=fake,  # type: ignore[arg-type]
        whole_line=True,
    )
    assert fake.calls == 0 and got.text == "A" * 30


class Sure:
    """A glyph opinion sure of one text, whatever the pixels."""

    def __init__(self, text: str) -> None:
        self.text = text

    def probs(self, x: np.ndarray) -> np.ndarray:
        n = len(self.text)
        p = np.full((len(x), len(ALPHABET)), 1e-5, np.float32)
        for j in range(len(x)):
            p[j, ALPHABET.index(self.text[j % n])] = 1.0
        return p / p.sum(axis=1, keepdims=True)


TD1_DATES = "7408122F1204159UTO<<<<<<<<<<<6"  # birth and expiry check digits hold


@pytest.mark.parametrize(("text", "asked"), [(TD1_DATES, 0), ("7408123" + TD1_DATES[7:], 1)])
def test_a_sure_line_whose_check_digits_fail_gets_the_line_reader(text: str, asked: int) -> None:
    fake = FakeLine(TD1_DATES)
    got = read_line(_line(text), model=Sure(text), line_model=fake, whole_line=True)  # type: ignore[arg-type]
    assert fake.calls == asked
    # equally sure opinions that disagree leave the doubt in the probabilities, and the
    # line's check digits decide
    assert repair_line(got.text, got.probs)[0] == TD1_DATES


def test_a_line_cut_to_no_mrz_length_is_recut_at_the_line_readers_count() -> None:
    # 31 glyphs on the crop (a stray mark read as a character, say): no MRZ line is 31 long;
    # the line reader counts 30, so the glyphs are cut again at 30 and pooled with it
    line = _line(TD1_NAME + "<")
    assert len(read_line(line, whole_line=False).text) == 31
    fake = FakeLine(TD1_NAME)
    got = read_line(line, line_model=fake, whole_line=True)  # type: ignore[arg-type]
    assert fake.calls == 1
    assert len(got.text) == 30 and got.probs.shape == (30, len(ALPHABET))
    assert got.text == TD1_NAME  # the glyphs re-cut doubt, the line reader is sure


def test_a_line_reader_that_counts_no_mrz_length_leaves_the_glyph_read() -> None:
    line = _line(TD1_NAME + "<")  # 31 glyphs
    fake = FakeLine(TD1_NAME[:-1])  # 29: no better
    glyphs = read_line(line, whole_line=False)
    got = read_line(line, line_model=fake, whole_line=True)  # type: ignore[arg-type]
    assert fake.calls == 1
    assert got.text == glyphs.text and np.array_equal(got.probs, glyphs.probs)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((1, 1), np.uint8),
        np.full((40, 900), 255, np.uint8),
        np.zeros((40, 900), np.uint8),
        np.random.default_rng(1).integers(0, 256, (37, 1500), dtype=np.uint8),
        np.random.default_rng(2).integers(0, 256, (300, 20), dtype=np.uint8),
        np.random.default_rng(3).integers(0, 256, (8, 20000), dtype=np.uint8),
    ],
)
def test_the_line_reader_survives_lines_that_are_no_lines(image: np.ndarray) -> None:
    got = read_line(image, unsure=1.01, whole_line=True)  # every reader that may be asked
    assert set(got.text) <= set(ALPHABET)
    assert got.probs.shape == (len(got.text), len(ALPHABET))
    assert text_row(image).shape[0] == CTC_H


def test_the_shipped_line_model_is_the_file_its_descriptor_names() -> None:
    desc = json.loads((MODEL_DIR / DESCRIPTOR).read_text())
    assert hashlib.sha256((MODEL_DIR / desc["weights"]).read_bytes()).hexdigest() == desc["sha256"]
    assert desc["held_out"] == []  # the shipped model is trained on every real crop
    assert desc["alphabet"] == ALPHABET
    assert load_line_model() is not None


def test_the_shipped_line_model_alone_reads_a_clean_ocr_b_line() -> None:
    from PIL import Image, ImageDraw, ImageFont

    from sim.page import ocrb_font_path

    model = load_line_model()
    assert model is not None
    for text in ("L898902C36UTO7408122F1204159ZE184226B<<<<<10", "I<UTOD231458907<<<<<<<<<<<<<<<"):
        font = ImageFont.truetype(ocrb_font_path(), 40)
        img = Image.new("L", (30 * len(text) + 60, 70), 255)
        ImageDraw.Draw(img).text((30, 12), text, fill=0, font=font)
        got = model.read(text_row(np.asarray(img))).text
        # its own count, right; at most one O/0-like slip, which the field types repair
        assert len(got) == len(text), got
        assert sum(a != b for a, b in zip(got, text, strict=True)) <= 1, got
