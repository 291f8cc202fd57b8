"""The match fused over a burst's good frames, and rejects marked for one more burst."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.face.match import DEFAULT_DESCRIPTOR
from drivers.face.verifier import DlibFaceVerifier
from gate.config import DlibFaceConfig, FacePadConfig
from gate.reasons import ReasonCode as R


def make(tmp_path: Path, **changes: object) -> DlibFaceVerifier:
    data = json.loads(DEFAULT_DESCRIPTOR.read_text())
    data.update(changes)
    path = tmp_path / f"desc-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(data))
    return DlibFaceVerifier(
        DlibFaceConfig(type="dlib", descriptor=path, pad=FacePadConfig(enabled=False))
    )


@pytest.fixture
def burst(faces_dir) -> list[np.ndarray]:
    """A still traveller: one face through sensor noise, and two frames that fail quality."""
    live = cv2.imread(str(faces_dir / "london_002/02.jpg"))
    rng = np.random.default_rng(3)
    noisy = [
        np.clip(live + rng.normal(0, 6, live.shape), 0, 255).astype(np.uint8) for _ in range(3)
    ]
    return [np.zeros_like(live), noisy[0], cv2.GaussianBlur(live, (0, 0), 6), *noisy[1:]]


def portrait(faces_dir) -> bytes:
    return (faces_dir / "london_002/01.jpg").read_bytes()


def test_fused_score_is_the_mean_embedding_of_the_passing_frames(tmp_path, faces_dir, burst):
    one = make(tmp_path, fusion={"frames": 1})
    fused = make(tmp_path, fusion={"frames": 3})
    single = one.check(portrait(faces_dir), burst)
    rep = fused.check(portrait(faces_dir), burst)
    assert single.quality["fused"] == [single.quality["best"]]
    assert sorted(rep.quality["fused"]) == [1, 3, 4]  # never the black or blurred frame
    ref = fused._portrait_vector(portrait(faces_dir))
    assert ref is not None
    qs = [fused.detector.detect(f) for f in burst]
    vecs = [fused.matcher.embed(burst[i], qs[i][0]) for i in (1, 3, 4)]
    want = fused.matcher.score(ref, np.mean(vecs, axis=0))
    assert rep.result.score == pytest.approx(want, abs=0.02)
    assert rep.result.score != pytest.approx(single.result.score, abs=1e-6)
    assert rep.result.match


def test_a_score_just_under_the_threshold_is_retryable(tmp_path, faces_dir, burst):
    score = make(tmp_path).check(portrait(faces_dir), burst).result.score
    near = make(tmp_path, threshold=score + 0.01, borderline_margin=0.05)
    far = make(tmp_path, threshold=score + 0.2, borderline_margin=0.05)
    rep = near.check(portrait(faces_dir), burst).result
    assert rep.reasons == (R.FACE_NO_MATCH,) and rep.retryable
    rep = far.check(portrait(faces_dir), burst).result
    assert rep.reasons == (R.FACE_NO_MATCH,) and not rep.retryable


def test_quality_failures_are_retryable_but_two_faces_are_not(tmp_path, faces_dir, burst):
    v = make(tmp_path)
    blurred = v.check(portrait(faces_dir), [burst[2]]).result
    assert R.FACE_BLUR in blurred.reasons and blurred.retryable
    a = cv2.imread(str(faces_dir / "london_002/02.jpg"))
    b = cv2.imread(str(faces_dir / "london_004/02.jpg"))
    two = v.check(portrait(faces_dir), [np.hstack([a, b])]).result
    assert two.reasons == (R.FACE_MULTIPLE,) and not two.retryable


def test_unreadable_portrait_is_not_retryable(tmp_path, faces_dir, burst):
    v = make(tmp_path)
    assert not v.check(b"\xff\xd8\xff" + b"0" * 50, burst).result.retryable
    assert not v.check(None, burst).result.retryable
