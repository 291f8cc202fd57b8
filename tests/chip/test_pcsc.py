"""The production reader over real pcscd + vpcd, with the virtual chip as the card."""

from __future__ import annotations

import pytest

from drivers.chip import PcscChipReader, ReaderNotFound, list_readers, read_once
from gate.config import PcscChipConfig
from gate.reasons import ReasonCode
from gate.results import Check
from sim.chip import Faults, VirtualChip

pytestmark = pytest.mark.timeout(60)


def cfg(**kw) -> PcscChipConfig:
    kw.setdefault("pace", "never")
    return PcscChipConfig(type="pcsc", **kw)


def test_readers_listed(pcscd) -> None:
    assert "Virtual PCD 00 00" in list_readers()


def test_read_over_pcsc_extended(vpcd) -> None:
    chip = VirtualChip(pace=False)
    vpcd(chip)
    rep, portrait = read_once(cfg(), chip.trust_store(), chip.holder.mrz_record())
    res = rep.result()
    assert res.reasons == (), rep.errors
    assert res.passive_auth is Check.PASSED and res.active_auth is Check.PASSED
    assert portrait == rep.portrait.image and len(portrait) > 32767
    assert rep.steps["DG2"].apdus == 2


def test_read_over_pcsc_short_only_card(vpcd) -> None:
    chip = VirtualChip(pace=False, extended=False)
    vpcd(chip)
    rep, _ = read_once(cfg(), chip.trust_store(), chip.holder.mrz_record())
    assert rep.result().reasons == ()
    b0 = 32767 // 231 + 1
    assert rep.steps["DG2"].apdus == 1 + b0 + -(-(len(rep.files["DG2"]) - 231 * b0) // 228)


def test_card_pulled_mid_read(vpcd) -> None:
    chip = VirtualChip(pace=False, extended=False, faults=Faults(pull_after_apdus=40))
    vpcd(chip)
    rep, portrait = read_once(cfg(), chip.trust_store(), chip.holder.mrz_record())
    assert rep.result().reasons == (ReasonCode.CHIP_READ_ERROR,)
    assert portrait is None


def test_slow_card_times_out(vpcd) -> None:
    chip = VirtualChip(pace=False, faults=Faults(slow_card_s=0.4))
    vpcd(chip)
    rep, _ = read_once(cfg(apdu_timeout_s=0.2), chip.trust_store(), chip.holder.mrz_record())
    assert rep.result().reasons == (ReasonCode.CHIP_READ_ERROR,)
    assert "no answer within 0.2 s" in rep.errors[-1]


def test_no_card_is_chip_absent(pcscd) -> None:
    rep, _ = read_once(
        cfg(card_wait_s=0.2),
        VirtualChip(pace=False).trust_store(),
        VirtualChip(pace=False).holder.mrz_record(),
    )
    assert not rep.present and rep.result().reasons == (ReasonCode.CHIP_ABSENT,)


def test_unknown_reader_is_device_error(pcscd) -> None:
    with pytest.raises(ReaderNotFound):
        read_once(
            cfg(reader="No Such Reader"),
            VirtualChip(pace=False).trust_store(),
            VirtualChip(pace=False).holder.mrz_record(),
        )


async def test_async_reader_with_read_timeout(vpcd) -> None:
    chip = VirtualChip(pace=False, faults=Faults(slow_card_s=0.3))
    vpcd(chip)
    reader = PcscChipReader(cfg(read_timeout_s=1.0), chip.trust_store())
    await reader.start(lambda _: None)
    reading = await reader.read(chip.holder.mrz_record())
    assert reading.result.reasons == (ReasonCode.CHIP_READ_ERROR,) and reading.portrait is None
    chip.faults.slow_card_s = 0.0  # the card recovers; the next read waits for the old one
    reading = await reader.read(chip.holder.mrz_record())
    assert reading.result.reasons == () and reading.portrait is not None
    # the portrait went to the daemon's vault; the reader keeps no copy of the chip's
    # content after the read (it would outlive the transaction until the next passport)
    held = [
        name
        for name, value in vars(reader).items()
        if reading.portrait in repr(value).encode("latin-1", "replace") or "portrait" in repr(value)
    ]
    assert held == [], held
    await reader.close()


def test_frozen_card_times_out_and_the_next_card_reads(vpcd) -> None:
    """A card that goes silent mid-read over real pcscd + vpcd: the read ends within the
    APDU deadline with chip_read_error; once it is taken away the next passport reads."""
    import time

    frozen = VirtualChip(pace=False, faults=Faults(freeze_after_apdus=8))
    card = vpcd(frozen)
    t0 = time.monotonic()
    rep, _ = read_once(cfg(apdu_timeout_s=0.5), frozen.trust_store(), frozen.holder.mrz_record())
    assert time.monotonic() - t0 < 2.0
    assert rep.result().reasons == (ReasonCode.CHIP_READ_ERROR,)
    assert rep.result().access_control == "BAC" and rep.apdus == 8
    card.remove()
    good = VirtualChip(pace=False)
    card.insert(good)
    rep, portrait = read_once(cfg(card_wait_s=5.0), good.trust_store(), good.holder.mrz_record())
    assert rep.result().reasons == (), rep.errors
    assert portrait is not None
