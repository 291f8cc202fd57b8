"""Door supervision: "forced" only on evidence that a door moved with no command outstanding.

The controller's reports reach the core in whatever order the poll read them: the
people counter can be read before the door sensor that the same movement changed (the
bench saw 1-2 % false ``gate_door_forced``: presence sensed, entry commanded closed, then
the entry's late "opened" report). Each test injects one ordering; no clock, no sleep.
"""

from __future__ import annotations

from gate import inputs as i
from gate import machine
from gate.actions import CloseDoor, EventType, ForgetBiometrics, OpenDoor, Publish
from gate.inputs import Door
from gate.reasons import ReasonCode
from tests.core.helpers import CLEAR, T0, chip, doc, face, settings

S = machine.State


class Run:
    def __init__(self) -> None:
        self.now = T0
        self.gate = machine.initial(settings(), self.now, boot="b")
        self.actions: list[object] = []
        self.feed(i.Started())
        self.feed(i.DoorChanged(Door.ENTRY, closed=True))
        self.feed(i.DoorChanged(Door.EXIT, closed=True))

    def feed(self, ev: i.Input) -> list[object]:
        self.now += 0.01
        self.gate, acts = machine.step(self.gate, ev, self.now)
        self.actions += acts
        return list(acts)

    def alarms(self) -> list[tuple[ReasonCode, ...]]:
        return [
            a.reasons
            for a in self.actions
            if isinstance(a, Publish) and a.type is EventType.ALARM_RAISED
        ]

    def to_entry_open(self) -> None:
        self.feed(i.DocumentPlaced())
        assert self.gate.txn is not None
        txn = self.gate.txn.id
        self.feed(i.DocumentRead(txn, doc()))
        self.feed(i.ChipRead(txn, chip()))
        assert OpenDoor(Door.ENTRY) in self.feed(i.ListsChecked(txn, CLEAR))


def test_presence_read_before_the_entrys_opened_report_is_no_forced_door() -> None:
    r = Run()
    r.to_entry_open()
    # the counter was read before the door sensor: the traveller is inside first
    assert CloseDoor(Door.ENTRY) in r.feed(i.PresenceChanged(1))
    r.feed(i.DoorChanged(Door.ENTRY, closed=False))  # the open command's effect, late
    assert r.alarms() == []
    assert r.gate.state is S.ENTRY_OPEN
    r.feed(i.DoorChanged(Door.ENTRY, closed=True))
    assert r.gate.state is S.IN_MANTRAP
    assert r.alarms() == []


def test_exit_left_before_its_opened_report_is_no_forced_door() -> None:
    r = Run()
    r.to_entry_open()
    r.feed(i.DoorChanged(Door.ENTRY, closed=False))
    r.feed(i.PresenceChanged(1))
    r.feed(i.DoorChanged(Door.ENTRY, closed=True))
    assert r.gate.txn is not None
    assert OpenDoor(Door.EXIT) in r.feed(i.FaceVerified(r.gate.txn.id, face(True)))
    assert CloseDoor(Door.EXIT) in r.feed(i.PresenceChanged(0))  # out before "opened"
    assert r.gate.state is S.IDLE
    r.feed(i.DoorChanged(Door.EXIT, closed=False))
    r.feed(i.DoorChanged(Door.EXIT, closed=True))
    assert r.alarms() == []
    assert r.gate.state is S.IDLE


def test_a_door_that_closed_after_its_command_and_opens_again_is_forced() -> None:
    r = Run()
    r.to_entry_open()
    r.feed(i.PresenceChanged(1))
    r.feed(i.DoorChanged(Door.ENTRY, closed=False))
    r.feed(i.DoorChanged(Door.ENTRY, closed=True))  # the close command took effect
    assert r.gate.state is S.IN_MANTRAP
    r.feed(i.DoorChanged(Door.ENTRY, closed=False))  # nothing asked for this one
    assert r.gate.state is S.ALARM
    assert r.alarms() == [(ReasonCode.GATE_DOOR_FORCED,)]


def test_the_exit_opening_with_no_open_command_is_forced_even_while_entry_moves() -> None:
    r = Run()
    r.to_entry_open()  # an open command outstanding for the entry only
    r.feed(i.DoorChanged(Door.EXIT, closed=False))
    assert r.alarms() == [(ReasonCode.GATE_DOOR_FORCED,)]
    assert r.gate.exit_sensed == "forced"


def test_a_referral_the_gate_lets_go_of_drops_its_biometrics() -> None:
    """A referral ended by a lost link (or an emergency) can no longer be resolved at this
    gate: its kept portrait and frame must go with it, not wait for a resolution."""
    for ending in (i.LinkLost("barrier", "no reply"), i.EmergencyChanged(True)):
        r = Run()
        r.to_entry_open()
        assert r.gate.txn is not None
        txn = r.gate.txn.id
        r.feed(i.PresenceChanged(1))
        r.feed(i.DoorChanged(Door.ENTRY, closed=False))
        r.feed(i.DoorChanged(Door.ENTRY, closed=True))
        r.feed(i.FaceVerified(txn, face(False)))
        assert r.gate.state is S.REFERRED
        assert ForgetBiometrics(txn, keep_for_referral=True) in r.actions
        acts = r.feed(ending)
        assert r.gate.txn is None
        assert ForgetBiometrics(txn) in acts, ending
