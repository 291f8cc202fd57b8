"""Values that cross the seams from devices into the core.

Each device driver returns one of these; the core and the decision read only these, so
a simulated device and a real one are interchangeable. They are frozen and hold no
biometric data: portraits and live frames stay in the daemon's per-transaction vault
(``autogate/vault.py``) and never enter the core's state.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from gate.reasons import ReasonCode


@dataclass(frozen=True)
class MrzRecord:
    """A machine-readable zone, parsed (ICAO 9303 parts 3-5).

    ``valid`` is true when every check digit and field check passed; ``reasons`` lists
    every check that failed (not just the first). ``repaired`` lists OCR repairs as
    ``(line, column, read, replaced)``.
    """

    format: str  # TD1, TD2, TD3, MRV-A, MRV-B (as gate.mrz names them)
    document_code: str  # as read: P, PN, I, V, "PS" ...; SPLP etc. kept as read
    issuing_state: str
    surname: str
    given_names: str
    document_number: str
    nationality: str
    date_of_birth: dt.date | None
    sex: str  # F, M or X ('<' in the MRZ)
    date_of_expiry: dt.date | None
    optional_data: str = ""
    optional_data_2: str = ""
    lines: tuple[str, ...] = ()
    valid: bool = False
    reasons: tuple[ReasonCode, ...] = ()
    repaired: tuple[tuple[int, int, str, str], ...] = ()
    # the fields BAC/PACE derive their key from, as printed (gate.mrz.parse.mrz_information):
    birth_raw: str = ""  # YYMMDD then its check digit (7 characters)
    expiry_raw: str = ""  # YYMMDD then its check digit
    document_number_raw: str = ""  # the number with '<' fillers, then its check digit


@dataclass(frozen=True)
class DocumentResult:
    """What the document reader saw on the data page."""

    mrz: MrzRecord | None
    confidence: float = 0.0
    reasons: tuple[ReasonCode, ...] = ()
    elapsed_s: float = 0.0
    # MrzRecord fields holding a character no check digit vouches for and the reader was
    # unsure of (gate.mrz.certainty): the policy refers unless the chip's DG1 confirms them
    uncertain: tuple[str, ...] = ()


class Check(StrEnum):
    """Outcome of one security check on the chip."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_SUPPORTED = "not_supported"  # the chip does not offer it
    NOT_RUN = "not_run"


@dataclass(frozen=True)
class ChipResult:
    """What the chip reader read and verified."""

    present: bool
    access_control: str = ""  # "PACE", "BAC" or ""
    dg1: MrzRecord | None = None
    passive_auth: Check = Check.NOT_RUN
    active_auth: Check = Check.NOT_RUN
    chip_auth: Check = Check.NOT_RUN
    has_portrait: bool = False
    reasons: tuple[ReasonCode, ...] = ()
    apdus: int = 0
    elapsed_s: float = 0.0
    # EAC terminal authentication and DG3: whether the thumb channel is open for this
    # document. ``terminal_auth_reason`` says why not (refused, our IS certificate expired,
    # no chain); ``fingers`` holds the 19794-4 positions of the finger images read (the
    # images stay in the daemon's vault, like the portrait)
    terminal_auth: Check = Check.NOT_RUN
    terminal_auth_reason: ReasonCode | None = None
    fingers: tuple[int, ...] = ()


@dataclass(frozen=True)
class FaceResult:
    """Quality, presentation-attack and 1:1 match of the live face against DG2."""

    match: bool
    score: float = 0.0
    threshold: float = 0.0
    pad_score: float = 0.0  # 0 = bona fide, 1 = attack
    quality: float = 0.0
    backend: str = ""
    reasons: tuple[ReasonCode, ...] = ()
    elapsed_s: float = 0.0
    # a reject that a fresh burst could reverse (score or PAD score just on the wrong side
    # of its threshold, no frame good enough): the core may capture once more
    retryable: bool = False


@dataclass(frozen=True)
class ThumbResult:
    """The live thumb against the chip's DG3 finger images (1:1).

    ``presented`` false: no finger came to the reader in time; ``reader_fault``: the
    reader or the matcher failed. ``score`` is ``None`` when nothing was matched.
    """

    matched: bool
    score: float | None = None
    threshold: float = 0.0
    finger: str = ""  # which reference finger the capture was matched against
    detail: str = ""
    presented: bool = True
    reader_fault: bool = False
    elapsed_s: float = 0.0  # capture + match


@dataclass(frozen=True)
class PassRecord:
    """A registered pass (for example Employment Pass) found for a document."""

    pass_type: str
    valid_until: dt.date


@dataclass(frozen=True)
class ListsResult:
    """Watchlist hits and registry lookups for one document and person.

    ``unavailable`` names each required check that could not be made: the decision
    treats it as a refer, never as a clear.
    """

    hits: tuple[ReasonCode, ...] = ()
    unavailable: tuple[str, ...] = ()
    pass_record: PassRecord | None = None
    pass_checked: bool = False
    elapsed_s: float = 0.0
    details: tuple[str, ...] = field(default=())
    # the central record's last entry of this document (departure gates; overstay):
    # ``entry_checked`` false means it could not be asked, which is never "no entry"
    last_entry: dt.date | None = None
    entry_checked: bool = False
