"""Build valid MRZ lines from fields: for the page renderer, the virtual chip's DG1 and tests.

Text is transliterated the simple way (upper case, spaces/hyphens/apostrophes to ``<``,
other characters dropped) and names truncated to the field, as ICAO 9303-3 4.6 allows.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from gate.mrz.checkdigit import check_digit
from gate.mrz.layout import LAYOUTS, Layout, Span


def clean(text: str) -> str:
    """Upper-case MRZ characters only: accents stripped, separators to ``<``."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
    out = "".join("<" if c in " -'," else c for c in text)
    return "".join(c for c in out if c.isascii() and (c.isalnum() or c == "<"))


def _pad(text: str, width: int) -> str:
    return text[:width].ljust(width, "<")


def _yymmdd(value: dt.date | str) -> str:
    return value.strftime("%y%m%d") if isinstance(value, dt.date) else value


def _cd(data: str) -> str:
    digit = check_digit(data)
    if digit is None:
        raise ValueError(f"not MRZ characters: {data!r}")
    return digit


def build_mrz(
    fmt: str,
    *,
    surname: str,
    given_names: str,
    document_number: str,
    nationality: str,
    date_of_birth: dt.date | str,
    sex: str,
    date_of_expiry: dt.date | str,
    issuing_state: str | None = None,
    document_code: str | None = None,
    optional_data: str = "",
    optional_data_2: str = "",
) -> tuple[str, ...]:
    """MRZ lines of format ``fmt`` (TD1, TD2, TD3, MRV-A, MRV-B) with every check digit.

    A TD1/TD2 document number longer than 9 characters is written with the overflow
    convention (check position ``<``, the rest and its check digit in the optional field).
    Dates are ``datetime.date`` or ``YYMMDD``; ``sex`` is F, M or X.
    """
    lay: Layout = LAYOUTS[fmt]
    if document_code is None:
        document_code = {"TD3": "P", "MRV-A": "V", "MRV-B": "V"}.get(fmt, "I")
    lines = [["<"] * lay.width for _ in range(lay.lines)]

    def put(span: Span | None, text: str) -> None:
        if span is None:
            return
        width = span.end - span.start
        if len(text) > width:
            raise ValueError(f"{text!r} does not fit {width} characters")
        lines[span.line][span.start : span.end] = list(_pad(text, width))

    number = clean(document_number)
    optional = clean(optional_data)
    if len(number) > 9:
        if not lay.overflow:
            raise ValueError(f"{fmt} document number is at most 9 characters")
        put(lay.document_number, number[:9])
        put(lay.number_check, "<")
        optional = number[9:] + _cd(number) + "<" + optional
    else:
        put(lay.document_number, number)
        put(lay.number_check, _cd(_pad(number, 9)))
    put(lay.document_code, clean(document_code))
    put(lay.issuing_state, clean(issuing_state if issuing_state is not None else nationality))
    put(lay.nationality, clean(nationality))
    birth, expiry = _yymmdd(date_of_birth), _yymmdd(date_of_expiry)
    put(lay.birth, birth)
    put(lay.birth_check, _cd(birth))
    put(lay.expiry, expiry)
    put(lay.expiry_check, _cd(expiry))
    put(lay.sex, "<" if sex in ("X", "<", "") else sex)
    put(lay.optional, optional)
    put(lay.optional_2, clean(optional_data_2))
    width = lay.name.end - lay.name.start
    put(lay.name, (clean(surname) + "<<" + clean(given_names))[:width])
    out = ["".join(x) for x in lines]
    if lay.optional_check is not None:
        opt = lay.optional.of(out)
        put(lay.optional_check, "<" if set(opt) == {"<"} else _cd(opt))
    if lay.composite is not None:
        out = ["".join(x) for x in lines]
        put(lay.composite, _cd("".join(s.of(out) for s in lay.composite_over)))
    return tuple("".join(x) for x in lines)


def build_td3(**fields: object) -> tuple[str, ...]:
    """A passport MRZ (2 x 44)."""
    return build_mrz("TD3", **fields)  # type: ignore[arg-type]


def build_td1(**fields: object) -> tuple[str, ...]:
    """An ID-card MRZ (3 x 30)."""
    return build_mrz("TD1", **fields)  # type: ignore[arg-type]


def build_td2(**fields: object) -> tuple[str, ...]:
    """A TD2 card MRZ (2 x 36)."""
    return build_mrz("TD2", **fields)  # type: ignore[arg-type]
