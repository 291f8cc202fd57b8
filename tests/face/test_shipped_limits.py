"""The shipped site policy never overrules the calibrated PAD threshold downwards.

A ``face.max_pad_score`` below the PAD model's threshold refers bona fide travellers the
model passed: the example policy's 0.5 (model threshold 0.675) referred 5 of 60 genuine
travellers in bench/throughput.py, every one with a PAD score between 0.5 and 0.675.
"""

from __future__ import annotations

from pathlib import Path

from drivers.face.pad import PadModel
from gate.policy_config import load_policy

REPO = Path(__file__).resolve().parents[2]


def test_example_policy_pad_limit_is_not_below_the_model_threshold() -> None:
    limit = load_policy(REPO / "config/policy.example.yaml").face.max_pad_score
    model = PadModel.load(REPO / "models/face/pad_texture.json")
    assert limit is None or limit >= model.threshold


def test_borderline_margins_are_small_and_stated() -> None:
    import json

    desc = json.loads((REPO / "models/face/dlib_resnet_v1.json").read_text())
    model = PadModel.load(REPO / "models/face/pad_texture.json")
    assert 0 < desc["borderline_margin"] <= 0.05  # score units, threshold about 0.45
    # a borderline PAD burst is pooled with one more (PAD.pool), never judged alone. The
    # band over the threshold lets attacks through that one burst refused (pooled with a
    # lucky second burst), the band under it catches attacks that slipped under once:
    # sim/pad_rule.py chose 0.15 under / 0.05 over on training settings, out of fold
    # (APCER 14.9 -> 13.5 %, BPCER unchanged); held-out APCER 4.2 -> 3.1 % (docs/bench-face.md)
    assert 0 < model.meta["borderline_margin"] <= 0.1
    assert 0 < model.meta["borderline_below"] <= 0.2
    from sim.train_pad import BORDERLINE_BELOW, BORDERLINE_MARGIN

    # a retrained model keeps them
    assert model.meta["borderline_margin"] == BORDERLINE_MARGIN
    assert model.meta["borderline_below"] == BORDERLINE_BELOW
