"""Basic Access Control (ICAO 9303-11 4.3): GET CHALLENGE, MUTUAL AUTHENTICATE, session keys.

The derivations are separate functions so the worked example of 9303-11 Appendix D can
check every intermediate value; ``perform`` runs them against a card.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable

from drivers.icao import keys
from drivers.icao.apdu import APDU, Channel
from drivers.icao.errors import AccessError, StatusError
from drivers.icao.sm import SecureMessaging


def document_keys(mrz_info: str) -> tuple[bytes, bytes]:
    """``(K_enc, K_mac)`` from the MRZ information (9303-11 9.7.2)."""
    seed = keys.bac_seed(mrz_info)
    return keys.kdf(seed, keys.KDF_ENC), keys.kdf(seed, keys.KDF_MAC)


def mutual_auth_data(
    k_enc: bytes, k_mac: bytes, rnd_ifd: bytes, rnd_icc: bytes, k_ifd: bytes
) -> bytes:
    """E_IFD || M_IFD, the data field of MUTUAL AUTHENTICATE."""
    e_ifd = keys.des3_encrypt(k_enc, rnd_ifd + rnd_icc + k_ifd)
    return e_ifd + keys.retail_mac(k_mac, e_ifd)


def session_keys(k_ifd: bytes, k_icc: bytes) -> tuple[bytes, bytes]:
    seed = bytes(a ^ b for a, b in zip(k_ifd, k_icc, strict=True))
    return keys.kdf(seed, keys.KDF_ENC), keys.kdf(seed, keys.KDF_MAC)


def initial_ssc(rnd_icc: bytes, rnd_ifd: bytes) -> int:
    return int.from_bytes(rnd_icc[-4:] + rnd_ifd[-4:], "big")


def open_response(
    k_enc: bytes, k_mac: bytes, resp: bytes, rnd_ifd: bytes, rnd_icc: bytes, k_ifd: bytes
) -> SecureMessaging:
    """Check the card's E_ICC || M_ICC and build the 3DES session."""
    if len(resp) != 40:
        raise AccessError(f"MUTUAL AUTHENTICATE answered {len(resp)} bytes, not 40")
    e_icc, m_icc = resp[:32], resp[32:]
    if not hmac.compare_digest(keys.retail_mac(k_mac, e_icc), m_icc):
        raise AccessError("MUTUAL AUTHENTICATE response MAC does not verify")
    r = keys.des3_decrypt(k_enc, e_icc)
    if r[:8] != rnd_icc or r[8:16] != rnd_ifd:
        raise AccessError("MUTUAL AUTHENTICATE nonces do not match")
    ks_enc, ks_mac = session_keys(k_ifd, r[16:32])
    return SecureMessaging(ks_enc, ks_mac, initial_ssc(rnd_icc, rnd_ifd), "3DES")


def perform(
    channel: Channel, mrz_info: str, rng: Callable[[int], bytes] = os.urandom
) -> SecureMessaging:
    """Run BAC on the selected eMRTD application; installs nothing, returns the session."""
    k_enc, k_mac = document_keys(mrz_info)
    rnd_icc = channel.check(APDU(0x00, 0x84, 0x00, 0x00, ne=8), "GET CHALLENGE", plain=True)
    if len(rnd_icc) != 8:
        raise AccessError("GET CHALLENGE did not return 8 bytes")
    rnd_ifd, k_ifd = rng(8), rng(16)
    cmd = APDU(0x00, 0x82, 0x00, 0x00, mutual_auth_data(k_enc, k_mac, rnd_ifd, rnd_icc, k_ifd), 40)
    data, sw = channel.send(cmd, plain=True)
    if sw != 0x9000:
        if sw in (0x6300, 0x6982, 0x6A80, 0x6A88):
            raise AccessError(f"MUTUAL AUTHENTICATE refused: {sw:04X}")
        raise StatusError(sw, "MUTUAL AUTHENTICATE")
    return open_response(k_enc, k_mac, data, rnd_ifd, rnd_icc, k_ifd)
