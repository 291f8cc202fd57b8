"""One ingest worker: a member of the shared subscription that writes events in batches.

Nothing is acknowledged before it is committed: the client runs with manual acks, a
batch is written in one transaction, and only then does each message get its PUBACK. A
worker killed at any point leaves its unacknowledged messages in its persistent session
(fixed client id, clean_start false, a session expiry of days), and the broker hands them
again when the worker (or its replacement under the same id) reconnects; the
``ON CONFLICT DO NOTHING`` on ``event_id`` makes the second delivery land once.
"""

from __future__ import annotations

import contextlib
import logging
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
from autogate.ingest.records import to_record
from autogate.ingest.store import Store, StoreError

log = logging.getLogger("autogate.ingest")


@dataclass
class Counters:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0


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
            client.username_pw_set(b.username, password)
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
        return client

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
        """Commit the batch, then acknowledge it; on a database error, retry (no ack)."""
        found = (to_record(m.topic, bytes(m.payload), self.key) for m in batch)
        records = [r for r in found if r is not None]
        for attempt in range(1, 1_000_000):
            try:
                result = self.store.write(records)
                break
            except Exception as exc:  # the database is down or busy: hold the batch
                log.error("ingest %s: write failed (attempt %d): %s", self.client_id, attempt, exc)
                time.sleep(min(5.0, 0.2 * attempt))
                self._reopen()
        for m in batch:
            self.client.ack(m.mid, m.qos)
        c = self.counters
        c.received += len(batch)
        c.inserted += result.inserted
        c.duplicates += result.duplicates
        c.rejected += result.rejected
        if result.rejected:
            log.warning("ingest %s: %d message(s) rejected (kept)", self.client_id, result.rejected)
