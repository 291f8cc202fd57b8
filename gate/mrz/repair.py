"""Undo typical OCR confusions using what each MRZ position may hold and the check digits.

OCR engines confuse O/0, I/1, B/8, S/5, Z/2, G/6 and ``<``/K. A position that may only
hold digits (dates, check digits) or only letters (codes, names, sex) is repaired from its
field type alone: the mapping is one-to-one, so the repair is unique. A field that mixes
letters and digits (document number, optional data) is repaired only through its check
digit, and only when exactly one combination of the ambiguous characters satisfies it
(ICAO's 7-3-1 digit is mod 10, so a non-unique repair would be a guess). Hand-written:
no MRZ library offers check-digit-driven repair with a record of what changed.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence

from gate.mrz.checkdigit import ALPHABET, verify
from gate.mrz.layout import TD1, TD2, TD3, Layout, Span, split_number

Repair = tuple[int, int, str, str]  # (line, column, read, replaced)

TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "B": "8", "S": "5", "Z": "2"}
TO_DIGIT |= {"G": "6", "T": "7"}
# U for 0 is the commonest confusion on real print, and U weighs 30, 0 modulo 10 like 0:
# no check digit can catch it, so the field type must (A and K weigh 0 too, but no
# recogniser takes a printed 0 for them; in mixed fields gate.mrz.certainty flags such
# collisions instead of guessing)
TO_DIGIT |= {"U": "0"}
TO_ALPHA = {"0": "O", "1": "I", "8": "B", "5": "S", "2": "Z", "6": "G", "4": "A", "7": "T"}
# letter <-> digit swaps worth trying inside mixed fields, plus the filler/K confusion
SWAPS = {"O": "0", "0": "O", "I": "1", "1": "I", "B": "8", "8": "B", "S": "5", "5": "S"}
SWAPS |= {"Z": "2", "2": "Z", "G": "6", "6": "G", "K": "<", "<": "K"}
# prior odds of a digit against a letter in a mixed field (document number, optional data):
# issuers number documents mostly with digits, a letter or two at most (ICAO 9303's own
# specimens: L898902C3, D23145890, ...)
DIGIT_ODDS = 4.0
MAX_AMBIGUOUS = 10  # 2**10 candidates at most per field
# what the sex position may hold (9303-3 4.2.2.3: F, M, or X or < for unspecified), and
# the letters a recogniser takes those for when it has no probabilities to offer
SEX_CODES = "FMX<"
SEX_LOOKALIKE = {"H": "M", "N": "M", "W": "M", "E": "F", "P": "F"}
# three digits in a row in a letter field: the line is not that line of that format (a
# national card's own layout, say), however well the rest fits
_DIGIT_RUN = re.compile(r"[0-9]{3}")


def _set(lines: list[str], line: int, col: int, ch: str, log: list[Repair]) -> None:
    old = lines[line][col]
    lines[line] = lines[line][:col] + ch + lines[line][col + 1 :]
    log.append((line, col, old, ch))


def _by_kind(lines: list[str], span: Span, log: list[Repair]) -> None:
    text = span.of(lines)
    for i, c in enumerate(text):
        col = span.start + i
        if span.kind == "digit" and c in TO_DIGIT:
            _set(lines, span.line, col, TO_DIGIT[c], log)
        elif span.kind == "alpha" and c in TO_ALPHA:
            _set(lines, span.line, col, TO_ALPHA[c], log)


def _sex(
    lines: list[str],
    span: Span,
    probs: Sequence[Sequence[float]] | None,
    log: list[Repair],
) -> None:
    """A letter in the sex position that no sex code is becomes the likeliest code (by the
    recogniser's probabilities when given, else ``SEX_LOOKALIKE``): an A or an H there is
    a misread F or M, never data. No check digit covers sex, so the read stays uncertain
    (``gate.mrz.certainty`` rates it against every letter) and the policy asks the chip."""
    c = span.of(lines)
    if len(c) != 1 or c in SEX_CODES:
        return
    if probs is not None:
        row = probs[span.start]
        best = max(SEX_CODES, key=lambda k: row[ALPHABET.index(k)])
        if row[ALPHABET.index(best)] > 0:
            _set(lines, span.line, span.start, best, log)
            return
    if c in SEX_LOOKALIKE:
        _set(lines, span.line, span.start, SEX_LOOKALIKE[c], log)


def _filler_k(lines: list[str], span: Span, log: list[Repair]) -> None:
    """A K in the name's trailing padding is a misread ``<``.

    Only after three or more fillers: ``<`` and ``<<`` separate name parts, so a K right
    after them may be a one-letter name (``SMITH<<K``) and is left alone.
    """
    for i in range(span.end - span.start):
        text = span.of(lines)
        if text[i] == "K" and text[max(0, i - 3) : i] == "<<<" and set(text[i:]) <= {"<", "K"}:
            _set(lines, span.line, span.start + i, "<", log)


def _unique(
    lines: list[str],
    spans: list[Span],
    ok: Callable[[list[str]], bool],
    log: list[Repair],
) -> None:
    """Try letter/digit swaps over ``spans``; apply them only if exactly one combination passes."""
    if ok(lines):
        return
    positions = [
        (s.line, s.start + i)
        for s in spans
        for i, c in enumerate(s.of(lines))
        if c in SWAPS and s.kind == "alnum"
    ]
    if not positions or len(positions) > MAX_AMBIGUOUS:
        return
    found: list[list[str]] = []
    for mask in itertools.product((False, True), repeat=len(positions)):
        if not any(mask):
            continue
        cand = list(lines)
        for (ln, col), flip in zip(positions, mask, strict=True):
            if flip:
                cand[ln] = cand[ln][:col] + SWAPS[cand[ln][col]] + cand[ln][col + 1 :]
        if ok(cand):
            found.append(cand)
            if len(found) > 1:
                return
    if len(found) == 1:
        for ln, col in positions:
            if found[0][ln][col] != lines[ln][col]:
                _set(lines, ln, col, found[0][ln][col], log)


def repair(lines: list[str] | tuple[str, ...], lay: Layout) -> tuple[list[str], list[Repair]]:
    """Repaired copy of ``lines`` (already of ``lay``'s shape) and the list of repairs made."""
    out, log = list(lines), list[Repair]()
    for span in lay.spans():
        if span.kind != "alnum":
            _by_kind(out, span, log)
    _sex(out, lay.sex, None, log)
    _filler_k(out, lay.name, log)

    def number_ok(c: list[str]) -> bool:
        p = split_number(c, lay)
        return verify(p.number, p.check)

    if not split_number(out, lay).overflowed:
        _unique(out, [lay.document_number], number_ok, log)
    if lay.optional_check is not None:
        oc = lay.optional_check

        def optional_ok(c: list[str]) -> bool:
            return verify(lay.optional.of(c), oc.of(c), empty_filler_ok=True)

        _unique(out, [lay.optional], optional_ok, log)
    if lay.composite is not None:
        comp = lay.composite

        def composite_ok(c: list[str]) -> bool:
            return verify("".join(s.of(c) for s in lay.composite_over), comp.of(c))

        # fields no other digit covers: TD1/TD2 optional data
        free = [lay.optional] if lay.optional_check is None else []
        free += [lay.optional_2] if lay.optional_2 else []
        if free and number_ok(out):
            _unique(out, free, composite_ok, log)
    return out, log


def _digit_odds(
    lines: list[str],
    span: Span,
    probs: Sequence[Sequence[float]],
    proven: list[int],
    log: list[Repair],
) -> None:
    """In a field that may hold letters and digits, a letter read where the recogniser
    also saw a fair chance of a digit becomes that digit: such fields hold mostly digits,
    so a posterior of the glyph alone undervalues them (``DIGIT_ODDS``).

    What is a fair chance depends on the typeface: ``proven`` are this line's digit-only
    positions, whose glyphs the layout proves to be digits. When the recogniser found one
    of them about as much a letter ``c`` as the digit ``d`` (a wide zero read as O), a
    glyph of the mixed field no more ``c``-like than that is taken for ``d`` too.
    """
    text = lines[span.line]
    for i, c in enumerate(span.of(lines)):
        if not c.isalpha():
            continue
        row = probs[span.start + i]
        d = max(range(10), key=lambda k: row[k])
        ci = ALPHABET.index(c)
        seen = [_log_odds(probs[j], ci, d) for j in proven if text[j] == ALPHABET[d]]
        if _log_odds(row, ci, d) < math.log(DIGIT_ODDS) + max([0.0, *seen]):
            _set(lines, span.line, span.start + i, ALPHABET[d], log)


def lean_to_digits(
    lines: Sequence[str], probs: Sequence[Sequence[Sequence[float]]], lay: Layout
) -> tuple[list[str], list[Repair]]:
    """A page's mixed fields under a check digit, leaned to digits where the check cannot
    choose: a letter whose value equals a digit's modulo 10 (U, A, K and 0; L, B, V and
    1; G, Q and 6; ...) satisfies every check digit exactly as that digit does, so only
    the recogniser and the prior can decide; issuers number mostly with digits
    (``DIGIT_ODDS``), so the digit is taken when the recogniser gave it at least
    1/``DIGIT_ODDS`` of the letter's probability. Every check keeps its outcome.
    ``probs``: one row per character of each line, in ``ALPHABET`` order."""
    out, log = list(lines), list[Repair]()
    spans = [lay.document_number]
    if lay.optional_check is not None or lay.composite is not None:
        spans += [lay.optional] + ([lay.optional_2] if lay.optional_2 else [])
    for span in spans:
        rows = probs[span.line]
        if len(rows) != len(out[span.line]):
            continue
        for i, c in enumerate(span.of(out)):
            if not ("A" <= c <= "Z"):
                continue
            col = span.start + i
            digit = ALPHABET.index(c) % 10
            if rows[col][digit] * DIGIT_ODDS >= rows[col][ALPHABET.index(c)]:
                _set(out, span.line, col, str(digit), log)
    return out, log


def _mixed(lay: Layout) -> list[Span]:
    """The fields that hold mostly digits among letters (not the code's 2nd character,
    which issuers fill with a letter far more often)."""
    return [s for s in (lay.document_number, lay.optional, lay.optional_2) if s is not None]


def _best_of_kind(
    lines: list[str],
    span: Span,
    probs: Sequence[Sequence[float]],
    log: list[Repair],
    filler_ok: bool = True,
) -> None:
    """What the type table cannot map (a W where only a digit may stand): the recogniser's
    most probable character of the allowed kind. A filler is allowed (unknown dates, an
    empty field's check digit, the TD1/TD2 long-number marker) unless ``filler_ok`` is
    false: the check digits of dates and TD1's composite are always digits."""
    allowed = range(10) if span.kind == "digit" else range(10, len(ALPHABET))
    for i, c in enumerate(span.of(lines)):
        if (c == "<" and filler_ok) or (c.isdigit() if span.kind == "digit" else c.isalpha()):
            continue
        row = probs[span.start + i]
        _set(lines, span.line, span.start + i, ALPHABET[max(allowed, key=lambda k: row[k])], log)


def _log_odds(row: Sequence[float], a: int, b: int) -> float:
    return math.log(row[a] + 1e-6) - math.log(row[b] + 1e-6)


def _fit(c: str, kind: str) -> float:
    """How well a character read fits a digit-only or letter-only position: 1 when it is of
    that kind; a letter the recogniser often reads for a digit (O for 0, D for 0) counts
    half in a digit position. Only that way round: a recogniser trained on OCR-B's narrow
    zero reads the wide zeros of other fonts as O, while letters are seldom read as digits,
    and a line with digits in its letter positions is likelier another line."""
    if kind == "digit":
        return 1.0 if c.isdigit() else 0.5 if c in TO_DIGIT else 0.0
    return 1.0 if c.isalpha() or c == "<" else 0.0


def repair_line(
    text: str, probs: Sequence[Sequence[float]] | None = None
) -> tuple[str, list[Repair]]:
    """Type repair for one MRZ line read alone (a line crop, no page around it).

    Which line of which format it is comes from its length and from how well its
    digit-only and letter-only positions fit each candidate (at least 80 %, see ``_fit``);
    those positions are repaired, as on a page. A line that fits no candidate is left as
    read. ``probs`` (one row of class probabilities in ``ALPHABET`` order per character,
    as the recogniser gives them) lets mixed fields lean to digits (``_digit_odds``) and,
    when a check digit on the line still fails, tries the page reader's second-choice
    repair on that line's checks (``_second_choice``).
    """
    guess = _which_line(text)
    if guess is None:
        return text, []
    lay, li = guess
    rows = probs if probs is not None and len(probs) == len(text) else None
    fixed, log = _fix_line(text, lay, li, rows)
    if rows is not None and _line_checks(fixed, lay, li) is False:
        fixed, log = _second_choice(text, lay, li, rows) or (fixed, log)
    return fixed, log


def _which_line(text: str) -> tuple[Layout, int] | None:
    """Which line of which format ``text`` is: by its length, and by how well its
    digit-only and letter-only positions fit each candidate (at least 80 %, see ``_fit``)."""
    fits: list[tuple[bool, float, Layout, int]] = []
    for lay in (TD1, TD2, TD3):
        if len(text) != lay.width:
            continue
        lines = [text] * lay.lines
        for li in range(lay.lines):
            spans = [s for s in lay.spans() if s.line == li and s.kind != "alnum"]
            total = sum(s.end - s.start for s in spans)
            fit = sum(_fit(c, s.kind) for s in spans for c in s.of(lines))
            score = fit / total if total else 0.0
            if any(_DIGIT_RUN.search(s.of(lines)) for s in spans if s.kind == "alpha"):
                score = 0.0  # digits printed as data, not letters misread (see _fit)
            if score >= 0.8:
                fits.append((_plausible(text, lay, li), score, lay, li))
    # a reading whose check digit fails on a document number no issuer prints (a filler
    # inside it) gives way to another: a name line read with a 0 at column 14 fits TD1's
    # first line by its one digit position (ESPAN0LA<ESPAN0LA<<CARMEN, a Spanish card),
    # as a number line its check fails and its number would be 0LA<ESPAN
    if not fits:
        return None
    _, _, lay, li = max(fits, key=lambda f: (f[0], f[1]))
    return lay, li


_INNER_FILLER = re.compile(r"<[^<]")


def _plausible(text: str, lay: Layout, li: int) -> bool:
    """False for a reading as line ``li`` of ``lay`` whose checks fail and whose document
    number has a filler inside it: fillers only pad a number at its end (9303-3 4.2.2)."""
    number = lay.document_number
    if number.line != li or _line_checks(text, lay, li) is not False:
        return True
    return not _INNER_FILLER.search(text[number.start : number.end])


def line_checks(text: str) -> bool | None:
    """Whether the check digits of a line read alone hold, as ``repair_line`` repairs it
    (``None``: no MRZ line shape, or a line without check digits, such as a name line)."""
    guess = _which_line(text)
    if guess is None:
        return None
    return _line_checks(text, *guess)


def _fix_line(
    text: str, lay: Layout, li: int, probs: Sequence[Sequence[float]] | None
) -> tuple[str, list[Repair]]:
    lines, log = [text] * lay.lines, list[Repair]()
    for span in lay.spans():
        if span.line == li and span.kind != "alnum":
            _by_kind(lines, span, log)
    if lay.name.line == li:
        _filler_k(lines, lay.name, log)
    if lay.sex.line == li:
        _sex(lines, lay.sex, probs, log)
    if probs is not None:
        # dates' check digits are digits always; so is TD1's composite, while a line of 36
        # or 44 read alone may be a visa's (MRV-B/-A), whose optional data runs to the end
        never_filler: list[Span | None] = [lay.birth_check, lay.expiry_check]
        never_filler += [lay.composite] if lay is TD1 else []
        for span in lay.spans():
            if span.line == li and span.kind != "alnum":
                _best_of_kind(lines, span, probs, log, span not in never_filler)
        proven = [
            col
            for span in lay.spans()
            if span.line == li and span.kind == "digit"
            for col in range(span.start, span.end)
        ]
        for span in _mixed(lay):
            if span.line == li:
                _digit_odds(lines, span, probs, proven, log)
    return lines[li], [(0, col, old, new) for _, col, old, new in log]


def _line_checks(text: str, lay: Layout, li: int) -> bool | None:
    """Whether every check digit whose data and digit lie on line ``li`` holds; ``None``
    when the line carries none (a name line)."""
    lines = [text] * lay.lines
    results = []
    for data, digit in lay.checks():
        spans = (*data, digit)
        if any(s.line != li for s in spans):
            continue
        if digit == lay.number_check and lay.overflow:
            if lay.optional.line != li:
                continue
            parts = split_number(lines, lay)
            results.append(verify(parts.number, parts.check))
            continue
        results.append(
            verify(
                "".join(s.of(lines) for s in data),
                digit.of(lines),
                empty_filler_ok=digit == lay.optional_check,
            )
        )
    return all(results) if results else None


MAX_UNSURE = 6  # second choices tried at the least certain positions (as on a page)
SECOND_MIN = 0.1  # a second choice below this probability is not a candidate


def _second_choice(
    text: str, lay: Layout, li: int, probs: Sequence[Sequence[float]]
) -> tuple[str, list[Repair]] | None:
    """The page reader's second-choice repair, on the checks of one line: the runner-up
    at one of the least certain positions, kept only if it alone makes the line's check
    digits hold."""
    unsure = []
    for col, row in enumerate(probs):
        order = sorted(range(len(row)), key=lambda k: -row[k])
        p1, p2 = row[order[0]], row[order[1]]
        if p2 >= SECOND_MIN:
            unsure.append((p1 - p2, col, ALPHABET[order[1]]))
    found: dict[str, tuple[str, list[Repair]]] = {}
    for _, col, ch in sorted(unsure)[:MAX_UNSURE]:
        fixed, log = _fix_line(text[:col] + ch + text[col + 1 :], lay, li, probs)
        if _line_checks(fixed, lay, li):
            found[fixed] = (fixed, [(0, col, text[col], ch), *log])
    return next(iter(found.values())) if len(found) == 1 else None
