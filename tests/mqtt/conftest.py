"""Fixtures: a real Mosquitto per test module, a monitor subscriber, gate bus configs."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gate.commands import public_key_b64
from gate.config import GateConfig, parse_config
from sim.broker import PASSWORDS, SITE, Broker, Certs, make_certs

if shutil.which("mosquitto_passwd") is None:
    pytest.skip("mosquitto not installed (./run installs it)", allow_module_level=True)

CLIENTS = ["gate-kul1-g01", "gate-kul1-g02", "console", "monitor"]


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"), CLIENTS)


@pytest.fixture()
def broker(tmp_path: Path, certs: Certs) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker", certs)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def console_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


class Monitor:
    """A subscriber with a persistent session (kept by the broker across its restart)."""

    def __init__(
        self,
        broker: Broker,
        user: str = "monitor",
        topic: str = "autogate/v1/#",
        client_id: str | None = None,
        session_expiry_s: int = 3600,
    ):
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.raw: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{user}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(user, PASSWORDS[user])
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.topic = topic
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = session_expiry_s
        self.client.connect("127.0.0.1", broker.port, 30, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.subscribed.wait(5), "monitor did not subscribe"

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(self.topic, qos=1)
        self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.raw.append((msg.topic, bytes(msg.payload)))
            with contextlib.suppress(ValueError):
                self.messages.append((msg.topic, json.loads(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(
        self, pred: Callable[[list[tuple[str, dict[str, Any], bool]]], bool], timeout: float
    ) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def on(self, leaf: str) -> list[dict[str, Any]]:
        with self._cond:
            return [p for t, p, _ in self.messages if t.endswith("/" + leaf)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class SubMonitor:
    """``mosquitto_sub`` in its own process, persistent session, lines to a file.

    For the kill tests: a C subscriber in another process keeps up with the stream even
    on a loaded machine, so what the broker acknowledged it has also handed on when it
    is killed (Mosquitto acknowledges before it persists; a subscriber that lags behind
    would lose what sat in the broker's memory, which is no fault of the gate).
    """

    def __init__(self, broker: Broker, path: Path, topic: str = "autogate/v1/#") -> None:
        self.path = path
        self._out = path.open("wb")
        self.proc = subprocess.Popen(
            [
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                str(broker.port),
                "-u",
                "monitor",
                "-P",
                PASSWORDS["monitor"],
                "-V",
                "mqttv5",
                "-i",
                "test-sub-monitor",
                "-c",
                "-q",
                "1",
                "-t",
                topic,
                "-v",
            ],
            stdout=self._out,
            stderr=subprocess.DEVNULL,
        )
        # subscribed once a probe published after our SUBSCRIBE comes back
        probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-probe")
        probe.username_pw_set("console", PASSWORDS["console"])
        probe.connect("127.0.0.1", broker.port)
        probe.loop_start()
        deadline = time.monotonic() + 10
        while b"/cmd/probe" not in path.read_bytes():
            assert time.monotonic() < deadline, "mosquitto_sub did not subscribe"
            probe.publish("autogate/v1/kul1/g01/cmd/probe", "{}", qos=1).wait_for_publish(2)
            time.sleep(0.1)
        probe.disconnect()
        probe.loop_stop()

    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for line in self.path.read_bytes().splitlines():
            topic, _, payload = line.partition(b" ")
            with contextlib.suppress(ValueError):
                out.append((topic.decode(), json.loads(payload)))
        return out

    def on(self, leaf: str) -> list[dict[str, Any]]:
        return [p for t, p in self.messages() if t.endswith("/" + leaf)]

    def wait_txns(self, leaf: str, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len({p.get("txn_id") for p in self.on(leaf)}) < n:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        self._out.close()


@pytest.fixture()
def sub_monitor(broker: Broker, tmp_path: Path) -> Iterator[SubMonitor]:
    m = SubMonitor(broker, tmp_path / "sub-monitor.log")
    yield m
    m.close()


@pytest.fixture()
def monitor(broker: Broker) -> Iterator[Monitor]:
    m = Monitor(broker)
    yield m
    m.close()


def gate_yaml(
    broker: Broker,
    certs: Certs,
    tmp: Path,
    *,
    gate: str = "g01",
    console_key: Ed25519PrivateKey | None = None,
    outbox_sync: str = "normal",
    max_rows: int = 100_000,
    tls: bool = True,
    client_cert: bool = True,
    password: str | None = None,
    image_key: str | None = None,
) -> str:
    """A gate config with an MQTT bus to ``broker`` (TLS + client cert + password)."""
    user = f"gate-{SITE}-{gate}"
    pw = tmp / f"{user}.password"
    pw.write_text((password or PASSWORDS[user]) + "\n")
    cert, key = certs.clients[user]
    keys = ""
    if console_key is not None:
        keys = f"      command_keys: [{{id: console-1, public_key: {public_key_b64(console_key.public_key())}}}]\n"
    pair = f", cert_file: {cert}, key_file: {key}" if client_cert else ""
    tls_block = f"      tls: {{ca_file: {certs.ca}{pair}}}\n" if tls else ""
    return (
        f"gate: {{site: {SITE}, id: {gate}}}\n"
        f"storage: {{data_dir: {tmp / 'var'}}}\n"
        "devices:\n"
        "  bus:\n"
        "      type: mqtt\n"
        "      host: 127.0.0.1\n"
        f"      port: {broker.tls_port if tls else broker.port}\n"
        f"      username: {user}\n"
        f"      password_file: {pw}\n"
        f"{tls_block}"
        f"      outbox: {tmp / 'var' / f'outbox-{gate}.sqlite'}\n"
        f"      outbox_sync: {outbox_sync}\n"
        f"      outbox_max_rows: {max_rows}\n"
        "      reconnect_max_s: 1\n"
        f"{keys}" + (f"      image_key: {image_key}\n" if image_key else "")
    )


@pytest.fixture()
def gate_cfg_factory(broker: Broker, certs: Certs, tmp_path: Path) -> Callable[..., GateConfig]:
    def make(**kw: Any) -> GateConfig:
        return parse_config(gate_yaml(broker, certs, tmp_path, **kw))

    return make
