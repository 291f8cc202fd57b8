"""Actions the core asks the daemon to perform: imperatives, frozen values."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gate.inputs import Command, Door
from gate.reasons import ReasonCode
from gate.results import MrzRecord


@dataclass(frozen=True)
class OpenDoor:
    door: Door


@dataclass(frozen=True)
class CloseDoor:
    door: Door


@dataclass(frozen=True)
class ReadDocument:
    txn_id: str


@dataclass(frozen=True)
class ReadChip:
    """Read the chip; the MRZ gives the BAC/PACE key and the fields to cross-check."""

    txn_id: str
    mrz: MrzRecord


@dataclass(frozen=True)
class CheckLists:
    txn_id: str
    mrz: MrzRecord


@dataclass(frozen=True)
class CaptureFace:
    """Capture a burst and verify it against the chip portrait of ``txn_id``."""

    txn_id: str


@dataclass(frozen=True)
class CaptureThumb:
    """Take the live thumb and verify it against the DG3 finger images of ``txn_id``;
    the reader gives up after ``timeout_s`` with "no finger" (the core's own deadline is
    a little longer, for a reader that never answers)."""

    txn_id: str
    timeout_s: float


@dataclass(frozen=True)
class ForgetBiometrics:
    """The transaction is over: drop its portrait, frames and finger images, stop a thumb
    capture still running (all kept, sealed, only if referred)."""

    txn_id: str
    keep_for_referral: bool = False


class EventType(StrEnum):
    """Published event types, ``noun.past_verb``; the topic leaf is the noun."""

    CROSSING_ACCEPTED = "crossing.accepted"
    CROSSING_ABORTED = "crossing.aborted"
    REFERRAL_OPENED = "referral.opened"
    REFERRAL_RESOLVED = "referral.resolved"
    ALARM_RAISED = "alarm.raised"
    ALARM_CLEARED = "alarm.cleared"
    GATE_STATUS = "gate.status"
    COMMAND_ACK = "command.ack"
    AUDIT_CHECKPOINT = "audit.checkpoint"  # signed journal head (ops; gate/checkpoint.py)


@dataclass(frozen=True)
class Publish:
    """Publish an event; the daemon stamps ``event_id``, ``ts``, site and gate."""

    type: EventType
    txn_id: str | None = None
    reasons: tuple[ReasonCode, ...] = ()
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class AckCommand:
    command: Command
    command_id: str
    accepted: bool
    detail: str = ""


Action = (
    OpenDoor
    | CloseDoor
    | ReadDocument
    | ReadChip
    | CheckLists
    | CaptureFace
    | CaptureThumb
    | ForgetBiometrics
    | Publish
    | AckCommand
)

# transaction outcomes: every transaction that starts ends in exactly one of these
OUTCOME_EVENTS = (
    EventType.CROSSING_ACCEPTED,
    EventType.REFERRAL_OPENED,
    EventType.CROSSING_ABORTED,
)
