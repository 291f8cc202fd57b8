"""EAC: terminal authentication against the virtual chip's card side, DG3 after it, and
every refusal a reasoned result that leaves the chip's own verdict alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from drivers.icao import cbeff, ta
from drivers.icao.document import ReadOptions, ReadReport, read_document
from gate.reasons import ReasonCode
from gate.results import Check
from sim import eac_pki
from sim.chip import VirtualChip
from sim.chip_eac import EACChip, EACFaults

NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def terminals(tmp_path: Path, *, expired: bool = False) -> dict[str, ta.Terminal]:
    return ta.load_trust(eac_pki.write_trust(tmp_path / "eac", expired=expired))


def read(chip: VirtualChip, eac: dict[str, ta.Terminal] | None, pace: bool = True) -> ReadReport:
    opts = ReadOptions(pace=pace, now=NOW, eac=eac)
    return read_document(chip.answer, chip.holder.mrz_record(), chip.trust_store(), opts, chip.atr)


@pytest.mark.parametrize("use_pace", [True, False])
def test_terminal_authentication_then_dg3(tmp_path: Path, use_pace: bool) -> None:
    chip = EACChip(pace=use_pace)
    rep = read(chip, terminals(tmp_path), use_pace)
    assert rep.reasons == [], rep.errors
    assert rep.passive_auth is Check.PASSED and rep.chip_auth is Check.PASSED
    assert rep.terminal_auth.check is Check.PASSED, rep.terminal_auth.detail
    assert rep.terminal_auth.chain == ("UTDVGATE00001", "UTISGATE00001")
    assert [f.position for f in rep.fingers] == [1, 6]
    assert rep.fingers[0].image == chip.fingers[0].image  # the bytes as the chip holds them
    assert cbeff.decode(rep.fingers[0]).size == (320, 400)  # type: ignore[attr-defined]
    assert rep.steps["TA"].apdus == 9  # SELECT+READ EF.CVCA, 2x(DST, PSO), AT, CHALLENGE, EA
    assert "DG3" in rep.files and rep.to_json()["terminal_auth"]["result"] == "passed"


def test_an_older_chip_is_reached_through_the_link_certificate(tmp_path: Path) -> None:
    rep = read(EACChip(eac_faults=EACFaults(old_cvca=True)), terminals(tmp_path))
    assert rep.terminal_auth.passed, rep.terminal_auth.detail
    assert rep.terminal_auth.chain == ("UTCVCA00002", "UTDVGATE00001", "UTISGATE00001")
    assert len(rep.fingers) == 2


def test_refused_external_authenticate_is_a_reason_not_a_failed_chip(tmp_path: Path) -> None:
    rep = read(EACChip(eac_faults=EACFaults(refuse_ta=True)), terminals(tmp_path))
    assert rep.terminal_auth.check is Check.FAILED
    assert rep.terminal_auth.reason is ReasonCode.CHIP_TA_REFUSED
    assert "EXTERNAL AUTHENTICATE" in rep.terminal_auth.detail
    assert rep.reasons == [] and rep.passive_auth is Check.PASSED  # the face rule decides
    assert rep.fingers == () and "DG3" not in rep.files


def test_expired_is_certificate_is_its_own_reason(tmp_path: Path) -> None:
    rep = read(EACChip(), terminals(tmp_path, expired=True))
    assert rep.terminal_auth.reason is ReasonCode.CHIP_TA_CERT_EXPIRED
    assert rep.reasons == [] and rep.fingers == ()


def test_expiry_is_judged_by_the_chip_s_date_not_only_the_gate_s_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On 2025-07-01 the IS certificate (to 2025-12-31) is valid by the clock, but the
    chip will have moved its date to the DV's effective date (2026-01-01): refused before
    any APDU. Sent anyway (the gate's estimate off), the chip refuses it itself."""
    t = terminals(tmp_path, expired=True)
    opts = ReadOptions(now=dt.datetime(2025, 7, 1, tzinfo=dt.UTC), eac=t)
    chip = EACChip()
    rep = read_document(chip.answer, chip.holder.mrz_record(), chip.trust_store(), opts, chip.atr)
    assert rep.terminal_auth.reason is ReasonCode.CHIP_TA_CERT_EXPIRED
    assert "PSO" not in rep.terminal_auth.detail
    monkeypatch.setattr(ta, "chip_date", lambda chain, today: today)
    chip = EACChip()
    rep = read_document(chip.answer, chip.holder.mrz_record(), chip.trust_store(), opts, chip.atr)
    assert rep.terminal_auth.reason is ReasonCode.CHIP_TA_REFUSED
    assert "PSO:Verify Certificate UTISGATE00000" in rep.terminal_auth.detail
    assert chip.chip_date == dt.date(2026, 1, 1)


def test_a_chip_trusting_another_cvca_has_no_chain(tmp_path: Path) -> None:
    rep = read(EACChip(eac_faults=EACFaults(unknown_cvca=True)), terminals(tmp_path))
    assert rep.terminal_auth.reason is ReasonCode.CHIP_TA_NO_CHAIN
    assert rep.reasons == []


def test_no_trust_folder_for_the_state_and_no_dg3(tmp_path: Path) -> None:
    rep = read(EACChip(), {})
    assert rep.terminal_auth.reason is ReasonCode.CHIP_TA_NO_CHAIN and rep.reasons == []
    rep = read(VirtualChip(), terminals(tmp_path))
    assert rep.terminal_auth.check is Check.NOT_SUPPORTED and rep.reasons == []


def test_dg3_is_refused_without_terminal_authentication() -> None:
    rep = read(EACChip(), None)
    assert rep.terminal_auth.check is Check.NOT_RUN and "DG3" not in rep.files
    assert rep.reasons == []


def test_the_reader_configuration_loads_the_trust_folder(tmp_path: Path) -> None:
    from drivers import chip as chip_driver
    from gate.config import PcscChipConfig

    folder = eac_pki.write_trust(tmp_path / "eac")
    cfg = PcscChipConfig(type="pcsc", eac_dir=folder)
    opts = chip_driver.options(cfg, NOW)
    assert opts.eac is not None and opts.eac["UTO"].is_cert.chr == "UTISGATE00001"
    rep = read(EACChip(), opts.eac)
    assert rep.terminal_auth.passed and len(rep.fingers) == 2
    assert chip_driver.options(PcscChipConfig(type="pcsc"), NOW).eac is None


def test_a_broken_trust_folder_is_a_clear_configuration_error(tmp_path: Path) -> None:
    folder = eac_pki.write_trust(tmp_path / "eac")
    (folder / "UTO" / "terminal.pem").write_bytes(b"not a key")
    with pytest.raises(ta.TrustError, match="terminal.pem"):
        ta.load_trust(folder)
    folder2 = eac_pki.write_trust(tmp_path / "eac2")
    (folder2 / "UTO" / "is.cvcert").unlink()
    with pytest.raises(ta.TrustError, match="no IS certificate"):
        ta.load_trust(folder2)


def test_a_short_challenge_is_a_refused_ta(tmp_path: Path) -> None:
    rep = read(EACChip(eac_faults=EACFaults(short_challenge=True)), terminals(tmp_path))
    assert rep.terminal_auth.reason is ReasonCode.CHIP_TA_REFUSED
    assert "GET CHALLENGE" in rep.terminal_auth.detail and rep.reasons == []


def test_a_dg3_that_differs_from_its_signed_hash_is_forged_chip_data(tmp_path: Path) -> None:
    rep = read(EACChip(eac_faults=EACFaults(dg3_not_signed=True)), terminals(tmp_path))
    assert rep.terminal_auth.passed and rep.fingers == ()
    assert ReasonCode.CHIP_DG_HASH in rep.reasons


def test_a_signed_but_malformed_dg3_loses_the_fingers_only(tmp_path: Path) -> None:
    rep = read(EACChip(eac_faults=EACFaults(malformed_dg3=True)), terminals(tmp_path))
    assert rep.terminal_auth.passed and rep.fingers == ()
    assert "DG3/DG4 not read" in rep.terminal_auth.detail and rep.reasons == []
    assert rep.passive_auth is Check.PASSED


def test_our_own_bug_in_eac_loses_the_fingers_not_the_chip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(data: bytes) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(cbeff, "parse_dg3", boom)
    rep = read(EACChip(), terminals(tmp_path))
    assert rep.reasons == [] and rep.fingers == ()
    assert "internal error: KeyError" in rep.terminal_auth.detail


@pytest.mark.parametrize("old_cvca", [False, True])
def test_rsa_terminal_authentication(tmp_path: Path, old_cvca: bool) -> None:
    """The same chain with RSA keys (id-TA-RSA-v1-5-SHA-256), through the link too."""
    t = ta.load_trust(eac_pki.write_trust(tmp_path / "eac", kind="rsa"))
    assert t["UTO"].is_cert.key.oid == eac_pki.OID_RSA
    chip = EACChip(eac_kind="rsa", eac_faults=EACFaults(old_cvca=old_cvca))
    rep = read(chip, t)
    assert rep.terminal_auth.passed, rep.terminal_auth.detail
    assert len(rep.terminal_auth.chain) == (3 if old_cvca else 2) and len(rep.fingers) == 2
    # an ECDSA gate and an RSA chip with the same CARs: the chip's own signature check
    rep = read(EACChip(eac_kind="rsa"), terminals(tmp_path))
    assert rep.terminal_auth.reason is ReasonCode.CHIP_TA_REFUSED
    assert "PSO:Verify Certificate UTDVGATE00001: 6300" in rep.terminal_auth.detail
