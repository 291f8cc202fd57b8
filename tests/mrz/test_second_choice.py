"""The reader's second-choice repair: applied only when exactly one combination is valid."""

from __future__ import annotations

import datetime as dt

import numpy as np

from drivers.mrz_ocr import ALPHABET, LineRead
from drivers.scanner import second_choices

TODAY = dt.date(2026, 11, 25)
L1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
L2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"


def confident(text: str) -> LineRead:
    p = np.full((len(text), len(ALPHABET)), 1e-4, np.float32)
    for i, c in enumerate(text):
        p[i, ALPHABET.index(c)] = 0.99
    return LineRead(text, p)


def test_unsure_wrong_digit_is_replaced_by_its_second_choice() -> None:
    wrong = L2[:14] + "7" + L2[15:]  # birth 740812 read as 770812: check digit fails
    line = confident(wrong)
    line.probs[14, ALPHABET.index("7")] = 0.55
    line.probs[14, ALPHABET.index("4")] = 0.44
    rec = second_choices([confident(L1), line], TODAY)
    assert rec is not None and rec.valid and rec.lines == (L1, L2)
    assert (1, 14, "7", "4") in rec.repaired


def test_no_unsure_position_means_no_guess() -> None:
    wrong = L2[:14] + "7" + L2[15:]
    assert second_choices([confident(L1), confident(wrong)], TODAY) is None
