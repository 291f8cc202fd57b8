"""Passive authentication: BSI TR-03105 reference data and a generated PKI with faults."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.icao import lds, pa, sod
from drivers.icao.errors import SODError
from gate.reasons import ReasonCode
from sim.chip_pki import make_pki

H = bytes.fromhex
NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


def test_bsi_reference_sod(bsi: dict) -> None:
    """What the reference file says is true of it, and nothing crashes."""
    exp = bsi["expect"]
    s = sod.parse_sod(H(bsi["ef_sod"]))
    assert s.digest_algorithm == exp["sod_digest_algorithm"]
    assert s.signature_algorithm == "rsassa_pss" and s.signature_hash == "sha256"
    assert s.pss_salt == 32
    assert {n: h.hex().upper() for n, h in s.hashes.items()} == {
        int(k): v for k, v in exp["data_group_hashes"].items()
    }
    dgs = {1: H(bsi["ef_dg1"]), 14: H(bsi["ef_dg14"]), 15: H(bsi["ef_dg15"])}
    r = pa.verify(s, dgs, pa.TrustStore(), NOW)
    assert r.signature_valid is exp["signature_valid_with_embedded_dsc"]
    assert r.dg_hashes[1] is exp["dg1_matches_sod"]
    assert r.dg_hashes[14] is exp["dg14_matches_sod"]
    assert (r.dg_hashes[15] is not None) is exp["dg15_in_sod"]
    assert not r.passed
    assert ReasonCode.CHIP_DS_EXPIRED in r.reasons  # DS expired 2014-12-11
    assert ReasonCode.CHIP_CSCA_UNKNOWN in r.reasons  # the CSCA is not included
    assert ReasonCode.CHIP_SOD_SIGNATURE not in r.reasons
    assert ReasonCode.CHIP_CHAIN_INVALID not in r.reasons
    assert r.ds_valid_until.startswith("2014-12-11")
    # inside its validity and with DG1/DG14 only, the one open point is the missing CSCA
    r2 = pa.verify(
        s, {1: dgs[1], 14: dgs[14]}, pa.TrustStore(), dt.datetime(2014, 6, 1, tzinfo=dt.UTC)
    )
    assert r2.reasons == (ReasonCode.CHIP_CSCA_UNKNOWN,)


def test_bsi_dg1(bsi: dict) -> None:
    lines = lds.parse_dg1(H(bsi["ef_dg1"]))
    assert list(lines) == bsi["expect"]["dg1_mrz"]
    rec = lds.dg1_to_mrz(lines, today=NOW.date())
    assert (rec.surname, rec.given_names, rec.document_number) == (
        "MUSTERMANN",
        "ERIKA",
        "C11T002JM",
    )
    assert rec.date_of_birth == dt.date(1996, 8, 12) and rec.date_of_expiry == dt.date(2023, 10, 31)
    assert rec.issuing_state == "D<<" and rec.sex == "F"


def test_bsi_dg14_dg15(bsi: dict) -> None:
    infos = lds.parse_dg14(H(bsi["ef_dg14"]))
    assert any(i.protocol.startswith(lds.ID_PK_PREFIX) for i in infos)
    spki = lds.parse_dg15(H(bsi["ef_dg15"]))
    key = serialization.load_der_public_key(spki)
    assert key.key_size == 1024  # type: ignore[union-attr]


DG1 = lds.build_dg1(
    ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10"]
)


def _issue(
    signature: str = "ecdsa", **kw: object
) -> tuple[sod.SOD, pa.TrustStore, dict[int, bytes], object]:
    pki = make_pki(signature, ds_expired=bool(kw.pop("ds_expired", False)), now=NOW)
    dgs = {1: DG1, 15: lds.build_dg15(b"\x30\x03\x02\x01\x01")}
    raw = sod.build_sod(
        dgs,
        pki.ds.public_bytes(serialization.Encoding.DER),
        pki.sign,
        pki.cms_signature_algorithm,
        **kw,
    )  # type: ignore[arg-type]
    return sod.parse_sod(raw), pa.TrustStore(cscas=[pki.csca]), dgs, pki


@pytest.mark.parametrize("signature", ["ecdsa", "rsa", "rsa-pss"])
def test_generated_pki_passes(signature: str) -> None:
    s, trust, dgs, _ = _issue(signature)
    r = pa.verify(s, dgs, trust, NOW)
    assert r.passed, r.details
    assert r.csca_subject.startswith("CN=CSCA Utopia")


def test_wrong_dg_hash() -> None:
    s, trust, dgs, _ = _issue(hash_override={1: hashlib.sha256(b"other").digest()})
    r = pa.verify(s, dgs, trust, NOW)
    assert r.reasons == (ReasonCode.CHIP_DG_HASH,) and r.dg_hashes == {1: False, 15: True}


def test_bad_signature() -> None:
    s, trust, dgs, _ = _issue()
    bad = sod.SOD(**{**s.__dict__, "signature": s.signature[:-1] + bytes([s.signature[-1] ^ 1])})
    assert pa.verify(bad, dgs, trust, NOW).reasons == (ReasonCode.CHIP_SOD_SIGNATURE,)


def test_expired_ds() -> None:
    s, trust, dgs, _ = _issue(ds_expired=True)
    assert pa.verify(s, dgs, trust, NOW).reasons == (ReasonCode.CHIP_DS_EXPIRED,)


def test_unknown_csca_and_wrong_csca_key() -> None:
    s, _, dgs, _ = _issue()
    assert pa.verify(s, dgs, pa.TrustStore(), NOW).reasons == (ReasonCode.CHIP_CSCA_UNKNOWN,)
    other = make_pki(now=NOW)  # same subject name, other key: AKI does not match
    assert pa.verify(s, dgs, pa.TrustStore(cscas=[other.csca]), NOW).reasons == (
        ReasonCode.CHIP_CSCA_UNKNOWN,
    )


def test_revoked_ds(tmp_path: Path) -> None:
    s, trust, dgs, pki = _issue()
    pki.write_csca(tmp_path / "csca")
    (tmp_path / "crl").mkdir()
    (tmp_path / "crl" / "ut.crl").write_bytes(pki.crl([pki.ds.serial_number], now=NOW))
    store = pa.TrustStore.load(tmp_path / "csca", None, tmp_path / "crl")
    assert pa.verify(s, dgs, store, NOW).reasons == (ReasonCode.CHIP_DS_REVOKED,)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_sod_parser_raises_only_sod_error(data: bytes) -> None:
    for raw in (
        data,
        b"\x77" + bytes([len(data) % 128]) + data,
        b"\x77\x82" + len(data).to_bytes(2, "big") + data,
    ):
        with contextlib.suppress(SODError):
            sod.parse_sod(raw)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2000), st.integers(0, 255))
def test_mutated_real_sod_raises_only_sod_error_or_parses(bsi_pos: int, value: int) -> None:
    raw = bytearray(H(_BSI_SOD))
    raw[bsi_pos % len(raw)] = value
    try:
        s = sod.parse_sod(bytes(raw))
    except SODError:
        return
    pa.verify(s, {}, pa.TrustStore(), NOW)  # and verification of whatever parsed never raises


_BSI_SOD = __import__("json").loads(
    (
        Path(__file__).resolve().parents[2] / "../shared/data/icao9303/bsi_tr03105_reference.json"
    ).read_text()
)["ef_sod"]


def test_master_list_trust_store(tmp_path: Path) -> None:
    from sim.chip_pki import master_list

    s, _, dgs, pki = _issue("rsa")
    other = make_pki(now=NOW)
    ml = tmp_path / "icao.ml"
    ml.write_bytes(master_list([other.csca, pki.csca], other))
    store = pa.TrustStore.load(master_list=ml)
    assert len(store.cscas) == 2
    assert pa.verify(s, dgs, store, NOW).passed
    (tmp_path / "csca").mkdir()
    (tmp_path / "csca" / "icao.ml").write_bytes(ml.read_bytes())  # .ml inside the CSCA folder
    assert len(pa.TrustStore.load(csca_dir=tmp_path / "csca").cscas) == 2


def test_not_a_master_list(tmp_path: Path) -> None:
    s, _, _, _ = _issue()
    (tmp_path / "x.ml").write_bytes(b"\x30\x03\x02\x01\x00")
    with pytest.raises(ValueError):
        pa.TrustStore.load(master_list=tmp_path / "x.ml")
