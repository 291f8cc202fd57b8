"""Checkpoints leave the box: signed, through the outbox, on a real Mosquitto with the ACL."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

if shutil.which("mosquitto") is None:
    pytest.skip("mosquitto not installed (./run installs it)", allow_module_level=True)

from autogate.daemon import Daemon  # noqa: E402
from autogate.ops import Ops  # noqa: E402
from autogate.wiring import build_devices, settings_from  # noqa: E402
from drivers import bus as mqtt_bus  # noqa: E402
from gate import checkpoint  # noqa: E402
from gate.config import parse_config  # noqa: E402
from sim.broker import Broker, make_certs  # noqa: E402
from tests.mqtt.conftest import Monitor, gate_yaml  # noqa: E402
from tests.ops.helpers import free_port, write_signing_key  # noqa: E402
from tests.ops.test_metrics import samples  # noqa: E402


async def test_checkpoint_reaches_the_broker_and_verifies(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs", ["gate-kul1-g01", "monitor"])
    broker = Broker(tmp_path / "broker", certs)
    broker.start()
    monitor = Monitor(broker)
    try:
        key: Ed25519PrivateKey = write_signing_key(tmp_path / "signing.pem")
        port = free_port()
        ops_yaml = (
            "ops:\n"
            f"  metrics: {{enabled: true, port: {port}}}\n"
            f"  audit: {{signing_key: {tmp_path / 'signing.pem'}, "
            f"checkpoints: {tmp_path / 'var' / 'checkpoints.jsonl'}, checkpoint_interval_s: 60}}\n"
        )
        cfg = parse_config(gate_yaml(broker, certs, tmp_path) + ops_yaml)
        ops = Ops.build(cfg, env={})
        devices, hall = build_devices(cfg)
        devices.bus = mqtt_bus.build(cfg.devices.bus, cfg)
        daemon = Daemon(cfg, devices, settings_from(cfg), vault=ops.vault)
        ops.attach(daemon)
        stop = asyncio.Event()
        runner = asyncio.ensure_future(daemon.run(stop))
        await ops.start(daemon, stop)
        try:
            await asyncio.wait_for(daemon.ready.wait(), 20)
            got = await asyncio.to_thread(
                monitor.wait_for,
                lambda m: any(t.endswith("/audit/checkpoint") for t, _, _ in m),
                15,
            )
            assert got, [t for t, _, _ in monitor.messages]
            res = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/metrics", timeout=5)
        finally:
            stop.set()
            await runner
            await ops.stop()
        (payload,) = monitor.on("audit/checkpoint")[:1]
        cp = checkpoint.parse(payload)
        checkpoint.check_signature(key.public_key(), cp)  # raises if it does not verify
        assert cp.site == "kul1" and cp.gate == "g01" and cp.seq >= 1
        m = samples(res.text)
        assert ("autogate_outbox_depth", ()) in m
        assert ("autogate_outbox_oldest_age_seconds", ()) in m
    finally:
        monitor.close()
        broker.stop()
