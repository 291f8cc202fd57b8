"""The SQLite outbox: order, delete on ack, bound with reserve, restart, retained coalescing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.outbox import RESERVE_ROWS, Outbox, OutboxFull


def test_rows_come_back_in_order_and_leave_only_when_deleted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 100)
    seqs = [box.put(f"t/{i}", f"{i}".encode()) for i in range(10)]
    assert seqs == sorted(seqs)
    assert [r.payload for r in box.peek(0, 100)] == [f"{i}".encode() for i in range(10)]
    assert [r.seq for r in box.peek(seqs[4], 3)] == seqs[5:8]
    assert box.delete([seqs[0], seqs[2], seqs[2]]) == 2  # a second ack of a row is harmless
    assert len(box) == 8
    assert [r.payload for r in box.peek()][:2] == [b"1", b"3"]
    box.close()


def test_survives_a_killed_writer(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[2]);"
        "from gate.outbox import Outbox;"
        "b = Outbox(sys.argv[1], 1000, 'normal');"
        "[b.put('t', str(i).encode()) for i in range(50)];"
        "os.kill(os.getpid(), 9)"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", code, str(path), str(root)])
    assert proc.returncode == -9
    box = Outbox(path, 1000)
    assert [r.payload for r in box.peek(0, 100)] == [str(i).encode() for i in range(50)]
    assert len(box) == 50
    assert box.put("t", b"next") > box.peek(0, 100)[-2].seq
    box.close()


def test_full_is_refused_not_dropped_and_the_reserve_takes_the_alarm(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 3)
    for i in range(3):
        box.put("t", bytes([i]))
    assert box.full
    with pytest.raises(OutboxFull):
        box.put("t", b"x")
    assert [r.payload for r in box.peek()] == [b"\0", b"\1", b"\2"]
    for _ in range(RESERVE_ROWS):
        box.put("alarm", b"a", reserve=True)
    with pytest.raises(OutboxFull):
        box.put("alarm", b"a", reserve=True)
    box.delete([r.seq for r in box.peek(0, 1)])
    with pytest.raises(OutboxFull):  # reserve rows count too: still above the bound
        box.put("t", b"x")
    box.delete([r.seq for r in box.peek(0, 100)][: RESERVE_ROWS + 1])
    box.put("t", b"fits again")
    assert len(box) == 2
    box.close()


def test_new_retained_row_replaces_unsent_ones_of_its_topic(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 10)
    box.put("s", b"IDLE", retain=True)
    box.put("e", b"event")
    box.put("s", b"BUSY", retain=True)
    box.put("other/s", b"X", retain=True)
    assert [(r.topic, r.payload) for r in box.peek()] == [
        ("e", b"event"),
        ("s", b"BUSY"),
        ("other/s", b"X"),
    ]
    assert len(box) == 3
    box.close()


def test_is_wal_and_reopens_with_its_count(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path, 10, sync="full")
    box.put("t", b"1")
    box.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = Outbox(path, 10)
    assert len(again) == 1
    again.close()
    with pytest.raises(RuntimeError):
        again.put("t", b"2")


def test_bad_bound_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Outbox(tmp_path / "o.sqlite", 0)


def test_discard_retained_drops_only_that_topics_retained_rows(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 10)
    box.put("a/status", b"OFFLINE", retain=True)
    box.put("a/event", b"e")
    box.put("b/status", b"IDLE", retain=True)
    assert box.discard_retained("a/status") == 1
    assert [r.payload for r in box.peek()] == [b"e", b"IDLE"]
    assert len(box) == 2
    box.close()


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("put"), st.booleans()),
            st.tuples(st.just("ack"), st.integers(0, 20)),
            st.tuples(st.just("reopen"), st.none()),
        ),
        max_size=40,
    )
)
def test_whatever_happens_unacked_rows_stay_in_order(ops: list[tuple[str, object]]) -> None:
    """Invariant: the outbox holds exactly the unacknowledged rows, oldest first (a retained
    status row is replaced by a newer one), across reopenings, and never more than the bound."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "o.sqlite"
        box = Outbox(path, 25, sync="normal")
        model: list[tuple[str, bytes]] = []
        n = 0
        for op, arg in ops:
            if op == "put":
                retain = bool(arg)
                topic, n = ("s" if retain else "e"), n + 1
                if retain:
                    model = [m for m in model if m[0] != "s"]
                if len(model) >= 25:
                    with pytest.raises(OutboxFull):
                        box.put(topic, str(n).encode(), retain)
                    continue
                box.put(topic, str(n).encode(), retain)
                model.append((topic, str(n).encode()))
            elif op == "ack":
                rows = box.peek(0, 100)
                k = min(int(arg), len(rows))  # type: ignore[call-overload]
                box.delete(r.seq for r in rows[:k])
                model = model[k:]
            else:
                box.close()
                box = Outbox(path, 25, sync="normal")
            assert [(r.topic, r.payload) for r in box.peek(0, 100)] == model
            assert len(box) == len(model)
        box.close()


def test_put_many_is_one_transaction_with_a_result_per_row(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", 2)
    box.put("s", b"old status", retain=True)
    results = box.put_many(
        [("e", b"1", False, False), ("e", b"2", False, False), ("s", b"new", True, False)]
    )
    assert isinstance(results[0], int) and isinstance(results[1], OutboxFull)
    assert isinstance(results[2], int)  # replacing the old status needs no room
    assert [r.payload for r in box.peek()] == [b"1", b"new"]
    # above the bound (reserve in use) a refused status must not take the old one with it
    box.put("a", b"alarm", reserve=True)
    assert isinstance(box.put_many([("s", b"newer", True, False)])[0], int)
    box.put("a", b"alarm2", reserve=True)
    box.put("s2", b"x", retain=True, reserve=True)
    assert isinstance(box.put_many([("s3", b"y", True, False)])[0], OutboxFull)
    assert [r.payload for r in box.peek()] == [b"1", b"alarm", b"newer", b"alarm2", b"x"]
    box.close()
