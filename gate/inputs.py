"""Inputs to the core: past-tense facts from devices, officers and the clock.

Frozen values (h11 style). Devices never change core state directly; the daemon turns
what they report into one of these and calls ``gate.machine.step``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gate.results import ChipResult, DocumentResult, FaceResult, ListsResult, ThumbResult


class Door(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"


class Command(StrEnum):
    """Officer commands (console -> gate, signed; see the MQTT issue)."""

    RELEASE = "release"  # let the referred traveller through the exit
    SEND_BACK = "send_back"  # let the referred traveller out through the entry
    OUT_OF_SERVICE = "out_of_service"
    IN_SERVICE = "in_service"
    RESET_ALARM = "reset_alarm"


@dataclass(frozen=True)
class Started:
    """The daemon started. ``interrupted_txn`` is a crossing its journal left open."""

    interrupted_txn: str | None = None


@dataclass(frozen=True)
class Tick:
    """Clock tick; the core enforces state timeouts on it."""


@dataclass(frozen=True)
class DocumentPlaced:
    pass


@dataclass(frozen=True)
class DocumentRemoved:
    pass


@dataclass(frozen=True)
class DocumentRead:
    txn_id: str
    result: DocumentResult


@dataclass(frozen=True)
class ChipRead:
    txn_id: str
    result: ChipResult


@dataclass(frozen=True)
class ListsChecked:
    txn_id: str
    result: ListsResult


@dataclass(frozen=True)
class FaceVerified:
    txn_id: str
    result: FaceResult


@dataclass(frozen=True)
class ThumbVerified:
    txn_id: str
    result: ThumbResult


@dataclass(frozen=True)
class DoorChanged:
    """A door's position sensor changed (closed and locked, or not)."""

    door: Door
    closed: bool


@dataclass(frozen=True)
class PresenceChanged:
    """People counted in the mantrap by the controller's beams (0, 1, 2 ...)."""

    count: int


@dataclass(frozen=True)
class EmergencyChanged:
    """Fire-alarm / emergency release input."""

    active: bool


@dataclass(frozen=True)
class TamperChanged:
    active: bool


@dataclass(frozen=True)
class DoorFault:
    """A commanded door did not reach its position within the confirmation timeout."""

    door: Door
    detail: str = ""


@dataclass(frozen=True)
class DeviceFault:
    """A device failed (camera frozen, reader gone, ...). ``device`` names its seam."""

    device: str
    detail: str = ""


@dataclass(frozen=True)
class LinkLost:
    """A device link went down (serial link to the barrier controller, ...)."""

    device: str
    detail: str = ""


@dataclass(frozen=True)
class LinkRestored:
    device: str


@dataclass(frozen=True)
class OfficerCommand:
    """An authenticated officer command (signature and replay already checked)."""

    command: Command
    officer: str = ""
    command_id: str = ""
    txn_id: str | None = None  # the referral a release/send_back decides (signed with it)
    alarm_id: str | None = None  # the alarm a reset_alarm resets (signed with it)


Input = (
    Started
    | Tick
    | DocumentPlaced
    | DocumentRemoved
    | DocumentRead
    | ChipRead
    | ListsChecked
    | FaceVerified
    | ThumbVerified
    | DoorChanged
    | PresenceChanged
    | EmergencyChanged
    | TamperChanged
    | DoorFault
    | DeviceFault
    | LinkLost
    | LinkRestored
    | OfficerCommand
)
