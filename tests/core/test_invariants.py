"""Safety invariants of the core over arbitrary sequences of inputs, faults included.

The inputs are generated as abstract moves and bound to the gate's current transaction
at run time (or to a stale id), so hypothesis explores real crossings, not only noise.
Door positions are tracked from the action stream itself, independently of the core's
own bookkeeping.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate import inputs as i
from gate import machine
from gate.actions import (
    OUTCOME_EVENTS,
    AckCommand,
    CloseDoor,
    ForgetBiometrics,
    OpenDoor,
    Publish,
    ReadDocument,
)
from gate.events import ack_action, build_payload
from gate.inputs import Command, Door
from gate.reasons import ReasonCode
from gate.results import ListsResult
from tests.core.helpers import T0, chip, doc, eac_chip, face, mrz, thumb, thumb_policy
from tests.core.helpers import settings as core_settings

S = machine.State
WHEN = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
EVENT_ID = "00000000-0000-4000-8000-000000000000"

noise = st.one_of(
    st.just(("placed",)),
    st.just(("removed",)),
    st.tuples(st.just("doc"), st.booleans(), st.booleans()),
    st.tuples(st.just("chip"), st.booleans(), st.booleans()),
    st.tuples(st.just("lists"), st.sampled_from(["clear", "hit", "down"]), st.booleans()),
    st.tuples(st.just("face"), st.booleans(), st.booleans()),
    st.tuples(st.just("thumb"), st.booleans(), st.booleans()),
    st.tuples(st.just("door"), st.sampled_from(list(Door)), st.booleans()),
    st.tuples(st.just("presence"), st.integers(0, 3)),
    st.tuples(st.just("emergency"), st.booleans()),
    st.tuples(st.just("tamper"), st.booleans()),
    st.tuples(st.just("doorfault"), st.sampled_from(list(Door))),
    st.tuples(st.just("fault"), st.sampled_from(["camera", "chip", "scanner"])),
    st.just(("linklost",)),
    st.just(("linkrestored",)),
    st.tuples(st.just("cmd"), st.sampled_from(list(Command))),
    st.tuples(st.just("tick"), st.sampled_from([0.05, 1.0, 16.0, 31.0, 400.0])),
)
# half the moves are what a cooperative world would send next, so sequences reach deep
# states (mantrap, exit open, referral commands) and the noise hits them there
# (one_of would flatten into 1 in 18: hypothesis picks among all branches)
moves = st.booleans().flatmap(lambda coop: st.just(("next",)) if coop else noise)


def bind(move: tuple, gate: machine.Gate) -> tuple[i.Input, float]:
    current = gate.txn.id if gate.txn is not None else "none"
    kind = move[0]
    if kind == "next":
        return next_input(gate), 0.2
    txn = lambda stale: "stale-000000" if stale else current  # noqa: E731
    if kind == "placed":
        return i.DocumentPlaced(), 0.01
    if kind == "removed":
        return i.DocumentRemoved(), 0.01
    if kind == "doc":
        record = mrz(expiry=dt.date(2030, 1, 1) if move[1] else dt.date(2020, 1, 1))
        return i.DocumentRead(txn(move[2]), doc(record)), 0.01
    if kind == "chip":
        return i.ChipRead(txn(move[2]), eac_chip() if move[1] else chip(False)), 0.01
    if kind == "lists":
        result = {
            "clear": ListsResult(),
            "hit": ListsResult(hits=(ReasonCode.LIST_STOLEN_DOC,)),
            "down": ListsResult(unavailable=("national",)),
        }[move[1]]
        return i.ListsChecked(txn(move[2]), result), 0.01
    if kind == "face":
        return i.FaceVerified(txn(move[2]), face(move[1])), 0.01
    if kind == "thumb":
        return i.ThumbVerified(txn(move[2]), thumb(move[1])), 0.01
    if kind == "door":
        return i.DoorChanged(move[1], closed=move[2]), 0.01
    if kind == "presence":
        return i.PresenceChanged(move[1]), 0.01
    if kind == "emergency":
        return i.EmergencyChanged(move[1]), 0.01
    if kind == "tamper":
        return i.TamperChanged(move[1]), 0.01
    if kind == "doorfault":
        return i.DoorFault(move[1]), 0.01
    if kind == "fault":
        return i.DeviceFault(move[1]), 0.01
    if kind == "linklost":
        return i.LinkLost("barrier"), 0.01
    if kind == "linkrestored":
        return i.LinkRestored("barrier"), 0.01
    if kind == "cmd":
        return i.OfficerCommand(move[1], "officer", "cmd", alarm_id=gate.alarm_id), 0.01
    if kind == "tick":
        return i.Tick(), move[1]
    raise AssertionError(move)


def next_input(gate: machine.Gate) -> i.Input:
    t = gate.txn
    txn = t.id if t is not None else "none"
    match gate.state:
        case S.IDLE:
            return i.DocumentPlaced()
        case S.DOC_CHECK if t is not None and t.doc is None:
            return i.DocumentRead(txn, doc())
        case S.DOC_CHECK if t is not None and t.chip is None:
            return i.ChipRead(txn, eac_chip())
        case S.DOC_CHECK:
            return i.ListsChecked(txn, ListsResult())
        case S.ENTRY_OPEN if t is not None and not t.entered:
            return i.PresenceChanged(1)
        case S.ENTRY_OPEN:
            return i.DoorChanged(Door.ENTRY, closed=True)
        case S.IN_MANTRAP if t is not None and t.thumb_asked is not None:
            return i.ThumbVerified(txn, thumb(True))
        case S.IN_MANTRAP:
            return i.FaceVerified(txn, face(True))
        case S.EXIT_OPEN:
            return i.PresenceChanged(0)
        case S.REFERRED:
            return i.OfficerCommand(Command.RELEASE, "officer", "next")
        case S.ALARM:
            return i.OfficerCommand(Command.RESET_ALARM, "officer", "next", alarm_id=gate.alarm_id)
        case S.OUT_OF_SERVICE:
            return i.OfficerCommand(Command.IN_SERVICE, "officer", "next")
        case _:
            return i.EmergencyChanged(False)


@pytest.mark.parametrize("mode", ["face", "face_then_thumb", "both"])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(moves, min_size=1, max_size=60))
def test_safety_invariants(mode: str, seq: list[tuple]) -> None:
    now = T0
    gate = machine.initial(core_settings(thumb_policy(mode), thumb_reader=True), now, boot="h")
    gate, _ = machine.step(gate, i.Started(), now)
    commanded = {Door.ENTRY: False, Door.EXIT: False}
    started: list[str] = []
    outcomes: Counter[str] = Counter()
    forgotten: set[str] = set()  # transactions whose biometrics were dropped for good

    for move in seq:
        event, dt_s = bind(move, gate)
        now += dt_s
        before = gate
        gate, actions = machine.step(gate, event, now)

        for act in actions:
            if isinstance(act, OpenDoor):
                commanded[act.door] = True
                if act.door is Door.EXIT and gate.state is not S.EMERGENCY:
                    txn = gate.txn
                    assert txn is not None and (txn.accepted or txn.released), (
                        f"exit opened for an unaccepted transaction in {gate.state}"
                    )
            elif isinstance(act, CloseDoor):
                commanded[act.door] = False
            elif isinstance(act, ReadDocument):
                started.append(act.txn_id)
            elif isinstance(act, ForgetBiometrics) and not act.keep_for_referral:
                forgotten.add(act.txn_id)
            elif isinstance(act, Publish) and act.type in OUTCOME_EVENTS and act.txn_id:
                outcomes[act.txn_id] += 1
            if isinstance(act, Publish):  # every event the core emits has a valid wire form
                build_payload(act, site="s1", gate="g1", ts=WHEN, event_id=EVENT_ID)
            elif isinstance(act, AckCommand):
                build_payload(ack_action(act), site="s1", gate="g1", ts=WHEN, event_id=EVENT_ID)

        if gate.state is not S.EMERGENCY:
            assert not (commanded[Door.ENTRY] and commanded[Door.EXIT]), "both doors open"

        if isinstance(event, i.EmergencyChanged) and event.active:
            assert gate.state is S.EMERGENCY
            assert commanded[Door.ENTRY] and commanded[Door.EXIT]
        if gate.state is S.EMERGENCY and before.state is not S.EMERGENCY:
            assert OpenDoor(Door.ENTRY) in actions and OpenDoor(Door.EXIT) in actions

        if isinstance(event, i.LinkLost) and before.state is not S.EMERGENCY:
            assert gate.state is S.OUT_OF_SERVICE
            assert not commanded[Door.ENTRY] and not commanded[Door.EXIT]
            assert CloseDoor(Door.ENTRY) in actions and CloseDoor(Door.EXIT) in actions

        assert all(n == 1 for n in outcomes.values()), f"a transaction ended twice: {outcomes}"
        current = gate.txn.id if gate.txn is not None else None
        for txn_id in started:
            if txn_id != current:
                assert outcomes[txn_id] == 1, f"{txn_id} ended without an outcome"
                # no face data outlives its transaction: once the gate has let go of it
                # (however: resolved, out of service, emergency, restart) it is dropped
                assert txn_id in forgotten, f"{txn_id} left, its biometrics kept"


def test_exit_never_opens_when_the_face_does_not_match() -> None:
    gate = machine.initial(core_settings(), T0, boot="x")
    gate, _ = machine.step(gate, i.Started(), T0)
    gate, _ = machine.step(gate, i.DocumentPlaced(), T0)
    assert gate.txn is not None
    txn = gate.txn.id
    for ev in (
        i.DocumentRead(txn, doc()),
        i.ChipRead(txn, chip()),
        i.ListsChecked(txn, ListsResult()),
        i.PresenceChanged(1),
        i.DoorChanged(Door.ENTRY, True),
    ):
        gate, _ = machine.step(gate, ev, T0)
    gate, acts = machine.step(gate, i.FaceVerified(txn, face(False)), T0)
    assert OpenDoor(Door.EXIT) not in acts
    assert gate.state is S.REFERRED
