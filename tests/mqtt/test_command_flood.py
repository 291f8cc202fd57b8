"""A flood of forged commands costs the lane a bounded amount of work (attack review, 3).

Whoever holds the console's broker password (not its signing key) may publish on every
gate's ``cmd/`` topics. Each refused command was answered one by one on the daemon's
loop: an fsync'd journal record (6 ms on this machine), a negative ack and an alarm in
the outbox. A few hundred forged commands a second kept the loop busy with fsyncs, and
the lane's travellers waited behind them. Now the first refusals of a window are
answered one by one, the rest are counted and reported together when the window ends,
and a genuine command in the middle of the flood is still carried out.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.bus import MqttBus
from gate.commands import Refusal, RefusalBudget, RefusalReason
from gate.inputs import Command
from sim.broker import Broker
from tests.mqtt.conftest import Monitor
from tests.mqtt.test_acl_commands import G01, Client, _signed, gate_bus  # noqa: F401

FLOOD = 300


def test_the_budget_answers_a_few_per_window_and_holds_the_rest() -> None:
    budget = RefusalBudget(per_window=3, window_s=10.0)
    answered = [budget.answer(100.0 + i * 0.01, RefusalReason.BAD_SIGNATURE) for i in range(10)]
    assert answered == [True] * 3 + [False] * 7
    assert budget.remaining(100.5) == 9.5
    assert budget.take_held() == {RefusalReason.BAD_SIGNATURE: 7}
    assert budget.take_held() == {}
    assert budget.answer(110.0, RefusalReason.MALFORMED)  # a new window


async def test_a_flood_of_forged_commands_is_answered_in_summary(
    broker: Broker,
    monitor: Monitor,
    console_key: Ed25519PrivateKey,
    gate_bus: tuple[MqttBus, list[Any]],  # noqa: F811
) -> None:
    bus, inputs = gate_bus
    window = 2.0
    bus.refusals = RefusalBudget(per_window=5, window_s=window)
    hooked: list[Refusal] = []
    bus.on_refused = hooked.append  # the daemon journals and counts what it is given
    forger = Ed25519PrivateKey.generate()
    good = _signed(console_key, command=Command.OUT_OF_SERVICE)
    console = Client(broker, "console")
    began = time.monotonic()
    try:
        for i in range(FLOOD):
            console.c.publish(f"{G01}/cmd/release", json.dumps(_signed(forger)), qos=1)
            if i == FLOOD // 2:
                console.c.publish(f"{G01}/cmd/out_of_service", json.dumps(good), qos=1)
        for _ in range(3000):
            if bus.stats["commands_refused"] >= FLOOD and inputs:
                break
            await asyncio.sleep(0.01)
        flood_s = time.monotonic() - began
        assert bus.stats["commands_refused"] == FLOOD  # every one counted
        assert [i.command_id for i in inputs] == [good["command_id"]]  # the genuine one
        # the window ends: what was held is reported together, once per reason
        for _ in range(1000):
            if sum(r.count for r in hooked) >= FLOOD:
                break
            await asyncio.sleep(0.01)
    finally:
        console.close()
    singles = [r for r in hooked if r.count == 1]
    summaries = [r for r in hooked if r.count > 1]
    assert sum(r.count for r in hooked) == FLOOD  # journalled and counted: all of them
    windows = math.ceil(flood_s / window) + 1  # however slowly the broker delivered them
    assert len(singles) <= 5 * windows, (len(singles), flood_s)
    assert len(singles) < FLOOD // 4
    assert summaries and {r.reason for r in summaries} == {RefusalReason.BAD_SIGNATURE}

    def alarmed(_m: Any) -> bool:
        alarms = monitor.on("event/alarm")
        acks = [a for a in monitor.on("cmd-ack") if not a["accepted"]]
        summary = any("not answered one by one" in a.get("detail", "") for a in alarms)
        return summary and len(acks) >= len(singles)

    assert await asyncio.to_thread(monitor.wait_for, alarmed, 10), monitor.on("event/alarm")
    refused_acks = [a for a in monitor.on("cmd-ack") if not a["accepted"]]
    assert len(refused_acks) == len(singles)
