"""``FaceVerifier``: quality, presentation-attack detection and 1:1 match of a burst.

One call per crossing: decode the DG2 portrait (JPEG or JPEG 2000, also when wrapped in
its ISO/IEC 19794-5 record), find faces in every frame, pick the best frame that passes
quality (kept for an officer's review), run PAD over the burst's frames that show one
face, and compare the mean embedding of the best passing frames (as many as the
descriptor's ``fusion.frames``, the number its threshold was calibrated for) with the
portrait. A reject that a fresh burst could reverse is marked ``retryable``: the core
may capture once more. Bad input never raises: it becomes reason codes in
``FaceResult``. The CPU work runs in a worker thread so the daemon's loop stays free.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivers.errors import DeviceError
from drivers.face.detect import Detector, Face, check_frame, decode_image
from drivers.face.fusion import embed_frames, fusion_frames
from drivers.face.match import DEFAULT_DESCRIPTOR, Descriptor, build_matcher
from drivers.face.pad import PAD, PadModel, PadResult
from drivers.face.quality import QualityLimits, assess, best_frame
from drivers.interfaces import FaceVerification, Frame
from gate import resources
from gate.config import DlibFaceConfig, GateConfig
from gate.reasons import ReasonCode
from gate.results import FaceResult

# Markers of an image stream inside a biometric record: JPEG SOI, JP2 signature box,
# raw JPEG 2000 codestream (SOC + SIZ).
# a borderline PAD burst waits this long for the traveller's next burst (the core asks
# for it at once; the mantrap's timeout is 15 s by default)
HOLD_PAD_S = 60.0
_MARKERS = (b"\xff\xd8\xff", b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")


def resolve(path: Path) -> Path:
    """Config paths are relative to the working directory, else the shipped file."""
    return resources.resolve(path)


def decode_portrait(data: bytes | None, max_pixels: int) -> np.ndarray | None:
    """The portrait's pixels; also finds the image inside a 19794-5 / DG2 wrapper."""
    if not data:
        return None
    img = decode_image(data, max_pixels)
    if img is not None:
        return img
    for marker in _MARKERS:
        at = data.find(marker, 1)
        if at > 0:
            img = decode_image(data[at:], max_pixels)
            if img is not None:
                return img
    return None


@dataclass
class Report:
    """Everything a verification found, for the CLI and the benchmark."""

    result: FaceResult
    best_frame: np.ndarray | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    pad: dict[str, Any] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "match": r.match,
            "score": round(r.score, 4),
            "threshold": round(r.threshold, 4),
            "backend": r.backend,
            "quality": self.quality,
            "pad": self.pad,
            "reasons": [str(c) for c in r.reasons],
            "retryable": r.retryable,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }


class DlibFaceVerifier:
    """``drivers.interfaces.FaceVerifier`` with dlib (default) or an ONNX matcher."""

    name = "face"

    def __init__(self, cfg: DlibFaceConfig, cache_dir: Path | None = None) -> None:
        self.cfg = cfg
        self.descriptor = Descriptor.load(resolve(cfg.descriptor))
        if self.descriptor.data.get("threshold") is None:
            raise DeviceError("face", f"{self.descriptor.path.name} is not calibrated")
        self.threshold = self.descriptor.threshold
        self.fuse = fusion_frames(self.descriptor)
        # how far below the threshold a score is borderline (descriptor, score units)
        self.match_margin = float(self.descriptor.data.get("borderline_margin", 0.0))
        onnx = resolve(cfg.onnx_model) if cfg.onnx_model else None
        self.matcher = build_matcher(self.descriptor, onnx, cache_dir)
        self.detector = Detector(max_side=cfg.max_side)
        self.limits = QualityLimits(**cfg.quality.model_dump())
        self.pad = PAD(PadModel.load(resolve(cfg.pad.model))) if cfg.pad.enabled else None
        self._lock = threading.Lock()  # dlib objects are not shared across threads
        self._portraits: dict[bytes, np.ndarray | None] = {}  # sha256 -> embedding
        self._era = 0  # bumped by ``forget``: work begun before it caches nothing
        # a borderline PAD burst, kept to be pooled with this traveller's next burst:
        # (portrait sha256, monotonic time, its PAD evidence); one transaction only
        self._held_pad: tuple[bytes, float, PadResult] | None = None

    async def prepare(self, portrait: bytes | None) -> None:
        """Embed the DG2 portrait ahead of the burst (call after the chip read).

        Optional: ``verify`` embeds it itself when it was not prepared. It saves one
        embedding (about 75 ms) from the time the traveller waits in the mantrap.
        """
        if portrait:
            await asyncio.to_thread(self._locked_portrait, portrait)

    def forget(self) -> None:
        """The transaction ended: drop the portrait templates (biometric data) and any
        held PAD evidence it left.

        Called from the event loop while a ``prepare`` or ``verify`` may still run in its
        thread: that work keeps its result to itself (``_era`` moved on)."""
        self._era += 1
        self._portraits = {}
        self._held_pad = None

    def _locked_portrait(self, portrait: bytes) -> np.ndarray | None:
        era = self._era
        with self._lock:
            self._held_pad = None  # a chip read starts a new traveller: nothing carries over
            return self._portrait_vector(portrait, era)

    def _take_held_pad(self, key: bytes) -> PadResult | None:
        """The same traveller's borderline PAD burst, if recent; used once."""
        held, self._held_pad = self._held_pad, None
        if held is None or held[0] != key or time.monotonic() - held[1] > HOLD_PAD_S:
            return None
        return held[2]

    def _portrait_vector(self, portrait: bytes, era: int | None = None) -> np.ndarray | None:
        era = self._era if era is None else era
        key = hashlib.sha256(portrait).digest()
        cache = self._portraits
        if key in cache:
            return cache[key]
        ref = decode_portrait(portrait, self.cfg.max_pixels)
        faces: list[Face] = self.detector.detect(ref) if ref is not None else []
        vec = self.matcher.embed(ref, faces[0]) if faces and ref is not None else None
        if era == self._era:  # not forgotten meanwhile
            while len(cache) >= 4:  # a few crossings' worth, never a gallery
                cache.pop(next(iter(cache)))
            cache[key] = vec
        return vec

    async def verify(self, portrait: bytes | None, frames: Sequence[Frame]) -> FaceVerification:
        report = await asyncio.to_thread(self.check, portrait, [f.image for f in frames])
        return FaceVerification(result=report.result, best_frame=report.best_frame)

    def _fail(self, t0: float, reasons: Sequence[ReasonCode], **kw: Any) -> Report:
        res = FaceResult(
            match=False,
            threshold=self.threshold,
            backend=self.matcher.backend,
            reasons=tuple(reasons),
            elapsed_s=time.perf_counter() - t0,
            quality=kw.pop("q", 0.0),
            pad_score=kw.pop("pad_score", 0.0),
            score=kw.pop("score", 0.0),
            retryable=kw.pop("retryable", False),
        )
        return Report(res, **kw)

    def check(self, portrait: bytes | None, images: Sequence[np.ndarray]) -> Report:
        """Verify synchronously (the worker thread's body)."""
        with self._lock:
            return self._check(portrait, images)

    def _check(self, portrait: bytes | None, images: Sequence[np.ndarray]) -> Report:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        if portrait is None:
            return self._fail(t0, [ReasonCode.CHIP_NO_PORTRAIT], timings_ms=timings)
        frames = [f for f in (check_frame(i) for i in images) if f is not None]
        if not frames:
            return self._fail(t0, [ReasonCode.FACE_UNREADABLE], timings_ms=timings)

        t = time.perf_counter()
        found = self.detector.detect_burst(frames)
        timings["detect"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        qualities = [assess(f, faces, self.limits) for f, faces in zip(frames, found, strict=True)]
        burst = best_frame(qualities)
        timings["quality"] = (time.perf_counter() - t) * 1000
        qinfo: dict[str, Any] = {
            "frames": len(frames),
            "best": burst.best,
            "passed": sum(q.passed for q in qualities),
        }
        if burst.best is None:
            near = [q for q in qualities if q.face is not None]
            if near:
                qinfo["measures"] = max(near, key=lambda q: q.score).measures()
            # a traveller who blinked or looked away may do better in a fresh burst;
            # two faces is someone else in the mantrap, not bad luck
            again = ReasonCode.FACE_MULTIPLE not in burst.reasons
            return self._fail(t0, burst.reasons, quality=qinfo, timings_ms=timings, retryable=again)
        best, best_img = qualities[burst.best], frames[burst.best]
        qinfo["measures"] = best.measures()

        pad_info: dict[str, Any] = {"enabled": self.pad is not None}
        pad_score = 0.0

        def reject(reason: ReasonCode, retryable: bool = False) -> Report:
            """A reject after quality passed: it keeps the best frame and what was found."""
            return self._fail(
                t0,
                [reason],
                q=best.score,
                pad_score=pad_score,
                best_frame=best_img,
                quality=qinfo,
                pad=pad_info,
                timings_ms=timings,
                retryable=retryable,
            )

        if self.pad is not None:
            t = time.perf_counter()
            usable = [(f, q.face) for f, q in zip(frames, qualities, strict=True) if q.face]
            pres = self.pad.assess([f for f, _ in usable], [face for _, face in usable])
            key = hashlib.sha256(portrait).digest()
            held = self._take_held_pad(key)
            if held is not None:  # the second burst: both judged as one presentation
                pres = self.pad.pool(held, pres)
            timings["pad"] = (time.perf_counter() - t) * 1000
            pad_score = pres.score
            pad_info |= {
                "score": round(pres.score, 4),
                "threshold": self.pad.model.threshold,
                "attack": pres.attack,
                "bursts": 1 if held is None else 2,
                "cues": pres.cues,
            }
            if held is None and self.pad.borderline(pres):
                # too close to call on one burst (either side of the threshold): one more
                # burst, pooled with this one, decides; a pooled verdict gets no third
                pad_info["borderline"] = True
                self._held_pad = (key, time.monotonic(), pres)
                return reject(ReasonCode.FACE_PAD, retryable=True)
            if pres.attack:
                return reject(ReasonCode.FACE_PAD)

        t = time.perf_counter()
        ref_vec = self._portrait_vector(portrait)  # cached when prepare() ran
        timings["portrait"] = (time.perf_counter() - t) * 1000
        if ref_vec is None:
            return reject(ReasonCode.FACE_UNREADABLE)
        t = time.perf_counter()
        live_vec, fused = embed_frames(self.matcher, frames, qualities, self.fuse)
        assert live_vec is not None  # the best frame passed quality
        score = self.matcher.score(ref_vec, live_vec)
        timings["match"] = (time.perf_counter() - t) * 1000
        qinfo["fused"] = fused
        match = score >= self.threshold
        timings["total"] = (time.perf_counter() - t0) * 1000
        res = FaceResult(
            match=match,
            score=score,
            threshold=self.threshold,
            pad_score=pad_score,
            quality=best.score,
            backend=self.matcher.backend,
            reasons=() if match else (ReasonCode.FACE_NO_MATCH,),
            elapsed_s=time.perf_counter() - t0,
            retryable=not match and score >= self.threshold - self.match_margin,
        )
        return Report(res, best_img, qinfo, pad_info, timings)


def build(cfg: DlibFaceConfig, gate_cfg: GateConfig) -> DlibFaceVerifier:
    """Factory for the daemon's wiring (loads the models: about a second). A converted
    network is kept under ``storage.data_dir/cache`` between starts."""
    return DlibFaceVerifier(cfg, cache_dir=gate_cfg.storage.data_dir / "cache")


VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}


def read_live(paths: Sequence[Path], frames: int) -> list[np.ndarray]:
    """Live frames from image files, or the first ``frames`` frames of one video."""
    import cv2

    if len(paths) == 1 and paths[0].suffix.lower() in VIDEO_SUFFIXES:
        cap = cv2.VideoCapture(str(paths[0]))
        out: list[np.ndarray] = []
        while len(out) < frames:
            ok, img = cap.read()
            if not ok:
                break
            out.append(img)
        cap.release()
        return out
    images: list[np.ndarray] = []
    for p in paths:
        try:
            decoded = decode_image(p.read_bytes())
        except OSError:
            decoded = None
        if decoded is not None:
            images.append(decoded)
    return images


def verify_files(
    portrait: Path,
    live: Sequence[Path],
    descriptor: Path | None = None,
    onnx_model: Path | None = None,
    frames: int = 5,
    pad: bool = True,
) -> tuple[dict[str, Any], int]:
    """The CLI's verification: (JSON-ready dict, exit status 0/1/2)."""
    from gate.config import FacePadConfig

    cfg = DlibFaceConfig(
        type="dlib",
        descriptor=descriptor or DEFAULT_DESCRIPTOR,
        onnx_model=onnx_model,
        pad=FacePadConfig(enabled=pad),
    )
    try:
        verifier = DlibFaceVerifier(cfg)
        data = portrait.read_bytes()
    except (DeviceError, OSError) as exc:
        return {"error": str(exc), "reasons": [str(ReasonCode.FACE_UNREADABLE)]}, 2
    report = verifier.check(data, read_live(live, frames))
    out = report.as_dict()
    unreadable = {ReasonCode.FACE_UNREADABLE, ReasonCode.CHIP_NO_PORTRAIT}
    if report.result.match:
        return out, 0
    return out, 2 if unreadable & set(report.result.reasons) else 1
