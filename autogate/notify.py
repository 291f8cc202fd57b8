"""systemd notification: READY, STATUS, STOPPING and WATCHDOG pings (``sd_notify``).

The watchdog ping proves more than "the process exists": it is sent only while the
daemon's core loop is alive, i.e. ``daemon.alive_at`` (monotonic, set after every loop
iteration, at least once per tick) is fresh. A core loop that blocks the event loop
stops the pinging task with it; one that hangs on an await leaves ``alive_at`` stale.
Either way systemd sees no ``WATCHDOG=1`` within ``WatchdogSec=``, kills the daemon
(SIGABRT) and ``Restart=on-failure`` starts a fresh one, which closes the doors first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("autogate.notify")


def watchdog_interval(env: Mapping[str, str]) -> float | None:
    """``WatchdogSec=`` as seconds, if systemd asked this process for pings."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec) / 1e6
    except ValueError:
        return None
    return value if value > 0 else None


class Notifier:
    """Sends sd_notify messages when ``$NOTIFY_SOCKET`` is set; otherwise does nothing.

    The protocol is one datagram per message on a unix socket (``sd_notify(3)``). The
    ``sdnotify`` package reads only ``os.environ`` and hides send errors; these few lines
    take the environment as a parameter and log a failed send once.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self.enabled = bool(addr)
        self.watchdog_s = watchdog_interval(env) if self.enabled else None
        self._addr = "\0" + addr[1:] if addr.startswith("@") else addr  # abstract namespace
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if self.enabled else None
        self._failing = False

    def send(self, message: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto(message.encode(), self._addr)
            self._failing = False
        except OSError as exc:
            if not self._failing:
                log.error("sd_notify to %s failed: %s", self._addr, exc)
            self._failing = True

    def ready(self, status: str) -> None:
        self.send(f"READY=1\nSTATUS={status}\nMAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1\nSTATUS=stopping: closing doors")


class Watchdog:
    """Pings ``WATCHDOG=1`` at half the systemd interval while the core loop is fresh."""

    def __init__(
        self,
        notifier: Notifier,
        alive_at: Callable[[], float],
        stale_s: float,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.notifier = notifier
        self.alive_at = alive_at
        interval = notifier.watchdog_s
        # a loop silent for longer than the systemd interval is stuck, whatever config says
        self.stale_s = min(stale_s, interval) if interval else stale_s
        self.period = interval / 2 if interval else 1.0
        self.on_change = on_change
        self.healthy = False
        self.pings = 0

    def check(self, now: float | None = None) -> bool:
        """One watchdog round: ping if the core loop is fresh; returns whether it pinged."""
        now = time.monotonic() if now is None else now
        fresh = self.alive_at() > 0 and now - self.alive_at() <= self.stale_s
        if fresh:
            if self.notifier.watchdog_s:
                self.notifier.send("WATCHDOG=1")
            self.pings += 1
        if fresh != self.healthy:
            self.healthy = fresh
            if not fresh:
                age = now - self.alive_at()
                log.error("core loop silent for %.1f s: watchdog pings stopped", age)
                self.notifier.status(f"core loop stuck for {age:.1f} s")
            if self.on_change is not None:
                self.on_change(fresh)
        return fresh

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.period)


class StatusObserver:
    """Daemon observer: ``STATUS=`` follows the gate state (``systemctl status`` shows it)."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def on_step(
        self, before: Any, event: Any, after: Any, actions: list[Any], elapsed: float
    ) -> None:
        if after.state is not before.state or after.faults != before.faults:
            faults = f" faults={','.join(sorted(after.faults))}" if after.faults else ""
            self.notifier.status(f"{after.state.value}{faults}")
