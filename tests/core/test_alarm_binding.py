"""A reset names the alarm it resets: one aimed at an alarm that is over never clears a
newer one (two officers at one gate, a click on a stale screen, a delayed command)."""

from __future__ import annotations

from gate import inputs as i
from gate import machine
from gate.actions import AckCommand, EventType, Publish
from gate.inputs import Command
from tests.core.helpers import T0, settings

S = machine.State


class Run:
    def __init__(self) -> None:
        self.now = T0
        self.gate = machine.initial(settings(), self.now, boot="b")
        self.actions: list[object] = []
        self.feed(i.Started())

    def feed(self, ev: i.Input) -> list[object]:
        self.now += 0.01
        self.gate, acts = machine.step(self.gate, ev, self.now)
        self.actions += acts
        return list(acts)

    def raised(self) -> list[Publish]:
        return [
            a for a in self.actions if isinstance(a, Publish) and a.type is EventType.ALARM_RAISED
        ]

    def status(self) -> dict:
        return [
            a.data
            for a in self.actions
            if isinstance(a, Publish) and a.type is EventType.GATE_STATUS
        ][-1]


def reset(alarm_id: str | None, cid: str) -> i.OfficerCommand:
    return i.OfficerCommand(Command.RESET_ALARM, "alice", cid, alarm_id=alarm_id)


def test_a_reset_for_an_earlier_alarm_does_not_clear_a_newer_one() -> None:
    r = Run()
    r.feed(i.TamperChanged(True))
    r.feed(i.TamperChanged(False))
    first = r.raised()[-1].data["alarm_id"]
    assert r.status()["alarm_id"] == first  # the console reads it off the status
    assert r.feed(reset(first, "c1"))[0] == AckCommand(Command.RESET_ALARM, "c1", True)
    assert r.gate.state is S.IDLE
    r.feed(i.TamperChanged(True))  # a new alarm
    r.feed(i.TamperChanged(False))
    second = r.raised()[-1].data["alarm_id"]
    assert second != first
    # the second officer's click, aimed at the first alarm, arrives now
    (ack,) = r.feed(reset(first, "c2"))
    assert ack == AckCommand(
        Command.RESET_ALARM, "c2", False, f"reset_alarm is for {first}; the alarm now is {second}"
    )
    assert r.gate.state is S.ALARM
    (ack, *_) = r.feed(reset(None, "c3"))
    assert isinstance(ack, AckCommand) and not ack.accepted and "name the alarm" in ack.detail
    assert r.gate.state is S.ALARM
    assert r.feed(reset(second, "c4"))[0] == AckCommand(Command.RESET_ALARM, "c4", True)
    assert r.gate.state is S.IDLE
    assert "alarm_id" not in r.status()  # no alarm, nothing to name


def test_a_decision_on_a_resolved_referral_never_releases_whoever_is_inside_now() -> None:
    """Referral A released; the traveller walks in with someone behind (tailgating
    alarm); the alarm is reset with people inside, so the gate is REFERRED again, on a
    referral of their own. A second officer's release for A, clicked on the first referral,
    must not open the exit for the people now inside."""
    import datetime as dt

    from gate.actions import OpenDoor
    from gate.inputs import Door
    from tests.core.helpers import CLEAR, chip, doc, mrz

    r = Run()
    r.feed(i.DocumentPlaced())
    assert r.gate.txn is not None
    txn = r.gate.txn.id
    r.feed(i.DocumentRead(txn, doc(mrz(expiry=dt.date(2020, 1, 1)))))
    r.feed(i.ChipRead(txn, chip()))
    r.feed(i.ListsChecked(txn, CLEAR))
    assert r.gate.state is S.REFERRED
    release = i.OfficerCommand(Command.RELEASE, "alice", "c1", txn_id=txn)
    assert r.feed(release)[0] == AckCommand(Command.RELEASE, "c1", True)
    assert r.gate.state is S.ENTRY_OPEN
    r.feed(i.PresenceChanged(2))  # two walk in on one release
    assert r.gate.state is S.ALARM
    alarm = r.gate.alarm_id
    r.feed(reset(alarm, "c2"))
    assert r.gate.state is S.REFERRED and r.gate.occupancy == 2
    # the people inside now are a referral of their own (tests/core/test_occupant_referral.py)
    assert r.gate.txn is not None and r.gate.txn.id != txn
    late = i.OfficerCommand(Command.RELEASE, "bob", "c3", txn_id=txn)  # the first referral
    acts = r.feed(late)
    assert not any(isinstance(a, OpenDoor) and a.door is Door.EXIT for a in acts)
    (ack,) = [a for a in acts if isinstance(a, AckCommand)]
    assert not ack.accepted and f"the open referral is {r.gate.txn.id}" in ack.detail
    assert r.gate.state is S.REFERRED
