"""A native library run in a worker process, so that its crash is one refused input.

NBIS (mindtct, Bozorth3) is C behind Rust bindings and was never written for hostile
images: mindtct smashes its stack on some (``bench/finger.py --hostile``), as the WSQ
decoder of the same suite segfaults on some streams (``drivers/icao/cbeff.py``). A crash
or a hang here ends the worker, not the daemon: the call raises ``WorkerFailed``, and a
new worker is started and warmed at once in the background, so the next traveller does
not wait for a spawn. The worker is spawned, never forked (the daemon has threads).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
START_BUDGET_S = 60.0  # a spawn and its imports on a loaded 2-core machine
log = logging.getLogger(__name__)


def _nothing() -> bool:
    return True


class WorkerFailed(Exception):
    """The worker crashed or overran its time; the input is refused, the worker renewed."""


class Worker:
    def __init__(self, name: str, warm: Callable[[], object] = _nothing) -> None:
        self.name = name
        self.warm_fn = warm
        self._pool: cf.ProcessPoolExecutor | None = None
        self._ready = threading.Event()  # the current pool has finished warming
        self._lock = threading.Lock()
        self.restarts = 0

    def _get(self) -> cf.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                ctx = multiprocessing.get_context("spawn")
                pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx)
                self._pool = pool
                self._ready.clear()
                pool.submit(self.warm_fn).add_done_callback(self._warmed(pool))
            return self._pool

    def _warmed(self, pool: cf.ProcessPoolExecutor) -> Callable[[cf.Future[Any]], None]:
        """Only this pool's warm-up says this pool is ready (an old one may end late)."""

        def done(_: cf.Future[Any]) -> None:
            if self._pool is pool:
                self._ready.set()

        return done

    def warm(self, timeout_s: float = START_BUDGET_S) -> None:
        """Start the worker and wait until it is warm (at start-up, not per traveller)."""
        self._get()
        self._ready.wait(timeout_s)

    def start(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn`` without waiting (work ahead of need); a crash in it surfaces as
        ``WorkerFailed`` in the next ``call``."""
        with contextlib.suppress(RuntimeError):  # a broken pool: the next call renews it
            self._get().submit(fn, *args)

    def call(self, fn: Callable[..., T], *args: Any, timeout_s: float) -> T:
        pool = self._get()
        # a worker still starting (a restart after a crash) gets its start-up time too
        budget = timeout_s if self._ready.is_set() else timeout_s + START_BUDGET_S
        try:
            return pool.submit(fn, *args).result(timeout=budget)
        except (cf.process.BrokenProcessPool, cf.TimeoutError) as exc:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
                    self.restarts += 1
            pool.shutdown(wait=False, cancel_futures=True)
            if isinstance(exc, cf.TimeoutError):
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.kill()  # a matcher stuck in a loop holds nothing we need
            what = "timed out" if isinstance(exc, cf.TimeoutError) else "crashed"
            log.warning("%s %s; starting a new one", self.name, what)
            threading.Thread(target=self._get, daemon=True).start()  # warm the next at once
            raise WorkerFailed(f"{self.name} {what}") from None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
