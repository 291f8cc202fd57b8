"""The console against the gate's real ``MqttBus`` (drivers/bus.py) on a real mosquitto.

The gate side here is the production bus: it subscribes to its commands, verifies the
console's signature with ``gate.commands``, hands the ``OfficerCommand`` to the daemon
(``emit``), and publishes the ack and events through its outbox. A command signed with a
key the gate does not trust is refused by the bus and the refusal shows on the console.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.bus import MqttBus
from gate.actions import AckCommand, EventType, Publish
from gate.commands import sign_command
from gate.config import MqttBusConfig
from gate.events import ack_action, topic
from gate.inputs import Command, OfficerCommand
from gate.reasons import ReasonCode
from tests.console.helpers import DOCUMENT, PASSWORDS, SITE, make_console
from tests.console.live import ConsoleServer, gate_user, hall_broker

if shutil.which("mosquitto_passwd") is None:
    pytest.skip("mosquitto not installed (./run installs it)", allow_module_level=True)


async def _until(client: httpx.AsyncClient, pred, timeout: float = 10.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        gates = {g["gate"]: g for g in (await client.get("/api/hall")).json()["gates"]}
        if pred(gates["g01"]):
            return gates["g01"]
        assert asyncio.get_running_loop().time() < deadline, gates["g01"]
        await asyncio.sleep(0.05)


async def test_release_through_the_real_gate_bus(tmp_path: Path) -> None:
    broker = hall_broker(tmp_path, ["g01"])
    console = make_console(tmp_path / "console", gates=["g01"])
    console.secure_cookie = False  # plain http to 127.0.0.1 in this test (httpx rule)
    server = ConsoleServer(console, broker.port)
    user, pw = gate_user("g01")
    cfg = MqttBusConfig(
        host="127.0.0.1",
        port=broker.port,
        username=user,
        outbox_sync="normal",
        reconnect_max_s=1,
    )
    bus = MqttBus(
        cfg,
        site=SITE,
        gate="g01",
        outbox_path=tmp_path / "outbox.sqlite",
        password=pw,
        command_keys={"console-1": console.signer.key.public_key()},
    )
    commands: asyncio.Queue[OfficerCommand] = asyncio.Queue()
    await bus.start(commands.put_nowait)
    try:
        await bus.publish_action(Publish(EventType.GATE_STATUS, None, (), {"state": "REFERRED"}))
        await bus.publish_action(
            Publish(
                EventType.REFERRAL_OPENED,
                "b1-000001",
                (ReasonCode.FACE_NO_MATCH,),
                {"document": DOCUMENT},
            )
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            token = (await http.get("/api/login-token")).json()["csrf"]
            r = await http.post(
                "/api/login",
                json={"name": "alice", "password": PASSWORDS["alice"]},
                headers={"X-CSRF-Token": token},
            )
            csrf = r.json()["csrf"]
            shown = await _until(http, lambda g: g["referral"] is not None)

            r = await http.post(  # the page names the referral it shows
                "/api/gates/g01/cmd/release",
                headers={"X-CSRF-Token": csrf},
                json={"txn_id": shown["referral"]["txn_id"]},
            )
            assert r.status_code == 202
            cmd = await asyncio.wait_for(commands.get(), 10)
            assert (cmd.command, cmd.officer, cmd.command_id) == (
                Command.RELEASE,
                "alice",
                r.json()["command_id"],
            )
            # what the daemon does with the core's AckCommand and referral.resolved
            await bus.publish_action(
                ack_action(AckCommand(cmd.command, cmd.command_id, True), officer=cmd.officer)
            )
            await bus.publish_action(
                Publish(
                    EventType.REFERRAL_RESOLVED,
                    "b1-000001",
                    (),
                    {"resolution": "release", "officer": cmd.officer, "command_id": cmd.command_id},
                )
            )
            g = await _until(http, lambda g: g["commands"] and g["commands"][0]["ack"])
            assert g["commands"][0]["ack"]["accepted"] is True
            g = await _until(http, lambda g: g["crossings_hour"] == 1)
            assert g["referral"] is None and g["last_decision"]["officer"] == "alice"

            # a command signed with a key the gate does not trust: the bus refuses it
            forged = sign_command(
                Ed25519PrivateKey.generate(),
                site=SITE,
                gate="g01",
                command="release",
                officer="mallory",
                key_id="console-1",
                ts=dt.datetime.now(dt.UTC),
            )
            server.bus.client.publish(topic(SITE, "g01", "cmd/release"), json.dumps(forged), qos=1)
            g = await _until(
                http, lambda g: any(a["code"] == "gate_command_refused" for a in g["alarms"])
            )
            assert commands.empty()  # nothing reached the core
    finally:
        await bus.close()
        server.stop()
        console.audit.close()
        broker.stop()
