"""A chip that answers wrongly at any point: every status word class, truncated and
random responses. The reader must end with reasons, never an exception or a hang."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.icao.document import ReadOptions, read_document
from gate.reasons import ReasonCode
from gate.results import Check
from sim.chip import VirtualChip

CHIP = VirtualChip(pace=True)
CHIP_BAC = VirtualChip(pace=False)

# one of each ISO 7816-4 class: warnings, execution errors, checking errors
STATUS_WORDS = [
    0x6281,
    0x6282,
    0x6300,
    0x63C2,
    0x6400,
    0x6581,
    0x6700,
    0x6882,
    0x6982,
    0x6985,
    0x6988,
    0x6A80,
    0x6A82,
    0x6A86,
    0x6B00,
    0x6C10,
    0x6D00,
    0x6E00,
    0x6F00,
    0x9000,
]


def corrupted(chip: VirtualChip, at: int, mode: str, arg: int):
    n = 0

    def transmit(apdu: bytes) -> bytes:
        nonlocal n
        n += 1
        resp = chip.answer(apdu)
        if n != at:
            return resp
        if mode == "sw":
            return arg.to_bytes(2, "big")
        if mode == "truncate":
            return resp[: arg % max(1, len(resp))]
        if mode == "flip":
            b = bytearray(resp)
            b[arg % len(b)] ^= 0x5A
            return bytes(b)
        return os.urandom(arg % 64)

    return transmit


def read(chip: VirtualChip, transmit) -> object:
    chip.reset()
    return read_document(
        transmit, chip.holder.mrz_record(), chip.trust_store(), ReadOptions(), atr=chip.atr
    )


@pytest.mark.parametrize("sw", STATUS_WORDS)
@pytest.mark.parametrize("at", [1, 3, 6, 9, 14])
def test_status_word_anywhere(sw: int, at: int) -> None:
    rep = read(CHIP_BAC, corrupted(CHIP_BAC, at, "sw", sw))
    res = rep.result()
    assert res.reasons or res.passive_auth is Check.PASSED
    assert all(isinstance(r, ReasonCode) for r in res.reasons)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.booleans(),
    st.integers(1, 22),
    st.sampled_from(["truncate", "flip", "random"]),
    st.integers(0, 100000),
)
def test_any_corruption_ends_in_reasons(pace: bool, at: int, mode: str, arg: int) -> None:
    chip = CHIP if pace else CHIP_BAC
    rep = read(chip, corrupted(chip, at, mode, arg))
    res = rep.result()
    # either the corruption did not matter (then everything verified) or it is a reason
    assert res.reasons or (res.passive_auth is Check.PASSED and res.active_auth is Check.PASSED)


def test_file_claiming_huge_length_is_malformed() -> None:
    """A DG header announcing 16 MB must not make the reader fetch 16 MB."""
    chip = VirtualChip(pace=False)
    dg1 = chip.files[0x0101]
    chip.files[0x0101] = b"\x61\x83\xff\xff\xff" + dg1[2:]
    rep = read(chip, chip.answer)
    assert ReasonCode.CHIP_MALFORMED in rep.result().reasons
    assert rep.steps["DG1"].apdus == 2
