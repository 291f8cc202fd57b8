"""The event outbox: every message is on disk before it is published, until the broker acks it.

SQLite in WAL mode, one row per message, ``seq`` gives the publishing order. A row is
deleted only when the broker acknowledged its publish (QoS 1 PUBACK), so a crash of the
daemon or the broker at any moment loses nothing: on restart the rows left are sent again
in order (consumers drop duplicates by ``event_id``). The size is bounded by a row count;
a full outbox refuses new rows with ``OutboxFull`` instead of dropping old ones, and keeps
a small reserve so the alarm that says so can still be queued.

Retained state (the gate's ``status``) is not history: a new retained row replaces the
unsent retained rows of the same topic, so a long outage does not queue thousands of stale
heartbeats.

A file damaged on disk (a truncated or garbled main database, not a torn write, which
WAL survives) fails SQLite's ``quick_check`` at open: ``OutboxDamaged``.
``open_outbox`` then moves it aside, kept for an engineer, and starts a new one, so one
bad disk block never keeps a lane from starting.

The only I/O is this file; the object is thread-safe (one connection behind a lock).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RESERVE_ROWS = 16  # room above the bound for the "outbox full" alarm and the final status
_CORRUPT = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB: the file, not the folder or the lock


class OutboxFull(Exception):
    """The outbox holds ``max_rows`` unacknowledged messages; the new one was not stored."""


class OutboxDamaged(Exception):
    """The outbox file is not a sound SQLite database (failed ``quick_check``)."""


def is_corruption(exc: BaseException) -> bool:
    """True for SQLite's "malformed" / "not a database" errors (damage on disk)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and code is not None and code & 0xFF in _CORRUPT


@dataclass(frozen=True)
class Row:
    seq: int
    topic: str
    payload: bytes
    retain: bool


class Outbox:
    def __init__(
        self,
        path: str | Path,
        max_rows: int = 100_000,
        sync: Literal["full", "normal"] = "full",
    ) -> None:
        """Open (or create) the outbox at ``path``.

        ``sync="full"`` fsyncs every commit (survives power loss); ``"normal"`` survives a
        crash of the process but not of the machine, and is several times faster.
        """
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.path = Path(path)
        self.max_rows = max_rows
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outbox ("
                " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                " topic TEXT NOT NULL,"
                " payload BLOB NOT NULL,"
                " retain INTEGER NOT NULL DEFAULT 0,"
                " created REAL NOT NULL)"
            )
            check = [r[0] for r in self._db.execute("PRAGMA quick_check").fetchall()]
            if check != ["ok"]:
                raise OutboxDamaged(f"{self.path}: {'; '.join(map(str, check))[:200]}")
            self._count = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if is_corruption(exc):
                raise OutboxDamaged(f"{self.path}: {exc}") from exc
            raise
        except OutboxDamaged:
            self._db.close()
            raise
        self._closed = False

    def put(
        self, topic: str, payload: bytes, retain: bool = False, *, reserve: bool = False
    ) -> int:
        """Store one message durably and return its ``seq``; ``OutboxFull`` when full.

        ``reserve=True`` may use the few rows kept above the bound (for the alarm that
        reports the full outbox).
        """
        result = self.put_many([(topic, payload, retain, reserve)])[0]
        if isinstance(result, OutboxFull):
            raise result
        return result

    def put_many(self, items: list[tuple[str, bytes, bool, bool]]) -> list[int | OutboxFull]:
        """Store ``(topic, payload, retain, reserve)`` rows in order in ONE transaction.

        Group commit: with ``sync="full"`` the fsync, not the insert, is the cost, so
        messages queued together share it. Each item gets its ``seq`` or an ``OutboxFull``
        (the others are still stored); a database error stores none and raises.
        """
        results: list[int | OutboxFull] = []
        with self._lock:
            self._check_open()
            count = self._count
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for topic, payload, retain, reserve in items:
                    # a retained message replaces the unsent retained rows of its topic
                    replaced = 0
                    if retain:
                        replaced = self._db.execute(
                            "SELECT count(*) FROM outbox WHERE topic = ? AND retain = 1", (topic,)
                        ).fetchone()[0]
                    limit = self.max_rows + (RESERVE_ROWS if reserve else 0)
                    if not replaced and count >= limit:  # a replacement never grows it
                        results.append(OutboxFull(f"outbox full: {count} rows unacknowledged"))
                        continue
                    if replaced:
                        self._db.execute(
                            "DELETE FROM outbox WHERE topic = ? AND retain = 1", (topic,)
                        )
                        count -= replaced
                    cur = self._db.execute(
                        "INSERT INTO outbox (topic, payload, retain, created) VALUES (?, ?, ?, ?)",
                        (topic, payload, int(retain), time.time()),
                    )
                    assert cur.lastrowid is not None
                    results.append(cur.lastrowid)
                    count += 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._count = count
        return results

    def discard_retained(self, topic: str) -> int:
        """Drop unsent retained rows of ``topic`` (a restarted gate's stale status)."""
        with self._lock:
            self._check_open()
            cur = self._db.execute("DELETE FROM outbox WHERE topic = ? AND retain = 1", (topic,))
            self._count -= cur.rowcount
            return cur.rowcount

    def peek(self, after: int = 0, limit: int = 100) -> list[Row]:
        """Up to ``limit`` rows with ``seq > after``, oldest first."""
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                "SELECT seq, topic, payload, retain FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [
            Row(seq, topic, bytes(payload), bool(retain)) for seq, topic, payload, retain in rows
        ]

    def delete(self, seqs: Iterable[int]) -> int:
        """Forget acknowledged rows (one transaction); returns how many were still there."""
        batch = [(s,) for s in seqs]
        if not batch:
            return 0
        with self._lock:
            self._check_open()
            self._db.execute("BEGIN IMMEDIATE")
            before = self._db.total_changes
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", batch)
            removed = self._db.total_changes - before
            self._db.execute("COMMIT")
            self._count -= removed
            return removed

    def probe(self) -> int:
        """Read the first row's key (the drainer's health check while offline); 0."""
        with self._lock:
            self._check_open()
            self._db.execute("SELECT seq FROM outbox ORDER BY seq LIMIT 1").fetchall()
        return 0

    def __len__(self) -> int:
        return self._count

    def oldest_created(self) -> float | None:
        """When the oldest unacknowledged row was stored (epoch s); None if empty (metrics)."""
        with self._lock:
            self._check_open()
            row = self._db.execute("SELECT min(created) FROM outbox").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    @property
    def full(self) -> bool:
        return self._count >= self.max_rows

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("outbox is closed")


def open_outbox(
    path: str | Path,
    max_rows: int = 100_000,
    sync: Literal["full", "normal"] = "full",
) -> tuple[Outbox, Path | None]:
    """Open the outbox; a damaged file is moved aside (with its WAL) and a new one
    started. Returns the outbox and where the damaged file now is (None if sound).

    The rows of a damaged file are not replayed: what SQLite cannot check cannot be
    trusted to be whole, and every event is also in the hash-chained journal."""
    path = Path(path)
    try:
        return Outbox(path, max_rows, sync), None
    except OutboxDamaged:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{path.name}.damaged-{stamp}")
        n = 1
        while aside.exists():
            aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
            n += 1
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{path}{suffix}")
            if src.exists():
                os.replace(src, f"{aside}{suffix}")
        return Outbox(path, max_rows, sync), aside
