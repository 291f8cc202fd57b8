"""A native crash in the matcher's worker is one refused input, not a dead daemon."""

from __future__ import annotations

import ctypes
import os

import pytest

from drivers.finger.isolated import Worker, WorkerFailed


def _segfault() -> None:
    ctypes.string_at(0)  # a read at address 0: SIGSEGV, as a broken native library gives


def _pid() -> int:
    return os.getpid()


def test_a_crash_refuses_that_call_and_the_next_call_gets_a_new_worker() -> None:
    w = Worker("test worker")
    try:
        first = w.call(_pid, timeout_s=60)
        with pytest.raises(WorkerFailed, match="crashed"):
            w.call(_segfault, timeout_s=60)
        assert w.call(_pid, timeout_s=60) not in (first, os.getpid())
    finally:
        w.close()
