"""The centre of the fleet speaks TLS only: every client (bridges, monitor, console,
ingest) presents a client certificate of its own, whose CN is its account; a plaintext
client finds nothing that answers MQTT."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mqtt5
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sim.bridge import bridge_account
from sim.broker import Broker, make_certs
from sim.national import CENTRAL_CLIENTS, central_broker

SITES = ["s01", "s02"]


@pytest.fixture()
def centre(tmp_path: Path) -> Iterator[Broker]:
    bridges = [bridge_account(s) for s in SITES]
    certs = make_certs(tmp_path / "certs", bridges + list(CENTRAL_CLIENTS))
    broker = central_broker(tmp_path, SITES, certs, {b: f"pw-{b}" for b in bridges})
    broker.start()
    yield broker
    broker.stop()


def _connack(sock: socket.socket, user: str, password: str) -> object:
    """An MQTT 5 CONNECT on ``sock``; the broker's answer (None: closed without one)."""
    sock.settimeout(10)
    sock.sendall(mqtt5.ConnectPacket(user, username=user, password=password.encode()).write())
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, ssl.SSLError, TimeoutError):
            return None
        if not chunk:
            return None
        data += chunk
        try:
            return mqtt5.read(memoryview(data))[0]
        except IndexError:
            continue


def _tls(certs_dir: Path, client: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs_dir / "ca.pem"))
    if client is not None:
        ctx.load_cert_chain(certs_dir / f"{client}.pem", certs_dir / f"{client}.key")
    return ctx


def test_a_plaintext_client_of_the_centre_is_refused(centre: Broker, tmp_path: Path):
    # the port a plaintext listener would have: nothing listens there
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", centre.port), timeout=5).close()
    # the TLS listener, spoken to in plaintext with a valid account: no CONNACK
    with socket.create_connection(("127.0.0.1", centre.tls_port), timeout=5) as plain:
        assert _connack(plain, "monitor", "pw-monitor") is None


def test_tls_needs_a_client_certificate_and_its_cn_is_the_account(centre: Broker, tmp_path: Path):
    """Attack review: certificates and accounts were not bound, so the console's password
    with the monitor's certificate (or a bridge's) logged in as the console. The account
    is now the certificate's CN, whatever username and password come with it."""
    certs = tmp_path / "certs"

    def attempt(client: str | None, user: str, password: str) -> object:
        raw = socket.create_connection(("127.0.0.1", centre.tls_port), timeout=5)
        try:
            with _tls(certs, client).wrap_socket(raw, server_hostname="127.0.0.1") as s:
                return _connack(s, user, password)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return None

    # the console's password with the monitor's certificate: the monitor, who may not
    # command; its command reaches no subscriber (the site's bridge), the console's own
    # afterwards (the control) does
    got: list[str] = []
    subscribed = threading.Event()

    def client(cert: str, user: str, password: str) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
        c.username_pw_set(user, password)
        c.tls_set(ca_certs=str(certs / "ca.pem"), certfile=str(certs / f"{cert}.pem"),
                  keyfile=str(certs / f"{cert}.key"))  # fmt: skip
        return c

    bridge = bridge_account("s01")
    sub = client(bridge, bridge, f"pw-{bridge}")
    sub.on_connect = lambda c, *_: c.subscribe("autogate/v1/s01/+/cmd/#", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, m: got.append(m.topic)
    sub.connect("127.0.0.1", centre.tls_port)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        for cert in ("monitor", "console"):  # the forgery, then the control
            pub = client(cert, "console", "pw-console")
            up = threading.Event()
            pub.on_connect = lambda *_, up=up: up.set()
            pub.connect("127.0.0.1", centre.tls_port)
            pub.loop_start()
            assert up.wait(10)
            pub.publish(f"autogate/v1/s01/g01/cmd/{cert}", b"{}", qos=1).wait_for_publish(10)
            pub.loop_stop()
            pub.disconnect()
        deadline = time.monotonic() + 10
        while "autogate/v1/s01/g01/cmd/console" not in got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "autogate/v1/s01/g01/cmd/console" in got, "the control did not arrive"
        assert "autogate/v1/s01/g01/cmd/monitor" not in got, "the console's password commanded"
    finally:
        sub.loop_stop()
        sub.disconnect()
    # the password is not what is checked: the certificate is
    ok = attempt("monitor", "monitor", "not-the-password")
    assert isinstance(ok, mqtt5.ConnAckPacket)
    assert ok.reason_code == mqtt5.ConnAckReasonCode.SUCCESS
    assert attempt(None, "monitor", "pw-monitor") is None  # no client certificate
