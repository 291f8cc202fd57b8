"""PACE with generic mapping (ICAO 9303-11 4.4, BSI TR-03110) over ECDH (brainpoolP256r1,
P-256) or DH mod p (the RFC 5114 groups, ``dh.py``), with AES or 3DES sessions.

Generic mapping needs the full point ``H = sk * PK`` and key agreement on the mapped
generator ``G' = s*G + H``; ``cryptography`` offers neither (ECDH returns only x on the
standard generator), so the curve arithmetic is a short Jacobian-coordinate
implementation below. ``ECGM`` and ``DHGM`` give the protocol the same few group
operations, so one ``perform`` (and the virtual chip's half) runs both. Keys are
ephemeral and discarded after one read.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from asn1crypto import core

from drivers.icao import dh, keys, lds, tlv
from drivers.icao.apdu import APDU, Channel
from drivers.icao.errors import AccessError, LDSError, StatusError, TLVError
from drivers.icao.sm import SecureMessaging

# --- curves --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    name: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int

    @property
    def size(self) -> int:
        return (self.p.bit_length() + 7) // 8


CURVES = {
    12: Curve(
        "secp256r1",
        0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
        0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
        0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ),
    13: Curve(
        "brainpoolP256r1",
        0xA9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377,
        0x7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9,
        0x26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6,
        0x8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262,
        0x547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997,
        0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
    ),
}

Point = tuple[int, int] | None  # affine; None is the point at infinity


def _add(c: Curve, p1: Point, p2: Point) -> Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % c.p == 0:
            return None
        lam = (3 * x1 * x1 + c.a) * pow(2 * y1, -1, c.p) % c.p
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, c.p) % c.p
    x3 = (lam * lam - x1 - x2) % c.p
    return x3, (lam * (x1 - x3) - y1) % c.p


def mul(c: Curve, k: int, pt: Point) -> Point:
    """k * pt in Jacobian coordinates (one inversion at the end)."""
    if pt is None or k % c.n == 0:
        return None
    p = c.p
    X, Y, Z = pt[0], pt[1], 1
    rx, ry, rz = 0, 1, 0  # infinity
    for bit in bin(k % c.n)[2:]:
        # double R
        if rz:
            ysq = ry * ry % p
            s = 4 * rx * ysq % p
            zz = rz * rz % p
            m = (3 * rx * rx + c.a * zz * zz) % p
            nx = (m * m - 2 * s) % p
            ny = (m * (s - nx) - 8 * ysq * ysq) % p
            rz = 2 * ry * rz % p
            rx, ry = nx, ny
            if ry == 0:
                rz = 0
        if bit == "1":
            # R += P (P affine: Z = 1)
            if not rz:
                rx, ry, rz = X, Y, Z
                continue
            z2 = rz * rz % p
            u2 = X * z2 % p
            s2 = Y * z2 * rz % p
            h = (u2 - rx) % p
            r = (s2 - ry) % p
            if h == 0:
                if r == 0:  # R == P: double instead
                    return _add(c, mul(c, k - 1, pt), pt)
                rx, ry, rz = 0, 1, 0
                continue
            hh = h * h % p
            hhh = h * hh % p
            v = rx * hh % p
            nx = (r * r - hhh - 2 * v) % p
            ry = (r * (v - nx) - ry * hhh) % p
            rx = nx
            rz = rz * h % p
    if not rz:
        return None
    zi = pow(rz, -1, p)
    zi2 = zi * zi % p
    return rx * zi2 % p, ry * zi2 * zi % p


def on_curve(c: Curve, pt: Point) -> bool:
    if pt is None:
        return False
    x, y = pt
    return 0 <= x < c.p and 0 <= y < c.p and (y * y - x * x * x - c.a * x - c.b) % c.p == 0


def encode_point(c: Curve, pt: Point) -> bytes:
    assert pt is not None
    return b"\x04" + pt[0].to_bytes(c.size, "big") + pt[1].to_bytes(c.size, "big")


def decode_point(c: Curve, data: bytes) -> Point:
    if len(data) != 1 + 2 * c.size or data[0] != 4:
        raise AccessError("public key is not an uncompressed point")
    pt = (int.from_bytes(data[1 : 1 + c.size], "big"), int.from_bytes(data[1 + c.size :], "big"))
    if not on_curve(c, pt):
        raise AccessError("public key is not on the curve")
    return pt


def keypair(c: Curve, g: Point) -> tuple[int, Point]:
    sk = secrets.randbelow(c.n - 1) + 1
    return sk, mul(c, sk, g)


def generator(c: Curve) -> Point:
    return c.gx, c.gy


def map_generator(c: Curve, nonce: bytes, h: Point) -> Point:
    """Generic mapping: G' = s*G + H."""
    g2 = _add(c, mul(c, int.from_bytes(nonce, "big"), generator(c)), h)
    if g2 is None:
        raise AccessError("mapped generator is the point at infinity")
    return g2


# --- the two groups generic mapping runs on -------------------------------------------------


class GMGroup(Protocol):
    """What generic mapping needs of a group; an element is a point or an integer."""

    kind: str
    pk_tag: int

    def generator(self) -> Any: ...
    def keypair(self, g: Any) -> tuple[int, Any]: ...
    def encode(self, pk: Any) -> bytes: ...
    def decode(self, data: bytes) -> Any: ...
    def agree(self, sk: int, pk: Any) -> Any: ...
    def map(self, nonce: bytes, h: Any) -> Any: ...
    def secret(self, shared: Any) -> bytes: ...
    def comp(self, pk: Any) -> bytes: ...


class ECGM:
    """ECDH: public keys are uncompressed points (DO86 in the token), K is x."""

    kind = "ECDH"
    pk_tag = 0x86

    def __init__(self, c: Curve) -> None:
        self.c = c

    def generator(self) -> Point:
        return generator(self.c)

    def keypair(self, g: Point) -> tuple[int, Point]:
        return keypair(self.c, g)

    def encode(self, pk: Point) -> bytes:
        return encode_point(self.c, pk)

    def decode(self, data: bytes) -> Point:
        return decode_point(self.c, data)

    def agree(self, sk: int, pk: Point) -> Point:
        shared = mul(self.c, sk, pk)
        if shared is None:
            raise AccessError("shared secret is the point at infinity")
        return shared

    def map(self, nonce: bytes, h: Point) -> Point:
        return map_generator(self.c, nonce, h)

    def secret(self, shared: Point) -> bytes:
        assert shared is not None
        return shared[0].to_bytes(self.c.size, "big")

    def comp(self, pk: Point) -> bytes:
        assert pk is not None
        return pk[0].to_bytes(self.c.size, "big")


class DHGM:
    """DH mod p: public keys are unsigned integers (DO84 in the token), K is y^x mod p
    at p's length; every value from the other side is checked (``dh.decode``)."""

    kind = "DH"
    pk_tag = 0x84

    def __init__(self, grp: dh.Group) -> None:
        self.grp = grp

    def generator(self) -> int:
        return self.grp.g

    def keypair(self, g: int) -> tuple[int, int]:
        return dh.keypair(self.grp, g)

    def encode(self, pk: int) -> bytes:
        return dh.encode(pk)

    def decode(self, data: bytes) -> int:
        return dh.decode(self.grp, data)

    def agree(self, sk: int, pk: int) -> int:
        return dh.agree(self.grp, sk, pk)

    def map(self, nonce: bytes, h: int) -> int:
        return dh.map_generator(self.grp, nonce, h)

    def secret(self, shared: int) -> bytes:
        return dh.secret(self.grp, shared)

    def comp(self, pk: int) -> bytes:
        return dh.comp(pk)


# --- protocol --------------------------------------------------------------------------------

PACE_DH_GM = "0.4.0.127.0.7.2.2.4.1."
PACE_ECDH_GM = "0.4.0.127.0.7.2.2.4.2."
# last arc of id-PACE-{DH,ECDH}-GM-*: cipher and key length
CIPHERS = {"1": ("3DES", 128), "2": ("AES", 128), "3": ("AES", 192), "4": ("AES", 256)}
# which offer to take when EF.CardAccess has several: ECDH before DH (faster, and the
# ECDH path is the one most chips are tested with), AES before 3DES
_RANK = {("ECDH", "AES"): 0, ("DH", "AES"): 1, ("ECDH", "3DES"): 2, ("DH", "3DES"): 3}


@dataclass(frozen=True)
class PACEInfo:
    oid: str
    version: int
    parameter_id: int

    @property
    def kind(self) -> str:
        return "DH" if self.oid.startswith(PACE_DH_GM) else "ECDH"

    @property
    def cipher(self) -> tuple[str, int]:
        return CIPHERS[self.oid.rsplit(".", 1)[1]]

    @property
    def key_bits(self) -> int:
        return self.cipher[1]

    def group(self) -> GMGroup:
        if self.kind == "DH":
            return DHGM(dh.MODP[self.parameter_id])
        return ECGM(CURVES[self.parameter_id])


def supported(oid: str, parameter_id: int | None) -> bool:
    """Generic mapping on a standardized group we have, with a cipher we have."""
    if oid.startswith(PACE_ECDH_GM):
        groups: dict[int, object] = dict(CURVES)
    elif oid.startswith(PACE_DH_GM):
        groups = dict(dh.MODP)
    else:
        return False
    return oid.rsplit(".", 1)[1] in CIPHERS and parameter_id in groups


def choose(card_access: bytes) -> PACEInfo | None:
    """The PACEInfo of EF.CardAccess we can run (generic mapping, ECDH or DH, on a
    standardized group, AES or 3DES), the best by ``_RANK``; or None."""
    try:
        infos = lds.parse_security_infos(card_access)
    except LDSError:
        return None
    found = []
    for info in infos:
        try:
            version = core.Integer.load(info.required).native
            param = core.Integer.load(info.optional).native if info.optional else None
        except Exception:
            continue
        if version == 2 and supported(info.protocol, param):
            assert param is not None
            found.append(PACEInfo(info.protocol, version, param))
    if not found:
        return None
    return min(found, key=lambda i: _RANK[(i.kind, i.cipher[0])])


def password_key(mrz_info: str, key_bits: int, cipher: str = "AES") -> bytes:
    """K_pi from the MRZ password: KDF_pi over SHA-1(MRZ information)."""
    return keys.kdf(hashlib.sha1(mrz_info.encode("ascii")).digest(), keys.KDF_PI, cipher, key_bits)


def encrypt_nonce(info: PACEInfo, mrz_info: str, nonce: bytes) -> bytes:
    k_pi = password_key(mrz_info, info.key_bits, info.cipher[0])
    if info.cipher[0] == "3DES":
        return keys.des3_encrypt(k_pi, nonce)
    return keys.aes_encrypt(k_pi, nonce)


def decrypt_nonce(info: PACEInfo, mrz_info: str, z: bytes) -> bytes:
    """The nonce s from the chip's E(K_pi, s); one or more whole cipher blocks."""
    block = 8 if info.cipher[0] == "3DES" else 16
    if not z or len(z) % block or len(z) > 64:
        raise AccessError(f"encrypted nonce of {len(z)} bytes")
    k_pi = password_key(mrz_info, info.key_bits, info.cipher[0])
    if info.cipher[0] == "3DES":
        return keys.des3_decrypt(k_pi, z)
    return keys.aes_decrypt(k_pi, z)


def session_keys(info: PACEInfo, k: bytes) -> tuple[bytes, bytes]:
    cipher, bits = info.cipher
    return keys.kdf(k, keys.KDF_ENC, cipher, bits), keys.kdf(k, keys.KDF_MAC, cipher, bits)


def oid_bytes(oid: str) -> bytes:
    return core.ObjectIdentifier(oid).contents


def auth_token(ks_mac: bytes, oid: str, group: GMGroup, pk: Any, cipher: str = "AES") -> bytes:
    """T = MAC(KS_mac, 7F49{06 OID, 86 point | 84 y}): AES-CMAC or, for 3DES, the retail
    MAC, 8 bytes."""
    data = tlv.encode(
        0x7F49, tlv.encode(0x06, oid_bytes(oid)) + tlv.encode(group.pk_tag, group.encode(pk))
    )
    if cipher == "3DES":
        return keys.retail_mac(ks_mac, data)
    return keys.aes_cmac(ks_mac, data)


def mse_set_at(info: PACEInfo) -> APDU:
    body = (
        tlv.encode(0x80, oid_bytes(info.oid))
        + tlv.encode(0x83, b"\x01")  # password: MRZ
        + tlv.encode(0x84, bytes([info.parameter_id]))
    )
    return APDU(0x00, 0x22, 0xC1, 0xA4, body)


def _ga(channel: Channel, tag: int, value: bytes, last: bool = False) -> dict[int, bytes]:
    data = tlv.encode(0x7C, tlv.encode(tag, value) if tag else b"")
    cla = 0x00 if last else 0x10
    resp, sw = channel.send(APDU(cla, 0x86, 0x00, 0x00, data, 256), plain=True)
    if sw != 0x9000:
        if sw in (0x6300, 0x6982) or sw >> 8 == 0x63:
            raise AccessError(f"GENERAL AUTHENTICATE refused: {sw:04X}")
        raise StatusError(sw, "GENERAL AUTHENTICATE")
    try:
        return tlv.children(tlv.unwrap(resp, 0x7C))
    except TLVError as exc:
        raise AccessError(f"GENERAL AUTHENTICATE answer malformed: {exc}") from None


def perform(
    channel: Channel,
    mrz_info: str,
    info: PACEInfo,
    rng: Callable[[int], bytes] = os.urandom,
    keep: dict[str, bytes] | None = None,
) -> SecureMessaging:
    """Run PACE-GM; returns the session (SSC 0) for ``channel.sm``. ``keep`` receives
    ``picc_key``, Comp() of the chip's ephemeral key: terminal authentication's ID_PICC."""
    grp = info.group()
    cipher = info.cipher[0]
    _, sw = channel.send(mse_set_at(info), plain=True)
    if sw != 0x9000:
        raise StatusError(sw, "MSE:Set AT")
    r1 = _ga(channel, 0, b"")
    if 0x80 not in r1:
        raise AccessError("no encrypted nonce")
    nonce = decrypt_nonce(info, mrz_info, r1[0x80])
    sk_map, pk_map = grp.keypair(grp.generator())
    r2 = _ga(channel, 0x81, grp.encode(pk_map))
    pk_map_icc = grp.decode(r2.get(0x82, b""))
    g2 = grp.map(nonce, grp.agree(sk_map, pk_map_icc))
    sk_eph, pk_eph = grp.keypair(g2)
    r3 = _ga(channel, 0x83, grp.encode(pk_eph))
    pk_eph_icc = grp.decode(r3.get(0x84, b""))
    if pk_eph_icc == pk_eph:
        raise AccessError("chip echoed our ephemeral key")
    ks_enc, ks_mac = session_keys(info, grp.secret(grp.agree(sk_eph, pk_eph_icc)))
    r4 = _ga(channel, 0x85, auth_token(ks_mac, info.oid, grp, pk_eph_icc, cipher), last=True)
    expect = auth_token(ks_mac, info.oid, grp, pk_eph, cipher)
    if not hmac.compare_digest(r4.get(0x86, b""), expect):
        raise AccessError("chip's authentication token does not verify")
    if keep is not None:
        keep["picc_key"] = grp.comp(pk_eph_icc)
    return SecureMessaging(ks_enc, ks_mac, 0, cipher)
