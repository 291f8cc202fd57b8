"""Traveller scenarios: what happens at the gate, and what the gate must do about it.

A scenario file (``sim/scenarios/*.yaml``) names the traveller, the script of things
that happen (document placed, walking, faults injected) and what is expected: events
with their reason codes, and door commands in order. ``needs`` lists the parts of the
virtual hardware it exercises; a scenario whose part is not available is reported as
pending, never as passed. The model is strict like the gate config: a typo in a
scenario is an error, not a silently skipped step.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PARTS = ("barrier", "mrz", "chip", "face", "mqtt", "policy", "lists", "thumb")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Identity(_Strict):
    """What the data page (and the chip's DG1) say."""

    surname: str = "TAN"
    given_names: str = "MEI LING"
    document_number: str = "A12345678"
    nationality: str = "MYS"
    issuing_state: str | None = None  # defaults to nationality
    document_code: str = "P"
    sex: Literal["F", "M", "<"] = "F"
    birth: dt.date = dt.date(1990, 5, 17)
    expiry_in_days: int = 1800  # relative to the day the scenario runs
    dg1_differs: bool = False  # the chip's DG1 carries another birth date than the page


class ChipSetup(_Strict):
    present: bool = True
    faults: list[
        Literal[
            "wrong_dg_hash",
            "bad_sod_signature",
            "expired_ds",
            "unknown_csca",
            "cloned_chip",
            "corrupted_tlv",
            "wrong_mac",
            "refuse_extended",
            "unsupported_aa_key",
            "unsupported_ca_curve",
        ]
    ] = Field(default_factory=list)
    # what EF.CardAccess offers and DG14's chip authentication key (sim/chip_pace.PROTOCOLS)
    pace_protocol: Literal[
        "ecdh-aes128", "ecdh-3des", "dh-3des", "dh-aes128", "dh-aes192", "dh-aes256"
    ] = "ecdh-aes128"
    ca_key: Literal["ecdh", "dh"] = "ecdh"


class FaceSetup(_Strict):
    """Whose face is in the chip, and what stands in front of the camera."""

    portrait: str = "london_009"  # identity folder under shared/data/faces (01.jpg)
    live: Literal["genuine", "impostor", "print_attack", "screen_attack"] = "genuine"
    impostor: str = "london_022"  # whose face stands there when live is impostor


class ListsSetup(_Strict):
    stolen: bool = False
    person_hit: bool = False
    service: Literal["up", "down", "slow"] = "up"
    pass_type: str | None = None  # registered pass (EP, PVP ...) for a foreigner
    pass_expired_days_ago: int | None = None  # the pass expired this many days ago
    entered_days_ago: int | None = None  # the central record's last entry (departure gates)
    entries_service: Literal["up", "down", "slow"] = "up"  # the central record's service


class ThumbSetup(_Strict):
    """The second biometric channel (issue 19): the chip's DG3 behind EAC terminal
    authentication, and what the traveller puts on the thumb reader. Prints are
    synthetic (``sim/fingerprints.py``): the chip holds impression 0 of the traveller's
    two thumbs, the reader sees another impression."""

    dg3: bool = False  # an EAC chip holding the traveller's thumbs (else no DG3 at all)
    refuse_ta: bool = False  # the chip refuses the gate's terminal authentication
    live: Literal["genuine", "impostor", "none", "garbage", "fault"] = "genuine"
    finger: int = Field(0, ge=0, le=200, description="whose synthetic thumbs (fingers 2n, 2n+1)")


class Traveller(_Strict):
    identity: Identity = Field(default_factory=Identity)
    chip: ChipSetup = Field(default_factory=ChipSetup)
    face: FaceSetup = Field(default_factory=FaceSetup)
    lists: ListsSetup = Field(default_factory=ListsSetup)
    thumb: ThumbSetup = Field(default_factory=ThumbSetup)


class GateSetup(_Strict):
    """The gate under test, where a scenario needs other than the shipped example."""

    biometric: Literal["face", "face_then_thumb", "both"] = "face"  # the citizens' channel
    is_certificate: Literal["valid", "expired"] = "valid"  # the gate's EAC IS certificate
    thumb_overturns_pad: bool = False  # policy thumb.overturns_pad


Step = Annotated[
    str | dict[str, Any],
    Field(description="an action name, or {action: argument}; see sim/rig.py STEPS"),
]


class ExpectedEvent(_Strict):
    type: str
    reasons: list[str] | None = None  # exact set of reason codes; None: not checked
    includes: list[str] = Field(default_factory=list)  # codes that must be among them
    # fields the event must carry, compared as a subset (nested mappings too), e.g.
    # {biometric: {decided_by: thumb}}
    fields: dict[str, Any] = Field(default_factory=dict)


class Expect(_Strict):
    events: list[ExpectedEvent] = Field(default_factory=list)
    absent: list[str] = Field(default_factory=list)  # event types that must not occur
    doors: list[str] | None = None  # door commands in order: "entry:open", "exit:close"
    final_state: str | None = None
    lost_events: Literal[0] = 0  # events published must all arrive (always 0)


class Scenario(_Strict):
    name: str
    description: str = ""
    needs: list[Literal["barrier", "mrz", "chip", "face", "mqtt", "policy", "lists", "thumb"]]
    pending: str | None = None  # a reason this scenario cannot run yet
    direction: Literal["arrival", "departure"] = "arrival"  # of the gate under test
    gate: GateSetup = Field(default_factory=GateSetup)
    traveller: Traveller = Field(default_factory=Traveller)
    steps: list[Step]
    expect: Expect
    timeout_s: float = 60.0

    @property
    def slug(self) -> str:
        return self.name.lower().replace(" ", "_").replace("/", "_")


class ScenarioError(Exception):
    """A scenario file that cannot be used; one line naming file and field."""


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ScenarioError(f"{path}: {where}: {err['msg']}") from None


SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


def all_scenarios() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.yaml"))
