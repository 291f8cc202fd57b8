"""One more burst before referring when the face decision is borderline (issue 23.3).

A reject that a fresh burst could reverse (a score just under the threshold, a PAD score
just over it, no frame good enough) gets one more burst while the mantrap timeout leaves
room for it; a clear reject, a second borderline one, or no time left refers at once.
"""

from __future__ import annotations

from dataclasses import replace

from gate import inputs as i
from gate.actions import CaptureFace, EventType, OpenDoor
from gate.reasons import ReasonCode
from gate.results import FaceResult
from tests.core.helpers import CLEAR, TIMEOUTS, chip, doc, face
from tests.core.test_machine import Run, S


def borderline() -> FaceResult:
    return replace(face(False), score=0.48, retryable=True, elapsed_s=0.2)


def test_borderline_reject_captures_one_more_burst_then_accepts() -> None:
    r = Run()
    r.to_mantrap()
    acts = r.feed(i.FaceVerified(r.txn, borderline()), dt_s=0.3)
    assert acts == [CaptureFace(r.txn)]
    assert r.gate.state is S.IN_MANTRAP and not r.events(EventType.REFERRAL_OPENED)
    assert OpenDoor(i.Door.EXIT) in r.feed(i.FaceVerified(r.txn, face(True)), dt_s=0.3)
    r.feed(i.PresenceChanged(0))
    (accepted,) = r.events(EventType.CROSSING_ACCEPTED)
    assert accepted.data["timings"]["face_first"] == 0.2  # the borderline burst


def test_second_borderline_reject_refers() -> None:
    r = Run()
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, borderline()), dt_s=0.3)
    acts = r.feed(i.FaceVerified(r.txn, borderline()), dt_s=0.3)
    assert not any(isinstance(a, CaptureFace) for a in acts)
    assert r.gate.state is S.REFERRED
    (ref,) = r.events(EventType.REFERRAL_OPENED)
    assert ref.reasons == (ReasonCode.FACE_NO_MATCH,)
    assert ref.data["face"]["score"] == 0.48


def test_clear_reject_refers_without_another_burst() -> None:
    r = Run()
    r.to_mantrap()
    acts = r.feed(i.FaceVerified(r.txn, face(False)), dt_s=0.3)
    assert not any(isinstance(a, CaptureFace) for a in acts)
    assert r.gate.state is S.REFERRED


def test_no_second_burst_when_the_timeout_leaves_no_room() -> None:
    r = Run()
    r.to_mantrap()
    slow = TIMEOUTS[S.IN_MANTRAP] * 0.6  # a second burst as slow would hit the timeout
    acts = r.feed(i.FaceVerified(r.txn, borderline()), dt_s=slow)
    assert not any(isinstance(a, CaptureFace) for a in acts)
    assert r.gate.state is S.REFERRED


def test_answer_of_an_ended_transaction_starts_no_burst() -> None:
    r = Run()
    r.to_mantrap()
    old = r.txn
    r.feed(i.FaceVerified(old, face(False)))
    assert r.feed(i.FaceVerified(old, borderline())) == []


# --- the burst starts as the traveller is seen inside, while the entry closes ----------


def walk_in(r: Run) -> list[object]:
    r.feed(i.DocumentPlaced())
    r.feed(i.DocumentRead(r.txn, doc()))
    r.feed(i.ChipRead(r.txn, chip()))
    r.feed(i.ListsChecked(r.txn, CLEAR))
    r.feed(i.DoorChanged(i.Door.ENTRY, closed=False))
    return r.feed(i.PresenceChanged(1))


def test_capture_starts_when_the_traveller_is_inside_not_when_the_entry_has_closed() -> None:
    r = Run()
    acts = walk_in(r)
    assert CaptureFace(r.txn) in acts and r.gate.state is S.ENTRY_OPEN
    acts = r.feed(i.DoorChanged(i.Door.ENTRY, closed=True))
    assert r.gate.state is S.IN_MANTRAP
    assert not any(isinstance(a, CaptureFace) for a in acts)  # one burst is on its way


def test_face_result_before_the_entry_closed_waits_for_it() -> None:
    r = Run()
    walk_in(r)
    assert r.feed(i.FaceVerified(r.txn, face(True))) == []  # the exit stays shut
    assert r.gate.state is S.ENTRY_OPEN and not r.gate.exit_open
    acts = r.feed(i.DoorChanged(i.Door.ENTRY, closed=True))
    assert OpenDoor(i.Door.EXIT) in acts and r.gate.state is S.EXIT_OPEN


def test_early_face_result_never_opens_the_exit_for_two_people() -> None:
    r = Run()
    walk_in(r)
    r.feed(i.FaceVerified(r.txn, face(True)))
    r.feed(i.PresenceChanged(2))  # a tailgater
    acts = r.feed(i.DoorChanged(i.Door.ENTRY, closed=True))
    assert OpenDoor(i.Door.EXIT) not in acts and not r.gate.exit_open


def test_early_borderline_result_gets_its_second_burst_in_the_mantrap() -> None:
    r = Run()
    walk_in(r)
    r.feed(i.FaceVerified(r.txn, borderline()))
    acts = r.feed(i.DoorChanged(i.Door.ENTRY, closed=True))
    assert CaptureFace(r.txn) in acts and r.gate.state is S.IN_MANTRAP
    assert OpenDoor(i.Door.EXIT) in r.feed(i.FaceVerified(r.txn, face(True)))
