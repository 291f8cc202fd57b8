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
from tests.core.helpers import TIMEOUTS, face
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
