"""Card-verifiable certificates (BSI TR-03110 part 3 appendix C, as ICAO 9303-11 EAC uses
them): parse, build, and verify one against its issuer's key.

A CVC is ``7F21 { 7F4E body, 5F37 signature }``; the body holds the profile (``5F29``),
the authority reference CAR (``42``), the public key (``7F49``), the holder reference CHR
(``5F20``), the holder authorization CHAT (``7F4C``), effective and expiry dates
(``5F25``/``5F24``, six unpacked BCD digits YYMMDD) and optional extensions (``65``).
The signature covers the whole encoded body TLV. ECDSA signatures are plain ``r || s``
(BSI TR-03111); only a CVCA key carries its domain parameters, DV and IS keys inherit
them. Hand-parsed BER-TLV (``tlv.py``) because the tags are application class, but all
signature arithmetic is ``cryptography``'s.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from asn1crypto import core
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from drivers.icao import pace, tlv
from drivers.icao.errors import ICAOError, UnsupportedKey

ID_TA = "0.4.0.127.0.7.2.2.2"
ID_TA_RSA = ID_TA + ".1"
ID_TA_ECDSA = ID_TA + ".2"
ID_IS = "0.4.0.127.0.7.3.1.2.1"  # CHAT role: inspection system (ePassport)

# last arc -> (hash, padding "pkcs1"/"pss") for RSA; -> hash for ECDSA
_RSA = {"1": ("sha1", "pkcs1"), "2": ("sha256", "pkcs1"), "3": ("sha1", "pss")}
_RSA |= {"4": ("sha256", "pss"), "5": ("sha512", "pkcs1"), "6": ("sha512", "pss")}
_ECDSA = {"1": "sha1", "2": "sha224", "3": "sha256", "4": "sha384", "5": "sha512"}
_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_EC_CURVES: dict[str, ec.EllipticCurve] = {
    "secp256r1": ec.SECP256R1(),
    "brainpoolP256r1": ec.BrainpoolP256R1(),
}

# CHAT role bits (first byte, b7 b6) and the read rights (last byte, b1 DG4, b0 DG3)
ROLE_CVCA, ROLE_DV_DOMESTIC, ROLE_DV_FOREIGN, ROLE_IS = 3, 2, 1, 0
READ_DG3, READ_DG4 = 0x01, 0x02
MAX_CVC = 4096  # a CVC is a few hundred bytes; an RSA-4096 one under 1.5 KB


class CVCError(ICAOError):
    """A card-verifiable certificate that is not what TR-03110 part 3 says it is."""


def _date(raw: bytes) -> dt.date:
    if len(raw) != 6 or any(b > 9 for b in raw):
        raise CVCError(f"CVC date {raw.hex()} is not six unpacked BCD digits")
    y, m, d = raw[0] * 10 + raw[1], raw[2] * 10 + raw[3], raw[4] * 10 + raw[5]
    try:
        return dt.date(2000 + y, m, d)
    except ValueError:
        raise CVCError(f"CVC date {raw.hex()} is not a date") from None


def encode_date(d: dt.date) -> bytes:
    return bytes(int(c) for c in d.strftime("%y%m%d"))


def _oid(raw: bytes) -> str:
    try:
        return str(core.ObjectIdentifier.load(tlv.encode(0x06, raw)).dotted)
    except Exception:
        raise CVCError("CVC object identifier does not decode") from None


def _oid_bytes(oid: str) -> bytes:
    return bytes(core.ObjectIdentifier(oid).contents)


def _text(raw: bytes, what: str) -> str:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise CVCError(f"CVC {what} is not ASCII") from None
    if not text.isprintable() or not 0 < len(text) <= 16:
        raise CVCError(f"CVC {what} {text!r} is not a reference")
    return text


@dataclass(frozen=True)
class CVPublicKey:
    """A ``7F49`` public key: its TA algorithm OID and numbered fields (81..87)."""

    oid: str
    fields: dict[int, bytes] = field(default_factory=dict)

    @property
    def is_ecdsa(self) -> bool:
        return self.oid.startswith(ID_TA_ECDSA + ".")

    @property
    def has_domain(self) -> bool:
        return all(t in self.fields for t in (0x81, 0x82, 0x83, 0x84, 0x85))

    def encode(self) -> bytes:
        body = tlv.encode(0x06, _oid_bytes(self.oid))
        body += b"".join(tlv.encode(t, v) for t, v in sorted(self.fields.items()))
        return tlv.encode(0x7F49, body)


@dataclass(frozen=True)
class CHAT:
    oid: str
    rights: bytes

    @property
    def role(self) -> int:
        return self.rights[0] >> 6 if self.rights else ROLE_IS

    def may_read(self, dg: int) -> bool:
        bit = {3: READ_DG3, 4: READ_DG4}.get(dg, 0)
        return bool(self.rights) and bool(self.rights[-1] & bit)


@dataclass(frozen=True)
class CVC:
    car: str
    chr: str
    key: CVPublicKey
    chat: CHAT
    effective: dt.date
    expiry: dt.date
    signature: bytes
    body: bytes  # the encoded 7F4E TLV, what the signature covers
    profile: int = 0
    extensions: bytes = b""

    @property
    def raw(self) -> bytes:
        return tlv.encode(0x7F21, self.body + tlv.encode(0x5F37, self.signature))

    @property
    def command_data(self) -> bytes:
        """PSO:Verify Certificate's data: the body and signature, without ``7F21``."""
        return self.body + tlv.encode(0x5F37, self.signature)

    @property
    def is_link(self) -> bool:
        """A CVCA certificate signed by the previous CVCA key (a link certificate)."""
        return self.chat.role == ROLE_CVCA and self.car != self.chr

    def valid_on(self, day: dt.date) -> bool:
        return self.effective <= day <= self.expiry


def _public_key(value: bytes) -> CVPublicKey:
    kids = list(tlv.iter_tlv(value))
    if not kids or kids[0][0] != 0x06:
        raise CVCError("CVC public key without its OID")
    oid = _oid(kids[0][1])
    fields: dict[int, bytes] = {}
    for tag, v in kids[1:]:
        if tag not in range(0x81, 0x88) or tag in fields:
            raise CVCError(f"CVC public key field {tag:X} unexpected or repeated")
        fields[tag] = v
    if oid.startswith(ID_TA_ECDSA + "."):
        if 0x86 not in fields:
            raise CVCError("ECDSA CVC key without its public point (86)")
    elif oid.startswith(ID_TA_RSA + "."):
        if 0x81 not in fields or 0x82 not in fields:
            raise CVCError("RSA CVC key without modulus and exponent")
    else:
        raise UnsupportedKey(f"CVC key algorithm {oid} is not a TA algorithm")
    return CVPublicKey(oid, fields)


def parse(raw: bytes) -> CVC:
    """One CVC from ``7F21`` bytes; ``CVCError`` (or ``TLVError``) on anything malformed."""
    if len(raw) > MAX_CVC:
        raise CVCError(f"CVC of {len(raw)} bytes")
    outer = tlv.unwrap(raw, 0x7F21)
    tag, body_value, pos = tlv.decode(outer)
    if tag != 0x7F4E:
        raise CVCError("CVC without its body 7F4E")
    body = outer[:pos]
    sig_tag, signature, end = tlv.decode(outer, pos)
    if sig_tag != 0x5F37 or end != len(outer):
        raise CVCError("CVC without a single signature 5F37 after its body")
    order = (0x5F29, 0x42, 0x7F49, 0x5F20, 0x7F4C, 0x5F25, 0x5F24)
    items = list(tlv.iter_tlv(body_value))
    if [t for t, _ in items[: len(order)]] != list(order):
        raise CVCError("CVC body fields missing or out of order")
    ext = items[len(order) :]
    if len(ext) > 1 or (ext and ext[0][0] != 0x65):
        raise CVCError("CVC body has unexpected fields after the dates")
    v = [val for _, val in items]
    if len(v[0]) != 1:
        raise CVCError("CVC profile identifier is not one byte")
    chat_kids = list(tlv.iter_tlv(v[4]))
    if len(chat_kids) != 2 or chat_kids[0][0] != 0x06 or chat_kids[1][0] != 0x53:
        raise CVCError("CVC CHAT is not an OID and its rights (53)")
    if not chat_kids[1][1]:
        raise CVCError("CVC CHAT without rights")
    effective, expiry = _date(v[5]), _date(v[6])
    if expiry < effective:
        raise CVCError("CVC expires before it takes effect")
    return CVC(
        car=_text(v[1], "CAR"),
        chr=_text(v[3], "CHR"),
        key=_public_key(v[2]),
        chat=CHAT(_oid(chat_kids[0][1]), chat_kids[1][1]),
        effective=effective,
        expiry=expiry,
        signature=signature,
        body=body,
        profile=v[0][0],
        extensions=tlv.encode(0x65, ext[0][1]) if ext else b"",
    )


def build_body(
    car: str,
    chr_: str,
    key: CVPublicKey,
    role: int,
    rights: int,
    effective: dt.date,
    expiry: dt.date,
    chat_oid: str = ID_IS,
) -> bytes:
    """The encoded ``7F4E`` body; sign it and pass both to ``assemble``."""
    chat = tlv.encode(0x06, _oid_bytes(chat_oid)) + tlv.encode(0x53, bytes([role << 6 | rights]))
    return tlv.encode(
        0x7F4E,
        tlv.encode(0x5F29, b"\x00")
        + tlv.encode(0x42, car.encode())
        + key.encode()
        + tlv.encode(0x5F20, chr_.encode())
        + tlv.encode(0x7F4C, chat)
        + tlv.encode(0x5F25, encode_date(effective))
        + tlv.encode(0x5F24, encode_date(expiry)),
    )


def assemble(body: bytes, signature: bytes) -> CVC:
    return parse(tlv.encode(0x7F21, body + tlv.encode(0x5F37, signature)))


# --- keys and signatures ---------------------------------------------------------------


def curve_of(key: CVPublicKey) -> tuple[pace.Curve, ec.EllipticCurve]:
    """The named curve whose parameters a CVCA key spells out (we know the 256-bit ones
    the virtual chip and most issuers use; others are ``UnsupportedKey``)."""
    f = key.fields
    try:
        p, a, b, n = (int.from_bytes(f[t], "big") for t in (0x81, 0x82, 0x83, 0x85))
        g = f[0x84]
    except KeyError:
        raise CVCError("ECDSA CVCA key without its domain parameters") from None
    for c in pace.CURVES.values():
        if (c.p, c.a, c.b, c.n) == (p, a, b, n) and g == pace.encode_point(c, (c.gx, c.gy)):
            return c, _EC_CURVES[c.name]
    raise UnsupportedKey(f"CVC curve of {p.bit_length()} bits is not one we know")


def ec_domain(c: pace.Curve) -> dict[int, bytes]:
    """The ``81``..``85``, ``87`` fields of a CVCA key on ``c``."""
    size = c.size
    return {
        0x81: c.p.to_bytes(size, "big"),
        0x82: c.a.to_bytes(size, "big"),
        0x83: c.b.to_bytes(size, "big"),
        0x84: pace.encode_point(c, (c.gx, c.gy)),
        0x85: c.n.to_bytes(size, "big"),
        0x87: b"\x01",
    }


def to_crypto(
    key: CVPublicKey, domain: CVPublicKey | None = None
) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """``key`` as a ``cryptography`` key; an ECDSA DV or IS key takes its curve from
    ``domain`` (the CVCA key it chains to)."""
    if not key.is_ecdsa:
        n = int.from_bytes(key.fields[0x81], "big")
        e = int.from_bytes(key.fields[0x82], "big")
        if n < 3 or e < 3 or not e & 1:
            raise CVCError("RSA CVC key with a bad modulus or exponent")
        try:
            return rsa.RSAPublicNumbers(e, n).public_key()
        except ValueError as exc:
            raise CVCError(f"RSA CVC key: {exc}") from None
    src = key if key.has_domain else domain
    if src is None or not src.has_domain:
        raise CVCError("ECDSA CVC key without domain parameters to inherit")
    c, curve = curve_of(src)
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, key.fields[0x86])
    except ValueError:
        raise CVCError("ECDSA CVC public point is not on its curve") from None


def verify_signature(
    key: CVPublicKey, data: bytes, signature: bytes, domain: CVPublicKey | None = None
) -> bool:
    """Does ``signature`` (plain r||s for ECDSA) over ``data`` verify under ``key``?"""
    pub = to_crypto(key, domain)
    arc = key.oid.rsplit(".", 1)[1]
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            if arc not in _ECDSA:
                raise UnsupportedKey(f"ECDSA TA algorithm {key.oid}")
            size = (pub.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                return False
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            pub.verify(encode_dss_signature(r, s), data, ec.ECDSA(_HASH[_ECDSA[arc]]()))
        else:
            if arc not in _RSA:
                raise UnsupportedKey(f"RSA TA algorithm {key.oid}")
            name, pad = _RSA[arc]
            h = _HASH[name]()
            scheme: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if pad == "pkcs1"
                else padding.PSS(padding.MGF1(_HASH[name]()), h.digest_size)
            )
            pub.verify(signature, data, scheme, h)
    except InvalidSignature:
        return False
    return True


def verify(cert: CVC, issuer: CVPublicKey, domain: CVPublicKey | None = None) -> bool:
    """Does ``cert``'s signature verify under its issuer's key (``domain``: the CVCA key
    whose curve an ECDSA issuer inherits)?"""
    if cert.key.is_ecdsa != issuer.is_ecdsa:
        return False
    return verify_signature(issuer, cert.body, cert.signature, domain)


def sign(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, oid: str, data: bytes) -> bytes:
    """A TA signature with ``oid``'s algorithm (plain r||s for ECDSA): what a CV issuer
    signs a body with, and what the terminal signs the chip's challenge with."""
    arc = oid.rsplit(".", 1)[1]
    if isinstance(private, ec.EllipticCurvePrivateKey):
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        if not oid.startswith(ID_TA_ECDSA + ".") or arc not in _ECDSA:
            raise UnsupportedKey(f"{oid} is not an ECDSA TA algorithm")
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(_HASH[_ECDSA[arc]]())))
        size = (private.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if not oid.startswith(ID_TA_RSA + ".") or arc not in _RSA:
        raise UnsupportedKey(f"{oid} is not an RSA TA algorithm")
    name, pad = _RSA[arc]
    h = _HASH[name]()
    scheme: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if pad == "pkcs1"
        else padding.PSS(padding.MGF1(_HASH[name]()), h.digest_size)
    )
    return private.sign(data, scheme, h)


def public_key_of(
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, oid: str, with_domain: bool
) -> CVPublicKey:
    """The ``7F49`` of ``private``'s public half (with the curve for a CVCA key)."""
    if isinstance(private, ec.EllipticCurvePrivateKey):
        from cryptography.hazmat.primitives import serialization

        point = private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        fields = {0x86: point}
        if with_domain:
            c = next(c for c in pace.CURVES.values() if c.name == private.curve.name)
            fields |= ec_domain(c)
        return CVPublicKey(oid, fields)
    nums = private.public_key().public_numbers()
    n = nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")
    e = nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")
    return CVPublicKey(oid, {0x81: n, 0x82: e})
