"""The SQLite outbox: order, delete on ack, bound with reserve, restart, retained coalescing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

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
