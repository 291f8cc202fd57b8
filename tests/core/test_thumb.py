"""The thumb channel in the core (issue 19): which channel decides per traveller
category, the thumb asked only when the policy, the chip and the gate allow it, the
face rule where they do not (with the reason recorded), the thumb step's own deadline,
and what the events say. A test-double verdict stands in for the verifier.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace

import pytest

from gate import inputs as i
from gate import machine
from gate.actions import CaptureThumb, EventType, ForgetBiometrics, OpenDoor, Publish
from gate.events import build_payload
from gate.inputs import Door
from gate.reasons import ReasonCode
from gate.results import Check, ChipResult
from tests.core.helpers import (
    CLEAR,
    T0,
    THUMB_TIMEOUT,
    doc,
    eac_chip,
    face,
    settings,
    thumb,
    thumb_policy,
)

S = machine.State
R = ReasonCode
WHEN = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
EVENT_ID = "00000000-0000-4000-8000-000000000000"


class Run:
    """One traveller through a gate whose citizens are under ``mode``."""

    def __init__(self, mode: str, thumb_reader: bool = True, **kw: float) -> None:
        self.now = T0
        s = replace(settings(thumb_policy(mode), thumb_reader), **kw)
        self.gate = machine.initial(s, self.now, boot="t")
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

    def to_mantrap(self, chip: ChipResult | None = None) -> None:
        self.feed(i.DocumentPlaced())
        self.feed(i.DocumentRead(self.txn, doc()))
        self.feed(i.ChipRead(self.txn, chip or eac_chip()))
        assert OpenDoor(Door.ENTRY) in self.feed(i.ListsChecked(self.txn, CLEAR))
        self.feed(i.PresenceChanged(1))
        self.feed(i.DoorChanged(Door.ENTRY, closed=True))
        assert self.gate.state is S.IN_MANTRAP

    def events(self, kind: EventType) -> list[Publish]:
        found = [a for a in self.actions if isinstance(a, Publish) and a.type is kind]
        for ev in found:  # every event valid against its shipped schema
            build_payload(ev, site="s1", gate="g1", ts=WHEN, event_id=EVENT_ID)
        return found

    def outcome(self) -> Publish:
        self.feed(i.PresenceChanged(0))  # the traveller leaves, if the exit opened
        (out,) = self.events(EventType.CROSSING_ACCEPTED) + self.events(EventType.REFERRAL_OPENED)
        return out


def thumbs(acts: list[object]) -> list[CaptureThumb]:
    return [a for a in acts if isinstance(a, CaptureThumb)]


# --- face only: nothing changes for existing policies ---------------------------------


def test_face_policy_never_asks_the_thumb() -> None:
    r = Run("face")
    r.to_mantrap()
    assert not thumbs(r.feed(i.FaceVerified(r.txn, face(False))))
    out = r.outcome()
    assert out.type is EventType.REFERRAL_OPENED and out.reasons == (R.FACE_NO_MATCH,)
    assert out.data["biometric"] == {"decided_by": "face"}
    assert "thumb" not in out.data


# --- face then thumb ----------------------------------------------------------------------


def test_failed_face_then_matching_thumb_crosses() -> None:
    r = Run("face_then_thumb")
    r.to_mantrap()
    assert thumbs(r.feed(i.FaceVerified(r.txn, face(False)))) == [
        CaptureThumb(r.txn, THUMB_TIMEOUT)
    ]
    assert r.gate.state is S.IN_MANTRAP and not r.gate.exit_open
    assert OpenDoor(Door.EXIT) in r.feed(i.ThumbVerified(r.txn, thumb(True)))
    out = r.outcome()
    assert out.type is EventType.CROSSING_ACCEPTED
    assert out.data["biometric"] == {"decided_by": "thumb", "mode": "face_then_thumb"}
    assert out.data["timings"]["thumb"] == 0.4


def test_failed_face_then_wrong_thumb_refers_with_both_scores() -> None:
    r = Run("face_then_thumb")
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, face(False)))
    acts = r.feed(i.ThumbVerified(r.txn, thumb(False)))
    assert r.gate.state is S.REFERRED and not r.gate.exit_open
    assert ForgetBiometrics(r.txn, keep_for_referral=True) in acts
    out = r.outcome()
    assert out.reasons == (R.FACE_NO_MATCH, R.THUMB_NO_MATCH)
    assert out.data["biometric"]["decided_by"] == "thumb"
    assert out.data["face"]["score"] == 0.2 and out.data["face"]["threshold"] == 0.5
    assert out.data["thumb"]["score"] == 7.0 and out.data["thumb"]["threshold"] == 40.0
    assert out.data["thumb"]["match"] is False


def test_good_face_crosses_without_the_thumb() -> None:
    r = Run("face_then_thumb")
    r.to_mantrap()
    acts = r.feed(i.FaceVerified(r.txn, face(True)))
    assert OpenDoor(Door.EXIT) in acts and not thumbs(acts)
    assert r.outcome().data["biometric"]["decided_by"] == "face"


@pytest.mark.parametrize("reason", [R.FACE_PAD, R.FACE_MULTIPLE, R.FACE_UNREADABLE])
def test_the_thumb_never_overturns_an_attack_or_a_second_face(reason: ReasonCode) -> None:
    r = Run("face_then_thumb")
    r.to_mantrap()
    bad = replace(face(False), reasons=(reason,))
    assert not thumbs(r.feed(i.FaceVerified(r.txn, bad)))
    assert r.gate.state is S.REFERRED
    assert reason in r.outcome().reasons


def test_a_thumb_score_over_the_threshold_with_no_match_or_nan_refers() -> None:
    for result in (thumb(False, score=90.0), thumb(True, score=math.nan), thumb(True, score=None)):
        r = Run("face_then_thumb")
        r.to_mantrap()
        r.feed(i.FaceVerified(r.txn, face(False)))
        r.feed(i.ThumbVerified(r.txn, result))
        assert r.gate.state is S.REFERRED, result


def test_site_threshold_on_top_of_the_matchers() -> None:
    site = thumb_policy("face_then_thumb").model_copy(
        update={"thumb": thumb_policy("face").thumb.model_copy(update={"min_score": 70.0})}
    )
    r = Run("face_then_thumb")
    r.gate = replace(r.gate, settings=settings(site, thumb_reader=True))
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, face(False)))
    r.feed(i.ThumbVerified(r.txn, thumb(True)))  # 61 >= 40, < 70
    out = r.outcome()
    assert R.THUMB_NO_MATCH in out.reasons and out.data["thumb"]["threshold"] == 70.0


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (thumb(False, score=None, presented=False, detail="no finger"), R.THUMB_NOT_GIVEN),
        (thumb(False, score=None, reader_fault=True, detail="usb gone"), R.THUMB_READER_FAULT),
    ],
)
def test_no_thumb_or_a_reader_fault_refers_this_traveller_only(result, reason) -> None:
    r = Run("face_then_thumb")
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, face(False)))
    r.feed(i.ThumbVerified(r.txn, result))
    assert r.gate.state is S.REFERRED and not r.gate.faults  # the lane stays in service
    out = r.outcome()
    assert out.reasons == (R.FACE_NO_MATCH, reason)
    assert out.data["thumb"]["score"] is None


# --- both --------------------------------------------------------------------------------


def test_both_asks_the_thumb_after_a_good_face_and_needs_it() -> None:
    r = Run("both")
    r.to_mantrap()
    acts = r.feed(i.FaceVerified(r.txn, face(True)))
    assert thumbs(acts) and OpenDoor(Door.EXIT) not in acts
    assert OpenDoor(Door.EXIT) in r.feed(i.ThumbVerified(r.txn, thumb(True)))
    assert r.outcome().data["biometric"] == {"decided_by": "face+thumb", "mode": "both"}


def test_both_refers_a_wrong_thumb_after_a_good_face() -> None:
    r = Run("both")
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, face(True)))
    r.feed(i.ThumbVerified(r.txn, thumb(False)))
    out = r.outcome()
    assert out.type is EventType.REFERRAL_OPENED and out.reasons == (R.THUMB_NO_MATCH,)
    assert out.data["face"]["match"] is True and out.data["thumb"]["match"] is False


def test_both_refers_a_failed_face_without_asking_the_thumb() -> None:
    r = Run("both")
    r.to_mantrap()
    assert not thumbs(r.feed(i.FaceVerified(r.txn, face(False))))
    assert r.outcome().reasons == (R.FACE_NO_MATCH,)


# --- the chip or the gate cannot give the thumb: the face rule, reason recorded ---------


FALLBACKS = [
    (eac_chip(Check.FAILED, (), R.CHIP_TA_REFUSED), R.CHIP_TA_REFUSED),
    (eac_chip(Check.FAILED, (), None), R.CHIP_TA_REFUSED),
    (eac_chip(Check.FAILED, (), R.CHIP_TA_CERT_EXPIRED), R.CHIP_TA_CERT_EXPIRED),
    (eac_chip(Check.NOT_RUN, (), R.CHIP_TA_NO_CHAIN), R.CHIP_TA_NO_CHAIN),
    (eac_chip(Check.NOT_SUPPORTED, ()), R.CHIP_NO_FINGERS),  # no DG3 on the chip
    (eac_chip(Check.PASSED, ()), R.CHIP_NO_FINGERS),  # DG3 without a usable finger
]


@pytest.mark.parametrize("mode", ["both", "face_then_thumb"])
@pytest.mark.parametrize(("chip", "why"), FALLBACKS)
def test_no_thumb_from_the_chip_falls_back_to_the_face_rule(
    mode: str, chip: ChipResult, why: ReasonCode
) -> None:
    r = Run(mode)
    r.to_mantrap(chip)
    acts = r.feed(i.FaceVerified(r.txn, face(True)))
    assert OpenDoor(Door.EXIT) in acts and not thumbs(acts)
    out = r.outcome()
    assert out.type is EventType.CROSSING_ACCEPTED
    assert out.data["biometric"] == {"decided_by": "face", "mode": mode, "fallback": why.value}


@pytest.mark.parametrize(("chip", "why"), FALLBACKS[:1])
def test_failed_face_without_a_thumb_channel_refers_with_the_reason_recorded(
    chip: ChipResult, why: ReasonCode
) -> None:
    r = Run("face_then_thumb")
    r.to_mantrap(chip)
    assert not thumbs(r.feed(i.FaceVerified(r.txn, face(False))))
    out = r.outcome()
    assert out.reasons == (R.FACE_NO_MATCH,)  # the fallback is recorded, not a reason
    assert out.data["biometric"]["fallback"] == why.value


def test_no_thumb_reader_at_the_gate_falls_back() -> None:
    r = Run("face_then_thumb", thumb_reader=False)
    r.to_mantrap()
    assert not thumbs(r.feed(i.FaceVerified(r.txn, face(False))))
    assert r.outcome().data["biometric"]["fallback"] == "thumb_unavailable"


def test_no_thumb_decider_is_no_thumb_channel() -> None:
    r = Run("both", decide_thumb=None)  # type: ignore[arg-type]
    r.to_mantrap()
    assert OpenDoor(Door.EXIT) in r.feed(i.FaceVerified(r.txn, face(True)))
    assert r.outcome().data["biometric"]["fallback"] == "thumb_unavailable"


# --- the thumb step's deadline and stale answers --------------------------------------------


def test_a_reader_that_never_answers_refers_after_the_thumb_deadline() -> None:
    r = Run("face_then_thumb")
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, face(False)))
    assert r.feed(i.Tick(), dt_s=THUMB_TIMEOUT + machine.THUMB_GRACE_S - 0.5) == []
    r.feed(i.Tick(), dt_s=1.0)
    assert r.gate.state is S.REFERRED and not r.gate.faults
    out = r.outcome()
    assert out.reasons == (R.FACE_NO_MATCH, R.THUMB_READER_FAULT)


def test_the_thumb_step_is_not_cut_short_by_the_mantrap_timeout() -> None:
    r = Run("face_then_thumb", thumb_timeout_s=30.0)
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, face(False)))
    assert r.feed(i.Tick(), dt_s=20.0) == []  # past in_mantrap (15 s), within the thumb's
    assert r.gate.state is S.IN_MANTRAP
    assert OpenDoor(Door.EXIT) in r.feed(i.ThumbVerified(r.txn, thumb(True)))


def test_stale_and_repeated_thumb_answers_are_ignored() -> None:
    r = Run("face_then_thumb")
    r.to_mantrap()
    assert r.feed(i.ThumbVerified(r.txn, thumb(True))) == []  # nobody asked yet
    r.feed(i.FaceVerified(r.txn, face(False)))
    assert r.feed(i.ThumbVerified("other-000001", thumb(True))) == []
    r.feed(i.ThumbVerified(r.txn, thumb(False)))
    assert r.gate.state is S.REFERRED
    assert r.feed(i.ThumbVerified(r.txn, thumb(True))) == []
    assert not r.gate.exit_open


def test_an_officer_release_after_a_thumb_referral_opens_the_exit() -> None:
    r = Run("face_then_thumb")
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, face(False)))
    r.feed(i.ThumbVerified(r.txn, thumb(False)))
    acts = r.feed(i.OfficerCommand(i.Command.RELEASE, "o1", "c1", r.txn))
    assert OpenDoor(Door.EXIT) in acts


def test_emergency_during_the_thumb_step_aborts_and_forgets() -> None:
    r = Run("both")
    r.to_mantrap()
    r.feed(i.FaceVerified(r.txn, face(True)))
    txn = r.txn
    acts = r.feed(i.EmergencyChanged(True))
    assert ForgetBiometrics(txn) in acts  # the vault drops DG3 and stops the reader
    assert r.feed(i.ThumbVerified(txn, thumb(True))) == []


def test_a_site_may_let_a_matching_thumb_overturn_a_pad_flag() -> None:
    """``thumb.overturns_pad``: PAD's false flags on bona fide faces are most genuine
    referrals; a second face or an unreadable image still never is."""
    site = thumb_policy("face_then_thumb").model_copy(
        update={"thumb": thumb_policy("face").thumb.model_copy(update={"overturns_pad": True})}
    )
    r = Run("face_then_thumb")
    r.gate = replace(r.gate, settings=settings(site, thumb_reader=True))
    r.to_mantrap()
    flagged = replace(face(False), reasons=(R.FACE_PAD, R.FACE_NO_MATCH))
    assert thumbs(r.feed(i.FaceVerified(r.txn, flagged)))
    assert OpenDoor(Door.EXIT) in r.feed(i.ThumbVerified(r.txn, thumb(True)))
    r2 = Run("face_then_thumb")
    r2.gate = replace(r2.gate, settings=settings(site, thumb_reader=True))
    r2.to_mantrap()
    two = replace(face(False), reasons=(R.FACE_PAD, R.FACE_MULTIPLE))
    assert not thumbs(r2.feed(i.FaceVerified(r2.txn, two)))
