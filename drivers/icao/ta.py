"""EAC terminal authentication v1 (BSI TR-03110 as ICAO 9303-11 uses it), after chip
authentication: the gate proves to the chip that its issuing state authorised it to read
the fingerprints (DG3) and irises (DG4).

The terminal's configuration is a trust folder per issuing state (``<dir>/<state>/``):
the state's CVCA certificates (self-signed and link), the DV certificate, the inspection
system (IS) certificate and ``terminal.pem``, its private key. The chip names the CVCA
keys it trusts in EF.CVCA; the chain sent starts at one of them, through link
certificates where the chip is older than the current CVCA.

Steps (each over the chip-authentication session): per certificate MSE:Set DST (its
CAR) and PSO:Verify Certificate; MSE:Set AT (the IS CHR); GET CHALLENGE; EXTERNAL
AUTHENTICATE with the IS key's signature over ``ID_PICC || r_PICC || Comp(PK_PCD)``
(``PK_PCD`` our chip-authentication ephemeral key, compressed to its x-coordinate).
Every refusal is a ``TAResult`` with its reason code; TA never raises past ``perform``
except for the transport's own failures.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from drivers.icao import cvc, tlv
from drivers.icao.apdu import APDU, SW_OK, Channel
from drivers.icao.errors import ICAOError, SMError, TLVError
from gate.reasons import ReasonCode
from gate.results import Check

log = logging.getLogger(__name__)

FID_CVCA = 0x011C  # EF.CVCA inside the eMRTD application (the same FID as EF.CardAccess)
MAX_LINKS = 8


@dataclass(frozen=True)
class Terminal:
    """What the gate holds for one issuing state."""

    state: str
    certificates: tuple[cvc.CVC, ...]  # CVCA (self-signed and link), DV, IS
    is_cert: cvc.CVC
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass
class TAResult:
    check: Check = Check.NOT_RUN
    reason: ReasonCode | None = None
    detail: str = ""
    chain: tuple[str, ...] = ()  # CHRs sent, in order

    @property
    def passed(self) -> bool:
        return self.check is Check.PASSED


class TrustError(ValueError):
    """A trust folder the gate cannot use (configuration, not the chip's fault)."""


def load_folder(folder: Path) -> Terminal:
    """One state's folder: every ``*.cvcert`` and ``terminal.pem``; the IS certificate is
    the one whose public key matches the private key."""
    certs = []
    for p in sorted(folder.glob("*.cvcert")):
        try:
            certs.append(cvc.parse(p.read_bytes()))
        except ICAOError as exc:
            raise TrustError(f"{p}: {exc}") from None
    try:
        key = serialization.load_pem_private_key((folder / "terminal.pem").read_bytes(), None)
    except (OSError, ValueError) as exc:
        raise TrustError(f"{folder}/terminal.pem: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TrustError(f"{folder}/terminal.pem is neither an EC nor an RSA key")
    is_certs = [
        c
        for c in certs
        if c.chat.role == cvc.ROLE_IS
        and cvc.public_key_of(key, c.key.oid, False).fields == c.key.fields
    ]
    if not is_certs:
        raise TrustError(f"{folder}: no IS certificate for terminal.pem's key")
    is_cert = max(is_certs, key=lambda c: c.expiry)
    return Terminal(folder.name.upper(), tuple(certs), is_cert, key)


def load_trust(root: Path) -> dict[str, Terminal]:
    """Every state folder under ``root``, by issuing state (``UTO``, ``D``...)."""
    return {t.state: t for t in (load_folder(d) for d in sorted(root.iterdir()) if d.is_dir())}


def parse_ef_cvca(raw: bytes) -> tuple[str, ...]:
    """The CARs (one or two ``42`` objects, zero-padded) of the CVCA keys the chip trusts."""
    data = raw.rstrip(b"\x00")
    cars = []
    for tag, value in tlv.iter_tlv(data):
        if tag != 0x42:
            raise ICAOError(f"EF.CVCA holds tag {tag:X}, not a CAR")
        cars.append(value.decode("ascii", "replace"))
    if len(cars) > 2:
        raise ICAOError("EF.CVCA names more than two CVCA keys")
    return tuple(cars)


def chain_to(
    terminal: Terminal, trusted: tuple[str, ...]
) -> tuple[list[cvc.CVC], cvc.CVPublicKey | None]:
    """The certificates to send, from one signed by a CVCA key the chip trusts down to
    the IS certificate, and the CVCA key whose domain parameters the chain inherits.
    Empty if no chain reaches one of ``trusted`` (all CVCA keys we know if empty)."""
    by_chr: dict[str, list[cvc.CVC]] = {}
    for c in terminal.certificates:
        by_chr.setdefault(c.chr, []).append(c)
    roots = {c.chr: c for c in terminal.certificates if c.chat.role == cvc.ROLE_CVCA}
    targets = set(trusted) if trusted else {c.chr for c in roots.values() if not c.is_link}
    chain = [terminal.is_cert]
    dv = next((c for c in by_chr.get(terminal.is_cert.car, []) if c.chat.role != cvc.ROLE_IS), None)
    if dv is None:
        return [], None
    chain.insert(0, dv)
    car = dv.car
    for _ in range(MAX_LINKS):
        if car in targets:
            root = next((c for c in by_chr.get(car, []) if _is_root(c)), None)
            return chain, root.key if root else None
        link = next((c for c in by_chr.get(car, []) if c.is_link), None)
        if link is None:
            return [], None
        chain.insert(0, link)
        car = link.car
    return [], None


def _is_root(c: cvc.CVC) -> bool:
    """A CVCA certificate whose key verifies the chain (an ECDSA one with its curve)."""
    return c.chat.role == cvc.ROLE_CVCA and (c.key.has_domain or not c.key.is_ecdsa)


def check_chain(chain: list[cvc.CVC], root: cvc.CVPublicKey | None) -> str:
    """Our own check of the chain's signatures before the chip sees it ("" if good): a
    misconfigured folder is found here, not as a chip's refusal."""
    if root is None:
        return "the chip's CVCA certificate is not in the trust folder"
    issuer, domain = root, root
    for cert in chain:
        try:
            if not cvc.verify(cert, issuer, domain):
                return f"{cert.chr} is not signed by {cert.car}"
        except ICAOError as exc:
            return f"{cert.chr}: {exc}"
        issuer = cert.key
        if cert.key.has_domain:
            domain = cert.key
    return ""


def chip_date(chain: list[cvc.CVC], today: dt.date) -> dt.date:
    """The least date the chip will hold once it has verified ``chain``: CVCA, link and
    domestic DV certificates move a chip's date forward to their effective date."""
    dates = [c.effective for c in chain if c.chat.role in (cvc.ROLE_CVCA, cvc.ROLE_DV_DOMESTIC)]
    return max([today, *dates]) if dates else today


def id_picc(mrz_info: str) -> bytes:
    """ID_PICC of TA v1: the document number and its check digit, the head of the MRZ
    information BAC and PACE use (birth and expiry with their digits are the last 14)."""
    return mrz_info[:-14].encode()


def signed_data(id_picc: bytes, r_picc: bytes, pk_pcd_comp: bytes) -> bytes:
    return id_picc + r_picc + pk_pcd_comp


def perform(
    channel: Channel,
    terminal: Terminal,
    trusted: tuple[str, ...],
    id_picc: bytes,
    pk_pcd_comp: bytes,
    today: dt.date,
) -> TAResult:
    """Run TA over ``channel`` (chip authentication's session). A refusal is the result's
    reason; an SM failure or a lost card is the caller's (the read ends there)."""
    res = TAResult()
    chain, root = chain_to(terminal, trusted)
    if not chain:
        return _fail(res, ReasonCode.CHIP_TA_NO_CHAIN, f"no chain to {', '.join(trusted)}")
    res.chain = tuple(c.chr for c in chain)
    why = check_chain(chain, root)
    if why:
        return _fail(res, ReasonCode.CHIP_TA_NO_CHAIN, why)
    is_cert = chain[-1]
    day = chip_date(chain, today)
    for c in chain:
        if c.expiry < day:
            return _fail(res, ReasonCode.CHIP_TA_CERT_EXPIRED, f"{c.chr} expired {c.expiry}")
    for c in chain:
        for cmd, what in (
            (APDU(0x00, 0x22, 0x81, 0xB6, tlv.encode(0x83, c.car.encode())), "MSE:Set DST"),
            (APDU(0x00, 0x2A, 0x00, 0xBE, c.command_data), "PSO:Verify Certificate"),
        ):
            _, sw = channel.send(cmd)
            if sw != SW_OK:
                return _fail(res, ReasonCode.CHIP_TA_REFUSED, f"{what} {c.chr}: {sw:04X}")
    _, sw = channel.send(APDU(0x00, 0x22, 0x81, 0xA4, tlv.encode(0x83, is_cert.chr.encode())))
    if sw != SW_OK:
        return _fail(res, ReasonCode.CHIP_TA_REFUSED, f"MSE:Set AT: {sw:04X}")
    r_picc, sw = channel.send(APDU(0x00, 0x84, 0x00, 0x00, ne=8))
    if sw != SW_OK or len(r_picc) != 8:
        return _fail(res, ReasonCode.CHIP_TA_REFUSED, f"GET CHALLENGE: {sw:04X}")
    sig = cvc.sign(terminal.key, is_cert.key.oid, signed_data(id_picc, r_picc, pk_pcd_comp))
    _, sw = channel.send(APDU(0x00, 0x82, 0x00, 0x00, sig))
    if sw != SW_OK:
        return _fail(res, ReasonCode.CHIP_TA_REFUSED, f"EXTERNAL AUTHENTICATE: {sw:04X}")
    res.check = Check.PASSED
    return res


def _fail(res: TAResult, code: ReasonCode, why: str) -> TAResult:
    log.info("terminal authentication: %s (%s)", code.value, why)
    res.check, res.reason, res.detail = Check.FAILED, code, why
    return res


__all__ = ["Terminal", "TAResult", "TrustError", "load_trust", "perform", "SMError", "TLVError"]
