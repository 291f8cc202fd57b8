"""Fields no check digit vouches for: flagged when read unsure, and the policy refers."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from gate import policy
from gate.mrz.certainty import uncertain_fields, unsure
from gate.mrz.checkdigit import ALPHABET
from gate.mrz.layout import TD1, TD3
from gate.policy_config import Policy
from gate.reasons import ReasonCode as R
from gate.results import Check, ChipResult, DocumentResult
from tests.core.helpers import CLEAR, mrz

TODAY = dt.date(2026, 11, 25)
L1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
L2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"


def sure(line: str) -> np.ndarray:
    p = np.full((len(line), len(ALPHABET)), 0.001)
    for i, c in enumerate(line):
        p[i, ALPHABET.index(c)] = 0.96
    return p


def doubt(p: np.ndarray, col: int, rival: str, share: float = 0.45) -> np.ndarray:
    p = p.copy()
    p[col, ALPHABET.index(rival)] = share
    p[col] /= p[col].sum()
    return p


def test_confident_read_has_no_uncertain_field() -> None:
    assert uncertain_fields([L1, L2], [sure(L1), sure(L2)], TD3) == ()


def test_name_with_a_close_runner_up_is_uncertain() -> None:
    # M read where H was nearly as likely: a valid MRZ, a wrong name, no check digit
    p1 = doubt(sure(L1), 20, "H")  # ANNA<MARIA: column 20 is the M
    assert uncertain_fields([L1, L2], [p1, sure(L2)], TD3) == ("given_names",)
    p1 = doubt(sure(L1), 7, "K")  # ERIKSSON's I with a K close behind
    assert uncertain_fields([L1, L2], [p1, sure(L2)], TD3) == ("surname",)


def test_runner_up_of_another_kind_is_no_doubt() -> None:
    # a 0 close behind an O in a name: a name holds no digits, so the O stands
    p1 = doubt(sure(L1), 20, "0", share=0.9)
    assert uncertain_fields([L1, L2], [p1, sure(L2)], TD3) == ()


def test_check_digit_covers_a_number_except_where_weights_collide() -> None:
    # 8 and B in the document number: different weights, the check digit decides
    p2 = doubt(sure(L2), 1, "B")
    assert uncertain_fields([L1, L2], [sure(L1), p2], TD3) == ()
    # 0 and U weigh the same modulo 10: the check digit cannot see the difference
    p2 = doubt(sure(L2), 5, "U")
    assert L2[5] == "0"
    assert uncertain_fields([L1, L2], [sure(L1), p2], TD3) == ("document_number",)


def test_nationality_and_sex_are_unprotected() -> None:
    p2 = doubt(doubt(sure(L2), 11, "J"), 20, "M")  # UTO's T against J, F against M
    found = unsure([L1, L2], [sure(L1), p2], TD3)
    assert {f for f, *_ in found} == {"nationality", "sex"}


def test_td1_code_digit_and_rows_of_the_wrong_length() -> None:
    lines = (
        "C1USASRC00000003<<<<<<<<<<<<<<",
        "7408122F3204159MEX<<<<<<<<<<<0",
        "SPECIMEN<<TEST<<<<<<<<<<<<<<<<",
    )
    probs = [doubt(sure(lines[0]), 1, "I"), sure(lines[1]), sure(lines[2])]
    assert uncertain_fields(lines, probs, TD1) == ("document_code",)
    assert "surname" in uncertain_fields(lines, [probs[0], probs[1], sure("SHORT")], TD1)


def _chip(dg1, pa: Check = Check.PASSED) -> ChipResult:
    return ChipResult(True, "PACE", dg1, pa, Check.PASSED, Check.NOT_SUPPORTED, True)


def test_policy_refers_on_an_uncertain_field() -> None:
    rec = mrz()
    res = DocumentResult(rec, confidence=0.99, uncertain=("surname",))
    d = policy.decide_document(rec, res, _chip(rec), CLEAR, Policy(), TODAY)
    assert d.accept  # the signed DG1 shows the same surname: the page was read right
    d = policy.decide_document(rec, res, None, CLEAR, Policy(chip={"required": False}), TODAY)
    assert not d.accept and R.DOC_UNCERTAIN_FIELD in d.reasons
    other = dataclasses.replace(rec, surname="TAM")
    d = policy.decide_document(rec, res, _chip(other), CLEAR, Policy(), TODAY)
    assert R.DOC_UNCERTAIN_FIELD in d.reasons and R.CHIP_MRZ_MISMATCH in d.reasons
    d = policy.decide_document(rec, res, _chip(rec, Check.NOT_RUN), CLEAR, Policy(), TODAY)
    assert R.DOC_UNCERTAIN_FIELD in d.reasons  # an unverified DG1 confirms nothing
    sure_res = DocumentResult(rec, confidence=0.99)
    d = policy.decide_document(rec, sure_res, None, CLEAR, Policy(chip={"required": False}), TODAY)
    assert d.accept, d.reasons


@pytest.mark.parametrize("seed", range(20, 26))
def test_a_rendered_page_read_right_is_not_doubted(seed: int) -> None:
    # a page the reader gets right must not send its traveller to an officer when the chip
    # cannot confirm it: at the shipped margin, with both opinions heard, clean OCR-B
    # print leaves no field uncertain (bench/mrz_confidence.py --pages: 0 of 90)
    from drivers.scanner import read_image
    from sim.page import render_page

    img, _, lines = render_page(seed, "clean", "TD1" if seed % 3 == 0 else "TD3")
    res = read_image(img, today=TODAY)
    assert res.mrz is not None and res.mrz.lines == lines
    assert res.uncertain == ()


def test_reader_reports_uncertain_fields_from_its_margins() -> None:
    from drivers.scanner import read_image
    from sim.page import render_page

    img, _, lines = render_page(11, "clean", "TD3")
    res = read_image(img, today=TODAY)
    assert res.mrz is not None and res.mrz.lines == lines
    # at the default margin a flag may stand on a right read (a verified DG1 clears it),
    # but only on fields no check digit settles; a clean page is sure at a lower margin
    assert set(res.uncertain) <= {
        "surname",
        "given_names",
        "issuing_state",
        "nationality",
        "sex",
        "document_code",
    }
    assert read_image(img, today=TODAY, min_margin=0.5).uncertain == ()
    # a margin no read can reach: every unprotected field is unsure, none protected
    res = read_image(img, today=TODAY, min_margin=1.0)
    assert {"surname", "issuing_state", "nationality", "sex"} <= set(res.uncertain)
