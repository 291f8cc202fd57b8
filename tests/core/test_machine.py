"""The state machine, walked through the crossings an officer would recognise."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from gate import inputs as i
from gate import machine
from gate.actions import (
    AckCommand,
    CaptureFace,
    CheckLists,
    CloseDoor,
    EventType,
    ForgetBiometrics,
    OpenDoor,
    Publish,
    ReadChip,
    ReadDocument,
)
from gate.inputs import Command, Door
from gate.reasons import ReasonCode
from gate.results import ListsResult, ThumbResult
from tests.core.helpers import CLEAR, T0, chip, doc, face, mrz, settings

S = machine.State


class Run:
    """Feeds inputs with a moving clock and keeps every action for assertions."""

    def __init__(self) -> None:
        self.now = T0
        self.gate = machine.initial(settings(), self.now, boot="b")
        self.actions: list[object] = []
        self.feed(i.Started())

    def feed(self, ev: i.Input, dt_s: float = 0.01) -> list[object]:
        self.now += dt_s
        self.gate, acts = machine.step(self.gate, ev, self.now)
        self.actions += acts
        return list(acts)

    @property
    def txn(self) -> str:
        assert self.gate.txn is not None
        return self.gate.txn.id

    def events(self, kind: EventType) -> list[Publish]:
        return [a for a in self.actions if isinstance(a, Publish) and a.type is kind]

    def to_mantrap(self) -> None:
        assert isinstance(self.feed(i.DocumentPlaced())[0], ReadDocument)
        assert isinstance(self.feed(i.DocumentRead(self.txn, doc()))[0], ReadChip)
        assert isinstance(self.feed(i.ChipRead(self.txn, chip()))[0], CheckLists)
        assert OpenDoor(Door.ENTRY) in self.feed(i.ListsChecked(self.txn, CLEAR))
        assert self.gate.state is S.ENTRY_OPEN
        self.feed(i.DoorChanged(Door.ENTRY, closed=False))
        acts = self.feed(i.PresenceChanged(1))
        # the burst starts with the traveller inside, while the entry closes
        assert CloseDoor(Door.ENTRY) in acts and CaptureFace(self.txn) in acts
        self.feed(i.DoorChanged(Door.ENTRY, closed=True))
        assert self.gate.state is S.IN_MANTRAP


def test_start_closes_both_doors_and_goes_idle() -> None:
    r = Run()
    assert r.gate.state is S.IDLE
    assert CloseDoor(Door.ENTRY) in r.actions and CloseDoor(Door.EXIT) in r.actions


def test_accepted_crossing_end_to_end() -> None:
    r = Run()
    r.to_mantrap()
    txn = r.txn
    assert OpenDoor(Door.EXIT) in r.feed(i.FaceVerified(txn, face(True)))
    assert r.gate.state is S.EXIT_OPEN
    acts = r.feed(i.PresenceChanged(0))
    assert CloseDoor(Door.EXIT) in acts
    assert ForgetBiometrics(txn, keep_for_referral=False) in acts
    assert r.gate.state is S.IDLE
    (accepted,) = r.events(EventType.CROSSING_ACCEPTED)
    assert accepted.txn_id == txn and accepted.reasons == ()


def test_face_mismatch_refers_with_reason_and_keeps_exit_closed() -> None:
    r = Run()
    r.to_mantrap()
    acts = r.feed(i.FaceVerified(r.txn, face(False)))
    assert r.gate.state is S.REFERRED
    assert not any(isinstance(a, OpenDoor) for a in acts)
    (ref,) = r.events(EventType.REFERRAL_OPENED)
    assert ref.reasons == (ReasonCode.FACE_NO_MATCH,)
    assert ForgetBiometrics(r.txn, keep_for_referral=True) in acts


def test_expired_document_refers_before_the_entry_opens() -> None:
    r = Run()
    r.feed(i.DocumentPlaced())
    r.feed(i.DocumentRead(r.txn, doc(mrz(expiry=dt.date(2020, 1, 1)))))
    r.feed(i.ChipRead(r.txn, chip()))
    acts = r.feed(i.ListsChecked(r.txn, CLEAR))
    assert r.gate.state is S.REFERRED
    assert OpenDoor(Door.ENTRY) not in acts
    (ref,) = r.events(EventType.REFERRAL_OPENED)
    assert ReasonCode.DOC_EXPIRED in ref.reasons


def test_invalid_mrz_refers_without_reading_the_chip() -> None:
    r = Run()
    r.feed(i.DocumentPlaced())
    acts = r.feed(
        i.DocumentRead(r.txn, doc(replace(mrz(valid=False), reasons=(ReasonCode.DOC_CHECK_BIRTH,))))
    )
    assert not any(isinstance(a, ReadChip) for a in acts)
    assert r.gate.state is S.REFERRED
    assert ReasonCode.DOC_CHECK_BIRTH in r.events(EventType.REFERRAL_OPENED)[0].reasons


def test_stolen_document_refers() -> None:
    r = Run()
    r.feed(i.DocumentPlaced())
    r.feed(i.DocumentRead(r.txn, doc()))
    r.feed(i.ChipRead(r.txn, chip()))
    r.feed(i.ListsChecked(r.txn, ListsResult(hits=(ReasonCode.LIST_STOLEN_DOC,))))
    assert r.gate.state is S.REFERRED
    assert r.events(EventType.REFERRAL_OPENED)[0].reasons == (ReasonCode.LIST_STOLEN_DOC,)


def test_officer_release_from_mantrap_opens_exit_then_idle() -> None:
    r = Run()
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, face(False)))
    acts = r.feed(i.OfficerCommand(Command.RELEASE, "officer-7", "c1"))
    assert AckCommand(Command.RELEASE, "c1", True) in acts
    assert OpenDoor(Door.EXIT) in acts and r.gate.state is S.EXIT_OPEN
    r.feed(i.PresenceChanged(0))
    assert r.gate.state is S.IDLE
    # one outcome only: the referral; the release is its resolution
    assert len(r.events(EventType.REFERRAL_OPENED)) == 1
    assert not r.events(EventType.CROSSING_ACCEPTED)
    assert r.events(EventType.REFERRAL_RESOLVED)[0].data["resolution"] == "release"


def test_send_back_from_mantrap_opens_entry_until_empty() -> None:
    r = Run()
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, face(False)))
    acts = r.feed(i.OfficerCommand(Command.SEND_BACK, "o", "c2"))
    assert OpenDoor(Door.ENTRY) in acts and OpenDoor(Door.EXIT) not in acts
    assert r.gate.state is S.REFERRED
    acts = r.feed(i.PresenceChanged(0))
    assert CloseDoor(Door.ENTRY) in acts and r.gate.state is S.IDLE


def test_tailgating_raises_alarm_and_closes_doors() -> None:
    r = Run()
    r.feed(i.DocumentPlaced())
    r.feed(i.DocumentRead(r.txn, doc()))
    r.feed(i.ChipRead(r.txn, chip()))
    r.feed(i.ListsChecked(r.txn, CLEAR))
    acts = r.feed(i.PresenceChanged(2))
    assert r.gate.state is S.ALARM
    assert CloseDoor(Door.ENTRY) in acts and CloseDoor(Door.EXIT) in acts
    assert r.events(EventType.ALARM_RAISED)[0].reasons == (ReasonCode.GATE_TAILGATING,)
    # the traveller's transaction became a referral with the same reason
    assert r.events(EventType.REFERRAL_OPENED)[0].reasons == (ReasonCode.GATE_TAILGATING,)
    # with people inside, resetting the alarm hands the case to the referral
    r.feed(i.OfficerCommand(Command.RESET_ALARM, "sup", "c3", alarm_id=r.gate.alarm_id))
    assert r.gate.state is S.REFERRED


def test_emergency_releases_both_doors_then_out_of_service() -> None:
    r = Run()
    r.to_mantrap()
    acts = r.feed(i.EmergencyChanged(True))
    assert r.gate.state is S.EMERGENCY
    assert OpenDoor(Door.ENTRY) in acts and OpenDoor(Door.EXIT) in acts
    assert r.events(EventType.CROSSING_ABORTED)[0].reasons == (ReasonCode.GATE_EMERGENCY,)
    acts = r.feed(i.EmergencyChanged(False))
    assert r.gate.state is S.OUT_OF_SERVICE
    assert CloseDoor(Door.ENTRY) in acts and CloseDoor(Door.EXIT) in acts


def test_link_lost_goes_out_of_service_until_restored_and_commanded() -> None:
    r = Run()
    r.to_mantrap()
    acts = r.feed(i.LinkLost("barrier", "no reply"))
    assert r.gate.state is S.OUT_OF_SERVICE
    assert CloseDoor(Door.ENTRY) in acts and CloseDoor(Door.EXIT) in acts
    refused = r.feed(i.OfficerCommand(Command.IN_SERVICE, "sup", "c4"))
    assert refused[0] == AckCommand(Command.IN_SERVICE, "c4", False, "not recovered: barrier")
    r.feed(i.LinkRestored("barrier"))
    r.feed(i.PresenceChanged(0))
    acts = r.feed(i.OfficerCommand(Command.IN_SERVICE, "sup", "c5"))
    assert acts[0] == AckCommand(Command.IN_SERVICE, "c5", True)
    assert r.gate.state is S.IDLE


def test_door_forced_while_closed_raises_alarm() -> None:
    r = Run()
    r.feed(i.DoorChanged(Door.EXIT, closed=False))
    assert r.gate.state is S.ALARM
    assert r.events(EventType.ALARM_RAISED)[0].reasons == (ReasonCode.GATE_DOOR_FORCED,)


def test_door_fault_raises_alarm() -> None:
    r = Run()
    r.feed(i.DoorFault(Door.ENTRY, "not closed in 3 s"))
    assert r.gate.state is S.ALARM
    assert r.events(EventType.ALARM_RAISED)[0].reasons == (ReasonCode.GATE_DOOR_STUCK,)


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("doc_check", S.REFERRED),
        ("mantrap", S.REFERRED),
    ],
)
def test_timeouts_refer_with_gate_timeout(setup: str, expected: machine.State) -> None:
    r = Run()
    if setup == "doc_check":
        r.feed(i.DocumentPlaced())
    else:
        r.to_mantrap()
    r.feed(i.Tick(), dt_s=1000)
    assert r.gate.state is expected
    assert r.events(EventType.REFERRAL_OPENED)[0].reasons == (ReasonCode.GATE_TIMEOUT,)


def test_entry_unused_times_out_and_aborts() -> None:
    r = Run()
    r.feed(i.DocumentPlaced())
    r.feed(i.DocumentRead(r.txn, doc()))
    r.feed(i.ChipRead(r.txn, chip()))
    r.feed(i.ListsChecked(r.txn, CLEAR))
    acts = r.feed(i.Tick(), dt_s=25)
    assert CloseDoor(Door.ENTRY) in acts and r.gate.state is S.IDLE
    assert r.events(EventType.CROSSING_ABORTED)[0].reasons == (ReasonCode.GATE_ENTRY_NOT_USED,)


def test_stale_result_of_an_ended_transaction_is_ignored() -> None:
    r = Run()
    r.feed(i.DocumentPlaced())
    old = r.txn
    r.feed(i.DocumentRemoved())
    r.feed(i.DocumentPlaced())
    before = r.gate
    assert r.feed(i.DocumentRead(old, doc())) == []
    assert r.gate == before


def test_restart_reports_the_interrupted_transaction() -> None:
    g = machine.initial(settings(), T0, boot="c")
    g, acts = machine.step(g, i.Started(interrupted_txn="b-000007"), T0)
    aborted = [a for a in acts if isinstance(a, Publish) and a.type is EventType.CROSSING_ABORTED]
    assert aborted and aborted[0].txn_id == "b-000007"
    assert aborted[0].reasons == (ReasonCode.GATE_RESTART,)
    assert g.state is S.IDLE and g.txn is None


def test_command_not_applicable_is_refused_not_ignored() -> None:
    r = Run()
    acts = r.feed(i.OfficerCommand(Command.RELEASE, "o", "c9"))
    assert acts == [AckCommand(Command.RELEASE, "c9", False, "release not applicable in IDLE")]


def test_every_state_input_pair_is_total() -> None:
    """No (state, input) pair raises; unlisted pairs leave the gate unchanged."""
    samples: list[i.Input] = [
        i.Started(),
        i.Tick(),
        i.DocumentPlaced(),
        i.DocumentRemoved(),
        i.DocumentRead("x", doc()),
        i.ChipRead("x", chip()),
        i.ListsChecked("x", CLEAR),
        i.FaceVerified("x", face()),
        i.ThumbVerified("t-000001", ThumbResult(True, 50.0, 40.0)),
        i.DoorChanged(Door.ENTRY, True),
        i.DoorChanged(Door.EXIT, False),
        i.PresenceChanged(0),
        i.PresenceChanged(1),
        i.PresenceChanged(3),
        i.EmergencyChanged(True),
        i.EmergencyChanged(False),
        i.TamperChanged(True),
        i.DoorFault(Door.EXIT),
        i.DeviceFault("camera"),
        i.LinkLost("barrier"),
        i.LinkRestored("barrier"),
        *[i.OfficerCommand(c, "o", "id") for c in Command],
    ]
    base = machine.initial(settings(), T0, boot="t")
    for state in S:
        thumb_pending = machine.Txn("t-000001", T0, doc=doc(), entered=True, thumb_asked=T0)
        for txn in (None, machine.Txn("t-000001", T0, doc=doc(), entered=True), thumb_pending):
            gate = replace(base, state=state, txn=txn)
            for ev in samples:
                new, acts = machine.step(gate, ev, T0 + 1)
                assert isinstance(new, machine.Gate)
                assert all(a is not None for a in acts)


def test_door_fault_in_alarm_does_not_recommand_the_blocked_door() -> None:
    r = Run()
    r.feed(i.DoorFault(Door.ENTRY, "blocked"))
    assert r.gate.state is S.ALARM
    assert r.feed(i.DoorFault(Door.ENTRY, "blocked")) == []
