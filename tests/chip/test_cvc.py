"""Card-verifiable certificates: the BSI test PKI's CVCA, the virtual chip's test PKI,
and every way a certificate can be malformed or fail to verify."""

from __future__ import annotations

import datetime as dt

import pytest

from drivers.icao import cvc, tlv
from drivers.icao.errors import ICAOError, TLVError
from sim import eac_pki

# The BSI test PKI's CVCA root DETESTeID00005 (valid 2015-05-04 to 2018-05-04), a public
# certificate as the PersoSim simulator ships it (DefaultPersoTestPki.java).
BSI_CVCA = bytes.fromhex(
    "7F218201B67F4E82016E5F290100420E44455445535465494430303030357F4982011D060A04007F00070202"
    "02020381 20A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E537782207D5A0975"
    "FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9832026DC5C6CE94A4B44F330B5D9BBD7"
    "7CBF958416295CF7E1CE6BCCDC18FF8C07B68441048BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23"
    "C23A4453BD9ACE3262547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997852 0A9"
    "FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A78641049BFEBA8DC7FAAB6E3BDE"
    "B3FF794DBB800848FE4F6940A4CC7EECB5159C87DA5395505892026D420A22596CD014ED1FD872DADA597DB0"
    "F8D64441041198F62D448701015F200E44455445535465494430303030357F4C12060904007F000703010202"
    "5305FC0F13FFFF5F25060105000500045F24060108000500045F374058B4E65598EFB9CA2CAFC05C80F5A907"
    "E8B69C3897C704739320896DC53492E47766841A9C3D4EAC85CE653D166B53DB06A70E735AB93C88858811EF"
    "69D6B543".replace(" ", "")
)


def test_bsi_cvca_parses_field_by_field_and_verifies_itself() -> None:
    c = cvc.parse(BSI_CVCA)
    assert c.car == c.chr == "DETESTeID00005"
    assert c.key.oid == "0.4.0.127.0.7.2.2.2.2.3"  # id-TA-ECDSA-SHA-256
    assert c.key.has_domain and cvc.curve_of(c.key)[0].name == "brainpoolP256r1"
    assert c.chat.oid == "0.4.0.127.0.7.3.1.2.2"  # id-AT (an eID CVCA)
    assert c.chat.role == cvc.ROLE_CVCA
    assert (c.effective, c.expiry) == (dt.date(2015, 5, 4), dt.date(2018, 5, 4))
    assert c.raw == BSI_CVCA
    assert cvc.verify(c, c.key)


def test_a_flipped_signature_bit_does_not_verify() -> None:
    c = cvc.parse(BSI_CVCA)
    bad = cvc.assemble(c.body, c.signature[:-1] + bytes([c.signature[-1] ^ 1]))
    assert not cvc.verify(bad, c.key)


def test_built_certificates_round_trip_and_chain() -> None:
    p = eac_pki.make()
    for cert in p.certificates().values():
        assert cvc.parse(cert.raw) == cert
    assert cvc.verify(p.link, p.cvca_old.key)
    assert p.link.is_link and not p.cvca.is_link
    assert cvc.verify(p.dv, p.cvca.key)
    assert cvc.verify(p.is_cert, p.dv.key, domain=p.cvca.key)  # IS key inherits the curve
    assert not cvc.verify(p.dv, p.cvca_old.key)  # signed by the new CVCA, not the old
    assert p.is_cert.chat.may_read(3) and p.is_cert.chat.may_read(4)
    assert not p.is_expired.valid_on(dt.date(2026, 12, 7))


def test_rsa_chain_verifies() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    oid = cvc.ID_TA_RSA + ".4"  # RSA-PSS SHA-256
    root = rsa.generate_private_key(65537, 2048)
    dv = rsa.generate_private_key(65537, 2048)
    d0, d1 = dt.date(2026, 1, 1), dt.date(2027, 1, 1)
    pub = cvc.public_key_of(root, oid, with_domain=True)
    ca = cvc.assemble(
        b := cvc.build_body("UTRSA00001", "UTRSA00001", pub, cvc.ROLE_CVCA, 3, d0, d1),
        cvc.sign(root, oid, b),
    )
    dv_body = cvc.build_body(
        ca.chr, "UTDVRSA00001", cvc.public_key_of(dv, oid, False), cvc.ROLE_DV_DOMESTIC, 3, d0, d1
    )
    dv_cert = cvc.assemble(dv_body, cvc.sign(root, oid, dv_body))
    assert cvc.verify(ca, ca.key) and cvc.verify(dv_cert, ca.key)
    assert not cvc.verify(dv_cert, dv_cert.key)


def _replace(raw: bytes, old: bytes, new: bytes) -> bytes:
    body = cvc.parse(raw).body
    inner = tlv.unwrap(body, 0x7F4E).replace(old, new, 1)
    return tlv.encode(0x7F21, tlv.encode(0x7F4E, inner) + tlv.encode(0x5F37, b"\x00" * 64))


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        (b"\x5f\x25\x06\x01\x05", b"\x5f\x25\x06\x01\x0a", "BCD"),
        (b"\x5f\x24\x06\x01\x08\x00\x05", b"\x5f\x24\x06\x01\x08\x01\x03", "not a date"),
        (b"\x5f\x24\x06\x01\x08", b"\x5f\x24\x06\x01\x04", "expires before"),
        (b"\x5f\x29\x01\x00", b"", "order"),
        (
            b"\x04\x00\x7f\x00\x07\x02\x02\x02\x02\x03",
            b"\x04\x00\x7f\x00\x07\x02\x02\x05\x02\x03",
            "TA algorithm",
        ),
        (b"\x42\x0e\x44", b"\x42\x0e\xff", "ASCII"),
    ],
)
def test_malformed_certificates_are_refused_with_a_reason(old: bytes, new: bytes, why: str) -> None:
    with pytest.raises(ICAOError, match=why):
        cvc.parse(_replace(BSI_CVCA, old, new))


def test_truncated_and_trailing_bytes_are_refused() -> None:
    with pytest.raises(TLVError):
        cvc.parse(BSI_CVCA[:-5])
    inner = tlv.unwrap(BSI_CVCA, 0x7F21) + b"\x5f\x37\x00"
    with pytest.raises(ICAOError, match="single signature"):
        cvc.parse(tlv.encode(0x7F21, inner))
