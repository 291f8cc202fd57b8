"""The MRZ parser on ICAO's specimens, every failed check, bad input and OCR repair."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.mrz import build_mrz, build_td1, check_digit, mrz_information, parse_mrz
from gate.reasons import ReasonCode as R

DATA = Path(__file__).resolve().parents[2] / "../shared/data/mrz"
SPECIMENS = json.loads((DATA / "specimens.json").read_text())["specimens"]
TODAY = dt.date(2026, 11, 25)
TD3 = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
)


@pytest.mark.parametrize("spec", SPECIMENS, ids=lambda s: s["format"] + s.get("note", "")[:8])
def test_icao_specimens(spec: dict) -> None:
    rec = parse_mrz(spec["lines"], today=TODAY)
    assert rec.format == spec["format"]
    for name, want in spec["expect"].items():
        got = getattr(rec, name)
        assert (got.isoformat() if isinstance(got, dt.date) else got) == want, name
    assert rec.reasons == ()


def test_bac_worked_example_key_material() -> None:
    rec = parse_mrz(SPECIMENS[-1]["lines"], today=TODAY)
    assert rec.document_number_raw == "L898902C<3"
    assert rec.birth_raw == "6908061" and rec.expiry_raw == "9406236"
    assert mrz_information(rec) == "L898902C<369080619406236"


def test_check_digit_values() -> None:
    assert check_digit("L898902C3") == "6"
    assert check_digit("740812") == "2"
    assert check_digit("<<<<<<") == "0"
    assert check_digit("abc") is None


@pytest.mark.parametrize(
    ("col", "char", "reason"),
    [
        (9, "7", R.DOC_CHECK_NUMBER),
        (19, "3", R.DOC_CHECK_BIRTH),
        (27, "0", R.DOC_CHECK_EXPIRY),
        (42, "3", R.DOC_CHECK_OPTIONAL),
        (43, "1", R.DOC_CHECK_COMPOSITE),
    ],
)
def test_each_wrong_check_digit_has_its_reason(col: int, char: str, reason: R) -> None:
    line2 = TD3[1][:col] + char + TD3[1][col + 1 :]
    rec = parse_mrz([TD3[0], line2], today=TODAY)
    assert not rec.valid
    assert reason in rec.reasons
    # a wrong field digit also breaks the composite, which covers it
    assert set(rec.reasons) <= {reason, R.DOC_CHECK_COMPOSITE}


def test_all_failures_reported_not_just_first() -> None:
    line2 = "L898902C37UTO7408123F1204158ZE184226B<<<<<11"
    rec = parse_mrz([TD3[0], line2], today=TODAY)
    assert {R.DOC_CHECK_NUMBER, R.DOC_CHECK_BIRTH, R.DOC_CHECK_EXPIRY} <= set(rec.reasons)


def test_bad_date_country_and_sex() -> None:
    lines = build_mrz(
        "TD3",
        surname="A",
        given_names="B",
        document_number="X1",
        nationality="QQQ",
        date_of_birth="741312",
        sex="Y",
        date_of_expiry="300230",
    )
    rec = parse_mrz(lines, today=TODAY)
    assert {R.DOC_BAD_DATE, R.DOC_BAD_COUNTRY, R.DOC_BAD_SEX} <= set(rec.reasons)
    assert rec.date_of_birth is None and rec.date_of_expiry is None


def test_german_d_and_unknown_sex() -> None:
    lines = build_mrz(
        "TD1",
        surname="MUSTERMANN",
        given_names="ERIKA",
        document_number="T22000129",
        nationality="D",
        date_of_birth="640812",
        sex="X",
        date_of_expiry="310331",
    )
    rec = parse_mrz(lines, today=TODAY)
    assert rec.valid and rec.nationality == "D" and rec.sex == "X"
    assert rec.date_of_birth == dt.date(1964, 8, 12) and rec.date_of_expiry == dt.date(2031, 3, 31)


def test_century_inference_uses_today_not_the_clock() -> None:
    lines = build_mrz(
        "TD3",
        surname="A",
        given_names="B",
        document_number="X1",
        nationality="UTO",
        date_of_birth="250101",
        sex="F",
        date_of_expiry="350101",
    )
    assert parse_mrz(lines, today=dt.date(2026, 1, 1)).date_of_birth == dt.date(2025, 1, 1)
    assert parse_mrz(lines, today=dt.date(2024, 1, 1)).date_of_birth == dt.date(1925, 1, 1)
    assert parse_mrz(lines, today=dt.date(2026, 1, 1)).date_of_expiry == dt.date(2035, 1, 1)


def test_td1_long_document_number_overflow() -> None:
    lines = build_td1(
        surname="ERIKSSON",
        given_names="ANNA",
        document_number="D23145890734",
        nationality="UTO",
        date_of_birth="740812",
        sex="F",
        date_of_expiry="120415",
        optional_data="AB",
    )
    assert lines[0][14] == "<" and lines[0][15:19] == "7349"
    rec = parse_mrz(lines, today=TODAY)
    assert rec.valid, rec.reasons
    assert rec.document_number == "D23145890734" and rec.optional_data == "AB"
    assert rec.document_number_raw == "D231458907349"


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [""],
        ["P<UTO"],
        [TD3[0], TD3[1][:-1]],  # truncated line
        [TD3[0], TD3[1], TD3[1]],  # three lines of 44
        [TD3[0][:36], TD3[1]],  # mixed widths
    ],
)
def test_wrong_shape_is_doc_format(lines: list[str]) -> None:
    rec = parse_mrz(lines, today=TODAY)
    assert not rec.valid and rec.reasons == (R.DOC_FORMAT,) and rec.format == ""


def test_lowercase_and_non_ascii_are_doc_format() -> None:
    assert R.DOC_FORMAT in parse_mrz([TD3[0].lower(), TD3[1]], today=TODAY).reasons
    bad = TD3[0].replace("ANNA", "ÄNNA")
    assert R.DOC_FORMAT in parse_mrz([bad, TD3[1]], today=TODAY).reasons


def test_string_with_newlines_and_whitespace() -> None:
    assert parse_mrz(f"  {TD3[0]}\r\n{TD3[1]}  \n", today=TODAY).valid


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=50), max_size=4))
def test_parser_never_raises_on_arbitrary_strings(lines: list[str]) -> None:
    rec = parse_mrz(lines, today=TODAY, repair=True)
    assert rec.valid or rec.reasons


_ALNUM = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=9)
# names as printed: words joined by single spaces (a leading separator is not a name)
_NAME = st.lists(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8), min_size=1, max_size=3
).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(
    fmt=st.sampled_from(["TD1", "TD2", "TD3", "MRV-A", "MRV-B"]),
    number=_ALNUM,
    surname=_NAME,
    given_names=_NAME,
    birth=st.dates(dt.date(1930, 1, 1), dt.date(2026, 1, 1)),
    expiry=st.dates(dt.date(1980, 1, 1), dt.date(2070, 1, 1)),
    sex=st.sampled_from("FMX"),
    optional=st.text(alphabet="ABCXYZ0123456789", max_size=7),
)
def test_build_then_parse_round_trip(
    fmt, number, surname, given_names, birth, expiry, sex, optional
) -> None:
    lines = build_mrz(
        fmt,
        surname=surname,
        given_names=given_names,
        document_number=number,
        nationality="UTO",
        date_of_birth=birth,
        sex=sex,
        date_of_expiry=expiry,
        optional_data=optional,
    )
    rec = parse_mrz(lines, today=TODAY)
    assert rec.valid, rec.reasons
    assert rec.optional_data == optional
    assert (rec.document_number, rec.date_of_birth, rec.date_of_expiry, rec.sex) == (
        number,
        birth,
        expiry,
        sex,
    )
    assert rec.surname == " ".join(surname.split())[: len(rec.surname)]
    # and OCR repair never touches an already valid MRZ
    assert parse_mrz(lines, today=TODAY, repair=True).repaired == ()
