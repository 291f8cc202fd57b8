"""What the gate publishes for the console: accepted commands, sensed doors, cleared alarms.

The console offers only the commands in the status's ``accepts``; these tests hold the
core to it: every command it lists is carried out, every other one is refused with the
same words ``gate.offers.refusal`` gives.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace
from typing import Any

from gate import events, machine, offers
from gate import inputs as i
from gate.actions import AckCommand, EventType, Publish
from gate.inputs import Command, Door
from gate.policy_config import Policy
from gate.reasons import ReasonCode
from gate.results import FaceResult
from tests.core.helpers import CLEAR, T0, chip, doc, face, settings
from tests.core.test_machine import Run

S = machine.State


def statuses(acts: list[Any]) -> list[dict[str, Any]]:
    return [a.data for a in acts if isinstance(a, Publish) and a.type is EventType.GATE_STATUS]


def last_status(r: Run) -> dict[str, Any]:
    return statuses(r.actions)[-1]


def wire(data: dict[str, Any]) -> dict[str, Any]:
    """The status as it goes on the wire (schema-checked by build_payload)."""
    return events.build_payload(
        Publish(EventType.GATE_STATUS, None, (), data),
        site="kul1",
        gate="g01",
        ts=dt.datetime.now(dt.UTC),
        event_id="0b7e4a4e-2f4c-4d47-9a53-3f1e0c6b8a11",
    )


def test_offered_commands_are_exactly_the_ones_the_machine_carries_out() -> None:
    base = machine.initial(settings(), T0, boot="t")
    txns = (None, machine.Txn("t-000001", T0, doc=doc(), entered=True))
    for state, txn, faults, emergency, tamper, occupancy in itertools.product(
        S, txns, (frozenset(), frozenset({"barrier"})), (False, True), (False, True), (0, 1)
    ):
        gate = replace(
            base,
            state=state,
            txn=txn,
            faults=faults,
            emergency=emergency,
            tamper=tamper,
            occupancy=occupancy,
            alarm_id="t-a000001",
        )
        offered = offers.accepted(gate)
        for cmd in Command:  # bound as the console binds it: to the alarm its status named
            command = i.OfficerCommand(cmd, "o", "c1", alarm_id="t-a000001")
            _, acts = machine.step(gate, command, T0 + 1)
            (ack,) = [a for a in acts if isinstance(a, AckCommand)]
            assert ack.accepted == (cmd in offered), (state, cmd, gate)
            if not ack.accepted:
                assert ack.detail == offers.refusal(gate, cmd)


def test_status_lists_what_each_state_accepts() -> None:
    r = Run()
    assert last_status(r)["accepts"] == ["out_of_service"]
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, face(False)))
    assert r.gate.state is S.REFERRED
    assert last_status(r)["accepts"] == ["release", "send_back", "out_of_service"]
    r.feed(i.PresenceChanged(2))  # a second person: tailgating alarm
    assert r.gate.state is S.ALARM
    assert last_status(r)["accepts"] == ["out_of_service", "reset_alarm"]
    r.feed(i.TamperChanged(True))
    assert last_status(r)["accepts"] == ["out_of_service"]  # reset refused while tampered
    wire(last_status(r))


def test_status_publishes_sensed_doors_occupancy_emergency_and_tamper() -> None:
    r = Run()
    s = last_status(r)
    assert s["presence"] == 0 and s["emergency"] is False and s["tamper"] is False
    r.feed(i.EmergencyChanged(True))
    r.feed(i.DoorChanged(Door.ENTRY, closed=False))
    r.feed(i.DoorChanged(Door.EXIT, closed=False))
    s = last_status(r)
    assert s["state"] == "EMERGENCY" and s["emergency"] is True
    assert s["door_sensors"] == {"entry": "open", "exit": "open"}
    wire(s)
    r.feed(i.EmergencyChanged(False))  # doors commanded closed, still sensed open
    assert last_status(r)["door_sensors"] == {"entry": "moving", "exit": "moving"}
    r.feed(i.DoorChanged(Door.ENTRY, closed=True))
    assert last_status(r)["door_sensors"] == {"entry": "closed", "exit": "moving"}


def test_forced_door_and_occupancy_show_in_the_status() -> None:
    r = Run()
    assert last_status(r)["door_sensors"] == {"entry": "unknown", "exit": "unknown"}
    r.feed(i.DoorChanged(Door.ENTRY, closed=True))
    r.feed(i.DoorChanged(Door.EXIT, closed=False))  # nobody commanded it open
    s = last_status(r)
    assert r.gate.state is S.ALARM
    assert s["door_sensors"] == {"entry": "closed", "exit": "forced"}
    r.feed(i.PresenceChanged(1))
    assert last_status(r)["presence"] == 1  # published although the state did not change
    wire(last_status(r))


def test_opening_door_is_moving_until_sensed_open() -> None:
    r = Run()
    r.feed(i.DoorChanged(Door.ENTRY, closed=True))
    r.feed(i.DoorChanged(Door.EXIT, closed=True))
    r.feed(i.DocumentPlaced())
    r.feed(i.DocumentRead(r.txn, doc()))
    r.feed(i.ChipRead(r.txn, chip()))
    r.feed(i.ListsChecked(r.txn, CLEAR))
    assert last_status(r)["door_sensors"]["entry"] == "moving"
    r.feed(i.DoorChanged(Door.ENTRY, closed=False))
    assert last_status(r)["door_sensors"]["entry"] == "open"


def test_restored_link_clears_its_alarm() -> None:
    r = Run()
    r.feed(i.LinkLost("barrier", "no reply"))
    (raised,) = r.events(EventType.ALARM_RAISED)
    assert raised.reasons == (ReasonCode.GATE_LINK_LOST,)
    assert last_status(r)["links"]["barrier"] == "fault"
    acts = r.feed(i.LinkRestored("barrier"))
    (cleared,) = [a for a in acts if isinstance(a, Publish) and a.type is EventType.ALARM_CLEARED]
    assert cleared.reasons == (ReasonCode.GATE_LINK_LOST,)
    assert cleared.data["device"] == "barrier"
    assert last_status(r)["links"]["barrier"] == "ok"
    assert r.gate.state is S.OUT_OF_SERVICE  # back in service only by a supervisor
    assert "in_service" in last_status(r)["accepts"]


def test_restored_device_clears_the_fault_it_raised_and_nothing_else() -> None:
    r = Run()
    r.feed(i.DeviceFault("camera", "frozen"))
    r.feed(i.LinkLost("barrier", "no reply"))
    acts = r.feed(i.LinkRestored("camera"))
    (cleared,) = [a for a in acts if isinstance(a, Publish) and a.type is EventType.ALARM_CLEARED]
    assert cleared.reasons == (ReasonCode.GATE_DEVICE_FAULT,)
    assert cleared.data["device"] == "camera"
    assert r.feed(i.LinkRestored("scanner")) == []  # never lost: nothing to clear or say


def test_old_status_payloads_still_validate() -> None:
    """The schema grew compatibly: a status of the first version is still valid."""
    old = wire({"state": "IDLE", "presence": 0, "doors": {"entry": "closed", "exit": "closed"}})
    assert "accepts" not in old


def test_referral_gives_every_face_score_with_the_threshold_the_decision_applied() -> None:
    site = Policy.model_validate({"face": {"max_pad_score": 0.4, "min_quality": 0.3}})
    r = Run()
    r.gate = replace(r.gate, settings=settings(site))
    r.to_mantrap()
    bad = FaceResult(True, 0.9, 0.5, pad_score=0.45, quality=0.8, backend="test")
    r.feed(i.FaceVerified(r.txn, bad))
    (ref,) = r.events(EventType.REFERRAL_OPENED)
    assert ref.reasons == (ReasonCode.FACE_PAD,)
    f = ref.data["face"]
    assert (f["score"], f["threshold"]) == (0.9, 0.5)
    assert (f["pad_score"], f["pad_threshold"]) == (0.45, 0.4)
    assert (f["quality"], f["quality_threshold"]) == (0.8, 0.3)
    events.build_payload(
        ref,
        site="kul1",
        gate="g01",
        ts=dt.datetime.now(dt.UTC),
        event_id="0b7e4a4e-2f4c-4d47-9a53-3f1e0c6b8a12",
    )


def test_an_unattended_referral_clears_its_alarm_when_the_officer_resolves_it() -> None:
    r = Run()
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, face(False)))
    r.feed(i.Tick(), dt_s=301)  # nobody came: the referral is re-announced as an alarm
    (raised,) = r.events(EventType.ALARM_RAISED)
    assert raised.reasons == (ReasonCode.GATE_UNATTENDED,)
    acts = r.feed(i.OfficerCommand(Command.SEND_BACK, "al", "c1"))
    assert r.gate.state is S.REFERRED  # the traveller walks back out through the entry
    r.feed(i.PresenceChanged(0))
    assert r.gate.state is S.IDLE
    (cleared,) = r.events(EventType.ALARM_CLEARED)
    assert cleared.reasons == (ReasonCode.GATE_UNATTENDED,)
    assert acts[0] == AckCommand(Command.SEND_BACK, "c1", True)


def test_doors_are_unknown_while_the_controller_is_unreachable() -> None:
    r = Run()
    r.feed(i.DoorChanged(Door.ENTRY, closed=True))
    r.feed(i.DoorChanged(Door.EXIT, closed=True))
    r.feed(i.LinkLost("barrier", "no reply"))
    assert last_status(r)["door_sensors"] == {"entry": "unknown", "exit": "unknown"}
    r.feed(i.LinkRestored("barrier"))
    r.feed(i.DoorChanged(Door.ENTRY, closed=True))  # the driver reports the full state
    assert last_status(r)["door_sensors"]["entry"] == "closed"
