"""Retained status, last will, graceful offline, and the bounded outbox, with a real broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from drivers.bus import build
from drivers.errors import DeviceError
from gate.actions import EventType, Publish
from gate.events import EventError, build_payload, validate
from gate.outbox import OutboxFull
from gate.reasons import ReasonCode
from sim.broker import Broker
from tests.mqtt.conftest import Monitor, gate_yaml
from tests.mqtt.test_zero_loss import _producer, _until_produced


def _statuses(monitor: Monitor) -> list[tuple[dict[str, Any], bool]]:
    return [(p, r) for t, p, r in monitor.messages if t.endswith("/status")]


def _retained_status(broker: Broker, name: str) -> dict[str, Any]:
    """What a console that connects now sees first on the gate's status topic."""
    # its own account: one account is one connection (use_username_as_clientid)
    fresh = Monitor(
        broker, "monitor2", "autogate/v1/kul1/g01/status", client_id=name, session_expiry_s=0
    )
    try:
        assert fresh.wait_for(lambda m: len(m) >= 1, 5)
        _topic, payload, retained = fresh.messages[0]
        assert retained, "the first status a new subscriber gets is the retained one"
        validate(payload)
        return payload
    finally:
        fresh.close()


async def test_status_on_connect_and_last_will_when_the_gate_dies(
    broker: Broker, monitor: Monitor, certs: Any, tmp_path: Path
) -> None:
    cfg = tmp_path / "gate.yaml"
    cfg.write_text(gate_yaml(broker, certs, tmp_path))
    proc = _producer(cfg, tmp_path / "progress")
    try:
        await _until_produced(tmp_path / "progress", proc, 50)
        ok = await asyncio.to_thread(
            monitor.wait_for, lambda m: any(p["online"] for p, _ in _statuses(monitor)), 10
        )
        assert ok, "no status on connect"
        assert _retained_status(broker, "console-a")["online"] is True
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    # the broker publishes the will when the connection drops
    ok = await asyncio.to_thread(
        monitor.wait_for, lambda m: any(not p["online"] for p, _ in _statuses(monitor)), 10
    )
    assert ok
    offline = _retained_status(broker, "console-b")
    assert (offline["online"], offline["state"]) == (False, "OFFLINE")


async def test_heartbeat_status_is_retained_and_close_announces_offline(
    broker: Broker, monitor: Monitor, gate_cfg_factory: Any
) -> None:
    cfg = gate_cfg_factory()
    bus = build(cfg.devices.bus, cfg)
    await bus.start(lambda _i: None)
    for state in ("IDLE", "DOC_CHECK", "IDLE"):
        await bus.publish_action(
            Publish(EventType.GATE_STATUS, data={"state": state, "presence": 0})
        )
    assert await bus.flush(10)
    status = _retained_status(broker, "console-a")
    assert (status["state"], status["online"], status["presence"]) == ("IDLE", True, 0)
    await bus.close()
    assert _retained_status(broker, "console-b")["state"] == "OFFLINE"


async def test_full_outbox_refuses_raises_one_alarm_then_drains_in_order(
    broker: Broker, monitor: Monitor, gate_cfg_factory: Any
) -> None:
    broker.wait_saved()
    broker.kill()  # the gate starts with the broker away
    cfg = gate_cfg_factory(max_rows=20)
    bus = build(cfg.devices.bus, cfg)
    await bus.start(lambda _i: None)
    for i in range(20):
        await bus.publish_action(Publish(EventType.CROSSING_ACCEPTED, txn_id=f"t{i:02d}"))
    for i in (20, 21):
        with pytest.raises(OutboxFull):
            await bus.publish_action(Publish(EventType.CROSSING_ACCEPTED, txn_id=f"t{i:02d}"))
    assert bus.backlog == 21  # 20 events + one alarm from the reserve; nothing dropped
    broker.start()
    assert await bus.flush(15)
    await bus.close()
    ok = await asyncio.to_thread(
        monitor.wait_for,
        lambda m: len(monitor.on("event/crossing")) >= 20 and len(monitor.on("event/alarm")) >= 2,
        15,
    )
    assert ok
    assert [p["txn_id"] for p in monitor.on("event/crossing")] == [f"t{i:02d}" for i in range(20)]
    alarms = monitor.on("event/alarm")
    assert [(a["type"], a["reasons"]) for a in alarms] == [
        ("alarm.raised", ["gate_outbox_full"]),
        ("alarm.cleared", ["gate_outbox_full"]),
    ]


async def test_a_full_outbox_that_drains_says_the_bus_is_back(
    broker: Broker, monitor: Monitor, gate_cfg_factory: Any
) -> None:
    # a refused publish is the daemon's bus fault (out of service); the outbox drained
    # and the alarm cleared on the wire, but nothing told the core: 'in service' was
    # refused ("not recovered: bus") until a restart
    from gate.inputs import LinkRestored

    broker.wait_saved()
    broker.kill()
    cfg = gate_cfg_factory(max_rows=20)
    bus = build(cfg.devices.bus, cfg)
    said: list[Any] = []
    await bus.start(said.append)
    for i in range(20):
        await bus.publish_action(Publish(EventType.CROSSING_ACCEPTED, txn_id=f"t{i:02d}"))
    with pytest.raises(OutboxFull):
        await bus.publish_action(Publish(EventType.CROSSING_ACCEPTED, txn_id="t20"))
    assert LinkRestored("bus") not in said
    broker.start()
    assert await bus.flush(15)
    for _ in range(100):
        if LinkRestored("bus") in said:
            break
        await asyncio.sleep(0.05)
    await bus.close()
    assert LinkRestored("bus") in said


@pytest.mark.parametrize(
    # a password is checked on the plain (loopback) listener only: on TLS the client
    # certificate is the account
    "flaw",
    [{"password": "wrong", "tls": False}, {"client_cert": False}],
    ids=["bad-password", "no-client-cert"],
)
async def test_refused_credentials_keep_events_on_disk(
    broker: Broker, gate_cfg_factory: Any, flaw: dict[str, Any]
) -> None:
    cfg = gate_cfg_factory(**flaw)
    bus = build(cfg.devices.bus, cfg)
    await bus.start(lambda _i: None)
    for i in range(5):
        await bus.publish_action(Publish(EventType.CROSSING_ACCEPTED, txn_id=f"t{i}"))
    await asyncio.sleep(1.5)  # a few connection attempts
    assert not bus.connected
    assert bus.backlog == 5
    await bus.close()
    with pytest.raises(DeviceError):
        await bus.publish_action(Publish(EventType.CROSSING_ACCEPTED, txn_id="late"))


async def test_publish_refuses_invalid_payloads_before_the_outbox(
    broker: Broker, gate_cfg_factory: Any
) -> None:
    cfg = gate_cfg_factory()
    bus = build(cfg.devices.bus, cfg)
    await bus.start(lambda _i: None)
    try:
        good = build_payload(
            Publish(EventType.ALARM_RAISED, reasons=(ReasonCode.GATE_TAMPER,)),
            site="kul1",
            gate="g01",
            ts=dt.datetime.now(dt.UTC),
            event_id=str(uuid.uuid4()),
        )
        with pytest.raises(EventError, match="does not go on"):
            await bus.publish("event/crossing", good)
        with pytest.raises(EventError):
            await bus.publish("event/alarm", {**good, "surname": "ERIKSSON"})
        assert bus.backlog == 0
    finally:
        await bus.close()


async def test_concurrent_publishes_keep_call_order_on_the_wire(
    broker: Broker, monitor: Monitor, gate_cfg_factory: Any
) -> None:
    """The daemon spawns a task per publish: group commit must not reorder them."""
    cfg = gate_cfg_factory()
    bus = build(cfg.devices.bus, cfg)
    await bus.start(lambda _i: None)
    txns = [f"t{i:03d}" for i in range(200)]
    await asyncio.gather(
        *(bus.publish_action(Publish(EventType.CROSSING_ACCEPTED, txn_id=t)) for t in txns)
    )
    assert await bus.flush(15)
    await bus.close()
    ok = await asyncio.to_thread(
        monitor.wait_for, lambda m: len(monitor.on("event/crossing")) >= len(txns), 10
    )
    assert ok
    assert [p["txn_id"] for p in monitor.on("event/crossing")] == txns
