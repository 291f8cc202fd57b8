"""DG3 (fingerprints) and DG4 (irises) as CBEFF biometric templates (ISO/IEC 19785-1 as
ICAO 9303-10 4.7.3 profiles it), and the ISO/IEC 19794-4:2005 finger image records in them.

``63 { 7F61 { 02 count, 7F60 { A1 header, 5F2E record }... } }``: one biometric
information template per finger, each with a header (type, format owner and type) and a
19794-4 record: a 32-byte general header, then per finger image a 14-byte header and the
image, WSQ, JPEG, JPEG 2000, PNG or raw. The image bytes are kept as the chip gave them;
``decode`` turns them into pixels (Pillow; WSQ through the ``wsq`` package's Pillow
plugin when installed) with the same size guard as the portrait.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import io
import multiprocessing
import threading
from dataclasses import dataclass

from drivers.icao import tlv
from drivers.icao.errors import LDSError

TAG_DG3, TAG_DG4 = 0x63, 0x76
BIOMETRIC_FINGER, BIOMETRIC_IRIS = 0x08, 0x10
FORMAT_OWNER_JTC1 = 0x0101
FORMAT_19794_4 = 0x0007
FIR = b"FIR\x00"
COMPRESSION = {0: "raw", 1: "raw-packed", 2: "wsq", 3: "jpeg", 4: "jpeg2000", 5: "png"}
MAX_FINGERS = 10
MAX_SIDE = 2000  # 500 ppi over 4 inches; 19794-4 fingers are well under this


@dataclass(frozen=True)
class FingerImage:
    position: int  # 19794-4 finger position: 1 right thumb ... 6 left thumb ... 10
    view: int
    quality: int  # 0-100, 254/255 not computed
    impression: int  # 0 live-scan plain, 1 rolled, ...
    width: int
    height: int
    resolution_ppi: int
    depth: int  # bits per pixel
    compression: str  # a COMPRESSION value
    image: bytes  # as the chip gave it


@dataclass(frozen=True)
class BiometricTemplate:
    biometric_type: int | None
    subtype: int | None
    format_owner: int
    format_type: int
    data: bytes


def parse_group(raw: bytes, tag: int = TAG_DG3) -> tuple[BiometricTemplate, ...]:
    """Every template of DG3 (``tag`` 63) or DG4 (76); ``LDSError``/``TLVError`` if the
    structure is not CBEFF as 9303-10 profiles it."""
    group = tlv.find(tlv.unwrap(raw, tag), 0x7F61)
    items = list(tlv.iter_tlv(group))
    if not items or items[0][0] != 0x02 or len(items[0][1]) != 1:
        raise LDSError("biometric group without its instance count")
    count = items[0][1][0]
    bits = [v for t, v in items[1:] if t == 0x7F60]
    if count != len(bits) or not 0 < count <= MAX_FINGERS * 2:
        raise LDSError(f"biometric group counts {count} templates, holds {len(bits)}")
    return tuple(_template(b) for b in bits)


def _int(value: bytes | None, what: str) -> int | None:
    if value is None:
        return None
    if not 0 < len(value) <= 4:
        raise LDSError(f"biometric header {what} of {len(value)} bytes")
    return int.from_bytes(value, "big")


def _template(bit: bytes) -> BiometricTemplate:
    kids = tlv.children(bit)
    if 0xA1 not in kids:
        raise LDSError("biometric template without its header A1")
    h = tlv.children(kids[0xA1])
    data = kids.get(0x5F2E, kids.get(0x7F2E))
    if data is None:
        raise LDSError("biometric template without its data block 5F2E/7F2E")
    return BiometricTemplate(
        _int(h.get(0x81), "type"),
        _int(h.get(0x82), "subtype"),
        _int(h.get(0x87), "format owner") or 0,
        _int(h.get(0x88), "format type") or 0,
        data,
    )


def parse_19794_4(block: bytes) -> tuple[FingerImage, ...]:
    """The finger images of one ISO/IEC 19794-4:2005 record."""
    if len(block) < 32 or block[:4] != FIR:
        raise LDSError("data block is not an ISO 19794-4 finger image record")
    record_len = int.from_bytes(block[8:14], "big")
    if record_len > len(block) or record_len < 32:
        raise LDSError(f"19794-4 record length {record_len}, block of {len(block)}")
    fingers = block[18]
    scale_units = block[19]
    res_h = int.from_bytes(block[20:22], "big")
    depth = block[28]
    comp = block[29]
    if comp not in COMPRESSION:
        raise LDSError(f"19794-4 compression {comp} unknown")
    if not 0 < fingers <= MAX_FINGERS:
        raise LDSError(f"19794-4 record of {fingers} finger images")
    ppi = res_h if scale_units == 1 else round(res_h * 2.54)
    out = []
    pos = 32
    for _ in range(fingers):
        if pos + 14 > record_len:
            raise LDSError("19794-4 finger image header truncated")
        length = int.from_bytes(block[pos : pos + 4], "big")
        if length < 14 or pos + length > record_len:
            raise LDSError(f"19794-4 finger image of {length} bytes does not fit")
        w = int.from_bytes(block[pos + 9 : pos + 11], "big")
        ht = int.from_bytes(block[pos + 11 : pos + 13], "big")
        if not (0 < w <= MAX_SIDE and 0 < ht <= MAX_SIDE):
            raise LDSError(f"19794-4 finger image of {w}x{ht}")
        out.append(
            FingerImage(
                block[pos + 4],
                block[pos + 5],
                block[pos + 7],
                block[pos + 8],
                w,
                ht,
                ppi,
                depth,
                COMPRESSION[comp],
                block[pos + 14 : pos + length],
            )
        )
        pos += length
    return tuple(out)


def parse_dg3(raw: bytes) -> tuple[FingerImage, ...]:
    """All finger images of DG3; templates in a format other than 19794-4 are skipped
    (a newer 39794-4 template beside the old one is allowed), none at all is an error."""
    images: list[FingerImage] = []
    for t in parse_group(raw, TAG_DG3):
        if (t.format_owner, t.format_type) == (FORMAT_OWNER_JTC1, FORMAT_19794_4):
            images += parse_19794_4(t.data)
    if not images:
        raise LDSError("DG3 holds no ISO 19794-4 finger image")
    return tuple(images)


def build_19794_4(images: list[FingerImage], compression: int) -> bytes:
    body = b""
    for f in images:
        body += (
            (14 + len(f.image)).to_bytes(4, "big")
            + bytes([f.position, 1, f.view, f.quality, f.impression])
            + f.width.to_bytes(2, "big")
            + f.height.to_bytes(2, "big")
            + b"\x00"
            + f.image
        )
    ppi = images[0].resolution_ppi if images else 500
    header = (
        FIR
        + b"010\x00"
        + (32 + len(body)).to_bytes(6, "big")
        + b"\x00\x00"  # capture device
        + (31).to_bytes(2, "big")  # image acquisition level (500 ppi)
        + bytes([len(images), 1])  # fingers, scale units: ppi
        + ppi.to_bytes(2, "big") * 4  # scan and image resolution, h and v
        + bytes([images[0].depth if images else 8, compression])
        + b"\x00\x00"
    )
    return header + body


def build_dg3(images: list[FingerImage]) -> bytes:
    """DG3 with one template per finger image (how most issuers write it)."""
    codes = {v: k for k, v in COMPRESSION.items()}
    bits = b""
    for f in images:
        bht = (
            tlv.encode(0x80, b"\x01\x01")
            + tlv.encode(0x81, bytes([BIOMETRIC_FINGER]))
            + tlv.encode(0x87, FORMAT_OWNER_JTC1.to_bytes(2, "big"))
            + tlv.encode(0x88, FORMAT_19794_4.to_bytes(2, "big"))
        )
        record = build_19794_4([f], codes[f.compression])
        bits += tlv.encode(0x7F60, tlv.encode(0xA1, bht) + tlv.encode(0x5F2E, record))
    group = tlv.encode(0x02, bytes([len(images)])) + bits
    return tlv.encode(TAG_DG3, tlv.encode(0x7F61, group))


def decode(f: FingerImage) -> object:
    """The finger image as an 8-bit grey ``PIL.Image`` (what a matcher takes); WSQ needs
    the ``wsq`` package, whose import registers its Pillow plugin."""
    from PIL import Image

    if f.compression in ("raw", "raw-packed"):
        if f.compression == "raw-packed" or f.depth != 8 or len(f.image) < f.width * f.height:
            raise LDSError(f"raw finger image of depth {f.depth} is not supported")
        return Image.frombytes("L", (f.width, f.height), f.image[: f.width * f.height])
    if f.compression == "wsq":
        size, pixels = decode_wsq(f.image)
        return Image.frombytes("L", size, pixels)
    try:
        with Image.open(io.BytesIO(f.image)) as im:
            if max(im.size) > MAX_SIDE:
                raise LDSError(f"finger image of {im.size[0]}x{im.size[1]}")
            im.load()
            return im.convert("L")
    except LDSError:
        raise
    except Exception as exc:  # Pillow's decoders raise a zoo on hostile input
        raise LDSError(f"finger image cannot be decoded: {type(exc).__name__}") from None


# --- WSQ, out of process ---------------------------------------------------------------
# NBIS's WSQ decoder (C, in the ``wsq`` package) crashes the interpreter on some hostile
# streams (a segmentation fault found by tests/fuzz/targets_eac.py), so a chip's WSQ is
# decoded in a worker process: a crash there is that traveller's refused image, and the
# next decode starts a new worker.
WSQ_TIMEOUT_S = 5.0
_pool: cf.ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _wsq_worker(data: bytes) -> tuple[tuple[int, int], bytes] | str:
    from PIL import Image

    try:
        import wsq  # noqa: F401  # registers the WSQ plugin with Pillow
    except ImportError:
        return "WSQ finger image and no WSQ decoder installed"
    try:
        with Image.open(io.BytesIO(data)) as im:
            if max(im.size) > MAX_SIDE:
                return f"finger image of {im.size[0]}x{im.size[1]}"
            im.load()
            grey = im.convert("L")
            return grey.size, grey.tobytes()
    except Exception as exc:
        return f"WSQ finger image cannot be decoded: {type(exc).__name__}"


@atexit.register
def _shutdown() -> None:
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)


def decode_wsq(data: bytes) -> tuple[tuple[int, int], bytes]:
    """``(size, 8-bit pixels)`` of a WSQ stream, decoded in the worker process."""
    global _pool
    with _pool_lock:
        if _pool is None:
            ctx = multiprocessing.get_context("spawn")  # no fork of a threaded daemon
            _pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx)
        pool = _pool
    try:
        out = pool.submit(_wsq_worker, data).result(timeout=WSQ_TIMEOUT_S)
    except (cf.process.BrokenProcessPool, cf.TimeoutError) as exc:
        with _pool_lock:
            if _pool is pool:
                _pool = None
        pool.shutdown(wait=False, cancel_futures=True)
        if isinstance(exc, cf.TimeoutError):
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()  # a decoder stuck in a loop holds no lock we need
        what = "timed out" if isinstance(exc, cf.TimeoutError) else "crashed"
        raise LDSError(f"WSQ finger image: the decoder {what}") from None
    if isinstance(out, str):
        raise LDSError(out)
    return out
