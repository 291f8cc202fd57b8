"""Prometheus metrics on a loopback port: what the gate decided, how fast, how healthy.

A daemon observer fed from the core's steps (inputs, actions, states) and from publishes;
gauges that need a live value (core loop age, outbox depth, journal head) are read at
scrape time. The registry is per-instance so tests and several gates never collide.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gate import inputs as i
from gate.actions import OUTCOME_EVENTS, EventType, Publish

log = logging.getLogger("autogate.metrics")

DEVICES = ("scanner", "chip", "camera", "face", "barrier", "bus", "lists")
STATES = (
    "IDLE",
    "DOC_CHECK",
    "ENTRY_OPEN",
    "IN_MANTRAP",
    "EXIT_OPEN",
    "REFERRED",
    "ALARM",
    "OUT_OF_SERVICE",
    "EMERGENCY",
)
DECISION = {
    EventType.CROSSING_ACCEPTED: "accepted",
    EventType.REFERRAL_OPENED: "referred",
    EventType.CROSSING_ABORTED: "aborted",
}
SCORE_BUCKETS = tuple(round(0.05 * k, 2) for k in range(1, 21))


class MetricsError(Exception):
    """The metrics endpoint cannot be served (port in use, address not local)."""


class _Live(Collector):
    """Values read when Prometheus scrapes: core loop age, outbox, journal, vault."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[str, Callable[[], float | None]]] = {}

    def add(self, name: str, doc: str, fn: Callable[[], float | None]) -> None:
        self.sources[name] = (doc, fn)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, (doc, fn) in self.sources.items():
            try:
                value = fn()
            except Exception as exc:  # e.g. the bus before start: left out of this scrape
                log.debug("metric %s unavailable: %s", name, exc)
                continue
            if value is not None:
                yield GaugeMetricFamily(name, doc, value=float(value))


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.crossings = Counter(
            "autogate_crossings",
            "Transactions by outcome (accepted/referred/aborted) and reason code",
            ["decision", "reason"],
            registry=r,
        )
        self.step_seconds = Histogram(
            "autogate_core_step_seconds",
            "Time of one pure core step, by input type",
            ["input"],
            buckets=(1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1),
            registry=r,
        )
        self.stage_seconds = Histogram(
            "autogate_stage_seconds",
            "Step durations of finished transactions as devices measured them (mrz, chip, lists, face)",
            ["stage"],
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
            registry=r,
        )
        self.transaction_seconds = Histogram(
            "autogate_transaction_seconds",
            "Document placed to outcome, by decision",
            ["decision"],
            buckets=(1, 2, 3, 5, 8, 10, 15, 20, 30, 60, 120, 300),
            registry=r,
        )
        self.match_score = Histogram(
            "autogate_face_match_score", "1:1 face match scores", buckets=SCORE_BUCKETS, registry=r
        )
        self.pad_score = Histogram(
            "autogate_face_pad_score",
            "Presentation-attack scores (0 bona fide, 1 attack)",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.state = Enum("autogate_gate_state", "Gate state", states=list(STATES), registry=r)
        self.link_up = Gauge(
            "autogate_link_up", "1 if the device has no open fault", ["device"], registry=r
        )
        self.published = Counter(
            "autogate_published_events",
            "Events handed to the bus, by topic leaf and result",
            ["leaf", "result"],
            registry=r,
        )
        self.alarms = Counter("autogate_alarms", "Alarms raised, by reason", ["reason"], registry=r)
        self.commands_refused = Counter(
            "autogate_commands_refused",
            "Officer commands the gate refused (negative ack + alarm), by reason",
            ["reason"],
            registry=r,
        )
        self.watchdog_ok = Gauge(
            "autogate_watchdog_ok",
            "1 while the core loop is alive and watchdog pings go out",
            registry=r,
        )
        self.checkpoints = Counter(
            "autogate_audit_checkpoints", "Signed journal checkpoints written", registry=r
        )
        self.live = _Live()
        r.register(self.live)
        for d in DEVICES:
            self.link_up.labels(d).set(1)
        self.state.state("OUT_OF_SERVICE")
        self._server: Any = None

    # -- live sources ------------------------------------------------------------------

    def bind(self, daemon: Any) -> None:
        """Scrape-time gauges of one daemon; the outbox only if the bus can report it."""
        self.live.add(
            "autogate_core_loop_age_seconds",
            "Seconds since the core loop last completed an iteration",
            lambda: time.monotonic() - daemon.alive_at if daemon.alive_at else None,
        )
        self.live.add(
            "autogate_journal_seq",
            "Sequence number of the journal head",
            lambda: daemon.journal.head().seq,
        )
        self.live.add(
            "autogate_referral_biometrics_held",
            "Transactions whose biometrics the vault holds (memory or encrypted on disk)",
            lambda: len(daemon.vault.held()),
        )
        self.live.add(
            "autogate_late_biometrics_dropped",
            "Portraits and frames that arrived after their transaction ended, dropped unkept",
            lambda: daemon.vault.dropped_late,
        )
        bus = daemon.dev.bus
        if callable(getattr(bus, "depth", None)):
            self.live.add("autogate_outbox_depth", "Events waiting in the outbox", bus.depth)
        elif hasattr(type(bus), "backlog"):  # the MQTT bus: rows not yet acknowledged
            self.live.add(
                "autogate_outbox_depth", "Events waiting in the outbox", lambda: bus.backlog
            )
        if callable(getattr(bus, "oldest_age", None)):
            self.live.add(
                "autogate_outbox_oldest_age_seconds",
                "Age of the oldest event waiting in the outbox",
                bus.oldest_age,
            )

    # -- daemon observer ---------------------------------------------------------------

    def on_step(
        self, before: Any, event: Any, after: Any, actions: list[Any], elapsed: float
    ) -> None:
        self.step_seconds.labels(type(event).__name__).observe(elapsed)
        if after.state is not before.state:
            self.state.state(after.state.value)
        if after.faults != before.faults:
            for d in set(DEVICES) | set(after.faults):
                self.link_up.labels(d).set(0 if d in after.faults else 1)
        if isinstance(event, i.FaceVerified):
            self.match_score.observe(event.result.score)
            self.pad_score.observe(event.result.pad_score)
        for act in actions:
            if not isinstance(act, Publish):
                continue
            if act.type in OUTCOME_EVENTS:
                decision = DECISION[act.type]
                for reason in act.reasons or ("none",):
                    self.crossings.labels(decision, str(reason)).inc()
                timings = act.data.get("timings") or {}
                for stage, seconds in timings.items():
                    if stage == "total":
                        self.transaction_seconds.labels(decision).observe(seconds)
                    else:
                        self.stage_seconds.labels(stage).observe(seconds)
            elif act.type is EventType.ALARM_RAISED:
                for reason in act.reasons or ("none",):
                    self.alarms.labels(str(reason)).inc()

    def on_publish(self, leaf: str, payload: dict[str, Any], ok: bool) -> None:
        self.published.labels(leaf, "ok" if ok else "failed").inc()

    def on_command_refused(self, refusal: Any) -> None:
        self.commands_refused.labels(str(refusal.reason)).inc(getattr(refusal, "count", 1))

    def on_watchdog(self, healthy: bool) -> None:
        self.watchdog_ok.set(1 if healthy else 0)

    # -- serving ---------------------------------------------------------------------

    def serve(self, host: str, port: int) -> None:
        """Listen now, before the gate starts: a busy port is an error, not a silent gap."""
        try:
            self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise MetricsError(
                f"metrics endpoint {host}:{port}: {exc.strerror or exc} "
                "(another gate or exporter on this port? set ops.metrics.port)"
            ) from None
        log.info("metrics on http://%s:%d/metrics", host, port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
