"""The MQTT ``EventBus``: outbox to broker with QoS 1, retained status, last will, signed commands.

Three workers, one job each:

- ``publish`` (the daemon's loop) validates the payload against its schema and queues it
  for the SQLite outbox; one writer commits what is queued in a single transaction on a
  single I/O thread (group commit: concurrent publishes share the fsync, rows keep the
  order of the calls); it returns when its row is on disk. Nothing is published here.
- the drainer thread reads rows in ``seq`` order and hands them to paho with QoS 1,
  keeping at most ``inflight`` unacknowledged; each PUBACK (``on_publish``, by message
  id) marks its row, and the drainer deletes marked rows in batches. After a reconnect
  paho resends what it still holds; after a restart the drainer starts again from the
  first row left. A crash between PUBACK and delete only causes a duplicate with the same
  ``event_id``.
- paho's network thread (``loop_start``) connects, reconnects with a capped backoff, and
  delivers commands; they are verified on the daemon's loop (``gate.commands``) and an
  accepted one goes to the core as ``OfficerCommand`` through ``emit``. A refused one is
  answered here: a negative ``cmd-ack`` and an ``alarm.raised`` (``gate_command_refused``).

A damaged outbox file is moved aside at start (``gate.outbox.open_outbox``) and named
in an ``alarm.raised`` (``gate_device_fault``, device ``bus``). An outbox that fails
while running (the drainer cannot read it ``DRAIN_FAULT_AFTER`` passes in a row, or a
write fails) is a bus fault: ``DeviceFault("bus")`` to the core (status and metrics show
it), an alarm sent straight to the broker, ``publish()`` raising instead of answering OK,
and ``LinkRestored("bus")`` when it works again. Status is state, not history: while the
outbox is at fault it goes straight to the broker.

On every connect the bus republishes the gate's last status, retained (the broker may
have published the last will, ``online: false`` / ``OFFLINE``, while it was away). The
periodic heartbeat is the daemon's: it publishes ``status`` every ``heartbeat_s``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode as MqttReasonCode

from drivers.errors import DeviceError
from drivers.interfaces import Emit
from gate import events
from gate.actions import EventType, Publish
from gate.commands import (
    NonceStore,
    Refusal,
    RefusalBudget,
    RefusalReason,
    load_public_key,
    verify_command,
)
from gate.config import GateConfig, MqttBusConfig
from gate.events import EventError
from gate.inputs import DeviceFault, LinkRestored, OfficerCommand
from gate.outbox import Outbox, OutboxFull, open_outbox
from gate.reasons import ReasonCode
from gate.takeover import Takeovers

log = logging.getLogger("autogate.bus")

FULL_CLEAR_RATIO = 0.9  # the "outbox full" alarm clears when the backlog falls below this
DRAIN_FAULT_AFTER = 3  # drainer passes failing in a row (about 1.5 s) before a bus fault


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MqttBus:
    """``EventBus`` over paho-mqtt 2.x (MQTT 5) with the durable outbox of ``gate.outbox``."""

    name = "bus"

    def __init__(
        self,
        cfg: MqttBusConfig,
        *,
        site: str,
        gate: str,
        outbox_path: Path,
        password: str | None = None,
        command_keys: dict[str, Ed25519PublicKey] | None = None,
        document_key: bytes = b"",
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.cfg = cfg
        self.site, self.gate = site, gate
        self.outbox_path = outbox_path
        self.document_key = document_key
        self.heartbeat_s = cfg.heartbeat_s
        self.on_refused: Callable[[Refusal], None] | None = None  # e.g. the daemon's journal
        # refusals answered one by one per window; a flood's rest is reported together
        self.refusals = RefusalBudget()
        self._flood_report: asyncio.TimerHandle | None = None
        self.stats = {
            "published": 0,
            "acked": 0,
            "broker_refused": 0,
            "commands_refused": 0,
            "commands_duplicate": 0,
        }
        self._password = password
        self._keys = dict(command_keys or {})
        self._clock = clock
        self._prefix = events.topic(site, gate, "")
        self._outbox: Outbox | None = None
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._emit: Emit | None = None
        self._nonces: NonceStore | None = None
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")
        self._drainer: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._lock = threading.Lock()  # guards the four fields below, never held into paho
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq
        self._early: set[int] = set()  # mids acked before publish() returned their mid
        self._direct: set[int] = set()  # mids of status publishes made outside the outbox
        self._acked: list[int] = []  # seqs to delete
        self._last_sent = 0
        self._last_status: dict[str, Any] | None = None
        self._full_alarm = False
        self._takeovers = Takeovers()  # our account used elsewhere: see gate/takeover.py
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: list[tuple[str, bytes, bool, bool, asyncio.Future[int]]] = []
        self._writer: asyncio.Future[None] | None = None
        self._closed = False
        self._drain_errors = 0
        self._faults: dict[str, str] = {}  # "read" / "write" -> why (guarded by _lock)

    # --- Device ---------------------------------------------------------------------

    async def start(self, emit: Emit) -> None:
        self._loop = asyncio.get_running_loop()
        self._emit = emit
        self._nonces = NonceStore(self.cfg.clock_skew_s, not_before=self._clock())
        aside: Path | None = None
        try:
            outbox, aside = await self._loop.run_in_executor(
                self._io,
                lambda: open_outbox(
                    self.outbox_path, self.cfg.outbox_max_rows, self.cfg.outbox_sync
                ),
            )
            self._outbox = outbox
            # a status left from before a restart (often the OFFLINE of close()) is
            # stale: the status published on connect, then the daemon's, supersede it
            stale = await self._loop.run_in_executor(
                self._io, outbox.discard_retained, self._prefix + "status"
            )
        except Exception as exc:  # sqlite errors, permissions
            raise DeviceError("bus", f"cannot open outbox {self.outbox_path}: {exc}") from exc
        if stale:
            log.info("bus: dropped %d stale status row(s) from the outbox", stale)
        if aside is not None:
            detail = f"outbox damaged: kept as {aside.name}; a new outbox was started"
            log.error("bus: %s (%s)", detail, aside)
            leaf, alarm = self._event(
                EventType.ALARM_RAISED,
                reasons=(ReasonCode.GATE_DEVICE_FAULT,),
                device="bus",
                detail=detail,
            )
            await self._put(leaf, alarm, reserve=True)
        self._client = self._make_client()
        self._client.connect_async(self.cfg.host, self.cfg.port, self.cfg.keepalive_s)
        self._client.loop_start()
        self._drainer = threading.Thread(target=self._drain, name="bus-drainer", daemon=True)
        self._drainer.start()

    async def close(self) -> None:
        """Announce ``offline`` (retained), give the backlog a moment, then disconnect."""
        if self._closed or self._loop is None:
            return
        if self._flood_report is not None:  # journal what a flood left held back
            self._flood_report.cancel()
            self._report_flood()
        self._closed = True
        try:
            status = dict(self._last_status or {"state": "OFFLINE"})
            leaf, payload = self._event(EventType.GATE_STATUS, state="OFFLINE", online=False)
            payload.update({k: status[k] for k in ("doors", "version") if k in status})
            await self._put(leaf, payload, retain=True, reserve=True)
            if self.connected:  # else it waits on disk, like everything else
                await self.flush(timeout=2.0)
        except Exception as exc:  # closing must not fail on a full or broken outbox
            log.warning("bus: offline status not queued: %s", exc)
        self._stop.set()
        self._wake.set()
        if self._drainer is not None:
            await asyncio.to_thread(self._drainer.join, 5.0)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        for task in list(self._tasks):
            task.cancel()
        if self._outbox is not None:
            outbox = self._outbox
            await self._loop.run_in_executor(self._io, self._flush_acks)
            await self._loop.run_in_executor(self._io, outbox.close)
        self._io.shutdown(wait=True)

    # --- EventBus -------------------------------------------------------------------

    async def publish(self, topic_leaf: str, payload: dict[str, Any], retain: bool = False) -> None:
        """Queue ``payload`` for ``.../{topic_leaf}``; returns once it is on disk.

        Raises ``EventError`` for a payload that does not match its schema and
        ``OutboxFull`` when the backlog reached ``outbox_max_rows`` (an ``alarm.raised``
        with ``gate_outbox_full`` is queued once, from the reserve).
        """
        events.validate(payload)
        if events.topic_leaf(payload["type"]) != topic_leaf:
            raise EventError(f"a {payload['type']} does not go on {topic_leaf!r}")
        await self._publish_valid(topic_leaf, payload, retain)

    async def _publish_valid(self, topic_leaf: str, payload: dict[str, Any], retain: bool) -> None:
        if self._closed:
            raise DeviceError("bus", "closed")
        if topic_leaf == "status":
            retain = True  # status is state: a new subscriber must see it at once
            self._last_status = payload
            if self.fault:  # state goes straight to the broker while the outbox fails
                try:  # (and trying the outbox is how a failed write finds it works again)
                    await self._put(topic_leaf, payload, retain)
                    self._set_fault("write", None)
                except Exception as exc:
                    log.warning("bus: status not stored: %s", exc)
                if self.fault:
                    self._send_direct(topic_leaf, payload, retain=True)
                return
        try:
            await self._put(topic_leaf, payload, retain)
            self._set_fault("write", None)
            if "read" in self._faults:  # on disk, but the drainer cannot read it back
                raise DeviceError("bus", f"event stored but not deliverable: {self.fault}")
        except OutboxFull:
            if not self._full_alarm:
                self._full_alarm = True
                leaf, alarm = self._event(
                    EventType.ALARM_RAISED,
                    reasons=(ReasonCode.GATE_OUTBOX_FULL,),
                    detail=f"{len(self._box())} events waiting for the broker",
                )
                await self._put(leaf, alarm, reserve=True)
                log.error("bus: outbox full (%d rows)", len(self._box()))
            raise

    async def publish_transient(self, topic_leaf: str, body: bytes) -> bool:
        """QoS 1, not retained, and never written to the outbox: for traveller images,
        which must not rest on the gate's disk (the referral event itself is durable).
        Returns False when the broker is not connected (the officer falls back to the
        gate's own screen); it is not retried after a restart."""
        client = self._client
        if client is None or self._closed or not self._connected.is_set():
            log.warning("bus: %s not sent: broker not connected", topic_leaf)
            return False
        # never hold our lock into paho: its network thread takes paho's locks and then
        # ours in _on_publish (lock order); a PUBACK that beats us lands in _early
        info = client.publish(self._prefix + topic_leaf, body, qos=1, retain=False)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
            else:
                self._direct.add(info.mid)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    async def publish_action(self, action: Publish) -> None:
        """Stamp ``event_id``/``ts``/site/gate on a core ``Publish`` and publish it."""
        payload = events.build_payload(
            action,
            site=self.site,
            gate=self.gate,
            ts=self._clock(),
            event_id=str(uuid.uuid4()),
            document_key=self.document_key,
        )  # validated by build_payload
        await self._publish_valid(events.topic_leaf(action.type), payload, retain=False)

    async def flush(self, timeout: float) -> bool:
        """Wait until the broker acknowledged every queued row; False on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self._box()) > 0:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def backlog(self) -> int:
        return len(self._box())

    def oldest_age(self) -> float:
        """Seconds the oldest unacknowledged event has waited (0 when none; metrics)."""
        created = self._box().oldest_created()
        return 0.0 if created is None else max(0.0, time.time() - created)

    # --- internals: outbox side -----------------------------------------------------

    def _box(self) -> Outbox:
        if self._outbox is None:
            raise DeviceError("bus", "not started")
        return self._outbox

    async def _put(
        self, leaf: str, payload: dict[str, Any], retain: bool = False, reserve: bool = False
    ) -> None:
        """Queue one row for the writer and wait until it is committed (or refused)."""
        assert self._loop is not None
        topic = events.topic(self.site, self.gate, leaf)
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        done: asyncio.Future[int] = self._loop.create_future()
        self._pending.append((topic, data, retain, reserve, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_pending())
        await asyncio.shield(done)  # a cancelled caller does not unqueue a row being written
        self._wake.set()

    async def _write_pending(self) -> None:
        """Commit everything queued so far in one transaction (group commit), in order."""
        assert self._loop is not None
        outbox = self._box()
        while self._pending:
            batch, self._pending = self._pending, []
            rows = [item[:4] for item in batch]
            try:
                results = await self._loop.run_in_executor(self._io, outbox.put_many, rows)
            except Exception as exc:  # sqlite failure: nothing of the batch was stored
                err = DeviceError("bus", f"outbox write failed: {exc}")
                self._set_fault("write", err.detail)
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(err)
                continue
            for (*_, done), result in zip(batch, results, strict=True):
                if done.done():
                    continue
                if isinstance(result, OutboxFull):
                    done.set_exception(result)
                else:
                    done.set_result(result)

    def _event(
        self,
        etype: EventType,
        reasons: tuple[ReasonCode, ...] = (),
        **data: Any,
    ) -> tuple[str, dict[str, Any]]:
        payload = events.build_payload(
            Publish(etype, reasons=reasons, data=data),
            site=self.site,
            gate=self.gate,
            ts=self._clock(),
            event_id=str(uuid.uuid4()),
        )
        return events.topic_leaf(etype), payload

    def _flush_acks(self) -> None:
        with self._lock:
            acked, self._acked = self._acked, []
        if acked:
            self._box().delete(acked)
            self.stats["acked"] += len(acked)

    def _drain(self) -> None:
        """Drainer thread: outbox rows, in order, to paho; acknowledged rows deleted."""
        outbox = self._box()
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._flush_acks()
                self._check_full_cleared(outbox)
                sent = self._send_some(outbox) if self._connected.is_set() else outbox.probe()
            except Exception as exc:  # keep draining; a failure that lasts is a bus fault
                self._drain_errors += 1
                if self._drain_errors == 1:
                    log.exception("bus: drainer error")
                if self._drain_errors >= DRAIN_FAULT_AFTER:
                    self._set_fault("read", f"outbox unreadable: {exc}"[:200])
                sent = 0
            else:
                self._drain_errors = 0
                self._set_fault("read", None)
            if not sent:
                self._wake.wait(0.5)

    @property
    def fault(self) -> str | None:
        """Why the outbox cannot be used now (None when it works)."""
        faults = dict(self._faults)
        return "; ".join(faults.values()) or None

    def _set_fault(self, kind: str, why: str | None) -> None:
        """Record or clear one kind of outbox fault; tell the core on the transitions
        (``DeviceFault`` / ``LinkRestored``), with an alarm straight to the broker."""
        with self._lock:
            before = bool(self._faults)
            if why is None:
                if self._faults.pop(kind, None) is None:
                    return
            elif kind in self._faults:
                return
            else:
                self._faults[kind] = why
            after = bool(self._faults)
        if why is not None:
            log.error("bus: outbox fault: %s", why)
        if before == after or self._emit is None:
            return
        if after:
            assert why is not None
            leaf, alarm = self._event(
                EventType.ALARM_RAISED,
                reasons=(ReasonCode.GATE_DEVICE_FAULT,),
                device="bus",
                detail=why[:500],
            )
            self._send_direct(leaf, alarm, retain=False)
            self._emit(DeviceFault("bus", why))
        else:
            log.info("bus: outbox works again")
            self._emit(LinkRestored("bus"))

    def _send_direct(self, leaf: str, payload: dict[str, Any], retain: bool) -> None:
        """QoS 1 straight to paho, outside the outbox (lost if the broker is away)."""
        client = self._client
        if client is None or not self._connected.is_set():
            log.warning("bus: %s not sent (outbox at fault, broker not connected)", leaf)
            return
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        info = client.publish(self._prefix + leaf, data, qos=1, retain=retain)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
            else:
                self._direct.add(info.mid)

    def _send_some(self, outbox: Outbox) -> int:
        assert self._client is not None
        with self._lock:
            room = self.cfg.inflight - len(self._inflight)
            after = self._last_sent
        if room <= 0:
            return 0
        rows = outbox.peek(after, room)
        for row in rows:
            info = self._client.publish(row.topic, row.payload, qos=1, retain=row.retain)
            # NO_CONN: paho keeps the message and sends it after the reconnect
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning("bus: publish of row %d failed: %s", row.seq, info.rc)
                break
            with self._lock:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    self._acked.append(row.seq)
                else:
                    self._inflight[info.mid] = row.seq
                self._last_sent = row.seq
            self.stats["published"] += 1
        return len(rows)

    def _check_full_cleared(self, outbox: Outbox) -> None:
        if self._full_alarm and len(outbox) < FULL_CLEAR_RATIO * outbox.max_rows:
            self._full_alarm = False
            leaf, payload = self._event(
                EventType.ALARM_CLEARED, reasons=(ReasonCode.GATE_OUTBOX_FULL,)
            )
            data = json.dumps(payload, separators=(",", ":")).encode()
            outbox.put(events.topic(self.site, self.gate, leaf), data, reserve=True)
            # the refused publish was the daemon's bus fault (out of service): say the bus
            # takes events again, or 'in service' is refused until a restart (unless the
            # outbox has a fault of its own, which says so when it clears)
            with self._lock:
                other = bool(self._faults)
            if not other and self._emit is not None:
                log.info("bus: outbox below its bound again")
                self._emit(LinkRestored("bus"))

    # --- internals: paho side (network thread) --------------------------------------

    def _make_client(self) -> mqtt.Client:
        cfg = self.cfg
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or f"autogate-{self.site}-{self.gate}",
            protocol=mqtt.MQTTv5,
        )
        if cfg.username is not None:
            client.username_pw_set(cfg.username, self._password)
        if cfg.tls is not None:
            client.tls_set(
                ca_certs=str(cfg.tls.ca_file),
                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        _, will = self._event(EventType.GATE_STATUS, state="OFFLINE", online=False)
        client.will_set(
            events.topic(self.site, self.gate, "status"), json.dumps(will), qos=1, retain=True
        )
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(cfg.reconnect_max_s)))
        client.max_inflight_messages_set(cfg.inflight)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, rc: Any, _props: Any) -> None:
        if rc.is_failure:
            log.warning("bus: broker refused the connection: %s", rc)
            return
        log.info("bus: connected to %s:%d", self.cfg.host, self.cfg.port)
        n = self._takeovers.regained(time.monotonic())
        if n is not None:
            self._taken_over(n)
        client.subscribe(self._prefix + "cmd/+", qos=1)
        # the will may have replaced our retained status while we were away
        status = self._last_status or self._event(EventType.GATE_STATUS, state="STARTING")[1]
        status = {**status, "event_id": str(uuid.uuid4()), "ts": events.format_ts(self._clock())}
        info = client.publish(self._prefix + "status", json.dumps(status), qos=1, retain=True)
        with self._lock:  # its PUBACK is read by this same thread, after this callback
            self._direct.add(info.mid)
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, rc: Any, _p: Any) -> None:
        self._connected.clear()
        if not self._closed:
            log.warning("bus: disconnected: %s", rc)
        if not self._closed:
            n = self._takeovers.lost(time.monotonic(), getattr(rc, "value", None))
            if n is not None:
                self._taken_over(n)

    def _taken_over(self, n: int) -> None:
        """Someone connects with our account (stolen credentials, or a second daemon): one
        alarm per window, queued from the reserve and sent once we are back."""
        log.error("bus: broker session lost and regained %d times: taken over?", n)
        if self._loop is None:
            return
        leaf, alarm = self._event(
            EventType.ALARM_RAISED,
            reasons=(ReasonCode.GATE_SESSION_TAKEN_OVER,),
            detail=f"broker session lost and regained {n} times within "
            f"{self._takeovers.window_s:.0f} s: another client uses this gate's account?",
            device="bus",
        )

        def queue() -> None:
            task = asyncio.ensure_future(self._put(leaf, alarm, reserve=True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._loop.call_soon_threadsafe(queue)

    def _on_publish(
        self, _c: mqtt.Client, _ud: Any, mid: int, rc: MqttReasonCode, _props: Any
    ) -> None:
        if rc.is_failure:  # e.g. 0x87 not authorized: retrying would block the queue
            self.stats["broker_refused"] += 1
            log.error("bus: broker refused publish mid=%d: %s", mid, rc)
        with self._lock:
            if mid in self._direct:
                self._direct.discard(mid)
                return
            seq = self._inflight.pop(mid, None)
            if seq is None:
                self._early.add(mid)
            else:
                self._acked.append(seq)
        self._wake.set()

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        if self._loop is not None and not self._closed:
            self._loop.call_soon_threadsafe(self._command, msg.topic, bytes(msg.payload))

    # --- commands (daemon loop) -----------------------------------------------------

    def _command(self, topic: str, raw: bytes) -> None:
        assert self._nonces is not None and self._emit is not None
        leaf = topic.removeprefix(self._prefix + "cmd/")
        try:
            result = verify_command(
                raw,
                topic_command=leaf,
                site=self.site,
                gate=self.gate,
                keys=self._keys,
                now=self._clock(),
                nonces=self._nonces,
            )
        except Exception as exc:  # a verifier bug: still refused, answered and counted
            log.exception("bus: command on %s could not be verified", topic)
            result = Refusal(RefusalReason.MALFORMED, f"unreadable: {type(exc).__name__}")
        if isinstance(result, OfficerCommand):
            log.info("bus: command %s from %s", result.command, result.officer)
            self._emit(result)
            return
        duplicate = result.reason is RefusalReason.DUPLICATE
        self.stats["commands_duplicate" if duplicate else "commands_refused"] += 1
        now = time.monotonic()
        if not self.refusals.answer(now, result.reason):
            # a flood: counted above, journalled and alarmed together when the window ends
            if self._flood_report is None and self._loop is not None:
                self._flood_report = self._loop.call_later(
                    self.refusals.remaining(now), self._report_flood
                )
            return
        if duplicate:
            log.info("bus: command %s received again on %s", result.command_id, topic)
        else:
            log.warning("bus: command refused on %s: %s %s", topic, result.reason, result.detail)
        if self.on_refused is not None:  # journalled and counted either way
            try:
                self.on_refused(result)
            except Exception:  # the journal's trouble must not stop the ack and the alarm
                log.exception("bus: refusal hook failed")
        if duplicate:  # at-least-once delivery: the first copy was answered, and that stands
            return
        task = asyncio.ensure_future(self._answer_refusal(result))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _report_flood(self) -> None:
        """The refusals held back in the window that just ended: one journal record (via
        ``on_refused``, with its count) per reason, and one alarm naming them all."""
        self._flood_report = None
        held = self.refusals.take_held()
        if not held:
            return
        total = sum(held.values())
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(held.items()))
        detail = (
            f"{total} more commands refused within {self.refusals.window_s:g} s, "
            f"not answered one by one: {counts}"
        )
        log.warning("bus: %s", detail)
        if self.on_refused is not None:
            for reason, n in held.items():
                try:
                    self.on_refused(Refusal(reason, detail, count=n))
                except Exception:
                    log.exception("bus: refusal hook failed")
        if set(held) == {RefusalReason.DUPLICATE}:
            return  # copies of answered commands: counted and journalled, no alarm
        task = asyncio.ensure_future(self._alarm_flood(detail))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _alarm_flood(self, detail: str) -> None:
        leaf, alarm = self._event(
            EventType.ALARM_RAISED, reasons=(ReasonCode.GATE_COMMAND_REFUSED,), detail=detail
        )
        try:
            await self._publish_valid(leaf, alarm, retain=False)
        except OutboxFull:
            log.error("bus: flood alarm not published: outbox full")

    async def _answer_refusal(self, refusal: Refusal) -> None:
        who = {"officer": refusal.officer} if refusal.officer else {}
        cid = {"command_id": refusal.command_id} if refusal.command_id else {}
        detail = f"{refusal.reason}: {refusal.detail}"[:500]
        leaf, alarm = self._event(
            EventType.ALARM_RAISED,
            reasons=(ReasonCode.GATE_COMMAND_REFUSED,),
            detail=detail,
            **cid,
            **who,
        )
        ack_leaf, ack = self._event(
            EventType.COMMAND_ACK,
            reasons=(ReasonCode.GATE_COMMAND_REFUSED,),
            command_id=refusal.command_id,
            command=refusal.command,
            accepted=False,
            detail=detail,
            **who,
        )
        try:
            await self._publish_valid(ack_leaf, ack, retain=False)
            await self._publish_valid(leaf, alarm, retain=False)
        except OutboxFull:
            log.error("bus: refusal of %s not published: outbox full", refusal.command_id)


def _read_secret(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise DeviceError("bus", f"cannot read {path}: {exc}") from exc


def build(cfg: MqttBusConfig, gate_cfg: GateConfig) -> MqttBus:
    """The MQTT bus from config: reads the password, document key and command keys."""
    keys: dict[str, Ed25519PublicKey] = {}
    for key in cfg.command_keys:
        try:
            text = key.public_key or _read_secret(key.public_key_file)  # type: ignore[arg-type]
            keys[key.id] = load_public_key(text)
        except ValueError as exc:
            raise DeviceError("bus", f"command key {key.id!r}: {exc}") from exc
    password = _read_secret(cfg.password_file).decode() if cfg.password_file else None
    doc_key = _read_secret(cfg.document_key_file) if cfg.document_key_file else b""
    if not doc_key:
        log.warning(
            "gate %s/%s: no devices.bus.document_key_file: crossing events carry no document"
            " hash, so the central record cannot link this gate's entries and exits (overstay)",
            gate_cfg.gate.site,
            gate_cfg.gate.id,
        )
    return MqttBus(
        cfg,
        site=gate_cfg.gate.site,
        gate=gate_cfg.gate.id,
        outbox_path=cfg.outbox or gate_cfg.storage.data_dir / "outbox.sqlite",
        password=password,
        command_keys=keys,
        document_key=doc_key,
    )
