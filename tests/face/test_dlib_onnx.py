"""dlib's ResNet run by onnxruntime gives dlib's own embeddings, and bad files fail cleanly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drivers.errors import DeviceError
from drivers.face import dlibmodels
from drivers.face.detect import Detector, decode_image
from drivers.face.dlib_onnx import read_dlib_resnet
from drivers.face.match import DlibMatcher

IMAGES = ["london_002", "Yao_Ming", "Halle_Berry", "Nelson_Mandela", "webmorphr_lisa"]


def _first_image(folder: Path) -> Path:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".png"})[0]


def test_onnx_runtime_gives_dlibs_embeddings_on_real_faces(faces_dir: Path) -> None:
    detector = Detector()
    native, onnx = DlibMatcher(runtime="dlib"), DlibMatcher(runtime="onnxruntime")
    compared = 0
    for name in IMAGES:
        img = decode_image(_first_image(faces_dir / name).read_bytes())
        assert img is not None
        faces = detector.detect(img)
        assert faces, name
        a, b = native.embed(img, faces[0]), onnx.embed(img, faces[0])
        # identical network and chip: only float summation order differs
        assert np.linalg.norm(a - b) < 1e-4, name
        assert native.score(a, b) > 0.9999
        compared += 1
    assert compared == len(IMAGES)


def test_onnx_embeddings_still_separate_people(faces_dir: Path) -> None:
    detector, onnx = Detector(), DlibMatcher(runtime="onnxruntime")
    vecs = []
    for name in ("Yao_Ming", "Halle_Berry"):
        img = decode_image(_first_image(faces_dir / name).read_bytes())
        vecs.append(onnx.embed(img, detector.detect(img)[0]))
    assert onnx.score(vecs[0], vecs[1]) < 0.4  # dlib's customary impostor side


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"",
        lambda b: b[: len(b) // 3],  # truncated in the middle of the weights
        lambda b: b"\x01\x15input_rgb_image_sized" + bytes(64),  # the header and nothing else
        lambda b: np.random.default_rng(0).bytes(4096),
    ],
    ids=["empty", "truncated", "header-only", "random"],
)
def test_bad_network_file_is_a_device_error(tmp_path: Path, mangle) -> None:
    good = dlibmodels.model_path("resnet").read_bytes()
    bad = tmp_path / "net.dat"
    bad.write_bytes(mangle(good))
    with pytest.raises(DeviceError):
        read_dlib_resnet(bad)


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(DeviceError):
        DlibMatcher(runtime="tensorflow")
