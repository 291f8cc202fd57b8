"""A native crash in the matcher's worker is one refused input, not a dead daemon, and
the next traveller finds a warm worker."""

from __future__ import annotations

import ctypes
import os
import time

import pytest

from drivers.finger.isolated import Worker, WorkerFailed


def _segfault() -> None:
    ctypes.string_at(0)  # a read at address 0: SIGSEGV, as a broken native library gives


def _pid() -> int:
    return os.getpid()


def test_a_crash_refuses_that_call_and_a_new_worker_is_warmed_at_once() -> None:
    w = Worker("test worker")
    try:
        w.warm()
        first = w.call(_pid, timeout_s=60)
        with pytest.raises(WorkerFailed, match="crashed"):
            w.call(_segfault, timeout_s=60)
        assert w.restarts == 1
        deadline = time.monotonic() + 120  # wide: a spawn on a loaded machine
        while not w._ready.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert w._ready.is_set()  # warmed without waiting for the next call
        assert w.call(_pid, timeout_s=60) not in (first, os.getpid())
    finally:
        w.close()
