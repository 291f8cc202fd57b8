"""The console's broker client: subscribes to a site's gates, publishes signed commands.

paho-mqtt runs its own network thread; every received message is handed to the asyncio
loop (``call_soon_threadsafe``) so the hall state is only ever touched on one thread.
The console logs in with its own broker credentials (the ACL lets it read the site and
write only ``.../cmd/#``) and keeps a persistent session for a few minutes, so a short
broker restart loses no event. Commands are signed with ``gate.commands.sign_command``
(Ed25519, the gate verifies them) and published with QoS 1, not retained: a command is
for now, never for a gate that comes back later.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from console.config import BrokerConfig, SigningConfig
from gate.commands import sign_command
from gate.events import topic
from gate.inputs import Command
from gate.takeover import Takeovers

log = logging.getLogger("autogate.console.mqtt")

SESSION_EXPIRY_S = 300


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


class Signer:
    """Signs commands with the console's key; the gates trust its public half by ``key_id``."""

    def __init__(self, key: Ed25519PrivateKey, key_id: str, site: str) -> None:
        self.key, self.key_id, self.site = key, key_id, site

    @classmethod
    def from_config(cls, cfg: SigningConfig, site: str) -> Signer:
        return cls(load_private_key(cfg.key_file), cfg.key_id, site)

    def sign(
        self,
        gate: str,
        command: Command,
        officer: str,
        txn_id: str | None = None,
        alarm_id: str | None = None,
    ) -> dict[str, Any]:
        return sign_command(
            self.key,
            site=self.site,
            gate=gate,
            command=command,
            officer=officer,
            key_id=self.key_id,
            ts=dt.datetime.now(dt.UTC),
            txn_id=txn_id,
            alarm_id=alarm_id,
        )


class ConsoleBus:
    def __init__(
        self,
        cfg: BrokerConfig,
        site: str,
        password: str | None,
        on_message: Callable[[str, bytes, bool], None],
    ) -> None:
        self.cfg, self.site = cfg, site
        self._on_message_cb = on_message
        self._loop: asyncio.AbstractEventLoop | None = None
        self.connected = threading.Event()
        self.on_link: Callable[[bool], None] | None = None
        self.on_takeover: Callable[[int], None] | None = None  # repeated takeovers (loop)
        self._takeovers = Takeovers()  # our account used elsewhere: gate/takeover.py
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id, protocol=mqtt.MQTTv5)
        c.username_pw_set(cfg.username, password)
        if cfg.tls is not None:
            c.tls_set(
                ca_certs=str(cfg.tls.ca_file),
                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        c.reconnect_delay_set(min_delay=1, max_delay=5)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self.client = c

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        self.client.connect_async(
            self.cfg.host, self.cfg.port, keepalive=15, clean_start=False, properties=props
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish_command(self, cmd: dict[str, Any]) -> None:
        """Publish a signed command on ``.../{gate}/cmd/{command}`` (QoS 1, not retained)."""
        if not self.connected.is_set():
            # no queueing for later: a command is for now (the gate would refuse it as stale)
            raise ConnectionError("the console is not connected to the broker")
        t = topic(cmd["site"], cmd["gate"], f"cmd/{cmd['command']}")
        info = self.client.publish(t, json.dumps(cmd, separators=(",", ":")), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"broker not reachable ({mqtt.error_string(info.rc)})")

    def clear_retained(self, topic: str) -> None:
        """Delete a retained message (an empty retained publish; the ACL allows it only on
        ``.../event/referral-image``, where nothing may be retained)."""
        if self.connected.is_set():
            self.client.publish(topic, b"", qos=1, retain=True)

    # paho's thread
    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("broker refused the console: %s", rc)
            return
        base = f"autogate/v1/{self.site}/+"
        # events keep their retain flag (retain as published): no gate retains an event,
        # and a retained referral image is refused and deleted (console.app)
        client.subscribe(
            [
                (f"{base}/status", SubscribeOptions(qos=1)),
                (f"{base}/event/#", SubscribeOptions(qos=1, retainAsPublished=True)),
                (f"{base}/cmd-ack", SubscribeOptions(qos=1)),
            ]
        )
        self.connected.set()
        log.info("connected to %s:%d", self.cfg.host, self.cfg.port)
        self._taken_over(self._takeovers.regained(time.monotonic()))
        self._link(True)

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("broker connection lost: %s", rc)
        self._link(False)
        self._taken_over(self._takeovers.lost(time.monotonic(), getattr(rc, "value", None)))

    def _taken_over(self, n: int | None) -> None:
        if n is not None:
            log.error("broker session lost and regained %d times: taken over?", n)
            if self._loop is not None and self.on_takeover is not None:
                self._loop.call_soon_threadsafe(self.on_takeover, n)

    def _link(self, up: bool) -> None:
        if self._loop is not None and self.on_link is not None:
            self._loop.call_soon_threadsafe(self.on_link, up)

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(
                self._on_message_cb, msg.topic, bytes(msg.payload), bool(msg.retain)
            )
