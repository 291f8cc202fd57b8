"""A damaged outbox file (disk corruption, not a torn write) never stops the lane and
never hides: it is moved aside (kept, named in an alarm) and a new one started; a
drainer that keeps failing is a bus fault; publish() never answers OK when it cannot
persist (issue 16, item 9)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.bus import build
from drivers.errors import DeviceError
from gate import inputs as i
from gate.config import GateConfig
from gate.outbox import Outbox, OutboxDamaged, open_outbox
from tests.mqtt.conftest import Monitor


def _filled(path: Path, n: int = 300) -> None:
    box = Outbox(path, 10_000)
    for k in range(n):
        box.put(
            "autogate/v1/kul1/g01/event/crossing", json.dumps({"k": k, "pad": "x" * 200}).encode()
        )
    box.close()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for off in range(4096 + 100, min(len(data), 4 * 4096), 7):  # inside the table's pages
        data[off] = 0xA5
    path.write_bytes(bytes(data))


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 100)


def _checkpointed(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


DAMAGE = {"truncated": _truncate, "garbled": _garble, "not a database": _garbage}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_file_is_moved_aside_and_a_new_one_started(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "outbox.sqlite"
    _filled(path)
    _checkpointed(path)
    DAMAGE[damage](path)
    with pytest.raises(OutboxDamaged):
        Outbox(path, 100)
    box, aside = open_outbox(path, 100)
    try:
        assert aside is not None and aside.exists() and aside.parent == tmp_path
        assert "damaged" in aside.name
        assert len(box) == 0
        box.put("t", b"new")  # the new one works
        assert [r.payload for r in box.peek()] == [b"new"]
    finally:
        box.close()


def test_a_healthy_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    _filled(path, 5)
    box, aside = open_outbox(path, 100)
    assert aside is None and len(box) == 5
    box.close()


def test_an_unreadable_folder_is_not_damage(tmp_path: Path) -> None:
    """Only a corrupt file is moved aside; a path that cannot be opened is an error."""
    (tmp_path / "outbox.sqlite").mkdir()
    with pytest.raises(sqlite3.OperationalError):
        open_outbox(tmp_path / "outbox.sqlite", 100)
    assert (tmp_path / "outbox.sqlite").is_dir()


async def test_bus_starts_on_a_damaged_outbox_and_names_the_kept_file(
    gate_cfg_factory: Callable[..., GateConfig], monitor: Monitor
) -> None:
    cfg = gate_cfg_factory()
    assert cfg.devices.bus.outbox is not None
    path = cfg.devices.bus.outbox
    path.parent.mkdir(parents=True, exist_ok=True)
    _filled(path)
    _checkpointed(path)
    _truncate(path)
    bus = build(cfg.devices.bus, cfg)
    inputs: list[Any] = []
    await bus.start(inputs.append)  # today: a raw sqlite3.DatabaseError
    try:
        got = await asyncio.to_thread(
            monitor.wait_for, lambda m: len(monitor.on("event/alarm")) >= 1, 10
        )
        assert got, monitor.messages
        (alarm,) = monitor.on("event/alarm")
        assert alarm["reasons"] == ["gate_device_fault"] and alarm["device"] == "bus"
        kept = [
            p for p in path.parent.iterdir() if "damaged" in p.name and p.suffix != ".sqlite-wal"
        ]
        assert kept and kept[0].name in alarm["detail"]
    finally:
        await bus.close()


async def test_a_drainer_that_keeps_failing_is_a_bus_fault_until_it_recovers(
    gate_cfg_factory: Callable[..., GateConfig], monitor: Monitor
) -> None:
    cfg = gate_cfg_factory()
    bus = build(cfg.devices.bus, cfg)
    inputs: list[Any] = []
    await bus.start(inputs.append)
    try:
        assert await asyncio.to_thread(monitor.wait_for, lambda m: bool(monitor.on("status")), 10)
        box = bus._box()
        real_peek = box.peek

        def broken(*_a: Any, **_k: Any) -> Any:
            raise sqlite3.DatabaseError("database disk image is malformed")

        box.peek = broken  # type: ignore[method-assign]
        for _ in range(100):
            if any(isinstance(x, i.DeviceFault) for x in inputs):
                break
            await asyncio.sleep(0.05)
        faults = [x for x in inputs if isinstance(x, i.DeviceFault)]
        assert faults and faults[0].device == "bus" and "outbox" in faults[0].detail
        assert len(faults) == 1, "one fault, not one per drainer pass"
        # the alarm goes out directly: the outbox is what is broken
        got = await asyncio.to_thread(
            monitor.wait_for, lambda m: len(monitor.on("event/alarm")) >= 1, 10
        )
        assert got and monitor.on("event/alarm")[0]["device"] == "bus"
        # publish() does not answer OK while the outbox cannot be read back
        leaf, payload = _alarm(bus)
        with pytest.raises(DeviceError):
            await bus.publish(leaf, payload)
        box.peek = real_peek  # type: ignore[method-assign]
        for _ in range(100):
            if any(isinstance(x, i.LinkRestored) for x in inputs):
                break
            await asyncio.sleep(0.05)
        assert any(isinstance(x, i.LinkRestored) and x.device == "bus" for x in inputs)
        await bus.publish(*_alarm(bus))
    finally:
        await bus.close()


def _alarm(bus: Any) -> tuple[str, dict[str, Any]]:
    from gate.actions import EventType
    from gate.reasons import ReasonCode

    return bus._event(EventType.ALARM_RAISED, reasons=(ReasonCode.GATE_TAMPER,), detail="t")


async def test_outbox_fault_shows_in_status_and_metrics(tmp_path: Path) -> None:
    """Through the daemon: the bus fault reaches the core, so the retained status says
    ``links.bus: fault`` and ``autogate_link_up{device="bus"}`` is 0, until it recovers."""
    import httpx

    from autogate.daemon import Daemon
    from autogate.ops import Ops
    from autogate.wiring import build_devices, settings_from
    from gate.config import parse_config
    from sim.broker import Broker, make_certs
    from tests.mqtt.conftest import gate_yaml
    from tests.ops.helpers import free_port
    from tests.ops.test_metrics import samples

    certs = make_certs(tmp_path / "certs", ["gate-kul1-g01", "monitor"])
    broker = Broker(tmp_path / "broker", certs)
    broker.start()
    monitor = Monitor(broker)
    try:
        port = free_port()
        text = gate_yaml(broker, certs, tmp_path)
        cfg = parse_config(text + f"ops:\n  metrics: {{enabled: true, port: {port}}}\n")
        journal = tmp_path / "var" / "journal.jsonl"  # not the default var/ of the checkout
        cfg = cfg.model_copy(
            update={"storage": cfg.storage.model_copy(update={"journal": journal})}
        )
        ops = Ops.build(cfg, env={})
        devices, _hall = build_devices(cfg)
        devices.bus = build(cfg.devices.bus, cfg)
        daemon = Daemon(cfg, devices, settings_from(cfg), vault=ops.vault)
        ops.attach(daemon)
        stop = asyncio.Event()
        runner = asyncio.ensure_future(daemon.run(stop))
        await ops.start(daemon, stop)
        url = f"http://127.0.0.1:{port}/metrics"
        key = ("autogate_link_up", (("device", "bus"),))
        try:
            await asyncio.wait_for(daemon.ready.wait(), 20)
            box = devices.bus._box()  # type: ignore[attr-defined]
            real_peek = box.peek

            def broken(*_a: Any, **_k: Any) -> Any:
                raise sqlite3.DatabaseError("database disk image is malformed")

            box.peek = broken
            faulted = await asyncio.to_thread(
                monitor.wait_for,
                lambda m: any(
                    (p.get("links") or {}).get("bus") == "fault" for p in monitor.on("status")
                ),
                15,
            )
            assert faulted, monitor.on("status")
            res = await asyncio.to_thread(httpx.get, url, timeout=5)
            assert samples(res.text)[key] == 0
            box.peek = real_peek
            for _ in range(100):
                res = await asyncio.to_thread(httpx.get, url, timeout=5)
                if samples(res.text)[key] == 1:
                    break
                await asyncio.sleep(0.1)
            assert samples(res.text)[key] == 1
        finally:
            stop.set()
            await runner
            await ops.stop()
    finally:
        monitor.close()
        broker.stop()


async def test_a_failed_write_is_a_fault_until_a_write_works_again(
    gate_cfg_factory: Callable[..., GateConfig], monitor: Monitor
) -> None:
    cfg = gate_cfg_factory()
    bus = build(cfg.devices.bus, cfg)
    inputs: list[Any] = []
    await bus.start(inputs.append)
    try:
        box = bus._box()
        real = box.put_many

        def full_disk(*_a: Any, **_k: Any) -> Any:
            raise sqlite3.OperationalError("database or disk is full")

        box.put_many = full_disk  # type: ignore[method-assign]
        with pytest.raises(DeviceError, match="disk is full"):
            await bus.publish(*_alarm(bus))
        assert [type(x) for x in inputs] == [i.DeviceFault]
        box.put_many = real  # type: ignore[method-assign]
        # only status is published while out of service: it must find the outbox again
        from gate.actions import EventType

        await bus.publish(*bus._event(EventType.GATE_STATUS, state="OUT_OF_SERVICE"))
        assert any(isinstance(x, i.LinkRestored) for x in inputs)
        assert bus.fault is None
    finally:
        await bus.close()
