"""One ingest worker: a member of the shared subscription that writes events in batches.

Nothing is acknowledged before it is committed: a batch is written in one transaction,
and only then are its PUBACKs sent (all in one write, ``consumer.Consumer``). A worker
killed at any point leaves its unacknowledged messages in its persistent session (fixed
client id, clean start false, a session expiry of days), and the broker hands them again
when the worker (or its replacement under the same id) reconnects; the ``ON CONFLICT DO
NOTHING`` on ``event_id`` makes the second delivery land once. One thread does it all:
read a batch, commit it, acknowledge it.

Each worker logs in with its own account when the username holds ``{index}``
(``ingest-{index}``): a broker that binds client ids to accounts
(``use_username_as_clientid``, as ours does) would otherwise give every worker the same
session, and they would take it from each other every second. Three lost connections
within a minute are logged as an error saying so. On a TLS listener that takes the
account from the client certificate (``use_identity_as_username``, as ours do) the
account is the certificate's CN, so ``{index}`` in ``tls.cert_file`` and ``key_file``
gives each worker its own certificate too (``ingest-{index}.pem``).

A batch the database refuses is retried ``write_retries`` times; then it is written one
event at a time, and an event that fails alone while the database answers is a poison
event: it is kept in ``quarantine`` with the error (or, if even that fails, in a JSON
line under ``quarantine_dir``), counted, logged as an error and acknowledged, so the
rest flows. While the database does not answer at all, nothing is quarantined and
nothing acknowledged: the batch waits, as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass

from autogate.ingest.config import IngestConfig, read_secret
from autogate.ingest.consumer import Consumer, ConsumerError, Message, SessionTakenOver, tls_context
from autogate.ingest.records import Reject, Row, quarantined, to_record
from autogate.ingest.store import Store, StoreError, WriteResult
from gate.config import ConfigError

log = logging.getLogger("autogate.ingest")
PURGE_EVERY_S = 3600.0


@dataclass
class Counters:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    quarantined: int = 0
    disconnects: int = 0


def account(template: str, index: int) -> str:
    """The broker account (or certificate file) of worker ``index`` (``ingest-{index}``
    -> ``ingest-3``)."""
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
        self._stop = threading.Event()
        self._drops: list[float] = []  # monotonic times of lost connections
        self._purged_at: float | None = None  # monotonic time of the last purge
        self.consumer = self._consumer()

    def _consumer(self) -> Consumer:
        b = self.cfg.broker
        password = read_secret(b.password_file).decode() if b.password_file else None
        tls = None
        if b.tls is not None:
            try:
                tls = tls_context(
                    str(b.tls.ca_file),
                    account(str(b.tls.cert_file), self.index) if b.tls.cert_file else None,
                    account(str(b.tls.key_file), self.index) if b.tls.key_file else None,
                )
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"broker.tls: {exc}") from None
        return Consumer(
            b.host,
            b.port,
            self.client_id,
            self.cfg.subscription,
            username=account(b.username, self.index) if b.username else None,
            password=password,
            tls=tls,
            session_expiry_s=b.session_expiry_s,
            # the broker keeps sending while a batch commits: two batches in flight
            receive_max=2 * self.cfg.batch_max + 100,
        )

    def _lost(self, exc: ConsumerError) -> None:
        """Mosquitto closes a taken-over session without a reason code, so a burst of
        lost connections is what points at two workers on one account."""
        if self._stop.is_set():
            return
        now = time.monotonic()
        self._drops = [t for t in self._drops if now - t < 60] + [now]
        self.counters.disconnects += 1
        if isinstance(exc, SessionTakenOver) or len(self._drops) >= 3:
            log.error(
                "ingest %s: connection lost %d times in a minute (%s): is another client"
                " using this account? Give each worker its own (broker.username:"
                " ingest-{index}) on a broker that binds client ids to accounts",
                self.client_id,
                len(self._drops),
                exc,
            )
        else:
            log.warning("ingest %s: connection lost (%s); reconnecting", self.client_id, exc)

    def _connect(self, delay: float) -> float:
        """One attempt; the next back-off delay (1 s doubling to 10 s; 0 once connected)."""
        try:
            self.consumer.connect()
        except ConsumerError as exc:
            log.error("ingest %s: %s; retrying in %.0f s", self.client_id, exc, delay)
            self._stop.wait(delay)
            return min(10.0, delay * 2)
        log.info("ingest %s: subscribed to %s", self.client_id, self.cfg.subscription)
        self.subscribed.set()
        return 1.0

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        delay = 1.0
        try:
            while not stop.is_set():
                if not self.consumer.connected:
                    delay = self._connect(delay)
                    continue
                try:
                    self._drain_once()
                except ConsumerError as exc:
                    self._lost(exc)
        finally:
            self.consumer.disconnect()
            self.store.close()

    def _drain_once(self) -> None:
        batch = self.consumer.receive(self.cfg.batch_max, self.cfg.batch_wait_s)
        if batch:
            self.write(batch)

    def _reopen(self) -> None:
        """A fresh connection after a failed write (PostgreSQL restarted, link reset)."""
        with contextlib.suppress(Exception):
            self.store.close()
        try:
            self.store = Store(self.cfg.database)
        except StoreError as exc:
            log.error("ingest %s: database unreachable: %s", self.client_id, exc)

    def write(self, batch: list[Message]) -> None:
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
        c = self.counters
        c.received += len(batch)
        c.inserted += result.inserted
        c.duplicates += result.duplicates
        c.rejected += result.rejected
        if result.rejected:
            log.warning("ingest %s: %d message(s) rejected (kept)", self.client_id, result.rejected)
        self.consumer.ack(batch)  # durable now; a lost link here only means a redelivery
        self._purge_if_due()

    def _purge_if_due(self) -> None:
        """Refusals older than ``refusals_retention_days`` go, at most once an hour per
        worker (idempotent: two workers purging at once delete each row once). A purge
        that fails is logged and tried again at the next hour, never fatal."""
        now = time.monotonic()
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = now
        try:
            n = self.store.purge(self.cfg.refusals_retention_days)
        except Exception as exc:
            log.warning("ingest %s: purge of old refusals failed: %s", self.client_id, exc)
            return
        if n:
            log.info("ingest %s: %d refusal(s) past retention deleted", self.client_id, n)

    def _record(self, m: Message) -> Row | Reject | None:
        """``to_record``, and a message it cannot handle (our bug) kept as a reject: an
        exception here would end the worker, and the broker would hand the same message
        to its replacement, forever."""
        try:
            return to_record(m.topic, m.payload, self.key)
        except Exception as exc:
            log.exception("ingest %s: message on %s not understood", self.client_id, m.topic)
            error = f"internal error: {type(exc).__name__}: {exc}"
            return Reject.of(m.topic, m.payload, error, internal=True)

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
                self._pause(min(5.0, self.cfg.retry_wait_s * attempt))
                self._reopen()
        return None

    def _write_each(self, pairs: list[tuple[Message, Row | Reject]]) -> WriteResult | None:
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
                    if self._pause(self.cfg.retry_wait_s):  # down again: wait for it
                        return None
                    self._reopen()
            total = WriteResult(
                total.inserted + one.inserted,
                total.duplicates + one.duplicates,
                total.rejected + one.rejected,
            )
        return total

    def _pause(self, seconds: float) -> bool:
        """Wait (True if stopped meanwhile), keeping the broker connection alive: a
        database down for minutes must not cost the session its connection."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._stop.wait(min(1.0, left)):
                return True
            # a lost link: the run loop reconnects after; the batch is then sent again
            with contextlib.suppress(ConsumerError):
                self.consumer.ping_if_due()
        return self._stop.is_set()

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

    def _quarantine(self, m: Message, record: Row | Reject, error: str) -> None:
        """Keep what replays the event once the database takes it: its row (what the
        record would hold, names already dropped), never the raw payload."""
        event_id = record.event_id if isinstance(record, Row) else record.digest
        kept = quarantined(m.topic, m.payload, record)
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
            self.store.quarantine(event_id, kept, error)
            return
        except Exception as exc:
            log.error("ingest %s: quarantine table refused it (%s): on disk", self.client_id, exc)
        directory = self.cfg.quarantine_dir
        directory.mkdir(parents=True, exist_ok=True)
        line = {"event_id": event_id, **kept, "error": error, "at": time.time()}
        with open(directory / f"{self.client_id}.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
