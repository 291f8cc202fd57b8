"""Chip authentication (ECDH, DG14): BSI reference key, both ciphers, clone detection."""

from __future__ import annotations

import pytest

from drivers.icao import ca, lds, pace
from drivers.icao.document import ReadOptions, read_document
from gate.reasons import ReasonCode
from gate.results import Check
from sim.chip import Faults, VirtualChip

H = bytes.fromhex


def read(chip: VirtualChip):
    return read_document(
        chip.answer, chip.holder.mrz_record(), chip.trust_store(), ReadOptions(), atr=chip.atr
    )


def test_bsi_dg14_chip_authentication_key(bsi: dict) -> None:
    """The reference DG14: ECDH with 3DES, explicit brainpoolP224r1 parameters."""
    key = ca.find_key(lds.parse_dg14(H(bsi["ef_dg14"])))
    assert key is not None and key.cipher == ("3DES", 128)
    assert key.curve.p == int("D7C134AA264366862A18302575D1D787B09F075797DA89F57EC8C0FF", 16)
    assert pace.on_curve(key.curve, key.public)
    assert pace.mul(key.curve, key.curve.n, key.public) is None  # a point of order n


@pytest.mark.parametrize("cipher", ["AES", "3DES"])
@pytest.mark.parametrize("use_pace", [True, False])
def test_chip_authentication_passes(cipher: str, use_pace: bool) -> None:
    rep = read(VirtualChip(pace=use_pace, ca=cipher))
    assert rep.chip_auth is Check.PASSED and rep.reasons == [], rep.errors
    assert rep.steps["CA"].apdus == (3 if cipher == "AES" else 2)


def test_clone_fails_chip_authentication() -> None:
    rep = read(VirtualChip(faults=Faults(cloned_chip=True), aa_kind=None))
    assert rep.chip_auth is Check.FAILED and rep.reasons == [ReasonCode.CHIP_CA_FAILED]


def test_chip_authentication_not_counted_without_pa() -> None:
    rep = read(VirtualChip(faults=Faults(unknown_csca=True)))
    assert rep.chip_auth is Check.NOT_RUN and rep.passive_auth is Check.FAILED


def test_no_dg14_is_not_supported() -> None:
    rep = read(VirtualChip(ca=None))
    assert rep.chip_auth is Check.NOT_SUPPORTED and rep.reasons == []
