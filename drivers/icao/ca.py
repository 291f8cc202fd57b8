"""Chip authentication (ICAO 9303-11 6.2) with ECDH: the chip proves it holds the private
key of DG14 by deriving fresh secure-messaging keys from it.

Our ephemeral key and the chip's static DG14 key give K; both sides restart secure
messaging with keys from K (SSC 0). A chip without the private key cannot MAC the next
response: that failure is the clone verdict. DG14 keys usually carry explicit curve
parameters (``cryptography`` refuses those), so the curve is rebuilt from them and the
arithmetic of ``pace.py`` does the key agreement.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import core
from asn1crypto import keys as akeys

from drivers.icao import keys, lds, pace, tlv
from drivers.icao.apdu import APDU, Channel
from drivers.icao.errors import LDSError, SMError, StatusError, UnsupportedKey
from drivers.icao.sm import SecureMessaging

ID_CA_ECDH = "0.4.0.127.0.7.2.2.3.2."
ID_PK_ECDH = "0.4.0.127.0.7.2.2.1.2"
_CIPHER = {"1": ("3DES", 128), "2": ("AES", 128), "3": ("AES", 192), "4": ("AES", 256)}
_NAMED = {"secp256r1": 12, "brainpoolp256r1": 13}


@dataclass(frozen=True)
class CAKey:
    oid: str  # id-CA-ECDH-*
    key_id: int | None
    curve: pace.Curve
    public: pace.Point

    @property
    def cipher(self) -> tuple[str, int]:
        return _CIPHER[self.oid.rsplit(".", 1)[1]]


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


def find_key(dg14: tuple[lds.SecurityInfo, ...]) -> CAKey | None:
    """The ECDH chip authentication key and protocol DG14 offers, if any we can run."""
    protocol, proto_key_id = None, None
    for info in dg14:
        if info.protocol.startswith(ID_CA_ECDH) and info.protocol.rsplit(".", 1)[1] in _CIPHER:
            protocol = info.protocol
            if info.optional:
                try:
                    proto_key_id = core.Integer.load(info.optional).native
                except Exception:
                    raise LDSError("ChipAuthenticationInfo keyId is not an INTEGER") from None
    if protocol is None:
        return None
    for info in dg14:
        if info.protocol != ID_PK_ECDH:
            continue
        try:
            spki = akeys.PublicKeyInfo.load(info.required)
            c = _curve(spki["algorithm"]["parameters"])
            point = pace.decode_point(c, spki["public_key"].native)
            key_id = core.Integer.load(info.optional).native if info.optional else None
            if key_id is not None and key_id < 0:
                raise LDSError(f"CA keyId {key_id} is negative")
        except (LDSError, UnsupportedKey):
            raise
        except Exception as exc:
            raise LDSError(f"ChipAuthenticationPublicKeyInfo: {exc}") from None
        if proto_key_id is None or key_id in (None, proto_key_id):
            return CAKey(protocol, key_id, c, point)
    return None


def session_keys(key: CAKey, shared_x: bytes) -> SecureMessaging:
    cipher, bits = key.cipher
    enc = keys.kdf(shared_x, keys.KDF_ENC, cipher, bits)
    mac = keys.kdf(shared_x, keys.KDF_MAC, cipher, bits)
    return SecureMessaging(enc, mac, 0, cipher)


def perform(channel: Channel, key: CAKey, ephemeral: tuple[int, pace.Point] | None = None) -> bool:
    """Run CA under the current session, switch to the new one and prove it with one
    protected SELECT. False (a clone) if the chip cannot MAC with the new keys.
    ``ephemeral``: our key pair, when terminal authentication will need its public half."""
    c = key.curve
    sk, pk = ephemeral or pace.keypair(c, (c.gx, c.gy))
    kid = b""
    if key.key_id is not None:  # an INTEGER of any size: big-endian, as few bytes as fit
        kid = tlv.encode(
            0x84, key.key_id.to_bytes(max(1, (key.key_id.bit_length() + 7) // 8), "big")
        )
    point = pace.encode_point(c, pk)
    if key.cipher[0] == "3DES":  # MSE:Set KAT carries the key itself
        cmds = [APDU(0x00, 0x22, 0x41, 0xA6, tlv.encode(0x91, point) + kid)]
    else:
        oid = tlv.encode(0x80, pace.oid_bytes(key.oid))
        cmds = [
            APDU(0x00, 0x22, 0x41, 0xA4, oid + kid),
            APDU(0x00, 0x86, 0x00, 0x00, tlv.encode(0x7C, tlv.encode(0x80, point)), 256),
        ]
    for cmd in cmds:
        _, sw = channel.send(cmd)
        if sw != 0x9000:
            raise StatusError(sw, "chip authentication")
    shared = pace.mul(c, sk, key.public)
    if shared is None:
        return False
    channel.sm = session_keys(key, shared[0].to_bytes(c.size, "big"))
    try:
        _, sw = channel.send(APDU(0x00, 0xA4, 0x02, 0x0C, lds.FID_COM.to_bytes(2, "big")))
    except SMError:
        return False
    return sw == 0x9000
