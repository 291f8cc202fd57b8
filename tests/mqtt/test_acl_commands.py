"""The broker's ACL and the gate's command checks, against a real Mosquitto."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from drivers.bus import MqttBus, build
from gate.actions import AckCommand
from gate.commands import sign_command
from gate.events import ack_action, validate
from gate.inputs import Command, OfficerCommand
from sim.broker import PASSWORDS, Broker
from tests.mqtt.conftest import Monitor

G01 = "autogate/v1/kul1/g01"
G02 = "autogate/v1/kul1/g02"


class Client:
    """A bare MQTT 5 client with one role's credentials; records PUBACK reason codes."""

    def __init__(self, broker: Broker, user: str) -> None:
        self.acks: dict[int, Any] = {}
        self._acked = threading.Condition()
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{user}", protocol=mqtt.MQTTv5
        )
        self.c.username_pw_set(user, PASSWORDS[user])
        self.c.on_publish = self._on_publish
        self.c.connect("127.0.0.1", broker.port)
        self.c.loop_start()

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        with self._acked:
            self.acks[mid] = rc
            self._acked.notify_all()

    def publish(self, topic: str, payload: str | bytes) -> Any:
        """Publish with QoS 1 and return the broker's PUBACK reason code."""
        info = self.c.publish(topic, payload, qos=1)
        with self._acked:
            assert self._acked.wait_for(lambda: info.mid in self.acks, 5)
            return self.acks[info.mid]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_gate_credentials_cannot_publish_as_another_gate_or_on_cmd(
    broker: Broker, monitor: Monitor
) -> None:
    gate = Client(broker, "gate-kul1-g01")
    try:
        assert gate.publish(f"{G02}/event/crossing", "{}").value == 0x87  # not authorized
        assert gate.publish(f"{G01}/cmd/release", "{}").value == 0x87
        assert gate.publish("autogate/v1/kul1/g01x/status", "{}").value == 0x87
        assert gate.publish(f"{G01}/event/alarm", "control").is_failure is False
    finally:
        gate.close()
    # the control message was published last on the same connection: once it arrived,
    # anything the broker let through before it would have arrived too
    assert monitor.wait_for(lambda m: any(t == f"{G01}/event/alarm" for t, *_ in monitor.raw), 5)
    assert [t for t, _ in monitor.raw] == [f"{G01}/event/alarm"]


def test_console_may_publish_commands_monitor_may_not(broker: Broker, monitor: Monitor) -> None:
    console, mon = Client(broker, "console"), Client(broker, "monitor")
    try:
        assert not console.publish(f"{G02}/cmd/release", "{}").is_failure
        assert mon.publish(f"{G02}/cmd/release", "{}").value == 0x87
    finally:
        console.close()
        mon.close()


@pytest.fixture()
async def gate_bus(gate_cfg_factory: Any, console_key: Ed25519PrivateKey, monitor: Monitor):
    cfg = gate_cfg_factory(console_key=console_key)
    bus = build(cfg.devices.bus, cfg)
    inputs: list[Any] = []
    await bus.start(inputs.append)
    assert monitor.wait_for(lambda m: any(t.endswith("/status") for t, *_ in m), 10)
    yield bus, inputs
    await bus.close()


def _signed(key: Ed25519PrivateKey, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "site": "kul1",
        "gate": "g01",
        "command": Command.RELEASE,
        "officer": "officer-7",
        "key_id": "console-1",
        "ts": dt.datetime.now(dt.UTC),
        "txn_id": "b1-000001",  # a release names the referral it decides
    }
    args.update(kw)
    return sign_command(key, **args)


async def _acks(monitor: Monitor, n: int) -> list[dict[str, Any]]:
    ok = await asyncio.to_thread(monitor.wait_for, lambda m: len(monitor.on("cmd-ack")) >= n, 10)
    assert ok, f"expected {n} acks, got {monitor.on('cmd-ack')}"
    return monitor.on("cmd-ack")


async def test_signed_command_reaches_the_core_and_bad_ones_are_refused(
    broker: Broker,
    monitor: Monitor,
    console_key: Ed25519PrivateKey,
    gate_bus: tuple[MqttBus, list[Any]],
) -> None:
    bus, inputs = gate_bus
    console = Client(broker, "console")
    try:
        good = _signed(console_key)
        console.publish(f"{G01}/cmd/release", json.dumps(good))
        for _ in range(500):
            if inputs:
                break
            await asyncio.sleep(0.01)
        assert inputs == [
            OfficerCommand(Command.RELEASE, "officer-7", good["command_id"], "b1-000001")
        ]
        # the core answers with AckCommand; the daemon publishes it
        ack = AckCommand(Command.RELEASE, good["command_id"], accepted=True, detail="released")
        await bus.publish_action(ack_action(ack, officer="officer-7"))

        forged_key = Ed25519PrivateKey.generate()
        unsigned = _signed(console_key)
        del unsigned["sig"]
        tampered = _signed(console_key)
        tampered["officer"] = "someone-else"
        old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        bad = {
            "forged": _signed(forged_key),
            "unsigned": unsigned,
            "tampered": tampered,
            "expired": _signed(console_key, ts=old),
            "replayed": _signed(console_key, nonce=good["nonce"]),  # a new command, old nonce
            "other_gate": _signed(console_key, gate="g02"),
            "wrong_topic": _signed(console_key, command=Command.IN_SERVICE),
            "unknown_key": _signed(console_key, key_id="console-9"),
        }
        expected_reason = {
            "forged": "bad_signature",
            "unsigned": "unsigned",
            "tampered": "bad_signature",
            "expired": "expired",
            "replayed": "replayed",
            "other_gate": "wrong_gate",
            "wrong_topic": "topic_mismatch",
            "unknown_key": "unknown_key",
        }
        console.publish(f"{G01}/cmd/release", json.dumps(good))  # redelivered: no answer
        for msg in bad.values():
            console.publish(f"{G01}/cmd/release", json.dumps(msg))
        console.publish(f"{G01}/cmd/release", b"\xff not json")
        acks = await _acks(monitor, 1 + len(bad) + 1)
    finally:
        console.close()

    assert len(inputs) == 1, "a refused command reached the core"
    assert acks[0]["accepted"] and acks[0]["command_id"] == good["command_id"]
    refused = [a for a in acks if not a["accepted"]]
    assert len(refused) == len(bad) + 1
    by_id = {a["command_id"]: a for a in refused if a["command_id"]}
    for name, msg in bad.items():
        assert by_id[msg["command_id"]]["detail"].startswith(expected_reason[name]), name
    # the copy of the good command was neither carried out again nor refused
    assert [a["accepted"] for a in acks if a["command_id"] == good["command_id"]] == [True]
    assert bus.stats["commands_duplicate"] == 1
    assert any(a["command_id"] is None and a["detail"].startswith("malformed") for a in refused)
    # every refusal raised an alarm
    ok = await asyncio.to_thread(
        monitor.wait_for, lambda m: len(monitor.on("event/alarm")) >= len(bad) + 1, 10
    )
    assert ok
    alarms = monitor.on("event/alarm")
    assert all(a["reasons"] == ["gate_command_refused"] for a in alarms)
    assert bus.stats["commands_refused"] == len(bad) + 1
    # every message the gate published, and the console's good command, match their schemas
    validate(good)
    gate_msgs = [p for t, p, _ in monitor.messages if "/cmd/" not in t]
    assert len(gate_msgs) > 2 * len(bad)
    for payload in gate_msgs:
        validate(payload)


async def test_gate_does_not_receive_another_gates_commands(
    broker: Broker, monitor: Monitor, console_key: Ed25519PrivateKey, gate_bus: Any
) -> None:
    _bus, inputs = gate_bus
    console = Client(broker, "console")
    try:
        console.publish(f"{G02}/cmd/release", json.dumps(_signed(console_key, gate="g02")))
        console.publish(
            f"{G01}/cmd/reset_alarm",
            json.dumps(_signed(console_key, command="reset_alarm", alarm_id="b1-a000001")),
        )
    finally:
        console.close()
    for _ in range(300):
        if inputs:
            break
        await asyncio.sleep(0.01)
    assert [i.command for i in inputs] == [Command.RESET_ALARM]
    assert not [a for a in monitor.on("cmd-ack") if not a["accepted"]]


def test_example_acl_has_the_tested_gate_blocks() -> None:
    """config/mosquitto/acl is the layout these tests run against (kept in sync)."""
    from pathlib import Path

    from sim.broker import GATES, SITE, acl_text

    example = (Path(__file__).resolve().parents[2] / "config/mosquitto/acl").read_text()
    for block in acl_text(SITE, GATES).split("\n\n"):
        assert block.strip() in example
