"""Active authentication (ICAO 9303-11 6.1): the chip signs our challenge with its DG15 key.

RSA signatures use ISO/IEC 9796-2 digital signature scheme 1 (message recovery), which
no Python library implements, so the recovery (``6A || M1 || H || trailer``) is written
out here over ``pow``; ECDSA answers are plain ``r || s`` and go to ``cryptography``.
Both ends are here: ``verify_*`` for the reader, ``sign_*`` for the virtual chip.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from drivers.icao.apdu import APDU, Channel
from drivers.icao.errors import StatusError, UnsupportedKey

# ISO/IEC 10118-3 hash identifiers in the two-byte trailer ``xx CC``
_TRAILER_HASH = {0x33: "sha1", 0x34: "sha256", 0x35: "sha512", 0x36: "sha384", 0x38: "sha224"}
_HASH_TRAILER = {v: k for k, v in _TRAILER_HASH.items()}
ECDSA_OIDS = {
    "1.2.840.10045.4.1": "sha1",
    "1.2.840.10045.4.3.1": "sha224",
    "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
}
_CRYPTO_HASH: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def verify_rsa_9796_2(key: rsa.RSAPublicKey, challenge: bytes, signature: bytes) -> bool:
    nums = key.public_numbers()
    k = (key.key_size + 7) // 8
    s = int.from_bytes(signature, "big")
    if not 0 < s < nums.n:
        return False
    m = pow(s, nums.e, nums.n)
    if m & 0xF != 0xC:  # ISO 9796-2 allows the signer to send n - s
        m = nums.n - m
    f = m.to_bytes(k, "big")
    if f[0] & 0xC0 != 0x40 or f[-1] & 0x0F != 0x0C:
        return False
    if f[-1] == 0xBC:
        hash_name, t = "sha1", 1
    elif f[-1] == 0xCC and f[-2] in _TRAILER_HASH:
        hash_name, t = _TRAILER_HASH[f[-2]], 2
    else:
        return False
    hlen = hashlib.new(hash_name).digest_size
    if len(f) < 1 + hlen + t:
        return False
    d = f[-(hlen + t) : -t]
    m1 = f[1 : -(hlen + t)]
    partial = bool(f[0] & 0x20)
    msg = m1 + challenge if partial else m1
    if not partial and m1 != challenge:
        return False
    return hmac.compare_digest(hashlib.new(hash_name, msg).digest(), d)


def verify_ecdsa_plain(
    key: ec.EllipticCurvePublicKey, challenge: bytes, signature: bytes, hash_name: str
) -> bool:
    if len(signature) % 2 or not signature:
        return False
    half = len(signature) // 2
    r, s = int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
    try:
        key.verify(encode_dss_signature(r, s), challenge, ec.ECDSA(_CRYPTO_HASH[hash_name]()))
    except (InvalidSignature, ValueError):
        return False
    return True


AAKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def load_key(spki_der: bytes) -> AAKey | None:
    """DG15's key, if AA can use it. ``None`` for bytes that are not a key at all (the
    check then fails: a clone's DG15 may be anything); ``UnsupportedKey`` for a real key
    of a type or curve we cannot verify with (RSA and ECDSA are AA's two), which is not
    a clone verdict."""
    try:
        key = serialization.load_der_public_key(spki_der)
    except UnsupportedAlgorithm as exc:  # unknown key OID, a curve OpenSSL lacks
        raise UnsupportedKey(f"DG15 key not supported: {exc}") from None
    except (ValueError, TypeError):
        return None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise UnsupportedKey(f"DG15 key type {type(key).__name__} is not RSA or ECDSA")
    return key


def verify(spki_der: bytes, challenge: bytes, signature: bytes, ecdsa_oid: str | None) -> bool:
    """Does ``signature`` prove the chip holds the private half of DG15's key?
    Raises ``UnsupportedKey`` when the key is one AA cannot verify with."""
    key = load_key(spki_der)
    if key is None:
        return False
    return _verify_with(key, challenge, signature, ecdsa_oid)


def _verify_with(key: AAKey, challenge: bytes, signature: bytes, ecdsa_oid: str | None) -> bool:
    if isinstance(key, rsa.RSAPublicKey):
        return verify_rsa_9796_2(key, challenge, signature)
    hash_name = ECDSA_OIDS.get(ecdsa_oid or "", "sha256" if key.key_size <= 256 else "sha384")
    return verify_ecdsa_plain(key, challenge, signature, hash_name)


def perform(
    channel: Channel,
    spki_der: bytes,
    ecdsa_oid: str | None = None,
    rng: Callable[[int], bytes] = os.urandom,
) -> bool:
    """INTERNAL AUTHENTICATE with a fresh 8-byte challenge; True if the signature verifies.
    The key is checked first: an ``UnsupportedKey`` costs no APDU."""
    key = load_key(spki_der)
    challenge = rng(8)
    ne = 256 if not channel.extended else 65536
    data, sw = channel.send(APDU(0x00, 0x88, 0x00, 0x00, challenge, ne))
    if sw != 0x9000:
        raise StatusError(sw, "INTERNAL AUTHENTICATE")
    return key is not None and _verify_with(key, challenge, data, ecdsa_oid)


# --- chip side ----------------------------------------------------------------------------


def sign_rsa_9796_2(key: rsa.RSAPrivateKey, challenge: bytes, hash_name: str = "sha1") -> bytes:
    """ISO 9796-2 scheme 1, partial recovery: the chip's answer to INTERNAL AUTHENTICATE."""
    k = (key.key_size + 7) // 8
    hlen = hashlib.new(hash_name).digest_size
    trailer = b"\xbc" if hash_name == "sha1" else bytes([_HASH_TRAILER[hash_name], 0xCC])
    m1 = os.urandom(k - hlen - len(trailer) - 1)
    d = hashlib.new(hash_name, m1 + challenge).digest()
    f = b"\x6a" + m1 + d + trailer
    nums = key.private_numbers()
    return pow(int.from_bytes(f, "big"), nums.d, nums.public_numbers.n).to_bytes(k, "big")


def sign_ecdsa_plain(key: ec.EllipticCurvePrivateKey, challenge: bytes, hash_name: str) -> bytes:
    r, s = decode_dss_signature(key.sign(challenge, ec.ECDSA(_CRYPTO_HASH[hash_name]())))
    n = (key.curve.key_size + 7) // 8
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")
