"""Burst detection: landmarks between two full searches, and when that shortcut is refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.face.detect import Detector, iou


@pytest.fixture(scope="module")
def clip(faces_dir: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(faces_dir / "video" / "single_face.mp4"))
    frames = []
    while len(frames) < 30:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    assert len(frames) >= 10
    return frames


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def test_fitted_landmarks_agree_with_a_full_detection(clip, detector) -> None:
    burst = clip[10:15]
    tracked = detector.detect_burst(burst)
    assert all(len(f) == 1 for f in tracked)
    for frame, faces in zip(burst[1:-1], tracked[1:-1], strict=True):
        full = detector.detect(frame)[0]
        err = np.linalg.norm(faces[0].landmarks - full.landmarks, axis=1).mean()
        assert err < 0.05 * full.eye_distance, err  # a few pixels at 70 px between the eyes


def test_a_face_that_leaves_is_searched_for_in_every_frame(clip, detector) -> None:
    empty = np.full_like(clip[0], 128)
    found = detector.detect_burst([*clip[10:14], empty])
    assert found[-1] == []  # the last frame really is searched
    assert all(len(f) == 1 for f in found[:-1])  # middle frames found by search, not guessed
    arrives = detector.detect_burst([empty, *clip[10:13], empty])
    assert arrives[0] == arrives[-1] == []
    assert all(len(f) == 1 for f in arrives[1:-1])  # no face at either end: full searches


def test_two_places_are_not_interpolated(clip, detector) -> None:
    shifted = np.roll(clip[14], 250, axis=1)  # the face moved far between first and last
    first, last = detector.detect(clip[10])[0], detector.detect(shifted)[0]
    assert iou(first.box, last.box) < 0.5
    found = detector.detect_burst([clip[10], clip[11], clip[12], clip[13], shifted])
    for frame, faces in zip(clip[11:14], found[1:-1], strict=True):
        assert len(faces) == 1
        assert iou(faces[0].box, detector.detect(frame)[0].box) > 0.7  # searched where it is


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
