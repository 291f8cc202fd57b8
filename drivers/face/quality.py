"""Face image quality of live frames (ISO/IEC 29794-5 in spirit) and the best frame.

Measures per frame, all from the 68 landmarks and the pixels around them: number of
faces, inter-eye distance, yaw / pitch / roll (``solvePnP`` against a generic 3-D face),
sharpness (variance of the Laplacian on a crop scaled to a fixed eye distance, so it
does not grow with face size), exposure (mean and clipped share of the face's grey
levels) and eyes open (eye aspect ratio). Each failed measure maps to one reason code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from drivers.face.detect import Face
from gate.reasons import ReasonCode


@dataclass(frozen=True)
class QualityLimits:
    min_eye_distance: float = 30.0  # pixels between eye centres
    max_yaw: float = 25.0  # degrees
    max_pitch: float = 25.0
    max_roll: float = 20.0
    min_sharpness: float = 10.0  # Laplacian variance at 64 px eye distance
    min_brightness: float = 40.0  # mean grey level of the face
    max_brightness: float = 215.0
    max_clipped: float = 0.25  # share of face pixels at 0-8 or 247-255
    min_eye_open: float = 0.12  # eye aspect ratio; open eyes are about 0.2-0.35
    multi_face_ratio: float = 0.5  # a second face at least this wide counts


@dataclass(frozen=True)
class Quality:
    """Measures of one frame; ``face`` is None when none or several were found."""

    faces: int
    face: Face | None = None
    eye_distance: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    sharpness: float = 0.0
    brightness: float = 0.0
    clipped: float = 0.0
    eye_open: float = 0.0
    score: float = 0.0  # 0..1, higher is better
    reasons: tuple[ReasonCode, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.reasons

    def measures(self) -> dict[str, float | int]:
        return {
            "faces": self.faces,
            "eye_distance": round(self.eye_distance, 1),
            "yaw": round(self.yaw, 1),
            "pitch": round(self.pitch, 1),
            "roll": round(self.roll, 1),
            "sharpness": round(self.sharpness, 1),
            "brightness": round(self.brightness, 1),
            "clipped": round(self.clipped, 3),
            "eye_open": round(self.eye_open, 3),
            "score": round(self.score, 3),
        }


# Generic 3-D face (millimetres; x right, y up, z towards the camera), points of the
# 68-point scheme: nose tip, chin, eye outer corners, mouth corners.
_MODEL_3D = np.array(
    [
        (0.0, 0.0, 0.0),
        (0.0, -63.6, -12.5),
        (-43.3, 32.7, -26.0),
        (43.3, 32.7, -26.0),
        (-28.9, -28.9, -24.1),
        (28.9, -28.9, -24.1),
    ],
    dtype=np.float64,
)
_MODEL_IDX = [30, 8, 36, 45, 48, 54]


def head_pose(face: Face, shape: tuple[int, int]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees; 0, 0, 0 is looking straight at the camera."""
    h, w = shape
    cam = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], dtype=np.float64)
    pts = face.landmarks[_MODEL_IDX].astype(np.float64)
    pts_flipped = pts.copy()
    pts_flipped[:, 1] = h - pts[:, 1]  # image y grows downwards; the model's upwards
    ok, rvec, _ = cv2.solvePnP(_MODEL_3D, pts_flipped, cam, None, flags=cv2.SOLVEPNP_ITERATIVE)
    right, left = face.eye_centres
    roll = float(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0])))
    if not ok:
        return 90.0, 90.0, roll
    rot, _ = cv2.Rodrigues(rvec)
    yaw = float(np.degrees(np.arcsin(np.clip(-rot[2, 0], -1, 1))))
    pitch = float(np.degrees(np.arctan2(rot[2, 1], rot[2, 2])))
    return yaw, pitch, roll


def eye_aspect_ratio(face: Face) -> float:
    """Mean of both eyes' height/width ratio (Soukupova & Cech, 2016)."""

    def ear(p: np.ndarray) -> float:
        v = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
        return float(v / (2 * np.linalg.norm(p[0] - p[3]) + 1e-6))

    lm = face.landmarks
    return (ear(lm[36:42]) + ear(lm[42:48])) / 2


def face_crop(bgr: np.ndarray, face: Face, eye_px: float = 64.0, size: int = 160) -> np.ndarray:
    """Upright crop around the face, scaled so the eyes are ``eye_px`` apart."""
    right, left = face.eye_centres
    angle = np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0]))
    scale = eye_px / max(face.eye_distance, 1e-3)
    centre = (right + left) / 2 + (face.landmarks[57] - (right + left) / 2) * 0.45
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), float(scale))
    m[:, 2] += (size / 2 - centre[0], size / 2 - centre[1])
    return cv2.warpAffine(
        bgr, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )


def assess(bgr: np.ndarray, faces: Sequence[Face], limits: QualityLimits) -> Quality:
    """Quality of one frame given its detected faces (largest first)."""
    if not faces:
        return Quality(faces=0, reasons=(ReasonCode.FACE_NOT_FOUND,))
    big = [f for f in faces if f.width >= limits.multi_face_ratio * faces[0].width]
    if len(big) > 1:
        return Quality(faces=len(big), reasons=(ReasonCode.FACE_MULTIPLE,))
    face = faces[0]
    ied = face.eye_distance
    yaw, pitch, roll = head_pose(face, bgr.shape[:2])
    crop = cv2.cvtColor(face_crop(bgr, face), cv2.COLOR_BGR2GRAY)
    inner = crop[40:150, 30:130]  # forehead to chin, cheek to cheek at 64 px eye distance
    sharp = float(cv2.Laplacian(inner, cv2.CV_64F).var())
    bright = float(inner.mean())
    clipped = float(np.mean((inner <= 8) | (inner >= 247)))
    eyes = eye_aspect_ratio(face)

    reasons: list[ReasonCode] = []
    if ied < limits.min_eye_distance:
        reasons.append(ReasonCode.FACE_TOO_SMALL)
    if abs(yaw) > limits.max_yaw or abs(pitch) > limits.max_pitch or abs(roll) > limits.max_roll:
        reasons.append(ReasonCode.FACE_POSE)
    if sharp < limits.min_sharpness:
        reasons.append(ReasonCode.FACE_BLUR)
    if not (limits.min_brightness <= bright <= limits.max_brightness) or (
        clipped > limits.max_clipped
    ):
        reasons.append(ReasonCode.FACE_EXPOSURE)
    if eyes < limits.min_eye_open:
        reasons.append(ReasonCode.FACE_EYES_CLOSED)

    terms = [
        min(1.0, ied / (2 * limits.min_eye_distance)),
        max(0.0, 1 - max(abs(yaw) / 60, abs(pitch) / 60, abs(roll) / 45)),
        min(1.0, sharp / (4 * limits.min_sharpness)),
        max(0.0, 1 - abs(bright - 128) / 128) * (1 - clipped),
        min(1.0, eyes / (2 * limits.min_eye_open)),
    ]
    return Quality(
        faces=1,
        face=face,
        eye_distance=ied,
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        sharpness=sharp,
        brightness=bright,
        clipped=clipped,
        eye_open=eyes,
        score=float(np.prod(terms) ** (1 / len(terms))),
        reasons=tuple(reasons),
    )


@dataclass(frozen=True)
class BurstQuality:
    frames: tuple[Quality, ...]
    best: int | None  # index of the best passing frame
    reasons: tuple[ReasonCode, ...] = field(default=())


def best_frame(qualities: Sequence[Quality]) -> BurstQuality:
    """The passing frame with the highest score; else the measures that failed.

    With no passing frame, the reasons are those of the frame closest to passing (fewest
    failed measures, then best score), plus ``FACE_QUALITY`` when a face was seen at all.
    """
    passing = [i for i, q in enumerate(qualities) if q.passed]
    if passing:
        best = max(passing, key=lambda i: qualities[i].score)
        return BurstQuality(tuple(qualities), best, ())
    if not qualities:
        return BurstQuality((), None, (ReasonCode.FACE_NOT_FOUND,))
    near = min(
        range(len(qualities)),
        key=lambda i: (len(qualities[i].reasons), -qualities[i].score, qualities[i].faces == 0),
    )
    reasons = list(qualities[near].reasons)
    if qualities[near].face is not None:
        reasons.insert(0, ReasonCode.FACE_QUALITY)
    return BurstQuality(tuple(qualities), None, tuple(reasons))
