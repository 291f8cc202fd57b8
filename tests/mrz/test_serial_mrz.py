"""The text-sending document reader: framing (pure) and the device over a real pty."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.serial_mrz import MAX_LINES, MrzFramer, SerialMrzScanner, TextDocument, result_of
from gate.config import ScannerConfig, SerialMrzScannerConfig
from gate.inputs import DeviceFault, DocumentPlaced
from gate.reasons import ReasonCode as R
from sim.serial_mrz import SerialMrzReaderSim

L1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
L2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
TD3 = (L1, L2)


@pytest.mark.parametrize("eol", [b"\r", b"\n", b"\r\n"])
def test_lines_ended_by_a_blank_line(eol: bytes) -> None:
    f = MrzFramer()
    wire = L1.encode() + eol + L2.encode() + eol + eol
    assert f.feed(wire) == [TextDocument(TD3)]
    assert not f.pending()


def test_a_document_split_anywhere_is_one_document() -> None:
    wire = b"\x02" + L1.encode() + b"\r\n" + L2.encode() + b"\x03"
    for cut in range(1, len(wire)):
        f = MrzFramer()
        assert f.feed(wire[:cut]) + f.feed(wire[cut:]) == [TextDocument(TD3)], cut


def test_framed_documents_and_resync_on_stx() -> None:
    f = MrzFramer()
    wire = b"\x02P<UTOHALF" + b"\x02" + L1.encode() + b"\r" + L2.encode() + b"\r\x03"
    assert f.feed(wire) == [TextDocument(TD3)]
    assert f.feed(b"\x02" + L1.encode()) == [] and f.flush() == []  # a frame waits for ETX


def test_silence_ends_a_document_without_a_blank_line() -> None:
    f = MrzFramer()
    assert f.feed(f"{L1}\r\n{L2}\r\n".encode()) == []
    assert f.pending() and f.flush() == [TextDocument(TD3)]


def test_babble_is_bounded_and_unreadable() -> None:
    f = MrzFramer()
    (doc,) = f.feed(b"X" * 10_000 + b"\r\n\r\n")
    assert doc.overflow and len(doc.lines[0]) <= 64
    (doc,) = f.feed(b"A\rB\rC\rD\rE\r\r")
    assert doc.overflow and len(doc.lines) == MAX_LINES
    assert result_of(doc, dt.date(2026, 11, 25), 0.0).reasons == (R.DOC_UNREADABLE,)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_documents_the_parser_judges(data: bytes) -> None:
    f = MrzFramer()
    for doc in f.feed(data) + f.flush():
        assert len(doc.lines) <= MAX_LINES and all(0 < len(x) <= 64 for x in doc.lines)
        res = result_of(doc, dt.date(2026, 11, 25), 0.0)
        assert res.reasons or (res.mrz is not None and res.mrz.valid)


def test_result_parses_and_repairs() -> None:
    res = result_of(TextDocument((L1, L2.replace("7408122", "74O8122"))), dt.date(2026, 11, 25), 0)
    assert res.mrz is not None and res.mrz.valid and res.confidence == 1.0
    assert res.mrz.date_of_birth == dt.date(1974, 8, 12)
    bad = result_of(TextDocument((L1.lower(), L2)), dt.date(2026, 11, 25), 0)
    assert bad.mrz is not None and not bad.mrz.valid and R.DOC_FORMAT in bad.reasons
    assert result_of(None, dt.date(2026, 11, 25), 0).reasons == (R.DOC_NOT_FOUND,)


def test_config_picks_the_serial_reader() -> None:
    from pydantic import TypeAdapter, ValidationError

    pick = TypeAdapter(ScannerConfig).validate_python
    cfg = pick({"type": "serial_mrz", "port": "/dev/ttyUSB0"})
    assert isinstance(cfg, SerialMrzScannerConfig) and cfg.baudrate == 9600
    with pytest.raises(ValidationError):
        pick({"type": "serial_mrz", "port": "/dev/ttyUSB0", "parity": "E"})  # unknown key


async def _wait(seen: list[object], n: int) -> None:
    for _ in range(200):
        if len(seen) >= n:
            return
        await asyncio.sleep(0.01)


async def test_device_over_a_pty() -> None:
    with SerialMrzReaderSim() as reader:
        scanner = SerialMrzScanner(
            SerialMrzScannerConfig(type="serial_mrz", port=reader.port, idle_s=0.1)
        )
        seen: list[object] = []
        await scanner.start(seen.append)
        try:
            reader.send(TD3)  # wedge style, a blank line ends it
            await _wait(seen, 1)
            assert isinstance(seen[0], DocumentPlaced)
            res = await scanner.read()
            assert res.mrz is not None and res.mrz.valid and res.mrz.surname == "ERIKSSON"
            again = await scanner.read()  # one read per document: never a stale one
            assert again.mrz is None and again.reasons == (R.DOC_NOT_FOUND,)
            reader.send(TD3, framed=True)
            reader.write(b"P<UTOJUNK\r\n")  # a line, then silence: idle_s ends it
            await _wait(seen, 3)
            assert len(seen) == 3
            res = await scanner.read()
            assert res.mrz is not None and not res.mrz.valid and R.DOC_FORMAT in res.reasons
        finally:
            await scanner.close()


async def test_a_malformed_port_fails_at_start() -> None:
    """No retry heals a port URL pyserial cannot parse: the start fails (exit 3)."""
    from drivers.errors import DeviceError

    scanner = SerialMrzScanner(SerialMrzScannerConfig(type="serial_mrz", port="nosuch://x"))
    with pytest.raises(DeviceError):
        await scanner.start(lambda _: None)


async def test_a_reader_absent_at_boot_is_out_of_service_until_it_appears(tmp_path) -> None:
    """A USB reader that enumerates after the daemon starts failed the start: systemd
    restarted the daemon every 2 s and gave up after 10, leaving the lane dead. Now the
    gate starts out of service for the scanner and clears it when the port appears."""
    from gate.inputs import LinkRestored

    with SerialMrzReaderSim() as reader:
        late = tmp_path / "ttyMRZ"  # the device node, not there yet
        scanner = SerialMrzScanner(
            SerialMrzScannerConfig(type="serial_mrz", port=str(late), idle_s=0.1, reopen_s=0.05)
        )
        seen: list[object] = []
        await scanner.start(seen.append)
        try:
            await _wait(seen, 1)
            assert isinstance(seen[0], DeviceFault) and str(late) in seen[0].detail
            await asyncio.sleep(0.2)
            assert len(seen) == 1  # said once, not once per attempt
            late.symlink_to(reader.port)  # udev creates the node
            await _wait(seen, 2)
            assert seen[1] == LinkRestored("scanner")
            reader.send(TD3, framed=True)
            await _wait(seen, 3)
            res = await scanner.read()
            assert res.mrz is not None and res.mrz.valid
        finally:
            await scanner.close()


def test_wiring_builds_the_serial_reader() -> None:
    from autogate.wiring import DRIVERS

    assert DRIVERS[("scanner", "serial_mrz")] == "drivers.serial_mrz"
    assert DeviceFault("scanner").device == "scanner"


async def test_gate_config_builds_it_through_the_wiring(tmp_path) -> None:
    from pathlib import Path

    import yaml

    from autogate.wiring import build_devices
    from gate.config import parse_config

    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "config" / "gate.example.yaml").read_text())
    data["storage"] = {"data_dir": str(tmp_path), "journal": str(tmp_path / "journal.jsonl")}
    with SerialMrzReaderSim() as reader:
        data["devices"]["scanner"] = {"type": "serial_mrz", "port": reader.port, "idle_s": 0.1}
        cfg = parse_config(yaml.safe_dump(data))
        devices, _ = build_devices(cfg)
        assert isinstance(devices.scanner, SerialMrzScanner)
        seen: list[object] = []
        await devices.scanner.start(seen.append)
        try:
            reader.send(TD3, framed=True)
            await _wait(seen, 1)
            res = await devices.scanner.read()
            assert res.mrz is not None and res.mrz.valid and res.mrz.document_number == "L898902C3"
        finally:
            await devices.scanner.close()


async def test_a_port_that_comes_back_clears_its_fault(monkeypatch) -> None:
    """The port lost mid-service is a DeviceFault (out of service); when it opens again
    the reader said so only in its log, so the core's fault stayed and 'in service' was
    refused until a restart. Now LinkRestored follows the reopened port."""
    import serial

    from gate.inputs import LinkRestored

    class Port:
        def __init__(self, fail: bool) -> None:
            self.fail = fail

        def read(self, n: int) -> bytes:
            if self.fail:
                raise serial.SerialException(
                    "device reports readiness to read but returned no data"
                )
            return b""

        def close(self) -> None:
            pass

    ports = iter([Port(True), Port(False)])
    scanner = SerialMrzScanner(
        SerialMrzScannerConfig(type="serial_mrz", port="/dev/ttyMRZ", idle_s=0.1, reopen_s=0.05)
    )
    monkeypatch.setattr(scanner, "_open", lambda: next(ports))
    seen: list[object] = []
    await scanner.start(seen.append)
    try:
        for _ in range(200):
            if any(isinstance(e, LinkRestored) for e in seen):
                break
            await asyncio.sleep(0.01)
        assert [type(e) for e in seen] == [DeviceFault, LinkRestored], seen
        assert seen[1] == LinkRestored("scanner")
    finally:
        await scanner.close()


async def test_an_unexpected_error_from_the_port_or_the_framer_does_not_end_the_reader(
    monkeypatch,
) -> None:
    """A USB adapter's driver raising something pyserial does not document, or a framer
    bug on odd bytes, ended the listening task: the lane heard no document again, and
    nothing said so. Now the port is lost and reopened (fault, then LinkRestored), and
    odd bytes are dropped; the next document reads."""
    from drivers import serial_mrz
    from gate.inputs import DocumentPlaced, LinkRestored

    doc = b"P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\r\nL898902C36UTO7408122F1204159ZE184226B<<<<<10\r\n\r\n"

    class Port:
        def __init__(self, chunks: list[object]) -> None:
            self.chunks = chunks

        def read(self, n: int) -> bytes:
            item = self.chunks.pop(0) if self.chunks else b""
            if isinstance(item, Exception):
                raise item
            return item  # type: ignore[return-value]

        def close(self) -> None:
            pass

    ports = iter([Port([ValueError("usb: urb status -71")]), Port([b"\x00odd", doc])])
    scanner = SerialMrzScanner(
        SerialMrzScannerConfig(type="serial_mrz", port="/dev/ttyMRZ", idle_s=0.1, reopen_s=0.05)
    )
    monkeypatch.setattr(scanner, "_open", lambda: next(ports))
    real_feed = serial_mrz.MrzFramer.feed
    fed = 0

    def feed(self, data: bytes):  # type: ignore[no-untyped-def]
        nonlocal fed
        fed += 1
        if fed == 1:
            raise IndexError("framer bug on odd bytes")
        return real_feed(self, data)

    monkeypatch.setattr(serial_mrz.MrzFramer, "feed", feed)
    seen: list[object] = []
    await scanner.start(seen.append)
    try:
        for _ in range(300):
            if DocumentPlaced() in seen:
                break
            await asyncio.sleep(0.01)
        assert [type(e) for e in seen] == [DeviceFault, LinkRestored, DocumentPlaced], seen
        res = await scanner.read()
        assert res.mrz is not None and res.mrz.valid and res.mrz.document_number == "L898902C3"
    finally:
        await scanner.close()
