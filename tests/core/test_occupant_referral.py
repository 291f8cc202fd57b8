"""Someone found inside after an alarm, with no open referral to decide, gets a referral
of their own: its own id, a ``referral.opened`` the console shows, and an officer's signed
Release or Send back (both name a txn_id) decides it. Before, such a referral had no id:
release was refused ("no traveller to release") and the console had nothing to bind Send
back to, so only out of service and back cleared the lane."""

from __future__ import annotations

import datetime as dt

from gate import inputs as i
from gate import machine
from gate.actions import AckCommand, EventType, ForgetBiometrics, OpenDoor, Publish
from gate.events import build_payload
from gate.inputs import Command, Door
from gate.reasons import ReasonCode
from tests.core.helpers import CLEAR, T0, chip, doc, mrz, settings

S = machine.State
WHEN = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


class Run:
    def __init__(self) -> None:
        self.now = T0
        self.gate = machine.initial(settings(), self.now, boot="b")
        self.feed(i.Started())

    def feed(self, ev: i.Input) -> list[object]:
        self.now += 0.01
        self.gate, acts = machine.step(self.gate, ev, self.now)
        for act in acts:  # every event has a valid wire form
            if isinstance(act, Publish):
                build_payload(
                    act,
                    site="s1",
                    gate="g1",
                    ts=WHEN,
                    event_id="00000000-0000-4000-8000-000000000000",
                )
        return list(acts)

    def reset(self) -> list[object]:
        alarm = self.gate.alarm_id
        assert self.gate.state is S.ALARM and alarm is not None
        acts = self.feed(i.OfficerCommand(Command.RESET_ALARM, "alice", "r1", alarm_id=alarm))
        assert acts[0] == AckCommand(Command.RESET_ALARM, "r1", True)
        return acts


def _opened(acts: list[object]) -> Publish:
    (p,) = [a for a in acts if isinstance(a, Publish) and a.type is EventType.REFERRAL_OPENED]
    return p


def _status(acts: list[object]) -> dict:
    return [a.data for a in acts if isinstance(a, Publish) and a.type is EventType.GATE_STATUS][-1]


def _intruder() -> Run:
    """Nobody placed a document; someone is in the mantrap (a door held, a restart)."""
    r = Run()
    r.feed(i.PresenceChanged(1))
    assert r.gate.state is S.ALARM and r.gate.txn is None
    assert r.gate.alarm == (ReasonCode.GATE_UNEXPECTED_OCCUPANT,)
    return r


def test_an_occupant_without_a_transaction_gets_a_referral_an_officer_can_release() -> None:
    r = _intruder()
    acts = r.reset()
    assert r.gate.state is S.REFERRED
    opened = _opened(acts)
    assert opened.txn_id and r.gate.txn is not None and r.gate.txn.id == opened.txn_id
    assert opened.reasons == (ReasonCode.GATE_UNEXPECTED_OCCUPANT,)
    assert opened.data["stage"] == "mantrap"
    assert {"release", "send_back"} <= set(_status(acts)["accepts"])

    release = i.OfficerCommand(Command.RELEASE, "alice", "c1", txn_id=opened.txn_id)
    acts = r.feed(release)
    assert acts[0] == AckCommand(Command.RELEASE, "c1", True)
    resolved = [a for a in acts if isinstance(a, Publish) and a.type is EventType.REFERRAL_RESOLVED]
    assert [p.txn_id for p in resolved] == [opened.txn_id]
    assert OpenDoor(Door.EXIT) in acts and r.gate.state is S.EXIT_OPEN
    acts = r.feed(i.PresenceChanged(0))
    assert r.gate.state is S.IDLE and r.gate.txn is None
    assert ForgetBiometrics(opened.txn_id) in acts


def test_an_occupant_without_a_transaction_can_be_sent_back() -> None:
    r = _intruder()
    opened = _opened(r.reset())
    acts = r.feed(i.OfficerCommand(Command.SEND_BACK, "alice", "c1", txn_id=opened.txn_id))
    assert acts[0] == AckCommand(Command.SEND_BACK, "c1", True)
    assert OpenDoor(Door.ENTRY) in acts and OpenDoor(Door.EXIT) not in acts
    r.feed(i.PresenceChanged(0))
    assert r.gate.state is S.IDLE


def test_each_occupant_referral_has_its_own_id_and_a_stale_one_decides_nothing() -> None:
    r = _intruder()
    first = _opened(r.reset()).txn_id
    r.feed(i.OfficerCommand(Command.SEND_BACK, "alice", "c1", txn_id=first))
    r.feed(i.PresenceChanged(0))
    r.feed(i.PresenceChanged(1))  # someone again
    second = _opened(r.reset()).txn_id
    assert second != first
    acts = r.feed(i.OfficerCommand(Command.RELEASE, "bob", "c2", txn_id=first))
    assert not any(isinstance(a, OpenDoor) for a in acts)
    (ack,) = [a for a in acts if isinstance(a, AckCommand)]
    assert not ack.accepted and second in ack.detail
    assert r.gate.state is S.REFERRED


def test_an_open_referral_is_kept_when_its_alarm_is_reset() -> None:
    """A tailgater on a traveller being referred: the referral already open (with the
    traveller's photos) is the one decided after the reset, not a new one."""
    r = Run()
    r.feed(i.DocumentPlaced())
    assert r.gate.txn is not None
    txn = r.gate.txn.id
    r.feed(i.DocumentRead(txn, doc(mrz())))
    r.feed(i.ChipRead(txn, chip()))
    r.feed(i.ListsChecked(txn, CLEAR))
    r.feed(i.PresenceChanged(2))  # tailgating: the crossing is referred at the alarm
    acts = r.reset()
    assert not [a for a in acts if isinstance(a, Publish) and a.type is EventType.REFERRAL_OPENED]
    assert r.gate.state is S.REFERRED and r.gate.txn is not None and r.gate.txn.id == txn


def test_a_restart_with_someone_inside_is_an_alarm_not_idle() -> None:
    """The daemon restarts with a traveller in the mantrap (the sensor reported before
    the start): the gate must not stand IDLE with someone inside."""
    gate = machine.initial(settings(), T0, boot="b")
    gate, _ = machine.step(gate, i.PresenceChanged(1), T0)
    gate, acts = machine.step(gate, i.Started(), T0 + 0.1)
    assert gate.state is S.ALARM
    assert gate.alarm == (ReasonCode.GATE_UNEXPECTED_OCCUPANT,)
    assert any(isinstance(a, Publish) and a.type is EventType.ALARM_RAISED for a in acts)
