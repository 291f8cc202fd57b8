"""Chip authentication (ICAO 9303-11 6.2) with ECDH or DH (mod p): the chip proves it holds
the private key of DG14 by deriving fresh secure-messaging keys from it.

Our ephemeral key and the chip's static DG14 key give K; both sides restart secure
messaging with keys from K (SSC 0). A chip without the private key cannot MAC the next
response: that failure is the clone verdict. DG14 keys usually carry explicit curve
parameters (``cryptography`` refuses those), so the curve is rebuilt from them and the
arithmetic of ``pace.py`` does the key agreement. DH keys (id-PK-DH) come as X9.42
``dhpublicnumber`` (p, g, q) or PKCS #3 ``dhKeyAgreement`` (p, g: q taken from the RFC
5114 group when p and g are one), checked before use (``_dh_key``); ``dh.py`` agrees.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import core
from asn1crypto import keys as akeys

from drivers.icao import dh, keys, lds, pace, tlv
from drivers.icao.apdu import APDU, Channel
from drivers.icao.errors import AccessError, LDSError, SMError, StatusError, UnsupportedKey
from drivers.icao.sm import SecureMessaging

ID_CA_DH = "0.4.0.127.0.7.2.2.3.1."
ID_CA_ECDH = "0.4.0.127.0.7.2.2.3.2."
ID_PK_DH = "0.4.0.127.0.7.2.2.1.1"
ID_PK_ECDH = "0.4.0.127.0.7.2.2.1.2"
DHPUBLICNUMBER = "1.2.840.10046.2.1"  # X9.42: p, g, q
DHKEYAGREEMENT = "1.2.840.113549.1.3.1"  # PKCS #3: p, g
_CIPHER = {"1": ("3DES", 128), "2": ("AES", 128), "3": ("AES", 192), "4": ("AES", 256)}
_NAMED = {"secp256r1": 12, "brainpoolp256r1": 13}


@dataclass(frozen=True)
class CAKey:
    oid: str  # id-CA-ECDH-* or id-CA-DH-*
    key_id: int | None
    curve: pace.Curve | dh.Group  # the key's domain parameters
    public: pace.Point | int

    @property
    def cipher(self) -> tuple[str, int]:
        return _CIPHER[self.oid.rsplit(".", 1)[1]]

    @property
    def kind(self) -> str:
        return "DH" if isinstance(self.curve, dh.Group) else "ECDH"

    def group(self) -> pace.GMGroup:
        if isinstance(self.curve, dh.Group):
            return pace.DHGM(self.curve)
        return pace.ECGM(self.curve)

    def ephemeral(self) -> tuple[int, object]:
        """Our key pair on the key's domain parameters."""
        grp = self.group()
        return grp.keypair(grp.generator())


def _curve(params: akeys.ECDomainParameters) -> pace.Curve:
    if params.name == "named":
        name = params.chosen.native
        if name not in _NAMED:
            raise UnsupportedKey(f"CA curve {name} not supported")
        return pace.CURVES[_NAMED[name]]
    if params.name != "specified":
        raise UnsupportedKey("CA key without domain parameters (implicitCA)")
    spec = params.chosen
    if spec["field_id"]["field_type"].native != "prime_field":
        raise UnsupportedKey("CA curve is not over a prime field")
    p = spec["field_id"]["parameters"].native
    a = int.from_bytes(spec["curve"]["a"].native, "big")
    b = int.from_bytes(spec["curve"]["b"].native, "big")
    base = spec["base"].native
    size = (p.bit_length() + 7) // 8
    if len(base) != 1 + 2 * size or base[0] != 4:
        raise LDSError("CA curve base point is not uncompressed")
    gx, gy = int.from_bytes(base[1 : 1 + size], "big"), int.from_bytes(base[1 + size :], "big")
    c = pace.Curve("explicit", p, a, b, gx, gy, spec["order"].native)
    if not pace.on_curve(c, (gx, gy)):
        raise LDSError("CA curve base point is not on the curve")
    return c


class _Algorithm(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class _SPKI(core.Sequence):
    _fields = [("algorithm", _Algorithm), ("public_key", core.OctetBitString)]


class _DHParameters(core.Sequence):
    """X9.42 DomainParameters (p, g, q, j, validationParms) or PKCS #3 DHParameter (p, g,
    privateValueLength): the third INTEGER is q only under dhpublicnumber."""

    _fields = [
        ("p", core.Integer),
        ("g", core.Integer),
        ("third", core.Integer, {"optional": True}),
        ("j", core.Integer, {"optional": True}),
        ("validation", core.Any, {"optional": True}),
    ]


def _dh_key(der: bytes) -> tuple[dh.Group, int]:
    """A DH SubjectPublicKeyInfo's group and public value, checked: p odd and of a size we
    use, 1 < g < p-1, q (when given) dividing p-1 with g^q = 1, y valid in the group."""
    try:
        spki = _SPKI.load(der)
        algo = spki["algorithm"]["algorithm"].dotted
        if algo not in (DHPUBLICNUMBER, DHKEYAGREEMENT):
            raise UnsupportedKey(f"CA DH key of algorithm {algo}")
        params = _DHParameters.load(spki["algorithm"]["parameters"].dump())
        p, g = params["p"].native, params["g"].native
        q = params["third"].native if algo == DHPUBLICNUMBER else None
        y = core.Integer.load(spki["public_key"].native).native
    except (UnsupportedKey, LDSError):
        raise
    except Exception as exc:  # asn1crypto: ValueError, TypeError, ... on bad DER
        raise LDSError(f"CA DH key does not parse: {exc}") from None
    if not isinstance(p, int) or not isinstance(g, int) or p < 3 or p % 2 == 0:
        raise LDSError("CA DH key: p is not an odd prime candidate")
    if not dh.MIN_BITS <= p.bit_length() <= dh.MAX_BITS:
        raise UnsupportedKey(f"CA DH key of {p.bit_length()} bits")
    if not 1 < g < p - 1:
        raise LDSError("CA DH key: g out of range")
    if q is None and (grp := dh.known(p, g)) is not None:
        q = grp.q
    if q is not None and not (1 < q < p and (p - 1) % q == 0 and pow(g, q, p) == 1):
        raise LDSError("CA DH key: q is not the order of g")
    grp = dh.known(p, g) or dh.Group("DG14", p, g, q)
    if not isinstance(y, int) or not dh.public_ok(grp, y):
        raise LDSError("CA DH key: public value out of range or not in the subgroup")
    return grp, y


def find_key(dg14: tuple[lds.SecurityInfo, ...]) -> CAKey | None:
    """The chip authentication key and protocol DG14 offers, if any we can run: ECDH
    first, then DH (a DG14 with both is rare; ECDH is what more chips are tested with)."""
    for ca_prefix, pk_oid in ((ID_CA_ECDH, ID_PK_ECDH), (ID_CA_DH, ID_PK_DH)):
        key = _find(dg14, ca_prefix, pk_oid)
        if key is not None:
            return key
    return None


def _find(dg14: tuple[lds.SecurityInfo, ...], ca_prefix: str, pk_oid: str) -> CAKey | None:
    protocol, proto_key_id = None, None
    for info in dg14:
        if info.protocol.startswith(ca_prefix) and info.protocol.rsplit(".", 1)[1] in _CIPHER:
            protocol = info.protocol
            if info.optional:
                try:
                    proto_key_id = core.Integer.load(info.optional).native
                except Exception:
                    raise LDSError("ChipAuthenticationInfo keyId is not an INTEGER") from None
    if protocol is None:
        return None
    for info in dg14:
        if info.protocol != pk_oid:
            continue
        params: pace.Curve | dh.Group
        public: pace.Point | int
        try:
            if pk_oid == ID_PK_DH:
                params, public = _dh_key(info.required)
            else:
                spki = akeys.PublicKeyInfo.load(info.required)
                params = _curve(spki["algorithm"]["parameters"])
                public = pace.decode_point(params, spki["public_key"].native)
            key_id = core.Integer.load(info.optional).native if info.optional else None
            if key_id is not None and key_id < 0:
                raise LDSError(f"CA keyId {key_id} is negative")
        except (LDSError, UnsupportedKey):
            raise
        except Exception as exc:
            raise LDSError(f"ChipAuthenticationPublicKeyInfo: {exc}") from None
        if proto_key_id is None or key_id in (None, proto_key_id):
            return CAKey(protocol, key_id, params, public)
    return None


def session_keys(key: CAKey, shared_x: bytes) -> SecureMessaging:
    cipher, bits = key.cipher
    enc = keys.kdf(shared_x, keys.KDF_ENC, cipher, bits)
    mac = keys.kdf(shared_x, keys.KDF_MAC, cipher, bits)
    return SecureMessaging(enc, mac, 0, cipher)


def perform(channel: Channel, key: CAKey, ephemeral: tuple[int, object] | None = None) -> bool:
    """Run CA under the current session, switch to the new one and prove it with one
    protected SELECT. False (a clone) if the chip cannot MAC with the new keys.
    ``ephemeral``: our key pair, when terminal authentication will need its public half."""
    grp = key.group()
    sk, pk = ephemeral or key.ephemeral()
    kid = b""
    if key.key_id is not None:  # an INTEGER of any size: big-endian, as few bytes as fit
        kid = tlv.encode(
            0x84, key.key_id.to_bytes(max(1, (key.key_id.bit_length() + 7) // 8), "big")
        )
    public = grp.encode(pk)
    if key.cipher[0] == "3DES":  # MSE:Set KAT carries the key itself
        cmds = [APDU(0x00, 0x22, 0x41, 0xA6, tlv.encode(0x91, public) + kid)]
    else:
        oid = tlv.encode(0x80, pace.oid_bytes(key.oid))
        cmds = [
            APDU(0x00, 0x22, 0x41, 0xA4, oid + kid),
            APDU(0x00, 0x86, 0x00, 0x00, tlv.encode(0x7C, tlv.encode(0x80, public)), 256),
        ]
    for cmd in cmds:
        _, sw = channel.send(cmd)
        if sw != 0x9000:
            raise StatusError(sw, "chip authentication")
    try:
        shared = grp.secret(grp.agree(sk, key.public))
    except AccessError:  # a key that forces a degenerate secret: no proof possible
        return False
    channel.sm = session_keys(key, shared)
    try:
        _, sw = channel.send(APDU(0x00, 0xA4, 0x02, 0x0C, lds.FID_COM.to_bytes(2, "big")))
    except SMError:
        return False
    return sw == 0x9000
