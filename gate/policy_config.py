"""The site's eligibility policy: a strict pydantic model loaded from its own YAML file.

The gate config (``gate/config.py``) only says where the policy file is; the rules are a
separate file because they belong to the border authority, not to the gate's engineers,
and change on a different schedule. The file is validated like the gate config:
unknown keys, contradictory rules and bad country codes are refused at start with one
``ConfigError`` line naming the file and the field.

Country codes are ICAO Doc 9303 part 3 three-letter codes: ISO 3166-1 alpha-3 (from
``pycountry``) plus ICAO's own codes (``D`` for Germany, British nationality classes,
organisations such as ``EUE``/``UNO``, and ``XXA``/``XXB``/``XXC``/``XXX`` for stateless
persons, refugees and unspecified nationality). ``<`` fillers are ignored, so ``D<<``
and ``D`` are the same code. Document codes are kept as read on the MRZ (``P``, ``PP``,
``PD`` ...; a ``<`` filler in the second place is dropped).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Literal

import pycountry
from pydantic import AfterValidator, Field, ValidationError, model_validator

from gate.config import (
    ConfigError,
    GateConfig,
    Strict,
    load_yaml_mapping,
    read_text,
    validation_error,
)
from gate.resources import resolve

Direction = Literal["arrival", "departure"]
# Which biometric channel decides for a category (issue 19): the face alone; the face,
# then the thumb against DG3 before referring a traveller whose face failed or was
# borderline; or face and thumb, both of which must match.
Biometric = Literal["face", "face_then_thumb", "both"]

# ICAO Doc 9303 part 3, section 5: codes that are not ISO 3166-1 alpha-3 country codes.
ICAO_EXTRA_CODES: dict[str, str] = {
    "D": "Germany",
    "GBD": "British Overseas Territories Citizen",
    "GBN": "British National (Overseas)",
    "GBO": "British Overseas Citizen",
    "GBP": "British Protected Person",
    "GBS": "British Subject",
    "RKS": "Kosovo",
    "EUE": "European Union",
    "UNO": "United Nations Organization",
    "UNA": "United Nations specialized agency",
    "UNK": "Resident of Kosovo (UNMIK travel document)",
    "XBA": "African Development Bank",
    "XIM": "African Export-Import Bank",
    "XCC": "Caribbean Community",
    "XCE": "Council of Europe",
    "XCO": "Common Market for Eastern and Southern Africa",
    "XEC": "Economic Community of West African States",
    "XES": "Organisation of Eastern Caribbean States",
    "XMP": "Parliamentary Assembly of the Mediterranean",
    "XOM": "Sovereign Military Order of Malta",
    "XPO": "International Criminal Police Organization (INTERPOL)",
    "XDC": "Southern African Development Community",
    "XXA": "Stateless person",
    "XXB": "Refugee (1951 Convention)",
    "XXC": "Refugee (other)",
    "XXX": "Unspecified nationality",
}
# Codes that name an organisation or a status, never a state whose citizens a gate serves.
NON_STATE_CODES = frozenset(c for c in ICAO_EXTRA_CODES if c.startswith(("EU", "UN", "X")))


@functools.cache
def iso_alpha3() -> frozenset[str]:
    """ISO 3166-1 alpha-3 codes, read from pycountry's database on first use."""
    return frozenset(c.alpha_3 for c in pycountry.countries)


def norm_code(code: str) -> str:
    """A three-letter code without ``<`` fillers (``D<<`` -> ``D``), as the policy compares."""
    return code.replace("<", "").strip().upper()


def is_icao_code(code: str) -> bool:
    return norm_code(code) in iso_alpha3() or norm_code(code) in ICAO_EXTRA_CODES


def _icao_code(value: str) -> str:
    code = norm_code(value)
    if value != value.strip().upper() or not (code in iso_alpha3() or code in ICAO_EXTRA_CODES):
        raise ValueError(f"{value!r} is not an ICAO 9303 country code")
    return code


def _state_code(value: str) -> str:
    code = _icao_code(value)
    if code in NON_STATE_CODES:
        raise ValueError(f"{value!r} is an organisation or status code, not a state")
    return code


def _document_code(value: str) -> str:
    code = value[:1] + value[1:].replace("<", "")
    if not (1 <= len(code) <= 2 and code.isalnum() and code.isupper() and code[0].isalpha()):
        raise ValueError(f"{value!r} is not an MRZ document code (1-2 capitals, e.g. P, PD)")
    if code[0] not in "PIACV":
        raise ValueError(f"{value!r}: an MRZ document code starts with P, I, A, C or V")
    return code


CountryCode = Annotated[str, AfterValidator(_icao_code)]
StateCode = Annotated[str, AfterValidator(_state_code)]
DocumentCode = Annotated[str, AfterValidator(_document_code)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]


class Category(Strict):
    """One kind of traveller the gate serves. The first category that fits is used."""

    name: Name
    kind: Literal["citizen", "foreign_national", "pass_holder"] = Field(
        description="citizen: nationality is the policy's state; foreign_national: a listed"
        " nationality; pass_holder: a registered pass of a listed type, valid today"
    )
    nationalities: tuple[CountryCode, ...] = Field(
        (),
        description="foreign_national: required; pass_holder: empty = any foreign nationality",
    )
    pass_types: tuple[Name, ...] = Field((), description="pass_holder only, e.g. EP")
    directions: tuple[Direction, ...] = ("arrival", "departure")
    stay_days: int | None = Field(
        None, ge=1, le=36500, description="permitted stay from entry (overstay at departure)"
    )
    biometric: Biometric = Field(
        "face",
        description="face: the face decides; face_then_thumb: a thumb against DG3 before"
        " referring a failed face; both: face and thumb must match. Where the chip gives"
        " no fingerprint (no DG3, terminal authentication refused) the face rule decides",
    )


class DocumentRule(Strict):
    """A kind of document accepted at the gate, recognised by its MRZ code and issuer."""

    name: Name
    codes: tuple[DocumentCode, ...] = Field(min_length=1, description="MRZ codes as read")
    issuing_states: tuple[CountryCode, ...] = Field((), description="empty = any issuer")
    chip_required: bool | None = Field(
        None, description="overrides chip.required for this document kind"
    )


class AgeRule(Strict):
    min: int = Field(12, ge=0, le=150, description="youngest traveller served, in years")
    max: int | None = Field(None, ge=0, le=150, description="oldest, when set")


class ChipRule(Strict):
    required: bool = Field(True, description="refer a document whose chip cannot be read")
    require_clone_check: bool = Field(
        False, description="active or chip authentication must have passed (not only PA)"
    )


class ListsRule(Strict):
    required: bool = Field(True, description="no watchlist answer at all refers the traveller")


class StayRule(Strict):
    """Overstay at departure: the stay since the central record's last entry."""

    check: bool = Field(False, description="departure gates ask the entry record")
    default_days: int | None = Field(
        None, ge=1, le=36500, description="for foreign categories without stay_days"
    )


class FaceRule(Strict):
    min_score: float | None = Field(
        None, ge=0, le=1, description="site threshold on top of the verifier's calibrated one"
    )
    max_pad_score: float | None = Field(
        None,
        ge=0,
        le=1,
        description="site limit on top of the PAD model's calibrated threshold (null: the model's)",
    )
    min_quality: float = Field(0.0, ge=0, le=1)


class ThumbRule(Strict):
    min_score: float | None = Field(
        None, ge=0, description="site threshold on top of the matcher's calibrated one"
    )
    overturns_pad: bool = Field(
        False,
        description="face_then_thumb: a matching thumb also overturns a face the PAD model"
        " flagged (bona fide stills it wrongly flags are most genuine referrals); off: a"
        " suspected presentation attack always goes to an officer",
    )


def _default_categories() -> tuple[Category, ...]:
    return (Category(name="citizen", kind="citizen"),)


def _default_documents() -> tuple[DocumentRule, ...]:
    return (DocumentRule(name="passport", codes=("P", "PP", "PD", "PO", "PS")),)


class Policy(Strict):
    """Who may use the gate. ``gate/policy.py`` applies it; this only says what it is.

    Immutable and hashable (tuples, frozen), so the state machine may hold it in its state.
    """

    version: Literal[1] = 1
    state: StateCode = Field("MYS", description="the state running the gate: its citizens")
    direction: Direction = Field(
        "arrival", description="direction of the gate; must match gate.direction"
    )
    categories: tuple[Category, ...] = Field(default_factory=_default_categories)
    age: AgeRule = Field(default_factory=AgeRule)
    documents: tuple[DocumentRule, ...] = Field(default_factory=_default_documents)
    min_validity_days: int = Field(1, ge=0, le=3650, description="days left before expiry")
    min_ocr_confidence: float = Field(0.0, ge=0, le=1)
    chip: ChipRule = Field(default_factory=ChipRule)
    lists: ListsRule = Field(default_factory=ListsRule)
    face: FaceRule = Field(default_factory=FaceRule)
    thumb: ThumbRule = Field(default_factory=ThumbRule)
    stay: StayRule = Field(default_factory=StayRule)

    @model_validator(mode="after")
    def _verify(self) -> Policy:
        verify_age(self)
        verify_categories(self)
        verify_documents(self)
        return self


# --- cross-field rules (each message names its field: the error has no location) ------


def verify_age(p: Policy) -> None:
    if p.age.max is not None and p.age.min > p.age.max:
        raise ValueError(f"age: min ({p.age.min}) is above max ({p.age.max})")


def verify_categories(p: Policy) -> None:
    if not p.categories:
        raise ValueError("categories: empty, nobody could use the gate")
    seen: set[str] = set()
    for i, c in enumerate(p.categories):
        where = f"categories.{i} ({c.name})"
        if c.name in seen:
            raise ValueError(f"{where}: duplicate category name")
        seen.add(c.name)
        if not c.directions:
            raise ValueError(f"{where}: directions is empty")
        if c.kind == "citizen" and c.nationalities:
            raise ValueError(f"{where}: citizens are of `state` ({p.state}); drop nationalities")
        if c.kind == "citizen" and c.stay_days is not None:
            raise ValueError(f"{where}: a citizen's stay is not limited; drop stay_days")
        if c.kind != "pass_holder" and c.pass_types:
            raise ValueError(f"{where}: pass_types only apply to kind pass_holder")
        if c.kind == "foreign_national" and not c.nationalities:
            raise ValueError(f"{where}: a foreign_national category needs nationalities")
        if c.kind == "pass_holder" and not c.pass_types:
            raise ValueError(f"{where}: a pass_holder category needs pass_types")
        if c.kind != "citizen" and p.state in c.nationalities:
            raise ValueError(f"{where}: {p.state} is the gate's own state, not foreign")
    if not any(p.direction in c.directions for c in p.categories):
        raise ValueError(f"categories: no category may use the gate on {p.direction}")


def verify_documents(p: Policy) -> None:
    if not p.documents:
        raise ValueError("documents: empty, no document would be accepted")
    names = [d.name for d in p.documents]
    if len(set(names)) != len(names):
        raise ValueError("documents: duplicate document rule names")


# --- loading ---------------------------------------------------------------------------


def load_policy(path: str | Path, gate_direction: Direction | None = None) -> Policy:
    """Load and validate a policy file; any problem is a one-line ``ConfigError``.

    With ``gate_direction``, a file that states a direction must agree with it and a
    file that does not state one takes it.
    """
    return parse_policy(read_text(resolve(path)), Path(path), gate_direction)


def parse_policy(
    text: str, path: str | Path = "<policy>", gate_direction: Direction | None = None
) -> Policy:
    data = load_yaml_mapping(text, path)
    if gate_direction is not None:
        stated = data.setdefault("direction", gate_direction)
        if stated != gate_direction:
            raise ConfigError(
                f"{path}: direction: {stated} but the gate is {gate_direction} (gate.direction)"
            )
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise validation_error(path, exc) from None


def policy_for(cfg: GateConfig) -> Policy:
    """The policy a gate runs with: its policy file, or the default, for its direction.

    Call at start (``autogate run`` and ``check-config``): a bad file is a ``ConfigError``.
    """
    if cfg.policy.file is None:
        return Policy(direction=cfg.gate.direction)
    return load_policy(cfg.policy.file, cfg.gate.direction)
