"""ICAO 9303 part 3 section 4.9: the 7-3-1 check digit.

Each character has a value (digits 0-9, A-Z 10-35, the filler ``<`` 0); the values are
weighted 7, 3, 1, 7, 3, 1 ... and summed; the check digit is the sum modulo 10.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<"
_WEIGHTS = (7, 3, 1)
_VALUE = {c: (i if c != "<" else 0) for i, c in enumerate(ALPHABET)}


def check_digit(data: str) -> str | None:
    """The check digit of ``data``, or ``None`` when it holds a character outside the MRZ set."""
    total = 0
    for i, c in enumerate(data):
        v = _VALUE.get(c)
        if v is None:
            return None
        total += v * _WEIGHTS[i % 3]
    return str(total % 10)


def verify(data: str, digit: str, *, empty_filler_ok: bool = False) -> bool:
    """True when ``digit`` is the check digit of ``data``.

    ``empty_filler_ok``: ICAO lets an all-filler optional field carry ``<`` as its check
    digit (TD3 line 2, position 43) instead of ``0``.
    """
    if empty_filler_ok and digit == "<" and set(data) <= {"<"}:
        return True
    return check_digit(data) == digit
