"""Where each field sits in each MRZ format (ICAO 9303 parts 4, 5, 6 and 7).

One table per format, so the parser, the builder and the OCR repair read the same
positions. A ``Span`` is (line, start, end) with ``end`` exclusive; ``kind`` says which
characters the field may hold, which is what OCR repair uses to undo O/0-type confusions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["alpha", "digit", "alnum"]


@dataclass(frozen=True)
class Span:
    line: int
    start: int
    end: int
    kind: Kind = "alnum"

    def of(self, lines: list[str] | tuple[str, ...]) -> str:
        return lines[self.line][self.start : self.end]


@dataclass(frozen=True)
class Layout:
    format: str
    lines: int
    width: int
    document_code: Span
    issuing_state: Span
    name: Span
    document_number: Span
    number_check: Span
    nationality: Span
    birth: Span
    birth_check: Span
    sex: Span
    expiry: Span
    expiry_check: Span
    optional: Span
    optional_check: Span | None = None
    optional_2: Span | None = None
    composite: Span | None = None
    composite_over: tuple[Span, ...] = ()
    # TD1/TD2: a document number longer than 9 characters puts '<' in the check position
    # and continues in the optional field, followed by its check digit (9303-5 4.2.4).
    overflow: bool = False
    # what the code's 2nd character may be: a letter or filler on passports and visas
    # (9303-4 4.2.2, 9303-7), anything the issuer chooses on TD1/TD2 cards (9303-5/-6:
    # US permanent-resident cards print C1)
    code_extra: Kind = "alpha"

    def code_spans(self) -> tuple[Span, Span]:
        """The document code's two characters apart: the first is always a letter."""
        c = self.document_code
        return Span(c.line, c.start, c.start + 1, "alpha"), Span(
            c.line, c.start + 1, c.end, self.code_extra
        )

    def spans(self) -> list[Span]:
        """Every field, each once (for repair and the OCR's per-column alphabet)."""
        out = [
            *self.code_spans(),
            self.issuing_state,
            self.name,
            self.document_number,
            self.number_check,
            self.nationality,
            self.birth,
            self.birth_check,
            self.sex,
            self.expiry,
            self.expiry_check,
            self.optional,
        ]
        out += [s for s in (self.optional_check, self.optional_2, self.composite) if s]
        return out

    def checks(self) -> list[tuple[tuple[Span, ...], Span]]:
        """Each check digit with the spans it covers (the document number's ignores the
        TD1/TD2 overflow, which ``split_number`` handles)."""
        out: list[tuple[tuple[Span, ...], Span]] = [
            ((self.document_number,), self.number_check),
            ((self.birth,), self.birth_check),
            ((self.expiry,), self.expiry_check),
        ]
        if self.optional_check is not None:
            out.append(((self.optional,), self.optional_check))
        if self.composite is not None:
            out.append((self.composite_over, self.composite))
        return out


def _two_line(fmt: str, width: int, *, opt_end: int, opt_check: bool, composite: bool) -> Layout:
    last = width - 1
    return Layout(
        format=fmt,
        lines=2,
        width=width,
        document_code=Span(0, 0, 2, "alpha"),
        issuing_state=Span(0, 2, 5, "alpha"),
        name=Span(0, 5, width, "alpha"),
        document_number=Span(1, 0, 9),
        number_check=Span(1, 9, 10, "digit"),
        nationality=Span(1, 10, 13, "alpha"),
        birth=Span(1, 13, 19, "digit"),
        birth_check=Span(1, 19, 20, "digit"),
        sex=Span(1, 20, 21, "alpha"),
        expiry=Span(1, 21, 27, "digit"),
        expiry_check=Span(1, 27, 28, "digit"),
        optional=Span(1, 28, opt_end),
        optional_check=Span(1, opt_end, opt_end + 1, "digit") if opt_check else None,
        composite=Span(1, last, width, "digit") if composite else None,
        composite_over=(Span(1, 0, 10), Span(1, 13, 20), Span(1, 21, last)) if composite else (),
        overflow=fmt == "TD2",
        code_extra="alnum" if fmt == "TD2" else "alpha",
    )


TD3 = _two_line("TD3", 44, opt_end=42, opt_check=True, composite=True)
MRVA = _two_line("MRV-A", 44, opt_end=44, opt_check=False, composite=False)
TD2 = _two_line("TD2", 36, opt_end=35, opt_check=False, composite=True)
MRVB = _two_line("MRV-B", 36, opt_end=36, opt_check=False, composite=False)
TD1 = Layout(
    format="TD1",
    lines=3,
    width=30,
    document_code=Span(0, 0, 2, "alpha"),
    issuing_state=Span(0, 2, 5, "alpha"),
    document_number=Span(0, 5, 14),
    number_check=Span(0, 14, 15, "digit"),
    optional=Span(0, 15, 30),
    birth=Span(1, 0, 6, "digit"),
    birth_check=Span(1, 6, 7, "digit"),
    sex=Span(1, 7, 8, "alpha"),
    expiry=Span(1, 8, 14, "digit"),
    expiry_check=Span(1, 14, 15, "digit"),
    nationality=Span(1, 15, 18, "alpha"),
    optional_2=Span(1, 18, 29),
    composite=Span(1, 29, 30, "digit"),
    composite_over=(Span(0, 5, 30), Span(1, 0, 7), Span(1, 8, 15), Span(1, 18, 29)),
    name=Span(2, 0, 30, "alpha"),
    overflow=True,
    code_extra="alnum",
)

LAYOUTS = {lay.format: lay for lay in (TD1, TD2, TD3, MRVA, MRVB)}


def detect(lines: list[str] | tuple[str, ...]) -> Layout | None:
    """The format from the shape of the lines (and ``V`` for visas), or None."""
    n, widths = len(lines), {len(x) for x in lines}
    if len(widths) != 1:
        return None
    (w,) = widths
    visa = lines[0][:1] == "V"
    if n == 3 and w == 30:
        return TD1
    if n == 2 and w == 44:
        return MRVA if visa else TD3
    if n == 2 and w == 36:
        return MRVB if visa else TD2
    return None


@dataclass(frozen=True)
class NumberParts:
    """The document number as printed, its check digit, and the optional data left over."""

    number: str  # 9 characters with '<' fillers, or longer for an overflowed number
    check: str
    optional: str  # the optional field without the overflow part
    overflowed: bool


def split_number(lines: list[str] | tuple[str, ...], lay: Layout) -> NumberParts:
    """Undo the TD1/TD2 long-number convention (ICAO 9303-5 4.2.4, note j).

    When the check position holds ``<``, the number continues in the optional field up to
    the first filler; the last character before that filler is the check digit.
    """
    number, check, optional = (
        lay.document_number.of(lines),
        lay.number_check.of(lines),
        lay.optional.of(lines),
    )
    if lay.overflow and check == "<" and optional[:1] not in ("", "<"):
        rest = optional.split("<", 1)
        cont = rest[0]
        left = rest[1] if len(rest) > 1 else ""
        return NumberParts(number + cont[:-1], cont[-1], left, True)
    return NumberParts(number, check, optional, False)
