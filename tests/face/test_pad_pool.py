"""A borderline PAD burst is judged again with the traveller's next burst, pooled."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.face.pad import PAD, PadModel, PadResult, sigmoid
from drivers.face.verifier import DlibFaceVerifier
from gate.reasons import ReasonCode as R

THR = 0.675
MODEL = Path(__file__).resolve().parents[2] / "models" / "face" / "pad_texture.json"


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def burst_result(score: float, frames: int = 5) -> PadResult:
    return PadResult(score, score >= THR, {}, logit(score) * frames, frames)


@dataclass
class ScriptedPad:
    """A PAD whose bursts score as scripted, pooled by the real ``PAD.pool`` rule."""

    scores: list[float]
    margin: float = 0.1
    below: float = 0.0
    model: PadModel = field(init=False)

    def __post_init__(self) -> None:
        real = PadModel.load(MODEL)
        meta = {**real.meta, "borderline_margin": self.margin, "borderline_below": self.below}
        self.model = replace(real, threshold=THR, meta=meta)
        self._real = PAD(self.model)

    def assess(self, frames: list[np.ndarray], faces: list[object]) -> PadResult:
        return burst_result(self.scores.pop(0), len(faces))

    def pool(self, first: PadResult, second: PadResult) -> PadResult:
        return self._real.pool(first, second)

    def borderline(self, first: PadResult) -> bool:
        return self._real.borderline(first)


@pytest.fixture
def london(faces_dir: Path) -> tuple[bytes, list[np.ndarray]]:
    frame = cv2.imread(str(faces_dir / "london_002" / "02.jpg"))
    return (faces_dir / "london_002" / "01.jpg").read_bytes(), [frame] * 3


def test_pool_is_the_mean_logit_over_both_bursts() -> None:
    pad = PAD(PadModel.load(MODEL))
    a, b = burst_result(0.70, 5), burst_result(0.60, 3)
    pooled = pad.pool(a, b)
    want = sigmoid((5 * logit(0.70) + 3 * logit(0.60)) / 8)
    assert pooled.score == pytest.approx(float(want))
    assert pooled.frames == 8


def test_a_borderline_burst_pooled_with_a_clearly_bona_fide_one_passes(
    verifier: DlibFaceVerifier, london: tuple[bytes, list[np.ndarray]], monkeypatch
) -> None:
    portrait, frames = london
    monkeypatch.setattr(verifier, "pad", ScriptedPad([0.70, 0.45]))
    first = verifier.check(portrait, frames).result
    assert first.reasons == (R.FACE_PAD,) and first.retryable
    second = verifier.check(portrait, frames)
    assert second.result.match, second.as_dict()
    assert second.pad["bursts"] == 2
    assert second.result.pad_score == pytest.approx(
        float(sigmoid((logit(0.70) + logit(0.45)) / 2)), abs=1e-6
    )


def test_a_second_burst_that_passes_alone_but_not_pooled_is_referred_for_good(
    verifier: DlibFaceVerifier, london: tuple[bytes, list[np.ndarray]], monkeypatch
) -> None:
    """A second chance would accept 0.66 < 0.675; pooled with 0.74 it is still an attack."""
    portrait, frames = london
    monkeypatch.setattr(verifier, "pad", ScriptedPad([0.74, 0.66]))
    assert verifier.check(portrait, frames).result.retryable
    second = verifier.check(portrait, frames).result
    assert second.reasons == (R.FACE_PAD,)
    assert not second.retryable  # no third burst


def test_a_clear_attack_gets_no_second_burst_and_is_not_held(
    verifier: DlibFaceVerifier, london: tuple[bytes, list[np.ndarray]], monkeypatch
) -> None:
    portrait, frames = london
    monkeypatch.setattr(verifier, "pad", ScriptedPad([0.90, 0.45]))
    first = verifier.check(portrait, frames).result
    assert first.reasons == (R.FACE_PAD,) and not first.retryable
    alone = verifier.check(portrait, frames)
    assert alone.result.match and alone.pad["bursts"] == 1


async def test_the_next_travellers_chip_read_drops_a_held_burst(
    verifier: DlibFaceVerifier, london: tuple[bytes, list[np.ndarray]], monkeypatch
) -> None:
    portrait, frames = london
    monkeypatch.setattr(verifier, "pad", ScriptedPad([0.70, 0.45]))
    assert verifier.check(portrait, frames).result.retryable
    await verifier.prepare(portrait)  # a new transaction (the same passport, even)
    assert verifier.check(portrait, frames).pad["bursts"] == 1


def test_a_held_burst_is_pooled_only_with_the_same_portrait(
    verifier: DlibFaceVerifier,
    london: tuple[bytes, list[np.ndarray]],
    faces_dir: Path,
    monkeypatch,
) -> None:
    portrait, frames = london
    monkeypatch.setattr(verifier, "pad", ScriptedPad([0.70, 0.45]))
    assert verifier.check(portrait, frames).result.retryable
    other = (faces_dir / "london_004" / "01.jpg").read_bytes()
    assert verifier.check(other, frames).pad["bursts"] == 1


def test_the_borderline_band_lies_on_both_sides_of_the_threshold() -> None:
    """The rule itself: [threshold - below, threshold + above) is too close to call."""
    real = PadModel.load(MODEL)
    meta = {**real.meta, "borderline_margin": 0.1, "borderline_below": 0.05}
    pad = PAD(replace(real, threshold=THR, meta=meta))
    calls = {
        s: pad.borderline(burst_result(s)) for s in (0.60, 0.624, 0.626, 0.67, 0.70, 0.774, 0.776)
    }
    assert calls == {
        0.60: False,  # clearly bona fide: decided at once
        0.624: False,
        0.626: True,  # just under the threshold: an attack may have slipped under once
        0.67: True,
        0.70: True,  # just over: a bona fide face may clear it with the next burst
        0.774: True,
        0.776: False,  # clearly an attack: referred at once
    }


def test_an_attack_just_under_the_threshold_is_not_accepted_on_one_burst(
    verifier: DlibFaceVerifier, london: tuple[bytes, list[np.ndarray]], monkeypatch
) -> None:
    """0.66 passes a one-burst rule; pooled with its next burst (0.72) it is an attack."""
    portrait, frames = london
    monkeypatch.setattr(verifier, "pad", ScriptedPad([0.66, 0.72], below=0.05))
    first = verifier.check(portrait, frames)
    assert not first.result.match
    assert first.result.reasons == (R.FACE_PAD,) and first.result.retryable
    assert first.pad["borderline"] and not first.pad["attack"]
    second = verifier.check(portrait, frames).result
    assert second.reasons == (R.FACE_PAD,) and not second.retryable
    assert second.pad_score == pytest.approx(
        float(sigmoid((logit(0.66) + logit(0.72)) / 2)), abs=1e-6
    )


def test_a_bona_fide_face_just_under_the_threshold_passes_on_its_second_burst(
    verifier: DlibFaceVerifier, london: tuple[bytes, list[np.ndarray]], monkeypatch
) -> None:
    portrait, frames = london
    monkeypatch.setattr(verifier, "pad", ScriptedPad([0.66, 0.50], below=0.05))
    assert verifier.check(portrait, frames).result.retryable
    second = verifier.check(portrait, frames)
    assert second.result.match, second.as_dict()
    assert second.pad["bursts"] == 2


def test_a_clearly_bona_fide_burst_is_decided_on_one_burst(
    verifier: DlibFaceVerifier, london: tuple[bytes, list[np.ndarray]], monkeypatch
) -> None:
    portrait, frames = london
    monkeypatch.setattr(verifier, "pad", ScriptedPad([0.55], below=0.05))
    first = verifier.check(portrait, frames)
    assert first.result.match and first.pad["bursts"] == 1
    assert verifier._held_pad is None
