"""Malformed commands, through the production wiring: a real Mosquitto, the MQTT bus, the
daemon with its metrics. Each refusal gets the negative ack, the alarm, the metric and a
record in the hash-chained journal (issue 16, items 7 and 8)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

if shutil.which("mosquitto") is None:
    pytest.skip("mosquitto not installed (./run installs it)", allow_module_level=True)

from autogate.daemon import Daemon  # noqa: E402
from autogate.ops import Ops  # noqa: E402
from autogate.wiring import build_devices, settings_from  # noqa: E402
from drivers import bus as mqtt_bus  # noqa: E402
from gate.commands import canonical, sign_command  # noqa: E402
from gate.config import parse_config  # noqa: E402
from gate.inputs import Command  # noqa: E402
from gate.journal import iter_records, verify_all  # noqa: E402
from sim.broker import Broker, make_certs  # noqa: E402
from tests.mqtt.conftest import Monitor, gate_yaml  # noqa: E402
from tests.mqtt.test_acl_commands import G01, Client  # noqa: E402
from tests.ops.helpers import free_port  # noqa: E402
from tests.ops.test_metrics import samples  # noqa: E402


def _signed(key: Ed25519PrivateKey, **fields: Any) -> dict[str, Any]:
    msg = sign_command(
        key,
        site="kul1",
        gate="g01",
        command=Command.RELEASE,
        officer="officer-7",
        key_id="console-1",
        ts=dt.datetime.now(dt.UTC),
    )
    msg.update(fields)
    msg["sig"] = base64.b64encode(key.sign(canonical(msg))).decode("ascii")
    return msg


async def test_malformed_commands_get_ack_alarm_metric_and_journal(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs", ["gate-kul1-g01", "monitor", "console"])
    broker = Broker(tmp_path / "broker", certs)
    broker.start()
    monitor = Monitor(broker)
    key = Ed25519PrivateKey.generate()
    try:
        port = free_port()
        text = gate_yaml(broker, certs, tmp_path, console_key=key)
        cfg = parse_config(text + f"ops:\n  metrics: {{enabled: true, port: {port}}}\n")
        journal = tmp_path / "var" / "journal.jsonl"  # not the default var/ of the checkout
        cfg = cfg.model_copy(
            update={"storage": cfg.storage.model_copy(update={"journal": journal})}
        )
        ops = Ops.build(cfg, env={})
        devices, _hall = build_devices(cfg)
        devices.bus = mqtt_bus.build(cfg.devices.bus, cfg)
        daemon = Daemon(cfg, devices, settings_from(cfg), vault=ops.vault)
        ops.attach(daemon)
        stop = asyncio.Event()
        runner = asyncio.ensure_future(daemon.run(stop))
        await ops.start(daemon, stop)
        bad = [
            json.dumps({**_signed(key), "command": []}).encode(),
            json.dumps({**_signed(key), "officer": "o\ud800"}).encode(),
            json.dumps(_signed(key)).encode().replace(b'"officer-7"', b'"officer-\xff"'),
            json.dumps(_signed(key, ts="2026-02-30T10:00:00.000Z")).encode(),
            json.dumps(_signed(key, ts=_signed(key)["ts"] + "\n")).encode(),
        ]
        console = Client(broker, "console")
        try:
            await asyncio.wait_for(daemon.ready.wait(), 20)
            for _ in range(200):  # the bus subscribes once connected
                if devices.bus.connected:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            for raw in bad:
                console.publish(f"{G01}/cmd/release", raw)
            got = await asyncio.to_thread(
                monitor.wait_for,
                lambda m: (
                    len(monitor.on("cmd-ack")) >= len(bad)
                    and len(monitor.on("event/alarm")) >= len(bad)
                ),
                10,
            )
            assert got, monitor.messages
            res = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/metrics", timeout=5)
        finally:
            console.close()
            stop.set()
            await runner
            await ops.stop()
        acks = monitor.on("cmd-ack")
        assert [a["accepted"] for a in acks] == [False] * len(bad)
        assert all(a["detail"].startswith("malformed") for a in acks), acks
        alarms = monitor.on("event/alarm")
        assert all(a["reasons"] == ["gate_command_refused"] for a in alarms)
        m = samples(res.text)
        assert m[("autogate_commands_refused_total", (("reason", "malformed"),))] == len(bad)
        refused = [
            r for r in iter_records(cfg.storage.journal) if r.get("kind") == "command.refused"
        ]
        assert len(refused) == len(bad)
        assert {r["data"]["reason"] for r in refused} == {"malformed"}
        assert verify_all(cfg.storage.journal).verdict.ok
    finally:
        monitor.close()
        broker.stop()
