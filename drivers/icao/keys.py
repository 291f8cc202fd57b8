"""Key derivation and the block-cipher primitives of ICAO 9303-11 (sections 9.7, 9.8).

3DES (two-key, with DES parity) and retail MAC (ISO/IEC 9797-1 MAC algorithm 3,
padding method 2) for BAC; AES and AES-CMAC for PACE. The ciphers are ``cryptography``'s;
only the 9303 glue (KDF counter, parity bits, padding, retail MAC's final step) is here.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import AES

try:  # cryptography >= 43 moved 3DES to "decrepit"; it is what BAC uses.
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES  # type: ignore

KDF_ENC, KDF_MAC, KDF_PI = 1, 2, 3

_WEIGHTS = (7, 3, 1)


def check_digit(field: str) -> str:
    """ICAO 9303-3 check digit (0-9, A-Z, '<' = 0)."""
    total = 0
    for i, ch in enumerate(field):
        if ch.isdigit():
            v = int(ch)
        elif "A" <= ch <= "Z":
            v = ord(ch) - 55
        else:
            v = 0
        total += v * _WEIGHTS[i % 3]
    return str(total % 10)


def mrz_information(document_number: str, birth: str, expiry: str) -> str:
    """The BAC/PACE password: number (padded to 9 with '<') + birth + expiry, each with its
    check digit. Numbers longer than 9 keep all their characters (9303-11 9.7.1.1)."""
    number = document_number.ljust(9, "<")
    return number + check_digit(number) + birth + check_digit(birth) + expiry + check_digit(expiry)


def adjust_parity(key: bytes) -> bytes:
    """Set each byte's low bit so the byte has odd parity (DES keys)."""
    out = bytearray()
    for b in key:
        b &= 0xFE
        out.append(b | (bin(b).count("1") % 2 == 0))
    return bytes(out)


def kdf(secret: bytes, counter: int, cipher: str = "3DES", key_bits: int = 128) -> bytes:
    """9303-11 9.7.1: keys from a shared secret and a 32-bit counter."""
    data = secret + counter.to_bytes(4, "big")
    if cipher == "3DES":
        return adjust_parity(hashlib.sha1(data).digest()[:16])
    if key_bits == 128:
        return hashlib.sha1(data).digest()[:16]
    digest = hashlib.sha256(data).digest()
    return digest[: key_bits // 8]


def bac_seed(mrz_info: str) -> bytes:
    return hashlib.sha1(mrz_info.encode("ascii")).digest()[:16]


def pad(data: bytes, block: int = 8) -> bytes:
    """ISO/IEC 9797-1 padding method 2: 0x80 then zeros to a block boundary."""
    data = data + b"\x80"
    return data + b"\x00" * (-len(data) % block)


def unpad(data: bytes) -> bytes:
    i = data.rstrip(b"\x00")
    if not i or i[-1] != 0x80:
        raise ValueError("bad padding")
    return i[:-1]


def _tdes(key: bytes) -> TripleDES:
    return TripleDES(key if len(key) != 16 else key + key[:8])


def des3_encrypt(key: bytes, data: bytes, iv: bytes = b"\x00" * 8) -> bytes:
    enc = Cipher(_tdes(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def des3_decrypt(key: bytes, data: bytes, iv: bytes = b"\x00" * 8) -> bytes:
    dec = Cipher(_tdes(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def retail_mac(key: bytes, data: bytes, padded: bool = False) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 (DES CBC with K1, final block 3DES K1-K2-K1)."""
    msg = data if padded else pad(data)
    k1, k2 = key[:8], key[8:16]
    cbc = Cipher(TripleDES(k1 * 3), modes.CBC(b"\x00" * 8)).encryptor()
    last = (cbc.update(msg) + cbc.finalize())[-8:]
    d = Cipher(TripleDES(k2 * 3), modes.ECB()).decryptor()
    last = d.update(last) + d.finalize()
    e = Cipher(TripleDES(k1 * 3), modes.ECB()).encryptor()
    return e.update(last) + e.finalize()


def aes_encrypt(key: bytes, data: bytes, iv: bytes = b"\x00" * 16) -> bytes:
    enc = Cipher(AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_decrypt(key: bytes, data: bytes, iv: bytes = b"\x00" * 16) -> bytes:
    dec = Cipher(AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def aes_ecb(key: bytes, block: bytes) -> bytes:
    enc = Cipher(AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC truncated to 8 bytes, as PACE and AES secure messaging use it."""
    c = cmac.CMAC(AES(key))
    c.update(data)
    return c.finalize()[:8]
