"""One ingest worker: a member of the shared subscription that writes events in batches.

Nothing is acknowledged before it is committed: the client runs with manual acks, a
batch is written in one transaction, and only then does each message get its PUBACK. A
worker killed at any point leaves its unacknowledged messages in its persistent session
(fixed client id, clean_start false, a session expiry of days), and the broker hands them
again when the worker (or its replacement under the same id) reconnects; the
``ON CONFLICT DO NOTHING`` on ``event_id`` makes the second delivery land once.

Each worker logs in with its own account when the username holds ``{index}``
(``ingest-{index}``): a broker that binds client ids to accounts
(``use_username_as_clientid``, as ours does) would otherwise give every worker the same
session, and they would take it from each other every second. Three lost connections
within a minute are logged as an error saying so.

A batch the database refuses is retried ``write_retries`` times; then it is written one
event at a time, and an event that fails alone while the database answers is a poison
event: it is kept in ``quarantine`` with the error (or, if even that fails, in a JSON
line under ``quarantine_dir``), counted, logged as an error and acknowledged, so the
rest flows. While the database does not answer at all, nothing is quarantined and
nothing acknowledged: the batch waits, as before.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import queue
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from autogate.ingest.config import IngestConfig, read_secret
from autogate.ingest.records import Reject, Row, to_record
from autogate.ingest.store import Store, StoreError, WriteResult

log = logging.getLogger("autogate.ingest")
SESSION_TAKEN_OVER = 142  # MQTT 5 reason code 0x8E


@dataclass
class Counters:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    quarantined: int = 0
    disconnects: int = 0


def account(template: str, index: int) -> str:
    """The broker account of worker ``index`` (``ingest-{index}`` -> ``ingest-3``)."""
    return template.replace("{index}", str(index))


class Worker:
    """``run(stop)`` until ``stop`` is set; the store is this worker's own connection."""

    def __init__(self, cfg: IngestConfig, index: int) -> None:
        self.cfg = cfg
        self.index = index
        self.client_id = f"{cfg.broker.client_id_prefix}-{index}"
        self.key = read_secret(cfg.document_key_file)
        self.store = Store(cfg.database)
        self.store.migrate()  # idempotent; the first worker up creates the schema
        self.counters = Counters()
        self.subscribed = threading.Event()
        self._inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._stop = threading.Event()
        self._drops: list[float] = []  # monotonic times of lost connections
        self.client = self._client()

    def _client(self) -> mqtt.Client:
        b = self.cfg.broker
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if b.username:
            password = read_secret(b.password_file).decode() if b.password_file else None
            client.username_pw_set(account(b.username, self.index), password)
        if b.tls is not None:
            client.tls_set(
                ca_certs=str(b.tls.ca_file),
                certfile=str(b.tls.cert_file) if b.tls.cert_file else None,
                keyfile=str(b.tls.key_file) if b.tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.max_inflight_messages_set(1000)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        return client

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _f: Any, rc: Any, _p: Any) -> None:
        """Mosquitto closes a taken-over session without a reason code, so a burst of
        lost connections is what points at two workers on one account."""
        if self._stop.is_set():
            return
        now = time.monotonic()
        self._drops = [t for t in self._drops if now - t < 60] + [now]
        self.counters.disconnects += 1
        if getattr(rc, "value", None) == SESSION_TAKEN_OVER or len(self._drops) >= 3:
            log.error(
                "ingest %s: connection lost %d times in a minute (%s): is another client"
                " using this account? Give each worker its own (broker.username:"
                " ingest-{index}) on a broker that binds client ids to accounts",
                self.client_id,
                len(self._drops),
                rc,
            )
        else:
            log.warning("ingest %s: connection lost (%s); reconnecting", self.client_id, rc)

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("ingest %s: broker refused the connection: %s", self.client_id, rc)
            return
        client.subscribe(self.cfg.subscription, qos=1)

    def _on_subscribe(self, _c: mqtt.Client, _ud: Any, _mid: int, codes: Any, _p: Any) -> None:
        if any(c.is_failure for c in codes):
            log.error("ingest %s: subscription refused: %s", self.client_id, codes)
            return
        log.info("ingest %s: subscribed to %s", self.client_id, self.cfg.subscription)
        self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put(msg)

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.broker.session_expiry_s
        self.client.connect_async(
            self.cfg.broker.host, self.cfg.broker.port, 30, clean_start=False, properties=props
        )
        self.client.loop_start()
        try:
            while not stop.is_set():
                self._drain_once()
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            self.store.close()

    def _drain_once(self) -> None:
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return
        batch = [first]
        deadline = time.monotonic() + self.cfg.batch_wait_s
        while len(batch) < self.cfg.batch_max:
            left = deadline - time.monotonic()
            try:
                batch.append(
                    self._inbox.get(timeout=left) if left > 0 else self._inbox.get_nowait()
                )
            except queue.Empty:
                break
        self.write(batch)

    def _reopen(self) -> None:
        """A fresh connection after a failed write (PostgreSQL restarted, link reset)."""
        with contextlib.suppress(Exception):
            self.store.close()
        try:
            self.store = Store(self.cfg.database)
        except StoreError as exc:
            log.error("ingest %s: database unreachable: %s", self.client_id, exc)

    def write(self, batch: list[mqtt.MQTTMessage]) -> None:
        """Commit the batch, then acknowledge it; see the module's note on failures."""
        pairs = [(m, self._record(m)) for m in batch]
        records = [r for _, r in pairs if r is not None]
        result = self._write_retried(records)
        if result is None and self._stop.is_set():  # stopping: no ack, nothing lost
            return
        if result is None:  # poison inside, the database answering: one by one
            result = self._write_each([(m, r) for m, r in pairs if r is not None])
        if result is None:  # stopping while the database is down: no ack, nothing lost
            return
        for m in batch:
            self.client.ack(m.mid, m.qos)
        c = self.counters
        c.received += len(batch)
        c.inserted += result.inserted
        c.duplicates += result.duplicates
        c.rejected += result.rejected
        if result.rejected:
            log.warning("ingest %s: %d message(s) rejected (kept)", self.client_id, result.rejected)

    def _record(self, m: mqtt.MQTTMessage) -> Row | Reject | None:
        """``to_record``, and a message it cannot handle (our bug) kept as a reject: an
        exception here would end the worker, and the broker would hand the same message
        to its replacement, forever."""
        payload = bytes(m.payload)
        try:
            return to_record(m.topic, payload, self.key)
        except Exception as exc:
            log.exception("ingest %s: message on %s not understood", self.client_id, m.topic)
            digest = hashlib.sha256(m.topic.encode("utf-8", "replace") + b"\0" + payload)
            error = f"internal error: {type(exc).__name__}: {exc}"[:500]
            return Reject(digest.hexdigest(), m.topic[:512], payload, error)

    def _write_retried(self, records: list[Row | Reject]) -> WriteResult | None:
        """The batch in one transaction, ``write_retries`` times; None if it kept failing
        while the database answered. While it does not answer, this waits (until stop)."""
        failures = 0
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            try:
                return self.store.write(records)
            except Exception as exc:
                log.error("ingest %s: write failed (attempt %d): %s", self.client_id, attempt, exc)
                if self._alive():
                    failures += 1  # the database answers: the batch itself may be the trouble
                    if failures >= self.cfg.write_retries:
                        return None
                self._stop.wait(min(5.0, self.cfg.retry_wait_s * attempt))
                self._reopen()
        return None

    def _write_each(self, pairs: list[tuple[mqtt.MQTTMessage, Row | Reject]]) -> WriteResult | None:
        total = WriteResult(0, 0, 0)
        for m, record in pairs:
            while True:
                try:
                    one = self.store.write([record])
                    break
                except Exception as exc:
                    if self._alive():
                        self._quarantine(m, record, f"{type(exc).__name__}: {exc}")
                        one = WriteResult(0, 0, 0)
                        break
                    if self._stop.wait(self.cfg.retry_wait_s):  # down again: wait for it
                        return None
                    self._reopen()
            total = WriteResult(
                total.inserted + one.inserted,
                total.duplicates + one.duplicates,
                total.rejected + one.rejected,
            )
        return total

    def _alive(self) -> bool:
        """Does the database answer at all (a fresh connection if the old one broke)?"""
        try:
            self.store.ping()
            return True
        except Exception:
            self._reopen()
        try:
            self.store.ping()
            return True
        except Exception:
            return False

    def _quarantine(self, m: mqtt.MQTTMessage, record: Row | Reject, error: str) -> None:
        event_id = record.event_id if isinstance(record, Row) else record.digest
        self.counters.quarantined += 1
        log.error(
            "ingest %s: event %s on %s quarantined after %d failed writes: %s",
            self.client_id,
            event_id,
            m.topic,
            self.cfg.write_retries,
            error[:300],
        )
        try:
            self.store.quarantine(event_id, m.topic, bytes(m.payload), error)
            return
        except Exception as exc:
            log.error("ingest %s: quarantine table refused it (%s): on disk", self.client_id, exc)
        directory = self.cfg.quarantine_dir
        directory.mkdir(parents=True, exist_ok=True)
        line = {
            "event_id": event_id,
            "topic": m.topic,
            "payload_b64": base64.b64encode(bytes(m.payload)).decode(),
            "error": error,
            "at": time.time(),
        }
        with open(directory / f"{self.client_id}.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
