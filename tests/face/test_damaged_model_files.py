"""A damaged or hand-edited model file is refused when it is loaded, with its path, and
never silently weakens a check: a face or thumb threshold that is NaN, infinite, a
boolean or outside the score's range (a negative threshold matches everyone), a PAD
model whose threshold or statistics make every score NaN or below it (PAD off), and the
wrong JSON types that used to escape as ValueError / TypeError / AttributeError."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.errors import DeviceError
from drivers.face.fusion import fusion_frames
from drivers.face.match import Descriptor as FaceDescriptor
from drivers.face.pad import PadModel
from drivers.finger.matcher import Descriptor as FingerDescriptor

ROOT = Path(__file__).resolve().parents[2]
FACE = json.loads((ROOT / "models/face/dlib_resnet_v1.json").read_text())
PAD = json.loads((ROOT / "models/face/pad_texture.json").read_text())
FINGER = json.loads((ROOT / "models/finger/nbis_bozorth3.json").read_text())

Edit = Callable[[dict[str, Any]], object]
NAN, INF = float("nan"), float("inf")


def _write(tmp: Path, base: dict[str, Any], edit: Edit) -> Path:
    data = copy.deepcopy(base)
    edit(data)
    path = tmp / "model.json"
    path.write_text(json.dumps(data))  # NaN / Infinity as Python's json writes them
    return path


FACE_EDITS: dict[str, Edit] = {
    "threshold text": lambda d: d.update(threshold="abc"),
    "threshold list": lambda d: d.update(threshold=[0.5]),
    "threshold NaN": lambda d: d.update(threshold=NAN),
    "threshold -Infinity": lambda d: d.update(threshold=-INF),
    "threshold negative": lambda d: d.update(threshold=-5),
    "threshold zero": lambda d: d.update(threshold=0),
    "threshold above the score": lambda d: d.update(threshold=1.5),
    "threshold true": lambda d: d.update(threshold=True),
    "weights text": lambda d: d.update(weights="x"),
    "fusion list": lambda d: d.update(fusion=[1]),
    "fusion frames text": lambda d: d.update(fusion={"frames": "x"}),
    "borderline margin text": lambda d: d.update(borderline_margin="x"),
    "borderline margin NaN": lambda d: d.update(borderline_margin=NAN),
    "jitters text": lambda d: d.update(jitters="x"),
}


@pytest.mark.parametrize("case", FACE_EDITS)
def test_a_damaged_face_descriptor_is_refused_naming_it(tmp_path: Path, case: str) -> None:
    path = _write(tmp_path, FACE, FACE_EDITS[case])
    with pytest.raises(DeviceError, match=str(path)) as err:
        FaceDescriptor.load(path)
    assert err.value.device == "face"


def test_the_shipped_face_descriptors_load() -> None:
    for name in ("dlib_resnet_v1.json", "arcface_mbf.json"):
        desc = FaceDescriptor.load(ROOT / "models/face" / name)
        assert 0 < desc.threshold < 1 and fusion_frames(desc) >= 1


def test_an_uncalibrated_descriptor_still_loads_for_the_calibration_tool(tmp_path: Path) -> None:
    path = _write(tmp_path, FACE, lambda d: d.update(threshold=None))
    assert FaceDescriptor.load(path).data["threshold"] is None


FINGER_EDITS: dict[str, Edit] = {
    "threshold NaN": lambda d: d.update(threshold=NAN),
    "threshold -Infinity": lambda d: d.update(threshold=-INF),
    "threshold negative": lambda d: d.update(threshold=-3),
    "threshold zero": lambda d: d.update(threshold=0),
    "threshold true": lambda d: d.update(threshold=True),
    "min_minutiae text": lambda d: d.update(min_minutiae="x"),
    "min_minutiae negative": lambda d: d.update(min_minutiae=-1),
}


@pytest.mark.parametrize("case", FINGER_EDITS)
def test_a_damaged_thumb_descriptor_is_refused_naming_it(tmp_path: Path, case: str) -> None:
    path = _write(tmp_path, FINGER, FINGER_EDITS[case])
    with pytest.raises(DeviceError, match=str(path)) as err:
        FingerDescriptor.load(path)
    assert err.value.device == "finger"


def _features(d: dict[str, Any]) -> int:
    return len(d["mean"])


PAD_EDITS: dict[str, Edit] = {
    "not an object": lambda d: (d.clear(), d.update({"x": 1})),
    "threshold NaN": lambda d: d.update(threshold=NAN),
    "threshold above 1": lambda d: d.update(threshold=5),
    "threshold zero": lambda d: d.update(threshold=0),
    "std zero": lambda d: d.update(std=[0.0] * _features(d)),
    "std negative": lambda d: d.update(std=[-1.0] * _features(d)),
    "mean text": lambda d: d.update(mean=["a"] * _features(d)),
    "mean NaN": lambda d: d.update(mean=[NAN] * _features(d)),
    "weights nested": lambda d: d.update(weights=[[1.0]] * _features(d)),
    "weights Infinity": lambda d: d.update(weights=[INF] * _features(d)),
    "weights that overflow the score": lambda d: d.update(weights=[1e308] * _features(d)),
    "std that overflows the score": lambda d: d.update(std=[1e-300] * _features(d)),
    "bias null": lambda d: d.update(bias=None),
    "bias text": lambda d: d.update(bias="x"),
    "meta list": lambda d: d.update(meta=[1]),
    "borderline margin text": lambda d: d["meta"].update(borderline_margin="x"),
    "motion text": lambda d: d["meta"].update(motion="on"),
}


@pytest.mark.parametrize("case", PAD_EDITS)
def test_a_damaged_pad_model_is_refused_naming_it(tmp_path: Path, case: str) -> None:
    path = _write(tmp_path, PAD, PAD_EDITS[case])
    with pytest.raises(DeviceError, match=str(path)) as err:
        PadModel.load(path)
    assert err.value.device == "face"


def test_a_pad_model_that_is_a_json_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pad.json"
    path.write_text("[1, 2]")
    with pytest.raises(DeviceError, match=str(path)):
        PadModel.load(path)


def test_the_shipped_pad_model_loads_and_scores_finitely() -> None:
    import numpy as np

    model = PadModel.load(ROOT / "models/face/pad_texture.json")
    assert 0 < model.threshold < 1
    assert math.isfinite(float(model.logit(np.zeros(len(model.mean)))[0]))
