"""The production read sequence against the virtual chip, in-process: every fault switch
ends in its reason code, never an exception."""

from __future__ import annotations

import pytest

from drivers.icao.document import ReadOptions, read_document
from gate.reasons import ReasonCode
from gate.results import Check
from sim.chip import Faults, Holder, VirtualChip


def read(chip: VirtualChip, printed=None, **opts):
    o = ReadOptions(pace=opts.pop("pace", False), **opts)
    return read_document(
        chip.answer, printed or chip.holder.mrz_record(), chip.trust_store(), o, atr=chip.atr
    )


def test_clean_chip_passes_everything() -> None:
    chip = VirtualChip(pace=False)
    rep = read(chip)
    res = rep.result()
    assert res.reasons == () and res.access_control == "BAC"
    assert res.passive_auth is Check.PASSED and res.active_auth is Check.PASSED
    assert res.has_portrait and rep.portrait.format == "jpeg"
    assert res.dg1.document_number == "L898902C3"
    # extended length: SELECT + one READ BINARY per file, whatever its size
    assert rep.steps["DG2"].apdus == 2 and rep.steps["bac"].apdus == 3


def test_short_reads_use_the_largest_short_length() -> None:
    chip = VirtualChip(pace=False, extended=False)
    rep = read(chip)
    assert rep.result().reasons == ()
    size = len(rep.files["DG2"])
    # B0 reads of 231 bytes up to offset 32767, then B1 reads of 228 (DO53 takes 3 bytes)
    b0 = 32767 // 231 + 1
    assert rep.steps["DG2"].apdus == 1 + b0 + -(-(size - 231 * b0) // 228)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("wrong_dg_hash", ReasonCode.CHIP_DG_HASH),
        ("bad_sod_signature", ReasonCode.CHIP_SOD_SIGNATURE),
        ("expired_ds", ReasonCode.CHIP_DS_EXPIRED),
        ("unknown_csca", ReasonCode.CHIP_CSCA_UNKNOWN),
        ("cloned_chip", ReasonCode.CHIP_AA_FAILED),
        ("corrupted_tlv", ReasonCode.CHIP_MALFORMED),
        ("wrong_mac", ReasonCode.CHIP_SM_ERROR),
    ],
)
def test_fault_switch_gives_its_reason(fault: str, reason: ReasonCode) -> None:
    chip = VirtualChip(pace=False, faults=Faults(**{fault: True}))
    res = read(chip).result()
    assert reason in res.reasons, res.reasons
    assert (
        res.passive_auth is not Check.PASSED or fault == "cloned_chip" or fault == "corrupted_tlv"
    )


def test_aa_does_not_count_without_passive_authentication() -> None:
    """A clone with its own DG15 key signs fine, but its SOD cannot be genuine."""
    res = read(VirtualChip(pace=False, faults=Faults(unknown_csca=True))).result()
    assert res.passive_auth is Check.FAILED and res.active_auth is Check.NOT_RUN


def test_wrong_mrz_key_is_access_denied() -> None:
    chip = VirtualChip(pace=False)
    other = Holder(document_number="X1234567").mrz_record()
    res = read(chip, printed=other).result()
    assert res.reasons == (ReasonCode.CHIP_ACCESS_DENIED,) and not res.has_portrait


def test_dg1_mismatch_with_printed_mrz() -> None:
    chip = VirtualChip(pace=False)
    printed = Holder(surname="ERIKSON").mrz_record()  # same key fields, another name
    rep = read(chip, printed=printed)
    assert rep.result().reasons == (ReasonCode.CHIP_MRZ_MISMATCH,)
    assert rep.mrz_mismatch == ("surname",)


def test_ecdsa_active_authentication() -> None:
    chip = VirtualChip(pace=False, aa_kind="ecdsa")
    res = read(chip).result()
    assert res.active_auth is Check.PASSED and res.reasons == ()
