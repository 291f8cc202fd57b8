"""A native library run in a worker process, so that its crash is one refused input.

NBIS (mindtct, Bozorth3) is C behind Rust bindings and was never written for hostile
images; the WSQ decoder of the same suite segfaults on some (``drivers/icao/cbeff.py``).
A crash or a hang here ends the worker, not the daemon: the call raises
``WorkerFailed`` and the next call starts a new worker. The worker is spawned, never
forked (the daemon has threads).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class WorkerFailed(Exception):
    """The worker crashed or overran its time; the input is refused, the worker renewed."""


class Worker:
    def __init__(self, name: str) -> None:
        self.name = name
        self._pool: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[..., T], *args: Any, timeout_s: float) -> T:
        with self._lock:
            if self._pool is None:
                ctx = multiprocessing.get_context("spawn")
                self._pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx)
            pool = self._pool
        try:
            return pool.submit(fn, *args).result(timeout=timeout_s)
        except (cf.process.BrokenProcessPool, cf.TimeoutError) as exc:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            if isinstance(exc, cf.TimeoutError):
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.kill()  # a matcher stuck in a loop holds nothing we need
            what = "timed out" if isinstance(exc, cf.TimeoutError) else "crashed"
            raise WorkerFailed(f"{self.name} {what}") from None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
