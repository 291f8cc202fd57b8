"""The asyncio daemon: feeds device inputs and clock ticks into the core, runs its actions.

One queue of inputs, one consumer: ``step`` is called from one place only, so the core
never sees two inputs at once. Slow device work (reading the chip, capturing a face)
runs in tasks that report back through the same queue, so timeouts keep ticking while a
device works. Door commands run in order on their own queue: the core closes one door
before it opens the other, and the barrier must see them in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from autogate import thumb as thumb_channel
from autogate.vault import Vault
from drivers.errors import DeviceError
from drivers.interfaces import (
    Barrier,
    Camera,
    ChipReader,
    ChipReading,
    DocumentScanner,
    EventBus,
    FaceVerifier,
    Watchlist,
)
from gate import events, machine
from gate import inputs as i
from gate.actions import (
    OUTCOME_EVENTS,
    AckCommand,
    Action,
    CaptureFace,
    CaptureThumb,
    CheckLists,
    CloseDoor,
    EventType,
    ForgetBiometrics,
    OpenDoor,
    Publish,
    ReadChip,
    ReadDocument,
)
from gate.commands import Refusal
from gate.config import GateConfig
from gate.journal import Journal, iter_records, journal_files
from gate.reasons import ReasonCode
from gate.referral_image import LEAF as IMAGE_LEAF
from gate.referral_image import build_image_message
from gate.referral_image import load_public_key as load_image_key
from gate.results import ChipResult, DocumentResult, FaceResult, ListsResult

log = logging.getLogger("autogate.daemon")

# journal records held in memory while the disk refuses them (about 200 bytes each)
JOURNAL_BACKLOG = 10_000


@dataclass
class Devices:
    scanner: DocumentScanner
    chip: ChipReader
    camera: Camera
    face: FaceVerifier
    barrier: Barrier
    bus: EventBus
    lists: Watchlist
    thumb: thumb_channel.ThumbVerifier | None = None  # absent: no thumb channel


def interrupted_transaction(path: Path) -> str | None:
    """The last transaction the journal saw start but never end (a crash mid-crossing)."""
    files = journal_files(path)[-2:]  # a transaction may straddle a journal rotation
    if not files:
        return None
    open_txn: str | None = None
    outcomes = {e.value for e in OUTCOME_EVENTS}
    for rec in (r for f in files for r in iter_records(f)):
        if not isinstance(rec, dict):
            continue
        data = rec.get("data") or {}
        if rec.get("kind") == "txn.start":
            open_txn = data.get("txn_id")
        elif (
            rec.get("kind") == "event"
            and data.get("type") in outcomes
            and data.get("txn_id") == open_txn
        ):
            open_txn = None
    return open_txn


def _field_of(exc: events.EventError) -> str:
    """The top-level field an ``EventError`` names (``"alarm/1: device: ..."`` gives
    ``device``; ``data.mrz`` gives ``mrz``), or ""."""
    parts = [p.strip() for p in str(exc).split(":")]
    where = parts[1] if len(parts) > 2 and "/" in parts[0] else parts[0]
    first = where.split(".")[0]
    return where.split(".")[1] if first == "data" and "." in where else first


class Daemon:
    def __init__(
        self,
        cfg: GateConfig,
        devices: Devices,
        settings: machine.Settings,
        clock: Callable[[], float] = time.time,
        vault: Vault | None = None,
        steady: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.dev = devices
        self.clock = clock  # wall time: what events and the journal are stamped with
        # The core's timers run on a clock that never jumps: wall time at start plus
        # monotonic time since. On the wall clock, an NTP step back of an hour held every
        # timeout for that hour (a lane stuck in DOC_CHECK or with someone in the
        # mantrap), and a step forward fired them all at once.
        self._steady = steady
        self._steady_origin = (clock(), steady())
        self.vault = vault or Vault()
        key = getattr(cfg.devices.bus, "image_key", None)
        self.image_key = load_image_key(key) if key else None  # the console's, to seal photos
        self._said_no_image_key = False  # said once per gate, not once per referral
        self.journal = Journal(cfg.storage.journal, rotate_bytes=cfg.ops.audit.rotate_bytes)
        self._unjournalled: deque[tuple[str, dict[str, Any], str]] = deque()
        self._journal_lost = 0  # records beyond JOURNAL_BACKLOG while the disk failed
        self._journal_failing = False
        self.core_errors = 0  # inputs the core raised on (dropped)
        self.gate = machine.initial(settings, self.core_now(), boot=uuid.uuid4().hex[:8])
        self.queue: asyncio.Queue[i.Input] = asyncio.Queue()
        self.doors: asyncio.Queue[Action] = asyncio.Queue()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.thumb_cancel: dict[str, threading.Event] = {}  # per transaction, while asked
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = asyncio.Event()
        self.alive_at = 0.0  # last time the core loop completed an iteration (watchdog)
        self.steps = 0
        # ops hooks (metrics, systemd notify, logs): on_step(before, event, after, actions,
        # elapsed_s) after each step, on_publish(leaf, payload, ok) after each publish
        self.observers: list[Any] = []
        if hasattr(devices.bus, "on_refused"):  # refused commands never reach the core
            devices.bus.on_refused = self._command_refused

    # -- inputs ------------------------------------------------------------------

    def emit(self, event: i.Input) -> None:
        """Queue an input; safe from any thread (drivers' worker threads included)."""
        loop = self.loop
        if loop is None:
            self.queue.put_nowait(event)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.queue.put_nowait(event)
        else:
            loop.call_soon_threadsafe(self.queue.put_nowait, event)

    def _command_refused(self, refusal: Refusal) -> None:
        """A command the bus refused (it answers with the ack and the alarm): journal it
        in the hash chain, where accepted commands are, and tell the observers (metrics)."""
        self._journal(
            "command.refused",
            {
                "reason": refusal.reason.value,
                "detail": refusal.detail,
                "command": refusal.command.value if refusal.command else None,
                "command_id": refusal.command_id,
                "officer": refusal.officer,
                # more than one: a flood's refusals held back and reported together
                **({"count": refusal.count} if refusal.count > 1 else {}),
            },
        )
        self._observe("on_command_refused", refusal)

    # -- main loop ----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self.loop = asyncio.get_running_loop()
        interrupted = interrupted_transaction(self.cfg.storage.journal)
        self._journal("daemon.start", {"boot": self.gate.boot, "interrupted_txn": interrupted})
        door_worker = self._spawn(self._door_worker())
        try:
            # devices open at once: serial, broker, PC/SC and camera wait on I/O, and a
            # gate's cold start is the slowest of them, not their sum
            await asyncio.gather(*(dev.start(self.emit) for dev in self._device_list()))
            self.emit(i.Started(interrupted_txn=interrupted))
            await self._loop(stop)
        finally:
            await self._shutdown(door_worker)

    def _device_list(self) -> list[Any]:
        d = self.dev
        return [d.bus, d.barrier, d.scanner, d.chip, d.camera]

    async def _loop(self, stop: asyncio.Event) -> None:
        tick = self.cfg.tick_s
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                getter = asyncio.ensure_future(self.queue.get())
                done, _ = await asyncio.wait(
                    {getter, stopping}, timeout=tick, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    self._step(getter.result())
                else:
                    getter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getter
                    self._step(i.Tick())
                self.alive_at = time.monotonic()
                if self.gate.state is not machine.State.OUT_OF_SERVICE or self.steps > 1:
                    self.ready.set()
        finally:
            stopping.cancel()

    def core_now(self) -> float:
        """The core's time: seconds like the wall clock's, but never stepped."""
        wall0, steady0 = self._steady_origin
        return wall0 + (self._steady() - steady0)

    def _step(self, event: i.Input) -> None:
        if self._unjournalled or self._journal_lost:
            self._flush_journal()  # a journal that failed: is it writable again?
        before = self.gate
        now = self.core_now()
        started = time.perf_counter()
        try:
            self.gate, actions = machine.step(before, event, now)
        except Exception:
            # a bug in the core for this input (never seen: the core is fuzzed): the
            # input is dropped and the gate stays as it was. Raised, it ended the daemon,
            # and a device that sends the same input again ended every restart too
            self.core_errors += 1
            log.exception("the core failed on %s; input dropped", type(event).__name__)
            return
        elapsed = time.perf_counter() - started
        self.steps += 1
        if self.gate.state is not before.state:
            self._journal(
                "state",
                {
                    "from": before.state.value,
                    "to": self.gate.state.value,
                    "input": type(event).__name__,
                },
            )
            log.info(
                "state %s -> %s on %s",
                before.state.value,
                self.gate.state.value,
                type(event).__name__,
            )
        txn = self.gate.txn
        if txn is not None and (before.txn is None or before.txn.id != txn.id):
            self._journal("txn.start", {"txn_id": txn.id})
            self.vault.begin(txn.id)
        for act in actions:
            try:
                self._act(act, now)
            except Exception:
                # a bug in carrying out one action must not skip the next: the core's
                # actions of one step go together (an alarm, then the doors closed)
                log.exception("action %s failed; the step's other actions go on", act)
        self._observe("on_step", before, event, self.gate, actions, elapsed)

    # -- actions -------------------------------------------------------------------

    def _act(self, act: Action, now: float) -> None:
        match act:
            case OpenDoor() | CloseDoor():
                self._journal("door", {"command": type(act).__name__, "door": act.door.value})
                self.doors.put_nowait(act)
            case ReadDocument(txn_id=txn):
                self._spawn(self._guard("scanner", self._read_document(txn)))
            case ReadChip(txn_id=txn, mrz=mrz):
                self._spawn(self._guard("chip", self._read_chip(txn, mrz)))
            case CheckLists(txn_id=txn, mrz=mrz):
                self._spawn(self._guard("lists", self._check_lists(txn, mrz)))
            case CaptureFace(txn_id=txn):
                self._spawn(self._guard("camera", self._capture_face(txn)))
            case CaptureThumb(txn_id=txn, timeout_s=timeout):
                self._spawn(self._capture_thumb(txn, timeout))
            case ForgetBiometrics(txn_id=txn, keep_for_referral=keep):
                self._stop_thumb(txn)
                self.vault.forget(txn, keep)
                # what devices keep of it goes too: the portrait's template, the last frame
                for device in (self.dev.face, self.dev.camera):
                    forget = getattr(device, "forget", None)
                    if forget is not None:
                        forget()
            case Publish():
                self._send(act)
            case AckCommand():
                self._journal(
                    "command",
                    {
                        "command": act.command.value,
                        "command_id": act.command_id,
                        "accepted": act.accepted,
                        "detail": act.detail,
                    },
                )
                self._send(events.ack_action(act))

    def _send(self, act: Publish) -> None:
        """Journal the event (no personal data), build its wire form, hand it to the bus."""
        reasons = [r.value for r in act.reasons]
        if (
            events.schema_id(act.type) in ("crossing/1", "referral/1")
            and "direction" not in act.data
        ):
            # the central record tells an entry from an exit by it (overstay, docs/ingest.md)
            act = replace(act, data={**act.data, "direction": self.cfg.gate.direction})
        self._journal("event", {"type": act.type.value, "txn_id": act.txn_id, "reasons": reasons})
        try:
            payload = self._payload(act)
        except events.EventError as exc:
            # our bug, not the traveller's: the event still goes out, without what would
            # not validate (an officer must see the alarm or referral, the central record
            # the crossing), and the log says what was dropped
            log.error("event %s not publishable as built: %s", act.type.value, exc)
            note = {"detail": f"event data not publishable: {exc}"}
            # first without the one field the error names (a NaN timing costs the
            # timings, not the crossing's document), then with nothing but the direction
            field = _field_of(exc)
            fewer = {k: v for k, v in act.data.items() if k != field and k != "detail"}
            keep = {k: v for k, v in act.data.items() if k == "direction"}
            tries = [fewer, keep] if field in act.data else [keep]
            for data in tries:
                try:
                    payload = self._payload(replace(act, data={**data, **note}))
                    break
                except events.EventError as again:
                    last = again
            else:
                log.error("event %s not publishable at all: %s", act.type.value, last)
                return
        leaf = events.topic_leaf(act.type)
        self._spawn(self._publish(leaf, payload, retain=act.type is EventType.GATE_STATUS))
        if act.type is EventType.REFERRAL_OPENED and act.txn_id:
            self._send_images(act)

    def _payload(self, act: Publish) -> dict[str, Any]:
        return events.build_payload(
            act,
            site=self.cfg.gate.site,
            gate=self.cfg.gate.id,
            ts=dt.datetime.fromtimestamp(self.clock(), dt.UTC),  # wall time, not the core's
            event_id=str(uuid.uuid4()),
            document_key=getattr(self.dev.bus, "document_key", b""),
        )

    def _send_images(self, act: Publish) -> None:
        """The two photos an officer compares, beside the referral (gate/referral_image.py),
        sealed to the console's key: taken from the vault now, before the core's
        ForgetBiometrics seals or drops them. Without the console's key nothing is sent."""
        if self.image_key is None:
            if not self._said_no_image_key:
                self._said_no_image_key = True
                log.warning(
                    "gate %s/%s: referral images are not sent (no console image_key in"
                    " devices.bus); said once",
                    self.cfg.gate.site,
                    self.cfg.gate.id,
                )
            log.debug("referral images of %s not sent: no console image_key", act.txn_id)
            return
        bio = self.vault.get(act.txn_id or "")
        if bio is None or (bio.portrait is None and bio.best_frame is None):
            return
        frame = None
        if bio.best_frame is not None:
            ok, buf = cv2.imencode(".jpg", bio.best_frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
            frame = buf.tobytes() if ok else None
        portrait = bio.portrait
        if portrait and portrait[:3] != b"\xff\xd8\xff":
            # DG2 is often JPEG 2000, which browsers do not show: the console gets a JPEG
            img = cv2.imdecode(np.frombuffer(portrait, np.uint8), cv2.IMREAD_COLOR)
            portrait = None
            if img is not None:
                ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
                portrait = buf.tobytes() if ok else None
        if not portrait and frame is None:
            return  # nothing the console could show
        face = act.data.get("face") or {}
        try:
            _, body = build_image_message(
                site=self.cfg.gate.site,
                gate=self.cfg.gate.id,
                txn_id=act.txn_id or "",
                portrait_jpeg=portrait,
                frame_jpeg=frame,
                match=face.get("score"),
                match_threshold=face.get("threshold"),
                pad=face.get("pad_score"),
                ts=dt.datetime.fromtimestamp(self.clock(), dt.UTC),
                recipient=self.image_key,
            )
        except ValueError as exc:  # an image the console could not show: say so, go on
            log.warning("referral images of %s not sent: %s", act.txn_id, exc)
            return
        self._spawn(self.dev.bus.publish_transient(IMAGE_LEAF, body))

    async def _publish(self, leaf: str, payload: dict[str, Any], retain: bool = False) -> None:
        try:
            await self.dev.bus.publish(leaf, payload, retain=retain)
        except events.EventError as exc:  # our payload, not the bus: no fault to clear
            log.error("publish to %s refused by its schema: %s", leaf, exc)
            self._observe("on_publish", leaf, payload, False)
        except Exception as exc:  # the bus owns durability; a failure here is a fault
            log.error("publish to %s failed: %s", leaf, exc)
            if "bus" not in self.gate.faults:  # else its alarm fails too: a fault storm
                self.emit(i.DeviceFault("bus", str(exc)))
            self._observe("on_publish", leaf, payload, False)
        else:
            self._observe("on_publish", leaf, payload, True)

    def _observe(self, hook: str, *args: Any) -> None:
        """Tell the ops observers; an observer that fails never stops the gate."""
        for obs in self.observers:
            try:
                getattr(obs, hook, lambda *_: None)(*args)
            except Exception:
                log.exception("observer %s.%s failed", type(obs).__name__, hook)

    async def _read_document(self, txn: str) -> None:
        try:
            result = await self.dev.scanner.read()
        except DeviceError:
            raise  # the reader itself: a device fault
        except Exception:  # a page that hit a bug: this document is unreadable, not the lane
            log.exception("document read of %s failed", txn)
            result = DocumentResult(None, reasons=(ReasonCode.DOC_UNREADABLE,))
        self.emit(i.DocumentRead(txn, result))

    async def _read_chip(self, txn: str, mrz: Any) -> None:
        try:
            reading = await self.dev.chip.read(mrz)
        except DeviceError:
            raise  # the reader itself: a device fault, cleared by the reader's LinkRestored
        except Exception:  # a document's failure ends with that document: a referral
            log.exception("chip read of %s failed", txn)
            reading = ChipReading(ChipResult(present=True, reasons=(ReasonCode.CHIP_READ_ERROR,)))
        kept = self.vault.put_portrait(txn, reading.portrait)
        self.vault.put_fingers(txn, reading.fingers)
        self.emit(i.ChipRead(txn, reading.result))
        prepare = getattr(self.dev.face, "prepare", None)
        if prepare is not None and kept:  # never for a transaction that has ended
            # embed DG2 while the traveller walks in: off the time spent in the mantrap
            self._spawn(self._guard("face", self._prepare_face(prepare, reading.portrait)))

    async def _check_lists(self, txn: str, mrz: Any) -> None:
        try:
            result = await self.dev.lists.check(mrz)
        except Exception as exc:  # an adapter that raises is a check not made: refer
            log.error("watchlist check failed: %s", exc)
            result = ListsResult(unavailable=(self.dev.lists.name,))
        self.emit(i.ListsChecked(txn, result))

    async def _capture_face(self, txn: str) -> None:
        frames = await self.dev.camera.burst(self.cfg.face_burst)  # DeviceError: the camera
        bio = self.vault.get(txn)
        try:
            verification = await self.dev.face.verify(bio.portrait if bio else None, frames)
        except DeviceError:
            raise  # the matcher itself: a device fault
        except Exception:  # a traveller's odd portrait or frames hit a bug: refer them
            log.exception("face verification of %s failed", txn)
            failed = FaceResult(match=False, reasons=(ReasonCode.FACE_UNREADABLE,))
            self.emit(i.FaceVerified(txn, failed))
            return
        self.vault.put_frame(txn, verification.best_frame)
        self.emit(i.FaceVerified(txn, verification.result))

    async def _prepare_face(
        self, prepare: Callable[[bytes | None], Awaitable[None]], data: bytes | None
    ) -> None:
        """The portrait embedded ahead of the burst: only a head start. A failure is
        logged; the verification embeds it again and fails for this traveller alone."""
        try:
            await prepare(data)
        except DeviceError:
            raise
        except Exception:
            log.exception("embedding a portrait ahead of the burst failed")

    async def _capture_thumb(self, txn: str, timeout_s: float) -> None:
        """The live thumb against the chip's DG3 images in the vault. Any failure is this
        traveller's reader fault (the core refers), never a device fault for the lane."""
        verifier = self.dev.thumb
        if verifier is None:  # the core asks only when the settings say a reader exists
            result = thumb_channel.fault("no thumb reader configured")
        else:
            cancel = self.thumb_cancel.setdefault(txn, threading.Event())
            bio = self.vault.get(txn)
            refs = bio.fingers if bio is not None else ()
            try:
                result = await thumb_channel.verify(verifier, refs, timeout_s, cancel)
            finally:
                self.thumb_cancel.pop(txn, None)
        self.emit(i.ThumbVerified(txn, result))

    def _stop_thumb(self, txn: str) -> None:
        """The transaction ended (emergency, fault, referral): the reader stops waiting."""
        cancel = self.thumb_cancel.pop(txn, None)
        if cancel is not None:
            cancel.set()

    async def _guard(self, device: str, work: Awaitable[None]) -> None:
        """A device that fails is a fault input, never a crashed daemon."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except DeviceError as exc:
            log.error("device %s: %s", exc.device, exc.detail)
            self.emit(i.DeviceFault(exc.device, exc.detail))
        except Exception as exc:
            log.exception("device %s failed unexpectedly", device)
            self.emit(i.DeviceFault(device, f"{type(exc).__name__}: {exc}"))

    async def _door_worker(self) -> None:
        """Door commands in the order the core gave them: it closes one door before it
        opens the other. Commands of one kind that come together (both doors released in
        EMERGENCY, both closed on a fault) run at once: each waits for its confirmation,
        and neither may wait behind the other."""
        while True:
            batch = [await self.doors.get()]
            while not self.doors.empty():
                nxt = self.doors.get_nowait()
                if type(nxt) is not type(batch[0]):
                    await self._run_doors(batch)
                    batch = []
                batch.append(nxt)
            await self._run_doors(batch)

    async def _run_doors(self, batch: list[Action]) -> None:
        await asyncio.gather(*(self._door(act) for act in batch))

    async def _door(self, act: Action) -> None:
        try:
            if isinstance(act, OpenDoor):
                await self.dev.barrier.open(act.door)
            elif isinstance(act, CloseDoor):
                await self.dev.barrier.close_door(act.door)
        except asyncio.CancelledError:
            raise
        except DeviceError as exc:
            self.emit(i.DeviceFault("barrier", exc.detail))
        except Exception as exc:
            log.exception("door command failed")
            self.emit(i.DeviceFault("barrier", f"{type(exc).__name__}: {exc}"))

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def _journal(self, kind: str, data: dict[str, Any]) -> None:
        """Append to the audit journal. A journal that cannot be written (disk full, an
        I/O error) used to raise out of the step that was executing the core's actions:
        the daemon died between a door command and the next, and died again at every
        restart. Now the records wait in memory, in order (``JOURNAL_BACKLOG`` at most;
        more are counted and the gap is journalled), the lane goes out of service
        (``DeviceFault("journal")``: nothing crosses unaudited), and both are undone by
        the first write that works again (tried at every tick)."""
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))
        if len(self._unjournalled) >= JOURNAL_BACKLOG:
            self._journal_lost += 1
            return
        self._unjournalled.append((kind, data, ts))
        self._flush_journal()

    def _flush_journal(self) -> None:
        try:
            ts = ""
            while self._unjournalled:
                kind, data, ts = self._unjournalled[0]
                self.journal.append(kind, data, ts)
                self._unjournalled.popleft()
            if self._journal_lost:  # the backlog was full: what came after it is counted
                gap = {"records_lost": self._journal_lost, "backlog": JOURNAL_BACKLOG}
                self.journal.append("journal.gap", gap, ts)
                self._journal_lost = 0
        except OSError as exc:
            if not self._journal_failing:
                self._journal_failing = True
                log.error("audit journal %s not writable: %s", self.journal.path, exc)
                self.emit(i.DeviceFault("journal", f"audit journal not writable: {exc}"))
            return
        if self._journal_failing:
            self._journal_failing = False
            log.info("audit journal %s writable again", self.journal.path)
            self.emit(i.LinkRestored("journal"))

    # -- shutdown --------------------------------------------------------------------

    async def _shutdown(self, door_worker: asyncio.Task[Any]) -> None:
        """Close what can close, let queued publishes reach the bus, release devices."""
        for txn in list(self.thumb_cancel):
            self._stop_thumb(txn)
        pending = [t for t in self.tasks if t is not door_worker]
        if pending:
            _, late = await asyncio.wait(pending, timeout=2.0)
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self.gate.state is not machine.State.EMERGENCY:
            for door in (i.Door.ENTRY, i.Door.EXIT):
                self._journal(
                    "door", {"command": "CloseDoor", "door": door.value, "why": "shutdown"}
                )
                try:
                    await asyncio.wait_for(self.dev.barrier.close_door(door), 2.0)
                except Exception as exc:  # keep going: the other door must close too
                    log.error("closing %s door on shutdown failed: %s", door.value, exc)
        door_worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await door_worker
        for dev in [*reversed(self._device_list()), self.dev.lists, self.dev.face, self.dev.thumb]:
            close = getattr(dev, "close", None)
            if close is None:
                continue
            try:
                if asyncio.iscoroutinefunction(close):
                    await close()
                else:  # the thumb verifier's is blocking (its matcher's worker process)
                    await asyncio.to_thread(close)
            except Exception:
                log.exception("closing %s", getattr(dev, "name", dev))
        self._journal("daemon.stop", {"state": self.gate.state.value})
        if self._unjournalled or self._journal_lost:
            log.error(
                "audit journal %s still not writable at stop: %d records not journalled",
                self.journal.path,
                len(self._unjournalled) + self._journal_lost,
            )
        self.journal.close()
