"""One document read, start to verdict, over any ``transmit``: access control, LDS reads,
passive and active authentication, DG1 against the printed MRZ.

Transport-free so the same sequence runs over pyscard (``drivers/chip.py``), against the
virtual chip in-process (tests) and in the benchmark. Everything that goes wrong once the
card answered (the chip's faults, a lost card, an APDU past its deadline, even our own
bug on a chip's bytes) ends the read with a reason code in ``ReadReport`` that keeps what
was done: a document's failure ends with that document.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drivers.errors import DeviceError
from drivers.icao import aa, bac, ca, cbeff, lds, pa, ta, tlv
from drivers.icao.apdu import APDU, SW_END_OF_FILE, SW_OK, Channel, StepStats, Transmit
from drivers.icao.errors import (
    AccessError,
    ICAOError,
    LDSError,
    SMError,
    StatusError,
    UnsupportedKey,
)
from drivers.icao.sod import parse_sod
from gate.reasons import ReasonCode
from gate.results import Check, ChipResult, MrzRecord

log = logging.getLogger(__name__)

MAX_FILE = 1 << 20  # a chip claiming more is lying or hostile; no LDS file comes close
READ_GROUPS = (1, 2, 14, 15)  # DG3/DG4 need terminal authentication; not for a gate
SW_WRONG_LENGTH = 0x6700


class ExtendedLengthRefused(StatusError):
    """6700 on a READ BINARY with a long Le: the card does not do extended length."""


@dataclass
class ReadOptions:
    pace: bool = True  # try PACE when EF.CardAccess offers it, else BAC
    extended_length: bool | None = None  # None: as the card's ATR says
    max_extended_read: int = 0xFF00
    groups: tuple[int, ...] = READ_GROUPS
    now: dt.datetime | None = None  # for certificate validity; default: the clock
    cross_check: bool = True  # compare DG1 with the printed MRZ (off: only the key is known)
    # EAC: terminals by issuing state; with one for the document's state, terminal
    # authentication follows chip authentication and DG3 (and DG4) are read
    eac: dict[str, ta.Terminal] | None = None


@dataclass
class ReadReport:
    present: bool = True
    access_control: str = ""
    files: dict[str, bytes] = field(default_factory=dict)  # "COM", "DG1", ..., "SOD"
    dg1: MrzRecord | None = None
    portrait: lds.Portrait | None = None
    pa: pa.PAResult | None = None
    passive_auth: Check = Check.NOT_RUN
    active_auth: Check = Check.NOT_RUN
    chip_auth: Check = Check.NOT_RUN
    terminal_auth: ta.TAResult = field(default_factory=ta.TAResult)
    fingers: tuple[cbeff.FingerImage, ...] = ()
    reasons: list[ReasonCode] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    steps: dict[str, StepStats] = field(default_factory=dict)
    elapsed_s: float = 0.0
    mrz_mismatch: tuple[str, ...] = ()

    def add(self, code: ReasonCode, why: str) -> None:
        if code not in self.reasons:
            self.reasons.append(code)
        self.errors.append(why)

    @property
    def apdus(self) -> int:
        return sum(s.apdus for s in self.steps.values())

    def result(self) -> ChipResult:
        return ChipResult(
            present=self.present,
            access_control=self.access_control,
            dg1=self.dg1,
            passive_auth=self.passive_auth,
            active_auth=self.active_auth,
            chip_auth=self.chip_auth,
            has_portrait=self.portrait is not None,
            reasons=tuple(self.reasons),
            apdus=self.apdus,
            elapsed_s=self.elapsed_s,
            terminal_auth=self.terminal_auth.check,
            terminal_auth_reason=self.terminal_auth.reason,
            fingers=tuple(f.position for f in self.fingers),
        )

    def to_json(self) -> dict[str, Any]:
        """The CLI's and the benchmark's view: no image bytes, sizes and timings only."""
        d = self.dg1
        return {
            "present": self.present,
            "access_control": self.access_control,
            "files": {k: len(v) for k, v in self.files.items()},
            "dg1": None
            if d is None
            else {
                "format": d.format,
                "document_code": d.document_code,
                "issuing_state": d.issuing_state,
                "surname": d.surname,
                "given_names": d.given_names,
                "document_number": d.document_number,
                "nationality": d.nationality,
                "date_of_birth": d.date_of_birth.isoformat() if d.date_of_birth else None,
                "sex": d.sex,
                "date_of_expiry": d.date_of_expiry.isoformat() if d.date_of_expiry else None,
                "optional_data": d.optional_data,
                "lines": list(d.lines),
            },
            "portrait": None
            if self.portrait is None
            else {
                "format": self.portrait.format,
                "container": self.portrait.container,
                "width": self.portrait.width,
                "height": self.portrait.height,
                "bytes": len(self.portrait.image),
            },
            "passive_auth": {
                "result": self.passive_auth.value,
                "reasons": [r.value for r in self.pa.reasons] if self.pa else [],
                "signature_valid": self.pa.signature_valid if self.pa else False,
                "dg_hashes": {str(k): v for k, v in self.pa.dg_hashes.items()} if self.pa else {},
                "ds_subject": self.pa.ds_subject if self.pa else "",
                "ds_valid_until": self.pa.ds_valid_until if self.pa else "",
                "csca_subject": self.pa.csca_subject if self.pa else "",
                "details": list(self.pa.details) if self.pa else [],
            },
            "active_auth": self.active_auth.value,
            "chip_auth": self.chip_auth.value,
            "terminal_auth": {
                "result": self.terminal_auth.check.value,
                "reason": self.terminal_auth.reason.value if self.terminal_auth.reason else None,
                "detail": self.terminal_auth.detail,
                "chain": list(self.terminal_auth.chain),
            },
            "fingers": [
                {
                    "position": f.position,
                    "compression": f.compression,
                    "width": f.width,
                    "height": f.height,
                    "ppi": f.resolution_ppi,
                    "bytes": len(f.image),
                }
                for f in self.fingers
            ],  # fmt: skip
            "mrz_mismatch": list(self.mrz_mismatch),
            "reasons": [r.value for r in self.reasons],
            "errors": self.errors,
            "apdus": self.apdus,
            "bytes": sum(s.bytes_in + s.bytes_out for s in self.steps.values()),
            "elapsed_ms": round(self.elapsed_s * 1000, 2),
            "steps": {
                k: {
                    "apdus": s.apdus,
                    "bytes_out": s.bytes_out,
                    "bytes_in": s.bytes_in,
                    "total_ms": round(s.total_s * 1000, 3),
                    "card_ms": round(s.card_s * 1000, 3),
                    "host_ms": round(max(0.0, s.total_s - s.card_s) * 1000, 3),
                }
                for k, s in self.steps.items()
            },
        }


def access_key(mrz: MrzRecord) -> str:
    """The MRZ information BAC and PACE derive their keys from."""
    number = mrz.document_number.replace("<", "")
    if len(number) <= 9 and mrz.document_number_raw:
        number = mrz.document_number_raw[:9].rstrip("<")  # as printed, fillers dropped
    # the raw fields may carry their check digit (the MRZ parser's form): keep YYMMDD
    birth = mrz.birth_raw[:6] or (mrz.date_of_birth.strftime("%y%m%d") if mrz.date_of_birth else "")
    expiry = mrz.expiry_raw[:6] or (
        mrz.date_of_expiry.strftime("%y%m%d") if mrz.date_of_expiry else ""
    )
    return bac.keys.mrz_information(number, birth, expiry)


def max_short_read(block: int) -> int:
    """Largest plain READ BINARY whose protected answer still fits a short response
    (256 bytes: DO87 + DO99 + DO8E): 231 for 3DES, 223 for AES."""
    for n in range(256, 0, -1):
        padded = (n // block + 1) * block
        do87 = 1 + len(tlv.encode_length(padded + 1)) + padded + 1
        if do87 + 4 + 10 <= 256:
            return n
    return 1


def mrz_differences(chip: MrzRecord, printed: MrzRecord) -> tuple[str, ...]:
    """Fields where the chip's DG1 and the optically read MRZ disagree."""
    if chip.lines and printed.lines and chip.lines == printed.lines:
        return ()
    names = (
        "document_number",
        "issuing_state",
        "nationality",
        "surname",
        "given_names",
        "date_of_birth",
        "date_of_expiry",
        "sex",
        "document_code",
    )
    diffs = tuple(n for n in names if getattr(chip, n) != getattr(printed, n))
    if not diffs and chip.lines and printed.lines and chip.lines != printed.lines:
        return ("lines",)
    return diffs


def atr_historical_bytes(atr: bytes) -> bytes:
    """The historical bytes of an ATR (ISO/IEC 7816-3 8.2), as far as the ATR holds them.

    The card writes the ATR: every count in it may lie, so a structure that runs past the
    end yields what is there (possibly nothing), never an error."""
    if len(atr) < 2:
        return b""
    k = atr[1] & 0x0F
    pos, y = 2, atr[1] >> 4
    while True:
        pos += bin(y).count("1")  # TA, TB, TC, TD present
        if not y & 0x8:
            break
        if pos - 1 >= len(atr):  # TDi announced but missing
            return b""
        y = atr[pos - 1] >> 4
    return atr[pos : pos + k]


def atr_extended_length(atr: bytes) -> bool:
    """Card capabilities (ISO 7816-4 8.1.1.2.7, compact-TLV ``73``) announce extended Lc/Le
    (third software function byte, b7). A missing or truncated object means no."""
    hist = atr_historical_bytes(atr)
    if not hist or hist[0] not in (0x00, 0x80):
        return False
    objs = hist[1:-3] if hist[0] == 0x00 else hist[1:]  # 00: three status bytes at the end
    i = 0
    while i < len(objs):
        tag, n = objs[i] >> 4, objs[i] & 0x0F
        value = objs[i + 1 : i + 1 + n]
        if len(value) < n:
            return False
        if tag == 0x7:
            return len(value) >= 3 and bool(value[2] & 0x40)
        i += 1 + n
    return False


class Reader:
    """Reads one document from a channel; see ``read_document``."""

    def __init__(self, channel: Channel, trust: pa.TrustStore, opts: ReadOptions) -> None:
        self.ch = channel
        self.trust = trust
        self.opts = opts

    # --- files ---------------------------------------------------------------------------

    def max_read(self) -> int:
        if self.ch.extended:
            return self.opts.max_extended_read
        return max_short_read(self.ch.sm.block if self.ch.sm else 8)

    def select_ef(self, fid: int, *, plain: bool = False) -> bool:
        data, sw = self.ch.send(APDU(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")), plain=plain)
        if sw == SW_OK:
            return True
        if sw in (0x6A82, 0x6A80, 0x6986):
            return False
        raise StatusError(sw, f"SELECT {fid:04X}")

    def read_binary(self, offset: int, n: int, *, plain: bool = False) -> tuple[bytes, int]:
        if offset <= 0x7FFF:
            return self.ch.send(APDU(0x00, 0xB0, offset >> 8, offset & 0xFF, ne=n), plain=plain)
        # offsets past 32767: READ BINARY with odd INS, offset in DO54, data in DO53
        off = offset.to_bytes((offset.bit_length() + 7) // 8, "big")
        ne = n + 1 + len(tlv.encode_length(n))  # the answer is DO53 around the data
        data, sw = self.ch.send(
            APDU(0x00, 0xB1, 0x00, 0x00, tlv.encode(0x54, off), ne=ne), plain=plain
        )
        if data:
            data = tlv.unwrap(data, 0x53)
        return data, sw

    def _refused(self, sw: int, fid: int) -> None:
        if sw == SW_WRONG_LENGTH and self.ch.extended:
            raise ExtendedLengthRefused(sw, f"READ BINARY {fid:04X}")

    def read_ef(self, fid: int, *, plain: bool = False) -> bytes | None:
        """The whole file, in as few READ BINARYs as the card's lengths allow; the first
        read asks for the largest chunk so small files take one APDU."""
        if not self.select_ef(fid, plain=plain):
            return None
        chunk = self.max_read()
        data, sw = self.read_binary(0, chunk, plain=plain)
        self._refused(sw, fid)
        if sw >> 8 == 0x6C:  # wrong Le; the card tells the right one
            data, sw = self.read_binary(0, sw & 0xFF or 256, plain=plain)
        if sw not in (SW_OK, SW_END_OF_FILE) or not data:
            raise StatusError(sw, f"READ BINARY {fid:04X}")
        total = tlv.header_size(data[:8]) if len(data) >= 2 else len(data)
        if total > MAX_FILE:
            raise LDSError(f"file {fid:04X} claims {total} bytes")
        buf = bytearray(data)
        while len(buf) < total:
            limit = chunk
            if len(buf) > 0x7FFF:  # B1: DO53's header must fit the same response
                limit = chunk - 1 - len(tlv.encode_length(chunk))
            n = min(limit, total - len(buf))
            part, sw = self.read_binary(len(buf), n, plain=plain)
            self._refused(sw, fid)
            if sw in (SW_END_OF_FILE, 0x6B00) and not part:
                raise LDSError(f"file {fid:04X} ends before its TLV length ({total})")
            if sw not in (SW_OK, SW_END_OF_FILE) or not part:
                raise StatusError(sw, f"READ BINARY {fid:04X} at {len(buf)}")
            buf += part
        return bytes(buf[:total])

    # --- the sequence ----------------------------------------------------------------------

    def access(self, key: str) -> None:
        ch = self.ch
        if self.opts.pace:
            ch.begin("card_access")
            try:
                card_access = self.read_ef(lds.FID_CARD_ACCESS, plain=True)
            except ExtendedLengthRefused:
                raise
            except (StatusError, ICAOError):
                card_access = None
            if card_access:
                from drivers.icao import pace  # PACE is optional; BAC needs none of it

                info = pace.choose(card_access)
                if info is not None:
                    ch.begin("pace")
                    try:
                        ch.sm = pace.perform(ch, key, info, keep=self._pace_keys)
                    except StatusError as exc:
                        # a 2048-bit DH value makes a 264-byte command: a card without
                        # extended length refuses it (6700); BAC needs none
                        if exc.sw != SW_WRONG_LENGTH:
                            raise
                        self.report.errors.append(f"PACE: {exc}, BAC instead")
                    else:
                        self.report.access_control = "PACE"
                        ch.check(APDU(0x00, 0xA4, 0x04, 0x0C, lds.AID_EMRTD), "SELECT eMRTD")
                        return
        ch.begin("bac")
        ch.check(APDU(0x00, 0xA4, 0x04, 0x0C, lds.AID_EMRTD), "SELECT eMRTD", plain=True)
        ch.sm = bac.perform(ch, key)
        self.report.access_control = "BAC"

    def run(self, printed: MrzRecord) -> ReadReport:
        """The whole read; whatever goes wrong ends it with a reason, keeping what was
        done (access control, files, APDU counts) in the report."""
        self.report = ReadReport()
        t0 = time.perf_counter()
        now = self.opts.now or dt.datetime.now(dt.UTC)
        try:
            try:
                self._run(printed, now)
            except ExtendedLengthRefused as exc:
                self._restart_short(exc)
                self._run(printed, now)
        except AccessError as exc:
            self.report.add(ReasonCode.CHIP_ACCESS_DENIED, str(exc))
        except SMError as exc:
            self.report.add(ReasonCode.CHIP_SM_ERROR, str(exc))
        except StatusError as exc:
            code = ReasonCode.CHIP_ACCESS_DENIED if exc.sw == 0x6982 else exc.reason
            if exc.sw == 0x6988:
                code = ReasonCode.CHIP_SM_ERROR
            self.report.add(code, str(exc))
        except ICAOError as exc:
            self.report.add(exc.reason, str(exc))
        except DeviceError as exc:  # card lost, APDU deadline: the transport's failure
            self.report.add(ReasonCode.CHIP_READ_ERROR, exc.detail)
        except Exception as exc:  # our bug on this chip's bytes: it ends with this document
            log.exception("chip read failed unexpectedly")
            self.report.add(ReasonCode.CHIP_READ_ERROR, f"internal error: {type(exc).__name__}")
        finally:
            self.ch.end()
            self.report.steps = self.ch.steps
            self.report.elapsed_s = time.perf_counter() - t0
        return self.report

    def _restart_short(self, exc: ExtendedLengthRefused) -> None:
        """The card claimed extended length (ATR, EF.ATR/INFO or configuration) and then
        refused a long Le: read the document again from access control on with short
        APDUs. Not resumed in place, as chips differ on whether the refused command
        counted in the secure-messaging counter; a plain command ends the session."""
        self.ch.extended = False
        self.ch.sm = None
        note = f"{exc}: extended length refused, read again with short APDUs"
        self.report = ReadReport(errors=[note])

    def _run(self, printed: MrzRecord, now: dt.datetime) -> None:
        r, ch = self.report, self.ch
        self._mrz_info = access_key(printed)
        self._pace_keys: dict[str, bytes] = {}
        self.access(self._mrz_info)
        ch.begin("COM")
        com_raw = self.read_ef(lds.FID_COM)
        listed: tuple[int, ...] = self.opts.groups
        if com_raw is not None:
            r.files["COM"] = com_raw
            listed = lds.parse_com(com_raw).data_groups
        dgs: dict[int, bytes] = {}
        for n in self.opts.groups:
            if n not in listed or n not in lds.DG:
                continue
            ch.begin(f"DG{n}")
            raw = self.read_ef(lds.DG[n][0])
            if raw is not None:
                dgs[n] = raw
                r.files[f"DG{n}"] = raw
        ch.begin("SOD")
        sod_raw = self.read_ef(lds.FID_SOD)
        ch.end()
        # parsing and verification: host CPU only
        ch.begin("parse")
        self._parse(dgs, printed)
        ch.begin("PA")
        if sod_raw is None:
            r.add(ReasonCode.CHIP_SOD_SIGNATURE, "no EF.SOD")
            r.passive_auth = Check.FAILED
        else:
            r.files["SOD"] = sod_raw
            r.pa = pa.verify(parse_sod(sod_raw), dgs, self.trust, now)
            r.passive_auth = Check.PASSED if r.pa.passed else Check.FAILED
            for code in r.pa.reasons:
                r.add(code, "passive authentication: " + code.value)
        if 15 in dgs:
            ch.begin("AA")
            self._active_auth(dgs)
        else:
            r.active_auth = Check.NOT_SUPPORTED
        ch.begin("CA")
        self._chip_auth(dgs)
        if self.opts.eac is not None and self._ca_done and sod_raw is not None:
            ch.begin("TA")
            self._eac(listed, sod_raw)

    def _chip_auth(self, dgs: dict[int, bytes]) -> None:
        r = self.report
        try:
            key = ca.find_key(lds.parse_dg14(dgs[14])) if 14 in dgs else None
        except UnsupportedKey as exc:
            r.add(exc.reason, f"chip authentication: {exc}")
            return  # not run: neither passed nor a clone verdict
        except ICAOError as exc:
            r.add(ReasonCode.CHIP_CA_FAILED, f"DG14: {exc}")
            r.chip_auth = Check.FAILED
            return
        if key is None:
            r.chip_auth = Check.NOT_SUPPORTED
            return
        eph = key.ephemeral()
        self._pk_pcd_comp = key.group().comp(eph[1])  # Comp(): x, or SHA-1 of a DH value

        def perform() -> bool:
            self._ca_done = ca.perform(self.ch, key, eph)
            return self._ca_done

        r.chip_auth = self._proof(
            perform,
            ReasonCode.CHIP_CA_FAILED,
            "chip cannot use its DG14 key",
            "chip authentication",
        )

    _ca_done = False  # chip authentication's session is on: TA may follow
    _pk_pcd_comp = b""

    def _eac(self, listed: tuple[int, ...], sod_raw: bytes) -> None:
        """Terminal authentication, then DG3/DG4. Whatever goes wrong here loses the
        fingerprints only: the result says why, the chip's verdict is untouched (a DG3
        that does not match its signed hash is the one exception: forged chip data)."""
        r, ch = self.report, self.ch
        state = r.dg1.issuing_state if r.dg1 else ""
        terminal = (self.opts.eac or {}).get(state)
        if 3 not in listed and 4 not in listed:
            r.terminal_auth = ta.TAResult(Check.NOT_SUPPORTED, None, "no DG3/DG4 on the chip")
            return
        if terminal is None:
            r.terminal_auth = ta.TAResult(
                Check.NOT_RUN, ReasonCode.CHIP_TA_NO_CHAIN, f"no EAC trust folder for {state}"
            )
            return
        try:
            trusted: tuple[str, ...] = ()
            raw = None  # EF.CVCA is not one TLV: up to two CARs, zero-padded to 36 bytes
            if self.select_ef(ta.FID_CVCA):
                raw, sw = self.read_binary(0, 36)
                if sw not in (SW_OK, SW_END_OF_FILE):
                    raw = None
            if raw:
                trusted = ta.parse_ef_cvca(raw)
            r.terminal_auth = ta.perform(
                ch, terminal, trusted, self._id_picc(), self._pk_pcd_comp,
                (self.opts.now or dt.datetime.now(dt.UTC)).date(),
            )  # fmt: skip
            if not r.terminal_auth.passed:
                return
            fingers: list[cbeff.FingerImage] = []
            signed = parse_sod(sod_raw)
            hashes = signed.hashes
            for n in (3, 4):
                if n not in listed or n not in hashes:
                    continue
                ch.begin(f"DG{n}")
                data = self.read_ef(lds.DG[n][0])
                if data is None:
                    continue
                r.files[f"DG{n}"] = data
                digest = hashlib.new(signed.digest_algorithm, data).digest()
                if digest != hashes[n]:
                    r.add(ReasonCode.CHIP_DG_HASH, f"DG{n} does not match its SOD hash")
                    return
                if n == 3:
                    fingers += cbeff.parse_dg3(data)
            r.fingers = tuple(fingers)
        except (ICAOError, DeviceError) as exc:
            detail = exc.detail if isinstance(exc, DeviceError) else str(exc)
            log.info("EAC ended: %s", detail)
            self._eac_failed(detail)
        except Exception as exc:  # our bug on this chip's bytes: the thumb channel only
            log.exception("EAC failed unexpectedly")
            self._eac_failed(f"internal error: {type(exc).__name__}")

    def _eac_failed(self, detail: str) -> None:
        r = self.report
        if r.terminal_auth.passed:
            r.terminal_auth.detail = f"DG3/DG4 not read: {detail}"
            r.fingers = ()
        else:
            r.terminal_auth = ta.TAResult(Check.FAILED, ReasonCode.CHIP_TA_REFUSED, detail)

    def _id_picc(self) -> bytes:
        """After PACE, Comp() of the chip's ephemeral PACE key; after BAC, the document
        number and its check digit (ICAO 9303-11 7.1, BSI TR-03110)."""
        return self._pace_keys.get("picc_key") or ta.id_picc(self._mrz_info)

    def _parse(self, dgs: dict[int, bytes], printed: MrzRecord) -> None:
        r = self.report
        if 1 not in dgs:
            r.add(ReasonCode.CHIP_MALFORMED, "no DG1")
        else:
            try:
                r.dg1 = lds.dg1_to_mrz(lds.parse_dg1(dgs[1]))
            except ICAOError as exc:
                r.add(ReasonCode.CHIP_MALFORMED, f"DG1: {exc}")
            else:
                if self.opts.cross_check:
                    r.mrz_mismatch = mrz_differences(r.dg1, printed)
                if r.mrz_mismatch:
                    r.add(ReasonCode.CHIP_MRZ_MISMATCH, "DG1 differs: " + ",".join(r.mrz_mismatch))
        if 2 not in dgs:
            r.add(ReasonCode.CHIP_NO_PORTRAIT, "no DG2")
        else:
            try:
                r.portrait = lds.parse_dg2(dgs[2])
            except ICAOError as exc:
                r.add(ReasonCode.CHIP_NO_PORTRAIT, f"DG2: {exc}")

    def _active_auth(self, dgs: dict[int, bytes]) -> None:
        r = self.report
        try:
            spki = lds.parse_dg15(dgs[15])
            oid = lds.aa_signature_oid(lds.parse_dg14(dgs[14])) if 14 in dgs else None
        except ICAOError as exc:
            r.add(ReasonCode.CHIP_AA_FAILED, f"DG14/DG15: {exc}")
            r.active_auth = Check.FAILED
            return
        r.active_auth = self._proof(
            lambda: aa.perform(self.ch, spki, oid),
            ReasonCode.CHIP_AA_FAILED,
            "INTERNAL AUTHENTICATE signature does not verify",
            "active authentication",
        )

    def _proof(
        self, perform: Callable[[], bool], code: ReasonCode, failed: str, what: str
    ) -> Check:
        """Outcome of a clone check (AA, CA). A good answer counts only with passed PA:
        a clone may carry its own DG14/DG15 key, which proves nothing unsigned."""
        r = self.report
        try:
            ok = perform()
        except UnsupportedKey as exc:
            r.add(exc.reason, f"{what}: {exc}")
            return Check.NOT_RUN  # the check could not be done: no clone verdict either way
        except StatusError as exc:
            ok = False
            r.errors.append(str(exc))
        if not ok:
            r.add(code, failed)
            return Check.FAILED
        if r.passive_auth is Check.PASSED:
            return Check.PASSED
        r.errors.append(f"{what} not counted: passive authentication failed")
        return Check.NOT_RUN


def read_document(
    transmit: Transmit,
    printed: MrzRecord,
    trust: pa.TrustStore,
    opts: ReadOptions | None = None,
    atr: bytes = b"",
) -> ReadReport:
    """Read and verify the document on ``transmit``; never raises: transport failures
    (``DeviceError``) are ``chip_read_error`` in the report, beside what was done."""
    opts = opts or ReadOptions()
    ext = opts.extended_length if opts.extended_length is not None else atr_extended_length(atr)
    ch = Channel(transmit, extended=ext)
    return Reader(ch, trust, opts).run(printed)


__all__ = ["ReadOptions", "ReadReport", "read_document", "access_key", "LDSError"]
