"""Issue 17 item 2: a gate notices when its broker account is used elsewhere.

With the shipped broker settings (``use_username_as_clientid``) a thief holding the gate's
password can only fight the gate itself for its own session; the gate alarms on the
repeated losses once it is back.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.bus import build
from gate.takeover import SESSION_TAKEN_OVER, Takeovers
from sim.broker import PASSWORDS, Broker

from .conftest import Monitor


def test_takeovers_count_bounces_and_alarm_once_per_window() -> None:
    t = Takeovers(alarm_at=3, window_s=100, bounce_s=5)
    assert t.lost(0.0) is None and t.regained(30.0) is None  # a long outage: no bounce
    got = []
    for now in (40.0, 42.0, 44.0, 46.0):
        t.lost(now)
        got.append(t.regained(now + 1))
    assert got == [None, None, 3, None]
    assert t.lost(200.0, SESSION_TAKEN_OVER) is None  # counted, alarmed once in the window
    assert t.regained(201.0) is None  # the same loss is not counted twice


async def test_gate_alarms_when_its_session_is_taken_over_repeatedly(
    gate_cfg_factory: Any, broker: Broker, monitor: Monitor
) -> None:
    cfg = gate_cfg_factory(tls=False)
    bus = build(cfg.devices.bus, cfg)
    await bus.start(lambda _ev: None)
    try:
        for _ in range(3):
            deadline = time.monotonic() + 10
            while not bus.connected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            thief = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="x", protocol=mqtt.MQTTv5)
            thief.username_pw_set("gate-kul1-g01", PASSWORDS["gate-kul1-g01"])
            thief.connect("127.0.0.1", broker.port)
            thief.loop_start()
            await asyncio.sleep(0.3)
            thief.disconnect()
            thief.loop_stop()

        def alarmed(_: Any) -> bool:
            return any(
                "gate_session_taken_over" in m.get("reasons", []) for m in monitor.on("event/alarm")
            )

        assert await asyncio.to_thread(monitor.wait_for, alarmed, 15)
    finally:
        await bus.close()
