"""What the hall shows beyond state: doors and people, conditions, alarms, the last hour.

Messages are built by the gate's own code (``gate.machine`` for statuses where it
matters, ``gate.events.build_payload`` for the wire), so a field the core publishes and
the console ignores shows up here.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from console.state import Hall
from gate import inputs as i
from gate import machine
from gate.actions import EventType, Publish
from gate.inputs import Door
from gate.reasons import ReasonCode
from tests.console.helpers import SITE, message
from tests.core.helpers import T0, settings


def _hall(*gates: str) -> Hall:
    return Hall(SITE, list(gates or ("g01", "g02")))


def feed(hall: Hall, *msgs: tuple[str, bytes], now: float | None = None) -> None:
    for t, raw in msgs:
        hall.ingest(t, raw, now or time.time())


def core_statuses(*inputs: i.Input) -> list[dict[str, Any]]:
    """The ``gate.status`` data the real core publishes for these inputs."""
    g = machine.initial(settings(), T0, boot="b")
    out: list[dict[str, Any]] = []
    for ev in (i.Started(), *inputs):
        g, acts = machine.step(g, ev, T0)
        out += [a.data for a in acts if isinstance(a, Publish) and a.type is EventType.GATE_STATUS]
    return out


def status_msg(gate: str, data: dict[str, Any]) -> tuple[str, bytes]:
    return message(gate, EventType.GATE_STATUS, **data)


def test_emergency_shows_doors_open_and_the_emergency() -> None:
    hall = _hall()
    *_, last = core_statuses(
        i.EmergencyChanged(True),
        i.DoorChanged(Door.ENTRY, closed=False),
        i.DoorChanged(Door.EXIT, closed=False),
    )
    feed(hall, status_msg("g01", last))
    snap = hall.view("g01").snapshot(time.time())
    assert snap["doors"] == {"entry": "open", "exit": "open"}
    assert snap["emergency"] is True and snap["tamper"] is False
    assert snap["condition"] == "emergency"


def test_forced_door_occupancy_and_tamper_reach_the_card() -> None:
    hall = _hall()
    *_, last = core_statuses(
        i.DoorChanged(Door.ENTRY, closed=True),
        i.DoorChanged(Door.EXIT, closed=False),
        i.PresenceChanged(1),
        i.TamperChanged(True),
    )
    feed(hall, status_msg("g01", last))
    snap = hall.view("g01").snapshot(time.time())
    assert snap["doors"] == {"entry": "closed", "exit": "forced"}
    assert snap["presence"] == 1 and snap["tamper"] is True
    assert snap["condition"] == "alarm"


def test_lost_controller_is_faulty_not_unknown_and_counted() -> None:
    hall = _hall("g01", "g02", "g03", "g04")
    *_, lost = core_statuses(i.LinkLost("barrier", "no reply"))
    feed(
        hall,
        status_msg("g01", lost),
        message(
            "g01", EventType.ALARM_RAISED, None, (ReasonCode.GATE_LINK_LOST,), device="barrier"
        ),
        status_msg("g02", core_statuses()[-1]),
        message("g03", EventType.GATE_STATUS, state="OFFLINE", online=False),
    )
    conds = {g["gate"]: g["condition"] for g in hall.snapshot(time.time())}
    assert conds == {"g01": "faulty", "g02": "in_service", "g03": "offline", "g04": "unknown"}
    assert hall.view("g01").snapshot(time.time())["links"]["barrier"] == "down"
    counts = hall.stats(time.time())["conditions"]
    assert counts["faulty"] == 1 and counts["offline"] == 1 and counts["unknown"] == 1


def test_officer_out_of_service_is_not_faulty() -> None:
    hall = _hall()
    *_, oos = core_statuses(i.OfficerCommand(i.Command.OUT_OF_SERVICE, "sam", "c1"))
    feed(hall, status_msg("g01", oos))
    assert hall.view("g01").snapshot(time.time())["condition"] == "out_of_service"


def test_alarm_clears_when_its_cause_clears_device_by_device() -> None:
    hall = _hall()
    link = (ReasonCode.GATE_LINK_LOST,)
    feed(
        hall,
        message("g01", EventType.ALARM_RAISED, None, link, device="barrier"),
        message("g01", EventType.ALARM_RAISED, None, link, device="camera"),
        message("g01", EventType.GATE_STATUS, state="OUT_OF_SERVICE"),
        message("g01", EventType.ALARM_CLEARED, None, link, device="barrier"),
    )
    snap = hall.view("g01").snapshot(time.time())
    assert [a["device"] for a in snap["alarms"]] == ["camera"]  # still OUT_OF_SERVICE


def test_accepts_come_from_the_gate_status() -> None:
    hall = _hall()
    feed(hall, status_msg("g01", core_statuses()[-1]))
    assert hall.view("g01").snapshot(time.time())["accepts"] == ["out_of_service"]
    feed(hall, message("g02", EventType.GATE_STATUS, state="IDLE"))  # an older gate
    assert hall.view("g02").snapshot(time.time())["accepts"] is None
    feed(hall, message("g01", EventType.GATE_STATUS, state="OFFLINE", online=False))
    assert hall.view("g01").snapshot(time.time())["accepts"] == []  # nobody to command


def test_last_hour_per_gate_and_hall() -> None:
    hall = _hall()
    now = time.time()
    feed(
        hall,
        message("g01", EventType.CROSSING_ACCEPTED, "b-1", timings={"total": 2.0}),
        message("g01", EventType.CROSSING_ACCEPTED, "b-2", timings={"total": 4.0}),
        message(
            "g01",
            EventType.REFERRAL_OPENED,
            "b-3",
            (ReasonCode.FACE_NO_MATCH,),
            timings={"total": 9.0},
        ),
        message(
            "g02",
            EventType.REFERRAL_OPENED,
            "c-1",
            (ReasonCode.FACE_NO_MATCH, ReasonCode.DOC_EXPIRED),
            timings={"total": 1.0},
        ),
        now=now,
    )
    g1 = hall.view("g01").snapshot(now)["hour"]
    assert g1["crossings"] == 2 and g1["referrals"] == 1 and g1["travellers"] == 3
    assert g1["by_reason"] == {"face_no_match": 1}
    assert g1["median_s"] == 4.0
    h = hall.stats(now)["hour"]
    assert h["crossings"] == 2 and h["referrals"] == 2 and h["travellers"] == 4
    assert h["by_reason"] == {"face_no_match": 2, "doc_expired": 1}
    assert h["median_s"] == 3.0  # of 2, 4, 9, 1
    later = hall.stats(now + 3601)["hour"]
    assert later["travellers"] == 0 and later["median_s"] is None


def test_referral_carries_face_scores_with_thresholds() -> None:
    hall = _hall()
    face = {
        "match": False,
        "score": 0.41,
        "threshold": 0.6,
        "pad_score": 0.7,
        "pad_threshold": 0.5,
        "quality": 0.9,
        "quality_threshold": 0.3,
    }
    feed(
        hall,
        message("g01", EventType.GATE_STATUS, state="REFERRED"),
        message("g01", EventType.REFERRAL_OPENED, "b-1", (ReasonCode.FACE_PAD,), face=face),
    )
    ref = hall.view("g01").snapshot(time.time())["referral"]
    assert ref["face"]["pad_threshold"] == 0.5 and ref["face"]["threshold"] == 0.6


def test_a_released_referral_counts_as_crossed_not_as_a_second_traveller() -> None:
    hall = _hall()
    feed(
        hall,
        message("g01", EventType.REFERRAL_OPENED, "b-1", (ReasonCode.FACE_NO_MATCH,)),
        message("g01", EventType.REFERRAL_RESOLVED, "b-1", resolution="release", officer="al"),
    )
    h = hall.view("g01").snapshot(time.time())["hour"]
    assert (h["travellers"], h["crossings"], h["referrals"]) == (1, 1, 1)


def test_what_one_gate_sends_cannot_grow_the_console_without_bound() -> None:
    hall = _hall()
    now = time.time()
    for n in range(200):
        feed(
            hall,
            message(
                "g01", EventType.ALARM_RAISED, None, (ReasonCode.GATE_LINK_LOST,), device=f"dev{n}"
            ),
            now=now,
        )
    view = hall.view("g01")
    assert len(view.alarms) == 32 and "gate_link_lost:dev199" in view.alarms
    assert len(view.links) <= 16
    # a gate whose clock runs a day ahead: its crossings count now, and leave in an hour
    ahead = dt.datetime.fromtimestamp(now + 86400, dt.UTC)
    raw = message("g01", EventType.CROSSING_ACCEPTED, "b-9")
    msg = json.loads(raw[1])
    msg["ts"] = ahead.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    hall.ingest(raw[0], json.dumps(msg).encode(), now)
    assert view.snapshot(now)["hour"]["crossings"] == 1
    assert view.snapshot(now + 3601)["hour"]["crossings"] == 0
    assert view.crossings_this_hour(now + 3601) == 0


def test_status_links_are_the_whole_list_and_scanner_is_the_reader() -> None:
    hall = _hall()
    *_, lost = core_statuses(i.LinkLost("scanner", "gone"))
    feed(hall, status_msg("g01", lost))
    links = hall.view("g01").snapshot(time.time())["links"]
    assert links["reader"] == "down" and "scanner" not in links and links["broker"] == "up"
    feed(
        hall,
        message(
            "g01", EventType.ALARM_CLEARED, None, (ReasonCode.GATE_LINK_LOST,), device="scanner"
        ),
    )
    assert hall.view("g01").snapshot(time.time())["links"]["reader"] == "up"
