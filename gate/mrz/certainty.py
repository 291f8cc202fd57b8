"""Which fields of an OCR'd MRZ no check digit vouches for, character by character.

A valid MRZ can still be wrong: names, codes, nationality and sex carry no check digit,
and a check digit cannot tell apart two characters whose values are equal modulo 10
(0/U/A/K, 1/L/B/V, 6/G/Q, 8/I/S, 4/E/O/Y, ...: each weighs the same in the 7-3-1 sum).
So a field is *uncertain* when one of its characters was read with a low margin over a
runner-up the field would equally accept: in an unprotected field any runner-up of the
field's kind, in a protected one a runner-up that collides with the read under its check.
The margin is taken between probabilities renormalised over what the position may hold
(a 0 in a name is an O or a D, not a digit). ``MIN_MARGIN`` is calibrated on real line
crops by ``bench/mrz_confidence.py`` (cross-validated); the policy refers on an uncertain
field unless a passively authenticated DG1 shows the same value.
"""

from __future__ import annotations

from collections.abc import Sequence

from gate.mrz.checkdigit import ALPHABET
from gate.mrz.layout import Layout, Span

# chosen by bench/mrz_confidence.py --cv-dir (each real crop read by the fold models that
# held it out, both opinions pooled, see drivers.mrz_recog.UNSURE) for the recogniser of
# 2026-12-07 evening: the smallest margin with 0 of 36 wrong lines unflagged (1 at 0.75),
# 17.8 % of right lines and no rendered page flagged; re-run it when the model changes
MIN_MARGIN = 0.8
DIGITS = range(10)
LETTERS = range(10, len(ALPHABET))  # A-Z and '<'


def _value(i: int) -> int:
    return 0 if ALPHABET[i] == "<" else i


def _allowed(kind: str) -> range:
    return DIGITS if kind == "digit" else LETTERS if kind == "alpha" else range(len(ALPHABET))


def _fields(lay: Layout) -> list[tuple[str, Span, bool]]:
    """(record field, span, protected by a check digit) for every field a decision uses;
    dates and check digits are digit-only, so their characters cannot collide."""
    optional_protected = lay.optional_check is not None or lay.composite is not None
    out = [
        ("document_code", lay.document_code, False),
        ("issuing_state", lay.issuing_state, False),
        ("name", lay.name, False),
        ("document_number", lay.document_number, True),
        ("nationality", lay.nationality, False),
        ("sex", lay.sex, False),
        ("optional_data", lay.optional, optional_protected),
    ]
    if lay.optional_2 is not None:
        out.append(("optional_data_2", lay.optional_2, lay.composite is not None))
    return out


def _kind_at(lay: Layout, span: Span, col: int) -> str:
    for s in lay.spans():
        if s.line == span.line and s.start <= col < s.end:
            return s.kind
    return span.kind


def unsure(
    lines: Sequence[str],
    probs: Sequence[Sequence[Sequence[float]]],
    lay: Layout,
    min_margin: float = MIN_MARGIN,
) -> list[tuple[str, int, int, str]]:
    """Every (field, line, column, runner-up) whose read no check digit can vouch for.

    ``lines`` are the final lines (after repair), ``probs`` the recogniser's rows for
    them, one per character in ``ALPHABET`` order (lines and rows must match in length;
    a line whose rows do not match is taken as wholly unsure).
    """
    out = []
    for field, span, protected in _fields(lay):
        for col in range(span.start, span.end):
            text, rows = lines[span.line], probs[span.line]
            if len(rows) != len(text):
                out.append((field, span.line, col, "?"))
                continue
            got = ALPHABET.find(text[col])
            allowed = _allowed(_kind_at(lay, span, col))
            row = rows[col]
            rivals = [k for k in allowed if k != got]
            if protected:  # only a runner-up the check digit cannot see is a doubt
                rivals = [k for k in rivals if _value(k) % 10 == _value(got) % 10]
            if got < 0 or not rivals:
                continue
            # the choice left open: among what the position may hold, or, under a check
            # digit, among the characters it cannot tell apart
            total = row[got] + sum(row[k] for k in rivals) or 1.0
            best = max(rivals, key=lambda k: row[k])
            if (row[got] - row[best]) / total < min_margin:
                out.append((field, span.line, col, ALPHABET[best]))
    return out


def uncertain_fields(
    lines: Sequence[str],
    probs: Sequence[Sequence[Sequence[float]]],
    lay: Layout,
    min_margin: float = MIN_MARGIN,
) -> tuple[str, ...]:
    """The record fields (``MrzRecord`` attribute names) holding an unsure character;
    the name field is split at its ``<<`` into ``surname`` and ``given_names``."""
    names: dict[str, None] = {}
    for field, _line, col, _ in unsure(lines, probs, lay, min_margin):
        if field == "name":
            name = lay.name.of(tuple(lines))
            cut = name.find("<<")
            before = cut < 0 or col - lay.name.start < cut
            field = "surname" if before else "given_names"
        names[field] = None
    return tuple(names)
