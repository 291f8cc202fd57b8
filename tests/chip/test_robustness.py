"""Issue 16, chip part: no chip, however wrong, ends a read with anything but reasons,
and what was done before a failure stays in the report."""

from __future__ import annotations

import pytest

from drivers.icao.document import ReadOptions, atr_extended_length, read_document
from drivers.icao.errors import StatusError
from gate.reasons import ReasonCode
from gate.results import Check
from sim.chip import UNSUPPORTED_SPKI, Faults, VirtualChip, atr

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


# --- 2. a key the clone check cannot use -------------------------------------------------


def test_unknown_key_oid_is_unsupported_not_an_exception() -> None:
    from drivers.icao import aa
    from drivers.icao.errors import UnsupportedKey

    unknown = bytes.fromhex("300f300606042a03040503050001020304")  # key OID 1.2.3.4.5
    for spki in (unknown, UNSUPPORTED_SPKI):
        with pytest.raises(UnsupportedKey) as err:
            aa.verify(spki, b"12345678", b"\x01" * 64, None)
        assert err.value.reason is ReasonCode.CHIP_CLONE_CHECK_UNSUPPORTED


@pytest.mark.parametrize("fault", ["unsupported_aa_key", "unsupported_ca_curve"])
def test_unsupported_clone_check_key_is_a_reason(fault: str) -> None:
    chip = VirtualChip(pace=False, faults=Faults(**{fault: True}))
    rep = read_document(chip.answer, chip.holder.mrz_record(), chip.trust_store(), ReadOptions())
    res = rep.result()
    assert res.passive_auth is Check.PASSED  # the odd key is the issuer's, signed
    assert res.reasons == (ReasonCode.CHIP_CLONE_CHECK_UNSUPPORTED,), rep.errors
    if fault == "unsupported_aa_key":
        assert (res.active_auth, res.chip_auth) == (Check.NOT_RUN, Check.PASSED)
    else:
        assert (res.active_auth, res.chip_auth) == (Check.PASSED, Check.NOT_RUN)


def test_policy_refers_a_clone_check_not_done() -> None:
    from gate.policy import decide_document
    from tests.policy.helpers import TODAY, chip_for, clear, doc_result, mrz, policy

    doc = mrz()
    chip = chip_for(
        doc, active_auth=Check.NOT_RUN, reasons=(ReasonCode.CHIP_CLONE_CHECK_UNSUPPORTED,)
    )
    verdict = decide_document(doc, doc_result(doc), chip, clear(), policy(), TODAY)
    assert not verdict.accept
    assert verdict.reasons == (ReasonCode.CHIP_CLONE_CHECK_UNSUPPORTED,)
    assert verdict.texts()[0].startswith("Clone check could not be done")


# --- 4. extended length claimed, then refused ---------------------------------------------


@pytest.mark.parametrize("pace", [True, False])
def test_extended_length_refused_falls_back_to_short_reads(pace: bool) -> None:
    chip = VirtualChip(pace=pace, faults=Faults(refuse_extended=True))
    assert atr_extended_length(chip.atr)  # the card claims it
    rep = read_document(
        chip.answer, chip.holder.mrz_record(), chip.trust_store(), ReadOptions(), atr=chip.atr
    )
    res = rep.result()
    assert res.reasons == (), rep.errors
    assert res.access_control == ("PACE" if pace else "BAC")
    assert res.passive_auth is Check.PASSED and res.active_auth is Check.PASSED
    assert rep.portrait is not None and len(rep.files["DG2"]) > 32767
    assert rep.steps["DG2"].apdus > 100  # short reads of a 40 KB portrait
    assert any("extended length refused" in e for e in rep.errors)


# --- 6. a lost card keeps what was done ---------------------------------------------------


class PulledTransport:
    """``PcscTransport``'s shape over the virtual chip in-process; the card leaves after
    ``pull_after`` APDUs as pyscard reports it (``CardRemoved``)."""

    def __init__(self, chip: VirtualChip, pull_after: int) -> None:
        self.chip, self.pull_after, self.sent = chip, pull_after, 0

    def connect(self, wait_s: float = 0.0) -> bytes:
        self.chip.reset()
        return self.chip.atr

    def transmit(self, apdu: bytes) -> bytes:
        from drivers.chip import CardRemoved

        if self.sent >= self.pull_after:
            raise CardRemoved("chip", "card lost: the card was removed")
        self.sent += 1
        return self.chip.answer(apdu)

    def close(self) -> None:
        pass


def test_lost_card_report_keeps_what_was_done() -> None:
    from drivers.chip import read_once
    from gate.config import PcscChipConfig

    chip = VirtualChip(pace=False, extended=False)
    tr = PulledTransport(chip, 62)
    rep, portrait = read_once(
        PcscChipConfig(type="pcsc", pace="never"),
        chip.trust_store(),
        chip.holder.mrz_record(),
        transport=tr,  # type: ignore[arg-type]
    )
    res = rep.result()
    assert res.reasons == (ReasonCode.CHIP_READ_ERROR,)
    assert res.access_control == "BAC" and res.apdus == 62
    assert "DG1" in rep.files and rep.steps["bac"].apdus == 3
    assert "removed" in rep.errors[-1] and portrait is None
    assert rep.elapsed_s > 0


# --- 5. a card that stops answering --------------------------------------------------------


class FrozenConnection:
    """pyscard's connection over the virtual chip; after ``freeze_after`` APDUs the card
    goes silent and ``transmit`` blocks as pcscd does, until the card is reset."""

    def __init__(self, chip: VirtualChip, freeze_after: int) -> None:
        import threading

        self.chip, self.freeze_after, self.sent = chip, freeze_after, 0
        self.reset = threading.Event()

    def connect(self) -> None:
        self.chip.reset()

    def getATR(self) -> list[int]:  # noqa: N802 - pyscard's name
        return list(self.chip.atr)

    def transmit(self, apdu: list[int]) -> tuple[list[int], int, int]:
        from smartcard.Exceptions import CardConnectionException

        if self.sent >= self.freeze_after:
            self.reset.wait(30)
            raise CardConnectionException("card reset")
        self.sent += 1
        resp = self.chip.answer(bytes(apdu))
        return list(resp[:-2]), resp[-2], resp[-1]

    def disconnect(self) -> None:
        self.reset.set()


class FrozenReader:
    def __init__(self, conn: FrozenConnection) -> None:
        self.conn = conn

    def createConnection(self) -> FrozenConnection:  # noqa: N802 - pyscard's name
        return self.conn


@pytest.mark.timeout(20)
def test_frozen_card_ends_within_the_apdu_deadline() -> None:
    import time

    from drivers.chip import PcscTransport, read_once
    from gate.config import PcscChipConfig

    chip = VirtualChip(pace=False)
    conn = FrozenConnection(chip, 8)
    tr = PcscTransport("frozen", apdu_timeout_s=0.5)
    tr._reader = lambda: FrozenReader(conn)  # type: ignore[method-assign]
    t0 = time.monotonic()
    rep, portrait = read_once(
        PcscChipConfig(type="pcsc", pace="never", apdu_timeout_s=0.5),
        chip.trust_store(),
        chip.holder.mrz_record(),
        transport=tr,
    )
    took = time.monotonic() - t0
    assert took < 1.5, took
    res = rep.result()
    assert res.reasons == (ReasonCode.CHIP_READ_ERROR,) and portrait is None
    assert "no answer within 0.5 s" in rep.errors[-1]
    assert res.access_control == "BAC" and res.apdus == 8  # the 9th never came back
    assert conn.reset.wait(2), "the frozen card was not reset"


# --- the same class elsewhere: a DG14 keyId that is not one byte -----------------------------


def test_ca_key_id_of_any_size_is_encoded_not_a_crash() -> None:
    from drivers.icao import ca, pace
    from drivers.icao.apdu import Channel

    c = pace.CURVES[13]
    _, pk = pace.keypair(c, (c.gx, c.gy))
    sent: list[bytes] = []

    def transmit(apdu: bytes) -> bytes:
        sent.append(apdu)
        return b"\x6a\x80"  # refuse: only the command matters here

    key = ca.CAKey(ca.ID_CA_ECDH + "2", 300, c, pk)
    with pytest.raises(StatusError):
        ca.perform(Channel(transmit), key)
    assert bytes.fromhex("84 02 01 2C") in sent[0]


def test_portrait_claiming_a_huge_size_is_refused_before_decoding() -> None:
    from drivers.icao import lds
    from drivers.icao.errors import LDSError
    from tests.fuzz.targets_chip import _small_image

    small = _small_image("JPEG")
    huge = bytearray(small)
    sof = huge.find(b"\xff\xc0")
    huge[sof + 5 : sof + 9] = (12000).to_bytes(2, "big") * 2  # height, width in SOF0
    dg2 = lds.build_dg2(small).replace(small, bytes(huge))  # same length: lengths hold
    with pytest.raises(LDSError, match="12000x12000: larger than any passport"):
        lds.parse_dg2(dg2)


def test_jpeg2000_portrait_of_absurd_shape_is_refused_before_decoding() -> None:
    from drivers.icao import lds
    from drivers.icao.errors import LDSError
    from tests.fuzz.targets_chip import _small_image

    jp2 = _small_image("JPEG2000")
    small = jp2[jp2.find(b"\xff\x4f\xff\x51") :]  # the bare codestream
    tall = bytearray(small)
    siz = tall.find(b"\xff\x51")
    tall[siz + 8 : siz + 12] = (262176).to_bytes(4, "big")  # Ysiz: a sliver 262176 high
    dg2 = lds.build_dg2(small).replace(small, bytes(tall))
    with pytest.raises(LDSError, match="larger than any passport"):
        lds.parse_dg2(dg2)
