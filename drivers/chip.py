"""The real ``ChipReader``: an ePassport in a PC/SC reader, through pyscard and pcscd.

pyscard blocks, so each read runs in a worker thread; the asyncio side bounds it with
the configured read timeout and a cancel flag the worker checks before every APDU. The
protocol itself (PACE/BAC, reads, verification) is ``drivers/icao/document.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from drivers.errors import DeviceError
from drivers.icao.document import ReadOptions, ReadReport, read_document
from drivers.icao.pa import TrustStore
from drivers.interfaces import ChipReading, Emit
from gate.config import GateConfig, PcscChipConfig
from gate.reasons import ReasonCode
from gate.results import ChipResult, MrzRecord

log = logging.getLogger(__name__)
DEVICE = "chip"


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


class PcscTransport:
    """One card connection: ``connect`` then ``transmit(apdu) -> response + SW``."""

    def __init__(self, reader: str, apdu_timeout_s: float = 3.0) -> None:
        self.reader_name = reader
        self.apdu_timeout_s = apdu_timeout_s
        self.cancel = threading.Event()
        self.conn = None
        self.atr = b""

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
            try:
                conn.connect()
                break
            except (NoCardException, CardConnectionException) as exc:
                if time.monotonic() >= deadline or self.cancel.is_set():
                    raise CardAbsent(DEVICE, f"no card in {reader}: {exc}") from None
                time.sleep(0.05)
        self.conn = conn
        self.atr = bytes(conn.getATR())
        return self.atr

    def transmit(self, apdu: bytes) -> bytes:
        from smartcard.Exceptions import CardConnectionException

        if self.cancel.is_set():
            raise ChipTimeout(DEVICE, "read cancelled after its timeout")
        if self.conn is None:
            raise CardAbsent(DEVICE, "not connected")
        t = time.monotonic()
        try:
            data, sw1, sw2 = self.conn.transmit(list(apdu))
        except CardConnectionException as exc:
            raise CardRemoved(DEVICE, f"card lost: {exc}") from None
        if time.monotonic() - t > self.apdu_timeout_s:
            raise ChipTimeout(DEVICE, f"APDU took {time.monotonic() - t:.1f} s")
        return bytes(data) + bytes([sw1, sw2])

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already gone with the card
                conn.disconnect()


def options(cfg: PcscChipConfig, now: dt.datetime | None = None) -> ReadOptions:
    ext = {"auto": None, "on": True, "off": False}[cfg.extended_length]
    return ReadOptions(
        pace=cfg.pace == "prefer",
        extended_length=ext,
        max_extended_read=cfg.max_extended_read,
        now=now,
    )


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
    try:
        opts = options(cfg)
        if opts_hook is not None:
            opts = opts_hook(opts)
        rep = read_document(tr.transmit, mrz, trust, opts, atr=atr)
    except ReaderNotFound:
        raise
    except DeviceError as exc:
        rep = ReadReport(present=True)
        rep.add(ReasonCode.CHIP_READ_ERROR, exc.detail)
        rep.elapsed_s = time.perf_counter() - t0
    finally:
        tr.close()
    portrait = rep.portrait.image if rep.portrait is not None else None
    return rep, portrait


class PcscChipReader:
    """``ChipReader`` over PC/SC; see ``build``."""

    def __init__(self, cfg: PcscChipConfig, trust: TrustStore) -> None:
        self.name = DEVICE
        self.cfg = cfg
        self.trust = trust
        self._lock = asyncio.Lock()
        self.last_report: ReadReport | None = None
        self._worker: asyncio.Future | None = None

    async def start(self, emit: Emit) -> None:
        names = await asyncio.to_thread(list_readers)
        if not any(n == self.cfg.reader or n.startswith(self.cfg.reader) for n in names):
            raise ReaderNotFound(DEVICE, f"reader {self.cfg.reader!r} not among {names}")

    async def _drain(self) -> None:
        """Wait (bounded) for a timed-out worker still inside a slow APDU: two reads must
        never share the card, their secure-messaging counters would collide."""
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(worker), self.cfg.apdu_timeout_s + 1.0)

    async def close(self) -> None:
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
                return ChipReading(
                    ChipResult(
                        present=True,
                        reasons=(ReasonCode.CHIP_READ_ERROR,),
                        elapsed_s=self.cfg.read_timeout_s,
                    )
                )
        self.last_report = rep
        result = rep.result()
        if result.present and not result.access_control and not result.reasons:
            result = replace(result, reasons=(ReasonCode.CHIP_READ_ERROR,))
        return ChipReading(result, portrait)


def build(cfg: PcscChipConfig, gate_cfg: GateConfig) -> PcscChipReader:
    """The daemon's factory: trust store loaded once here (CSCA folder, master list, CRLs)."""
    trust = TrustStore.load(cfg.csca_dir, cfg.master_list, cfg.crl_dir)
    if not trust.cscas:
        log.warning("no CSCA certificates configured: passive authentication will refer")
    return PcscChipReader(cfg, trust)
