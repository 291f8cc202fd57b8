"""Passive authentication (ICAO 9303-11 5.1): EF.SOD signature, Document Signer -> CSCA,
CRLs, and every read data group's hash.

Certificates and signatures go through ``cryptography`` (RSA PKCS#1 v1.5, RSA-PSS,
ECDSA); the CMS structure through ``asn1crypto`` (``sod.py``, master lists here). Every
problem becomes a reason code in the result; nothing a chip or trust store holds makes
this raise.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import cms, core
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from drivers.icao.sod import OID_LDS_SECURITY_OBJECT, SOD
from gate.reasons import ReasonCode

log = logging.getLogger(__name__)

OID_MASTER_LIST = "2.23.136.1.1.2"
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class _CscaMasterList(core.Sequence):
    _fields = [("version", core.Integer), ("cert_list", core.SetOf, {"spec": a_x509.Certificate})]


def _load_cert(data: bytes) -> x509.Certificate:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def parse_master_list(data: bytes) -> list[x509.Certificate]:
    """CSCA certificates of an ICAO master list (CMS SignedData over CscaMasterList).

    The master list signer is not checked here: the file is trusted as installed by the
    operator (as a CSCA folder is)."""
    try:
        ci = cms.ContentInfo.load(data)
        encap = ci["content"]["encap_content_info"]
        if encap["content_type"].dotted != OID_MASTER_LIST:
            raise ValueError("content is not a CscaMasterList")
        ml = _CscaMasterList.load(bytes(encap["content"]))
        certs = list(ml["cert_list"])
    except Exception as exc:  # asn1crypto: ValueError, TypeError, KeyError...
        raise ValueError(f"not an ICAO master list: {exc}") from None
    out = []
    for c in certs:
        try:
            out.append(x509.load_der_x509_certificate(c.dump()))
        except ValueError as exc:  # e.g. explicit EC parameters, unsupported by cryptography
            log.warning("master list: skipped a CSCA certificate: %s", exc)
    return out


def _master_list_file(path: Path) -> list[x509.Certificate]:
    """A master list file's CSCAs; a damaged one names itself (ValueError): it holds
    every issuer's CSCA, so the start stops rather than refer every traveller."""
    try:
        return parse_master_list(path.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


@dataclass
class TrustStore:
    """CSCA certificates (folder and/or master list) and CRLs, loaded once at start."""

    cscas: list[x509.Certificate] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)

    @classmethod
    def load(
        cls,
        csca_dir: Path | None = None,
        master_list: Path | None = None,
        crl_dir: Path | None = None,
    ) -> TrustStore:
        store = cls()
        if csca_dir is not None:
            for p in sorted(Path(csca_dir).glob("*")):
                if p.suffix.lower() in (".der", ".cer", ".crt", ".pem"):
                    try:
                        store.cscas.append(_load_cert(p.read_bytes()))
                    except ValueError as exc:
                        log.warning("CSCA %s skipped: %s", p, exc)
                elif p.suffix.lower() == ".ml":
                    store.cscas.extend(_master_list_file(p))
        if master_list is not None:
            store.cscas.extend(_master_list_file(Path(master_list)))
        if crl_dir is not None:
            for p in sorted(Path(crl_dir).glob("*.crl")):
                data = p.read_bytes()
                try:
                    if data.lstrip().startswith(b"-----BEGIN"):
                        store.crls.append(x509.load_pem_x509_crl(data))
                    else:
                        store.crls.append(x509.load_der_x509_crl(data))
                except ValueError as exc:
                    log.warning("CRL %s skipped: %s", p, exc)
        return store


@dataclass(frozen=True)
class PAResult:
    passed: bool
    reasons: tuple[ReasonCode, ...]
    signature_valid: bool
    dg_hashes: dict[int, bool | None]  # None: the group is not in the SOD
    ds_subject: str = ""
    ds_valid_until: str = ""
    csca_subject: str = ""
    details: tuple[str, ...] = ()


def verify_signature(
    key: object, signature: bytes, data: bytes, algo: str, hash_name: str, salt: int | None = None
) -> bool:
    """One CMS/X.509 signature with a public key: PKCS#1 v1.5, PSS or ECDSA."""
    h = _HASHES[hash_name]()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            pad: padding.AsymmetricPadding
            if algo == "rsassa_pss":
                pad = padding.PSS(padding.MGF1(h), salt if salt is not None else h.digest_size)
            else:
                pad = padding.PKCS1v15()
            key.verify(signature, data, pad, h)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(h))
        else:
            return False
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return False
    return True


def _cert_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        params = cert.signature_algorithm_parameters
        key = issuer.public_key()
        h = cert.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, params, h)  # type: ignore[arg-type]
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, params)  # type: ignore[arg-type]
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _key_id(cert: x509.Certificate, ext: type) -> bytes | None:
    try:
        value: object = cert.extensions.get_extension_for_class(ext).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    return getattr(value, "key_identifier", None) or getattr(value, "digest", None)


def _find_ds(sod: SOD) -> x509.Certificate | None:
    for der in sod.certificates:
        try:
            cert = x509.load_der_x509_certificate(der)
        except Exception:  # the chip's bytes: InvalidVersion, ValueError, ...
            continue
        if sod.sid_issuer_serial is not None:
            issuer_der, serial = sod.sid_issuer_serial
            if cert.serial_number == serial and cert.issuer.public_bytes() == issuer_der:
                return cert
        elif (
            sod.sid_key_id is not None
            and _key_id(cert, x509.SubjectKeyIdentifier) == sod.sid_key_id
        ):
            return cert
    return None


def _valid_at(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def verify(
    sod: SOD, data_groups: dict[int, bytes], trust: TrustStore, now: dt.datetime
) -> PAResult:
    """Passive authentication of ``data_groups`` (raw files as read) against ``sod``."""
    reasons: list[ReasonCode] = []
    details: list[str] = []

    def fail(code: ReasonCode, why: str) -> None:
        if code not in reasons:
            reasons.append(code)
        details.append(why)

    # 1. data group hashes
    dg_ok: dict[int, bool | None] = {}
    for n, raw in sorted(data_groups.items()):
        expected = sod.hashes.get(n)
        if expected is None:
            dg_ok[n] = None
            fail(ReasonCode.CHIP_DG_HASH, f"DG{n} is not in the SOD")
            continue
        dg_ok[n] = hmac.compare_digest(hashlib.new(sod.digest_algorithm, raw).digest(), expected)
        if not dg_ok[n]:
            fail(ReasonCode.CHIP_DG_HASH, f"DG{n} hash differs from the SOD")

    # 2. the signed attributes bind the LDSSecurityObject
    if sod.econtent_type != OID_LDS_SECURITY_OBJECT:
        fail(ReasonCode.CHIP_SOD_SIGNATURE, "encapsulated content is not an LDSSecurityObject")
    if sod.signed_attrs is not None:
        digest = hashlib.new(sod.signer_digest_algorithm, sod.econtent).digest()
        if sod.message_digest_attr is None or not hmac.compare_digest(
            digest, sod.message_digest_attr
        ):
            fail(ReasonCode.CHIP_SOD_SIGNATURE, "messageDigest attribute does not match")
        if sod.content_type_attr != OID_LDS_SECURITY_OBJECT:
            fail(ReasonCode.CHIP_SOD_SIGNATURE, "contentType attribute is not ldsSecurityObject")
    signed = sod.signed_attrs if sod.signed_attrs is not None else sod.econtent

    # 3.-6. signature, DS certificate and its chain; a certificate that cryptography
    # cannot use (bad encodings inside it surface lazily) is an invalid chain, not a crash
    try:
        signature_valid, ds_subject, ds_until, csca_subject = _verify_ds(
            sod, signed, trust, now, fail, details
        )
    except Exception as exc:
        signature_valid, ds_subject, ds_until, csca_subject = False, "", "", ""
        fail(ReasonCode.CHIP_CHAIN_INVALID, f"DS certificate unusable: {type(exc).__name__}")
    return PAResult(
        passed=not reasons,
        reasons=tuple(reasons),
        signature_valid=signature_valid,
        dg_hashes=dg_ok,
        ds_subject=ds_subject,
        ds_valid_until=ds_until,
        csca_subject=csca_subject,
        details=tuple(details),
    )


def _verify_ds(
    sod: SOD,
    signed: bytes,
    trust: TrustStore,
    now: dt.datetime,
    fail: Callable[[ReasonCode, str], None],
    details: list[str],
) -> tuple[bool, str, str, str]:
    ds = _find_ds(sod)
    signature_valid = False
    ds_subject = ds_until = csca_subject = ""
    if ds is None:
        fail(ReasonCode.CHIP_CHAIN_INVALID, "no Document Signer certificate in the SOD")
    else:
        ds_subject = ds.subject.rfc4514_string()
        ds_until = ds.not_valid_after_utc.isoformat()
        try:
            key = ds.public_key()
        except (ValueError, UnsupportedAlgorithm) as exc:
            key = None
            details.append(f"DS key unsupported: {exc}")
        signature_valid = key is not None and verify_signature(
            key, sod.signature, signed, sod.signature_algorithm, sod.signature_hash, sod.pss_salt
        )
        if not signature_valid:
            fail(ReasonCode.CHIP_SOD_SIGNATURE, "SOD signature does not verify with the DS key")
        # 4. DS validity
        if not _valid_at(ds, now):
            fail(ReasonCode.CHIP_DS_EXPIRED, f"DS certificate valid until {ds_until}")
        # 5. chain to a trusted CSCA
        aki = _key_id(ds, x509.AuthorityKeyIdentifier)
        candidates = [
            c
            for c in trust.cscas
            if c.subject == ds.issuer
            and (aki is None or _key_id(c, x509.SubjectKeyIdentifier) in (None, aki))
        ]
        if not candidates:
            fail(ReasonCode.CHIP_CSCA_UNKNOWN, f"no CSCA for issuer {ds.issuer.rfc4514_string()}")
        else:
            csca = next((c for c in candidates if _cert_signed_by(ds, c)), None)
            if csca is None:
                fail(ReasonCode.CHIP_CHAIN_INVALID, "DS certificate not signed by a trusted CSCA")
            else:
                csca_subject = csca.subject.rfc4514_string()
                # 6. revocation, on CRLs the CSCA signed
                for crl in trust.crls:
                    if crl.issuer != csca.subject:
                        continue
                    try:
                        good = crl.is_signature_valid(csca.public_key())  # type: ignore[arg-type]
                    except (TypeError, ValueError, UnsupportedAlgorithm):
                        good = False
                    if not good:
                        details.append("a CRL of this CSCA has a bad signature: ignored")
                        continue
                    if crl.get_revoked_certificate_by_serial_number(ds.serial_number):
                        fail(ReasonCode.CHIP_DS_REVOKED, "DS certificate is on the CSCA's CRL")
    return signature_valid, ds_subject, ds_until, csca_subject
