"""Running the daemon as a service: the ops parts composed around one ``Daemon``.

``Ops.build(cfg)`` does everything that can fail for operational reasons *before* any
device is touched: it loads the keys (systemd credentials), opens the metrics port.
A missing key or a busy port is an ``OpsError`` with one clear line; the CLI exits
non-zero, the doors stay as the controller holds them (closed), and systemd's
``Restart=on-failure`` retries with its back-off. ``attach`` hooks metrics, STATUS and
event logs into the daemon's observers; ``start``/``stop`` run the watchdog, READY,
checkpoint signer and referral purge as tasks beside the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from autogate import credentials, logs
from autogate.audit import Checkpointer, OutcomeCheckpoints, check_at_start
from autogate.metrics import Metrics, MetricsError
from autogate.notify import Notifier, StatusObserver, Watchdog
from autogate.vault import ReferralStore, Vault
from gate.config import GateConfig

log = logging.getLogger("autogate.ops")

EXIT_OPS = 3  # a service prerequisite is missing (credential, port): see the message


class OpsError(Exception):
    """The service cannot start safely; ``str()`` says what to fix."""


class Ops:
    def __init__(
        self,
        cfg: GateConfig,
        vault: Vault,
        metrics: Metrics | None,
        notifier: Notifier,
        signing_key: Any = None,
    ) -> None:
        self.cfg = cfg
        self.vault = vault
        self.metrics = metrics
        self.notifier = notifier
        self.signing_key = signing_key
        self.watchdog: Watchdog | None = None
        self.checkpointer: Checkpointer | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._waiters: list[asyncio.Task[Any]] = []

    @classmethod
    def build(cls, cfg: GateConfig, env: Mapping[str, str] | None = None) -> Ops:
        env = os.environ if env is None else env
        ops = cfg.ops
        try:
            key = credentials.signing_key(ops.audit.signing_key) if ops.audit.signing_key else None
            store = None
            if ops.privacy.referral_key:
                store = ReferralStore(
                    cfg.storage.data_dir / "referrals",
                    credentials.aes_key(ops.privacy.referral_key),
                    ops.privacy.retention_s,
                    ops.privacy.max_hold_s,
                )
        except credentials.CredentialError as exc:
            raise OpsError(str(exc)) from None
        except OSError as exc:
            raise OpsError(f"referral store {cfg.storage.data_dir}: {exc}") from None
        if key is not None:
            problem = check_at_start(cfg.storage.journal, ops.audit.checkpoints, key)
            if problem is not None:
                raise OpsError(
                    f"audit journal does not match its signed checkpoints: {problem}; "
                    "keep both files as evidence, move them aside, then start"
                )
        metrics = None
        if ops.metrics.enabled:
            metrics = Metrics()
            try:
                metrics.serve(ops.metrics.host, ops.metrics.port)
            except MetricsError as exc:
                raise OpsError(str(exc)) from None
        if store is not None:
            store.resolve_all(time.time())
            store.purge(time.time())
        return cls(cfg, Vault(store), metrics, Notifier(env), key)

    def attach(self, daemon: Any) -> None:
        """Hook the observers into ``daemon`` and bind the log context to it."""
        from autogate.logs import EventLogObserver

        daemon.observers.append(EventLogObserver())
        daemon.observers.append(StatusObserver(self.notifier))
        if self.metrics is not None:
            self.metrics.bind(daemon)
            daemon.observers.append(self.metrics)
        gate_id = self.cfg.gate.id
        logs.set_context(
            lambda: {"gate": gate_id, "txn_id": daemon.gate.txn.id if daemon.gate.txn else None}
        )
        self.watchdog = Watchdog(
            self.notifier,
            lambda: daemon.alive_at,
            self.cfg.ops.watchdog_stale_s,
            on_change=self.metrics.on_watchdog if self.metrics else None,
        )
        if self.signing_key is not None:
            bus = daemon.dev.bus
            self.checkpointer = Checkpointer(
                self.signing_key,
                self.cfg.ops.audit.checkpoints,
                self.cfg.gate.site,
                gate_id,
                daemon.journal.head,
                publish=lambda leaf, payload: bus.publish(leaf, payload),
                clock=daemon.clock,
            )
            if self.metrics is not None:
                counter = self.metrics.checkpoints
                self.checkpointer.on_checkpoint.append(lambda _: counter.inc())
            # and at every transaction's outcome: the unsigned tail is one transaction
            daemon.observers.append(OutcomeCheckpoints(self.checkpointer))

    async def start(self, daemon: Any, stop: asyncio.Event) -> None:
        """Run the service tasks beside ``daemon.run(stop)``."""
        self._waiters = [  # cancelled at stop if what they wait for never came
            asyncio.ensure_future(self._ready(daemon)),
            asyncio.ensure_future(self._stopping(stop)),
        ]
        self._tasks = []
        if self.watchdog is not None:
            self._tasks.append(asyncio.ensure_future(self.watchdog.run(self._stop)))
        if self.checkpointer is not None:
            self._tasks.append(asyncio.ensure_future(self._checkpoints(daemon)))
        if self.vault.store is not None:
            self._tasks.append(asyncio.ensure_future(self._purge()))

    async def _ready(self, daemon: Any) -> None:
        await daemon.ready.wait()
        self.notifier.ready(daemon.gate.state.value)
        log.info("ready", extra={"state": daemon.gate.state.value})

    async def _checkpoints(self, daemon: Any) -> None:
        """Sign the head on a timer once the devices (the bus among them) have started."""
        assert self.checkpointer is not None
        ready = asyncio.ensure_future(daemon.ready.wait())
        stopped = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for t in (ready, stopped):
            t.cancel()
        if daemon.ready.is_set() and not self._stop.is_set():
            await self.checkpointer.run(self.cfg.ops.audit.checkpoint_interval_s, self._stop)

    async def _stopping(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.notifier.stopping()

    async def _purge(self) -> None:
        period = min(60.0, max(1.0, self.cfg.ops.privacy.retention_s / 4))
        while not self._stop.is_set():
            self.vault.purge()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), period)

    async def stop(self) -> None:
        """After the daemon has stopped: last checkpoint, purge, close the endpoint."""
        self._stop.set()
        for t in self._waiters:
            t.cancel()
        await asyncio.gather(*self._waiters, *self._tasks, return_exceptions=True)
        if self.checkpointer is not None:
            self.checkpointer.write()  # the head after daemon.stop, locally
        self.vault.purge()
        if self.metrics is not None:
            self.metrics.close()

    def close(self) -> None:
        """Release what ``build`` opened when the daemon never started."""
        if self.metrics is not None:
            self.metrics.close()
