"""The real ``ChipReader``: an ePassport in a PC/SC reader, through pyscard and pcscd.

pyscard blocks, so each read runs in a worker thread; the asyncio side bounds it with
the configured read timeout and a cancel flag the worker checks before every APDU. The
protocol itself (PACE/BAC, reads, verification) is ``drivers/icao/document.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from drivers.errors import DeviceError
from drivers.icao import ta
from drivers.icao.document import ReadOptions, ReadReport, read_document
from drivers.icao.pa import TrustStore
from drivers.interfaces import ChipReading, Emit
from gate.config import GateConfig, PcscChipConfig
from gate.inputs import DeviceFault, LinkRestored
from gate.reasons import ReasonCode
from gate.results import ChipResult, MrzRecord

log = logging.getLogger(__name__)
DEVICE = "chip"
T = TypeVar("T")


class ReaderNotFound(DeviceError):
    """No PC/SC reader of that name (or pcscd is not running)."""


class CardAbsent(DeviceError):
    """No card in the field."""


class CardRemoved(DeviceError):
    """The card left the field during a read."""


class ChipTimeout(DeviceError):
    """An APDU or the whole read took longer than allowed (a lost tag)."""


def list_readers() -> list[str]:
    from smartcard.pcsc.PCSCExceptions import BaseSCardException
    from smartcard.System import readers

    try:
        return [str(r) for r in readers()]
    except (BaseSCardException, Exception) as exc:  # pcscd down: EstablishContext fails
        raise ReaderNotFound(DEVICE, f"PC/SC unavailable: {exc}") from None


class _CallThread:
    """One daemon thread that runs a transport's blocking pyscard calls, so the caller can
    give up on one at its deadline. A call that never returns (a frozen card or reader)
    keeps only this thread, which the transport then abandons; being a daemon thread it
    never holds up the process's exit."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._run, name="pcsc-call", daemon=True).start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, fut = job
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the caller, who re-raises it
                fut.set_exception(exc)

    def call(self, fn: Callable[[], T], timeout: float) -> T:
        """``fn()`` or ``TimeoutError`` after ``timeout`` seconds (``fn`` still runs)."""
        fut: Future[T] = Future()
        self._jobs.put((fn, fut))
        return fut.result(timeout)

    def stop(self) -> None:
        self._jobs.put(None)


class PcscTransport:
    """One card connection: ``connect`` then ``transmit(apdu) -> response + SW``.

    Every pyscard call has a wall-time bound (``apdu_timeout_s``): pcscd waits on the
    reader as long as the card stays silent, so a frozen card would otherwise hang the
    read. At the deadline the transport gives up the call, powers the card down from
    another thread (which may wait behind the stuck call in pcscd) and raises
    ``ChipTimeout``; the next document gets a new transport."""

    def __init__(self, reader: str, apdu_timeout_s: float = 3.0) -> None:
        self.reader_name = reader
        self.apdu_timeout_s = apdu_timeout_s
        self.cancel = threading.Event()
        self.conn = None
        self.atr = b""
        self._calls: _CallThread | None = None

    def _call(self, fn: Callable[[], T], what: str) -> T:
        if self._calls is None:
            self._calls = _CallThread()
        try:
            return self._calls.call(fn, self.apdu_timeout_s)
        except TimeoutError:
            self._abandon()
            raise ChipTimeout(
                DEVICE, f"{what}: no answer within {self.apdu_timeout_s:.1f} s"
            ) from None

    def _abandon(self) -> None:
        """Leave the stuck call to its thread; reset the card without waiting for it."""
        conn, self.conn = self.conn, None
        calls, self._calls = self._calls, None
        if calls is not None:
            calls.stop()  # ends once the stuck call returns
        if conn is not None:
            threading.Thread(
                target=_disconnect, args=(conn,), name="pcsc-reset", daemon=True
            ).start()

    def _reader(self):  # noqa: ANN202 - pyscard's reader type
        from smartcard.System import readers

        try:
            found = readers()
        except Exception as exc:
            raise ReaderNotFound(DEVICE, f"PC/SC unavailable: {exc}") from None
        exact = [r for r in found if str(r) == self.reader_name]
        prefix = [r for r in found if str(r).startswith(self.reader_name)]
        if exact or len(prefix) == 1:
            return (exact or prefix)[0]
        raise ReaderNotFound(
            DEVICE, f"reader {self.reader_name!r} not among {[str(r) for r in found]}"
        )

    def connect(self, wait_s: float = 0.0) -> bytes:
        from smartcard.Exceptions import CardConnectionException, NoCardException

        reader = self._reader()
        deadline = time.monotonic() + wait_s
        while True:
            conn = reader.createConnection()
            self.conn = conn
            try:
                self._call(conn.connect, "connect")
                break
            except (NoCardException, CardConnectionException) as exc:
                self.conn = None
                _disconnect(conn)
                if time.monotonic() >= deadline or self.cancel.is_set():
                    raise CardAbsent(DEVICE, f"no card in {reader}: {exc}") from None
                time.sleep(0.05)
        self.atr = bytes(self._call(conn.getATR, "ATR"))
        return self.atr

    def transmit(self, apdu: bytes) -> bytes:
        from smartcard.Exceptions import CardConnectionException

        if self.cancel.is_set():
            raise ChipTimeout(DEVICE, "read cancelled after its timeout")
        conn = self.conn
        if conn is None:
            raise CardAbsent(DEVICE, "not connected")
        try:
            data, sw1, sw2 = self._call(lambda: conn.transmit(list(apdu)), "APDU")
        except CardConnectionException as exc:
            raise CardRemoved(DEVICE, f"card lost: {exc}") from None
        return bytes(data) + bytes([sw1, sw2])

    def close(self) -> None:
        conn, self.conn = self.conn, None
        calls, self._calls = self._calls, None
        if conn is not None and calls is not None:
            with contextlib.suppress(Exception):  # already gone with the card, or frozen
                calls.call(lambda: _disconnect(conn), self.apdu_timeout_s)
        if calls is not None:
            calls.stop()


def _disconnect(conn: Any) -> None:
    """Disconnect and release the connection's PC/SC context now: left to pyscard's
    ``__del__`` it may run after pcscd is gone and raise there."""
    with contextlib.suppress(Exception):  # already gone with the card
        getattr(conn, "release", conn.disconnect)()


def options(cfg: PcscChipConfig, now: dt.datetime | None = None) -> ReadOptions:
    ext = {"auto": None, "on": True, "off": False}[cfg.extended_length]
    return ReadOptions(
        pace=cfg.pace == "prefer",
        extended_length=ext,
        max_extended_read=cfg.max_extended_read,
        now=now,
        eac=_terminals(cfg.eac_dir) if cfg.eac_dir else None,
    )


@functools.lru_cache(maxsize=4)
def _terminals(folder: Path) -> dict[str, ta.Terminal]:
    """The EAC trust folder, loaded once (``build`` loads it first, so a broken folder
    stops the daemon at start with its reason, not a traveller's read)."""
    return ta.load_trust(folder)


def read_once(
    cfg: PcscChipConfig,
    trust: TrustStore,
    mrz: MrzRecord,
    transport: PcscTransport | None = None,
    opts_hook: Callable[[ReadOptions], ReadOptions] | None = None,
) -> tuple[ReadReport, bytes | None]:
    """Connect, read, verify, disconnect (blocking). Returns the report and the portrait.
    Raises ``ReaderNotFound``; every card-side failure is a reason in the report."""
    tr = transport or PcscTransport(cfg.reader, cfg.apdu_timeout_s)
    t0 = time.perf_counter()
    try:
        atr = tr.connect(cfg.card_wait_s)
    except CardAbsent as exc:
        rep = ReadReport(present=False)
        rep.add(ReasonCode.CHIP_ABSENT, exc.detail)
        return rep, None
    except ChipTimeout as exc:  # a card in the field that does not answer its power-up
        tr.close()
        rep = ReadReport(present=True)
        rep.add(ReasonCode.CHIP_READ_ERROR, exc.detail)
        rep.elapsed_s = time.perf_counter() - t0
        return rep, None
    try:
        opts = options(cfg)
        if opts_hook is not None:
            opts = opts_hook(opts)
        rep = read_document(tr.transmit, mrz, trust, opts, atr=atr)  # never raises
    finally:
        tr.close()
    portrait = rep.portrait.image if rep.portrait is not None else None
    return rep, portrait


class PcscChipReader:
    """``ChipReader`` over PC/SC; see ``build``.

    Only an unreachable reader (pcscd down, reader unplugged) is a device fault; it is
    reported as ``DeviceFault`` (``ReaderNotFound``) and cleared with ``LinkRestored`` as
    soon as a probe finds the reader again. Whatever happens to one document, a bug of
    ours on its bytes included, ends as a reasoned ``chip_read_error`` for that document.
    """

    PROBE_S = 1.0  # how often a missing reader is looked for

    def __init__(self, cfg: PcscChipConfig, trust: TrustStore) -> None:
        self.name = DEVICE
        self.cfg = cfg
        self.trust = trust
        self._lock = asyncio.Lock()
        self._worker: asyncio.Future | None = None
        self._emit: Emit | None = None
        self._probe: asyncio.Task[None] | None = None

    async def start(self, emit: Emit) -> None:
        """Find the reader; a missing one is a fault the probe clears, not a failed start."""
        self._emit = emit
        try:
            await asyncio.to_thread(self._find_reader)
        except ReaderNotFound as exc:
            log.error("chip reader: %s", exc.detail)
            emit(DeviceFault(DEVICE, exc.detail))
            self._watch()

    def _find_reader(self) -> None:
        names = list_readers()
        if not any(n == self.cfg.reader or n.startswith(self.cfg.reader) for n in names):
            raise ReaderNotFound(DEVICE, f"reader {self.cfg.reader!r} not among {names}")

    def _watch(self) -> None:
        """Look for the lost reader until it answers, then clear the fault."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._probe_reader(), name="chip-reader-probe")

    async def _probe_reader(self) -> None:
        while True:
            await asyncio.sleep(self.PROBE_S)
            try:
                await asyncio.to_thread(self._find_reader)
            except ReaderNotFound:
                continue
            log.info("chip reader %r answers again", self.cfg.reader)
            if self._emit is not None:
                self._emit(LinkRestored(DEVICE))
            return

    async def _drain(self) -> None:
        """Wait (bounded) for a timed-out worker still inside a slow APDU: two reads must
        never share the card, their secure-messaging counters would collide."""
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(worker), self.cfg.apdu_timeout_s + 1.0)

    async def close(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
        await self._drain()

    async def read(self, mrz: MrzRecord) -> ChipReading:
        async with self._lock:
            await self._drain()
            tr = PcscTransport(self.cfg.reader, self.cfg.apdu_timeout_s)
            worker = asyncio.ensure_future(
                asyncio.to_thread(read_once, self.cfg, self.trust, mrz, tr)
            )
            try:
                rep, portrait = await asyncio.wait_for(
                    asyncio.shield(worker), self.cfg.read_timeout_s
                )
            except TimeoutError:
                tr.cancel.set()  # the worker stops before its next APDU
                self._worker = worker  # the next read waits for it to let go of the card
                log.warning("chip read exceeded %.1f s", self.cfg.read_timeout_s)
                return _read_error(self.cfg.read_timeout_s)
            except ReaderNotFound:
                self._watch()  # a device fault (the daemon reports it); the probe clears it
                raise
            except Exception:  # our bug, on this document: it ends with the document
                log.exception("chip read failed unexpectedly")
                return _read_error(0.0)
        # ``rep`` holds the chip's files (DG2 portrait, DG3 fingers): nothing keeps it past
        # this read; the portrait goes to the daemon's vault, which ends with the transaction
        result = rep.result()
        if result.present and not result.access_control and not result.reasons:
            result = replace(result, reasons=(ReasonCode.CHIP_READ_ERROR,))
        return ChipReading(result, portrait, rep.fingers)


def _read_error(elapsed_s: float) -> ChipReading:
    return ChipReading(
        ChipResult(present=True, reasons=(ReasonCode.CHIP_READ_ERROR,), elapsed_s=elapsed_s)
    )


def build(cfg: PcscChipConfig, gate_cfg: GateConfig) -> PcscChipReader:
    """The daemon's factory: trust store loaded once here (CSCA folder, master list, CRLs)."""
    try:
        trust = TrustStore.load(cfg.csca_dir, cfg.master_list, cfg.crl_dir)
        if cfg.eac_dir is not None:
            log.info("EAC terminals for %s", ", ".join(sorted(_terminals(cfg.eac_dir))))
    except (ValueError, OSError) as exc:  # the file is in the message: fix it, then start
        raise DeviceError("chip", f"trust store: {exc}") from None
    if not trust.cscas:
        log.warning("no CSCA certificates configured: passive authentication will refer")
    return PcscChipReader(cfg, trust)
