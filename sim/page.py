"""Synthetic passport data pages (TD3) and ID cards (TD1) for the simulator and the benchmark.

The MRZ is set in OCR-B from Debian's ``fonts-ocr-b`` at ICAO's 10 characters per inch;
identities are random but valid (built with ``gate.mrz.build_mrz``) and reproducible
from a seed. Degradation levels imitate what a document reader's camera sees: blur,
sensor noise, JPEG artefacts, rotation up to 10 degrees, perspective, uneven light and a
glare patch. ``write_page`` is the simulator's seam: it writes the image the
``OcrScanner`` (``drivers/scanner.py``) then reads, exactly as it would read a camera.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gate.mrz import build_mrz

LEVELS = ("clean", "mild", "moderate", "severe")
PX_PER_MM = 8.0  # about 200 dpi: what a document reader's camera resolves
PITCH_MM = 2.54  # ICAO 9303-3: 10 characters per 25.4 mm
CAP_MM = 2.4  # OCR-B size 1 capital height is about 2.4 mm (9303-3 4.1.1)
PAGE_MM = {"TD3": (125.0, 88.0), "TD1": (85.6, 54.0)}

_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/ocr-b/OCRB.otf",
    "/usr/share/fonts/truetype/ocr-b/OCRB.ttf",
)
SURNAMES = [
    "SMITH",
    "TAN",
    "LEE",
    "MULLER",
    "GARCIA",
    "NGUYEN",
    "OKAFOR",
    "IVANOVA",
    "SILVA",
    "COHEN",
    "ABDULLAH",
]
SURNAMES += [
    "KOWALSKI",
    "DUBOIS",
    "ROSSI",
    "JOHANSSON",
    "OBRIEN",
    "VAN<DER<BERG",
    "HOANG",
    "SATO",
    "PATEL",
]
GIVEN = [
    "ANNA",
    "JOHN",
    "MEI",
    "WEI",
    "SITI",
    "AHMAD",
    "MARIA",
    "OLIVER",
    "LUCAS",
    "NOOR",
    "CHLOE",
    "RAVI",
    "FATIMA",
]
GIVEN += ["PIERRE", "YUKI", "IVAN", "OLGA", "KWAME", "ELENA", "HIROSHI", "ZARA"]
STATES = [
    "MYS",
    "SGP",
    "GBR",
    "D",
    "FRA",
    "UTO",
    "USA",
    "IDN",
    "IND",
    "CHN",
    "JPN",
    "NLD",
    "AUS",
    "CAN",
    "BRA",
    "NGA",
    "XXA",
]


@cache
def ocrb_font_path() -> str:
    """Path of the OCR-B font (Debian ``fonts-ocr-b``); ``AUTOGATE_OCRB`` overrides."""
    env = os.environ.get("AUTOGATE_OCRB")
    if env:
        return env
    for p in _FONT_CANDIDATES:
        if Path(p).is_file():
            return p
    try:
        out = subprocess.run(
            ["fc-match", "-f", "%{file}", "OCR B"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    if "ocr" in out.lower():
        return out
    raise FileNotFoundError("OCR-B font not found: install Debian package fonts-ocr-b")


@dataclass(frozen=True)
class Identity:
    fmt: str
    document_code: str
    issuing_state: str
    surname: str
    given_names: str
    document_number: str
    nationality: str
    date_of_birth: dt.date
    sex: str
    date_of_expiry: dt.date
    optional_data: str = ""

    def lines(self) -> tuple[str, ...]:
        return build_mrz(
            self.fmt,
            surname=self.surname,
            given_names=self.given_names,
            document_number=self.document_number,
            nationality=self.nationality,
            issuing_state=self.issuing_state,
            date_of_birth=self.date_of_birth,
            sex=self.sex,
            date_of_expiry=self.date_of_expiry,
            document_code=self.document_code,
            optional_data=self.optional_data,
        )


def random_identity(rng: np.random.Generator, fmt: str = "TD3") -> Identity:
    """A random, valid identity; the same generator state gives the same person."""
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    letters = alnum[:26]
    number = "".join(rng.choice(list(letters), 2)) + "".join(rng.choice(list(alnum), 7))
    state = str(rng.choice(STATES))
    nat = state if rng.random() < 0.8 else str(rng.choice(STATES))
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 84)))
    expiry = dt.date(2020, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 16)))
    given = " ".join(rng.choice(GIVEN, int(rng.integers(1, 3)), replace=False))
    optional = "".join(rng.choice(list(alnum), int(rng.integers(0, 12))))
    return Identity(
        fmt=fmt,
        document_code=("P" if rng.random() < 0.9 else "PD") if fmt == "TD3" else "ID",
        issuing_state=state,
        surname=str(rng.choice(SURNAMES)).replace("<", " "),
        given_names=given,
        document_number=number,
        nationality=nat,
        date_of_birth=birth,
        sex=str(rng.choice(["F", "M", "X"], p=[0.48, 0.48, 0.04])),
        date_of_expiry=expiry,
        optional_data=optional,
    )


@cache
def _mrz_font() -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(ocrb_font_path(), 100)
    # scale so a capital is CAP_MM high on the page
    cap = font.getbbox("H")[3] - font.getbbox("H")[1]
    return ImageFont.truetype(ocrb_font_path(), round(100 * CAP_MM * PX_PER_MM / cap))


def _label_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _portrait(img: Image.Image, box: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """A placeholder head and shoulders, clipped to its frame."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    photo = Image.new("RGB", (w, h), (205, 215, 225))
    d = ImageDraw.Draw(photo)
    tone = tuple(int(v) for v in rng.integers(120, 220, 3))
    d.ellipse((w * 0.1, h * 0.72, w * 0.9, h * 1.4), fill=tone)
    d.ellipse((w * 0.28, h * 0.18, w * 0.72, h * 0.7), fill=tone)
    img.paste(photo, (x0, y0))


def render_clean(ident: Identity, rng: np.random.Generator) -> np.ndarray:
    """The undegraded page (BGR), MRZ in OCR-B at 10 characters per inch."""
    w_mm, h_mm = PAGE_MM[ident.fmt]
    w, h = round(w_mm * PX_PER_MM), round(h_mm * PX_PER_MM)
    tint = tuple(int(v) for v in rng.integers(215, 250, 3))
    img = Image.new("RGB", (w, h), tint)
    draw = ImageDraw.Draw(img)
    # a guilloche-like security background, kept light as on real pages
    xs = np.arange(0, w, 3)
    for k in range(12):
        phase, amp, freq = rng.random() * 6.28, 6 + 10 * rng.random(), 0.01 + 0.03 * rng.random()
        ys = h * (k + 0.5) / 12 + amp * np.sin(xs * freq + phase)
        col = tuple(max(0, c - int(rng.integers(15, 40))) for c in tint)
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=col, width=1)
    lines = ident.lines()
    mrz_h = round((len(lines) * 4.2 + 3) * PX_PER_MM)
    draw.rectangle((0, h - mrz_h, w, h), fill=tint)  # the clear MRZ zone (9303-3 4.2)
    title = "PASSPORT" if ident.fmt == "TD3" else "IDENTITY CARD"
    draw.text((w * 0.3, h * 0.04), f"{title}  {ident.issuing_state}", (40, 40, 90), _label_font(28))
    pw = round(w * (0.27 if ident.fmt == "TD3" else 0.28))
    top = round(h * 0.14)
    _portrait(img, (round(w * 0.04), top, round(w * 0.04) + pw, h - mrz_h - 10), rng)
    small, big = _label_font(13), _label_font(20)
    fields = [
        ("Surname", ident.surname),
        ("Given names", ident.given_names),
        ("Nationality", ident.nationality),
        ("Date of birth", ident.date_of_birth.strftime("%d %b %Y").upper()),
        ("Sex", ident.sex),
        ("Date of expiry", ident.date_of_expiry.strftime("%d %b %Y").upper()),
        ("Document no.", ident.document_number),
    ]
    x, y = round(w * 0.36), top
    step = (h - mrz_h - top - 40) / len(fields)
    for label, value in fields:
        draw.text((x, y), label, (90, 90, 110), small)
        draw.text((x, y + 14), value, (20, 20, 30), big)
        y += step
    font = _mrz_font()
    pitch = PITCH_MM * PX_PER_MM
    x0 = (w - pitch * len(lines[0])) / 2
    for i, line in enumerate(lines):
        base = h - mrz_h + round((1.5 + i * 4.2) * PX_PER_MM)
        for j, ch in enumerate(line):
            draw.text((x0 + j * pitch, base), ch, (15, 15, 20), font)
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)


_PARAMS = {
    #           rot  persp blur  noise jpeg light glare
    "clean": (0.0, 0.0, 0.0, 0.0, 95, 0.0, 0.0),
    "mild": (2.0, 0.01, 0.6, 3.0, 85, 0.15, 0.0),
    "moderate": (5.0, 0.03, 1.0, 6.0, 60, 0.3, 0.5),
    "severe": (10.0, 0.05, 1.5, 10.0, 35, 0.45, 1.0),
}


def degrade(page: np.ndarray, level: str, rng: np.random.Generator) -> np.ndarray:
    """Place the page on the reader's glass and degrade it as the level says."""
    rot, persp, blur, noise, quality, light, glare = _PARAMS[level]
    h, w = page.shape[:2]
    margin = round(0.12 * max(w, h))
    cw, ch = w + 2 * margin, h + 2 * margin
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + margin
    if persp:
        dst += rng.uniform(-persp, persp, (4, 2)).astype(np.float32) * np.float32([w, h])
    angle = np.deg2rad(rng.uniform(-rot, rot)) if rot else 0.0
    c, s = np.cos(angle), np.sin(angle)
    centre = np.float32([cw / 2, ch / 2])
    dst = ((dst - centre) @ np.float32([[c, s], [-s, c]]) + centre).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    bed = tuple(int(v) for v in rng.integers(30, 80, 3))
    out = cv2.warpPerspective(page, m, (cw, ch), flags=cv2.INTER_LINEAR, borderValue=bed)
    out = out.astype(np.float32)
    if light:
        yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
        gx, gy = rng.uniform(-1, 1, 2)
        field = (xx / cw - 0.5) * gx + (yy / ch - 0.5) * gy
        out *= (1 - light * (field - field.min()) / (np.ptp(field) + 1e-6))[..., None]
    if glare:
        gxc, gyc = rng.uniform(0.2, 0.8) * cw, rng.uniform(0.3, 0.9) * ch
        r = rng.uniform(0.05, 0.12) * cw
        yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
        blob = np.exp(-((xx - gxc) ** 2 + (yy - gyc) ** 2) / (2 * r * r))
        out += (glare * 150 * blob)[..., None]
    if blur:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.0) * blur)
    if noise:
        out += rng.normal(0, noise, out.shape).astype(np.float32)
    out8 = np.clip(out, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out8, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else out8


def render_page(
    seed: int, level: str = "clean", fmt: str = "TD3"
) -> tuple[np.ndarray, Identity, tuple[str, ...]]:
    """A degraded data page from ``seed``: (BGR image, identity, the MRZ lines printed)."""
    if level not in _PARAMS:
        raise ValueError(f"level must be one of {LEVELS}")
    rng = np.random.default_rng(seed)
    ident = random_identity(rng, fmt)
    page = render_clean(ident, rng)
    return degrade(page, level, rng), ident, ident.lines()


def write_page(path: str | Path, seed: int, level: str = "clean", fmt: str = "TD3") -> Identity:
    """Render a page and write it atomically where the ``ocr`` scanner reads its image."""
    img, ident, _ = render_page(seed, level, fmt)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    cv2.imwrite(str(tmp), img)
    os.replace(tmp, path)
    return ident
