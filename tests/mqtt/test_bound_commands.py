"""Issue 17 item 9: a release or send-back decides one referral, named by its txn_id.

Real broker, the gate daemon on simulated devices with its MQTT bus, commands signed with
the console's key and published with the console's account: one for another traveller's
referral (a stale screen, a delayed or replayed decision) is refused with its reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from autogate.daemon import Daemon
from autogate.wiring import build_devices, settings_from
from gate import machine
from gate.commands import sign_command
from gate.inputs import DocumentPlaced, TamperChanged
from sim.broker import PASSWORDS, Broker
from sim.devices import SimTraveller, sim_mrz

from .conftest import Monitor


def _send(
    broker: Broker, key: Ed25519PrivateKey, command: str, txn: str | None, **bind: str
) -> dict[str, Any]:
    msg = sign_command(
        key,
        site="kul1",
        gate="g01",
        command=command,
        officer="alice",
        key_id="console-1",
        ts=dt.datetime.now(dt.UTC),
        txn_id=txn,
        **bind,
    )
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="console", protocol=mqtt.MQTTv5)
    c.username_pw_set("console", PASSWORDS["console"])
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    c.publish(f"autogate/v1/kul1/g01/cmd/{command}", json.dumps(msg), qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()
    return msg


async def test_release_for_another_referral_is_refused_with_its_reason(
    gate_cfg_factory: Any, broker: Broker, monitor: Monitor, console_key: Ed25519PrivateKey
) -> None:
    cfg = gate_cfg_factory(console_key=console_key)
    devices, hall = build_devices(cfg)
    daemon = Daemon(cfg, devices, settings_from(cfg))
    hall.emits["bus"] = daemon.emit
    stop = asyncio.Event()
    run = asyncio.ensure_future(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), 20)
        # an expired passport: referred at the reader, the case stays open for an officer
        hall.current = SimTraveller("late", sim_mrz(expiry=dt.date(2020, 1, 1)))
        hall._emit("scanner", DocumentPlaced())

        def referred(_: Any) -> bool:
            return any(m["type"] == "referral.opened" for m in monitor.on("event/referral"))

        assert await asyncio.to_thread(monitor.wait_for, referred, 15)
        (ref,) = [m for m in monitor.on("event/referral") if m["type"] == "referral.opened"]
        stale = _send(broker, console_key, "release", "b0-000001")  # yesterday's traveller

        def acked(cid: str) -> Any:
            return lambda _: any(a["command_id"] == cid for a in monitor.on("cmd-ack"))

        assert await asyncio.to_thread(monitor.wait_for, acked(stale["command_id"]), 10)
        (ack,) = [a for a in monitor.on("cmd-ack") if a["command_id"] == stale["command_id"]]
        assert ack["accepted"] is False
        assert ack["detail"] == f"release is for b0-000001; the open referral is {ref['txn_id']}"
        assert daemon.gate.state is machine.State.REFERRED  # nobody walked out
        good = _send(broker, console_key, "send_back", ref["txn_id"])
        assert await asyncio.to_thread(monitor.wait_for, acked(good["command_id"]), 10)
        (ack,) = [a for a in monitor.on("cmd-ack") if a["command_id"] == good["command_id"]]
        assert ack["accepted"] is True
    finally:
        stop.set()
        await run


async def test_a_reset_for_an_alarm_that_is_over_never_clears_a_newer_one(
    gate_cfg_factory: Any, broker: Broker, monitor: Monitor, console_key: Ed25519PrivateKey
) -> None:
    """Two officers at one alarm: the first resets it, a new alarm is raised, then the
    second officer's reset (signed for the first alarm) arrives: refused with its reason."""
    cfg = gate_cfg_factory(console_key=console_key)
    devices, hall = build_devices(cfg)
    daemon = Daemon(cfg, devices, settings_from(cfg))
    hall.emits["bus"] = daemon.emit
    stop = asyncio.Event()
    run = asyncio.ensure_future(daemon.run(stop))

    def alarms() -> list[str]:
        return [m["alarm_id"] for m in monitor.on("event/alarm") if m["type"] == "alarm.raised"]

    def raised(n: int) -> Any:
        return lambda _: len(alarms()) >= n

    def acked(cid: str) -> Any:
        return lambda _: any(a["command_id"] == cid for a in monitor.on("cmd-ack"))

    async def ack_of(msg: dict[str, Any]) -> dict[str, Any]:
        assert await asyncio.to_thread(monitor.wait_for, acked(msg["command_id"]), 10)
        (ack,) = [a for a in monitor.on("cmd-ack") if a["command_id"] == msg["command_id"]]
        return ack

    try:
        await asyncio.wait_for(daemon.ready.wait(), 20)
        hall._emit("barrier", TamperChanged(True))  # the cabinet opened: an alarm
        hall._emit("barrier", TamperChanged(False))
        assert await asyncio.to_thread(monitor.wait_for, raised(1), 10)
        first = alarms()[0]
        one = _send(broker, console_key, "reset_alarm", None, alarm_id=first)
        assert (await ack_of(one))["accepted"] is True
        hall._emit("barrier", TamperChanged(True))  # a new alarm
        hall._emit("barrier", TamperChanged(False))
        assert await asyncio.to_thread(monitor.wait_for, raised(2), 10)
        second = alarms()[1]
        late = _send(broker, console_key, "reset_alarm", None, alarm_id=first)
        ack = await ack_of(late)
        assert ack["accepted"] is False
        assert ack["detail"] == f"reset_alarm is for {first}; the alarm now is {second}"
        assert daemon.gate.state is machine.State.ALARM  # the new alarm stands
        good = _send(broker, console_key, "reset_alarm", None, alarm_id=second)
        assert (await ack_of(good))["accepted"] is True
    finally:
        stop.set()
        await run
