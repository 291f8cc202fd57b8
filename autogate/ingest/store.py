"""The central crossing record: PostgreSQL (production) or SQLite (embedded default).

Writes are idempotent on ``event_id`` (``INSERT ... ON CONFLICT DO NOTHING``), so a
message the broker delivers twice (a worker killed after its commit, before its PUBACK)
lands once. The schema is versioned: ``MIGRATIONS`` is an append-only list, applied in
one transaction each and recorded in ``schema_version``; a database newer than this code
is refused rather than written to.

Who may read what (see docs/ingest.md): the writer (the ingest's own login) owns the
tables; ``autogate_reader`` may SELECT crossings, referrals and alarms only, never
``rejects`` or ``quarantine`` (what a gate sent that was refused: since migration 4 its
size and SHA-256 and not its bytes, except for a message our code failed on, kept for
replay until ``purge``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from autogate.ingest.records import COLUMNS, Reject, Row

READER_ROLE = "autogate_reader"
log = logging.getLogger("autogate.ingest")


class StoreError(Exception):
    """The database cannot be used as asked (names the database and the reason)."""


# (version, description, statements); {ts} and {blob} are the dialect's types
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "crossings, referrals, alarms, rejects",
        [
            "CREATE TABLE crossings (event_id TEXT PRIMARY KEY, site TEXT NOT NULL,"
            " gate TEXT NOT NULL, ts {ts} NOT NULL, type TEXT NOT NULL, txn_id TEXT,"
            " direction TEXT, decision TEXT, reasons TEXT NOT NULL, number_hash TEXT,"
            " number_masked TEXT, nationality TEXT, issuing_state TEXT, document_code TEXT,"
            " received_at {ts} NOT NULL)",
            "CREATE TABLE referrals (event_id TEXT PRIMARY KEY, site TEXT NOT NULL,"
            " gate TEXT NOT NULL, ts {ts} NOT NULL, type TEXT NOT NULL, txn_id TEXT,"
            " direction TEXT, reasons TEXT NOT NULL, number_hash TEXT, number_masked TEXT,"
            " nationality TEXT, issuing_state TEXT, document_code TEXT, resolution TEXT,"
            " officer TEXT, received_at {ts} NOT NULL)",
            "CREATE TABLE alarms (event_id TEXT PRIMARY KEY, site TEXT NOT NULL,"
            " gate TEXT NOT NULL, ts {ts} NOT NULL, type TEXT NOT NULL, device TEXT,"
            " state TEXT, reasons TEXT NOT NULL, detail TEXT, received_at {ts} NOT NULL)",
            "CREATE TABLE rejects (digest TEXT PRIMARY KEY, topic TEXT NOT NULL,"
            " payload {blob} NOT NULL, error TEXT NOT NULL, received_at {ts} NOT NULL)",
        ],
    ),
    (
        2,
        "lookup by document (hash) and time",
        [
            "CREATE INDEX crossings_number_ts ON crossings (number_hash, ts)",
            "CREATE INDEX referrals_number_ts ON referrals (number_hash, ts)",
        ],
    ),
    (
        3,
        "quarantine: events the database refused alone (poison), with the error",
        [
            "CREATE TABLE quarantine (event_id TEXT PRIMARY KEY, topic TEXT NOT NULL,"
            " payload {blob} NOT NULL, error TEXT NOT NULL, received_at {ts} NOT NULL)",
        ],
    ),
    (
        4,
        "rejects and quarantine keep no payload: size and SHA-256 (docs/ingest.md)",
        [
            # payloads go, but a message our code failed on (it may be a valid event the
            # record lacks) and an old quarantined event keep theirs until the purge
            "CREATE TABLE rejects_v4 (digest TEXT PRIMARY KEY, topic TEXT NOT NULL,"
            " site TEXT, gate TEXT, size INTEGER NOT NULL, sha256 TEXT NOT NULL,"
            " error TEXT NOT NULL, payload {blob}, received_at {ts} NOT NULL)",
            "INSERT INTO rejects_v4 (digest, topic, site, gate, size, sha256, error, payload,"
            " received_at) SELECT digest, topic, NULL, NULL, length(payload), {sha256},"
            " error, CASE WHEN error LIKE 'internal error:%' THEN payload END, received_at"
            " FROM rejects",
            "DROP TABLE rejects",
            "ALTER TABLE rejects_v4 RENAME TO rejects",
            "CREATE INDEX rejects_received ON rejects (received_at)",
            "CREATE TABLE quarantine_v4 (event_id TEXT PRIMARY KEY, topic TEXT NOT NULL,"
            " site TEXT, gate TEXT, size INTEGER NOT NULL, sha256 TEXT NOT NULL, record TEXT,"
            " error TEXT NOT NULL, payload {blob}, received_at {ts} NOT NULL)",
            "INSERT INTO quarantine_v4 (event_id, topic, site, gate, size, sha256, record,"
            " error, payload, received_at) SELECT event_id, topic, NULL, NULL,"
            " length(payload), {sha256}, NULL, error, payload, received_at FROM quarantine",
            "DROP TABLE quarantine",
            "ALTER TABLE quarantine_v4 RENAME TO quarantine",
            "CREATE INDEX quarantine_received ON quarantine (received_at)",
        ],
    ),
]
REFUSALS = ("rejects", "quarantine")  # what ``purge`` empties of rows older than N days

# PostgreSQL only: the read-only role (cluster-wide, so created if missing)
_PG_READER = [
    f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER_ROLE}')"
    f" THEN CREATE ROLE {READER_ROLE} NOLOGIN; END IF; END $$",
    f"GRANT SELECT ON crossings, referrals, alarms, schema_version TO {READER_ROLE}",
    f"REVOKE ALL ON rejects, quarantine FROM {READER_ROLE}",
]
# PostgreSQL lets every role (PUBLIC) create large objects, which persist, and temporary
# tables: a "read-only" login could still store data in the record's database. Taken
# from PUBLIC here; the writer keeps TEMP for its COPY staging tables. Needs a superuser
# (the large-object functions belong to the bootstrap superuser) or the database's
# owner (TEMP); without the right, the writer logs the statements for a DBA.
_PG_NO_WRITES_BY_READERS = [
    "REVOKE EXECUTE ON FUNCTION lo_create(oid), lo_creat(integer), lo_from_bytea(oid, bytea),"
    " lo_import(text), lo_import(text, oid) FROM PUBLIC",
    "DO $$ BEGIN"
    " EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), current_user);"
    " EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());"
    " END $$",
]


class _Conn(Protocol):
    def cursor(self) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


@dataclass
class WriteResult:
    inserted: int
    duplicates: int
    rejected: int


class Store:
    """One connection to the record; ``write`` is the only path that adds rows."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only
        if url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            path = url.removeprefix("sqlite:///")
            target = f"file:{path}?mode=ro" if read_only else f"file:{path}"
            try:
                conn = sqlite3.connect(target, uri=True, timeout=30, check_same_thread=False)
                conn.create_function("autogate_sha256", 1, _sha256_hex, deterministic=True)
                if not read_only:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(f"{path}: {exc}") from None
            self.conn: _Conn = conn
        elif url.startswith(("postgresql://", "postgres://")):
            import psycopg

            self.dialect = "postgresql"
            try:
                self.conn = psycopg.connect(url, connect_timeout=10)
            except psycopg.Error as exc:
                raise StoreError(f"{_safe(url)}: {exc}".strip()) from None
            if read_only:
                self._exec("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                self.conn.commit()
        else:
            raise StoreError(f"database url {url!r}: expected sqlite:///PATH or postgresql://...")
        self._ph = "?" if self.dialect == "sqlite" else "%s"
        self._staged: set[str] = set()  # PostgreSQL staging tables made on this connection

    def close(self) -> None:
        self.conn.close()

    # --- schema -----------------------------------------------------------------------

    def version(self) -> int:
        cur = self.conn.cursor()
        try:
            cur.execute("SELECT MAX(version) FROM schema_version")
            row = cur.fetchone()
        except Exception:  # no table yet: a fresh database
            self.conn.rollback()
            return 0
        self.conn.commit()
        return int(row[0] or 0)

    def migrate(self) -> list[int]:
        """Apply the migrations this database lacks; returns the versions applied."""
        if self.read_only:
            raise StoreError("migrate: the store is opened read-only")
        types = (
            {"ts": "TEXT", "blob": "BLOB", "sha256": "autogate_sha256(payload)"}
            if self.dialect == "sqlite"
            else {"ts": "TIMESTAMPTZ", "blob": "BYTEA", "sha256": "encode(sha256(payload), 'hex')"}
        )
        self._exec(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
            f" description TEXT NOT NULL, applied_at {types['ts']} NOT NULL)"
        )
        self.conn.commit()
        current = self.version()
        newest = MIGRATIONS[-1][0]
        if current > newest:
            raise StoreError(f"database schema is version {current}; this code knows {newest}")
        applied = []
        for version, description, statements in MIGRATIONS:
            if version <= current:
                continue
            try:
                for sql in statements:
                    self._exec(sql.format(**types))
                self._exec(
                    "INSERT INTO schema_version (version, description, applied_at)"
                    f" VALUES ({self._ph}, {self._ph}, {self._ph})",
                    (version, description, self._now()),
                )
                self.conn.commit()
            except Exception as exc:
                self.conn.rollback()
                raise StoreError(f"migration {version} ({description}): {exc}") from None
            applied.append(version)
        if self.dialect == "postgresql":
            for sql in _PG_READER:
                self._exec(sql)
            self.conn.commit()
            self._close_reader_writes()
        return applied

    def _close_reader_writes(self) -> None:
        for sql in _PG_NO_WRITES_BY_READERS:
            try:
                self._exec(sql)
                self.conn.commit()
            except Exception as exc:
                self.conn.rollback()
                log.warning(
                    "ingest: readers may still store data (%s); a superuser should run: %s",
                    str(exc).strip().splitlines()[0],
                    sql,
                )

    # --- writing ----------------------------------------------------------------------

    def write(self, records: Sequence[Row | Reject]) -> WriteResult:
        """Insert a batch in one transaction; rows already there are skipped, not errors."""
        now = self._now()
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        rejects: list[tuple[Any, ...]] = []
        for r in records:
            if isinstance(r, Reject):
                rejects.append(
                    (r.digest, r.topic, r.site, r.gate, r.size, r.sha256, r.error, r.payload, now)
                )
            else:
                by_table.setdefault(r.table, []).append((*self._values(r), now))
        inserted = 0
        if self.dialect == "postgresql":
            self._stages(by_table)
        try:
            cur = self.conn.cursor()
            for table, rows in by_table.items():
                if self.dialect == "postgresql":
                    inserted += self._copy(cur, table, rows)
                    continue
                cols = (*COLUMNS[table], "received_at")
                sql = (
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES"
                    f" ({', '.join([self._ph] * len(cols))}) ON CONFLICT (event_id) DO NOTHING"
                )
                inserted += self._many(cur, sql, rows)
            if rejects:
                self._many(
                    cur,
                    "INSERT INTO rejects (digest, topic, site, gate, size, sha256, error,"
                    f" payload, received_at) VALUES ({', '.join([self._ph] * 9)})"
                    " ON CONFLICT (digest) DO NOTHING",
                    rejects,
                )
            self.conn.commit()
        except Exception:
            self.conn.rollback()
            raise
        rows_total = sum(len(v) for v in by_table.values())
        return WriteResult(inserted, rows_total - inserted, len(rejects))

    def _stages(self, tables: Iterable[str]) -> None:
        """PostgreSQL: a session's staging table per target, made once (its own commit)."""
        missing = [t for t in tables if t not in self._staged]
        if not missing:
            return
        try:
            for t in missing:
                self._exec(
                    f"CREATE TEMP TABLE IF NOT EXISTS stage_{t} (LIKE {t}) ON COMMIT DELETE ROWS"
                )
            self.conn.commit()
        except Exception:
            self.conn.rollback()
            raise
        self._staged.update(missing)

    def _copy(self, cur: Any, table: str, rows: list[tuple[Any, ...]]) -> int:
        """COPY into the staging table, then one INSERT ... SELECT ... ON CONFLICT: about
        half the server and client CPU per row of an ``executemany`` of INSERTs
        (docs/bench-ingest.md); the staging rows vanish at commit."""
        cols = ", ".join((*COLUMNS[table], "received_at"))
        with cur.copy(f"COPY stage_{table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM stage_{table}"
            " ON CONFLICT (event_id) DO NOTHING"
        )
        return int(cur.rowcount if cur.rowcount >= 0 else 0)

    def quarantine(self, event_id: str, kept: dict[str, Any], error: str) -> None:
        """Keep an event the database refused (kept once: a redelivery does not add):
        ``kept`` is ``records.quarantined``'s description, never the raw payload."""
        try:
            self._exec(
                "INSERT INTO quarantine (event_id, topic, site, gate, size, sha256, record,"
                f" error, received_at) VALUES ({', '.join([self._ph] * 9)})"
                " ON CONFLICT (event_id) DO NOTHING",
                (
                    event_id[:200],
                    kept["topic"],
                    kept["site"],
                    kept["gate"],
                    kept["size"],
                    kept["sha256"],
                    kept["record"],
                    error[:2000],
                    self._now(),
                ),
            )
            self.conn.commit()
        except Exception:
            self.conn.rollback()
            raise

    def purge(self, older_than_days: float) -> int:
        """Delete refusals (rejects, quarantine) received more than ``older_than_days``
        ago; the number deleted. Their rows describe a gate's fault, and the few that
        keep bytes (a message our code failed on, a quarantine from before migration 4)
        may hold a traveller's names: they are not kept for ever."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)
        at: Any = cutoff
        if self.dialect == "sqlite":
            at = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        deleted = 0
        try:
            cur = self.conn.cursor()
            for table in REFUSALS:
                cur.execute(f"DELETE FROM {table} WHERE received_at < {self._ph}", (at,))
                deleted += max(0, int(cur.rowcount))
            self.conn.commit()
        except Exception:
            self.conn.rollback()
            raise
        return deleted

    def ping(self) -> None:
        """Raises unless the database answers a trivial question."""
        cur = self.conn.cursor()
        cur.execute("SELECT 1")
        cur.fetchone()
        self.conn.commit()

    def _many(self, cur: Any, sql: str, rows: list[tuple[Any, ...]]) -> int:
        if self.dialect == "sqlite":
            before = self.conn.total_changes  # type: ignore[attr-defined]
            cur.executemany(sql, rows)
            return int(self.conn.total_changes - before)  # type: ignore[attr-defined]
        cur.executemany(sql, rows)
        return int(cur.rowcount if cur.rowcount >= 0 else 0)

    def _values(self, row: Row) -> tuple[Any, ...]:
        if self.dialect == "sqlite":
            return row.values
        ts_at = COLUMNS[row.table].index("ts")
        values = list(row.values)
        values[ts_at] = _parse(values[ts_at])
        return tuple(values)

    # --- reading ----------------------------------------------------------------------

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts; ``?`` placeholders work on both dialects; times as ISO strings."""
        cur = self.conn.cursor()
        cur.execute(sql.replace("?", self._ph), tuple(params))
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, map(_plain, r), strict=True)) for r in cur.fetchall()]
        self.conn.commit()
        return rows

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        # no parameters: no placeholders either (a literal %I of format() stays itself)
        cur = self.conn.cursor()
        cur.execute(sql, params) if params else cur.execute(sql)

    def _now(self) -> Any:
        now = dt.datetime.now(dt.UTC)
        return (
            now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            if self.dialect == "sqlite"
            else now
        )


def _sha256_hex(value: bytes | None) -> str | None:
    return None if value is None else hashlib.sha256(value).hexdigest()


def _parse(value: Any) -> Any:
    return (
        dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    )


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _safe(url: str) -> str:
    """The url without its password, for messages."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    cred, _, host = rest.rpartition("@")
    return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}"
