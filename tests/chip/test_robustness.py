"""Issue 16, chip part: no chip, however wrong, ends a read with anything but reasons,
and what was done before a failure stays in the report."""

from __future__ import annotations

import pytest

from drivers.icao.document import ReadOptions, atr_extended_length, read_document
from sim.chip import VirtualChip, atr

# --- 1. the ATR's historical bytes ------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "3B 85 80 01 80 73 00 21",  # card capabilities cut short (the ATR)
        "3B 8F 80 01 80 73",  # historical bytes claimed, none present
        "3B 85 80 01 80 7F 00 21",  # compact-TLV length past the end
        "3B 80 80",  # TD1 announces TD2, which is missing
        "3B F5",  # TA1 TB1 TC1 TD1 announced, none present
        "3B",
        "",
        "3B 82 80 01 80",  # only the category indicator
        "3B 84 80 01 00 73 00 21",  # category 00: status bytes at the end, nothing left
    ],
)
def test_short_or_lying_atr_is_not_extended(raw: str) -> None:
    assert atr_extended_length(bytes.fromhex(raw)) is False


def test_atr_card_capabilities_read() -> None:
    assert atr_extended_length(atr(True)) is True
    assert atr_extended_length(atr(False)) is False
    # category 00 with the status indicator (3 bytes) after the compact-TLV objects
    assert atr_extended_length(bytes.fromhex("3B 88 80 01 00 73 00 21 40 90 00 00")) is True


def test_read_with_short_capabilities_atr_finishes() -> None:
    chip = VirtualChip(pace=False)
    rep = read_document(
        chip.answer,
        chip.holder.mrz_record(),
        chip.trust_store(),
        ReadOptions(),
        atr=bytes.fromhex("3B 85 80 01 80 73 00 21"),
    )
    assert rep.result().reasons == (), rep.errors
