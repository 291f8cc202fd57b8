"""The virtual chip's half of PACE-GM (ECDH, AES-128 on brainpoolP256r1 by default)."""

from __future__ import annotations

import hmac
import os

from asn1crypto import core

from drivers.icao import keys, lds, pace, tlv
from drivers.icao.apdu import APDU
from drivers.icao.errors import AccessError, TLVError
from drivers.icao.sm import SecureMessaging

DEFAULT_OID = pace.PACE_ECDH_GM + "2"  # id-PACE-ECDH-GM-AES-CBC-CMAC-128
DEFAULT_PARAM = 13  # brainpoolP256r1


def card_access(oid: str = DEFAULT_OID, param: int = DEFAULT_PARAM) -> bytes:
    return lds.build_security_infos([(oid, core.Integer(2).dump(), core.Integer(param).dump())])


class CardPACE:
    def __init__(self, mrz_info: str) -> None:
        self.mrz_info = mrz_info
        self.info: pace.PACEInfo | None = None
        self.stage = 0

    def set_at(self, data: bytes) -> int:
        try:
            kids = tlv.children(data)
            oid = core.ObjectIdentifier.load(tlv.encode(0x06, kids[0x80])).dotted
            param = kids[0x84][0]
        except (TLVError, KeyError, IndexError, ValueError):
            return 0x6A80
        if not oid.startswith(pace.PACE_ECDH_GM) or param not in pace.CURVES:
            return 0x6A80
        self.info = pace.PACEInfo(oid, 2, param)
        self.c = pace.CURVES[param]
        self.stage = 1
        return 0x9000

    def step(self, cmd: APDU) -> tuple[bytes, int, SecureMessaging | None]:
        """One GENERAL AUTHENTICATE; the last returns the new session."""
        if self.info is None:
            return b"", 0x6985, None
        try:
            kids = tlv.children(tlv.unwrap(cmd.data, 0x7C))
            return self._step(kids)
        except (TLVError, AccessError, KeyError):
            return b"", 0x6300, None

    def _step(self, kids: dict[int, bytes]) -> tuple[bytes, int, SecureMessaging | None]:
        c, info = self.c, self.info
        assert info is not None
        out = lambda tag, v: tlv.encode(0x7C, tlv.encode(tag, v))  # noqa: E731
        if self.stage == 1:
            self.nonce = os.urandom(16)
            z = keys.aes_encrypt(pace.password_key(self.mrz_info, info.key_bits), self.nonce)
            self.stage = 2
            return out(0x80, z), 0x9000, None
        if self.stage == 2:
            pk_ifd = pace.decode_point(c, kids[0x81])
            sk, pk = pace.keypair(c, pace.generator(c))
            self.g2 = pace.map_generator(c, self.nonce, pace.mul(c, sk, pk_ifd))
            self.stage = 3
            return out(0x82, pace.encode_point(c, pk)), 0x9000, None
        if self.stage == 3:
            self.pk_ifd = pace.decode_point(c, kids[0x83])
            sk, self.pk = pace.keypair(c, self.g2)
            shared = pace.mul(c, sk, self.pk_ifd)
            if shared is None:
                raise AccessError("infinity")
            k = shared[0].to_bytes(c.size, "big")
            self.ks_enc = keys.kdf(k, keys.KDF_ENC, "AES", info.key_bits)
            self.ks_mac = keys.kdf(k, keys.KDF_MAC, "AES", info.key_bits)
            self.stage = 4
            return out(0x84, pace.encode_point(c, self.pk)), 0x9000, None
        if self.stage == 4:
            expect = pace.auth_token(self.ks_mac, info.oid, c, self.pk)
            if not hmac.compare_digest(kids.get(0x85, b""), expect):
                return b"", 0x6300, None
            token = pace.auth_token(self.ks_mac, info.oid, c, self.pk_ifd)
            self.stage = 5
            session = SecureMessaging(self.ks_enc, self.ks_mac, 0, "AES")
            return out(0x86, token), 0x9000, session
        return b"", 0x6985, None
