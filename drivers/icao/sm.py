"""Secure messaging (ICAO 9303-11 9.8): 3DES retail-MAC (BAC) or AES-CMAC (PACE) sessions.

One class serves both ends: the reader protects commands and unprotects responses, the
virtual chip does the reverse. The send sequence counter is incremented before every
protect and unprotect, as the standard's worked example shows.
"""

from __future__ import annotations

import hmac

from drivers.icao import keys, tlv
from drivers.icao.apdu import APDU
from drivers.icao.errors import SMError, TLVError


class SecureMessaging:
    def __init__(self, ks_enc: bytes, ks_mac: bytes, ssc: int, cipher: str = "3DES") -> None:
        if cipher not in ("3DES", "AES"):
            raise ValueError(cipher)
        self.ks_enc = ks_enc
        self.ks_mac = ks_mac
        self.ssc = ssc
        self.cipher = cipher
        self.block = 8 if cipher == "3DES" else 16

    # --- primitives -------------------------------------------------------------------

    def ssc_bytes(self) -> bytes:
        return self.ssc.to_bytes(self.block, "big")

    def _iv(self) -> bytes:
        if self.cipher == "3DES":
            return b"\x00" * 8
        return keys.aes_ecb(self.ks_enc, self.ssc_bytes())

    def encrypt(self, data: bytes) -> bytes:
        padded = keys.pad(data, self.block)
        if self.cipher == "3DES":
            return keys.des3_encrypt(self.ks_enc, padded)
        return keys.aes_encrypt(self.ks_enc, padded, self._iv())

    def decrypt(self, data: bytes) -> bytes:
        if not data or len(data) % self.block:
            raise SMError("cryptogram is not a whole number of blocks")
        if self.cipher == "3DES":
            plain = keys.des3_decrypt(self.ks_enc, data)
        else:
            plain = keys.aes_decrypt(self.ks_enc, data, self._iv())
        try:
            return keys.unpad(plain)
        except ValueError:
            raise SMError("bad padding in cryptogram") from None

    def mac(self, data: bytes) -> bytes:
        """MAC over SSC || data, padded (both ciphers pad; 9303-11 9.8.6)."""
        msg = keys.pad(self.ssc_bytes() + data, self.block)
        if self.cipher == "3DES":
            return keys.retail_mac(self.ks_mac, msg, padded=True)
        return keys.aes_cmac(self.ks_mac, msg)

    @staticmethod
    def _le_bytes(ne: int) -> bytes:
        return bytes([ne % 256]) if ne <= 256 else (ne % 65536).to_bytes(2, "big")

    # --- reader side ------------------------------------------------------------------

    def protect_command(self, apdu: APDU) -> APDU:
        self.ssc += 1
        cla = apdu.cla | 0x0C
        header = keys.pad(bytes([cla, apdu.ins, apdu.p1, apdu.p2]), self.block)
        do87 = b""
        if apdu.data:
            if apdu.ins & 1:
                do87 = tlv.encode(0x85, self.encrypt(apdu.data))
            else:
                do87 = tlv.encode(0x87, b"\x01" + self.encrypt(apdu.data))
        do97 = tlv.encode(0x97, self._le_bytes(apdu.ne)) if apdu.ne is not None else b""
        cc = self.mac(header + do87 + do97)
        body = do87 + do97 + tlv.encode(0x8E, cc)
        extended = len(body) > 255 or (apdu.ne is not None and apdu.ne > 256)
        return APDU(cla, apdu.ins, apdu.p1, apdu.p2, body, 65536 if extended else 256)

    def unprotect_response(self, resp: bytes, odd: bool = False) -> tuple[bytes, int]:
        """Verify the MAC and decrypt; ``(data, sw)``. A bare error status word (the card
        dropped secure messaging) is returned as is; a bare 9000 is an SMError."""
        self.ssc += 1
        if len(resp) < 2:
            raise SMError("response without status word")
        body, sw = resp[:-2], int.from_bytes(resp[-2:], "big")
        if not body:
            if sw == 0x9000 or sw >> 8 in (0x61, 0x62):
                raise SMError(f"unprotected {sw:04X} inside a secure session")
            return b"", sw
        try:
            objs: list[tuple[int, bytes]] = []
            pos = 0
            while pos < len(body):
                start = pos
                tag, value, pos = tlv.decode(body, pos)
                objs.append((tag, body[start:pos]))
                if tag == 0x8E:
                    cc = value
                    break
            else:
                raise SMError("response without DO8E")
        except TLVError as exc:
            raise SMError(f"malformed protected response: {exc}") from None
        signed = b"".join(raw for tag, raw in objs if tag != 0x8E)
        if not hmac.compare_digest(self.mac(signed), cc):
            raise SMError("response MAC does not verify")
        data = b""
        for tag, raw in objs:
            _, value, _ = tlv.decode(raw)
            if tag == 0x87:
                if not value or value[0] != 0x01:
                    raise SMError("DO87 without padding indicator 01")
                data = self.decrypt(value[1:])
            elif tag == 0x85:
                data = self.decrypt(value)
            elif tag == 0x99:
                if len(value) != 2:
                    raise SMError("DO99 must hold 2 bytes")
                sw = int.from_bytes(value, "big")
        return data, sw

    # --- card side (the virtual chip) ------------------------------------------------------

    def unprotect_command(self, raw: bytes) -> APDU:
        self.ssc += 1
        try:
            apdu = APDU.parse(raw)
        except ValueError as exc:
            raise SMError(str(exc)) from None
        if apdu.cla & 0x0C != 0x0C:
            raise SMError("command not protected")
        header = keys.pad(bytes([apdu.cla, apdu.ins, apdu.p1, apdu.p2]), self.block)
        signed = b""
        data, ne, cc = b"", None, None
        try:
            for tag, value in tlv.iter_tlv(apdu.data):
                raw_obj = tlv.encode(tag, value)
                if tag == 0x8E:
                    cc = value
                    break
                signed += raw_obj
                if tag == 0x87:
                    if not value or value[0] != 1:
                        raise SMError("DO87 without padding indicator 01")
                    data = value[1:]
                elif tag == 0x85:
                    data = value
                elif tag == 0x97:
                    ne = int.from_bytes(value, "big") or (256 if len(value) == 1 else 65536)
        except TLVError as exc:
            raise SMError(f"malformed protected command: {exc}") from None
        if cc is None or not hmac.compare_digest(self.mac(header + signed), cc):
            raise SMError("command MAC does not verify")
        plain = self.decrypt(data) if data else b""
        return APDU(apdu.cla & ~0x0C & 0xFF, apdu.ins, apdu.p1, apdu.p2, plain, ne)

    def protect_response(self, data: bytes, sw: int, odd: bool = False) -> bytes:
        self.ssc += 1
        do87 = b""
        if data:
            enc = self.encrypt(data)
            do87 = tlv.encode(0x85, enc) if odd else tlv.encode(0x87, b"\x01" + enc)
        do99 = tlv.encode(0x99, sw.to_bytes(2, "big"))
        cc = self.mac(do87 + do99)
        return do87 + do99 + tlv.encode(0x8E, cc) + sw.to_bytes(2, "big")
