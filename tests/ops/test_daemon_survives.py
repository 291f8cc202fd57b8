"""What the daemon survives, each a crash before: the audit journal's disk full or
failing (the write raised out of the step between one of the core's actions and the
next, and the daemon died again at every restart; now the records wait in memory, the
lane goes out of service, and both are undone by the first write that works, the chain
on disk whole), an action that fails (the step's other actions still run), an input
the core fails on (dropped, the next one stepped)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from autogate.daemon import Daemon
from autogate.wiring import build_devices, settings_from
from gate import inputs as i
from gate.config import load_config
from gate.journal import Journal, iter_records, verify
from tests.ops.helpers import make_config


def _quiet(daemon: Daemon) -> Daemon:
    """No devices run here: what a step would start (publishes, device reads) is dropped."""

    def guard(device: str, work: Any) -> None:
        work.close()

    def spawn(coro: Any) -> None:
        if coro is not None:
            coro.close()

    daemon._guard = guard  # type: ignore[assignment, method-assign]
    daemon._spawn = spawn  # type: ignore[assignment, method-assign]
    return daemon


def test_a_write_that_fails_leaves_no_torn_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    j = Journal(tmp_path / "j.jsonl")
    j.append("a", {"n": 1}, "2026-12-07T00:00:00Z")
    real = os.write
    calls = 0

    def half_then_full(fd: int, data: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real(fd, bytes(data)[:10])  # part of the line reaches the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError):
        j.append("b", {"n": 2}, "2026-12-07T00:00:01Z")
    monkeypatch.setattr(os, "write", real)
    assert j.head().seq == 1
    j.append("c", {"n": 3}, "2026-12-07T00:00:02Z")
    j.close()
    assert verify(tmp_path / "j.jsonl").ok
    assert [r["kind"] for r in iter_records(tmp_path / "j.jsonl")] == ["a", "c"]


def test_the_daemon_survives_a_full_disk_goes_out_of_service_and_catches_up(
    tmp_path: Path,
) -> None:
    cfg = load_config(make_config(tmp_path))
    devices, _ = build_devices(cfg)
    daemon = _quiet(Daemon(cfg, devices, settings_from(cfg)))
    emitted: list[Any] = []
    daemon.emit = emitted.append  # type: ignore[method-assign]
    real = daemon.journal.append
    full = True

    def append(kind: str, data: dict[str, Any], ts: str) -> dict[str, Any]:
        if full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(kind, data, ts)

    daemon.journal.append = append  # type: ignore[method-assign]
    try:
        for n in range(5):
            daemon._journal("door", {"command": "CloseDoor", "door": "entry", "n": n})
        daemon._step(i.Tick())  # still full: the step runs
        assert emitted.count(i.DeviceFault("journal", emitted[0].detail)) == 1
        assert "No space left" in emitted[0].detail
        full = False
        daemon._step(i.Tick())  # writable again: the backlog goes first, in order
        assert i.LinkRestored("journal") in emitted
    finally:
        daemon.journal.close()
    records = list(iter_records(Path(cfg.storage.journal)))
    doors = [r["data"]["n"] for r in records if r["kind"] == "door"]
    assert doors == [0, 1, 2, 3, 4]
    assert verify(Path(cfg.storage.journal)).ok


def test_beyond_the_backlog_the_gap_is_journalled(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("autogate.daemon.JOURNAL_BACKLOG", 3)
    cfg = load_config(make_config(tmp_path))
    devices, _ = build_devices(cfg)
    daemon = _quiet(Daemon(cfg, devices, settings_from(cfg)))
    daemon.emit = lambda _e: None  # type: ignore[method-assign, assignment]
    real = daemon.journal.append
    full = True

    def append(kind: str, data: dict[str, Any], ts: str) -> dict[str, Any]:
        if full:
            raise OSError(errno.EIO, "Input/output error")
        return real(kind, data, ts)

    daemon.journal.append = append  # type: ignore[method-assign]
    try:
        for n in range(5):
            daemon._journal("event", {"n": n})
        full = False
        daemon._step(i.Tick())
    finally:
        daemon.journal.close()
    records = list(iter_records(Path(cfg.storage.journal)))
    kinds = [(r["kind"], r["data"].get("n", r["data"].get("records_lost"))) for r in records]
    assert kinds[:4] == [("event", 0), ("event", 1), ("event", 2), ("journal.gap", 2)]


def test_an_action_that_fails_does_not_skip_the_steps_other_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gate import machine
    from gate.actions import CloseDoor, Publish
    from gate.events import EventType

    cfg = load_config(make_config(tmp_path))
    devices, _ = build_devices(cfg)
    daemon = _quiet(Daemon(cfg, devices, settings_from(cfg)))
    alarm = Publish(EventType.ALARM_RAISED, reasons=())
    close = CloseDoor(i.Door.ENTRY)
    monkeypatch.setattr(machine, "step", lambda g, e, now: (g, [alarm, close]))

    def broken(act: Publish, now: float) -> None:
        raise RuntimeError("a bug while publishing")

    daemon._send = broken  # type: ignore[method-assign]
    try:
        daemon._step(i.Tick())
    finally:
        daemon.journal.close()
    assert daemon.doors.get_nowait() == close  # the door command was still given


def test_an_input_the_core_fails_on_is_dropped_and_the_next_one_stepped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gate import machine

    cfg = load_config(make_config(tmp_path))
    devices, _ = build_devices(cfg)
    daemon = _quiet(Daemon(cfg, devices, settings_from(cfg)))
    real = machine.step

    def step(g: Any, e: Any, now: float) -> Any:
        if isinstance(e, i.DocumentRemoved):
            raise KeyError("a bug in the core")
        return real(g, e, now)

    monkeypatch.setattr(machine, "step", step)
    try:
        daemon._step(i.Started())
        daemon._step(i.DocumentRemoved())  # raised out of the daemon's loop before
        before = daemon.steps
        daemon._step(i.OfficerCommand(i.Command.IN_SERVICE, "sam", "c1"))
    finally:
        daemon.journal.close()
    assert daemon.core_errors == 1 and daemon.steps == before + 1
