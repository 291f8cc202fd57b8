"""The wall clock stepped by NTP (or an operator) while the gate runs. The core's timers
ran on the wall clock: a step back of an hour held every timeout for that hour (a lane
stuck waiting for a document read or with someone in the mantrap), a step forward fired
them all at once. The core now runs on a clock that never jumps; events and the journal
keep the wall clock's time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from autogate.daemon import Daemon
from autogate.wiring import build_devices, settings_from
from gate import inputs as i
from gate.config import load_config
from gate.events import format_ts
from gate.machine import State
from tests.ops.helpers import make_config


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_790_000_000.0
        self.steady = 500.0

    def pass_(self, s: float) -> None:
        self.wall += s
        self.steady += s


def test_a_clock_step_back_does_not_hold_a_timeout(tmp_path: Path) -> None:
    cfg = load_config(make_config(tmp_path))
    devices, _ = build_devices(cfg)
    c = Clocks()
    daemon = Daemon(cfg, devices, settings_from(cfg), clock=lambda: c.wall, steady=lambda: c.steady)
    sent: list[dict[str, Any]] = []
    daemon._publish = lambda leaf, payload, retain=False: sent.append(payload)  # type: ignore[assignment, method-assign, misc, return-value]
    daemon._guard = lambda device, work: work.close()  # type: ignore[assignment, method-assign, return-value]  # no devices here
    daemon._spawn = lambda coro: None  # type: ignore[assignment, method-assign, return-value]
    try:
        daemon._step(i.Started())
        daemon._step(i.OfficerCommand(i.Command.IN_SERVICE, "sam", "c1"))
        assert daemon.gate.state is State.IDLE, daemon.gate
        daemon._step(i.DocumentPlaced())
        assert daemon.gate.state is State.DOC_CHECK
        limit = daemon.gate.settings.timeouts[State.DOC_CHECK]
        c.wall -= 3600  # NTP steps the wall clock back an hour; no reader answers
        c.pass_(limit + 1)
        daemon._step(i.Tick())
        assert daemon.gate.state is not State.DOC_CHECK  # timed out on time
        stamped = [p["ts"] for p in sent if "ts" in p]
        wall = dt.datetime.fromtimestamp(c.wall, dt.UTC)
        assert stamped and stamped[-1] == format_ts(wall)  # the wall clock's time, stepped
    finally:
        daemon.journal.close()
