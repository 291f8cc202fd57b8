"""Presentation-attack bursts generated from real faces (ISO/IEC 30107-3 species).

The shared face set has no attacks, so we make them from its real images and videos:

- ``print``: a printed photo held up to the camera. The photo loses gamut (lifted
  blacks, dimmer whites, less saturation), carries a halftone screen and paper grain,
  may catch a glossy glare, sits in the scene under a perspective tilt, and moves only
  as a rigid plane (hand shake) with no blink.
- ``screen``: a phone or tablet replaying a video or showing a photo. The content goes
  through the display's gamma and white point, is drawn on an RGB sub-pixel grid (the
  camera resamples the grid: moire), shows rolling refresh bands, and sits inside a
  black bezel.

Every frame, attack or bona fide, then passes the same camera model (defocus, sensor
noise, JPEG) so a classifier cannot learn "simulated versus not" from the camera alone.
Parameters come in named settings; ``TRAIN`` and ``HELDOUT`` ranges do not overlap, so
an evaluation on ``HELDOUT`` measures attacks whose settings training never saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

FRAME = (640, 480)  # width, height of the simulated gate camera


@dataclass(frozen=True)
class Range:
    lo: float
    hi: float

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.lo, self.hi))


@dataclass(frozen=True)
class Settings:
    """Parameter ranges of one attack setting (names say what they shape)."""

    # print
    saturation: Range
    black: Range  # grey level of printed black
    white: Range  # grey level of paper white
    halftone_period: Range  # pixels of the halftone screen in the printed photo
    halftone_angle: Range  # degrees
    halftone_depth: Range
    grain: Range  # paper grain amplitude
    glare: Range  # peak added by a glossy reflection (0..1 of 255)
    # screen
    subpixel: int  # screen pixel drawn as a k x k block of RGB stripes
    gamma: Range
    blue: Range  # white-point shift towards blue
    band_period: Range  # pixels of rolling refresh bands
    band_depth: Range
    bezel: Range  # bezel width, share of the screen width
    # both: geometry and camera
    face_scale: Range  # face width as a share of the frame width
    tilt: Range  # degrees of out-of-plane tilt of the photo / screen
    shake: Range  # pixels of hand shake between frames
    defocus: Range  # Gaussian sigma of the camera
    noise: Range  # sensor noise sigma
    jpeg: Range  # JPEG quality
    # chance that each cue group of an attack is switched off (training only): the
    # classifier then has to learn every cue on its own, not lean on the strongest one
    dropout: float = 0.0


TRAIN = Settings(
    saturation=Range(0.55, 0.8), black=Range(22, 40), white=Range(205, 230),
    halftone_period=Range(3.0, 4.5), halftone_angle=Range(10, 30), halftone_depth=Range(0.04, 0.1),
    grain=Range(0.01, 0.025), glare=Range(0.0, 0.25),
    subpixel=3, gamma=Range(1.25, 1.6), blue=Range(0.04, 0.1),
    band_period=Range(25, 60), band_depth=Range(0.04, 0.1), bezel=Range(0.04, 0.08),
    face_scale=Range(0.28, 0.42), tilt=Range(0, 12), shake=Range(0.5, 2.5),
    defocus=Range(0.6, 1.0), noise=Range(2.0, 4.0), jpeg=Range(85, 95),
    dropout=0.4,
)  # fmt: skip

HELDOUT = Settings(
    saturation=Range(0.8, 0.92), black=Range(10, 22), white=Range(230, 245),
    halftone_period=Range(5.0, 6.5), halftone_angle=Range(40, 60), halftone_depth=Range(0.02, 0.04),
    grain=Range(0.025, 0.04), glare=Range(0.25, 0.45),
    subpixel=4, gamma=Range(0.8, 1.1), blue=Range(0.0, 0.04),
    band_period=Range(70, 120), band_depth=Range(0.02, 0.04), bezel=Range(0.1, 0.14),
    face_scale=Range(0.42, 0.52), tilt=Range(12, 20), shake=Range(2.5, 4.0),
    defocus=Range(1.0, 1.4), noise=Range(4.0, 6.0), jpeg=Range(70, 85),
)  # fmt: skip


def camera(frame: np.ndarray, p: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """The gate camera: defocus, sensor noise, JPEG."""
    out = cv2.GaussianBlur(frame, (0, 0), p["defocus"])
    out = out.astype(np.float32) + rng.normal(0, p["noise"], out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(p["jpeg"])])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else out


# neutral values that switch a cue group off (a bona fide camera image has these)
_GROUPS = {
    "gamut": {"saturation": 1.0, "black": 0.0, "white": 255.0},
    "halftone": {"halftone_depth": 0.0},
    "grain": {"grain": 0.0},
    "glare": {"glare": 0.0},
    "display": {"gamma": 1.0, "blue": 0.0},
    "bands": {"band_depth": 0.0},
}


def draw(s: Settings, rng: np.random.Generator) -> dict[str, float]:
    p = {k: v.draw(rng) for k, v in vars(s).items() if isinstance(v, Range)}
    p["subpixel"] = s.subpixel
    if s.dropout > 0:
        off = [g for g in _GROUPS if rng.random() < s.dropout]
        if {"gamut", "halftone", "grain", "glare"} <= set(off):
            off.remove("gamut")  # a print keeps at least one of its cues
        for g in off:
            p.update(_GROUPS[g])
    return p


def background(rng: np.random.Generator) -> np.ndarray:
    """A plain gate interior: a smooth wall gradient in a random grey-beige tone."""
    w, h = FRAME
    base = rng.uniform(90, 200)
    tint = rng.uniform(-12, 12, 3)
    ys = np.linspace(-1, 1, h)[:, None, None]
    xs = np.linspace(-1, 1, w)[None, :, None]
    grad = base + 25 * rng.uniform(-1, 1) * ys + 15 * rng.uniform(-1, 1) * xs + tint
    return np.clip(grad, 0, 255).astype(np.uint8)


def _fit(src: np.ndarray, face_w: float, p: dict[str, float]) -> float:
    """Scale that makes a face ``face_w`` px wide look ``face_scale`` of the frame wide."""
    return p["face_scale"] * FRAME[0] / max(face_w, 1.0)


def printed(photo: np.ndarray, p: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """The photo as printed on paper (before it is filmed)."""
    img = photo.astype(np.float32) / 255
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    hsv[..., 1] *= p["saturation"]
    img = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.radians(p["halftone_angle"])
    u = (xx * np.cos(a) + yy * np.sin(a)) * 2 * np.pi / p["halftone_period"]
    v = (-xx * np.sin(a) + yy * np.cos(a)) * 2 * np.pi / p["halftone_period"]
    screen = 1 - p["halftone_depth"] * (0.5 + 0.25 * (np.cos(u) + np.cos(v)))
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.2)
    grain = 1 + p["grain"] * grain / (grain.std() + 1e-6)
    img = img * (screen * grain)[..., None]
    black, white = p["black"] / 255, p["white"] / 255
    img = black + (white - black) * np.clip(img, 0, 1)
    if p["glare"] > 0.01:
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.1, 0.6) * h
        r = rng.uniform(0.15, 0.35) * w
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        img = img + p["glare"] * blob[..., None]
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def on_screen(content: np.ndarray, p: dict[str, float], phase: float) -> np.ndarray:
    """Content as emitted by an LCD/OLED: gamma, white point, sub-pixels, bands, bezel."""
    img = (content.astype(np.float32) / 255) ** p["gamma"]
    img[..., 0] *= 1 + p["blue"]  # B
    img[..., 2] *= 1 - p["blue"]  # R
    k = int(p["subpixel"])
    h, w = img.shape[:2]
    big = cv2.resize(img, (w * k, h * k), interpolation=cv2.INTER_NEAREST)
    stripes = np.zeros((k, k, 3), np.float32)
    for c in range(3):  # columns of R, G, B sub-pixels, a dark gap row
        stripes[: k - 1, (c * k) // 3 : ((c + 1) * k) // 3 or 1, 2 - c] = 1.0
    mask = np.tile(stripes, (h, w, 1))
    big = big * (0.35 + 0.65 * mask)
    ys = np.arange(h * k, dtype=np.float32)[:, None, None]
    band = 1 - p["band_depth"] * (
        0.5 + 0.5 * np.sin(2 * np.pi * ys / (p["band_period"] * k) + phase)
    )
    big = big * band
    bz = int(p["bezel"] * w * k)
    framed = np.zeros((h * k + 2 * bz, w * k + 2 * bz, 3), np.float32) + 0.03
    framed[bz : bz + h * k, bz : bz + w * k] = big
    return (np.clip(framed, 0, 1) * 255).astype(np.uint8)


def _place(
    plane: np.ndarray,
    scale: float,
    p: dict[str, float],
    rng: np.random.Generator,
    jitter: np.ndarray,
    centre: np.ndarray,
    bg: np.ndarray,
) -> np.ndarray:
    """Film a flat object (print or screen) tilted in front of the background."""
    h, w = plane.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    tilt = np.radians(p["tilt_now"])
    half = np.float32([[-w, -h], [w, -h], [w, h], [-w, h]]) * scale / 2
    # out-of-plane rotation about the vertical axis shortens one side (perspective)
    persp = np.float32([[1 - np.sin(tilt) * 0.5 * s, 1.0] for s in (-1, 1, 1, -1)])
    dst = half * persp + centre + jitter
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    out = bg.copy()
    warped = cv2.warpPerspective(plane, m, FRAME, flags=cv2.INTER_AREA)
    cover = cv2.warpPerspective(np.full((h, w), 255, np.uint8), m, FRAME)
    out[cover > 0] = warped[cover > 0]
    return out


def attack_burst(
    kind: str,
    sources: Sequence[np.ndarray],
    face_w: float,
    settings: Settings,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """A burst of camera frames showing ``kind`` ("print" or "screen") of ``sources``.

    ``sources`` is one image (a photo: the same content in every frame) or one image
    per frame (a replayed video); ``face_w`` is the face width in the source.
    """
    p = draw(settings, rng)
    p["tilt_now"] = p["tilt"] * rng.choice([-1, 1])
    bg = background(rng)
    n = len(sources)
    centre = np.float32([FRAME[0] / 2 + rng.uniform(-30, 30), FRAME[1] / 2 + rng.uniform(-20, 20)])
    frames = []
    plane0 = printed(sources[0], p, rng) if kind == "print" else None
    for i in range(n):
        jitter = rng.normal(0, p["shake"], 2).astype(np.float32)
        if kind == "print":
            plane = plane0 if len(set(id(s) for s in sources)) == 1 else printed(sources[i], p, rng)
            scale = _fit(sources[i], face_w, p)
        elif kind == "screen":
            plane = on_screen(sources[i], p, phase=rng.uniform(0, 2 * np.pi))
            scale = _fit(sources[i], face_w, p) / p["subpixel"]
        else:
            raise ValueError(f"unknown attack kind {kind!r}")
        frames.append(camera(_place(plane, scale, p, rng, jitter, centre, bg), p, rng))
    return frames


def bona_fide_frame(
    image: np.ndarray, face_w: float, settings: Settings, rng: np.random.Generator
) -> np.ndarray:
    """A real face (a live photo or video frame) as the gate camera would see it."""
    p = draw(settings, rng)
    return film(image, face_w, p, background(rng), rng)


def film(
    image: np.ndarray,
    face_w: float,
    p: dict[str, float],
    bg: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Place a real image, its face ``face_scale`` of the frame wide, and film it."""
    scale = _fit(image, face_w, p)
    h, w = image.shape[:2]
    big = cv2.resize(
        image,
        (max(1, int(w * scale)), max(1, int(h * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
    )
    out = bg.copy()
    bh, bw = big.shape[:2]
    x0, y0 = (FRAME[0] - bw) // 2, (FRAME[1] - bh) // 2
    sx, sy = max(0, -x0), max(0, -y0)
    dx, dy = max(0, x0), max(0, y0)
    cw, ch = min(bw - sx, FRAME[0] - dx), min(bh - sy, FRAME[1] - dy)
    out[dy : dy + ch, dx : dx + cw] = big[sy : sy + ch, sx : sx + cw]
    return camera(out, p, rng)


def bona_fide_burst(
    images: Sequence[np.ndarray], face_w: float, settings: Settings, rng: np.random.Generator
) -> list[np.ndarray]:
    """Real frames (a video window) through one camera setting and one background."""
    p = draw(settings, rng)
    bg = background(rng)
    return [film(img, face_w, p, bg, rng) for img in images]
