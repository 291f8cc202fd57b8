"""The Logical Data Structure (ICAO 9303-10): files, their tags and contents, both ways.

The reader parses what the chip sends; the virtual chip builds the same files with the
``build_*`` functions, so the two halves share one definition of every file. Parsing is
complete at load (a file that does not parse raises ``LDSError``/``TLVError`` up front).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from asn1crypto import core

from drivers.icao import tlv
from drivers.icao.errors import LDSError, TLVError
from gate.mrz import parse_mrz
from gate.results import MrzRecord

AID_EMRTD = bytes.fromhex("A0000002471001")
FID_CARD_ACCESS = 0x011C
FID_COM, FID_SOD = 0x011E, 0x011D
TAG_COM, TAG_SOD = 0x60, 0x77
# data group number -> (file id, outer tag)
DG = {
    1: (0x0101, 0x61),
    2: (0x0102, 0x75),
    3: (0x0103, 0x63),
    4: (0x0104, 0x76),
    5: (0x0105, 0x65),
    7: (0x0107, 0x67),
    11: (0x010B, 0x6B),
    12: (0x010C, 0x6C),
    14: (0x010E, 0x6E),
    15: (0x010F, 0x6F),
}
TAG_TO_DG = {tag: n for n, (_, tag) in DG.items()}


# --- EF.COM -------------------------------------------------------------------------


@dataclass(frozen=True)
class EFCom:
    lds_version: str
    unicode_version: str
    data_groups: tuple[int, ...]


def parse_com(raw: bytes) -> EFCom:
    kids = tlv.children(tlv.unwrap(raw, TAG_COM))
    if 0x5C not in kids:
        raise LDSError("EF.COM without tag list 5C")
    groups = []
    for t in kids[0x5C]:
        if t not in TAG_TO_DG:
            raise LDSError(f"EF.COM lists unknown tag {t:02X}")
        groups.append(TAG_TO_DG[t])
    return EFCom(
        kids.get(0x5F01, b"").decode("latin-1"),
        kids.get(0x5F36, b"").decode("latin-1"),
        tuple(groups),
    )


def build_com(groups: list[int]) -> bytes:
    body = (
        tlv.encode(0x5F01, b"0107")
        + tlv.encode(0x5F36, b"040000")
        + tlv.encode(0x5C, bytes(DG[n][1] for n in groups))
    )
    return tlv.encode(TAG_COM, body)


# --- DG1: the MRZ ---------------------------------------------------------------------

_LINE_SPLIT = {88: (44, "TD3"), 90: (30, "TD1"), 72: (36, "TD2")}


def parse_dg1(raw: bytes) -> tuple[str, ...]:
    """The MRZ lines stored in DG1."""
    mrz = tlv.find(tlv.unwrap(raw, 0x61), 0x5F1F)
    try:
        text = mrz.decode("ascii")
    except UnicodeDecodeError:
        raise LDSError("DG1 MRZ is not ASCII") from None
    if len(text) not in _LINE_SPLIT:
        raise LDSError(f"DG1 MRZ of {len(text)} characters")
    n = _LINE_SPLIT[len(text)][0]
    return tuple(text[i : i + n] for i in range(0, len(text), n))


def build_dg1(lines: list[str] | tuple[str, ...]) -> bytes:
    return tlv.encode(0x61, tlv.encode(0x5F1F, "".join(lines).encode("ascii")))


def _date(raw: str, *, birth: bool, today: dt.date) -> dt.date | None:
    try:
        yy, mm, dd = int(raw[:2]), int(raw[2:4]), int(raw[4:6])
    except ValueError:
        return None
    century = 2000
    if birth and yy > today.year % 100:
        century = 1900
    if not birth and yy >= (today.year % 100) + 50:
        century = 1900
    try:
        return dt.date(century + yy, mm, dd)
    except ValueError:
        return None


def dg1_to_mrz(lines: tuple[str, ...], today: dt.date | None = None) -> MrzRecord:
    """DG1's MRZ as an ``MrzRecord`` (TD1, TD2, TD3), through the same ICAO 9303 parser
    as the printed page (``gate.mrz``), so the two compare field by field.

    Check digits are reported by the parser but not judged here: DG1 is covered by the
    SOD signature, and a mismatch with the printed page is the policy's to weigh.
    """
    if not (
        (len(lines) == 2 and len(lines[0]) in (44, 36) and len(lines[1]) == len(lines[0]))
        or (len(lines) == 3 and all(len(line) == 30 for line in lines))
    ):
        raise LDSError("DG1 MRZ is not TD1, TD2 or TD3")
    rec = parse_mrz(tuple(lines), today=today or dt.date.today())
    if rec.format not in ("TD1", "TD2", "TD3"):
        raise LDSError(f"DG1 MRZ is not a travel document's ({rec.format or 'unknown'})")
    return rec


# --- DG2: the portrait ------------------------------------------------------------------


@dataclass(frozen=True)
class Portrait:
    image: bytes
    format: str  # "jpeg" or "jpeg2000"
    width: int
    height: int
    container: str  # "19794-5" or "39794-5"


# ICAO portraits are a few hundred pixels a side (ISO 19794-5 asks about 420x525 and up);
# a header claiming more is refused before decoding, whose time and memory grow with the
# claimed size even at 1/8 scale (a 24x524320 JPEG 2000 of 900 bytes took 0.3 s)
MAX_PORTRAIT_SIDE = 2048
JPEG_SOI = b"\xff\xd8\xff"
JP2_SIG = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
J2K_SOC = b"\xff\x4f\xff\x51"


def _image_format(img: bytes) -> str:
    if img.startswith(JPEG_SOI):
        return "jpeg"
    if img.startswith(JP2_SIG) or img.startswith(J2K_SOC):
        return "jpeg2000"
    raise LDSError("portrait is neither JPEG nor JPEG 2000")


def _parse_19794_5(block: bytes) -> tuple[bytes, int, int]:
    """ISO/IEC 19794-5:2005 facial record: general header, facial information, feature
    points, image information, image data. Returns ``(image, width, height)``."""
    if len(block) < 14 + 20 + 12 or block[:4] != b"FAC\x00":
        raise LDSError("biometric data block is not an ISO 19794-5 facial record")
    record_len = int.from_bytes(block[8:12], "big")
    if record_len > len(block):
        raise LDSError("19794-5 record length exceeds the data block")
    if int.from_bytes(block[12:14], "big") < 1:
        raise LDSError("19794-5 record without images")
    pos = 14
    face_len = int.from_bytes(block[pos : pos + 4], "big")
    points = int.from_bytes(block[pos + 4 : pos + 6], "big")
    img_info = pos + 20 + 8 * points
    if img_info + 12 > len(block) or pos + face_len > len(block):
        raise LDSError("19794-5 facial information truncated")
    width = int.from_bytes(block[img_info + 2 : img_info + 4], "big")
    height = int.from_bytes(block[img_info + 4 : img_info + 6], "big")
    image = block[img_info + 12 : pos + face_len]
    return image, width, height


def _parse_39794_5(block: bytes) -> bytes:
    """ISO/IEC 39794-5 is a DER tree; the portrait is its only JPEG/JPEG 2000 stream, so
    locate the stream's signature rather than model every optional branch."""
    for sig in (JPEG_SOI, JP2_SIG, J2K_SOC):
        i = block.find(sig)
        if i >= 0:
            return block[i:]
    raise LDSError("no image in the 39794-5 block")


def parse_dg2(raw: bytes, decode: bool = True) -> Portrait:
    group = tlv.find(tlv.unwrap(raw, 0x75), 0x7F61)
    inst = tlv.find(group, 0x7F60)
    kids = tlv.children(inst)
    if 0x5F2E in kids:
        image, w, h = _parse_19794_5(kids[0x5F2E])
        container = "19794-5"
    elif 0x7F2E in kids:
        image, w, h, container = _parse_39794_5(kids[0x7F2E]), 0, 0, "39794-5"
    else:
        raise LDSError("DG2 biometric template without data block 5F2E/7F2E")
    fmt = _image_format(image)
    w2, h2 = image_size(image, decode=decode)
    return Portrait(image, fmt, w or w2, h or h2, container)


def image_size(image: bytes, decode: bool = False) -> tuple[int, int]:
    """Width and height from the image header; with ``decode`` the whole stream is decoded
    (JPEG at 1/8 scale through Pillow's draft mode, JPEG 2000 at its lowest resolution
    level), so a truncated or corrupt portrait is caught here, not at the face matcher."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image)) as im:
            size = im.size
            if max(size) > MAX_PORTRAIT_SIDE:
                raise LDSError(f"portrait of {size[0]}x{size[1]}: larger than any passport's")
            if decode:
                if im.format == "JPEG":
                    im.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
                elif im.format == "JPEG2000":
                    im.reduce = 3  # type: ignore[method-assign,assignment]  # Jpeg2K: a property
                im.load()
            return size
    except LDSError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise LDSError(f"portrait cannot be decoded: {exc}") from None
    except Exception as exc:  # Pillow's decoders raise a zoo on hostile input
        raise LDSError(f"portrait cannot be decoded: {type(exc).__name__}") from None


def build_dg2(image: bytes) -> bytes:
    """One JPEG (or JPEG 2000) portrait in an ISO 19794-5 record inside DG2's BIT group."""
    w, h = image_size(image)
    image_type = 0 if image.startswith(JPEG_SOI) else 1
    facial_info = (
        (20 + 12 + len(image)).to_bytes(4, "big")
        + b"\x00\x00"  # feature points
        + b"\x00\x00\x00"  # gender, eye colour, hair colour
        + b"\x00\x00\x00"  # property mask
        + b"\x00\x00"  # expression
        + b"\x00\x00\x00"  # pose angles
        + b"\x00\x00\x00"  # pose uncertainty
    )
    image_info = (
        bytes([1, image_type])  # full frontal, JPEG / JPEG 2000
        + w.to_bytes(2, "big")
        + h.to_bytes(2, "big")
        + bytes([1, 2])  # 24-bit RGB, digital camera
        + b"\x00\x00\x00\x00"
    )
    body = facial_info + image_info + image
    record = b"FAC\x00010\x00" + (14 + len(body)).to_bytes(4, "big") + b"\x00\x01" + body
    bht = (
        tlv.encode(0x80, b"\x01\x01")
        + tlv.encode(0x87, b"\x01\x01")
        + tlv.encode(0x88, b"\x00\x08")
    )
    inst = tlv.encode(0x7F60, tlv.encode(0xA1, bht) + tlv.encode(0x5F2E, record))
    return tlv.encode(0x75, tlv.encode(0x7F61, tlv.encode(0x02, b"\x01") + inst))


# --- DG14, DG15, EF.CardAccess: SecurityInfos -----------------------------------------

ID_AA = "2.23.136.1.1.5"
ID_PACE_PREFIX = "0.4.0.127.0.7.2.2.4."
ID_CA_PREFIX = "0.4.0.127.0.7.2.2.3."
ID_PK_PREFIX = "0.4.0.127.0.7.2.2.1."


class _SecurityInfo(core.Sequence):
    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("required", core.Any),
        ("optional", core.Any, {"optional": True}),
    ]


class _SecurityInfos(core.SetOf):
    _child_spec = _SecurityInfo


@dataclass(frozen=True)
class SecurityInfo:
    protocol: str
    required: bytes  # DER of the second element
    optional: bytes | None


def parse_security_infos(der: bytes) -> tuple[SecurityInfo, ...]:
    """SecurityInfos (9303-11 9.2), eagerly decoded; anything wrong is an LDSError."""
    try:
        infos = _SecurityInfos.load(der)
        out = []
        for info in infos:
            opt = info["optional"]
            out.append(
                SecurityInfo(
                    info["protocol"].dotted,
                    info["required"].dump(),
                    opt.dump() if opt.native is not None else None,
                )
            )
        return tuple(out)
    except LDSError:
        raise
    except Exception as exc:  # asn1crypto raises ValueError/TypeError/... on bad DER
        raise LDSError(f"SecurityInfos do not parse: {exc}") from None


def build_security_infos(infos: list[tuple[str, bytes, bytes | None]]) -> bytes:
    """DER SET OF SecurityInfo from ``(oid, required_der, optional_der)``."""
    items = []
    for oid, req, opt in infos:
        body = core.ObjectIdentifier(oid).dump() + req + (opt or b"")
        items.append(tlv.encode(0x30, body))
    return tlv.encode(0x31, b"".join(sorted(items)))


def parse_dg14(raw: bytes) -> tuple[SecurityInfo, ...]:
    return parse_security_infos(tlv.unwrap(raw, 0x6E))


def aa_signature_oid(dg14: tuple[SecurityInfo, ...]) -> str | None:
    """The ECDSA hash algorithm of ActiveAuthenticationInfo, if DG14 carries one."""
    for info in dg14:
        if info.protocol == ID_AA and info.optional:
            try:
                return core.ObjectIdentifier.load(info.optional).dotted
            except Exception:
                raise LDSError("ActiveAuthenticationInfo algorithm is not an OID") from None
    return None


def parse_dg15(raw: bytes) -> bytes:
    """DG15's SubjectPublicKeyInfo (DER), the active authentication key."""
    return tlv.unwrap(raw, 0x6F)


def build_dg15(spki_der: bytes) -> bytes:
    return tlv.encode(0x6F, spki_der)


def build_dg14(infos: list[tuple[str, bytes, bytes | None]]) -> bytes:
    return tlv.encode(0x6E, build_security_infos(infos))


def dg_of(raw: bytes) -> int:
    """Which data group a file is, from its outer tag."""
    try:
        tag, _ = tlv.read_tag(raw)
    except TLVError:
        raise LDSError("empty data group") from None
    if tag not in TAG_TO_DG:
        raise LDSError(f"unknown data group tag {tag:X}")
    return TAG_TO_DG[tag]
