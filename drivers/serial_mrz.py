"""A document reader that does its own OCR and sends the MRZ as text over a serial line.

Many gate document readers (and USB readers in a virtual-COM mode) read the page
themselves and send the MRZ as text. Two wire formats are accepted, on one port at once:

- **Lines** (keyboard-wedge style): each MRZ line ends with CR, LF or CRLF; an empty line
  ends the document, and so does a pause of ``idle_s`` after the last line (readers
  that send no blank line).
- **Framed**: STX (0x02), the MRZ lines separated by CR and/or LF, ETX (0x03). An STX
  drops any unfinished text before it (a reader restarted mid-document).

Spaces and tabs around a line are dropped; nothing else is changed, so lower case, stray
bytes or wrong lengths reach ``gate.mrz.parse_mrz`` and come back as reason codes (the
traveller is referred, the gate goes on). A line longer than ``MAX_LINE`` or a document
of more than ``MAX_LINES`` lines is cut off and reported as unreadable, so a babbling
line cannot grow memory. ``MrzFramer`` is the pure framing (bytes in, documents out);
``SerialMrzScanner`` is the ``DocumentScanner`` device on pyserial. The text reader
gives no per-character probabilities: its results carry confidence 1.0 and no
uncertain fields; the chip's DG1 remains the cross-check. It cannot tell when a
document is taken away, so it never reports ``DocumentRemoved``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import serial

from drivers.errors import DeviceError
from drivers.interfaces import Emit
from gate.config import GateConfig, SerialMrzScannerConfig
from gate.inputs import DeviceFault, DocumentPlaced, LinkRestored
from gate.mrz import parse_mrz
from gate.reasons import ReasonCode as R
from gate.results import DocumentResult

log = logging.getLogger(__name__)

STX, ETX = 0x02, 0x03
MAX_LINE = 64  # an MRZ line has at most 44 characters
MAX_LINES = 3


@dataclass(frozen=True)
class TextDocument:
    """The lines of one document as received, or ``overflow`` when it was cut off."""

    lines: tuple[str, ...]
    overflow: bool = False


class MrzFramer:
    """Bytes in, documents out; no I/O and no clock (``flush`` is the caller's timeout)."""

    def __init__(self) -> None:
        self._line = bytearray()
        self._lines: list[str] = []
        self._overflow = False
        self._framed = False
        self._last_cr = False

    def feed(self, data: bytes) -> list[TextDocument]:
        out: list[TextDocument] = []
        for b in data:
            if b == STX:
                self._reset()
                self._framed = True
            elif b == ETX:
                self._end_line()
                out += self._finish()
                self._framed = False
            elif b in (0x0D, 0x0A):
                if b == 0x0A and self._last_cr:  # the LF of a CRLF
                    self._last_cr = False
                    continue
                blank = not self._line.strip(b" \t")
                self._end_line()
                if blank and not self._framed:
                    out += self._finish()  # an empty line ends a document
            elif len(self._line) < MAX_LINE:
                self._line.append(b)
            else:
                self._overflow = True
            self._last_cr = b == 0x0D
        return out

    def pending(self) -> bool:
        """Text received that no terminator has closed yet."""
        return bool(self._lines or self._line.strip(b" \t"))

    def flush(self) -> list[TextDocument]:
        """End the document now (the line fell silent): what was received is one."""
        if self._framed:
            return []  # a frame ends only with its ETX; an STX restarts it
        self._end_line()
        return self._finish()

    def _end_line(self) -> None:
        text = self._line.decode("latin-1").strip(" \t")
        self._line.clear()
        if not text:
            return
        if len(self._lines) >= MAX_LINES:
            self._overflow = True
        else:
            self._lines.append(text)

    def _finish(self) -> list[TextDocument]:
        doc = TextDocument(tuple(self._lines), self._overflow)
        self._reset()
        return [doc] if doc.lines or doc.overflow else []

    def _reset(self) -> None:
        self._line.clear()
        self._lines = []
        self._overflow = False
        self._framed = False


def result_of(doc: TextDocument | None, today: dt.date, t0: float) -> DocumentResult:
    """The gate's view of a text document: parsed with OCR repair (the reader's own OCR
    confuses O and 0 as any does), every failure a reason code."""
    if doc is None:
        return DocumentResult(None, reasons=(R.DOC_NOT_FOUND,))
    if doc.overflow:
        return DocumentResult(None, reasons=(R.DOC_UNREADABLE,), elapsed_s=time.perf_counter() - t0)
    rec = parse_mrz(doc.lines, today=today, repair=True)
    return DocumentResult(
        mrz=rec, confidence=1.0, reasons=rec.reasons, elapsed_s=time.perf_counter() - t0
    )


class SerialMrzScanner:
    """``devices.scanner: {type: serial_mrz, port: /dev/ttyUSB0}``: a document is placed
    when its text arrives; ``read`` answers with the last document not yet read."""

    def __init__(self, cfg: SerialMrzScannerConfig, name: str = "scanner") -> None:
        self.name = name
        self.cfg = cfg
        self._framer = MrzFramer()
        self._doc: TextDocument | None = None
        self._lock = threading.Lock()
        self._port: serial.SerialBase | None = None
        self._task: asyncio.Task[None] | None = None

    def _open(self) -> serial.SerialBase:
        return serial.serial_for_url(
            self.cfg.port, baudrate=self.cfg.baudrate, timeout=min(0.1, self.cfg.idle_s)
        )

    async def start(self, emit: Emit) -> None:
        absent = None
        try:
            self._port = await asyncio.to_thread(self._open)
        except ValueError as exc:  # a malformed port URL or setting: no retry heals it
            raise DeviceError(self.name, f"cannot open {self.cfg.port}: {exc}") from exc
        except (serial.SerialException, OSError) as exc:
            # absent at boot (a USB reader enumerates late, a cable is out): out of service
            # until it opens, as the barrier does. Failing the start would crash-loop the
            # daemon until systemd gave up on the lane (StartLimitBurst).
            absent = f"{self.cfg.port}: {exc}"
        self._task = asyncio.create_task(self._listen(emit, absent), name=f"{self.name}-listen")

    async def _listen(self, emit: Emit, absent: str | None = None) -> None:
        last = time.monotonic()
        faulted = absent is not None
        if absent is not None:
            log.error(
                "%s: cannot open %s; trying every %.1f s", self.name, absent, self.cfg.reopen_s
            )
            emit(DeviceFault(self.name, absent))
            await asyncio.sleep(self.cfg.reopen_s)
        while True:
            try:
                port: Any = self._port  # pyserial is untyped
                if port is None:
                    port = await asyncio.to_thread(self._open)
                    self._port = port
                    log.info("%s: %s open again", self.name, self.cfg.port)
                    if faulted:  # the core's fault clears only on this word
                        emit(LinkRestored(self.name))
                    faulted = False
                data = await asyncio.to_thread(port.read, 256)
            except Exception as exc:
                # pyserial raises TypeError when the port vanishes mid-read on some kernels;
                # anything else it (or a USB adapter's driver) raises is the port lost too:
                # it used to end this task, and the lane heard no document again
                if not isinstance(exc, (serial.SerialException, OSError, TypeError)):
                    log.exception("%s: %s failed unexpectedly", self.name, self.cfg.port)
                if not faulted:
                    log.error("%s: %s lost: %s", self.name, self.cfg.port, exc)
                    emit(DeviceFault(self.name, f"{self.cfg.port}: {exc}"))
                    faulted = True
                self._drop_port()
                await asyncio.sleep(self.cfg.reopen_s)
                continue
            now = time.monotonic()
            try:
                docs = self._framer.feed(data) if data else []
                if data:
                    last = now
                elif self._framer.pending() and now - last >= self.cfg.idle_s:
                    docs = self._framer.flush()
            except Exception:  # never seen (the framer is fuzzed): these bytes, not the task
                log.exception("%s: bytes not understood; dropped", self.name)
                self._framer = MrzFramer()
                docs = []
            for doc in docs:
                log.info("%s: document of %d line(s) received", self.name, len(doc.lines))
                with self._lock:
                    self._doc = doc
                emit(DocumentPlaced())

    def _drop_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()

    async def read(self) -> DocumentResult:
        t0 = time.perf_counter()
        with self._lock:  # each document answers one read: never a stale one for the next
            doc, self._doc = self._doc, None
        return result_of(doc, dt.date.today(), t0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._drop_port()


def build(cfg: SerialMrzScannerConfig, gate_cfg: GateConfig) -> SerialMrzScanner:
    """The wiring hook: ``devices.scanner: {type: serial_mrz, port: ...}``."""
    return SerialMrzScanner(cfg)
