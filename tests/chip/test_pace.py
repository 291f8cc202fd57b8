"""PACE-GM: curve arithmetic against cryptography, the full protocol against the virtual
chip (in-process and over pcscd), wrong password, fallback to BAC."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from drivers.chip import read_once
from drivers.icao import pace
from drivers.icao.document import ReadOptions, read_document
from gate.config import PcscChipConfig
from gate.reasons import ReasonCode
from gate.results import Check
from sim import chip_pace
from sim.chip import Holder, VirtualChip


@pytest.mark.parametrize(("pid", "curve"), [(12, ec.SECP256R1()), (13, ec.BrainpoolP256R1())])
def test_curve_arithmetic_matches_cryptography(pid: int, curve: ec.EllipticCurve) -> None:
    c = pace.CURVES[pid]
    a, b = ec.generate_private_key(curve), ec.generate_private_key(curve)
    pa_, pb = a.public_key().public_numbers(), b.public_key().public_numbers()
    assert pace.mul(c, a.private_numbers().private_value, pace.generator(c)) == (pa_.x, pa_.y)
    shared = pace.mul(c, a.private_numbers().private_value, (pb.x, pb.y))
    assert shared[0].to_bytes(32, "big") == a.exchange(ec.ECDH(), b.public_key())
    assert pace.on_curve(c, (pb.x, pb.y)) and not pace.on_curve(c, (pb.x, pb.y + 1))


def read(chip, printed=None, **kw):
    return read_document(
        chip.answer,
        printed or chip.holder.mrz_record(),
        chip.trust_store(),
        ReadOptions(**kw),
        atr=chip.atr,
    )


@pytest.mark.parametrize("param", [12, 13])
def test_pace_read(param: int) -> None:
    chip = VirtualChip()
    chip.files[0x011C] = chip_pace.card_access(param=param)
    rep = read(chip)
    res = rep.result()
    assert res.access_control == "PACE" and res.reasons == (), rep.errors
    assert res.passive_auth is Check.PASSED and res.active_auth is Check.PASSED
    assert rep.steps["pace"].apdus == 6  # MSE:Set AT, 4 x GENERAL AUTHENTICATE, SELECT


def test_pace_wrong_password() -> None:
    res = read(VirtualChip(), printed=Holder(birth="740813").mrz_record()).result()
    assert res.access_control == "" and res.reasons == (ReasonCode.CHIP_ACCESS_DENIED,)


def test_no_card_access_falls_back_to_bac() -> None:
    assert read(VirtualChip(pace=False)).result().access_control == "BAC"


def test_unusable_card_access_falls_back_to_bac() -> None:
    chip = VirtualChip()
    chip.files[0x011C] = b"\x31\x03\x02\x01\x00"
    assert read(chip).result().access_control == "BAC"


def test_pace_over_pcsc(vpcd) -> None:
    chip = VirtualChip()
    vpcd(chip)
    rep, portrait = read_once(
        PcscChipConfig(type="pcsc"), chip.trust_store(), chip.holder.mrz_record()
    )
    assert rep.access_control == "PACE" and rep.result().reasons == (), rep.errors
    assert portrait is not None


def test_pace_short_reads_fit_aes_responses() -> None:
    """Under AES the largest short read is 223 bytes (B0) and 220 (B1, DO53 header); the
    chip refuses answers that would not fit 256 bytes, so a wrong size would fail here."""
    rep = read(VirtualChip(extended=False))
    assert rep.result().reasons == (), rep.errors
    size, b0 = len(rep.files["DG2"]), 32767 // 223 + 1
    assert rep.steps["DG2"].apdus == 1 + b0 + -(-(size - 223 * b0) // 220)
