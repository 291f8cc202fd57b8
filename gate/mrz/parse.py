"""Parse an MRZ into a ``gate.results.MrzRecord`` that lists every failed check.

Pure: no clock (``today`` is a parameter, used only for the century of two-digit years),
no I/O, and no exception for any input string: bad input is a record with ``valid=False``
and reason codes, as a border gate must refer a traveller, not crash.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from gate.mrz.checkdigit import ALPHABET, verify
from gate.mrz.countries import is_known
from gate.mrz.layout import Layout, detect, split_number
from gate.mrz.repair import repair as repair_lines
from gate.reasons import ReasonCode as R
from gate.results import MrzRecord

_CHARSET = frozenset(ALPHABET)
EXPIRY_YEARS_AHEAD = 50  # a two-digit expiry year is placed within today-50 .. today+49


def _lines_of(lines: Sequence[str] | str) -> list[str]:
    if isinstance(lines, str):
        lines = lines.splitlines()
    return [x.strip() for x in lines if isinstance(x, str) and x.strip()]


def birth_date(raw: str, today: dt.date) -> dt.date | None:
    """YYMMDD to a date in the past (or today): a birth date is never in the future."""
    d = _date(raw, 2000)
    if d is not None and d > today:
        d = _date(raw, 1900)
    return d


def expiry_date(raw: str, today: dt.date) -> dt.date | None:
    """YYMMDD to a date from 50 years ago to 49 years ahead."""
    d = _date(raw, 2000)
    if d is not None and d.year > today.year + EXPIRY_YEARS_AHEAD - 1:
        d = _date(raw, 1900)
    return d


def _date(raw: str, century: int) -> dt.date | None:
    if len(raw) != 6 or not raw.isascii() or not raw.isdigit():
        return None
    try:
        return dt.date(century + int(raw[:2]), int(raw[2:4]), int(raw[4:]))
    except ValueError:
        return None


def _names(field: str) -> tuple[str, str]:
    primary, _, secondary = field.rstrip("<").partition("<<")
    return " ".join(primary.split("<")).strip(), " ".join(secondary.replace("<", " ").split())


def _empty(lines: list[str], reasons: tuple[R, ...]) -> MrzRecord:
    return MrzRecord(
        format="",
        document_code="",
        issuing_state="",
        surname="",
        given_names="",
        document_number="",
        nationality="",
        date_of_birth=None,
        sex="",
        date_of_expiry=None,
        lines=tuple(lines),
        valid=False,
        reasons=reasons,
    )


def parse_mrz(lines: Sequence[str] | str, *, today: dt.date, repair: bool = False) -> MrzRecord:
    """Parse 2 or 3 MRZ lines (a sequence, or one string with newlines).

    ``repair=True`` undoes OCR confusions first (see ``gate.mrz.repair``) and lists each in
    ``repaired``; leave it off for digital sources such as the chip's DG1.

    The BAC/PACE key material is kept as printed:

    - ``document_number_raw``: the document number with its '<' fillers (9 characters, or
      more when a TD1/TD2 number overflowed into the optional field) followed by its check
      digit, e.g. ``L898902C<3``;
    - ``birth_raw`` and ``expiry_raw``: the 6 digits YYMMDD followed by their check digit.

    so the MRZ information of ICAO 9303-11 section 9.7.2 is
    ``document_number_raw + birth_raw + expiry_raw`` (see ``mrz_information``).
    """
    try:
        got = _lines_of(lines)
    except Exception:  # a non-sequence: still a record, never an exception
        return _empty([], (R.DOC_FORMAT,))
    lay = detect(got)
    if lay is None:
        return _empty(got, (R.DOC_FORMAT,))
    repaired: list[tuple[int, int, str, str]] = []
    if repair:
        got, repaired = repair_lines(got, lay)
    return _parse(got, lay, today, tuple(repaired))


def _parse(lines: list[str], lay: Layout, today: dt.date, repaired: tuple) -> MrzRecord:
    reasons: list[R] = []
    if any(c not in _CHARSET for line in lines for c in line):
        reasons.append(R.DOC_FORMAT)
    parts = split_number(lines, lay)
    if not verify(parts.number, parts.check):
        reasons.append(R.DOC_CHECK_NUMBER)
    birth_raw, expiry_raw = lay.birth.of(lines), lay.expiry.of(lines)
    if not verify(birth_raw, lay.birth_check.of(lines)):
        reasons.append(R.DOC_CHECK_BIRTH)
    if not verify(expiry_raw, lay.expiry_check.of(lines)):
        reasons.append(R.DOC_CHECK_EXPIRY)
    if lay.optional_check is not None and not verify(
        lay.optional.of(lines), lay.optional_check.of(lines), empty_filler_ok=True
    ):
        reasons.append(R.DOC_CHECK_OPTIONAL)
    if lay.composite is not None and not verify(
        "".join(s.of(lines) for s in lay.composite_over), lay.composite.of(lines)
    ):
        reasons.append(R.DOC_CHECK_COMPOSITE)

    birth = birth_date(birth_raw, today)
    expiry = expiry_date(expiry_raw, today)
    # a birth date with unknown day/month is printed with fillers (9303-3 4.6.1): not an error
    if (birth is None and "<" not in birth_raw) or expiry is None:
        reasons.append(R.DOC_BAD_DATE)

    state = lay.issuing_state.of(lines).rstrip("<")
    nationality = lay.nationality.of(lines).rstrip("<")
    if not (is_known(state) and is_known(nationality)):
        reasons.append(R.DOC_BAD_COUNTRY)
    sex = lay.sex.of(lines)
    sex = "X" if sex == "<" else sex
    if sex not in ("F", "M", "X"):
        reasons.append(R.DOC_BAD_SEX)

    surname, given = _names(lay.name.of(lines))
    return MrzRecord(
        format=lay.format,
        document_code=lay.document_code.of(lines).rstrip("<"),
        issuing_state=state,
        surname=surname,
        given_names=given,
        document_number=parts.number.rstrip("<"),
        nationality=nationality,
        date_of_birth=birth,
        sex=sex,
        date_of_expiry=expiry,
        optional_data=parts.optional.strip("<"),
        optional_data_2=lay.optional_2.of(lines).strip("<") if lay.optional_2 else "",
        lines=tuple(lines),
        valid=not reasons,
        reasons=tuple(dict.fromkeys(reasons)),
        repaired=repaired,
        birth_raw=birth_raw + lay.birth_check.of(lines),
        expiry_raw=expiry_raw + lay.expiry_check.of(lines),
        document_number_raw=parts.number + parts.check,
    )


def mrz_information(record: MrzRecord) -> str:
    """The MRZ information BAC/PACE hash into their key seed (ICAO 9303-11 9.7.2)."""
    return record.document_number_raw + record.birth_raw + record.expiry_raw
