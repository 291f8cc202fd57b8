"""Diffie-Hellman over a prime field (mod p), as PACE DH-GM and DH chip authentication use
it (ICAO 9303-11 4.4 and 6.2, BSI TR-03110): the RFC 5114 MODP groups PACE names by
parameterId, public values, the generic mapping ``g' = g^s * h mod p``, the shared secret.

The arithmetic is Python's ``pow`` on integers, on purpose: generic mapping needs
``g^s * h`` with a generator that changes every session, and ``cryptography`` takes a
generator only inside a ``DHParameterNumbers`` object whose loading checks the group
(about 150 ms for a 2048-bit p with a new generator, measured here, against 5 ms for one
``pow``); its key agreement is ``y^x mod p`` and nothing more, and its finite-field DH is
deprecated (51.0 warns it will be removed). The tests check ``pow`` against it.

Every value the chip sends goes through ``public_ok``: ``1 < y < p-1`` and, when the
subgroup order q is known, ``y^q = 1 mod p`` (no small-subgroup element).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from drivers.icao.errors import AccessError


@dataclass(frozen=True)
class Group:
    name: str
    p: int
    g: int
    q: int | None  # order of g's subgroup; None when the key's parameters do not say

    @property
    def size(self) -> int:
        """Length of p in bytes: the length of the shared secret."""
        return (self.p.bit_length() + 7) // 8


def _h(text: str) -> int:
    return int(text.replace(" ", "").replace("\n", ""), 16)


# RFC 5114 section 2 (values as OpenSSL's dh_rfc5114 groups carry them); 9303-11 table
# "standardized domain parameters": parameterId 0, 1, 2
MODP = {
    0: Group(
        "1024-bit MODP, 160-bit subgroup",
        _h(
            "B10B8F96A080E01DDE92DE5EAE5D54EC52C99FBCFB06A3C69A6A9DCA52D23B616073E28675A23D18"
            "9838EF1E2EE652C013ECB4AEA906112324975C3CD49B83BFACCBDD7D90C4BD7098488E9C219A7372"
            "4EFFD6FAE5644738FAA31A4FF55BCCC0A151AF5F0DC8B4BD45BF37DF365C1A65E68CFDA76D4DA708"
            "DF1FB2BC2E4A4371"
        ),
        _h(
            "A4D1CBD5C3FD34126765A442EFB99905F8104DD258AC507FD6406CFF14266D31266FEA1E5C41564B"
            "777E690F5504F213160217B4B01B886A5E91547F9E2749F4D7FBD7D3B9A92EE1909D0D2263F80A76"
            "A6A24C087A091F531DBF0A0169B6A28AD662A4D18E73AFA32D779D5918D08BC8858F4DCEF97C2A24"
            "855E6EEB22B3B2E5"
        ),
        _h("F518AA8781A8DF278ABA4E7D64B7CB9D49462353"),
    ),
    1: Group(
        "2048-bit MODP, 224-bit subgroup",
        _h(
            "AD107E1E9123A9D0D660FAA79559C51FA20D64E5683B9FD1B54B1597B61D0A75E6FA141DF95A56DB"
            "AF9A3C407BA1DF15EB3D688A309C180E1DE6B85A1274A0A66D3F8152AD6AC2129037C9EDEFDA4DF8"
            "D91E8FEF55B7394B7AD5B7D0B6C12207C9F98D11ED34DBF6C6BA0B2C8BBC27BE6A00E0A0B9C49708"
            "B3BF8A317091883681286130BC8985DB1602E714415D9330278273C7DE31EFDC7310F7121FD5A074"
            "15987D9ADC0A486DCDF93ACC44328387315D75E198C641A480CD86A1B9E587E8BE60E69CC928B2B9"
            "C52172E413042E9B23F10B0E16E79763C9B53DCF4BA80A29E3FB73C16B8E75B97EF363E2FFA31F71"
            "CF9DE5384E71B81C0AC4DFFE0C10E64F"
        ),
        _h(
            "AC4032EF4F2D9AE39DF30B5C8FFDAC506CDEBE7B89998CAF74866A08CFE4FFE3A6824A4E10B9A6F0"
            "DD921F01A70C4AFAAB739D7700C29F52C57DB17C620A8652BE5E9001A8D66AD7C17669101999024A"
            "F4D027275AC1348BB8A762D0521BC98AE247150422EA1ED409939D54DA7460CDB5F6C6B250717CBE"
            "F180EB34118E98D119529A45D6F834566E3025E316A330EFBB77A86F0C1AB15B051AE3D428C8F8AC"
            "B70A8137150B8EEB10E183EDD19963DDD9E263E4770589EF6AA21E7F5F2FF381B539CCE3409D13CD"
            "566AFBB48D6C019181E1BCFE94B30269EDFE72FE9B6AA4BD7B5A0F1C71CFFF4C19C418E1F6EC0179"
            "81BC087F2A7065B384B890D3191F2BFA"
        ),
        _h("801C0D34C58D93FE997177101F80535A4738CEBCBF389A99B36371EB"),
    ),
    2: Group(
        "2048-bit MODP, 256-bit subgroup",
        _h(
            "87A8E61DB4B6663CFFBBD19C651959998CEEF608660DD0F25D2CEED4435E3B00E00DF8F1D61957D4"
            "FAF7DF4561B2AA3016C3D91134096FAA3BF4296D830E9A7C209E0C6497517ABD5A8A9D306BCF67ED"
            "91F9E6725B4758C022E0B1EF4275BF7B6C5BFC11D45F9088B941F54EB1E59BB8BC39A0BF12307F5C"
            "4FDB70C581B23F76B63ACAE1CAA6B7902D52526735488A0EF13C6D9A51BFA4AB3AD8347796524D8E"
            "F6A167B5A41825D967E144E5140564251CCACB83E6B486F6B3CA3F7971506026C0B857F689962856"
            "DED4010ABD0BE621C3A3960A54E710C375F26375D7014103A4B54330C198AF126116D2276E11715F"
            "693877FAD7EF09CADB094AE91E1A1597"
        ),
        _h(
            "3FB32C9B73134D0B2E77506660EDBD484CA7B18F21EF205407F4793A1A0BA12510DBC15077BE463F"
            "FF4FED4AAC0BB555BE3A6C1B0C6B47B1BC3773BF7E8C6F62901228F8C28CBB18A55AE31341000A65"
            "0196F931C77A57F2DDF463E5E9EC144B777DE62AAAB8A8628AC376D282D6ED3864E67982428EBC83"
            "1D14348F6F2F9193B5045AF2767164E1DFC967C1FB3F2E55A4BD1BFFE83B9C80D052B985D182EA0A"
            "DB2A3B7313D3FE14C8484B1E052588B9B7D2BBD2DF016199ECD06E1557CD0915B3353BBB64E0EC37"
            "7FD028370DF92B52C7891428CDC67EB6184B523D1DB246C32F63078490F00EF8D647D148D4795451"
            "5E2327CFEF98C582664B4C0F6CC41659"
        ),
        _h("8CF83642A709A097B447997640129DA299B1A47D1EB3750BA308B0FE64F5FBD3"),
    ),
}

# a DG14 key's p outside this range is not used: below, the clone check proves little;
# above, one exponentiation of a hostile file costs more than a whole read
MIN_BITS, MAX_BITS = 1024, 4096


def known(p: int, g: int) -> Group | None:
    """The RFC 5114 group with this p and g (gives q to keys whose parameters omit it)."""
    return next((grp for grp in MODP.values() if grp.p == p and grp.g == g), None)


def encode(y: int) -> bytes:
    """A public value as TR-03110 encodes an unsigned integer: big-endian, no leading
    zero bytes (GENERAL AUTHENTICATE data and the authentication token's DO84)."""
    return y.to_bytes(max(1, (y.bit_length() + 7) // 8), "big")


def public_ok(grp: Group, y: int) -> bool:
    """1 < y < p-1 and, with q known, y in g's subgroup (y^q = 1)."""
    if not 1 < y < grp.p - 1:
        return False
    return grp.q is None or pow(y, grp.q, grp.p) == 1


def decode(grp: Group, data: bytes) -> int:
    """The chip's public value: at most the length of p (leading zeros allowed), and
    ``public_ok``; else ``AccessError``."""
    if not data or len(data) > grp.size:
        raise AccessError(f"DH public value of {len(data)} bytes (p has {grp.size})")
    y = int.from_bytes(data, "big")
    if not public_ok(grp, y):
        raise AccessError("DH public value is out of range or not in the subgroup")
    return y


def keypair(grp: Group, g: int | None = None) -> tuple[int, int]:
    """An ephemeral key pair on generator ``g`` (the group's by default): x in [1, q-1],
    or 256 random bits with an unknown q."""
    x = secrets.randbelow(grp.q - 1) + 1 if grp.q else secrets.randbits(256) | 1 << 255
    return x, pow(grp.g if g is None else g, x, grp.p)


def map_generator(grp: Group, nonce: bytes, h: int) -> int:
    """Generic mapping (9303-11 4.4, TR-03110): g' = g^s * h mod p, h = y_chip^x_map."""
    g2 = pow(grp.g, int.from_bytes(nonce, "big"), grp.p) * h % grp.p
    if g2 in (0, 1, grp.p - 1):
        raise AccessError("mapped generator is degenerate")
    return g2


def agree(grp: Group, x: int, y: int) -> int:
    """y^x mod p; 1 or p-1 (a value the chip forced) is refused."""
    k = pow(y, x, grp.p)
    if k in (0, 1, grp.p - 1):
        raise AccessError("DH shared value is degenerate")
    return k


def secret(grp: Group, k: int) -> bytes:
    """The shared secret K as the KDF takes it: k as an octet string of p's length
    (PKCS #3, as ``cryptography``'s exchange gives it)."""
    return k.to_bytes(grp.size, "big")


def comp(y: int) -> bytes:
    """Comp() of a DH public key (TR-03110 part 3, as read here): SHA-1 of the value as
    ``encode`` writes it. Only the virtual chip has checked it (no DH chip at hand)."""
    return hashlib.sha1(encode(y)).digest()
