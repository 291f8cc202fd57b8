"""What the record keeps of refused messages: enough to find the gate and the fault (topic,
site, gate, time, reason, size, SHA-256), never a traveller's names from a broken or
hostile gate's bytes, and not for ever (docs/ingest.md, "Refusals")."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from autogate.ingest import store as store_module
from autogate.ingest.records import Reject, to_record
from autogate.ingest.store import Store
from tests.ingest.helpers import KEY, crossing, referral

NAMES = ("ERIKSSON", "ANNA MARIA", "1974-08-12", "XY9876543")


def _bad_referral() -> tuple[str, bytes]:
    """A referral with the traveller's names that fails its schema (an unknown field)."""
    topic, payload = referral("XY9876543")
    payload["document"]["mother"] = "ERIKSSON"
    return topic, json.dumps(payload).encode()


def _everything(store: Store, table: str) -> str:
    rows = store.query(f"SELECT * FROM {table}")
    return json.dumps(rows, default=lambda v: bytes(v).decode("latin-1"))


def test_a_refused_referral_keeps_no_name_but_what_finds_it(db_url: str):
    topic, body = _bad_referral()
    rec = to_record(topic, body, KEY)
    assert isinstance(rec, Reject)
    store = Store(db_url)
    store.migrate()
    store.write([rec])
    kept = _everything(store, "rejects")
    for personal in NAMES:
        assert personal not in kept
    (row,) = store.query("SELECT topic, site, gate, size, sha256, error, received_at FROM rejects")
    assert row["topic"] == topic and (row["site"], row["gate"]) == ("kul1", "g01")
    assert row["size"] == len(body) and row["sha256"] == hashlib.sha256(body).hexdigest()
    assert "mother" in row["error"] and row["received_at"]
    store.close()


def test_a_reason_does_not_quote_the_senders_text():
    topic, payload = crossing()
    payload["schema"] = "ERIKSSON ANNA MARIA"
    rec = to_record(topic, json.dumps(payload).encode(), KEY)
    assert isinstance(rec, Reject) and "ERIKSSON" not in rec.error
    payload["schema"] = "status/1"
    rec = to_record(topic, json.dumps(payload).encode(), KEY)
    assert isinstance(rec, Reject) and "'status/1'" in rec.error  # an id still helps


def test_a_topic_that_carries_text_is_kept_by_its_shape():
    _, body = _bad_referral()
    topic = "autogate/v1/kul1/g01/event/ERIKSSON ANNA MARIA/event/referral"
    rec = to_record(topic, body, KEY)
    assert isinstance(rec, Reject) and "ERIKSSON" not in rec.topic
    assert rec.topic.startswith("autogate/v1/kul1/g01/") and "8 levels" in rec.topic


def _age(store: Store, table: str, days: float) -> None:
    """Back-date every row of ``table`` by ``days``."""
    import datetime as dt

    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    at: Any = when
    if store.dialect == "sqlite":
        at = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    store.conn.cursor().execute(f"UPDATE {table} SET received_at = {store._ph}", (at,))
    store.conn.commit()


def test_refusals_past_their_retention_are_purged(db_url: str):
    store = Store(db_url)
    store.migrate()
    old, new = Reject.of("t/old", b"x", "old"), Reject.of("t/new", b"y", "new")
    store.write([old])
    store.quarantine("e-old", {"topic": "t", "site": None, "gate": None, "size": 1,
                                "sha256": "0" * 64, "record": None}, "refused")  # fmt: skip
    _age(store, "rejects", 31)
    _age(store, "quarantine", 31)
    store.write([new])
    assert store.purge(30) == 2
    assert [r["error"] for r in store.query("SELECT error FROM rejects")] == ["new"]
    assert store.query("SELECT event_id FROM quarantine") == []
    store.close()


def test_a_worker_purges_old_refusals_as_it_writes(tmp_path: Path):
    from tests.ingest.test_poison import _msg, _worker

    worker, acked = _worker(tmp_path, f"sqlite:///{tmp_path / 'r.sqlite'}")
    worker.store.write([Reject.of("t/old", b"x", "old")])
    _age(worker.store, "rejects", 40)
    worker.write([_msg(1, crossing())])
    assert acked == [1]
    assert worker.store.query("SELECT topic FROM rejects") == []


def test_migration_4_drops_the_payloads_an_old_record_kept(
    db_url: str, monkeypatch: pytest.MonkeyPatch
):
    """A record written by the code before: rejects and quarantine held raw payloads."""
    store = Store(db_url)
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:3])
    store.migrate()
    topic, body = _bad_referral()
    ph = ", ".join([store._ph] * 5)
    cur = store.conn.cursor()
    now = store._now()
    cur.execute(f"INSERT INTO rejects VALUES ({ph})", ("d1", topic, body, "schema", now))
    cur.execute(
        f"INSERT INTO rejects VALUES ({ph})", ("d2", topic, b"ok", "internal error: X", now)
    )
    cur.execute(f"INSERT INTO quarantine VALUES ({ph})", ("e1", topic, body, "refused", now))
    store.conn.commit()
    monkeypatch.undo()
    assert store.migrate() == [4]
    kept = {r["digest"]: r for r in store.query("SELECT * FROM rejects")}
    assert kept["d1"]["payload"] is None
    assert kept["d1"]["size"] == len(body)
    assert kept["d1"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert bytes(kept["d2"]["payload"]) == b"ok"  # our bug's message: kept for replay
    for personal in NAMES:
        assert personal not in _everything(store, "rejects")
    # an old quarantined event is a valid event the record lacks: kept until the purge
    (q,) = store.query("SELECT * FROM quarantine")
    assert q["size"] == len(body) and q["sha256"] == hashlib.sha256(body).hexdigest()
    _age(store, "quarantine", 31)
    store.purge(30)
    assert store.query("SELECT * FROM quarantine") == []
    store.close()
