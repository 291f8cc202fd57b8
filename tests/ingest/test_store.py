"""The record on SQLite and PostgreSQL: migrations, idempotent writes, read-only access."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from autogate.ingest.records import Reject, Row, to_record
from autogate.ingest.store import MIGRATIONS, READER_ROLE, Store, StoreError
from tests.ingest.helpers import KEY, alarm, crossing, raw, referral


def _records(*msgs) -> list[Row | Reject]:
    out = [to_record(*raw(m), KEY) for m in msgs]
    return [r for r in out if r is not None]


def _count(store: Store, table: str) -> int:
    return int(store.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])


def test_migrations_apply_once_and_in_order(db_url: str):
    store = Store(db_url)
    assert store.migrate() == [v for v, _, _ in MIGRATIONS]
    assert store.migrate() == []
    assert store.version() == MIGRATIONS[-1][0]
    store.close()


def test_a_database_newer_than_the_code_is_refused(db_url: str):
    store = Store(db_url)
    store.migrate()
    store.conn.cursor().execute(
        "INSERT INTO schema_version VALUES (999, 'from the future', CURRENT_TIMESTAMP)"
    )
    store.conn.commit()
    with pytest.raises(StoreError, match="version 999"):
        store.migrate()


def test_writes_are_idempotent_on_event_id(db_url: str):
    store = Store(db_url)
    store.migrate()
    batch = _records(crossing(), referral(), alarm())
    bad = Reject.of("autogate/v1/kul1/g01/event/crossing", b"\xff", "not JSON")
    first = store.write([*batch, bad])
    again = store.write([*batch, bad])  # a redelivery after a crash before the PUBACK
    assert (first.inserted, first.duplicates, first.rejected) == (3, 0, 1)
    assert (again.inserted, again.duplicates) == (0, 3)
    for table in ("crossings", "referrals", "alarms", "rejects"):
        assert _count(store, table) == 1, table
    row = store.query("SELECT ts, number_masked FROM crossings")[0]
    assert row["ts"].endswith("Z") and row["number_masked"] == "******567"


def test_sqlite_query_connection_is_read_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    Store(url).migrate()
    ro = Store(url, read_only=True)
    with pytest.raises(Exception, match="readonly"):
        ro.write(_records(crossing()))


def test_postgresql_reader_role_reads_records_but_not_rejects_and_writes_nothing(pg_url: str):
    store = Store(pg_url)
    store.migrate()
    store.write(_records(crossing()))
    store.conn.cursor().execute(f"CREATE ROLE analyst LOGIN IN ROLE {READER_ROLE}")
    store.conn.commit()
    reader_url = pg_url.replace("postgresql://postgres@", "postgresql://analyst@")
    with psycopg.connect(reader_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM crossings").fetchone() == (1,)
    with psycopg.connect(reader_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(
            "INSERT INTO alarms (event_id, site, gate, ts, type, reasons, received_at)"
            " VALUES ('x', 's', 'g', now(), 't', '[]', now())"
        )
    with psycopg.connect(reader_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM rejects")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM quarantine",
        # any role may create a large object by default: a persistent write by a reader
        "SELECT lo_from_bytea(0, 'kept by a reader')",
        "SELECT lo_create(0)",
        "SELECT lo_creat(-1)",
        "CREATE TEMP TABLE notes (t text)",
        "CREATE TABLE public.notes (t text)",
    ],
)
def test_postgresql_reader_role_cannot_write_anywhere(pg_url: str, sql: str):
    store = Store(pg_url)
    store.migrate()
    login = f"analyst_{uuid.uuid4().hex[:8]}"  # roles are cluster-wide: one per test
    store.conn.cursor().execute(f"CREATE ROLE {login} LOGIN IN ROLE {READER_ROLE}")
    store.conn.commit()
    reader_url = pg_url.replace("postgresql://postgres@", f"postgresql://{login}@")
    with psycopg.connect(reader_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(sql)
    store.write(_records(crossing()))  # the writer keeps what it needs (its COPY staging)
    assert _count(store, "crossings") == 1


def test_a_nul_character_is_a_reject_not_a_batch_that_never_commits(db_url: str):
    # PostgreSQL text cannot hold NUL: such a row would fail its batch on every retry
    topic, payload = crossing()
    payload["txn_id"] = "t\x00x"
    body = json.dumps(payload).encode()
    rec = to_record(topic, body, KEY)
    assert isinstance(rec, Reject) and "NUL" in rec.error
    store = Store(db_url)
    store.migrate()
    assert store.write([rec, *_records(crossing())]).inserted == 1
