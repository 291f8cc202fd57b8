"""The virtual ePassport chip: the card side of BAC, PACE-GM, secure messaging, the LDS
files, active authentication, with fault switches; and its link to vsmartcard's vpcd.

``VirtualChip.process`` maps one command APDU to one response, so tests can drive it
in-process; ``VpcdCard`` plugs it into the real PC/SC stack (pcscd shows
``Virtual PCD 00 00``), so the production reader is what gets tested. Debian's own
``vicc -t ePass`` cannot serve here (no Python 3, no SOD, PACE or real AA).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from asn1crypto import core
from asn1crypto import keys as akeys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from drivers.icao import aa, bac, ca, dh, keys, lds, sod, tlv
from drivers.icao import pace as icao_pace
from drivers.icao.apdu import APDU
from drivers.icao.errors import ICAOError, SMError
from drivers.icao.pa import TrustStore
from drivers.icao.sm import SecureMessaging
from gate.mrz import build_mrz
from gate.results import MrzRecord
from sim import chip_pace as chip_pace_mod
from sim.chip_pki import PKI, make_pki

log = logging.getLogger(__name__)

FACES = Path(__file__).resolve().parents[1] / "../shared/data/faces"
VPCD_PORT = 35963
_LAST_GONE: dict[int, float] = {}  # port -> when the last emulated card left it


# --- the document ------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """What the data page says; DG1 and the access key come from here."""

    document_number: str = "L898902C3"
    surname: str = "ERIKSSON"
    given_names: str = "ANNA MARIA"
    nationality: str = "UTO"
    issuing_state: str = "UTO"
    birth: str = "740812"  # YYMMDD
    sex: str = "F"
    expiry: str = "341231"
    optional: str = "ZE184226B"
    document_code: str = "P"

    def td3(self) -> tuple[str, str]:
        """The two TD3 lines (ICAO 9303-4), check digits computed by ``gate.mrz``."""
        l1, l2 = build_mrz(
            "TD3",
            surname=self.surname,
            given_names=self.given_names,
            document_number=self.document_number,
            nationality=self.nationality,
            issuing_state=self.issuing_state,
            date_of_birth=self.birth,
            sex={"<": "X"}.get(self.sex, self.sex),
            date_of_expiry=self.expiry,
            document_code=self.document_code,
            optional_data=self.optional,
        )
        return l1, l2

    def mrz_record(self) -> MrzRecord:
        """The record an MRZ reader would hand the chip reader for this page."""
        return lds.dg1_to_mrz(self.td3())


def default_portrait(index: int = 0) -> bytes:
    faces = sorted(FACES.glob("london_*/01.jpg"))
    return faces[index % len(faces)].read_bytes()


# --- faults ------------------------------------------------------------------------------


@dataclass
class Faults:
    wrong_dg_hash: bool = False  # SOD holds another hash for DG2
    bad_sod_signature: bool = False
    expired_ds: bool = False
    unknown_csca: bool = False  # issued by a CSCA the reader was not given
    cloned_chip: bool = False  # AA answered with a key other than DG15's
    corrupted_tlv: bool = False  # DG1's inner TLV length is wrong (signed as such)
    wrong_mac: bool = False  # every protected response carries a bad MAC
    slow_card_s: float = 0.0  # delay before every answer
    pull_after_apdus: int | None = None  # the card leaves the field after N APDUs
    freeze_after_apdus: int | None = None  # after N APDUs, silence until taken away
    refuse_extended: bool = False  # the ATR claims extended length; long APDUs get 6700
    unsupported_aa_key: bool = False  # DG15 holds a brainpoolP192r1 key (signed as such)
    unsupported_ca_curve: bool = False  # DG14's CA key names brainpoolP192r1 (signed)


@lru_cache(maxsize=4)
def _aa_key(kind: str, n: int) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """Test AA keys, cached: RSA generation dominates a test run otherwise."""
    if kind == "ecdsa":
        return ec.generate_private_key(ec.BrainpoolP256R1())
    return rsa.generate_private_key(65537, 1024)


@lru_cache(maxsize=4)
def _ca_key(n: int) -> tuple[int, tuple[int, int]]:
    c = icao_pace.CURVES[13]
    sk, pk = icao_pace.keypair(c, icao_pace.generator(c))
    assert pk is not None
    return sk, pk


def chip_ca_infos(
    c: icao_pace.Curve, pk: icao_pace.Point, cipher: str = "AES"
) -> list[tuple[str, bytes, bytes | None]]:
    """DG14's ChipAuthenticationInfo (ECDH, AES-128) and its public key, with explicit
    domain parameters as issued passports carry them."""
    size = c.size
    params = akeys.ECDomainParameters(
        name="specified",
        value={
            "version": "ecdpVer1",
            "field_id": {"field_type": "prime_field", "parameters": core.Integer(c.p)},
            "curve": {"a": c.a.to_bytes(size, "big"), "b": c.b.to_bytes(size, "big")},
            "base": icao_pace.encode_point(c, (c.gx, c.gy)),
            "order": c.n,
            "cofactor": 1,
        },
    )
    spki = akeys.PublicKeyInfo(
        {
            "algorithm": {"algorithm": "ec", "parameters": params},
            "public_key": icao_pace.encode_point(c, pk),
        }
    )
    return [
        (ca.ID_CA_ECDH + ("2" if cipher == "AES" else "1"), core.Integer(1).dump(), None),
        (ca.ID_PK_ECDH, spki.dump(), None),
    ]


CA_DH_GROUP = dh.MODP[2]  # the virtual chip's DH chip authentication key: 2048/256


@lru_cache(maxsize=4)
def _ca_dh_key(n: int) -> tuple[int, int]:
    return dh.keypair(CA_DH_GROUP)


def dh_spki(grp: dh.Group, y: int, pkcs3: bool = False) -> bytes:
    """A DH SubjectPublicKeyInfo: X9.42 dhpublicnumber (p, g, q) or PKCS #3
    dhKeyAgreement (p, g); the public value is a DER INTEGER in the BIT STRING."""
    if pkcs3:
        oid, ints = ca.DHKEYAGREEMENT, [grp.p, grp.g]
    else:
        oid, ints = ca.DHPUBLICNUMBER, [grp.p, grp.g, grp.q or 0]
    params = tlv.encode(0x30, b"".join(core.Integer(i).dump() for i in ints))
    algo = tlv.encode(0x30, core.ObjectIdentifier(oid).dump() + params)
    bits = tlv.encode(0x03, b"\x00" + core.Integer(y).dump())  # no unused bits
    return tlv.encode(0x30, algo + bits)


def chip_ca_dh_infos(
    grp: dh.Group, y: int, cipher: str = "AES", pkcs3: bool = False
) -> list[tuple[str, bytes, bytes | None]]:
    """DG14's ChipAuthenticationInfo (DH, AES-128 or 3DES) and its DH public key."""
    return [
        (ca.ID_CA_DH + ("2" if cipher == "AES" else "1"), core.Integer(1).dump(), None),
        (ca.ID_PK_DH, dh_spki(grp, y, pkcs3), None),
    ]


# an EC key on brainpoolP192r1, a curve 9303 allows and neither OpenSSL nor our CA has
UNSUPPORTED_SPKI = akeys.PublicKeyInfo(
    {
        "algorithm": {
            "algorithm": "ec",
            "parameters": akeys.ECDomainParameters(name="named", value="1.3.36.3.3.2.8.1.1.3"),
        },
        "public_key": b"\x04" + bytes(range(1, 49)),
    }
).dump()


def atr(extended: bool) -> bytes:
    """T=1 ATR whose historical bytes carry card capabilities (extended Lc/Le bit)."""
    hist = bytes([0x80, 0x73, 0x00, 0x21, 0x40 if extended else 0x00])
    body = bytes([0x80 | len(hist), 0x80, 0x01]) + hist
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes([tck])


# --- the card ----------------------------------------------------------------------------


class VirtualChip:
    def __init__(
        self,
        holder: Holder | None = None,
        portrait: bytes | None = None,
        *,
        faults: Faults | None = None,
        pace: bool = True,
        extended: bool = True,
        aa_kind: str | None = "rsa",
        ca: str | None = "AES",  # chip authentication cipher: "AES", "3DES" or None
        ca_key: str = "ecdh",  # the DG14 key: "ecdh" (brainpoolP256r1) or "dh" (MODP 2048/256)
        pace_protocol: str = "ecdh-aes128",  # EF.CardAccess's offer: chip_pace.PROTOCOLS
        signature: str = "ecdsa",
        pki: PKI | None = None,
    ) -> None:
        self.holder = holder or Holder()
        self.faults = faults or Faults()
        self.pace_enabled = pace
        self.pace_protocol = pace_protocol
        self.extended = extended
        self.atr = atr(extended)
        f = self.faults
        issuer = pki or make_pki(signature, ds_expired=f.expired_ds)
        # what the reader's trust store gets: the issuer's CSCA, unless the fault says not
        self.trusted = make_pki("ecdsa") if f.unknown_csca else issuer
        self.issuer = issuer
        self.mrz_info = keys.mrz_information(
            self.holder.document_number, self.holder.birth, self.holder.expiry
        )
        self.files: dict[int, bytes] = {}
        self.aa_key = _aa_key(aa_kind, 0) if aa_kind else None
        self.aa_signer = _aa_key(aa_kind, 1) if aa_kind and f.cloned_chip else self.aa_key
        self.aa_hash = "sha256"
        self.ca_enabled = ca
        self.ca_kind = ca_key
        self.ca_curve = icao_pace.CURVES[13]
        self.ca_sk, self.ca_pk = _ca_key(0)
        self.ca_signer_sk = _ca_key(1)[0] if f.cloned_chip else self.ca_sk
        self.ca_dh_sk, self.ca_dh_pk = _ca_dh_key(0)
        self.ca_dh_signer_sk = _ca_dh_key(1)[0] if f.cloned_chip else self.ca_dh_sk
        self._build(portrait if portrait is not None else default_portrait())
        self.count = 0
        self.reset()

    def trust_store(self) -> TrustStore:
        return TrustStore(cscas=[self.trusted.csca])

    def _build(self, portrait: bytes) -> None:
        f = self.faults
        dg1 = lds.build_dg1(self.holder.td3())
        if f.corrupted_tlv:
            mrz = "".join(self.holder.td3()).encode()
            dg1 = tlv.encode(0x61, b"\x5f\x1f" + bytes([len(mrz) + 9]) + mrz)
        dgs = {1: dg1, 2: lds.build_dg2(portrait)}
        infos: list[tuple[str, bytes, bytes | None]] = []
        if self.aa_key is not None:
            spki = self.aa_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            dgs[15] = lds.build_dg15(UNSUPPORTED_SPKI if f.unsupported_aa_key else spki)
            if isinstance(self.aa_key, ec.EllipticCurvePrivateKey):
                infos.append(
                    (
                        lds.ID_AA,
                        core.Integer(1).dump(),
                        core.ObjectIdentifier("1.2.840.10045.4.3.2").dump(),
                    )
                )
        if self.ca_enabled and self.ca_kind == "dh":
            infos += chip_ca_dh_infos(CA_DH_GROUP, self.ca_dh_pk, self.ca_enabled)
        elif self.ca_enabled:
            infos += chip_ca_infos(self.ca_curve, self.ca_pk, self.ca_enabled)
            if f.unsupported_ca_curve:
                infos[-1] = (ca.ID_PK_ECDH, UNSUPPORTED_SPKI, None)
        if infos:
            dgs[14] = lds.build_dg14(infos)
        override = {2: hashlib.sha256(b"not the portrait").digest()} if f.wrong_dg_hash else None
        sign = self.issuer.sign
        if f.bad_sod_signature:
            good = sign

            def sign(data: bytes) -> bytes:
                sig = bytearray(good(data))
                sig[len(sig) // 2] ^= 0x01
                return bytes(sig)

        ds_der = self.issuer.ds.public_bytes(serialization.Encoding.DER)
        sod_raw = sod.build_sod(
            dgs, ds_der, sign, self.issuer.cms_signature_algorithm, "sha256", override
        )
        self.files = {lds.DG[n][0]: raw for n, raw in dgs.items()}
        self.files[lds.FID_COM] = lds.build_com(sorted(dgs))
        self.files[lds.FID_SOD] = sod_raw
        if self.pace_enabled:
            from sim import chip_pace

            self.files[lds.FID_CARD_ACCESS] = chip_pace.card_access(
                *chip_pace.PROTOCOLS[self.pace_protocol]
            )

    # --- state ---------------------------------------------------------------------------

    def reset(self) -> None:
        self.app = False
        self.current: int | None = None
        self.sm: SecureMessaging | None = None
        self.rnd_icc: bytes | None = None
        self.pace: chip_pace_mod.CardPACE | None = None

    def process(self, raw: bytes) -> bytes:
        self.count += 1
        try:
            apdu = APDU.parse(raw)
        except ValueError:
            return b"\x67\x00"
        if apdu.is_extended() and (not self.extended or self.faults.refuse_extended):
            return b"\x67\x00"
        if self.sm is not None and apdu.cla & 0x0C == 0x0C:
            try:
                cmd = self.sm.unprotect_command(raw)
            except SMError:
                self.reset()
                return b"\x69\x88"
            data, sw = self.dispatch(cmd, secure=True)
            if self.sm is None:  # the command ended the session
                return sw.to_bytes(2, "big")
            resp = self.sm.protect_response(data, sw, odd=bool(cmd.ins & 1))
            if not apdu.is_extended() and len(resp) - 2 > 256:
                return b"\x67\x00"  # a short command cannot carry a longer answer
            if self.faults.wrong_mac and self.app:
                resp = resp[:-3] + bytes([resp[-3] ^ 0x01]) + resp[-2:]
            return resp
        if self.sm is not None:  # a plain command ends secure messaging (9303-11 9.8.1)
            self.sm = None
        data, sw = self.dispatch(apdu, secure=False)
        if not apdu.is_extended() and len(data) > 256:
            return b"\x67\x00"
        return data + sw.to_bytes(2, "big")

    def dispatch(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        try:
            handler = {
                0xA4: self._select,
                0xB0: self._read,
                0xB1: self._read_odd,
                0x84: self._challenge,
                0x82: self._mutual_auth,
                0x88: self._internal_auth,
                0x22: self._mse,
                0x86: self._general_auth,
            }.get(c.ins)
            if handler is None:
                return b"", 0x6D00
            return handler(c, secure)
        except ICAOError:
            return b"", 0x6A80

    def _select(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        if c.p1 == 0x04:
            if c.data != lds.AID_EMRTD:
                return b"", 0x6A82
            self.app, self.current = True, None
            return b"", 0x9000
        if len(c.data) != 2:
            return b"", 0x6A80
        fid = int.from_bytes(c.data, "big")
        if fid == lds.FID_CARD_ACCESS and fid in self.files:
            self.current = fid
            return b"", 0x9000
        if not self.app or fid not in self.files:
            return b"", 0x6A82
        if not secure:
            return b"", 0x6982
        self.current = fid
        return b"", 0x9000

    def _file(self, secure: bool) -> bytes | int:
        if self.current is None:
            return 0x6986
        if self.current != lds.FID_CARD_ACCESS and not secure:
            return 0x6982
        return self.files[self.current]

    @staticmethod
    def _slice(data: bytes, offset: int, ne: int) -> tuple[bytes, int]:
        if offset >= len(data):
            return b"", 0x6B00
        part = data[offset : offset + ne]
        return part, 0x9000 if len(part) == ne else 0x6282

    def _read(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        if c.p1 & 0x80:  # short EF identifier
            fid = 0x0100 | (c.p1 & 0x1F)
            if fid not in self.files:
                return b"", 0x6A82
            self.current, offset = fid, c.p2
        else:
            offset = (c.p1 << 8) | c.p2
        f = self._file(secure)
        if isinstance(f, int):
            return b"", f
        return self._slice(f, offset, c.ne or 256)

    def _read_odd(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        f = self._file(secure)
        if isinstance(f, int):
            return b"", f
        offset = int.from_bytes(tlv.unwrap(c.data, 0x54), "big")
        ne = c.ne or 256
        want = ne - 2
        while want > 1 and want + 1 + len(tlv.encode_length(want)) > ne:
            want -= 1
        part, sw = self._slice(f, offset, want)
        return (tlv.encode(0x53, part) if part else b""), sw

    def _challenge(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        self.rnd_icc = os.urandom(8)
        return self.rnd_icc, 0x9000

    def _mutual_auth(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        if self.rnd_icc is None or len(c.data) != 40:
            return b"", 0x6985
        k_enc, k_mac = bac.document_keys(self.mrz_info)
        e_ifd, m_ifd = c.data[:32], c.data[32:]
        rnd_icc, self.rnd_icc = self.rnd_icc, None
        if keys.retail_mac(k_mac, e_ifd) != m_ifd:
            return b"", 0x6300
        s = keys.des3_decrypt(k_enc, e_ifd)
        if s[8:16] != rnd_icc:
            return b"", 0x6300
        rnd_ifd, k_ifd, k_icc = s[:8], s[16:32], os.urandom(16)
        e_icc = keys.des3_encrypt(k_enc, rnd_icc + rnd_ifd + k_icc)
        ks_enc, ks_mac = bac.session_keys(k_ifd, k_icc)
        resp = e_icc + keys.retail_mac(k_mac, e_icc)
        self.sm_next = SecureMessaging(ks_enc, ks_mac, bac.initial_ssc(rnd_icc, rnd_ifd))
        self.sm = None
        self._install_after = True
        return resp, 0x9000

    def _internal_auth(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        if not secure or self.aa_signer is None:
            return b"", 0x6982
        if isinstance(self.aa_signer, rsa.RSAPrivateKey):
            return aa.sign_rsa_9796_2(self.aa_signer, c.data, "sha1"), 0x9000
        return aa.sign_ecdsa_plain(self.aa_signer, c.data, self.aa_hash), 0x9000

    def _mse(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        if c.p1 == 0x41:  # chip authentication (under secure messaging)
            return self._ca_set(c, secure)
        if not self.pace_enabled:
            return b"", 0x6D00
        from sim import chip_pace

        self.pace = chip_pace.CardPACE(self.mrz_info)
        return b"", self.pace.set_at(c.data)

    def _ca_set(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        if not (secure and self.ca_enabled):
            return b"", 0x6982
        kids = tlv.children(c.data)
        if c.p2 == 0xA6:  # MSE:Set KAT (3DES): the key agreement happens now
            return self._ca_agree(kids.get(0x91, b""), "3DES"), 0x9000
        if c.p2 != 0xA4 or 0x80 not in kids:
            return b"", 0x6A80
        self.ca_oid = core.ObjectIdentifier.load(tlv.encode(0x06, kids[0x80])).dotted
        return b"", 0x9000

    def _ca_agree(self, point: bytes, cipher: str) -> bytes:
        """The terminal's key (checked: ICAOError, 6A80, if it is not one) against ours."""
        if self.ca_kind == "dh":
            y = dh.decode(CA_DH_GROUP, point)
            x = dh.secret(CA_DH_GROUP, dh.agree(CA_DH_GROUP, self.ca_dh_signer_sk, y))
        else:
            pk_ifd = icao_pace.decode_point(self.ca_curve, point)
            shared = icao_pace.mul(self.ca_curve, self.ca_signer_sk, pk_ifd)
            assert shared is not None
            x = shared[0].to_bytes(self.ca_curve.size, "big")
        self.sm_next = SecureMessaging(
            keys.kdf(x, keys.KDF_ENC, cipher), keys.kdf(x, keys.KDF_MAC, cipher), 0, cipher
        )
        self._install_after = True
        return b""

    def _general_auth(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        if secure and getattr(self, "ca_oid", None):
            oid, self.ca_oid = self.ca_oid, None
            point = tlv.children(tlv.unwrap(c.data, 0x7C)).get(0x80, b"")
            cipher = "3DES" if oid.endswith(".1") else "AES"
            self._ca_agree(point, cipher)
            return b"\x7c\x00", 0x9000
        if self.pace is None:
            return b"", 0x6985
        data, sw, session = self.pace.step(c)
        if session is not None:
            self.sm_next = session
            self._install_after = True
        if sw != 0x9000:
            self.pace = None
        return data, sw

    # BAC and PACE answer in plain and switch to secure messaging after the answer
    _install_after = False
    sm_next: SecureMessaging | None = None

    def answer(self, raw: bytes) -> bytes:
        """``process`` plus the deferred session install; what the link layer calls."""
        resp = self.process(raw)
        if self._install_after:
            self.sm, self.sm_next, self._install_after = self.sm_next, None, False
        return resp


# --- the vpcd link -------------------------------------------------------------------------


class VpcdCard:
    """A TCP client of vpcd (2-byte big-endian length + payload; a 1-byte payload is a
    control code: 00 off, 01 on, 02 reset, 04 ATR). ``TCP_NODELAY`` plus re-armed
    ``TCP_QUICKACK`` avoid the 40 ms Nagle/delayed-ACK stall of vpcd's split writes."""

    def __init__(self, chip: VirtualChip, host: str = "127.0.0.1", port: int = VPCD_PORT) -> None:
        self.chip = chip
        self.host, self.port = host, port
        self._stop = threading.Event()
        self._inserted = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self._pulls = 0  # removals so far: a frozen card waits for the next one

    def start(self) -> VpcdCard:
        self._inserted.set()
        self._thread = threading.Thread(target=self._run, name="vpcd-card", daemon=True)
        self._thread.start()
        return self

    def insert(self, chip: VirtualChip | None = None) -> None:
        if chip is not None:
            self.chip = chip
        self.connected.clear()  # set again by vpcd's next message to this card
        self._inserted.set()

    def remove(self) -> None:
        """Take the card out of the field (the emulator disconnects from vpcd)."""
        self._inserted.clear()
        self._pulls += 1
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stop.set()
        self.remove()
        self._inserted.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> VpcdCard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._inserted.wait()
            if self._stop.is_set():
                return
            # pcscd must poll "no card" at least once between two cards (it polls every
            # 0.4 s), or it keeps the slot in its "removed" state and refuses to power up
            wait = _LAST_GONE.get(self.port, 0.0) + 1.0 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                time.sleep(0.1)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # vpcd polls the ATR every 0.4 s; silence means it did not take this connection
            # (after a card pulled mid-APDU the first reconnect is dropped): dial again
            sock.settimeout(1.5)
            self._sock = sock
            try:
                self._serve(sock)
            except TimeoutError:
                log.debug("vpcd silent after connect: reconnecting")
            except OSError:
                pass
            finally:
                self.connected.clear()
                self._sock = None
                sock.close()
                _LAST_GONE[self.port] = time.monotonic()

    @staticmethod
    def _recv(sock: socket.socket, n: int) -> bytes:
        """Read exactly ``n`` bytes; quick-ACK re-armed around every receive (the kernel
        drops the flag), so vpcd's second write is not held back by Nagle for 40 ms."""
        quickack = getattr(socket, "TCP_QUICKACK", None)
        buf = b""
        while len(buf) < n:
            if quickack is not None:
                sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            part = sock.recv(n - len(buf))
            if quickack is not None:
                sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            if not part:
                raise ConnectionError("vpcd closed")
            buf += part
        return buf

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set() and self._inserted.is_set():
            size = int.from_bytes(self._recv(sock, 2), "big")
            if not self.connected.is_set():
                sock.settimeout(None)
                self.connected.set()
            msg = self._recv(sock, size)
            chip = self.chip
            if size == 1:
                if msg[0] in (0, 1, 2):
                    chip.reset()
                elif msg[0] == 4:
                    sock.sendall(len(chip.atr).to_bytes(2, "big") + chip.atr)
                continue
            f = chip.faults
            if f.pull_after_apdus is not None and chip.count >= f.pull_after_apdus:
                log.info("virtual chip: pulled after %d APDUs", chip.count)
                self._inserted.clear()
                return
            if f.freeze_after_apdus is not None and chip.count >= f.freeze_after_apdus:
                log.info("virtual chip: frozen after %d APDUs", chip.count)
                pulls = self._pulls
                while pulls == self._pulls and not self._stop.is_set():
                    time.sleep(0.05)  # a hung card: no answer, connection held, until pulled
                return
            if f.slow_card_s:
                time.sleep(f.slow_card_s)
            resp = chip.answer(msg)
            sock.sendall(len(resp).to_bytes(2, "big") + resp)


@dataclass
class ChipSpec:
    """Everything to build one virtual chip from a CLI or a scenario."""

    holder: Holder = field(default_factory=Holder)
    faults: Faults = field(default_factory=Faults)
    pace: bool = True
    extended: bool = True
    portrait_index: int = 0
    pace_protocol: str = "ecdh-aes128"  # or ecdh-3des, dh-3des, dh-aes128/192/256
    ca_key: str = "ecdh"  # or dh

    def build(self) -> VirtualChip:
        return VirtualChip(
            self.holder,
            default_portrait(self.portrait_index),
            faults=self.faults,
            pace=self.pace,
            extended=self.extended,
            pace_protocol=self.pace_protocol,
            ca_key=self.ca_key,
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.chip``: put a virtual passport on vpcd until interrupted."""
    import argparse

    from cryptography.hazmat.primitives.serialization import Encoding

    ap = argparse.ArgumentParser(prog="python -m sim.chip", description=main.__doc__)
    ap.add_argument("--port", type=int, default=VPCD_PORT)
    ap.add_argument("--document-number", default=Holder.document_number)
    ap.add_argument("--birth", default=Holder.birth)
    ap.add_argument("--expiry", default=Holder.expiry)
    ap.add_argument("--surname", default=Holder.surname)
    ap.add_argument("--portrait-index", type=int, default=0)
    ap.add_argument("--no-pace", action="store_true")
    ap.add_argument(
        "--pace-protocol",
        choices=["ecdh-aes128", "ecdh-3des", "dh-3des", "dh-aes128", "dh-aes192", "dh-aes256"],
        default="ecdh-aes128",
        help="what EF.CardAccess offers (dh-*: RFC 5114 groups 0, 0, 1, 2)",
    )
    ap.add_argument("--short", action="store_true", help="no extended length")
    ap.add_argument("--aa", choices=["rsa", "ecdsa", "none"], default="rsa")
    ap.add_argument("--ca", choices=["AES", "3DES", "none"], default="AES")
    ap.add_argument("--ca-key", choices=["ecdh", "dh"], default="ecdh", help="DG14's CA key")
    ap.add_argument("--signature", choices=["ecdsa", "rsa", "rsa-pss"], default="ecdsa")
    ap.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=[
            "wrong_dg_hash",
            "bad_sod_signature",
            "expired_ds",
            "unknown_csca",
            "cloned_chip",
            "corrupted_tlv",
            "wrong_mac",
            "refuse_extended",
            "unsupported_aa_key",
            "unsupported_ca_curve",
        ],
    )
    ap.add_argument("--slow", type=float, default=0.0, help="seconds before every answer")
    ap.add_argument("--pull-after", type=int, default=None, help="leave after N APDUs")
    ap.add_argument("--freeze-after", type=int, default=None, help="go silent after N APDUs")
    ap.add_argument("--csca-out", type=Path, help="write the trusted CSCA certificate here")
    a = ap.parse_args(argv)
    holder = Holder(
        document_number=a.document_number, birth=a.birth, expiry=a.expiry, surname=a.surname
    )
    faults = Faults(
        **{f: True for f in a.fault},
        slow_card_s=a.slow,
        pull_after_apdus=a.pull_after,
        freeze_after_apdus=a.freeze_after,
    )
    chip = VirtualChip(
        holder,
        default_portrait(a.portrait_index),
        faults=faults,
        pace=not a.no_pace,
        extended=not a.short,
        aa_kind=None if a.aa == "none" else a.aa,
        ca=None if a.ca == "none" else a.ca,
        ca_key=a.ca_key,
        pace_protocol=a.pace_protocol,
        signature=a.signature,
    )
    if a.csca_out:
        a.csca_out.mkdir(parents=True, exist_ok=True)
        (a.csca_out / "csca.der").write_bytes(chip.trusted.csca.public_bytes(Encoding.DER))
    return serve(chip, a.port, f"virtual chip on vpcd port {a.port}: {' '.join(holder.td3())}")


def serve(chip: VirtualChip, port: int, banner: str) -> int:
    """Keep ``chip`` in vpcd's slot at ``port`` until SIGTERM or Ctrl-C (the CLIs' loop)."""
    import signal

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    card = VpcdCard(chip, port=port).start()
    print(banner, flush=True)
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    card.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
