"""The shipped HOG detector file is dlib's own detector; an altered file is never loaded."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import pytest

from drivers.face import dlibmodels

PEOPLE = ["london_002", "london_017", "Yao_Ming", "Halle_Berry", "Nelson_Mandela"]


def _boxes(det, img) -> list[tuple[int, int, int, int]]:  # noqa: ANN001 - dlib objects
    rects, scores, kinds = det.run(img, 1, 0.0)
    out = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
    return [(*b, round(s, 6), k) for b, s, k in zip(out, scores, kinds, strict=True)]


def test_the_shipped_detector_finds_what_dlibs_own_finds(faces_dir: Path) -> None:
    import dlib

    shipped = dlibmodels.load_detector(dlibmodels.hog_descriptor())
    builtin = dlib.get_frontal_face_detector()
    seen = 0
    for who in PEOPLE:
        for path in sorted((faces_dir / who).glob("*.jpg"))[:2]:
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            want = _boxes(builtin, rgb)
            assert _boxes(shipped, rgb) == want, path
            seen += len(want)
    assert seen >= len(PEOPLE)  # faces were found, so the comparison compared something


def _copy(tmp_path: Path) -> Path:
    desc = dlibmodels.hog_descriptor()
    shutil.copy(desc, tmp_path / desc.name)
    meta = json.loads(desc.read_text())
    shutil.copy(desc.parent / meta["file"], tmp_path / meta["file"])
    return tmp_path / desc.name


def test_an_altered_detector_file_is_not_loaded(
    tmp_path: Path, faces_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    desc = _copy(tmp_path)
    svm = tmp_path / json.loads(desc.read_text())["file"]
    data = bytearray(svm.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one filter weight
    svm.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, "autogate.face"):
        det = dlibmodels.load_detector(desc)
    assert "does not match" in caplog.text
    import dlib

    rgb = cv2.cvtColor(cv2.imread(str(faces_dir / "london_002" / "01.jpg")), cv2.COLOR_BGR2RGB)
    assert _boxes(det, rgb) == _boxes(dlib.get_frontal_face_detector(), rgb)


@pytest.mark.parametrize("flaw", ["missing file", "not json", "no sha256"])
def test_a_broken_descriptor_falls_back_to_dlibs_own(
    tmp_path: Path, flaw: str, caplog: pytest.LogCaptureFixture
) -> None:
    desc = _copy(tmp_path)
    if flaw == "missing file":
        (tmp_path / json.loads(desc.read_text())["file"]).unlink()
    elif flaw == "not json":
        desc.write_text("{")
    else:
        desc.write_text(json.dumps({"file": "dlib_frontal_face_detector.svm"}))
    with caplog.at_level(logging.WARNING, "autogate.face"):
        assert dlibmodels.load_detector(desc) is not None
    assert "not used" in caplog.text
