"""EF.SOD (ICAO 9303-10 4.6.2): a CMS SignedData over the LDSSecurityObject.

``parse_sod`` decodes everything passive authentication needs into plain values at once,
so later steps never meet a lazy asn1crypto error; any malformation is a ``SODError``.
``build_sod`` is the issuer's side, used by the virtual chip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import algos, cms, core, x509

from drivers.icao import tlv
from drivers.icao.errors import SODError, TLVError

OID_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"


class DataGroupHash(core.Sequence):
    _fields = [("number", core.Integer), ("hash", core.OctetString)]


class DataGroupHashes(core.SequenceOf):
    _child_spec = DataGroupHash


class LDSSecurityObject(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("hashes", DataGroupHashes),
        ("lds_version_info", core.Any, {"optional": True}),
    ]


@dataclass(frozen=True)
class SOD:
    digest_algorithm: str  # of the data group hashes: "sha256", ...
    hashes: dict[int, bytes]
    econtent: bytes  # the DER LDSSecurityObject, as signed
    econtent_type: str
    signer_digest_algorithm: str
    signed_attrs: bytes | None  # DER as SET (tag 31), what the signature covers
    content_type_attr: str | None
    message_digest_attr: bytes | None
    signature_algorithm: str  # "rsassa_pkcs1v15", "rsassa_pss", "ecdsa"
    signature_hash: str
    pss_salt: int | None
    signature: bytes
    certificates: tuple[bytes, ...]  # DER, usually just the Document Signer
    sid_issuer_serial: tuple[bytes, int] | None  # (issuer Name DER, serial)
    sid_key_id: bytes | None


def _hash_name(name: str) -> str:
    if name not in hashlib.algorithms_available:
        raise SODError(f"unsupported digest {name}")
    return name


def parse_sod(raw: bytes) -> SOD:
    try:
        return _parse(raw)
    except SODError:
        raise
    except TLVError as exc:
        raise SODError(f"EF.SOD TLV: {exc}") from None
    except Exception as exc:  # asn1crypto: ValueError, TypeError, KeyError, ...
        raise SODError(f"EF.SOD does not parse: {type(exc).__name__}: {exc}") from None


def _parse(raw: bytes) -> SOD:
    ci = cms.ContentInfo.load(tlv.unwrap(raw, 0x77), strict=True)
    if ci["content_type"].native != "signed_data":
        raise SODError("EF.SOD is not CMS SignedData")
    sd = ci["content"]
    encap = sd["encap_content_info"]
    econtent_type = encap["content_type"].dotted
    content = encap["content"]
    econtent = bytes(content) if isinstance(content, core.ParsableOctetString) else b""
    if not econtent:
        raise SODError("EF.SOD has no encapsulated content")
    lso = LDSSecurityObject.load(econtent, strict=True)
    digest = _hash_name(lso["hash_algorithm"]["algorithm"].native)
    hashes: dict[int, bytes] = {}
    for item in lso["hashes"]:
        n = item["number"].native
        if not isinstance(n, int) or not 1 <= n <= 16:
            raise SODError(f"data group number {n!r}")
        hashes[n] = item["hash"].native
    signers = sd["signer_infos"]
    if len(signers) != 1:
        raise SODError(f"{len(signers)} signer infos, expected 1")
    si = signers[0]
    signer_digest = _hash_name(si["digest_algorithm"]["algorithm"].native)
    sig_alg = si["signature_algorithm"]
    sig_name = sig_alg.signature_algo
    try:
        sig_hash = sig_alg.hash_algo
    except ValueError:  # rsaEncryption / plain ecdsa: the hash is the digest algorithm
        sig_hash = signer_digest
    salt = None
    if sig_name == "rsassa_pss":
        params = sig_alg["parameters"]
        salt = params["salt_length"].native if isinstance(params, algos.RSASSAPSSParams) else 20
    attrs = si["signed_attrs"]
    signed_attrs = ct_attr = md_attr = None
    if attrs.native is not None and len(attrs):
        der = attrs.dump()
        signed_attrs = b"\x31" + der[1:]
        for attr in attrs:
            kind = attr["type"].native
            if kind == "content_type":
                ct_attr = attr["values"][0].dotted
            elif kind == "message_digest":
                md_attr = attr["values"][0].native
    # the certificates' bytes only (cryptography parses them in pa.py): asking asn1crypto
    # for their .native decodes every field, most of the time of a whole read
    cert_set = sd["certificates"]
    certs = () if isinstance(cert_set, core.Void) else tuple(c.chosen.dump() for c in cert_set)
    sid = si["sid"]
    issuer_serial = key_id = None
    if sid.name == "issuer_and_serial_number":
        issuer_serial = (sid.chosen["issuer"].dump(), sid.chosen["serial_number"].native)
    else:
        key_id = sid.chosen.native
    return SOD(
        digest_algorithm=digest,
        hashes=hashes,
        econtent=econtent,
        econtent_type=econtent_type,
        signer_digest_algorithm=signer_digest,
        signed_attrs=signed_attrs,
        content_type_attr=ct_attr,
        message_digest_attr=md_attr,
        signature_algorithm=sig_name,
        signature_hash=_hash_name(sig_hash),
        pss_salt=salt,
        signature=si["signature"].native,
        certificates=certs,
        sid_issuer_serial=issuer_serial,
        sid_key_id=key_id,
    )


def _sig_alg(name: str, digest: str) -> algos.SignedDigestAlgorithm:
    if name != "rsassa_pss":
        return algos.SignedDigestAlgorithm({"algorithm": name})
    h = {"algorithm": digest}
    params = {
        "hash_algorithm": h,
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": h},
        "salt_length": hashlib.new(digest).digest_size,
    }
    return algos.SignedDigestAlgorithm({"algorithm": name, "parameters": params})


def build_sod(
    data_groups: dict[int, bytes],
    ds_cert_der: bytes,
    sign: Callable[[bytes], bytes],
    signature_algorithm: str,
    digest: str = "sha256",
    hash_override: dict[int, bytes] | None = None,
) -> bytes:
    """Issue an EF.SOD: hashes of ``data_groups``, signed attributes, signature by ``sign``
    (the Document Signer's private key operation over the DER signed attributes)."""
    hashes = {n: hashlib.new(digest, raw).digest() for n, raw in sorted(data_groups.items())}
    hashes.update(hash_override or {})
    lso = LDSSecurityObject(
        {
            "version": 0,
            "hash_algorithm": {"algorithm": digest},
            "hashes": [{"number": n, "hash": h} for n, h in hashes.items()],
        }
    )
    econtent = lso.dump()
    attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": [OID_LDS_SECURITY_OBJECT]},
            {"type": "message_digest", "values": [hashlib.new(digest, econtent).digest()]},
        ]
    )
    signature = sign(attrs.dump())
    ds = x509.Certificate.load(ds_cert_der)
    signer = cms.SignerInfo(
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
            "digest_algorithm": {"algorithm": digest},
            "signed_attrs": attrs,
            "signature_algorithm": _sig_alg(signature_algorithm, digest),
            "signature": signature,
        }
    )
    sd = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": digest}],
            "encap_content_info": {
                "content_type": OID_LDS_SECURITY_OBJECT,
                "content": core.ParsableOctetString(econtent),
            },
            "certificates": [ds],
            "signer_infos": [signer],
        }
    )
    ci = cms.ContentInfo({"content_type": "signed_data", "content": sd})
    return tlv.encode(0x77, ci.dump())
