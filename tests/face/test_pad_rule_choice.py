"""sim/pad_rule.py judges training presentations as the verifier does (PAD.borderline, then
PAD.pool): the band's choice is only as good as this agreement."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from drivers.face.pad import PAD, PadModel, PadResult
from sim.pad_rule import Scored, judge, rates
from sim.train_pad import MODEL

THR = 0.675


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def rel(score: float, frames: int = 5) -> tuple[float, int]:
    """A burst as pad_rule stores it: its logits' sum relative to the threshold logit."""
    return ((logit(score) - logit(THR)) * frames, frames)


@pytest.mark.parametrize(
    "first, second",
    [
        (0.60, 0.80),
        (0.60, 0.55),
        (0.50, 0.99),
        (0.70, 0.60),
        (0.70, 0.66),
        (0.76, 0.40),
        (0.72, 0.74),
    ],
)
def test_pad_rule_judges_as_the_verifier_pools(first: float, second: float) -> None:
    real = PadModel.load(MODEL)
    pad = PAD(
        replace(
            real,
            threshold=THR,
            meta={**real.meta, "borderline_below": 0.15, "borderline_margin": 0.05},
        )
    )
    a = PadResult(first, first >= THR, {}, logit(first) * 5, 5)
    b = PadResult(second, second >= THR, {}, logit(second) * 5, 5)
    gate = pad.pool(a, b).score < THR if pad.borderline(a) else first < THR
    assert judge(Scored("print photo burst", rel(first), rel(second)), THR, 0.15, 0.05) == gate


def test_rates_count_no_face_as_a_rejected_attack() -> None:
    scored = [
        Scored("print photo burst", (0.0, 0), (0.0, 0)),  # no face: rejected
        Scored("print photo burst", rel(0.5), (0.0, 0)),  # accepted
        Scored("bona fide still (camera)", rel(0.9, 1), (0.0, 0)),  # rejected
        Scored("bona fide still (camera)", rel(0.3, 1), (0.0, 0)),
    ]
    r = rates(scored, lambda s: judge(s, THR, 0.0, 0.0))
    assert (r["apcer_n"], r["attacks"], r["bpcer_n"], r["bona"]) == (1, 2, 1, 2)
