"""Fuzz targets of the chip's parsers: everything a passport chip sends the reader.

Seeds are the standard's and BSI's reference files (``shared/data/icao9303``) and the
files the virtual chip issues (``sim/chip.py``: RSA, ECDSA and RSA-PSS signed SODs, DG14
with ECDH and DH chip authentication keys, DG15 with RSA and ECDSA keys, small JPEG and
JPEG 2000 portraits, EF.CardAccess and PACE-DH's GENERAL AUTHENTICATE answers). Besides
the generic byte mutator, ``tlv_mutate`` edits the BER-TLV tree:
lengths that lie, values cut short, nodes dropped, repeated, swapped or nested deep.

A parser's reasoned refusal is the ``ICAOError`` family (``drivers/icao/errors.py``);
``atr_extended_length`` refuses nothing (a bad ATR only means "no extended length").
DG11 and DG12 are not parsed by the reader (not read: ``READ_GROUPS``), so have no target.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
from functools import lru_cache
from pathlib import Path

from drivers.icao import aa, ca, dh, lds, pa, pace, sod, tlv
from drivers.icao.errors import ICAOError
from drivers.icao.sm import SecureMessaging
from tests.fuzz.harness import Target

ICAO = Path(__file__).resolve().parents[2] / "../shared/data/icao9303"
REFUSED = (ICAOError,)
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

# --- a BER-TLV-aware mutator -----------------------------------------------------------

Node = tuple[bytes, "list[Node] | bytes"]  # (tag bytes, children or primitive value)


def _parse(data: bytes, depth: int = 0) -> list[Node]:
    """The TLV tree of ``data`` (constructed tags descended, and primitive values that
    are whole TLVs themselves, as DER inside an OCTET STRING); TLVError if not TLV."""
    out: list[Node] = []
    pos = 0
    while pos < len(data):
        start = pos
        _, pos = tlv.read_tag(data, pos)
        tag = data[start:pos]
        length, pos = tlv.read_length(data, pos)
        value = data[pos : pos + length]
        if len(value) < length:
            raise tlv.TLVError("short")
        pos += length
        kids: list[Node] | bytes = value
        if depth < 12 and value and (tag[0] & 0x20 or tag[0] == 0x04):
            try:
                kids = _parse(value, depth + 1)
            except tlv.TLVError:
                kids = value
        out.append((tag, kids))
    return out


@lru_cache(maxsize=64)
def _parsed(data: bytes) -> list[Node] | None:
    try:
        return _parse(data)
    except tlv.TLVError:
        return None


def _copy(nodes: list[Node]) -> list[Node]:
    return [(t, k if isinstance(k, bytes) else _copy(k)) for t, k in nodes]


def _tree(data: bytes) -> list[Node] | None:
    """A private copy of ``data``'s tree (seeds come back often: parsed once)."""
    tree = _parsed(data)
    return None if tree is None else _copy(tree)


def _encode(nodes: list[Node]) -> bytes:
    out = b""
    for tag, kids in nodes:
        value = kids if isinstance(kids, bytes) else _encode(kids)
        out += tag + tlv.encode_length(len(value)) + value
    return out


def _lists(nodes: list[Node]) -> list[list[Node]]:
    """Every child list of the tree (the root included), to edit one in place."""
    found = [nodes]
    for _, kids in nodes:
        if isinstance(kids, list):
            found += _lists(kids)
    return found


_BAD_LENGTHS = (
    b"\x00",
    b"\x7f",
    b"\x80",
    b"\x81\xff",
    b"\x82\xff\xff",
    b"\x83\xff\xff\xff",
    b"\x84\xff\xff\xff\xff",
    b"\x85\x01\x00\x00\x00\x00",
    b"\x81\x00",
)


def tlv_mutate(data: bytes, rng: random.Random) -> bytes:
    """One structural edit of a TLV file; the lengths around it are recomputed (so the
    parser gets past them) unless the edit is a lying length itself."""
    tree = _tree(data)
    if tree is None:
        return data[: rng.randrange(len(data) + 1)]
    lists = [lst for lst in _lists(tree) if lst]
    if not lists:
        return data
    lst = rng.choice(lists)
    i = rng.randrange(len(lst))
    tag, kids = lst[i]
    op = rng.randrange(8)
    if op == 0:  # a length that lies, in the encoded file
        raw = _encode([(tag, kids)])
        whole = _encode(tree)
        at = whole.find(raw)
        hdr = len(tag) + len(tlv.encode_length(len(raw) - len(tag)))
        hdr = len(tag) + (hdr - len(tag))
        _, after_len = tlv.read_length(raw, len(tag))
        bad = rng.choice(_BAD_LENGTHS)
        if rng.random() < 0.5:
            n = len(raw) - after_len + rng.choice((-2, -1, 1, 2, 128, 255))
            bad = tlv.encode_length(max(0, n))
        return whole[: at + len(tag)] + bad + whole[at + after_len :]
    if op == 1:  # value cut short (lengths fixed)
        value = kids if isinstance(kids, bytes) else _encode(kids)
        lst[i] = (tag, value[: rng.randrange(len(value) + 1)])
    elif op == 2:  # drop the node
        del lst[i]
    elif op == 3:  # repeat the node
        lst[i:i] = [lst[i]] * rng.randint(1, 3)
    elif op == 4:  # nest it: in itself or in a SEQUENCE, one to many levels deep
        node: Node = lst[i]
        for _ in range(rng.choice((1, 2, 8, 64))):
            node = (rng.choice((tag, b"\x30", b"\x31", b"\xa0")), [node])
        lst[i] = node
    elif op == 5:  # another tag (primitive/constructed, class, multi-byte)
        lst[i] = (rng.choice((b"\x04", b"\x30", b"\x5f\x1f", b"\x7f\x61", b"\x1f", b"\x02")), kids)
    elif op == 6:  # swap two siblings' values
        j = rng.randrange(len(lst))
        lst[i], lst[j] = (tag, lst[j][1]), (lst[j][0], kids)
    else:  # a primitive value replaced by something typical
        fill = rng.choice(
            (
                b"",
                b"\x00",
                b"\xff" * rng.randint(1, 40),
                bytes(rng.randrange(256) for _ in range(8)),
            )
        )
        lst[i] = (tag, fill)
    try:
        return _encode(tree)
    except tlv.TLVError:
        return data


# --- seeds -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _bsi() -> dict[str, bytes]:
    ref = json.loads((ICAO / "bsi_tr03105_reference.json").read_text())
    return {k: bytes.fromhex(v) for k, v in ref.items() if k.startswith("ef_")}


@lru_cache(maxsize=1)
def _worked() -> dict:
    return json.loads((ICAO / "bac_worked_example.json").read_text())


def _small_image(fmt: str) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (24, 32), (120, 90, 60))
    for x in range(24):
        img.putpixel((x, x % 32), (x * 9, 200, 30))
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 60} if fmt == "JPEG" else {}))
    return buf.getvalue()


@lru_cache(maxsize=1)
def _chips() -> list:
    from sim.chip import VirtualChip

    return [
        VirtualChip(pace=True, aa_kind="rsa", signature="ecdsa"),
        VirtualChip(pace=False, aa_kind="ecdsa", ca="3DES", signature="rsa"),
        VirtualChip(pace=False, aa_kind=None, signature="rsa-pss"),
    ]


def _chip_file(fid: int) -> list[bytes]:
    return [c.files[fid] for c in _chips() if fid in c.files]


@lru_cache(maxsize=1)
def _dg2_seeds() -> dict[str, bytes]:
    jpeg, jp2 = _small_image("JPEG"), _small_image("JPEG2000")
    j2k = jp2[jp2.find(b"\xff\x4f\xff\x51") :]
    out = {"jpeg": lds.build_dg2(jpeg), "jp2": lds.build_dg2(jp2), "j2k": lds.build_dg2(j2k)}
    # an ISO 39794-5 container: the image inside a DER tree, block 7F2E
    block = tlv.encode(0xA1, tlv.encode(0x80, b"\x01") + tlv.encode(0x81, jpeg))
    inst = tlv.encode(
        0x7F60, tlv.encode(0xA1, tlv.encode(0x80, b"\x01\x01")) + tlv.encode(0x7F2E, block)
    )
    out["39794"] = tlv.encode(0x75, tlv.encode(0x7F61, tlv.encode(0x02, b"\x01") + inst))
    for dg2 in out.values():  # load Pillow's decoders now: the first input would pay it
        lds.parse_dg2(dg2)
    return out


# --- calls -------------------------------------------------------------------------------


def _tlv_tree(data: bytes) -> None:
    """Walk the whole BER-TLV tree, as the LDS parsers do."""

    def walk(value: bytes, depth: int) -> None:
        for t, v in tlv.iter_tlv(value):
            first = t >> (8 * ((t.bit_length() - 1) // 8))
            if first & 0x20 and depth < 32:
                walk(v, depth + 1)

    walk(data, 0)
    if data:
        tlv.header_size(data[:8])


def _com(data: bytes) -> None:
    lds.parse_com(data)


def _dg1(data: bytes) -> None:
    lds.dg1_to_mrz(lds.parse_dg1(data), today=NOW.date())


def _dg2(data: bytes) -> None:
    lds.parse_dg2(data, decode=True)


def _dg2_19794(data: bytes) -> None:
    """The ISO 19794-5 facial record alone (the biometric data block of DG2)."""
    lds._parse_19794_5(data)


@lru_cache(maxsize=1)
def _dh_dg14_seeds() -> list[bytes]:
    """DG14 with a DH chip authentication key: X9.42 (2048/256), PKCS #3 (1024/160)."""
    from sim.chip import chip_ca_dh_infos

    out = []
    for param, cipher, pkcs3 in ((2, "AES", False), (0, "3DES", True)):
        grp = dh.MODP[param]
        out.append(lds.build_dg14(chip_ca_dh_infos(grp, dh.keypair(grp)[1], cipher, pkcs3)))
    return out


def _card_access_dh_seeds() -> list[bytes]:
    from sim.chip_pace import card_access

    return [
        card_access(pace.PACE_DH_GM + "2", 0),
        card_access(pace.PACE_DH_GM + "1", 2),
        card_access(pace.PACE_ECDH_GM + "1", 13),
    ]


# GENERAL AUTHENTICATE answers of a DH chip (1024-bit group: ICAO 9303-11 G.2's values)
_G2_Y = int(
    "78879F57225AA8080D52ED0FC890A4B25336F699AA89A2D3A189654AF70729E623EA5738B26381E4"
    "DA19E004706FACE7B235C2DBF2F38748312F3C98C2DD4882A41947B324AA1259AC22579DB93F7085"
    "655AF30889DBB845D9E6783FE42C9F2449400306254C8AE8EE9DD812A804C0B66E8CAFC14F84D825"
    "8950A91B44126EE6",
    16,
)


def _ga_dh_seeds() -> list[bytes]:
    y = dh.encode(_G2_Y)
    return [tlv.encode(0x7C, tlv.encode(0x82, y)), tlv.encode(0x7C, tlv.encode(0x84, y))]


def _ga_dh(data: bytes) -> None:
    """A PACE-DH answer: the 7C template, the chip's public value checked in the group."""
    kids = tlv.children(tlv.unwrap(data, 0x7C))
    grp = pace.DHGM(dh.MODP[0])
    for tag in (0x82, 0x84):
        if tag in kids:
            grp.decode(kids[tag])


def _dg14(data: bytes) -> None:
    infos = lds.parse_dg14(data)
    ca.find_key(infos)
    lds.aa_signature_oid(infos)


CHALLENGE = bytes.fromhex("0102030405060708")


@lru_cache(maxsize=1)
def _aa_seeds() -> list[bytes]:
    """DG15 followed by the chip's answer to INTERNAL AUTHENTICATE on ``CHALLENGE``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    out = []
    for chip in _chips()[:2]:
        key = chip.aa_key
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if isinstance(key, ec.EllipticCurvePrivateKey):
            sig = aa.sign_ecdsa_plain(key, CHALLENGE, "sha256")
        else:
            sig = aa.sign_rsa_9796_2(key, CHALLENGE, "sha1")
        out.append(lds.build_dg15(spki) + sig)
    return out + [_bsi()["ef_dg15"] + b"\x00" * 128]


def _dg15_aa(data: bytes) -> None:
    """DG15's key, then active authentication of the bytes after it as the signature."""
    _, _, end = tlv.decode(data)
    spki = lds.parse_dg15(data)
    aa.verify(spki, CHALLENGE, data[end:], "1.2.840.10045.4.3.2")


@lru_cache(maxsize=1)
def _trust() -> pa.TrustStore:
    chips = _chips()
    return pa.TrustStore(cscas=[c.trusted.csca for c in chips])


def _sod_seeds() -> list[bytes]:
    seeds = [_bsi()["ef_sod"], *_chip_file(lds.FID_SOD)]
    for raw in seeds:  # warm cryptography's and asn1crypto's lazy parts up
        _sod_pa(raw)
    return seeds


def _dgs_for_sod() -> dict[int, bytes]:
    chip = _chips()[0]
    return {n: chip.files[lds.DG[n][0]] for n in (1, 2, 14, 15)}


def _sod_pa(data: bytes) -> None:
    result = pa.verify(sod.parse_sod(data), _dgs_for_sod(), _trust(), NOW)
    assert isinstance(result.passed, bool)


def _card_access(data: bytes) -> None:
    lds.parse_security_infos(data)
    pace.choose(data)


# secure messaging: the worked example's session and SSC, then our own AES session
_SM_AES = (bytes(range(16)), bytes(range(16, 32)))


def _sm_bac() -> tuple[bytes, bytes, int]:
    ma = _worked()["mutual_authentication"]
    return bytes.fromhex(ma["ks_enc"]), bytes.fromhex(ma["ks_mac"]), int(ma["ssc"], 16)


@lru_cache(maxsize=1)
def _sm_seeds() -> list[bytes]:
    out = [bytes.fromhex(s["response"]) for s in _worked()["secure_messaging"]]
    enc, mac, ssc = _sm_bac()
    card = SecureMessaging(enc, mac, ssc + 1, "3DES")
    out.append(card.protect_response(b"\x60\x14\x5f\x01" * 9, 0x9000))
    card = SecureMessaging(*_SM_AES, 7, "AES")
    out.append(b"\xaa" + card.protect_response(bytes(range(200)), 0x6282))  # AES marker
    card = SecureMessaging(*_SM_AES, 7, "AES")
    out.append(b"\xaa" + card.protect_response(bytes(range(40)), 0x9000, odd=True))
    return out


def _session(data: bytes) -> tuple[SecureMessaging, bytes, int]:
    """The input's session: a leading AA byte selects AES, else the worked example's 3DES
    (its responses were protected with SSC ssc+2, ssc+4, ...: try the first ones)."""
    if data[:1] == b"\xaa":
        return SecureMessaging(*_SM_AES, 7, "AES"), data[1:], 7
    enc, mac, ssc = _sm_bac()
    return SecureMessaging(enc, mac, ssc, "3DES"), data, ssc


def _sm_unwrap(data: bytes) -> None:
    """A protected response as the card sent it (MAC as is)."""
    sm, resp, ssc = _session(data)
    for k in (1, 3, 5):  # the SSCs the worked example's three responses use
        sm.ssc = ssc + k
        try:
            sm.unprotect_response(resp, odd=bool(len(resp) % 2))
            return
        except ICAOError:
            continue
    raise ICAOError("no SSC verifies")


def _sm_unwrap_macd(data: bytes) -> None:
    """A card that holds the keys but sends malformed objects: the MAC is made right over
    whatever precedes DO8E, so the parsing after the MAC check is reached."""
    sm, body, ssc = _session(data)
    if len(body) < 2:
        sm.unprotect_response(body)
        return
    payload, sw = body[:-2], body[-2:]
    cut = payload.find(b"\x8e\x08")
    objs = payload[:cut] if cut >= 0 else payload
    card = SecureMessaging(sm.ks_enc, sm.ks_mac, ssc, sm.cipher)
    card.ssc += 1
    cc = card.mac(objs)
    sm.ssc = ssc
    sm.unprotect_response(objs + b"\x8e\x08" + cc + sw)


def _atr(data: bytes) -> None:
    from drivers.icao.document import atr_extended_length

    assert isinstance(atr_extended_length(data), bool)


def _atr_seeds() -> list[bytes]:
    from sim.chip import atr

    return [
        atr(True),
        atr(False),
        bytes.fromhex("3B8580018073002140"),
        bytes.fromhex("3B888001007300214090000000"),
        bytes.fromhex("3BDB960081B1FE451F0380F9A0000003080000100018D4"),
        bytes.fromhex("3B8A80014A434F503234315211"),
        bytes.fromhex("3B8580018073002100"),
    ]


TARGETS: list[Target] = [
    Target("chip_atr", _atr_seeds, _atr, ()),
    Target(
        "chip_tlv",
        lambda: [*_bsi().values(), *_chip_file(lds.FID_COM), _chips()[0].files[0x010E]],
        _tlv_tree,
        REFUSED,
        tlv_mutate,
    ),
    Target("chip_ef_com", lambda: _chip_file(lds.FID_COM), _com, REFUSED, tlv_mutate),
    Target(
        "chip_dg1",
        lambda: [
            _bsi()["ef_dg1"],
            *_chip_file(0x0101),
            lds.build_dg1(
                [
                    "I<UTOD231458907<<<<<<<<<<<<<<<",
                    "7408122F1204159UTO<<<<<<<<<<<6",
                    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
                ]
            ),
        ],
        _dg1,
        REFUSED,
        tlv_mutate,
    ),
    Target(
        "chip_dg2_jpeg",
        lambda: [_dg2_seeds()["jpeg"], _dg2_seeds()["39794"]],
        _dg2,
        REFUSED,
        tlv_mutate,
    ),
    Target(
        "chip_dg2_jpeg2000",
        lambda: [_dg2_seeds()["jp2"], _dg2_seeds()["j2k"]],
        _dg2,
        REFUSED,
        tlv_mutate,
    ),
    Target(
        "chip_dg2_19794_5",
        lambda: [
            tlv.children(tlv.find(tlv.find(tlv.unwrap(d, 0x75), 0x7F61), 0x7F60))[0x5F2E]
            for d in (_dg2_seeds()["jpeg"], _dg2_seeds()["jp2"])
        ],
        _dg2_19794,
        REFUSED,
    ),
    Target(
        "chip_dg14",
        lambda: [_bsi()["ef_dg14"], *_chip_file(0x010E), *_dh_dg14_seeds()],
        _dg14,
        REFUSED,
        tlv_mutate,
    ),
    Target("chip_dg15_aa", _aa_seeds, _dg15_aa, REFUSED, tlv_mutate),
    Target(
        "chip_sod_pa",
        _sod_seeds,
        _sod_pa,
        REFUSED,
        tlv_mutate,
    ),
    Target(
        "chip_card_access",
        lambda: [
            *_chip_file(lds.FID_CARD_ACCESS),
            _chips()[0].files[0x010E][4:],
            *_card_access_dh_seeds(),
        ],
        _card_access,
        REFUSED,
        tlv_mutate,
    ),
    Target("chip_pace_dh_answer", _ga_dh_seeds, _ga_dh, REFUSED, tlv_mutate),
    Target("chip_sm_response", _sm_seeds, _sm_unwrap, REFUSED),
    Target("chip_sm_response_macd", _sm_seeds, _sm_unwrap_macd, REFUSED),
]
