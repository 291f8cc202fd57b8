"""A throwaway issuing-state PKI for the virtual chip: CSCA -> Document Signer, and CRLs.

Generated at test time (nothing secret is committed). ``signature`` picks the Document
Signer's algorithm so passive authentication is exercised with ECDSA, RSA PKCS#1 v1.5
and RSA-PSS, as real passports use all three.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

UTC = dt.UTC


def _name(cn: str, country: str = "UT") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Utopia Passport Office"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key(kind: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(65537, 2048)


@dataclass
class PKI:
    csca_key: object
    csca: x509.Certificate
    ds_key: object
    ds: x509.Certificate
    signature: str  # "ecdsa", "rsa", "rsa-pss"

    @property
    def cms_signature_algorithm(self) -> str:
        return {"ecdsa": "sha256_ecdsa", "rsa": "sha256_rsa", "rsa-pss": "rsassa_pss"}[
            self.signature
        ]

    def sign(self, data: bytes) -> bytes:
        """The Document Signer's signature over ``data`` (SOD signed attributes)."""
        key = self.ds_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(hashes.SHA256()))
        assert isinstance(key, rsa.RSAPrivateKey)
        if self.signature == "rsa-pss":
            return key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def crl(self, revoked_serials: list[int], now: dt.datetime | None = None) -> bytes:
        now = now or dt.datetime.now(UTC)
        b = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.csca.subject)
            .last_update(now - dt.timedelta(days=1))
            .next_update(now + dt.timedelta(days=30))
        )
        for serial in revoked_serials:
            b = b.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(now - dt.timedelta(hours=1))
                .build()
            )
        return b.sign(self.csca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]

    def write_csca(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "csca.der"
        path.write_bytes(self.csca.public_bytes(serialization.Encoding.DER))
        return path


def make_pki(
    signature: str = "ecdsa",
    ds_expired: bool = False,
    now: dt.datetime | None = None,
    country: str = "UT",
) -> PKI:
    now = now or dt.datetime.now(UTC)
    csca_key = _key("ecdsa")
    csca_name = _name("CSCA Utopia", country)
    csca = (
        x509.CertificateBuilder()
        .subject_name(csca_name)
        .issuer_name(csca_name)
        .public_key(csca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=3650))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csca_key.public_key()), False)
        .sign(csca_key, hashes.SHA256())
    )
    ds_key = _key("ecdsa" if signature == "ecdsa" else "rsa")
    start = now - dt.timedelta(days=400 if ds_expired else 30)
    end = now - dt.timedelta(days=35) if ds_expired else now + dt.timedelta(days=365)
    ds = (
        x509.CertificateBuilder()
        .subject_name(_name("Document Signer Utopia", country))
        .issuer_name(csca_name)
        .public_key(ds_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(csca_key.public_key()), False
        )
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
        )
        .sign(csca_key, hashes.SHA256())
    )
    return PKI(csca_key, csca, ds_key, ds, signature)


def master_list(cscas: list[x509.Certificate], signer: PKI) -> bytes:
    """An ICAO CSCA master list (CMS SignedData over CscaMasterList), signed by ``signer``'s
    Document Signer key standing in for a master list signer."""
    import hashlib

    from asn1crypto import cms, core
    from asn1crypto import x509 as a_x509

    from drivers.icao.pa import OID_MASTER_LIST, _CscaMasterList

    certs = [a_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in cscas]
    content = _CscaMasterList({"version": 0, "cert_list": certs}).dump()
    attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": [OID_MASTER_LIST]},
            {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
        ]
    )
    ds = a_x509.Certificate.load(signer.ds.public_bytes(serialization.Encoding.DER))
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": {
                        "issuer": ds.issuer,
                        "serial_number": ds.serial_number,
                    }
                }
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": attrs,
            "signature_algorithm": {"algorithm": signer.cms_signature_algorithm},
            "signature": signer.sign(attrs.dump()),
        }
    )
    sd = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {
                "content_type": OID_MASTER_LIST,
                "content": core.ParsableOctetString(content),
            },
            "certificates": [ds],
            "signer_infos": [signer_info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump()
