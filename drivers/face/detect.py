"""Decode images and find faces with their 68 landmarks (dlib HOG + shape predictor).

Decoding never raises: a portrait or frame that is empty, truncated, not an image, or
absurdly large gives ``None`` and the caller reports ``FACE_UNREADABLE``. The size is
read from the header before any pixel is decoded, so a 20000 x 20000 "portrait" costs
nothing. JPEG 2000 (common in DG2) decodes through OpenCV, with Pillow as a fallback.

Detection runs on a copy scaled so its long side is at most ``max_side`` (HOG cost grows
with pixels; a gate camera's face is large), upsampled once when the image is small
(LFW-sized crops), and the 68 landmarks are then fitted on the full-resolution image.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from drivers.face import dlibmodels

MAX_PIXELS = 50_000_000  # larger than any portrait or camera frame we expect


@dataclass(frozen=True)
class Face:
    """One detected face in image coordinates."""

    box: tuple[int, int, int, int]  # left, top, right, bottom
    landmarks: np.ndarray  # (68, 2) float32, iBUG 300-W order
    confidence: float

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def eye_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Centres of the subject's right eye (image left) and left eye."""
        return self.landmarks[36:42].mean(axis=0), self.landmarks[42:48].mean(axis=0)

    @property
    def eye_distance(self) -> float:
        right, left = self.eye_centres
        return float(np.linalg.norm(left - right))


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header alone, or None when there is no readable header."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.MAX_IMAGE_PIXELS = None  # we apply our own limit below
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Exception:  # noqa: BLE001 - any header failure means "not an image"
        return None


def decode_image(data: bytes | None, max_pixels: int = MAX_PIXELS) -> np.ndarray | None:
    """BGR uint8 pixels of a JPEG / JPEG 2000 / PNG, or None when unusable."""
    if not data:
        return None
    size = image_size(data)
    if size is None or size[0] < 1 or size[1] < 1 or size[0] * size[1] > max_pixels:
        return None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        try:
            with Image.open(io.BytesIO(data)) as im:
                img = cv2.cvtColor(np.asarray(im.convert("RGB")), cv2.COLOR_RGB2BGR)
        except Exception:  # noqa: BLE001 - truncated or corrupt stream
            return None
    return check_frame(img)


def check_frame(img: np.ndarray | None) -> np.ndarray | None:
    """Normalise a frame to 3-channel BGR uint8; None when it cannot be one."""
    if img is None or not isinstance(img, np.ndarray) or img.size == 0:
        return None
    if img.dtype != np.uint8:
        return None
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    elif not (img.ndim == 3 and img.shape[2] == 3):
        return None
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        return None
    return img


class Detector:
    """dlib HOG face detector and 68-point landmarks."""

    def __init__(self, max_side: int = 640, upsample_below: int = 400) -> None:
        self.max_side = max_side
        self.upsample_below = upsample_below
        self._det = dlibmodels.detector()
        self._shape = dlibmodels.shape_predictor(68)

    def detect(self, bgr: np.ndarray) -> list[Face]:
        """All faces, largest first. Tiny images (under 16 px) have none."""
        h, w = bgr.shape[:2]
        if min(h, w) < 16:
            return []
        scale = min(1.0, self.max_side / max(h, w))
        upsample = 1 if max(h, w) * scale < self.upsample_below else 0
        return self._run(bgr, scale, upsample)

    def detect_burst(self, frames: list[np.ndarray]) -> list[list[Face]]:
        """Faces of every frame of a burst, cheaper than ``detect`` on each.

        The first and last frames get a full search (so a second person is seen). When
        both show one face at about the same place, the traveller stood there for the
        whole burst (a burst is a fraction of a second), so the frames between only get
        their landmarks fitted from a box interpolated between the two: no HOG search.
        Otherwise they are searched around the previous frame's single face, falling
        back to a full search.
        """
        n = len(frames)
        if n < 3:
            return [self.detect(f) for f in frames]
        first, last = self.detect(frames[0]), self.detect(frames[-1])
        out: list[list[Face]] = [first]
        if len(first) == 1 and len(last) == 1 and iou(first[0].box, last[0].box) >= 0.5:
            a, b = np.array(first[0].box, float), np.array(last[0].box, float)
            conf = min(first[0].confidence, last[0].confidence)
            for i in range(1, n - 1):
                box = a + (b - a) * i / (n - 1)
                out.append([self._fit(frames[i], tuple(int(round(v)) for v in box), conf)])
        else:
            prev = first[0] if len(first) == 1 else None
            for frame in frames[1:-1]:
                faces = self._around(frame, prev) if prev is not None else []
                if not faces:
                    faces = self.detect(frame)
                out.append(faces)
                prev = faces[0] if len(faces) == 1 else None
        out.append(last)
        return out

    def _fit(self, bgr: np.ndarray, box: tuple[int, ...], confidence: float) -> Face:
        """The 68 landmarks inside a known box."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        box4 = (box[0], box[1], box[2], box[3])
        return Face(box=box4, landmarks=self._landmarks(rgb, box4), confidence=confidence)

    def _landmarks(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        import dlib

        shape = self._shape(rgb, dlib.rectangle(*box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def _around(self, bgr: np.ndarray, face: Face) -> list[Face]:
        h, w = bgr.shape[:2]
        fw = face.width
        x0, y0 = max(0, face.box[0] - fw // 2), max(0, face.box[1] - fw // 2)
        x1, y1 = min(w, face.box[2] + fw // 2), min(h, face.box[3] + fw // 2)
        if x1 - x0 < 32 or y1 - y0 < 32:
            return []
        crop = bgr[y0:y1, x0:x1]
        faces = self._run(crop, min(1.0, 120 / max(fw, 1)), 0 if fw >= 90 else 1)
        shift = np.array([x0, y0], dtype=np.float32)
        return [
            Face(
                (f.box[0] + x0, f.box[1] + y0, f.box[2] + x0, f.box[3] + y0),
                f.landmarks + shift,
                f.confidence,
            )
            for f in faces
        ]

    def _run(self, bgr: np.ndarray, scale: float, upsample: int) -> list[Face]:
        # colour, not grey: dlib's HOG takes the strongest gradient of the three channels
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        small = (
            rgb
            if scale == 1.0
            else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        )
        rects, scores, _ = self._det.run(small, upsample, 0.0)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            box = (
                int(rect.left() / scale),
                int(rect.top() / scale),
                int(rect.right() / scale),
                int(rect.bottom() / scale),
            )
            faces.append(Face(box, self._landmarks(rgb, box), float(score)))
        faces.sort(key=lambda f: f.width, reverse=True)
        return faces


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0, w) * max(0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def largest(faces: list[Face]) -> Face | None:
    return faces[0] if faces else None
