"""The virtual chip's half of PACE-GM: ECDH or DH, AES or 3DES (by default ECDH, AES-128 on
brainpoolP256r1); the group operations are the reader's (``pace.ECGM``, ``pace.DHGM``)."""

from __future__ import annotations

import hmac
import os

from asn1crypto import core

from drivers.icao import lds, pace, tlv
from drivers.icao.apdu import APDU
from drivers.icao.errors import AccessError, TLVError
from drivers.icao.sm import SecureMessaging

DEFAULT_OID = pace.PACE_ECDH_GM + "2"  # id-PACE-ECDH-GM-AES-CBC-CMAC-128
DEFAULT_PARAM = 13  # brainpoolP256r1


# what the virtual chip can offer in EF.CardAccess, by name (CLI, ChipSpec)
PROTOCOLS = {
    "ecdh-aes128": (DEFAULT_OID, DEFAULT_PARAM),
    "ecdh-3des": (pace.PACE_ECDH_GM + "1", DEFAULT_PARAM),
    "dh-3des": (pace.PACE_DH_GM + "1", 0),  # RFC 5114 1024/160
    "dh-aes128": (pace.PACE_DH_GM + "2", 0),  # as ICAO 9303-11 G.2
    "dh-aes192": (pace.PACE_DH_GM + "3", 1),  # 2048/224
    "dh-aes256": (pace.PACE_DH_GM + "4", 2),  # 2048/256
}


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
        if not pace.supported(oid, param):
            return 0x6A80
        self.info = pace.PACEInfo(oid, 2, param)
        self.grp = self.info.group()
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
        grp, info = self.grp, self.info
        assert info is not None
        cipher = info.cipher[0]
        out = lambda tag, v: tlv.encode(0x7C, tlv.encode(tag, v))  # noqa: E731
        if self.stage == 1:
            self.nonce = os.urandom(8 if cipher == "3DES" else 16)
            z = pace.encrypt_nonce(info, self.mrz_info, self.nonce)
            self.stage = 2
            return out(0x80, z), 0x9000, None
        if self.stage == 2:
            pk_ifd = grp.decode(kids[0x81])
            sk, pk = grp.keypair(grp.generator())
            self.g2 = grp.map(self.nonce, grp.agree(sk, pk_ifd))
            self.stage = 3
            return out(0x82, grp.encode(pk)), 0x9000, None
        if self.stage == 3:
            self.pk_ifd = grp.decode(kids[0x83])
            sk, self.pk = grp.keypair(self.g2)
            k = grp.secret(grp.agree(sk, self.pk_ifd))
            self.ks_enc, self.ks_mac = pace.session_keys(info, k)
            self.stage = 4
            return out(0x84, grp.encode(self.pk)), 0x9000, None
        if self.stage == 4:
            expect = pace.auth_token(self.ks_mac, info.oid, grp, self.pk, cipher)
            if not hmac.compare_digest(kids.get(0x85, b""), expect):
                return b"", 0x6300, None
            token = pace.auth_token(self.ks_mac, info.oid, grp, self.pk_ifd, cipher)
            self.stage = 5
            session = SecureMessaging(self.ks_enc, self.ks_mac, 0, cipher)
            return out(0x86, token), 0x9000, session
        return b"", 0x6985, None
